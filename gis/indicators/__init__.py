"""Socio-economic indicators by administrative unit (issue 17).

The definitions (code, Vietnamese and English name and unit, domain, periodicity, source, range,
access) are reference data of migration 0026 (sample_data/indicators.csv); the values, one per
indicator, unit and period, come from the sample or from the files statistics offices publish
(`imports`: CSV and XLSX, long or yearbook-wide layouts). They are served by the catalogue's
`indicators` layer (OGC API: the unit's boundary with the value) and by /api/indicators
(`service`: lists, values of a period, a unit's series, a comparison of communes).

Modules: periods (period text, its first day and the day after), read (CSV and XLSX into rows
of text with their row numbers), units (unit matching by code or Vietnamese name), imports (the
import), service (the reads), queries (their SQL).
"""
