"""Issue 16's reads at 50 million observations: partitions and rollups against a plain table.

    nice -n 10 .venv/bin/python bench/observations_50m.py                 # 50,000,000 rows
    .venv/bin/python bench/observations_50m.py --rows 1000000 --database geoioc_bench_obs1m
    .venv/bin/python bench/observations_50m.py --rebuild                  # build again

The targets (issue 16, "Benchmark"): with 50 million observations stored, the latest observation
of every datastream under 200 ms; one datastream's last 24 hours p99 under 20 ms; a year's daily
chart of one datastream under 50 ms; each beside the same question asked of an unpartitioned table
without rollups, as a ratio.

Build (skipped when the database already holds a finished build of the same parameters):

- the database (--database, default geoioc_bench_obs), created like scripts/setup.sh's and
  migrated to head by the project's own code (gis.migrate.upgrade);
- --datastreams stations (sensors rows AIR-/WAT-xxxxxx, 60 % air, 40 % water, spread over the
  province; the trigger of migration 0020 gives each its datastream and feature of interest);
- --rows observations, the same number per datastream (±1), evenly spaced over the year up to
  END with a phase of its own per datastream, a diurnal cycle plus noise from a hash of
  (seed, datastream, index): the same rows for the same parameters, whatever the machine.
  Default 1,000 datastreams: 50 million a year is one observation every 10.5 minutes from each
  (automatic stations send every 5 minutes under Circular 10/2021/TT-BTNMT, so this is about
  500 such stations, or more stations at longer intervals). More datastreams at the same total
  only make each one's series shorter; the "latest of all" question grows with their number
  (--datastreams 5000 to see it).
- inserted in arrival order (time, then datastream: what the ingest leaves in the heap), by
  INSERT ... SELECT generate_series in chunks, into `observations` (partitioned by month, key
  and BRIN maintained as rows arrive); the foreign key checks are skipped for the load
  (session_replication_role = replica as the superuser: the generated ids are those of the
  datastreams just made);
- the hourly and daily rollups and datastream_latest built set-based from the stored rows, as the
  ingest's maintenance (gis/sensors/queries.STORE) leaves them: hourly per month partition with
  the same aggregates, daily by combining the hourly rows of each Vietnam day (whole-hour
  offset), latest from per-month counts and ranges plus each datastream's newest row; checked on
  a sample of datastreams against the same aggregates computed from the raw rows (the SELECTs
  of observation_rollups_rebuild);
- `observations_flat`: the same rows, same columns, in the same order, one unpartitioned table
  whose only constraint and index is the natural primary key (datastream_id, phenomenon_time);
- VACUUM ANALYZE of everything (both sides alike).

The disk needed is estimated from --rows and --datastreams and checked against the free space of
PostgreSQL's data directory before anything is written.

Measurement (each query first run untimed over the same inputs, so caches are warm; the
server's settings as they are, JIT included; p50 and p99 of --runs runs, fewer for a query that
scans the table, within --budget seconds):

(a) latest observation of every datastream: `datastream_latest` (what the map and alerts read)
    against the flat table with a LATERAL top-1 per datastream (the best a user would write:
    PostgreSQL 15 has no skip scan, so `SELECT DISTINCT ON` reads the whole table: shown too);
    plus the SQL the SensorThings API generates for
    `Datastreams?$expand=Observations($orderby=phenomenonTime desc;$top=1)` on both tables;
(b) one datastream's last 24 hours (random datastreams, "now" = the data's end): the query by the
    key on both tables, and the SQL of `Datastreams(id)/Observations?$filter=phenomenonTime ge
    ...&$orderby=phenomenonTime` on both;
(c) a year's daily chart of one datastream (random datastreams): `observation_daily` against
    GROUP BY the Vietnam day on the flat table (both answers compared).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import math
import os
import random
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402
from psycopg.types.json import Jsonb  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import (  # noqa: E402
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from bench import benchdb  # noqa: E402

console = Console()

END = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)  # the data's end ("now" for the 24-hour question)
YEAR = dt.timedelta(days=365)
START = END - YEAR
CHUNK_ROWS = 2_000_000
# Bytes on disk per observation and per hourly rollup row, measured on this schema (1M build:
# heap + primary key + BRIN of the partitioned table, the same for the flat table), with room.
BYTES_PER_OBSERVATION = 2 * 120
BYTES_PER_HOURLY = 150
WAL_AND_SORT_ROOM = 4 << 30  # WAL segments (max_wal_size), sorts' temporary files

# (parameter, kind, share of the stations, typical value) as the stations of a province measure.
PARAMETERS = (("pm25", "air", 0.25, 35.0), ("pm10", "air", 0.2, 60.0), ("no2", "air", 0.15, 40.0),
              ("ph", "water", 0.1, 7.2), ("turbidity", "water", 0.1, 25.0),
              ("dissolved_oxygen", "water", 0.1, 6.0), ("cod", "water", 0.1, 15.0))

BUILD_TABLE = """
CREATE TABLE IF NOT EXISTS bench_observations_build (
    rows bigint NOT NULL, datastreams integer NOT NULL, seed integer NOT NULL,
    start_time timestamptz NOT NULL, end_time timestamptz NOT NULL, step_ms bigint NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(), finished_at timestamptz, build_seconds float8)
"""

STATIONS = """
INSERT INTO sensors (code, name, kind, parameter, unit, threshold, status, geom)
SELECT upper(left(p.kind, 3)) || '-' || lpad(k::text, 6, '0'), 'Trạm quan trắc ' || k, p.kind,
       p.parameter, p.unit, p.threshold, 'online',
       ST_SetSRID(ST_MakePoint(106.35 + 0.55 * (hashint8extended(k, %(seed)s) & 65535) / 65535.0,
                               10.9 + 0.55 * (hashint8extended(k, %(seed)s + 1) & 65535) / 65535.0),
                  4326)
  FROM generate_series(0, %(n)s - 1) AS k
  JOIN (SELECT * FROM unnest(%(params)s::text[], %(kinds)s::text[], %(units)s::text[],
                             %(thresholds)s::float8[], %(lo)s::float8[], %(hi)s::float8[])
               AS t(parameter, kind, unit, threshold, lo, hi)) AS p
    ON (k %% 1000) / 1000.0 >= p.lo AND (k %% 1000) / 1000.0 < p.hi
 ORDER BY k
"""

# One row per datastream: its index k, feature of interest, number of observations, phase.
STREAMS = """
CREATE TABLE bench_streams AS
SELECT d.id AS ds, row_number() OVER (ORDER BY d.id) - 1 AS k, l.feature_of_interest_id AS foi,
       0::bigint AS n, 0::bigint AS phase_ms, 0::float8 AS base
  FROM datastreams d JOIN thing_locations l ON l.thing_id = d.thing_id
"""

# Observations of steps I0..I1 of every datastream, in arrival order (step, then datastream).
GENERATE = """
INSERT INTO observations (datastream_id, phenomenon_time, result, result_time,
                          feature_of_interest_id)
SELECT s.ds, s.t,
       round((s.base * (1 + 0.3 * sin(2 * pi() * extract(epoch FROM s.t) / 86400.0 + s.k))
              + s.base * 0.25 * ((hashint8extended(i, %(seed)s * 100003 + s.k) & 65535)
                                 / 65535.0 - 0.5))::numeric, 2)::float8,
       s.t, s.foi
  FROM generate_series(%(i0)s::bigint, %(i1)s::bigint) AS i
 CROSS JOIN LATERAL (SELECT b.ds, b.k, b.foi, b.base,
                            %(start)s::timestamptz
                              + (b.phase_ms + i * %(step_ms)s) * interval '1 millisecond' AS t
                       FROM bench_streams b WHERE i < b.n ORDER BY b.k) AS s
"""

# The ingest's rollup columns (gis/sensors/queries._ROLLUP_SELECT).
ROLLUP_SELECT = """count(*), sum(result), min(result), max(result),
    min(phenomenon_time), (array_agg(result ORDER BY phenomenon_time))[1],
    max(phenomenon_time), (array_agg(result ORDER BY phenomenon_time DESC))[1]"""

HOURLY = f"""
INSERT INTO observation_hourly
SELECT datastream_id, date_trunc('hour', phenomenon_time, 'UTC'), {ROLLUP_SELECT}
  FROM {{part}} WHERE result IS NOT NULL GROUP BY 1, 2
"""  # noqa: S608 - constants only
LATEST_PARTS = """
INSERT INTO bench_latest_parts
SELECT datastream_id, count(*), min(phenomenon_time),
       max(coalesce(phenomenon_time_end, phenomenon_time)), min(result_time), max(result_time)
  FROM {part} GROUP BY 1
"""
# A Vietnam day is 24 whole UTC hours (UTC+7, no daylight saving): its rollup combines them.
DAILY = """
INSERT INTO observation_daily
SELECT datastream_id, geoioc_vn_day(bucket), sum(n), sum(sum), min(min), max(max),
       min(first_time), (array_agg(first_result ORDER BY first_time))[1],
       max(last_time), (array_agg(last_result ORDER BY last_time DESC))[1]
  FROM observation_hourly GROUP BY 1, 2
"""
LATEST = """
INSERT INTO datastream_latest
SELECT p.ds, o.phenomenon_time, o.result, o.result_json, o.result_time, o.feature_of_interest_id,
       p.t0, p.t1, p.r0, p.r1, p.n, now()
  FROM (SELECT datastream_id AS ds, sum(n) AS n, min(t0) AS t0, max(t1) AS t1, min(r0) AS r0,
               max(r1) AS r1 FROM bench_latest_parts GROUP BY 1) AS p
 CROSS JOIN LATERAL (SELECT * FROM observations o WHERE o.datastream_id = p.ds
                      ORDER BY o.phenomenon_time DESC LIMIT 1) AS o
"""

# The check: the rollups of a sample of datastreams against the raw rows' aggregates, computed
# as observation_rollups_rebuild computes them (migration 0020); the count of rows that differ
# must be 0. Sums of doubles depend on the order of the additions (the ingest's too, batch after
# batch): equal to 1e-9 relative.
ROLLUP_CHECK = """
SELECT count(*) FROM (SELECT datastream_id, {bucket}, {select} FROM observations
                       WHERE datastream_id = ANY(%(ds)s) AND result IS NOT NULL GROUP BY 1, 2)
                  AS r(datastream_id, bucket, n, sum, min, max, first_time, first_result,
                       last_time, last_result)
  FULL JOIN (SELECT * FROM {table} WHERE datastream_id = ANY(%(ds)s)) AS k
    ON k.datastream_id = r.datastream_id AND k.bucket = r.bucket
 WHERE r.bucket IS NULL OR k.bucket IS NULL
    OR (r.n, r.min, r.max, r.first_time, r.first_result, r.last_time, r.last_result)
       IS DISTINCT FROM (k.n, k.min, k.max, k.first_time, k.first_result, k.last_time,
                         k.last_result)
    OR abs(r.sum - k.sum) > 1e-9 * greatest(abs(r.sum), 1)
"""
CHECKS = {
    "hourly": ROLLUP_CHECK.format(bucket="date_trunc('hour', phenomenon_time, 'UTC')",
                                  select=ROLLUP_SELECT, table="observation_hourly"),
    "daily": ROLLUP_CHECK.format(bucket="geoioc_vn_day(phenomenon_time)", select=ROLLUP_SELECT,
                                 table="observation_daily"),
    "latest": """
        (SELECT DISTINCT ON (datastream_id) datastream_id, phenomenon_time, result, result_json,
                result_time, feature_of_interest_id,
                min(phenomenon_time) OVER w, max(coalesce(phenomenon_time_end, phenomenon_time)) OVER w,
                min(result_time) OVER w, max(result_time) OVER w, count(*) OVER w
           FROM observations WHERE datastream_id = ANY(%(ds)s)
         WINDOW w AS (PARTITION BY datastream_id) ORDER BY datastream_id, phenomenon_time DESC)
        EXCEPT
        SELECT datastream_id, phenomenon_time, result, result_json, result_time,
               feature_of_interest_id, phenomenon_time_start, phenomenon_time_end,
               result_time_start, result_time_end, observations
          FROM datastream_latest WHERE datastream_id = ANY(%(ds)s)""",
    "flat": """
        (SELECT * FROM observations WHERE datastream_id = ANY(%(ds)s)
         EXCEPT SELECT * FROM observations_flat WHERE datastream_id = ANY(%(ds)s))
        UNION ALL
        (SELECT * FROM observations_flat WHERE datastream_id = ANY(%(ds)s)
         EXCEPT SELECT * FROM observations WHERE datastream_id = ANY(%(ds)s))""",
}


@dataclass(frozen=True)
class Params:
    rows: int
    datastreams: int
    seed: int

    @property
    def per_stream(self) -> int:
        return math.ceil(self.rows / self.datastreams)

    @property
    def step_ms(self) -> int:
        """Milliseconds between two observations of a datastream: the year over its number."""
        return YEAR // dt.timedelta(milliseconds=1) // self.per_stream


def progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=console)


def disk_needed(p: Params) -> int:
    return (p.rows * BYTES_PER_OBSERVATION + p.datastreams * 8760 * BYTES_PER_HOURLY
            + WAL_AND_SORT_ROOM)


def data_directory() -> Path:
    return Path(benchdb.superuser_psql("postgres", "SHOW data_directory").strip())


def su_connect(database: str) -> psycopg.Connection[Any]:
    """The superuser over loopback (trust, as scripts/setup.sh): only it may skip the foreign
    key triggers for the load. Objects it creates belong to geoioc (SET ROLE)."""
    conn = psycopg.connect(host=str(benchdb.PG["host"]), port=str(benchdb.PG["port"]), user="postgres",
                           dbname=database, autocommit=True)
    conn.execute("SET session_replication_role = replica")
    conn.execute("SET ROLE geoioc")
    return conn


def lower_priority(conn: psycopg.Connection[Any], niceness: int) -> None:
    """Nice the connection's server process like this one (the load runs there, not here)."""
    with contextlib.suppress(OSError):  # another machine, or not allowed: as it is
        os.setpriority(os.PRIO_PROCESS, conn.info.backend_pid, niceness)


def finished_build(url: str, p: Params) -> tuple[bool, str]:
    """Whether the database holds a finished build of P, and what it holds otherwise."""
    try:
        with psycopg.connect(url) as conn:
            if conn.execute("SELECT to_regclass('bench_observations_build')").fetchone() == (None,):
                return False, "no build"
            row = conn.execute("SELECT rows, datastreams, seed, finished_at IS NOT NULL"
                               " FROM bench_observations_build").fetchone()
    except psycopg.OperationalError:
        return False, "no database"
    if row is None:
        return False, "no build"
    if row[3] and tuple(row[:3]) == (p.rows, p.datastreams, p.seed):
        return True, "finished"
    state = "a finished" if row[3] else "an unfinished"
    return False, f"{state} build of {row[0]:,} rows, {row[1]:,} datastreams, seed {row[2]}"


def build(database: str, p: Params, niceness: int) -> None:
    url = benchdb.db_url(database)
    need = disk_needed(p)
    free = shutil.disk_usage(data_directory()).free
    console.print(f"disk: the build needs about {need / 2**30:.1f} GiB; {free / 2**30:.1f} GiB free"
                  f" where PostgreSQL keeps its data")
    if free < need:
        raise SystemExit(f"bench: not enough disk: {need / 2**30:.1f} GiB needed,"
                         f" {free / 2**30:.1f} GiB free (try fewer --rows)")
    t_build = time.monotonic()
    benchdb.create_database(database, log=console.print)
    from gis import migrate

    console.print(f"migrating {database} to head")
    migrate.upgrade("head", url=url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(BUILD_TABLE)
        conn.execute("INSERT INTO bench_observations_build (rows, datastreams, seed, start_time,"
                     " end_time, step_ms) VALUES (%s, %s, %s, %s, %s, %s)",
                     (p.rows, p.datastreams, p.seed, START, END, p.step_ms))
        console.print(f"{p.datastreams:,} stations and datastreams; {p.rows:,} observations,"
                      f" one every {p.step_ms / 60000:.2f} min per datastream,"
                      f" {START:%Y-%m-%d} to {END:%Y-%m-%d} UTC")
        lo = 0.0
        cols: dict[str, list[Any]] = {k: [] for k in ("params", "kinds", "units", "thresholds",
                                                      "lo", "hi")}
        for code, kind, share, _ in PARAMETERS:
            unit = conn.execute("SELECT default_unit ->> 'symbol' FROM observed_properties"
                                " WHERE code = %s", (code,)).fetchone()
            cols["params"].append(code)
            cols["kinds"].append(kind)
            cols["units"].append(unit[0] if unit else "")
            cols["thresholds"].append(50.0)
            cols["lo"].append(lo)
            cols["hi"].append(min(lo + share, 1.0) if code != PARAMETERS[-1][0] else 1.0)
            lo += share
        conn.execute(STATIONS, {"seed": p.seed, "n": p.datastreams, **cols})
        conn.execute(STREAMS)
        base = {code: v for code, _, _, v in PARAMETERS}
        per = p.rows // p.datastreams
        extra = p.rows - per * p.datastreams
        conn.execute(
            "UPDATE bench_streams b SET n = %s + (b.k < %s)::int,"
            " phase_ms = (hashint8extended(b.k, %s) & 2147483647) %% %s,"
            " base = (%s::jsonb ->> (SELECT o.code FROM datastreams d JOIN observed_properties o"
            "   ON o.id = d.observed_property_id WHERE d.id = b.ds))::float8",
            (per, extra, p.seed + 7, p.step_ms, Jsonb(base)))
        n_streams = conn.execute("SELECT count(*), sum(n) FROM bench_streams").fetchone()
        assert n_streams == (p.datastreams, p.rows), n_streams
        conn.execute("SELECT observations_create_partitions(%s::date, %s::date)", (START, END))

    with su_connect(database) as su, progress() as bar:
        lower_priority(su, niceness)
        su.execute("SET work_mem = '256MB'")
        su.execute("SET maintenance_work_mem = '512MB'")
        steps = p.per_stream
        chunk = max(1, CHUNK_ROWS // p.datastreams)
        task = bar.add_task("observations (partitioned)", total=p.rows)
        for i0 in range(0, steps, chunk):
            i1 = min(steps, i0 + chunk) - 1
            with su.transaction():
                n = su.execute(GENERATE, {"seed": p.seed, "i0": i0, "i1": i1, "start": START,
                                          "step_ms": p.step_ms}).rowcount
            bar.advance(task, n)

        parts = [r[0] for r in su.execute(
            "SELECT name FROM observation_partitions WHERE parent = 'observations' AND attached"
            " ORDER BY month")]
        su.execute("CREATE TABLE observations_flat (LIKE observations)")
        su.execute("ALTER TABLE observations_flat ADD PRIMARY KEY (datastream_id, phenomenon_time)")
        task = bar.add_task("observations_flat (same rows, same order)", total=p.rows)
        for part in parts:
            n = su.execute(sql.SQL("INSERT INTO observations_flat SELECT * FROM {}").format(
                sql.Identifier(part))).rowcount
            bar.advance(task, n)

        su.execute("CREATE TEMP TABLE bench_latest_parts (datastream_id bigint, n bigint,"
                   " t0 timestamptz, t1 timestamptz, r0 timestamptz, r1 timestamptz)")
        task = bar.add_task("hourly rollups, per month", total=len(parts))
        for part in parts:
            with su.transaction():
                ident = sql.Identifier(part)
                su.execute(sql.SQL(HOURLY).format(part=ident))
                su.execute(sql.SQL(LATEST_PARTS).format(part=ident))
            bar.advance(task)
        task = bar.add_task("daily rollups and datastream_latest", total=2)
        su.execute(DAILY)
        bar.advance(task)
        su.execute(LATEST)
        bar.advance(task)

        tables = ["observations", "observations_flat", "observation_hourly", "observation_daily",
                  "datastream_latest"]
        task = bar.add_task("VACUUM ANALYZE", total=len(tables))
        for t in tables:
            su.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(t)))
            bar.advance(task)

    check(url, p)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE bench_observations_build SET finished_at = now(), build_seconds = %s",
                     (time.monotonic() - t_build,))
    console.print(f"built in {time.monotonic() - t_build:.0f} s")


def check(url: str, p: Params) -> None:
    """Rollups, latest rows and the flat copy equal the raw rows' aggregates (a sample of
    datastreams), and the totals agree."""
    with psycopg.connect(url, autocommit=True) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM datastreams ORDER BY id")]
        sample = sorted(random.Random(p.seed).sample(ids, min(20, len(ids))))
        for name, q in CHECKS.items():
            if not q.lstrip().startswith("SELECT count(*)"):
                q = f"SELECT count(*) FROM ({q}) AS x"  # noqa: S608 - constants only
            bad = conn.execute(q, {"ds": sample}).fetchone()
            if bad != (0,):
                raise SystemExit(f"bench: check {name} failed on datastreams {sample}: {bad}")
        totals = conn.execute(
            "SELECT (SELECT sum(n) FROM observation_hourly), (SELECT sum(n) FROM observation_daily),"
            " (SELECT sum(observations) FROM datastream_latest),"
            " (SELECT count(*) FROM datastream_latest)").fetchone()
        assert totals == (p.rows, p.rows, p.rows, p.datastreams), totals
    console.print(f"checked: hourly, daily and latest of {len(sample)} datastreams equal the raw"
                  f" rows' aggregates; the flat table holds the same rows; totals {p.rows:,}")


# --- measurement -----------------------------------------------------------------------------


@dataclass
class Timing:
    runs: int
    p50: float
    p99: float


def timed(fn: Callable[[int], object], inputs: int, runs: int, budget: float) -> Timing:
    """Run fn(0..inputs-1) once untimed (warm), then time RUNS calls cycling over the same
    inputs, stopping early after BUDGET seconds (at least 3 runs). Milliseconds."""
    t_warm = time.perf_counter()
    for i in range(min(inputs, runs)):
        fn(i)
        if time.perf_counter() - t_warm > budget:
            break
    times: list[float] = []
    t_end = time.perf_counter() + budget
    for r in range(runs):
        t = time.perf_counter()
        fn(r % inputs)
        times.append((time.perf_counter() - t) * 1000)
        if len(times) >= 3 and time.perf_counter() > t_end:
            break
    times.sort()
    return Timing(len(times), statistics.median(times), times[min(len(times) - 1,
                                                                  math.ceil(len(times) * 0.99) - 1)])


def sta_sql(conn: psycopg.Connection[Any], path: str, params: dict[str, str]) -> str:
    """The SQL the SensorThings API runs for GET /sta/v1.1/PATH?PARAMS (anonymous), as text."""
    from gis.sta import odata, queries, service
    from layers.access import ANONYMOUS

    resource = service.parse_path(path)
    options = odata.parse_options(params)
    top = min(options.top if options.top is not None else odata.DEFAULT_TOP, odata.MAX_TOP)
    q = queries.collection_sql(queries.Compiler(ANONYMOUS, "http://bench/sta/v1.1"),
                               resource.steps, options, top)
    return service.as_sql(q, conn)


def on_flat(text: str) -> str:
    """The same SQL reading observations_flat instead of observations."""
    assert text.count('"observations"') >= 1, text
    return text.replace('"observations"', '"observations_flat"')


def iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class Row:
    question: str
    ours_name: str
    ours: Timing
    theirs_name: str
    theirs: Timing
    target_ms: float | None  # the bound on ours (p99), if it sets one


def measure(url: str, p: Params, runs: int, budget: float) -> list[Row]:
    rng = random.Random(p.seed + 1)
    out: list[Row] = []
    with psycopg.connect(url, autocommit=True) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM datastreams ORDER BY id")]
        pick = [rng.choice(ids) for _ in range(runs)]
        day_ago = END - dt.timedelta(hours=24)
        year_from = conn.execute("SELECT geoioc_vn_day(%s)", (END - YEAR,)).fetchone()[0]  # type: ignore[index]

        def rows(q: str, args: Sequence[object] = ()) -> list[tuple[Any, ...]]:
            return conn.execute(q, args or None).fetchall()

        def show(row: Row) -> None:
            out.append(row)
            console.print(f"{row.question}: {row.ours_name} {row.ours.p50:.2f} / {row.ours.p99:.2f}"
                          f" ms ({row.ours.runs} runs); {row.theirs_name} {row.theirs.p50:.2f} /"
                          f" {row.theirs.p99:.2f} ms ({row.theirs.runs} runs)")

        # (a) the latest observation of every datastream
        latest_rollup = "SELECT datastream_id, phenomenon_time, result FROM datastream_latest ORDER BY 1"
        latest_lateral = (
            "SELECT d.id, o.phenomenon_time, o.result FROM datastreams d CROSS JOIN LATERAL"
            " (SELECT phenomenon_time, result FROM observations_flat f WHERE f.datastream_id = d.id"
            "  ORDER BY f.phenomenon_time DESC LIMIT 1) o ORDER BY 1")
        latest_distinct = (
            "SELECT DISTINCT ON (datastream_id) datastream_id, phenomenon_time, result"
            " FROM observations_flat ORDER BY datastream_id, phenomenon_time DESC")
        a = rows(latest_rollup)
        assert len(a) == p.datastreams and a == rows(latest_lateral), "latest: answers differ"
        q_a = f"(a) latest observation of all {p.datastreams:,} datastreams"
        ours = timed(lambda _: rows(latest_rollup), 1, runs, budget)
        show(Row(q_a, "`datastream_latest`", ours, "LATERAL top-1 per datastream",
                 timed(lambda _: rows(latest_lateral), 1, runs, budget), 200))
        show(Row(q_a, "`datastream_latest`", ours, "`SELECT DISTINCT ON`",
                 timed(lambda _: rows(latest_distinct), 1, runs, budget), 200))
        sta_latest = sta_sql(conn, "Datastreams", {
            "$top": "10000", "$select": "id", "$expand":
            "Observations($orderby=phenomenonTime desc;$top=1;$select=phenomenonTime,result)"})
        assert len(rows(sta_latest)) == p.datastreams
        show(Row(q_a, "STA `$expand` SQL, partitioned", timed(lambda _: rows(sta_latest), 1, runs,
                                                              budget),
                 "the same SQL", timed(lambda _: rows(on_flat(sta_latest)), 1, runs, budget), None))

        # (b) one datastream's last 24 hours
        day = ("SELECT phenomenon_time, result FROM {} WHERE datastream_id = %s"
               " AND phenomenon_time >= %s ORDER BY phenomenon_time")
        day_p, day_f = day.format("observations"), day.format("observations_flat")
        got = rows(day_p, (pick[0], day_ago))
        assert got and got == rows(day_f, (pick[0], day_ago)), "24 h: answers differ"
        q_b = f"(b) one datastream's last 24 hours ({len(got)} rows), random datastreams"
        show(Row(q_b, "by the key, partitioned",
                 timed(lambda i: rows(day_p, (pick[i], day_ago)), runs, runs, budget),
                 "the same SQL", timed(lambda i: rows(day_f, (pick[i], day_ago)), runs, runs, budget),
                 20))
        sta_day = [sta_sql(conn, f"Datastreams({d})/Observations", {
            "$filter": f"phenomenonTime ge {iso(day_ago)}", "$orderby": "phenomenonTime",
            "$top": "1000", "$select": "phenomenonTime,result"}) for d in pick]
        sta_day_flat = [on_flat(q) for q in sta_day]
        assert rows(sta_day[0]) == rows(sta_day_flat[0])
        show(Row(q_b, "STA `$filter` SQL, partitioned",
                 timed(lambda i: rows(sta_day[i]), runs, runs, budget),
                 "the same SQL", timed(lambda i: rows(sta_day_flat[i]), runs, runs, budget), 20))

        # (c) a year's daily chart of one datastream
        chart_rollup = ("SELECT bucket, sum / n, min, max FROM observation_daily"
                        " WHERE datastream_id = %s AND bucket >= %s AND bucket < %s ORDER BY bucket")
        chart_flat = ("SELECT date_trunc('day', phenomenon_time, 'Asia/Ho_Chi_Minh') AS day,"
                      " avg(result), min(result), max(result) FROM observations_flat"
                      " WHERE datastream_id = %s AND phenomenon_time >= %s AND phenomenon_time < %s"
                      " GROUP BY 1 ORDER BY 1")
        a = rows(chart_rollup, (pick[0], year_from, END))
        b = rows(chart_flat, (pick[0], year_from, END))
        assert len(a) == len(b) and all(
            x[0] == y[0] and math.isclose(x[1], y[1], rel_tol=1e-9) and x[2:] == y[2:]
            for x, y in zip(a, b, strict=True)), "daily chart: answers differ"
        show(Row(f"(c) a year's daily chart of one datastream ({len(a)} days), random datastreams",
                 "`observation_daily`",
                 timed(lambda i: rows(chart_rollup, (pick[i], year_from, END)), runs, runs, budget),
                 "GROUP BY the Vietnam day",
                 timed(lambda i: rows(chart_flat, (pick[i], year_from, END)), runs, runs, budget), 50))
    return out


def sizes(url: str) -> list[tuple[str, int]]:
    with psycopg.connect(url) as conn:
        return [(r[0], int(r[1])) for r in conn.execute(
            "SELECT t, (SELECT coalesce(sum(pg_total_relation_size(c)), 0) FROM"
            " (SELECT t::regclass AS c UNION ALL SELECT inhrelid::regclass FROM pg_inherits"
            "  WHERE inhparent = t::regclass) AS x) FROM unnest(ARRAY['observations',"
            " 'observations_flat', 'observation_hourly', 'observation_daily', 'datastream_latest'])"
            " AS t")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--database", default="geoioc_bench_obs")
    ap.add_argument("--rows", type=int, default=50_000_000)
    ap.add_argument("--datastreams", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--rebuild", action="store_true", help="drop and build the database again")
    ap.add_argument("--runs", type=int, default=200, help="timed runs per query (at most)")
    ap.add_argument("--budget", type=float, default=60,
                    help="seconds per query and side (a slow query stops after at least 3 runs)")
    ap.add_argument("--nice", type=int, default=10, help="niceness of the server process loading")
    args = ap.parse_args()
    if args.rows < args.datastreams or args.datastreams < 1:
        raise SystemExit("bench: --rows must be at least --datastreams (>= 1)")
    p = Params(args.rows, args.datastreams, args.seed)
    url = benchdb.db_url(args.database)
    done, state = finished_build(url, p)
    if done and not args.rebuild:
        console.print(f"database {args.database}: a finished build of these parameters, reused")
    else:
        if state == "no build":  # someone's database, not one of ours: never dropped
            raise SystemExit(f"bench: database {args.database} exists and holds no build of this"
                             " benchmark; name another --database")
        if state != "no database" and not args.rebuild:
            raise SystemExit(f"bench: {args.database} holds {state}; --rebuild to replace it")
        if state != "no database":
            console.print(f"dropping database {args.database} ({state})")
            benchdb.superuser_psql("postgres", f'DROP DATABASE "{args.database}"')
        build(args.database, p, args.nice)

    load_before = os.getloadavg()
    results = measure(url, p, args.runs, args.budget)
    load_after = os.getloadavg()
    print()
    print(f"{p.rows:,} observations, {p.datastreams:,} datastreams (one every"
          f" {p.step_ms / 60000:.2f} min each), {START:%Y-%m-%d} to {END:%Y-%m-%d} UTC;"
          f" {os.cpu_count()} CPUs; load average {load_before[0]:.1f} before,"
          f" {load_after[0]:.1f} after. Milliseconds on the client's side (psycopg, every row"
          " fetched), warm caches; ratio = plain table / ours.")
    print()
    print("| question | ours: partitions + rollups | p50 | p99 | plain table, no rollups | p50 | p99"
          " | ratio p50 | ratio p99 | runs | target (p99) |")
    print("|---|---|---:|---:|---|---:|---:|---:|---:|---:|---|")
    for r in results:
        target = "" if r.target_ms is None else (
            f"< {r.target_ms:g} ms: {'met' if r.ours.p99 < r.target_ms else '**missed**'}")
        print(f"| {r.question} | {r.ours_name} | {r.ours.p50:.2f} | {r.ours.p99:.2f}"
              f" | {r.theirs_name} | {r.theirs.p50:.2f} | {r.theirs.p99:.2f}"
              f" | {r.theirs.p50 / r.ours.p50:,.1f}x | {r.theirs.p99 / r.ours.p99:,.1f}x"
              f" | {r.ours.runs} / {r.theirs.runs} | {target} |")
    print()
    print("sizes: " + ", ".join(f"{t} {s / 2**30:.2f} GiB" for t, s in sizes(url)))


if __name__ == "__main__":
    main()
