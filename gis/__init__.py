"""GeoIOC spatial core: settings, database, CRS, sample province, CLI.

Importable without the web stack so that scripts, migrations and tests can use it directly.
"""
