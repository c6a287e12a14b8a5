"""Deterministic synthetic sample province (Bắc Ninh, clearly labelled synthetic).

    sample = generate(seed=1, scale=1.0, as_of=None)   # as_of defaults to today (UTC)
    sample.data_hash()                                 # sha256 over all generated tables
    load_sample(conn_or_url, seed=1, scale=1.0, as_of=None, progress=True, replace=False)

Modules: province (outline, districts, communes, 2025 reform), roads (villages, road network),
landuse (blocks and planning zones), parcels (cadastre and planted anomalies), points (cameras,
tourism), sensors (stations and observations), incidents, names (Vietnamese names),
serialize (COPY text, hashing), load (PostGIS).
"""

from gis.sample.assemble import TABLES, Sample, generate
from gis.sample.load import SampleExistsError, load_sample

__all__ = ["TABLES", "Sample", "SampleExistsError", "generate", "load_sample"]
