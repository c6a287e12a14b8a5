"""The transparency API on a year of 1,000,000 citizen reports (issue 15: under 300 ms).

    .venv/bin/python bench/transparency.py [--database geoioc_ht1m] [--reports 1000000] [--runs 30]

Prepares (idempotently) the database: migrated, the sample province loaded (communes, agencies,
service categories), then REPORTS citizen reports over the year before the sample's date,
generated in SQL (generate_series, not through the API: intake speed is bench/load.py's
business): a service, a commune and a point in it, the routed agency, the SLA deadline, and for
85 % an answer (resolved or rejected) after a log-normal processing time, with the one status
transition that records it (so the naive query below has something to read). The trigger that
keeps incidents.answered_at is disabled during the bulk insert and answered_at is written
directly, in the same statement, from the same values.

Then, side by side, p50 and p99 over RUNS:
- GET /api/transparency/agencies, /communes and /ranking for the whole year (the app in
  process, through HTTP's ASGI stack: TestClient), computed ("cold": the kept figures dropped
  before each request: a period nobody asked for yet) and from the figures kept in
  transparency_figures (what a reader gets: the job queue recomputes the watched and offered
  periods every minute, timed here too as "refresh"); /overdue;
- the naive query a user would write for the same per-agency figures: the first answer looked
  up in incident_transitions per report (min(at) of the resolved/rejected moves), percentiles
  over the join (no index of ours, no kept first answer).
Both answers' province figures are compared (they must be equal).
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import benchdb  # noqa: E402

GEOIOC = Path(sys.executable).parent / "geoioc"  # the CLI of the interpreter running this

GENERATE = """
ALTER TABLE incident_transitions DISABLE TRIGGER incident_transitions_first_answer;
CREATE TEMP TABLE bench_communes AS
    SELECT row_number() OVER (ORDER BY code) AS n, code, ST_PointOnSurface(geom) AS p
    FROM admin_units WHERE level = 'commune' AND valid_to IS NULL;
CREATE TEMP TABLE bench_services AS
    SELECT row_number() OVER (ORDER BY code) AS n, code, incident_category, sla_hours,
           agency_code FROM service_categories;
-- Routing as the workflow does it (gis/reports/queries.ROUTE), once per service and commune.
CREATE TEMP TABLE bench_routes AS
    SELECT s.code AS service, c.code AS commune,
           COALESCE((SELECT a.code FROM agencies a WHERE s.code = ANY (a.categories)
                     AND (a.communes IS NULL OR c.code = ANY (a.communes))
                     ORDER BY a.communes IS NULL, cardinality(a.communes), a.code LIMIT 1),
                    s.agency_code) AS agency
    FROM bench_services s CROSS JOIN bench_communes c;
CREATE TEMP TABLE bench_rows AS
WITH g AS (
    SELECT i, random() AS r1, random() AS r2, random() AS r3, random() AS r4, random() AS r5
    FROM generate_series(1::bigint, %(n)s) AS i
), x AS (
    SELECT g.*, c.code AS commune, c.p, s.code AS service, s.incident_category, s.sla_hours,
           r.agency, %(end)s::timestamptz - g.r1 * interval '365 days' AS reported
    FROM g
    JOIN bench_communes c ON c.n = 1 + (g.i * 7919) %% (SELECT count(*) FROM bench_communes)
    JOIN bench_services s ON s.n = 1 + (g.i * 104729) %% (SELECT count(*) FROM bench_services)
    JOIN bench_routes r ON r.service = s.code AND r.commune = c.code
)
SELECT x.*, geoioc_sla_deadline(x.reported, x.sla_hours) AS due,
       CASE WHEN x.r2 < 0.85 THEN x.reported
            + make_interval(secs => 3600 * x.sla_hours * exp(ln(0.5) + 0.8 * (x.r3 + x.r4 - 1)))
       END AS answered,
       CASE WHEN x.r2 < 0.85 THEN CASE WHEN x.r5 < 0.08 THEN 'rejected' ELSE 'resolved' END END
           AS answer
FROM x;
UPDATE bench_rows SET answered = NULL, answer = NULL WHERE answered > %(end)s;
INSERT INTO incidents (category, severity, status, source, title, commune_code, reported_at,
    resolved_at, geom, service_code, agency_code, expected_at, updated_at, answered_at, answer)
SELECT incident_category, 2,
       CASE WHEN answer IS NULL THEN (ARRAY['received', 'assigned', 'in_progress'])[1 + (i %% 3)]
            WHEN i %% 2 = 0 THEN 'closed' ELSE answer END,
       'citizen_app', 'bench transparency', commune, reported, answered,
       ST_Translate(p, (r3 - 0.5) * 0.002, (r4 - 0.5) * 0.002), service,
       CASE WHEN answer IS NULL AND i %% 3 = 0 THEN NULL ELSE agency END, due,
       COALESCE(answered, reported), answered, answer
FROM bench_rows ORDER BY reported;
INSERT INTO incident_transitions (incident_id, at, actor, kind, from_status, to_status)
SELECT i.id, i.answered_at, 'bench', 'status', 'in_progress', i.answer
FROM incidents i WHERE i.title = 'bench transparency' AND i.answered_at IS NOT NULL;
ALTER TABLE incident_transitions ENABLE TRIGGER incident_transitions_first_answer;
"""

# What a user who knows SQL would write: the first answer from the transitions, per report.
NAIVE = """
SELECT grouping(i.agency_code) AS total, i.agency_code, count(*) AS received,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM f.at - i.reported_at) / 3600)
           AS median_hours,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM f.at - i.reported_at) / 3600)
           AS p90_hours,
       avg((f.at <= i.expected_at)::int) FILTER (WHERE f.at IS NOT NULL OR i.expected_at < now())
           AS within_sla_share
FROM incidents i
LEFT JOIN LATERAL (SELECT min(t.at) AS at FROM incident_transitions t
                   WHERE t.incident_id = i.id AND t.kind = 'status'
                     AND t.to_status IN ('resolved', 'rejected')) f ON true
WHERE i.service_code IS NOT NULL AND i.duplicate_of IS NULL AND i.category <> 'security_event'
  AND i.reported_at >= (%(start)s::date)::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh'
  AND i.reported_at < (%(end)s::date)::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh'
GROUP BY ROLLUP (i.agency_code)
"""


def prepare(url: str, n: int, log: Callable[[str], None]) -> dt.date:
    """The database with N bench reports in the year before the sample's date; that date."""
    # The database itself exists (created like the others: /work/mkdb.sh, scripts/setup.sh).
    env = {"GEOIOC_DATABASE_URL": url}
    with psycopg.connect(url, autocommit=True) as conn:
        loaded = conn.execute("SELECT to_regclass('sample_info') IS NOT NULL").fetchone()
        ready = loaded and loaded[0] and conn.execute(
            "SELECT count(*) FROM sample_info").fetchone()[0] > 0  # type: ignore[index]
    if not ready:
        log("migrating and loading the sample province")
        benchdb.run([GEOIOC, "db", "migrate"], env)
        benchdb.run([GEOIOC, "sample", "load", "--replace"], env)
    else:
        benchdb.run([GEOIOC, "db", "migrate"], env)
    with psycopg.connect(url, autocommit=True) as conn:
        as_of = conn.execute("SELECT as_of FROM sample_info").fetchone()[0]  # type: ignore[index]
        have = conn.execute("SELECT count(*) FROM incidents WHERE title = 'bench transparency'"
                            ).fetchone()[0]  # type: ignore[index]
        if have != n:
            log(f"generating {n:,} reports in SQL (had {have:,})")
            t0 = time.perf_counter()
            conn.execute("DELETE FROM incidents WHERE title = 'bench transparency'")
            end = dt.datetime.combine(as_of, dt.time(), dt.UTC)
            with conn.transaction():
                for statement in GENERATE.split(";\n"):
                    if statement.strip():
                        conn.execute(statement, {"n": n, "end": end})
            log(f"  {time.perf_counter() - t0:.0f} s; VACUUM ANALYZE")
            conn.execute("VACUUM ANALYZE incidents")
            conn.execute("VACUUM ANALYZE incident_transitions")
    return as_of  # type: ignore[no-any-return]


def timed(fn: Callable[[], object], runs: int) -> tuple[float, float, object]:
    fn()  # warm-up
    times, out = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    p99 = times[min(len(times) - 1, round(0.99 * (len(times) - 1)))]
    return statistics.median(times), p99, out


def public_reports(conn: psycopg.Connection, period: dict[str, str]) -> int:
    """The public reports of PERIOD (start and end: Vietnam-time dates, end exclusive), counted
    independently of the transparency queries: what the province's `received` must equal."""
    row = conn.execute(
        "SELECT count(*) FROM incidents i WHERE i.service_code IS NOT NULL AND"
        " i.duplicate_of IS NULL AND i.category <> 'security_event' AND i.reported_at >="
        " (%(start)s::date)::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh' AND i.reported_at <"
        " (%(end)s::date)::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh'", period).fetchone()
    return int(row[0]) if row else 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--database", default="geoioc_ht1m")
    ap.add_argument("--reports", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    url = benchdb.db_url(args.database)
    as_of = prepare(url, args.reports, print)

    import os

    os.environ["GEOIOC_DATABASE_URL"] = url
    os.environ.setdefault("GEOIOC_RATE_LIMIT_ANONYMOUS_BURST", "100000")
    os.environ.setdefault("GEOIOC_RATE_LIMIT_ANONYMOUS_PER_SECOND", "100000")
    # No queue worker in this process: its periodic refresh would fill the kept figures
    # between a "cold" run's drop and its request. The refresh is timed on its own below.
    os.environ["GEOIOC_JOBS_IN_PROCESS"] = "false"
    from fastapi.testclient import TestClient

    from api.app import create_app

    end = as_of + dt.timedelta(days=1)
    start = end - dt.timedelta(days=365)
    period = {"start": start.isoformat(), "end": end.isoformat()}
    with psycopg.connect(url) as conn:
        counted = public_reports(conn, period)
    print(f"\nperiod {start} .. {end} (exclusive): {counted:,} public reports; {args.runs} runs")
    rows: list[tuple[str, float, float]] = []
    from gis.reports import transparency

    store = psycopg.connect(url, autocommit=True)

    def forget() -> None:
        transparency.forget(store)

    with TestClient(create_app()) as client:
        def get(path: str, params: dict[str, str], cold: bool) -> Callable[[], object]:
            def call() -> object:
                if cold:
                    forget()
                r = client.get(path, params=params)
                assert r.status_code == 200, r.text
                return r.json()
            return call

        def page_load() -> object:
            """What the page asks for a period, the figures not kept yet."""
            forget()
            return [get(f"/api/transparency/{what}", period, False)()
                    for what in ("agencies", "communes", "ranking")]

        api_body = None
        for path, params, cold in (("/api/transparency/agencies", period, True),
                                   ("/api/transparency/agencies", period, False),
                                   ("/api/transparency/communes", period, True),
                                   ("/api/transparency/communes", period, False),
                                   ("/api/transparency/ranking", period, False),
                                   ("/api/transparency/overdue", {}, False)):
            p50, p99, body = timed(get(path, params, cold), args.runs)
            kept = " (period computed)" if cold else (" (figures kept)" if params else "")
            rows.append((f"GET {path.rsplit('/', 1)[1]}, a year{kept}" if params
                         else f"GET {path.rsplit('/', 1)[1]} (open reports now)", p50, p99))
            if path.endswith("agencies"):
                api_body = body
        month = {"start": (end - dt.timedelta(days=30)).isoformat(), "end": end.isoformat()}
        p50, p99, _ = timed(get("/api/transparency/agencies", month, True), args.runs)
        rows.append(("GET agencies, the last 30 days (period computed)", p50, p99))
        p50, p99, _ = timed(page_load, args.runs)
        rows.append(("page load: agencies + communes + ranking, period computed", p50, p99))
        # What a reader gets: the queue's refresh has kept the period (it was asked for).
        refresh_runs = max(3, args.runs // 10)
        def refresh() -> int:
            """The queue's job when every period is due (nothing kept: it computes all)."""
            forget()
            return transparency.refresh(store)

        p50, p99, computed = timed(refresh, refresh_runs)
        rows.append((f"refresh: the queue's job, {computed} periods computed (the page's "
                     f"usual ones, this year's among them), {refresh_runs} runs", p50, p99))
        p50, p99, _ = timed(lambda: [get(f"/api/transparency/{what}", period, False)()
                                     for what in ("agencies", "communes", "ranking")], args.runs)
        rows.append(("page load: agencies + communes + ranking, figures kept", p50, p99))
    with psycopg.connect(url) as conn:
        naive_runs = max(3, args.runs // 10)
        p50, p99, naive = timed(lambda: conn.execute(NAIVE, period).fetchall(), naive_runs)
        rows.append((f"naive SQL (first answer from the transitions), {naive_runs} runs", p50, p99))
    province = api_body["province"] if isinstance(api_body, dict) else None
    total = next(r[2:] for r in naive if r[0] == 1)  # type: ignore[union-attr]
    print(f"\n{'':70} {'p50 ms':>8} {'p99 ms':>8}")
    for name, p50, p99 in rows:
        print(f"{name:70} {p50:8.1f} {p99:8.1f}")
    print(f"\nprovince (API):   received {province['received']:,}, median {province['median_hours']} h,"  # type: ignore[index]
          f" p90 {province['p90_hours']} h")  # type: ignore[index]
    print(f"province (naive): received {total[0]:,}, median {total[1]:.2f} h, p90 {total[2]:.2f} h")
    assert province is not None and province["received"] == total[0]
    assert abs(province["median_hours"] - total[1]) < 0.006
    assert abs(province["p90_hours"] - total[2]) < 0.006


if __name__ == "__main__":
    main()
