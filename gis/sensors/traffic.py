"""Road traffic's live state (migration 0024): what the passing of time changes.

The ingest's statement (gis/sensors/queries.py STORE) sets a monitored road segment's
congestion class from the speeds it stores. When a segment's detector goes quiet, nothing
arrives to change it, so a sweep (every minute, on the job queue: `sensors.traffic_sweep`)
turns the live states older than the staleness period (`geoioc_traffic_stale_after()`, 30
minutes) into 'unknown' (speed_ratio NULL): the map shows the segment grey rather than a
congestion that is no longer known. Those segments are announced on channel `geoioc_live` like
any class change, as `[road id, "unknown", null]`.

Static states (the sample's, an import's: speed_ratio NULL) are not live and never go stale.
"""

from __future__ import annotations

from typing import Any

import psycopg

from gis.sensors.queries import CONGESTION_CHUNK

SWEEP = f"""
WITH stale AS (
    UPDATE roads SET traffic_state = 'unknown', speed_ratio = NULL
     WHERE speed_ratio IS NOT NULL AND traffic_at < now() - geoioc_traffic_stale_after()
    RETURNING id
), announced AS (
    SELECT pg_notify('geoioc_live', json_build_object(
               'kind', 'congestion', 'layer', 'roads',
               'segments', json_agg(json_build_array(id, 'unknown', NULL) ORDER BY id))::text)
      FROM (SELECT id, (row_number() OVER (ORDER BY id) - 1) / {CONGESTION_CHUNK} AS chunk
              FROM stale) AS s
     GROUP BY chunk
)
SELECT (SELECT count(*) FROM stale), (SELECT count(*) FROM announced)
"""  # noqa: S608 - constants only

CLASSES = "SELECT state, min_ratio FROM traffic_congestion_classes ORDER BY min_ratio DESC"


def sweep(conn: psycopg.Connection[Any]) -> int:
    """Turn stale live states into 'unknown' (and announce them); how many, committed."""
    with conn.transaction():
        row = conn.execute(SWEEP).fetchone()
    return int(row[0]) if row else 0


def congestion_classes(conn: psycopg.Connection[Any]) -> list[tuple[str, float]]:
    """The congestion classes, (state, lowest ratio of speed to free-flow speed), fastest first."""
    return [(str(s), float(r)) for s, r in conn.execute(CLASSES)]


def classify(conn: psycopg.Connection[Any], ratios: list[float]) -> list[str]:
    """The class of each ratio, as the ingest computes it (geoioc_congestion)."""
    return [str(r[0]) for r in conn.execute(
        "SELECT geoioc_congestion(x) FROM unnest(%s::float8[]) WITH ORDINALITY AS u(x, i)"
        " ORDER BY i", (ratios,))]
