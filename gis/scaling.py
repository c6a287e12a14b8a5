"""How every table of the schema would sit on a Citus cluster (distributed PostgreSQL with
PostGIS): the one place that says it, read by docs/scaling.md's reader and checked against the
migrated schema by tests/test_citus_compat.py.

Pure data, no database access: the decision is made here, when a table is created, not when a
province outgrows one node. A table that is in no list below fails the test, so a new migration
forces the choice (distributed on which column and with which group, reference, or local).

- DISTRIBUTED: hash-distributed tables, table -> (distribution column, colocation group). Tables
  of one group have their shards placed together, so joins and foreign keys on the
  distribution column stay inside one shard. Partitioned parents are distributed with their
  partitions (Citus distributes the partitions with the parent).
- REFERENCE: small, read-mostly tables copied whole to every worker, so any shard joins them
  locally (administrative units, code lists, the catalogue of things and datastreams, the
  layers of a few thousand features).
- LOCAL: tables kept on the coordinator only (accounts, the job queue, the audit log, job and
  cache bookkeeping): never joined with a distributed table in a hot query.

The links to incidents (duplicate_of, and the incident_id of sensor_alerts and
camera_detections among others) are no foreign keys since migration 0038 (incidents are
partitioned by month, so id alone is not a key): their gaps are closed, and their triggers are
part of the row-trigger work docs/scaling.md lists beside the gaps.

KNOWN_GAPS lists, by constraint name, the constraints of the current schema that Citus cannot
keep as they are under this plan, each with why and its remedy (docs/scaling.md, "Known gaps").
The test fails on any other such constraint, and on a listed one that no longer exists (the
list must shrink as gaps are closed).
"""

from __future__ import annotations

from typing import Final

# Colocation groups (Citus's colocate_with): one shard count each (32 in docs/scaling.md).
INCIDENTS: Final = "incidents"
OBSERVATIONS: Final = "observations"
PARCELS: Final = "parcels"

# table -> (distribution column, colocation group)
DISTRIBUTED: Final[dict[str, tuple[str, str]]] = {
    # A report and its workflow are one incident: its moves, Open311 request, reporter and
    # photos live on the incident's shard, so intake and every workflow move is a one-shard
    # transaction.
    "incidents": ("id", INCIDENTS),
    # The id guard of the partitioned incidents (migration 0038: one row per id, its primary
    # key keeps id unique, which incidents' (id, reported_at) cannot): beside its incident.
    "incident_ids": ("id", INCIDENTS),
    "incident_transitions": ("incident_id", INCIDENTS),
    "incident_requests": ("incident_id", INCIDENTS),
    "incident_reporters": ("incident_id", INCIDENTS),
    "report_photos": ("incident_id", INCIDENTS),
    # A datastream's readings, rollups and latest row together: every STA read of one
    # datastream and every ingest batch's rollup upsert stays on one shard per datastream.
    "observations": ("datastream_id", OBSERVATIONS),
    "observation_hourly": ("datastream_id", OBSERVATIONS),
    "observation_daily": ("datastream_id", OBSERVATIONS),
    "datastream_latest": ("datastream_id", OBSERVATIONS),
    # A parcel and its system-time history (the history trigger writes beside the parcel).
    "parcels": ("id", PARCELS),
    "parcel_history": ("parcel_id", PARCELS),
}

REFERENCE: Final[frozenset[str]] = frozenset({
    # Administrative units and code lists.
    "admin_units", "land_use_codes", "parcel_zoning_rules", "indicators", "indicator_values",
    "aqi_bands", "traffic_congestion_classes", "detection_categories",
    # The pre-aggregates' base grid (one row: SRID and cell size, migration 0027).
    "incident_cell_grid",
    # The report catalogue: services and the agencies they are routed to.
    "service_categories", "agencies",
    # SensorThings catalogue: observations refer to datastreams and features of interest, so
    # these must be on every worker (a foreign key from a distributed table to a reference
    # table is allowed; to a local one it is not).
    "sensors", "things", "datastreams", "thing_locations", "features_of_interest",
    "observed_properties", "sensor_models", "alert_rules",
    # things refers to roads, so the roads layer is a reference table too (9,000 segments).
    "roads",
    # Small layers, joined with incidents and parcels by position (a few thousand rows each).
    "land_use_zones", "cameras", "public_facilities", "tourism_places",
})

LOCAL: Final[frozenset[str]] = frozenset({
    # Accounts, sign-in and the audit trail: read by primary key, written by the coordinator.
    "users", "user_roles", "api_keys", "auth_sessions", "audit_log",
    # The job queue (SELECT ... FOR UPDATE SKIP LOCKED wants one node) and job bookkeeping.
    "procrastinate_jobs", "procrastinate_events", "procrastinate_periodic_defers",
    "procrastinate_workers", "export_jobs", "bulk_load_indexes", "ingest_workers",
    # Provenance and caches.
    "harvest_provenance", "sample_info", "transparency_figures", "alembic_version",
    # Alerts and camera events: thousands of rows a year, written by one job at a time.
    "sensor_alerts", "sensor_alert_events",
    "camera_status_history", "camera_snapshots", "camera_keys", "camera_detections",
    # Rate-limit buckets and sign-in failures (migration 0032): one short UPSERT per request by
    # primary key, on the coordinator every API process talks to.
    "rate_buckets", "signin_failures",
    # The heatmaps' per-day, per-cell pre-aggregates (migration 0027), kept by statement
    # triggers on incidents. Citus runs no trigger of a distributed table on the coordinator:
    # there they are refreshed from the shards by a periodic job instead (docs/scaling.md).
    "incident_cell_days",
    # The statistics' per-day counts (migration 0035), the map's per-month and per-day Mercator cells
    # (migration 0037) and per-year cells (0043), the hexagon grid's per-month cells (0042) and
    # the kernel density's per-month base cells (0044): the same triggers and the same remedy.
    "incident_days", "incident_heat_months", "incident_heat_days", "incident_hex_months",
    "incident_heat_years", "incident_cell_months",
})

# Constraint name -> why Citus cannot keep it under this plan, and the remedy. Every entry is
# described in docs/scaling.md, "Known gaps".
KNOWN_GAPS: Final[dict[str, str]] = {
    # incidents (distributed by id)
    "incident_transitions_pkey":
        "primary key (id) lacks incident_id; remedy: PRIMARY KEY (incident_id, id)",
    "report_photos_pkey":
        "primary key (id) lacks incident_id; remedy: PRIMARY KEY (incident_id, id) and the "
        "photo URL carries the incident id (/api/reports/photos/{incident}/{id})",
    "incident_requests_token_key":
        "UNIQUE (token) lacks incident_id; remedy: the token embeds the incident id (random "
        "part + id), unique per incident, and a lookup by token routes by the id it carries",
    # parcels (distributed by id)
    "parcels_commune_code_old_commune_code_sheet_no_parcel_no_key":
        "the cadastral key (commune, old commune, sheet, parcel) lacks id; remedy: distribute "
        "parcels by commune_code instead (key kept, by-id lookups fan out) or keep the key "
        "unique through a reference/local key table written in the same transaction",
    "parcel_history_pkey":
        "primary key (history_id) lacks parcel_id; remedy: PRIMARY KEY (parcel_id, history_id)",
}


def declared() -> dict[str, str]:
    """Every declared table -> its kind ('distributed', 'reference' or 'local')."""
    kinds = {t: "distributed" for t in DISTRIBUTED}
    for kind, tables in (("reference", REFERENCE), ("local", LOCAL)):
        for t in tables:
            kinds[t] = kind
    return kinds
