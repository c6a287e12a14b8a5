"""Issue 18's province at scale, generated reproducibly in SQL: 10,000,000 incidents over five
years (of which 1,000,000 citizen reports over the last year, with their Open311 request,
reporter and workflow history), 1,000,000 parcels and 100,000,000 observations over a year.

    .venv/bin/python bench/scale.py --check            # the plan and the disk it needs, nothing written
    .venv/bin/python bench/scale.py --fraction 0.01    # 1 % of everything (about 2.5 minutes here)
    nice -n 10 .venv/bin/python bench/scale.py         # full scale (see bench/README.md for how long)

Disk first: the space the load needs is estimated from bytes per row measured on this schema
(heap, indexes and TOAST of each table after the load, BYTES_PER_ROW) plus room for WAL and
sorts, compared with the free space of PostgreSQL's data directory (shutil.disk_usage of
`SHOW data_directory`, or of the default tablespace's location when it has one); the script
refuses to start when it does not fit.

The base: the database is created like scripts/setup.sh's, migrated, and the sample province
loaded at --base-scale (communes, roads, land use, agencies, service categories: the geography
and the reference data; its incidents are the templates below). Then, every table loaded by
set-based INSERT ... SELECT over generate_series in chunks (no Python row loop), each value a
hash of (--seed, row number, purpose) (hashint8extended), so the same parameters give the same
rows on any machine:

- parcels: the sample's parcels are replaced by a grid of square parcels over every commune
  (a cell belongs to the commune holding its centre), side chosen from the communes' area so the
  count is about the target; land use drawn from the sample's own distribution of first codes,
  land users named like the sample (gis/sample/names.py), area from the geometry.
- incidents: the sample's incidents (not reports) are the templates: each new one copies a
  template's category, severity, source, title and commune, its position moved by up to
  ~200 m, on a day of the five years before the sample's date (in day order, as arrival leaves
  the heap) at the template's time of day; older than 30 days: resolved or closed.
- citizen reports: a service of the catalogue and a commune (routed to its agency as
  bench/transparency.py does), a point near the commune's centre, the SLA deadline, and a
  workflow path (received, verified, assigned, in progress, resolved, closed; 8 % rejected)
  played up to the sample's date: one incident_transitions row per move, answered_at/answer
  from the first answer, the request (token, address) and the reporter.
- observations: the stations, datastreams and readings of bench/observations_50m.py (its SQL,
  one datastream per 100,000 observations: one reading every 5.3 minutes over the year), then
  the hourly and daily rollups and datastream_latest built set-based as the ingest leaves them.

Foreign-key and row triggers are skipped during the bulk inserts (session_replication_role =
replica as the superuser, as bench/observations_50m.py; that skips the statement triggers that
keep the incident pre-aggregates too, so those are counted anew after the incidents and
reports, `incident_aggregates_rebuild()` of migration 0037, and so is the incidents' id guard,
`incident_ids_rebuild()` of migration 0038): the values are valid by construction
(land-use codes from the code list, ids just made), and the first-answer trigger's columns are
written directly. Each table is VACUUM ANALYZEd. The rows, seconds, rows per second and bytes
per row of each step are printed, kept in `bench_scale_build`, and (unless --no-readme) written
to bench/README.md with the projection for the full scale.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import Progress  # noqa: E402

from bench import benchdb  # noqa: E402
from bench import observations_50m as obs  # noqa: E402
from gis.sample import names  # noqa: E402

console = Console()
README = ROOT / "bench" / "README.md"

FULL = {"incidents": 9_000_000, "reports": 1_000_000, "parcels": 1_000_000,
        "observations": 100_000_000}
# Steps that count rows loaded by others: their full-scale rows (the incidents they count).
AGGREGATED = {"incident pre-aggregates": FULL["incidents"] + FULL["reports"]}
OBSERVATIONS_PER_DATASTREAM = 100_000  # one reading every 5.3 minutes over the year
YEARS = 5
CHUNK = 250_000  # rows per statement: the progress bars move, no statement holds minutes of work

# Bytes on disk per generated row (heap + indexes + TOAST, after VACUUM ANALYZE), measured by
# this script at --fraction 0.01 (bench/README.md), rounded up by a quarter. A report counts
# its incident row, request, reporter and transitions; an observation its share of the rollups.
BYTES_PER_ROW = {"incidents": 450, "reports": 2_050, "parcels": 1_900, "observations": 150}
WAL_AND_SORT_ROOM = 6 << 30  # WAL segments (max_wal_size), sorts' temporary files, VACUUM

STATUS_PATH = ["received", "verified", "assigned", "in_progress", "resolved", "closed"]
REJECT_PATH = ["received", "verified", "rejected", "closed"]


@dataclass
class Step:
    name: str
    rows: int = 0
    seconds: float = 0.0
    bytes: int = 0
    tables: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def targets(fraction: float) -> dict[str, int]:
    return {k: max(1, round(v * fraction)) for k, v in FULL.items()}


def disk_needed(t: dict[str, int]) -> int:
    return sum(BYTES_PER_ROW[k] * n for k, n in t.items()) + WAL_AND_SORT_ROOM


def data_directory() -> Path:
    """Where the tables land: the default tablespace's location, else the data directory."""
    loc = benchdb.superuser_psql(
        "postgres", "SELECT pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname ="
        " coalesce(nullif(current_setting('default_tablespace'), ''), 'pg_default')").strip()
    return Path(loc or benchdb.superuser_psql("postgres", "SHOW data_directory").strip())


def gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def su_connect(database: str) -> psycopg.Connection[Any]:
    conn = obs.su_connect(database)
    conn.execute("SET work_mem = '256MB'")
    conn.execute("SET maintenance_work_mem = '512MB'")
    # The generators' cost estimates are huge (nested generate_series): with JIT on, each
    # statement spent 3 s compiling, 97 % of a small run's parcels step.
    conn.execute("SET jit = off")
    return conn


@contextmanager
def timed(step: Step) -> Iterator[None]:
    t0 = time.monotonic()
    yield
    step.seconds += time.monotonic() - t0


def chunks(total: int, size: int = CHUNK) -> Iterator[tuple[int, int]]:
    """1-based inclusive ranges covering 1..total."""
    for lo in range(1, total + 1, size):
        yield lo, min(total, lo + size - 1)


# A uniform number in [0, 1) from (row, purpose), the seed written into the body (an integer)
# so that the function stays immutable and is inlined.
HASH_FUNCTION = """
CREATE FUNCTION pg_temp.u(i bigint, purpose integer) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT (hashint8extended(i, {seed}::bigint * 1000 + purpose) & 2147483647) / 2147483648.0 $$
"""


def prepare(database: str, base_scale: float) -> None:
    """Create, migrate and load the sample at BASE_SCALE, and keep what the generators copy from
    it (incident templates, land-use shares) in tables of their own: a second run replaces the
    incidents and parcels, so it must not take the first run's output for the sample."""
    benchdb.create_database(database, log=console.print)
    from gis import migrate

    url = benchdb.db_url(database)
    migrate.upgrade("head", url=url)
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT scale FROM sample_info").fetchone()
        kept = conn.execute("SELECT to_regclass('bench_templates') IS NOT NULL").fetchone()
    if row is not None and math.isclose(row[0], base_scale) and kept == (True,):
        return
    console.print(f"loading the sample province at scale {base_scale:g} (the base)")
    cli = [sys.executable, "-c", "from gis.cli import main; main()"]
    benchdb.run([*cli, "sample", "load", "--scale", str(base_scale),
                 *(["--replace"] if row else [])],
                env={"GEOIOC_DATABASE_URL": url, "PYTHONPATH": str(ROOT)})
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_templates, bench_parcel_uses")
        conn.execute(TEMPLATES)
        conn.execute(PARCEL_USES)


PARCEL_CELLS = """
CREATE TABLE bench_parcel_communes AS
SELECT row_number() OVER (ORDER BY code) AS n, code, geom,
       ST_XMin(geom) AS x0, ST_YMin(geom) AS y0, ST_XMax(geom) AS x1, ST_YMax(geom) AS y1
  FROM admin_units WHERE level = 'commune' AND valid_to IS NULL
"""
# First land-use code of the sample's parcels, with cumulative shares (the draw's table).
PARCEL_USES = """
CREATE TABLE bench_parcel_uses AS
SELECT code, sum(n) OVER (ORDER BY n DESC, code) / sum(n) OVER () AS upto
  FROM (SELECT land_use_codes[1] AS code, count(*) AS n FROM parcels GROUP BY 1) s
 WHERE code IN (SELECT code FROM land_use_codes WHERE valid_to IS NULL)
"""
PARCELS = """
INSERT INTO parcels (commune_code, sheet_no, parcel_no, land_use_codes, legal_area, land_user,
                     land_user_id, certificate_no, origin, geom)
SELECT c.code, 1 + g.k / 1000, 1 + g.k %% 1000,
       ARRAY[(SELECT u.code FROM bench_parcel_uses u WHERE u.upto >= pg_temp.u(g.h, 11)
               ORDER BY u.upto LIMIT 1)],
       round(ST_Area(g.cell::geography)::numeric, 1),
       (%(family)s::text[])[1 + floor(pg_temp.u(g.h, 12) * %(nf)s)::int] || ' '
         || (%(middle)s::text[])[1 + floor(pg_temp.u(g.h, 13) * %(nm)s)::int] || ' '
         || (%(given)s::text[])[1 + floor(pg_temp.u(g.h, 14) * %(ng)s)::int],
       lpad((floor(pg_temp.u(g.h, 15) * 1e12))::bigint::text, 12, '0'),
       'CS' || lpad((g.h %% 10000000)::text, 7, '0'),
       (ARRAY['allocation', 'lease', 'recognition', 'transfer'])[1 + floor(pg_temp.u(g.h, 16) * 4)::int],
       ST_Multi(g.cell)
  FROM bench_parcel_communes c
 CROSS JOIN LATERAL (
       SELECT ix * ny + iy AS k, c.n * 100000000 + ix * ny + iy AS h,
              ST_MakeEnvelope(c.x0 + ix * %(dx)s, c.y0 + iy * %(dy)s, c.x0 + (ix + 1) * %(dx)s,
                              c.y0 + (iy + 1) * %(dy)s, 4326) AS cell
         FROM (SELECT ceil((c.x1 - c.x0) / %(dx)s)::int AS nx,
                      ceil((c.y1 - c.y0) / %(dy)s)::int AS ny) d,
              generate_series(0, d.nx - 1) AS ix, generate_series(0, d.ny - 1) AS iy
        WHERE ST_Intersects(c.geom, ST_Point(c.x0 + (ix + 0.5) * %(dx)s,
                                             c.y0 + (iy + 0.5) * %(dy)s, 4326))) g
 WHERE c.n BETWEEN %(n0)s AND %(n1)s
 ORDER BY c.n, g.k
"""


def load_parcels(su: psycopg.Connection[Any], bar: Progress, n: int) -> Step:
    step = Step("parcels", tables=["parcels"])
    with timed(step):
        su.execute("DROP TABLE IF EXISTS bench_parcel_communes")
        su.execute(PARCEL_CELLS)
        su.execute("TRUNCATE parcels, parcel_history RESTART IDENTITY")
        area, lat, communes = su.execute(
            "SELECT sum(ST_Area(geom::geography)), avg(ST_Y(ST_Centroid(geom))), count(*)"
            " FROM bench_parcel_communes").fetchone()  # type: ignore[misc]
        side = math.sqrt(area / n)  # metres
        dy = side / 111_320
        dx = side / (111_320 * math.cos(math.radians(lat)))
        task = bar.add_task(f"parcels (grid of {side:.0f} m cells)", total=communes)
        params = {"dx": dx, "dy": dy, "family": list(names.FAMILY_NAMES),
                  "nf": len(names.FAMILY_NAMES), "middle": list(names.MIDDLE_MALE + names.MIDDLE_FEMALE),
                  "nm": len(names.MIDDLE_MALE) * 2, "given": list(names.GIVEN_MALE + names.GIVEN_FEMALE),
                  "ng": len(names.GIVEN_MALE) + len(names.GIVEN_FEMALE)}
        for n0 in range(1, communes + 1, 4):
            with su.transaction():
                step.rows += su.execute(PARCELS, {**params, "n0": n0, "n1": n0 + 3}).rowcount
            bar.update(task, completed=min(communes, n0 + 3))
        su.execute("DROP TABLE bench_parcel_communes")
    return step


TEMPLATES = """
CREATE TABLE bench_templates AS
SELECT row_number() OVER (ORDER BY id) - 1 AS k, category, severity, source, title, commune_code,
       geom, reported_at - date_trunc('day', reported_at) AS tod
  FROM incidents WHERE service_code IS NULL
"""
INCIDENTS = """
INSERT INTO incidents (category, severity, status, source, title, commune_code, reported_at,
                       resolved_at, geom, updated_at)
SELECT t.category, t.severity, x.status, t.source, t.title, t.commune_code, x.at,
       CASE WHEN x.status IN ('resolved', 'closed')
            THEN x.at + (1 + pg_temp.u(g.i, 4) * 71) * interval '1 hour' END,
       ST_SetSRID(ST_MakePoint(ST_X(t.geom) + (pg_temp.u(g.i, 5) - 0.5) * 0.004,
                               ST_Y(t.geom) + (pg_temp.u(g.i, 6) - 0.5) * 0.004), 4326),
       x.at
  FROM generate_series(%(i0)s::bigint, %(i1)s::bigint) AS g(i)
  JOIN bench_templates t ON t.k = floor(pg_temp.u(g.i, 1) * %(templates)s)::bigint
 CROSS JOIN LATERAL (
       SELECT a.at,
              CASE WHEN a.at < %(end)s::timestamptz - interval '30 days'
                   THEN (ARRAY['resolved', 'closed'])[1 + floor(pg_temp.u(g.i, 3) * 2)::int]
                   ELSE (ARRAY['received', 'verified', 'assigned', 'in_progress', 'resolved'])
                        [1 + floor(pg_temp.u(g.i, 3) * 5)::int] END AS status
         FROM (SELECT least(%(start)s::timestamptz + ((g.i - 1) * %(days)s / %(n)s) * interval '1 day'
                            + t.tod, %(end)s::timestamptz - interval '1 second') AS at) a) x
 ORDER BY g.i
"""


def load_incidents(su: psycopg.Connection[Any], bar: Progress, n: int, end: dt.datetime) -> Step:
    step = Step("incidents", tables=["incidents"])
    with timed(step):
        templates = su.execute("SELECT count(*) FROM bench_templates").fetchone()[0]  # type: ignore[index]
        # Everything that refers to incidents goes with them (sensor alerts, detections, the
        # sample's reports): the reports are generated next.
        # The tables linked to incidents are named: since migration 0038 the links are triggers,
        # not foreign keys, so CASCADE no longer finds them (and no trigger runs here). The id
        # guard incident_ids is refilled by rebuild_aggregates (incident_ids_rebuild).
        su.execute("TRUNCATE incidents, incident_transitions, incident_requests,"
                   " incident_reporters, report_photos, sensor_alerts, camera_detections"
                   " RESTART IDENTITY CASCADE")
        start = end - dt.timedelta(days=365 * YEARS + 1)
        # Every month of the five years gets its partition before the load (migration 0038),
        # rather than filling the DEFAULT one.
        su.execute("SELECT incidents_create_partitions(%s, %s)", (start.date(), end.date()))
        task = bar.add_task("incidents (five years, in day order)", total=n)
        for i0, i1 in chunks(n):
            with su.transaction():
                step.rows += su.execute(INCIDENTS, {"i0": i0, "i1": i1, "templates": templates,
                                                    "start": start, "end": end, "n": n,
                                                    "days": 365 * YEARS + 1}).rowcount
            bar.update(task, completed=i1)
    return step


# Routing as the workflow does it (gis/reports/queries.ROUTE), once per service and commune
# (the query of bench/transparency.py).
REPORT_SETUP = """
CREATE TABLE bench_communes AS
    SELECT row_number() OVER (ORDER BY code) - 1 AS n, code, ST_PointOnSurface(geom) AS p
    FROM admin_units WHERE level = 'commune' AND valid_to IS NULL;
CREATE TABLE bench_services AS
    SELECT row_number() OVER (ORDER BY code) - 1 AS n, code, incident_category, severity,
           sla_hours, agency_code, name_vi FROM service_categories WHERE active;
CREATE TABLE bench_routes AS
    SELECT s.code AS service, c.code AS commune,
           COALESCE((SELECT a.code FROM agencies a WHERE s.code = ANY (a.categories)
                     AND (a.communes IS NULL OR c.code = ANY (a.communes))
                     ORDER BY a.communes IS NULL, cardinality(a.communes), a.code LIMIT 1),
                    s.agency_code) AS agency
    FROM bench_services s CROSS JOIN bench_communes c;
"""
# One row per report: where, what, the path and the hours (from received) of each move, and how
# many of the moves happened before the sample's date.
REPORT_ROWS = """
INSERT INTO bench_reports
SELECT x.i, x.at, x.commune, x.p, x.service, x.incident_category, x.severity, x.service_name,
       x.agency, geoioc_sla_deadline(x.at, x.sla_hours), x.path, x.hours,
       (SELECT count(*) FROM unnest(x.hours) AS h WHERE x.at + h * interval '1 hour' < %(end)s)
  FROM (SELECT g.i, %(end)s::timestamptz - interval '365 days'
                    + ((g.i - 1) * 364.5 / %(n)s + pg_temp.u(g.i, 21) / 2) * interval '1 day' AS at,
               c.code AS commune,
               ST_SetSRID(ST_MakePoint(ST_X(c.p) + (pg_temp.u(g.i, 22) - 0.5) * 0.01,
                                       ST_Y(c.p) + (pg_temp.u(g.i, 23) - 0.5) * 0.01), 4326) AS p,
               s.code AS service, s.incident_category, s.severity, s.name_vi AS service_name,
               s.sla_hours, r.agency,
               CASE WHEN pg_temp.u(g.i, 24) < 0.08 THEN %(reject)s::text[] ELSE %(path)s::text[]
               END AS path,
               CASE WHEN pg_temp.u(g.i, 24) < 0.08
                    THEN ARRAY[0, 0.5 + pg_temp.u(g.i, 25) * 2, 3 + pg_temp.u(g.i, 26) * 20,
                               30 + pg_temp.u(g.i, 27) * 48]
                    ELSE ARRAY[0, 0.5 + pg_temp.u(g.i, 25) * 2, 3 + pg_temp.u(g.i, 26) * 4,
                               8 + pg_temp.u(g.i, 28) * 16,
                               24 + s.sla_hours * exp(ln(0.5) + 0.8 * (pg_temp.u(g.i, 29)
                                                                     + pg_temp.u(g.i, 30) - 1)),
                               0]
               END AS hours
          FROM generate_series(%(i0)s::bigint, %(i1)s::bigint) AS g(i)
          JOIN bench_communes c ON c.n = floor(pg_temp.u(g.i, 31) * %(communes)s)::bigint
          JOIN bench_services s ON s.n = floor(pg_temp.u(g.i, 32) * %(services)s)::bigint
          JOIN bench_routes r ON r.service = s.code AND r.commune = c.code) x
"""
# The closing move of the resolved path comes 1 to 3 days after the answer.
REPORT_CLOSE = """
UPDATE bench_reports SET hours[6] = hours[5] + 24 + pg_temp.u(i, 33) * 48,
       played = (SELECT count(*) FROM unnest(hours[1:5] || (hours[5] + 24 + pg_temp.u(i, 33) * 48))
                  AS h WHERE at + h * interval '1 hour' < %(end)s)
 WHERE cardinality(path) = 6 AND i BETWEEN %(i0)s AND %(i1)s
"""
REPORT_INCIDENTS = """
INSERT INTO incidents (id, category, severity, status, source, title, commune_code, reported_at,
    resolved_at, geom, service_code, agency_code, expected_at, updated_at, answered_at, answer)
OVERRIDING SYSTEM VALUE
SELECT %(base)s + r.i, r.category, r.severity, r.path[r.played], 'citizen_app', r.service_name,
       r.commune, r.at, a.at, r.p, r.service,
       CASE WHEN r.played >= 3 THEN r.agency END, r.due,
       r.at + r.hours[r.played] * interval '1 hour', a.at, a.answer
  FROM bench_reports r
  LEFT JOIN LATERAL (
       SELECT r.at + r.hours[j] * interval '1 hour' AS at, r.path[j] AS answer
         FROM generate_series(1, r.played) AS j
        WHERE r.path[j] IN ('resolved', 'rejected') LIMIT 1) a ON true
 WHERE r.i BETWEEN %(i0)s AND %(i1)s
 ORDER BY r.i
"""
REPORT_TRANSITIONS = """
INSERT INTO incident_transitions (incident_id, at, actor, kind, from_status, to_status,
                                  agency_code, note)
SELECT %(base)s + r.i, r.at + r.hours[j] * interval '1 hour',
       CASE WHEN j = 1 THEN 'citizen' ELSE 'dieuhanh0' || (1 + r.i %% 3) END, 'status',
       CASE WHEN j > 1 THEN r.path[j - 1] END, r.path[j],
       CASE WHEN r.path[j] = 'assigned' THEN r.agency END,
       CASE WHEN r.path[j] IN ('resolved', 'rejected') THEN 'Đã xử lý theo quy định.' END
  FROM bench_reports r, generate_series(1, r.played) AS j
 WHERE r.i BETWEEN %(i0)s AND %(i1)s
 ORDER BY r.i, j
"""
REPORT_REQUESTS = """
INSERT INTO incident_requests (incident_id, token, address, attributes)
SELECT %(base)s + r.i, 'r' || to_hex(hashint8extended(r.i, %(seed)s)) || '-' || r.i,
       'Số ' || (1 + r.i %% 300) || ', xã ' || r.commune, '{}'::jsonb
  FROM bench_reports r WHERE r.i BETWEEN %(i0)s AND %(i1)s ORDER BY r.i
"""
REPORT_REPORTERS = """
INSERT INTO incident_reporters (incident_id, first_name, last_name, phone, device_id)
SELECT %(base)s + r.i,
       (%(given)s::text[])[1 + floor(pg_temp.u(r.i, 41) * %(ng)s)::int],
       (%(family)s::text[])[1 + floor(pg_temp.u(r.i, 42) * %(nf)s)::int],
       '09' || lpad(floor(pg_temp.u(r.i, 43) * 1e8)::bigint::text, 8, '0'),
       'dev-' || to_hex(hashint8extended(r.i, %(seed)s + 1))
  FROM bench_reports r WHERE r.i BETWEEN %(i0)s AND %(i1)s ORDER BY r.i
"""


def load_reports(su: psycopg.Connection[Any], bar: Progress, n: int, end: dt.datetime,
                 seed: int) -> Step:
    step = Step("reports", tables=["incident_transitions", "incident_requests",
                                   "incident_reporters"])
    with timed(step):
        su.execute("DROP TABLE IF EXISTS bench_communes, bench_services, bench_routes, bench_reports")
        for statement in REPORT_SETUP.split(";\n"):
            if statement.strip():
                su.execute(statement)
        su.execute("CREATE TABLE bench_reports (i bigint PRIMARY KEY, at timestamptz, commune text,"
                   " p geometry, service text, category text, severity smallint, service_name text,"
                   " agency text, due timestamptz, path text[], hours float8[], played integer)")
        communes = su.execute("SELECT count(*) FROM bench_communes").fetchone()[0]  # type: ignore[index]
        services = su.execute("SELECT count(*) FROM bench_services").fetchone()[0]  # type: ignore[index]
        base = su.execute("SELECT coalesce(max(id), 0) FROM incidents").fetchone()[0]  # type: ignore[index]
        common = {"end": end, "n": n, "seed": seed, "base": base, "communes": communes,
                  "services": services, "path": STATUS_PATH, "reject": REJECT_PATH,
                  "family": list(names.FAMILY_NAMES), "nf": len(names.FAMILY_NAMES),
                  "given": list(names.GIVEN_MALE + names.GIVEN_FEMALE),
                  "ng": len(names.GIVEN_MALE) + len(names.GIVEN_FEMALE)}
        task = bar.add_task("citizen reports, their requests, reporters and moves", total=n)
        moves = 0
        for i0, i1 in chunks(n, CHUNK // 5):
            p = {**common, "i0": i0, "i1": i1}
            with su.transaction():
                su.execute(REPORT_ROWS, p)
                su.execute(REPORT_CLOSE, p)
                step.rows += su.execute(REPORT_INCIDENTS, p).rowcount
                moves += su.execute(REPORT_TRANSITIONS, p).rowcount
                su.execute(REPORT_REQUESTS, p)
                su.execute(REPORT_REPORTERS, p)
            bar.update(task, completed=i1)
        seq = su.execute("SELECT pg_get_serial_sequence('incidents', 'id')").fetchone()[0]  # type: ignore[index]
        su.execute("SELECT setval(%s, (SELECT max(id) FROM incidents))", (seq,))
        su.execute("DROP TABLE bench_communes, bench_services, bench_routes, bench_reports")
    console.print(f"  {moves:,} workflow moves ({moves / max(step.rows, 1):.1f} per report)")
    return step


STREAMS = """
CREATE TABLE bench_streams AS
SELECT d.id AS ds, row_number() OVER (ORDER BY d.id) - 1 AS k, l.feature_of_interest_id AS foi,
       0::bigint AS n, 0::bigint AS phase_ms, 0::float8 AS base
  FROM datastreams d JOIN sensors s ON s.id = d.thing_id
  JOIN thing_locations l ON l.thing_id = d.thing_id
 WHERE s.code ~ '^(AIR|WAT)-[0-9]{6}$'
"""


def rebuild_aggregates(su: psycopg.Connection[Any], bar: Progress) -> Step:
    """The incident pre-aggregates counted anew: the loads above ran with every trigger off
    (session_replication_role = replica), theirs included (migration 0037's function)."""
    step = Step("incident pre-aggregates",
                tables=["incident_cell_days", "incident_days", "incident_heat_months",
                        "incident_hex_months", "incident_heat_years", "incident_cell_months"])
    task = bar.add_task("incident pre-aggregates (counted anew)", total=1)
    with timed(step):
        su.execute("SELECT incident_aggregates_rebuild()")
        su.execute("SELECT incident_ids_rebuild()")  # the id guard of migration 0038, likewise
        # Rows here are the incidents counted (the rate is per incident, as the projection needs).
        row = su.execute("SELECT count(*) FROM incidents").fetchone()
        step.rows = int(row[0]) if row else 0
    bar.update(task, completed=1)
    return step


def load_observations(url: str, su: psycopg.Connection[Any], bar: Progress, rows: int,
                      seed: int) -> Step:
    """bench/observations_50m.py's stations and readings, without its flat copy."""
    step = Step("observations", tables=["observations", "observation_hourly", "observation_daily",
                                        "datastream_latest"])
    p = obs.Params(rows=rows, datastreams=max(10, round(rows / OBSERVATIONS_PER_DATASTREAM)),
                   seed=seed)
    with timed(step):
        su.execute("TRUNCATE observations, observation_hourly, observation_daily, datastream_latest")
        with psycopg.connect(url, autocommit=True) as conn:  # the sensors trigger must run
            conn.execute("DELETE FROM sensors WHERE code ~ '^(AIR|WAT)-[0-9]{6}$'")
            cols: dict[str, list[Any]] = {k: [] for k in ("params", "kinds", "units", "thresholds",
                                                          "lo", "hi")}
            lo = 0.0
            for code, kind, share, _ in obs.PARAMETERS:
                unit = conn.execute("SELECT default_unit ->> 'symbol' FROM observed_properties"
                                    " WHERE code = %s", (code,)).fetchone()
                cols["params"].append(code)
                cols["kinds"].append(kind)
                cols["units"].append(unit[0] if unit else "")
                cols["thresholds"].append(50.0)
                cols["lo"].append(lo)
                cols["hi"].append(min(lo + share, 1.0) if code != obs.PARAMETERS[-1][0] else 1.0)
                lo += share
            conn.execute(obs.STATIONS, {"seed": p.seed, "n": p.datastreams, **cols})
        su.execute("DROP TABLE IF EXISTS bench_streams")
        su.execute(STREAMS)
        base = {code: v for code, _, _, v in obs.PARAMETERS}
        per = p.rows // p.datastreams
        su.execute(
            "UPDATE bench_streams b SET n = %s + (b.k < %s)::int,"
            " phase_ms = (hashint8extended(b.k, %s) & 2147483647) %% %s,"
            " base = (%s::jsonb ->> (SELECT o.code FROM datastreams d JOIN observed_properties o"
            "   ON o.id = d.observed_property_id WHERE d.id = b.ds))::float8",
            (per, p.rows - per * p.datastreams, p.seed + 7, p.step_ms, json.dumps(base)))
        su.execute("SELECT observations_create_partitions(%s::date, %s::date)", (obs.START, obs.END))
        task = bar.add_task(f"observations ({p.datastreams:,} datastreams, one reading every"
                            f" {p.step_ms / 60000:.1f} min)", total=p.rows)
        chunk = max(1, CHUNK * 4 // p.datastreams)
        for i0 in range(0, p.per_stream, chunk):
            i1 = min(p.per_stream, i0 + chunk) - 1
            with su.transaction():
                step.rows += su.execute(obs.GENERATE, {"seed": p.seed, "i0": i0, "i1": i1,
                                                       "start": obs.START,
                                                       "step_ms": p.step_ms}).rowcount
            bar.update(task, completed=step.rows)
        parts = [r[0] for r in su.execute(
            "SELECT name FROM observation_partitions WHERE parent = 'observations' AND attached"
            " ORDER BY month")]
        su.execute("DROP TABLE IF EXISTS bench_latest_parts")
        su.execute("CREATE TABLE bench_latest_parts (datastream_id bigint, n bigint,"
                   " t0 timestamptz, t1 timestamptz, r0 timestamptz, r1 timestamptz)")
        task = bar.add_task("hourly rollups and latest rows, per month", total=len(parts) + 2)
        for part in parts:
            with su.transaction():
                ident = sql.Identifier(part)
                su.execute(sql.SQL(obs.HOURLY).format(part=ident))
                su.execute(sql.SQL(obs.LATEST_PARTS).format(part=ident))
            bar.advance(task)
        su.execute(obs.DAILY)
        bar.advance(task)
        su.execute(obs.LATEST)
        bar.advance(task)
        su.execute("DROP TABLE bench_latest_parts, bench_streams")
    return step


def vacuum(su: psycopg.Connection[Any], bar: Progress, steps: list[Step]) -> None:
    tables = [t for s in steps for t in s.tables]
    task = bar.add_task("VACUUM ANALYZE", total=len(tables))
    for t in tables:
        su.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(t)))
        bar.advance(task)


def measure(su: psycopg.Connection[Any], steps: list[Step]) -> None:
    """Bytes on disk of each step's tables (with indexes and TOAST; partitions included).
    The incident rows of the reports are counted with the incidents, by share of rows."""
    def size(table: str) -> int:
        return su.execute(  # type: ignore[no-any-return]
            "SELECT CASE WHEN c.relkind = 'p' THEN (SELECT sum(pg_total_relation_size(relid))"
            " FROM pg_partition_tree(c.oid)) ELSE pg_total_relation_size(c.oid) END::bigint"
            " FROM pg_class c WHERE c.oid = %s::regclass", (table,)).fetchone()[0]  # type: ignore[index]

    by = {s.name: s for s in steps}
    for s in steps:
        s.bytes = sum(size(t) for t in s.tables)
    if "incidents" in by and "reports" in by:
        inc, rep = by["incidents"], by["reports"]
        per = inc.bytes / (inc.rows + rep.rows)
        rep.bytes += round(per * rep.rows)
        inc.bytes -= round(per * rep.rows)


def report(steps: list[Step], args: argparse.Namespace, total_s: float, free: int,
           load: tuple[float, float]) -> str:
    full_need = disk_needed(targets(1.0))
    lines = [
        f"Run of {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC: `bench/scale.py --fraction "
        f"{args.fraction:g} --seed {args.seed}` (base: the sample at scale {args.base_scale:g}),"
        f" {total_s:.0f} s in all.",
        "",
        f"Machine: {os.cpu_count()} CPUs, Linux {platform.release()}, PostgreSQL "
        f"{benchdb.superuser_psql('postgres', 'SHOW server_version').strip()}; shared with"
        f" other sessions' work: load average {load[0]:.1f} before the run, {load[1]:.1f} after.",
        "",
        "| step | rows | seconds | rows/s | bytes/row on disk | full scale rows | projected time"
        " | projected disk |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    total_time = total_disk = 0.0
    for s in steps:
        full = FULL.get(s.name) or AGGREGATED[s.name]
        bpr = s.bytes / s.rows if s.rows else 0
        ptime = full / s.rate if s.rate else 0
        total_time += ptime
        total_disk += bpr * full
        lines.append(f"| {s.name} | {s.rows:,} | {s.seconds:.1f} | {s.rate:,.0f} | {bpr:,.0f} |"
                     f" {full:,} | {ptime / 60:,.0f} min | {gib(bpr * full)} |")
    lines += [
        f"| **all** | {sum(s.rows for s in steps if s.name in FULL):,} |"
        f" {sum(s.seconds for s in steps):.1f} | | |"
        f" {sum(FULL.values()):,} | **{total_time / 3600:.1f} h** | **{gib(total_disk)}** |",
        "",
        "Projected time: full-scale rows at the rate measured here (fixed costs of a step, such"
        " as routing tables, count as if they grew with the rows; a bigger index costs a little"
        " more per row: read it as the order of magnitude). Projected disk: full-scale rows at"
        " the bytes per row measured here (heap, indexes, TOAST, partitions; a report counts"
        " its incident row, request, reporter and moves; an observation its share of the"
        " rollups).",
        "",
        f"The script's own estimate for the full scale (BYTES_PER_ROW + WAL room): {gib(full_need)};"
        f" free where PostgreSQL keeps its data at the time of the run: {gib(free)}.",
    ]
    return "\n".join(lines)


def write_readme(body: str) -> None:
    start, end = "<!-- bench-scale:start -->", "<!-- bench-scale:end -->"
    text = README.read_text(encoding="utf-8")
    block = f"{start}\n{body.rstrip()}\n{end}"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        text = before + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n## `bench/scale.py`: the province at scale (issue 18)\n\n" + block + "\n"
    README.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--database", default="geoioc_bench_scale")
    ap.add_argument("--fraction", type=float, default=1.0,
                    help="share of the full scale (0.01: 100,000 incidents, 1,000,000 observations)")
    ap.add_argument("--seed", type=int, default=18)
    ap.add_argument("--base-scale", type=float, default=0.2,
                    help="scale of the sample province loaded first (geography, templates)")
    ap.add_argument("--only", nargs="*", choices=["parcels", "incidents", "observations"],
                    help="load only these (reports go with incidents)")
    ap.add_argument("--check", action="store_true", help="print the plan and the disk, load nothing")
    ap.add_argument("--no-readme", action="store_true")
    ap.add_argument("--niceness", type=int, default=10)
    args = ap.parse_args(argv)
    if not 0 < args.fraction <= 1:
        raise SystemExit("bench: --fraction must be in (0, 1]")
    t = targets(args.fraction)
    need = disk_needed(t)
    where = data_directory()
    free = shutil.disk_usage(where).free
    console.print("plan: " + ", ".join(f"{n:,} {k}" for k, n in t.items()))
    console.print(f"disk: the load needs about {gib(need)} (of which {gib(WAL_AND_SORT_ROOM)} for"
                  f" WAL and sorts); {gib(free)} free in {where}")
    if free < need:
        raise SystemExit(f"bench: not enough disk: {gib(need)} needed, {gib(free)} free in {where}"
                         " (try a smaller --fraction)")
    if args.check:
        return
    t0 = time.monotonic()
    load_before = os.getloadavg()[0]
    prepare(args.database, args.base_scale)
    url = benchdb.db_url(args.database)
    only = set(args.only or ["parcels", "incidents", "observations"])
    with psycopg.connect(url, autocommit=True) as conn:
        as_of = conn.execute("SELECT as_of FROM sample_info").fetchone()[0]  # type: ignore[index]
        conn.execute("CREATE TABLE IF NOT EXISTS bench_scale_build (fraction float8, seed integer,"
                     " started_at timestamptz DEFAULT now(), finished_at timestamptz, steps jsonb)")
        conn.execute("INSERT INTO bench_scale_build (fraction, seed) VALUES (%s, %s)",
                     (args.fraction, args.seed))
    end = dt.datetime.combine(as_of, dt.time(), dt.UTC)
    steps: list[Step] = []
    with su_connect(args.database) as su, obs.progress() as bar:
        obs.lower_priority(su, args.niceness)
        su.execute(HASH_FUNCTION.format(seed=int(args.seed)))
        loaders: list[tuple[str, Callable[[], Step]]] = [
            ("parcels", lambda: load_parcels(su, bar, t["parcels"])),
            ("incidents", lambda: load_incidents(su, bar, t["incidents"], end)),
            ("incidents", lambda: load_reports(su, bar, t["reports"], end, args.seed)),
            ("observations", lambda: load_observations(url, su, bar, t["observations"], args.seed)),
        ]
        for what, load in loaders:
            if what in only:
                steps.append(load())
        if "incidents" in only:
            steps.append(rebuild_aggregates(su, bar))
        vacuum(su, bar, steps)
        measure(su, steps)
    total = time.monotonic() - t0
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE bench_scale_build SET finished_at = now(), steps = %s"
                     " WHERE finished_at IS NULL",
                     (json.dumps([{"name": s.name, "rows": s.rows, "seconds": s.seconds,
                                   "bytes": s.bytes} for s in steps]),))
    body = report(steps, args, total, free, (load_before, os.getloadavg()[0]))
    console.print(body)
    if not args.no_readme and only == {"parcels", "incidents", "observations"}:
        write_readme(body)


if __name__ == "__main__":
    main()
