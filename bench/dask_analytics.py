"""Issue 18's distributed analytics: KDE, grid counts, Gi* and emerging hot spots computed
in-database (PostGIS counts) and on a Dask cluster (dask-geopandas workers read their
partitions from PostgreSQL, project and bin; gis/analysis/distributed.py), side by side.

    PYTHONPATH=. .venv/bin/python bench/dask_analytics.py --database postgresql://.../db
    .venv/bin/python bench/dask_analytics.py --scheduler tcp://10.0.0.5:8786 --repeat 3 --no-readme

Without --scheduler a LocalCluster of --workers processes (one thread each) is started on
loopback, on this machine: then the workers share its cores with PostgreSQL, so this measures
the overhead of the Dask path more than its gain (the gain needs workers on other machines).
In process, on a warm connection (no HTTP), an operator's rows (security events hidden); each
figure is the median of --repeat runs after one warm-up run of each path (the workers' first
task imports geopandas and pyproj). "equal" compares the answers: the KDE surface (allclose),
the grid's cells (i, j, count, polygon), the cube's counts, the Gi* z-scores and classes, the
emerging categories.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import psycopg
from map_server import DEFAULT_DB, write_section

SRID = 9209


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    fn()  # warm-up
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database", default=DEFAULT_DB)
    ap.add_argument("--scheduler", default="", help="an existing scheduler (else a LocalCluster)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-readme", action="store_true")
    args = ap.parse_args()
    os.environ["GEOIOC_DATABASE_URL"] = args.database
    os.environ.pop("GEOIOC_DASK_SCHEDULER", None)

    from gis.analysis import density as D
    from gis.analysis import distributed
    from gis.analysis import hotspot_queries as hq
    from gis.analysis import hotspots as hs
    from gis.analysis.incidents import IncidentFilter
    from gis.settings import get_settings
    from layers.access import Principal, row_filter
    from layers.catalogue import get_layer

    restrict = row_filter(get_layer("incidents"), Principal("bench", frozenset({"operator"})))
    cluster = None
    address = args.scheduler
    if not address:
        from distributed import LocalCluster

        cluster = LocalCluster(n_workers=args.workers, processes=True, threads_per_worker=1,
                               host="127.0.0.1", dashboard_address=None)
        address = cluster.scheduler_address

    def engine(on: bool) -> None:
        if on:
            os.environ["GEOIOC_DASK_SCHEDULER"] = address
        else:
            os.environ.pop("GEOIOC_DASK_SCHEDULER", None)
        get_settings.cache_clear()

    rows: list[tuple[str, str, int, float, float, bool]] = []
    with psycopg.connect(args.database, autocommit=True) as conn:
        first, last = conn.execute("SELECT min(reported_at), max(reported_at) FROM incidents").fetchone()
        end = last + dt.timedelta(seconds=1)
        area = hq.study_area(conn, SRID, None, hs.window_day(end), None)
        assert area is not None
        box = D.province_box(conn, SRID)
        for label, start in (("1 year", end - dt.timedelta(days=365)), ("all", first)):
            f = IncidentFilter(start, end)
            n = conn.execute("SELECT count(*) FROM incidents WHERE reported_at >= %s AND "
                             "reported_at < %s AND category <> 'security_event'",
                             (start, end)).fetchone()[0]
            bins = "monthly" if label == "all" else "weekly"
            cases: list[tuple[str, Callable[[], Any], Callable[[Any, Any], bool]]] = [
                ("KDE 100 m, 500 m quartic, province",
                 lambda f=f: D.kde(conn, f, restrict, bandwidth=500, cell=100, box=box),
                 lambda a, b: a.counted == b.counted and np.allclose(a.values, b.values)),
                ("grid counts, 500 m hexagons",
                 lambda f=f: D.grid_counts(conn, f, restrict, "hexagon", 500),
                 lambda a, b: a.cells == b.cells),
                ("Gi* (analytic p), 1 km hexagons: cube + statistic",
                 lambda f=f: (lambda g: (g, hs.hot_spots(g)))(
                     hs.load_grid(conn, f, restrict, SRID, area, "hexagon", 1000, "monthly")),
                 lambda a, b: bool(np.array_equal(a[0].counts, b[0].counts)
                                   and np.allclose(a[1].z, b[1].z)
                                   and np.array_equal(a[1].gi_bin, b[1].gi_bin))),
                (f"emerging, 2 km hexagons × {bins} bins",
                 lambda f=f, bins=bins: hs.emerging(
                     hs.load_grid(conn, f, restrict, SRID, area, "hexagon", 2000, bins)),
                 lambda a, b: a.categories == b.categories),
            ]
            for name, fn, same in cases:
                engine(False)
                ms_db, a = timed(fn, args.repeat)
                engine(True)
                assert distributed.client() is not None, f"no scheduler at {address}"
                ms_dask, b = timed(fn, args.repeat)
                engine(False)
                ok = bool(same(a, b))
                rows.append((label, name, n, ms_db, ms_dask, ok))
                print(f"{label:7} {n:10,} {name:52} in-db {ms_db:9,.0f} ms | Dask "
                      f"{ms_dask:9,.0f} ms | {'equal' if ok else 'DIFFERENT'}", flush=True)
    distributed.close_clients()
    if cluster is not None:
        cluster.close()
    if args.no_readme:
        return
    load = os.getloadavg()[0]
    where = (f"LocalCluster of {args.workers} worker processes × 1 thread on this machine"
             if not args.scheduler else f"the cluster at {args.scheduler}")
    table = "\n".join(
        f"| {label} | {n:,} | {name} | {db:,.0f} | {dk:,.0f} | {dk / db:.1f}× | "
        f"{'✓' if ok else '✗'} |" for label, name, n, db, dk, ok in rows)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, {dt.date.today().isoformat()}"
    write_section("dask", f"""{machine}; {where};
median of {args.repeat} after a warm-up, in process; load average {load:.1f} when it ended.
✓ = the same answer both ways.

| window | incidents | analysis | in-database ms | Dask ms | Dask / in-db | equal |
|---|---|---|---|---|---|---|
{table}""")


if __name__ == "__main__":
    main()
