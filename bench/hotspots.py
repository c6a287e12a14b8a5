"""Hot spots: latency of the grid counts (PostGIS) + Gi* and of emerging hot spots, by grid size,
analytic against permutation p-values, in-process on a database with the sample province.

    GEOIOC_DATABASE_URL=... .venv/bin/python bench/hotspots.py [--repeat 3]

The window is the sample's last year (about 25,000 incidents, all categories, as an admin who
sees every row). "grid" is the two SQL queries (cells over the province, counts per cell and
monthly bin) and the GeoDataFrame; "Gi*" the statistic, p-values, BH and the count trends;
"emerging" the per-slice Gi* over the 12 monthly slices, BH per slice, Mann-Kendall and the
categories. Permutation p-values are shown where the grid is small enough for them (the rule of
gis/analysis/hotspots.py: auto uses them up to AUTO_PERMUTATION_MAX_CELLS cells); the larger rows
force P = 999 to show what permutations would cost there. Times: median of --repeat runs, ms.

    GEOIOC_DATABASE_URL=... .venv/bin/python bench/hotspots.py --api [--repeat 5]

`--api`: issue 17's two hot-spot targets end to end through a real `geoioc serve` (HTTP, as an
operator), each call's first request after the server started (the grid's cells not yet in the
process's cache: gis.analysis.hotspots.area_cells) and then the median of --repeat: Gi* on about
10,000 hexagons with 999 permutations over the last year, and emerging hot spots on 1 km
hexagons over 52 weekly bins.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import time

import psycopg

from gis.analysis import hotspot_queries as hq
from gis.analysis import hotspots as hs
from gis.analysis.incidents import IncidentFilter

SIZES = (("hexagon", 2500), ("hexagon", 1500), ("hexagon", 700), ("hexagon", 300),
         ("hexagon", 150), ("square", 120))


def median_ms(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), out


def api(db: str, repeat: int) -> None:
    import math

    import httpx
    from map_server import serve, temp_user

    with psycopg.connect(db, autocommit=True) as conn:
        end, total = conn.execute("SELECT max(reported_at) + interval '1 second', count(*)"
                                  " FROM incidents").fetchone()
        area = conn.execute("SELECT ST_Area(ST_Transform(geom, 9209)) FROM admin_units"
                            " WHERE level = 'province' AND valid_to IS NULL").fetchone()[0]
    size = round(math.sqrt(area / (10_000 / 1.04) / (1.5 * math.sqrt(3))))  # ~10,000 cells
    iso = lambda t: t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")  # noqa: E731
    calls = [
        ("Gi*, 999 permutations, 1 year", "/api/incidents/hotspots",
         {"start": iso(end - dt.timedelta(days=365)), "end": iso(end), "shape": "hexagon",
          "cell_m": size, "permutations": 999}),
        ("emerging, 1 km hexagons × 52 weeks", "/api/incidents/hotspots/emerging",
         {"start": iso(end - dt.timedelta(days=52 * 7)), "end": iso(end), "shape": "hexagon",
          "cell_m": 1000, "bin": "weekly"}),
    ]
    print(f"{total:,} incidents; through `geoioc serve`, ms")
    print("| call | cells × bins | first request ms | then, median of "
          f"{repeat} ms |\n|---|---|---|---|")
    with serve(db) as url, temp_user(db, "operator") as (_, _, key), \
            httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=600) as http:
        http.get("/api/incidents/stats").raise_for_status()  # the server's imports
        for what, path, params in calls:
            def one(path: str = path, params: dict = params) -> dict:
                r = http.get(path, params=params)
                r.raise_for_status()
                return r.json()
            first, body = median_ms(one, 1)
            then, _ = median_ms(one, repeat)
            print(f"| {what} | {body['cells']:,} × {len(body['bins'])} | {first:,.0f} | "
                  f"{then:,.0f} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--api", action="store_true")
    args = ap.parse_args()
    if args.api:
        api(os.environ["GEOIOC_DATABASE_URL"], args.repeat)
        return
    conn = psycopg.connect(os.environ["GEOIOC_DATABASE_URL"])
    end = conn.execute("SELECT date_trunc('month', max(reported_at)) FROM incidents").fetchone()[0]
    f = IncidentFilter(start=end - dt.timedelta(days=365), end=end)
    area = hq.study_area(conn, 9209, None, hs.window_day(end), None)
    assert area is not None
    hs.hot_spots(hs.load_grid(conn, f, None, 9209, area, "hexagon", 3000, "monthly"))  # imports
    print("| cells | shape, cell | grid (SQL) ms | Gi* analytic ms | Gi* permutations | "
          "permutation ms | emerging (12 months) ms |")
    print("|---|---|---|---|---|---|---|")
    for shape, size in SIZES:
        t_grid, grid = median_ms(lambda s=shape, z=size: hs.load_grid(
            conn, f, None, 9209, area, s, z, "monthly"), args.repeat)
        t_an, _ = median_ms(lambda g=grid: hs.hot_spots(g, 0), args.repeat)
        perms = hs.p_value_method(grid.n, None) or 999
        if grid.n * perms <= hs.MAX_PERMUTATION_WORK:
            t_perm, _ = median_ms(lambda g=grid, p=perms: hs.hot_spots(g, p), 1)
            perm = f"{t_perm:,.0f}"
        else:
            perm = "refused (over the work bound)"
        t_em, _ = median_ms(lambda g=grid: hs.emerging(g), args.repeat)
        print(f"| {grid.n:,} | {shape} {size} m | {t_grid:,.0f} | {t_an:,.0f} | {perms:,} | {perm} "
              f"| {t_em:,.0f} |")


if __name__ == "__main__":
    main()
