"""What an alert evaluation costs the ingest: gis.sensors.alerts.evaluate() for a batch of N
datastreams, each with 24 hours of hourly PM2.5 readings (so the 24-hour mean, the rate and the
silence rules all have data to read), in three states:

- quiet: nothing breaches (the usual batch);
- opening: every datastream breaches for the first time: N alerts and N incidents made (the
  rare path: incidents are written one by one, with their workflow transition);
- open: the same breaches evaluated again (no new alert; the usual batch during an episode).

Everything happens in one transaction that is rolled back: the database (GEOIOC_DATABASE_URL,
migrated, with the sample's communes) is left as it was.

    .venv/bin/python bench/alerts.py [--sizes 100,1000,5000] [--repeat 5]

Figures of 2026-12-03 on the 2-core development machine, shared with other work (load average
5 to 8 during the run), median of 5, milliseconds for the whole batch:

    datastreams  quiet  opening (N alerts + N incidents)  open
            100     28                 355                  21
           1000     45               1,743                  71
           5000    178               8,826                 273

About 0.04 ms a datastream for the usual batch (one index range scan of the hourly rollups for
the 24-hour mean, one key lookup for the rate, the latest row); 1.7 ms an alert for the rare
batch that opens them (each incident and its first transition written, the consoles told).
Before `SET LOCAL jit = off` the 5000-datastream batch took 1.3 s: the planner's estimate passes
jit_above_cost and compiling cost more than running.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time

import psycopg

from gis.sensors import alerts
from gis.settings import get_settings


def prepare(conn: psycopg.Connection, n: int, start: dt.datetime) -> list[int]:
    """N stations (in maintenance: silence not judged) with 24 hourly readings of 20 µg/m³."""
    conn.execute(
        "INSERT INTO sensors (code, name, kind, parameter, unit, threshold, status, geom)"
        " SELECT 'AIR-' || (800000 + g), 'Trạm đo thử ' || g, 'air', 'pm25', 'µg/m³', 50,"
        " 'maintenance', ST_SetSRID(ST_MakePoint(105.9 + (g %% 100) * 0.002, 21.0 + (g / 100) * 0.002),"
        " 4326) FROM generate_series(1, %s) g", (n,))
    ids = [r[0] for r in conn.execute(
        "SELECT d.id FROM datastreams d JOIN sensors s ON s.id = d.thing_id"
        " WHERE s.code LIKE 'AIR-8%%' ORDER BY d.id")]
    conn.execute(
        "INSERT INTO observations (datastream_id, phenomenon_time, result, result_time,"
        " feature_of_interest_id)"
        " SELECT d.id, t, 20, t, l.feature_of_interest_id FROM datastreams d"
        " JOIN thing_locations l ON l.thing_id = d.thing_id,"
        " generate_series(%s::timestamptz, %s::timestamptz, interval '1 hour') t"
        " WHERE d.id = ANY(%s)", (start, start + dt.timedelta(hours=23), ids))
    # All datastreams' rollups at once (per datastream, the function's generic plan reads
    # every observation for each one).
    conn.execute("SELECT observation_rollups_rebuild()")
    return ids


def timed(conn: psycopg.Connection, ids: list[int], now: dt.datetime, repeat: int) -> tuple[float, int]:
    times, opened = [], 0
    for k in range(repeat):
        t0 = time.perf_counter()
        done = alerts.evaluate(conn, ids, now + dt.timedelta(seconds=k))
        times.append(time.perf_counter() - t0)
        opened += len(done.opened)
    return statistics.median(times) * 1000, opened


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100,1000,5000")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    print(f"{'datastreams':>11} {'quiet ms':>9} {'opening ms':>11} {'open ms':>8} {'alerts':>7}")
    with psycopg.connect(get_settings().database_url) as conn:
        for n in (int(x) for x in args.sizes.split(",")):
            start = conn.execute("SELECT date_trunc('hour', now()) - interval '30 hours'").fetchone()[0]
            ids = prepare(conn, n, start)
            now = start + dt.timedelta(hours=23, minutes=5)
            quiet, _ = timed(conn, ids, now, args.repeat)
            conn.execute("UPDATE observation_hourly SET sum = 80 * n, min = 80, max = 80,"
                         " first_result = 80, last_result = 80 WHERE datastream_id = ANY(%s)", (ids,))
            conn.execute("UPDATE datastream_latest SET result = 80 WHERE datastream_id = ANY(%s)", (ids,))
            t0 = time.perf_counter()
            done = alerts.evaluate(conn, ids, now + dt.timedelta(minutes=1))
            opening = (time.perf_counter() - t0) * 1000
            still, again = timed(conn, ids, now + dt.timedelta(minutes=2), args.repeat)
            assert again == 0 and len(done.opened) == n, (again, len(done.opened))
            print(f"{n:>11} {quiet:>9.1f} {opening:>11.1f} {still:>8.1f} {len(done.opened):>7}")
            conn.rollback()


if __name__ == "__main__":
    main()
