"""The ingest statement's cost with the road traffic part (migration 0024), batch by batch.

The MQTT benchmark (bench/mqtt_ingest.py) measures the whole path on a shared machine whose
load moves its figures by more than this part costs; this one times the statement alone, the
one the ingest runs per batch (gis/sensors/queries.py STORE), on the same staged batch, against
the statement of another tree (--base, e.g. the main branch's worktree, before road traffic),
alternating the two and rolling each batch back, so both see the same tables.

    .venv/bin/python bench/traffic_store.py --base /work/main
    .venv/bin/python bench/traffic_store.py --base /work/main --batch 5000 --runs 30

Batches (--batch observations each, fresh times so road speeds count):
- stations: station datastreams only (the road part finds nothing to do);
- roads: half station datastreams, half road segments' speed and flow (every segment's class
  set, a NOTIFY per 200 changed segments).
Prints the median and p90 milliseconds of each statement on each batch, and their ratio.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402


def statement_of(tree: Path) -> str:
    spec = importlib.util.spec_from_file_location("base_queries", tree / "gis/sensors/queries.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return str(mod.STORE)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", type=Path, required=True, help="the tree whose STORE to compare with")
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--stations", type=int, default=1000)
    ap.add_argument("--roads", type=int, default=500)
    args = ap.parse_args()

    from gis.sensors import queries
    from gis.settings import get_settings

    statements = {"base": statement_of(args.base), "this": queries.STORE}
    url = get_settings().database_url
    with psycopg.connect(url, autocommit=True) as setup:
        setup.execute("DELETE FROM sensors WHERE code LIKE 'AIR-7_____'")
        setup.execute("DELETE FROM roads WHERE name = 'Quốc lộ đo lệnh'")
        sensors = [r[0] for r in setup.execute(
            "INSERT INTO sensors (code, name, kind, parameter, unit, threshold, status, geom)"
            " SELECT 'AIR-7' || lpad(i::text, 5, '0'), 'Trạm đo lệnh ' || i, 'air', 'pm25', 'µg/m³',"
            " 50, 'online', ST_SetSRID(ST_MakePoint(106.0 + i * 0.0001, 21.2), 4326)"
            " FROM generate_series(1, %s) AS i RETURNING id", (args.stations,))]
        roads = [r[0] for r in setup.execute(
            "INSERT INTO roads (name, road_class, lanes, max_speed, traffic_state, geom)"
            " SELECT 'Quốc lộ đo lệnh', 'trunk', 4, 80, 'free', ST_SetSRID(ST_MakeLine("
            " ST_MakePoint(106.0 + i * 0.0001, 21.3), ST_MakePoint(106.0 + i * 0.0001, 21.301)),"
            " 4326) FROM generate_series(1, %s) AS i RETURNING id", (args.roads,))]
        station_ds = [r[0] for r in setup.execute(
            "SELECT id FROM datastreams WHERE thing_id = ANY(%s) ORDER BY id", (sensors,))]
        road_ds = [r[0] for r in setup.execute(
            "SELECT d.id FROM datastreams d JOIN things t ON t.id = d.thing_id"
            " WHERE t.road_id = ANY(%s) ORDER BY d.id", (roads,))]
        setup.execute("SELECT observations_ensure_partitions(1)")
    try:
        batches = {"stations": station_ds, "roads": station_ds[:len(road_ds)] + road_ds}
        times: dict[tuple[str, str], list[float]] = {(b, s): [] for b in batches for s in statements}
        with psycopg.connect(url) as conn:
            queries.prepare(conn)
            conn.commit()
            t0 = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=5)
            for run in range(args.runs):
                for bname, ds in batches.items():
                    for sname in (("base", "this") if run % 2 else ("this", "base")):
                        with conn.cursor() as cur, cur.copy(queries.COPY_STAGING) as cp:
                            for k in range(args.batch):
                                at = t0 + dt.timedelta(milliseconds=run * args.batch + k)
                                cp.write_row((ds[k % len(ds)], at, None, 5.0 + k % 80, None, at,
                                              None, None))
                        start = time.perf_counter()
                        conn.execute(statements[sname])
                        times[(bname, sname)].append((time.perf_counter() - start) * 1000)
                        conn.rollback()
        for bname in batches:
            base = statistics.median(times[(bname, "base")])
            this = statistics.median(times[(bname, "this")])
            for sname in statements:
                t = sorted(times[(bname, sname)])
                print(f"{bname:9} {sname:5} median {statistics.median(t):7.1f} ms"
                      f"  p90 {t[int(0.9 * (len(t) - 1))]:7.1f} ms")
            print(f"{bname:9} this / base {this / base:.2f}")
    finally:
        with psycopg.connect(url, autocommit=True) as done:
            done.execute("DELETE FROM sensors WHERE id = ANY(%s)", (sensors,))
            done.execute("DELETE FROM roads WHERE id = ANY(%s)", (roads,))


if __name__ == "__main__":
    main()
