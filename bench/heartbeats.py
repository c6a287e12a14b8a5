"""Camera heartbeats: the set-based statement against one statement per heartbeat.

A province's cameras report every 30 seconds or so; the ingest applies what arrived in one
statement per batch (gis/sensors/cameras.py store_heartbeats: last_seen, quality, status,
its history and NOTIFY, camera_queries.HEARTBEATS). The path a user would write applies each
heartbeat as it comes, one statement (and one round trip) each. Both run the same statement
here, on the same batches of the sample's cameras (heartbeats at fresh times, every fifth one
degraded so statuses change), each batch rolled back so both see the same tables.

    .venv/bin/python bench/heartbeats.py
    .venv/bin/python bench/heartbeats.py --batch 1000 --runs 10

Prints heartbeats a second for each way and their ratio.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=1000, help="heartbeats a batch")
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()

    from gis.sensors import cameras
    from gis.settings import get_settings

    settings = get_settings()
    limits = cameras.Limits.of(settings)
    with psycopg.connect(settings.database_url) as conn:
        codes = [code for _, code in cameras.simulation_cameras(conn)]
        conn.rollback()
        if not codes:
            sys.exit("no cameras: load the sample first (geoioc sample load)")

        def batch(run: int) -> list[cameras.Heartbeat]:
            now = dt.datetime.now(dt.UTC)
            return [cameras.Heartbeat(codes[i % len(codes)], now - dt.timedelta(milliseconds=i),
                                      fps=5.0 if (i + run) % 5 == 0 else 25.0, bitrate_kbps=2048.0,
                                      quality=0.9) for i in range(args.batch)]

        times: dict[str, list[float]] = {"set-based": [], "one by one": []}
        for run in range(args.runs):
            beats = batch(run)
            for way in times:
                t0 = time.perf_counter()
                if way == "set-based":
                    cameras.store_heartbeats(conn, beats, limits)
                else:
                    for b in beats:
                        cameras.store_heartbeats(conn, [b], limits)
                times[way].append(time.perf_counter() - t0)
                conn.rollback()

    print(f"{args.batch} heartbeats a batch over {len(codes)} cameras, {args.runs} runs")
    rate = {way: args.batch / statistics.median(t) for way, t in times.items()}
    for way, t in times.items():
        print(f"  {way:<11} median {statistics.median(t) * 1000:8.1f} ms  {rate[way]:10,.0f} heartbeats/s")
    print(f"  ratio: set-based is {rate['set-based'] / rate['one by one']:.1f}x the one-by-one rate")


if __name__ == "__main__":
    main()
