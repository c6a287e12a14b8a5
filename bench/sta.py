"""SensorThings reads timed through /sta/v1.1 (a real `geoioc serve`, HTTP) and directly in SQL:

1. the latest observation of every datastream
   STA:    Datastreams?$expand=Observations($orderby=phenomenonTime desc;$top=1)
   direct: SELECT ... FROM datastream_latest
2. one datastream's last 24 hours
   STA:    Datastreams(1)/Observations?$filter=phenomenonTime ge <t - 24 h>&$orderby=phenomenonTime
   direct: the same rows by the key (datastream_id, phenomenon_time)
3. a year's daily chart of one datastream
   STA:    a year of its observations, every page (@iot.nextLink), averaged per day by the client
           (SensorThings has no aggregation)
   direct: SELECT ... FROM observation_daily (the rollup the ingest keeps)

    .venv/bin/python bench/sta.py --db postgresql://.../geoioc_bench [--fill-year] [--runs 30]

--fill-year first adds a year of hourly observations to every datastream of that database (not
the test database: the tests compare with the sample) and rebuilds the rollups. Prints p50 and
p99 in milliseconds (wall clock, the client's side).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import httpx  # noqa: E402
import psycopg  # noqa: E402
from map_server import serve  # noqa: E402


def fill_year(db: str) -> None:
    """A year of hourly observations up to the latest stored for every datastream."""
    with psycopg.connect(db, autocommit=True) as conn:
        end = conn.execute("SELECT max(phenomenon_time) FROM datastream_latest").fetchone()[0]
        start = end - dt.timedelta(days=365)
        conn.execute("SELECT observations_create_partitions(%s::date, %s::date)", (start, end))
        t0 = time.perf_counter()
        n = conn.execute(
            "INSERT INTO observations (datastream_id, phenomenon_time, result, result_time,"
            " feature_of_interest_id) SELECT d.id, t, round((40 + 25 * sin(extract(epoch FROM t)"
            " / 43200.0 + d.id) + random() * 10)::numeric, 2), t, l.foi"
            " FROM datastreams d CROSS JOIN LATERAL (SELECT feature_of_interest_id AS foi"
            " FROM thing_locations WHERE thing_id = d.thing_id ORDER BY time DESC LIMIT 1) l,"
            " generate_series(%s::timestamptz, %s::timestamptz, interval '1 hour') AS t"
            " ON CONFLICT DO NOTHING", (start, end)).rowcount
        conn.execute("SELECT observation_rollups_rebuild()")
        conn.execute("ANALYZE observations")
        print(f"filled {n:,} observations in {time.perf_counter() - t0:.0f} s")


def timed(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    fn()  # warm
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", default=os.environ.get("GEOIOC_DATABASE_URL"))
    ap.add_argument("--fill-year", action="store_true")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--datastream", type=int, default=1)
    args = ap.parse_args()
    if not args.db:
        raise SystemExit("--db or GEOIOC_DATABASE_URL")
    if args.fill_year:
        fill_year(args.db)
    ds = args.datastream
    with psycopg.connect(args.db, autocommit=True) as conn:
        n_obs = conn.execute("SELECT coalesce(sum(observations), 0) FROM datastream_latest").fetchone()[0]
        n_ds = conn.execute("SELECT count(*) FROM datastreams").fetchone()[0]
        last = conn.execute("SELECT phenomenon_time FROM datastream_latest WHERE datastream_id = %s",
                            (ds,)).fetchone()[0]
    day_ago = (last - dt.timedelta(hours=24)).strftime("%Y-%m-%dT%H:%M:%SZ")
    year_ago = (last - dt.timedelta(days=365)).strftime("%Y-%m-%dT%H:%M:%SZ")
    print(f"{n_obs:,} observations in {n_ds} datastreams; datastream {ds}'s latest at {last}")

    with serve(args.db) as url, httpx.Client(base_url=url + "/sta/v1.1", timeout=60) as http, \
            psycopg.connect(args.db, autocommit=True) as conn:

        def sta(path: str, params: dict[str, str]) -> list[dict]:
            out: list[dict] = []
            r = http.get(path, params=params)
            while True:
                r.raise_for_status()
                body = r.json()
                out += body["value"]
                if "@iot.nextLink" not in body:
                    return out
                r = http.get(body["@iot.nextLink"])

        def latest_sta() -> object:
            return sta("/Datastreams", {"$top": "10000", "$select": "id", "$expand":
                                        "Observations($orderby=phenomenonTime desc;$top=1;"
                                        "$select=phenomenonTime,result)"})

        def latest_sql() -> object:
            return conn.execute("SELECT datastream_id, phenomenon_time, result FROM datastream_latest"
                                ).fetchall()

        def day_sta() -> object:
            return sta(f"/Datastreams({ds})/Observations", {
                "$filter": f"phenomenonTime ge {day_ago}", "$orderby": "phenomenonTime",
                "$top": "10000", "$select": "phenomenonTime,result"})

        def day_sql() -> object:
            return conn.execute("SELECT phenomenon_time, result FROM observations WHERE datastream_id"
                                " = %s AND phenomenon_time >= %s ORDER BY phenomenon_time",
                                (ds, day_ago)).fetchall()

        def year_sta() -> object:
            rows = sta(f"/Datastreams({ds})/Observations", {
                "$filter": f"phenomenonTime ge {year_ago}", "$orderby": "phenomenonTime",
                "$top": "10000", "$select": "phenomenonTime,result"})
            days: dict[str, list[float]] = defaultdict(list)
            for o in rows:  # Vietnam days, as the rollup's
                t = dt.datetime.fromisoformat(o["phenomenonTime"]) + dt.timedelta(hours=7)
                days[t.date().isoformat()].append(o["result"])
            return {d: sum(v) / len(v) for d, v in days.items()}

        def year_sql() -> object:
            return conn.execute("SELECT bucket, sum / n, min, max FROM observation_daily WHERE"
                                " datastream_id = %s AND bucket >= %s ORDER BY bucket",
                                (ds, year_ago)).fetchall()

        assert len(latest_sta()) == n_ds  # type: ignore[arg-type]
        assert len(day_sta()) == len(day_sql())  # type: ignore[arg-type]
        print(f"{'query':40} {'STA p50':>9} {'p99':>8} {'SQL p50':>9} {'p99':>8}   rows")
        for name, a, b in (("latest of every datastream", latest_sta, latest_sql),
                           ("one datastream, last 24 h", day_sta, day_sql),
                           ("one datastream, a year by day", year_sta, year_sql)):
            (ap50, ap99), (bp50, bp99) = timed(a, args.runs), timed(b, args.runs)
            rows = len(b())  # type: ignore[arg-type]
            print(f"{name:40} {ap50:9.1f} {ap99:8.1f} {bp50:9.2f} {bp99:8.2f}   {rows}")


if __name__ == "__main__":
    main()
