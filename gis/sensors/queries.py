"""The ingest's SQL: the staging table, the one statement that stores a batch and maintains the
rollups and latest rows from what it inserted, the workers' figures, the partitions.

Why one statement: its writable CTEs share one snapshot and `new` (the RETURNING of the
INSERT ... ON CONFLICT DO NOTHING) holds exactly the rows this batch added. An observation
already stored (a redelivery, another worker's copy) is not in `new`, so it is counted nowhere
twice. Rows are inserted and rollups upserted in key order, so two workers' batches that touch
the same datastreams take their row locks in the same order (no deadlock between them).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from gis.rows import scalar

STAGING = "ingest_staging"
STAGING_COLUMNS = ("datastream_id", "phenomenon_time", "phenomenon_time_end", "result",
                   "result_json", "result_time", "feature_of_interest_id", "parameters")

CREATE_STAGING = f"""
CREATE TEMP TABLE IF NOT EXISTS {STAGING} (
    datastream_id bigint NOT NULL, phenomenon_time timestamptz NOT NULL,
    phenomenon_time_end timestamptz, result double precision, result_json jsonb,
    result_time timestamptz, feature_of_interest_id bigint, parameters jsonb
) ON COMMIT DELETE ROWS
"""
COPY_STAGING = f"COPY {STAGING} ({', '.join(STAGING_COLUMNS)}) FROM STDIN"

# The columns every rollup upsert shares: count, sum, min, max, first and last.
_ROLLUP_SELECT = """
    count(*), sum(result), min(result), max(result),
    min(phenomenon_time), (array_agg(result ORDER BY phenomenon_time))[1],
    max(phenomenon_time), (array_agg(result ORDER BY phenomenon_time DESC))[1]
"""
_ROLLUP_UPDATE = """
    n = r.n + excluded.n, sum = r.sum + excluded.sum,
    min = least(r.min, excluded.min), max = greatest(r.max, excluded.max),
    first_time = least(r.first_time, excluded.first_time),
    first_result = CASE WHEN excluded.first_time < r.first_time
                        THEN excluded.first_result ELSE r.first_result END,
    last_time = greatest(r.last_time, excluded.last_time),
    last_result = CASE WHEN excluded.last_time > r.last_time
                       THEN excluded.last_result ELSE r.last_result END
"""

# Store the staged batch: (stored, unknown datastream, congestion announcements) counts and
# the datastreams that got new observations (the live map's event, gis/live.py). Rows
# of a datastream that does not exist are left out (and counted); an observation without a
# feature of interest gets its Thing's current position's.
#
# Road traffic (migration 0024): a road segment's speed datastream (`ds.road_id` set) carries
# its segment and free-flow speed; the latest speed of each segment among the rows inserted,
# when it is fresh (younger than geoioc_traffic_stale_after()) and newer than the segment's
# live state, sets the roads row's speed_ratio, traffic_state (its congestion class, from
# traffic_congestion_classes) and traffic_at: set-based, one UPDATE for the batch. Segments
# whose class changed are announced on channel geoioc_live (kind `congestion`, at most
# CONGESTION_CHUNK segments per NOTIFY, well under the 7,000-byte payload limit), delivered
# at the commit. The class before is read from the statement's snapshot: two batches updating
# the same segment at the same instant may announce a change the other one already made, or
# miss one that comes back to the first class (the state stored is right either way).
# A batch without traffic datastreams pays one primary-key probe of `things` per datastream.
CONGESTION_CHUNK = 200
STORE = f"""
WITH ds AS (
    SELECT d.id, (SELECT l.feature_of_interest_id FROM thing_locations AS l
                   WHERE l.thing_id = d.thing_id ORDER BY l.time DESC LIMIT 1) AS foi,
           t.road_id, coalesce(r.free_flow_speed, r.max_speed) AS free_flow
      FROM datastreams AS d
      LEFT JOIN things AS t ON t.id = d.thing_id AND t.road_id IS NOT NULL
           AND d.observed_property_id = (SELECT p.id FROM observed_properties AS p
                                          WHERE p.code = 'traffic_speed')
      LEFT JOIN roads AS r ON r.id = t.road_id
     WHERE d.id IN (SELECT DISTINCT datastream_id FROM {STAGING})
), new AS (
    INSERT INTO observations AS o (datastream_id, phenomenon_time, phenomenon_time_end, result,
        result_json, result_time, feature_of_interest_id, parameters)
    SELECT s.datastream_id, s.phenomenon_time, s.phenomenon_time_end, s.result, s.result_json,
           s.result_time, coalesce(s.feature_of_interest_id, ds.foi), s.parameters
      FROM {STAGING} AS s JOIN ds ON ds.id = s.datastream_id
     ORDER BY s.datastream_id, s.phenomenon_time
    ON CONFLICT (datastream_id, phenomenon_time) DO NOTHING
    RETURNING o.*
), hourly AS (
    INSERT INTO observation_hourly AS r
    SELECT datastream_id, date_trunc('hour', phenomenon_time, 'UTC'), {_ROLLUP_SELECT}
      FROM new WHERE result IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (datastream_id, bucket) DO UPDATE SET {_ROLLUP_UPDATE}
), daily AS (
    INSERT INTO observation_daily AS r
    SELECT datastream_id, geoioc_vn_day(phenomenon_time), {_ROLLUP_SELECT}
      FROM new WHERE result IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (datastream_id, bucket) DO UPDATE SET {_ROLLUP_UPDATE}
), latest AS (
    INSERT INTO datastream_latest AS r
    SELECT DISTINCT ON (datastream_id) datastream_id, phenomenon_time, result, result_json,
           result_time, feature_of_interest_id,
           min(phenomenon_time) OVER w, max(coalesce(phenomenon_time_end, phenomenon_time)) OVER w,
           min(result_time) OVER w, max(result_time) OVER w, count(*) OVER w, now()
      FROM new WINDOW w AS (PARTITION BY datastream_id)
     ORDER BY datastream_id, phenomenon_time DESC
    ON CONFLICT (datastream_id) DO UPDATE SET
        phenomenon_time = greatest(r.phenomenon_time, excluded.phenomenon_time),
        result = CASE WHEN excluded.phenomenon_time > r.phenomenon_time
                      THEN excluded.result ELSE r.result END,
        result_json = CASE WHEN excluded.phenomenon_time > r.phenomenon_time
                           THEN excluded.result_json ELSE r.result_json END,
        result_time = CASE WHEN excluded.phenomenon_time > r.phenomenon_time
                           THEN excluded.result_time ELSE r.result_time END,
        feature_of_interest_id = CASE WHEN excluded.phenomenon_time > r.phenomenon_time
            THEN excluded.feature_of_interest_id ELSE r.feature_of_interest_id END,
        phenomenon_time_start = least(r.phenomenon_time_start, excluded.phenomenon_time_start),
        phenomenon_time_end = greatest(r.phenomenon_time_end, excluded.phenomenon_time_end),
        result_time_start = least(r.result_time_start, excluded.result_time_start),
        result_time_end = greatest(r.result_time_end, excluded.result_time_end),
        observations = r.observations + excluded.observations,
        updated_at = now()
), speed AS (
    SELECT DISTINCT ON (ds.road_id) ds.road_id, n.phenomenon_time AS at,
           greatest(n.result / ds.free_flow, 0) AS ratio
      FROM new AS n JOIN ds ON ds.id = n.datastream_id
     WHERE ds.road_id IS NOT NULL AND n.result IS NOT NULL
       AND n.phenomenon_time > now() - geoioc_traffic_stale_after()
     ORDER BY ds.road_id, n.phenomenon_time DESC
), congestion AS (
    UPDATE roads AS r SET traffic_state = geoioc_congestion(s.ratio), traffic_at = s.at,
           speed_ratio = round(s.ratio::numeric, 3)::real
      FROM (SELECT speed.*, o.traffic_state AS was FROM speed JOIN roads AS o
                ON o.id = speed.road_id) AS s
     WHERE r.id = s.road_id AND (r.speed_ratio IS NULL OR r.traffic_at IS NULL
                                 OR r.traffic_at < s.at)
    RETURNING r.id, r.traffic_state, r.speed_ratio, s.was
), announced AS (
    SELECT pg_notify('geoioc_live', json_build_object(
               'kind', 'congestion', 'layer', 'roads',
               'segments', json_agg(json_build_array(c.id, c.traffic_state, c.speed_ratio)
                                    ORDER BY c.id))::text)
      FROM (SELECT congestion.*, (row_number() OVER (ORDER BY id) - 1) / {CONGESTION_CHUNK} AS chunk
              FROM congestion WHERE traffic_state IS DISTINCT FROM was) AS c
     GROUP BY c.chunk
)
SELECT (SELECT count(*) FROM new),
       (SELECT count(*) FROM {STAGING} AS s WHERE NOT EXISTS (
            SELECT 1 FROM ds WHERE ds.id = s.datastream_id)),
       (SELECT count(*) FROM announced),
       (SELECT coalesce(array_agg(DISTINCT datastream_id), '{{}}') FROM new)
"""  # noqa: S608 - constants only


def prepare(conn: psycopg.Connection[Any]) -> None:
    """The session's staging table (temporary, emptied at each commit)."""
    conn.execute(CREATE_STAGING)


def attached_months(conn: psycopg.Connection[Any]) -> set[dt.date]:
    """The months `observations` has a partition for."""
    return {r[0] for r in conn.execute(
        "SELECT month FROM observation_partitions WHERE parent = 'observations' AND attached")}


def create_partitions(conn: psycopg.Connection[Any], first: dt.date, last: dt.date) -> list[str]:
    """Create the missing monthly partitions from FIRST's month to LAST's; the names created."""
    return [r[0] for r in conn.execute("SELECT observations_create_partitions(%s, %s)", (first, last))]


def ensure_partitions(conn: psycopg.Connection[Any], ahead: int) -> list[str]:
    return [r[0] for r in conn.execute("SELECT observations_ensure_partitions(%s)", (ahead,))]


def ensure_incident_partitions(conn: psycopg.Connection[Any], ahead: int) -> list[str]:
    """The missing monthly partitions of incidents (migration 0038: Vietnam-time months) from
    the current month to AHEAD months on; the names created."""
    return [r[0] for r in conn.execute("SELECT incidents_ensure_partitions(%s)", (ahead,))]


def detach_incident_partitions(conn: psycopg.Connection[Any], before: dt.date, *,
                               open_too: bool = False) -> list[str]:
    """Archive the incident months (migration 0040: Vietnam-time months) that end on or before
    BEFORE; the tables detached. Their rows leave incidents as a DELETE would (pre-aggregates,
    id guard, links: the triggers run) and stay in the detached tables, what linked to them in
    <table>_<linking table>. A month with open incidents is refused unless OPEN_TOO; BEFORE
    after the current month's first day is refused (psycopg.errors.InvalidParameterValue,
    ObjectNotInPrerequisiteState)."""
    return [r[0] for r in conn.execute("SELECT incidents_detach_partitions(%s, %s)",
                                       (before, open_too))]


def incident_partitions(conn: psycopg.Connection[Any]) -> list[tuple[str, dt.date, bool, int]]:
    """The incidents' monthly partitions, attached or detached: name, month, attached, rows
    (estimate)."""
    return [(str(r[0]), r[1], bool(r[2]), int(r[3])) for r in conn.execute(
        "SELECT name, month, attached, rows_estimate FROM incident_partitions ORDER BY month")]


def detach_partitions(conn: psycopg.Connection[Any], parent: str, before: dt.date) -> list[str]:
    return [r[0] for r in conn.execute("SELECT observations_detach_partitions(%s, %s)",
                                       (parent, before))]


def partitions(conn: psycopg.Connection[Any]) -> list[tuple[str, str, dt.date, bool, int]]:
    return [tuple(r) for r in conn.execute(
        "SELECT name, parent, month, attached, rows_estimate FROM observation_partitions"
        " ORDER BY parent, month")]


def register_worker(conn: psycopg.Connection[Any], worker_id: str, client_id: str, host: str,
                    pid: int) -> None:
    conn.execute("INSERT INTO ingest_workers (worker_id, client_id, host, pid) VALUES (%s, %s, %s, %s)"
                 " ON CONFLICT (worker_id) DO UPDATE SET seen_at = now(), stopped_at = NULL",
                 (worker_id, client_id, host, pid))


def record_batch(conn: psycopg.Connection[Any], worker_id: str, *, messages: int, received: int,
                 stored: int, duplicates: int, reasons: dict[str, int], pending: int,
                 acknowledged: int = 0) -> None:
    """Add one batch's figures to the worker's row (in the batch's transaction). `acknowledged`
    is that of the previous batches: a message is acknowledged after its commit."""
    conn.execute(
        "UPDATE ingest_workers SET messages = messages + %s, received = received + %s,"
        " stored = stored + %s, duplicates = duplicates + %s, rejected = rejected + %s,"
        " rejected_reasons = (SELECT coalesce(jsonb_object_agg(k, v), '{}') FROM ("
        "   SELECT k, sum(v)::bigint AS v FROM (SELECT key AS k, value::bigint AS v FROM"
        "   jsonb_each_text(rejected_reasons) UNION ALL SELECT key, value::bigint FROM"
        "   jsonb_each_text(%s)) AS a GROUP BY k) AS b),"
        " pending = %s, acknowledged = acknowledged + %s, batches = batches + 1,"
        " last_batch_at = now(), seen_at = now() WHERE worker_id = %s",
        (messages, received, stored, duplicates, sum(reasons.values()), Jsonb(reasons), pending,
         acknowledged, worker_id))


def heartbeat(conn: psycopg.Connection[Any], worker_id: str, pending: int, acknowledged: int,
              error: str | None = None, stopped: bool = False) -> None:
    conn.execute(
        "UPDATE ingest_workers SET seen_at = now(), pending = %s,"
        " acknowledged = acknowledged + %s, last_error = coalesce(%s, last_error),"
        " stopped_at = CASE WHEN %s THEN now() END WHERE worker_id = %s",
        (pending, acknowledged, error, stopped, worker_id))


def workers(conn: psycopg.Connection[Any], since: dt.timedelta) -> list[dict[str, Any]]:
    """The workers seen within SINCE (running or stopped), newest first."""
    cur = conn.execute(
        "SELECT worker_id, client_id, host, pid, started_at, seen_at, stopped_at, messages,"
        " acknowledged, received, stored, duplicates, rejected, rejected_reasons, pending,"
        " batches, last_batch_at, last_error FROM ingest_workers"
        " WHERE seen_at > now() - %s ORDER BY started_at DESC", (since,))
    names = [d.name for d in cur.description or ()]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def forget_workers(conn: psycopg.Connection[Any], older_than: dt.timedelta) -> int:
    return int(scalar(conn.execute(
        "WITH d AS (DELETE FROM ingest_workers WHERE seen_at < now() - %s RETURNING 1)"
        " SELECT count(*) FROM d", (older_than,))) or 0)


def simulation_streams(conn: psycopg.Connection[Any]) -> list[tuple[int, str, int, float | None]]:
    """Every datastream for the simulator (gis/sensors/simulate.py): id, observed property's
    code, a station key (probes at one position share the smallest Thing id there; a road
    segment's datastreams share its Thing's id: Things of both kinds draw their ids from one
    sequence, so the keys never collide) and the segment's free-flow speed (its free_flow_speed,
    or its speed limit) for a road segment's datastreams."""
    return [(int(r[0]), str(r[1]), int(r[2]), None if r[3] is None else float(r[3]))
            for r in conn.execute(
        "SELECT d.id, p.code,"
        " CASE WHEN s.id IS NOT NULL THEN min(d.thing_id) OVER (PARTITION BY ST_AsBinary(s.geom))"
        "      ELSE d.thing_id END,"
        " coalesce(r.free_flow_speed, r.max_speed)::float8"
        " FROM datastreams d JOIN observed_properties p ON p.id = d.observed_property_id"
        " JOIN things t ON t.id = d.thing_id"
        " LEFT JOIN sensors s ON s.id = t.sensor_id"
        " LEFT JOIN roads r ON r.id = t.road_id"
        " ORDER BY d.id")]


def ingest_running(conn: psycopg.Connection[Any], within: dt.timedelta) -> bool:
    """Whether an ingest worker is running (seen within WITHIN, not stopped): the simulator
    started beside a server waits for it, so its first messages find a subscriber."""
    return bool(scalar(conn.execute(
        "SELECT EXISTS (SELECT 1 FROM ingest_workers WHERE stopped_at IS NULL"
        " AND seen_at > now() - %s)", (within,))))
