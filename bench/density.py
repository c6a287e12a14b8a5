"""Honest incident maps: kernel density, grid counts and rates per commune as GeoIOC computes them
(aggregates counted in PostGIS, the kernel as one FFT convolution) next to what a user would
write instead: read the points into geopandas and compute in Python.

    PYTHONPATH=. .venv/bin/python bench/density.py --database postgresql://.../geoioc
    .venv/bin/python bench/density.py --repeat 5 --no-readme

For a one-year window and all time (an operator's rows: security events hidden), each figure is
the median of --repeat runs on a warm connection, in the same process:
- KDE, 100 m cells, 500 m quartic kernel, province-wide: ours = gis.analysis.density.kde (counts
  per cell in SQL, scipy FFT convolution); naive = geopandas.read_postgis of the points, to_crs
  VN-2000 TM-3, numpy histogram2d on the same grid, the same scipy convolution. Both surfaces are
  compared cell by cell (✓ = equal within 1e-9).
- grid counts, 500 m hexagons: ours = density.grid_counts (cell by arithmetic in SQL, polygons
  of non-empty cells only); naive = the points in geopandas, a hexagon grid from PostGIS's
  ST_HexagonGrid over the province read into geopandas, geopandas.sjoin, value_counts. ✓ = the
  same counts per cell.
- rates per commune: ours = density.unit_rates; naive = communes and points in geopandas,
  sjoin(predicate="covered_by")... per commune counts and areas. ✓ = the same counts.
The sample has no larger synthetic set built by bench/heatmap.py (it measures the database it is
given): run this on a database loaded with `geoioc sample load --scale N` for larger figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import geopandas as gpd
import numpy as np
import psycopg
from map_server import DEFAULT_DB, write_section
from scipy.signal import fftconvolve

from gis.analysis import density as D
from gis.analysis.incidents import IncidentFilter
from layers.access import Principal, row_filter
from layers.catalogue import get_layer

SRID = 9209
HEADER = ("| window | incidents | view | ours ms | naive ms | faster | check |\n"
          + "|---" * 7 + "|")


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), result


def points(conn: psycopg.Connection, f: IncidentFilter) -> gpd.GeoDataFrame:
    return gpd.read_postgis(
        "SELECT id, geom FROM incidents WHERE reported_at >= %(s)s AND reported_at < %(e)s"
        " AND category <> 'security_event'", conn, geom_col="geom",
        params={"s": f.start, "e": f.end})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--database", default=DEFAULT_DB)
    ap.add_argument("--no-readme", action="store_true")
    args = ap.parse_args()
    import os

    os.environ["GEOIOC_DATABASE_URL"] = args.database
    restrict = row_filter(get_layer("incidents"), Principal("bench", frozenset({"operator"})))
    rows = []
    with psycopg.connect(args.database, autocommit=True) as conn:
        end = conn.execute("SELECT max(reported_at) + interval '1 second' FROM incidents").fetchone()[0]
        first = conn.execute("SELECT min(reported_at) FROM incidents").fetchone()[0]
        day = D.vn_today()
        for label, start in (("1 year", end - dt.timedelta(days=365)), ("all", first)):
            f = IncidentFilter(start, end)
            n = conn.execute("SELECT count(*) FROM incidents WHERE reported_at >= %s AND "
                             "reported_at < %s AND category <> 'security_event'",
                             (start, end)).fetchone()[0]

            # --- KDE
            def ours_kde(f: IncidentFilter = f) -> D.Density:
                return D.kde(conn, f, restrict, bandwidth=500, cell=100)

            ms_ours, d = timed(ours_kde, args.repeat)

            def naive_kde(f: IncidentFilter = f, grid: D.Grid = d.grid) -> np.ndarray:
                pts = points(conn, f).to_crs(SRID)
                x1, y1, x2, y2 = grid.bounds
                h, _, _ = np.histogram2d(pts.geometry.y, pts.geometry.x, bins=grid.shape,
                                         range=[[y1, y2], [x1, x2]])
                k = D.kernel("quartic", 500, 100)
                return fftconvolve(h, k, mode="same") / grid.cell_km2

            ms_naive, surface = timed(naive_kde, args.repeat)
            surface[surface < surface.max() * 1e-9] = 0
            ok = bool(np.allclose(surface, d.values, atol=1e-9 * max(1.0, d.max)))
            rows.append((label, n, "KDE 100 m, province", ms_ours, ms_naive, ok))

            # --- grid counts
            def ours_grid(f: IncidentFilter = f) -> D.GridCounts:
                return D.grid_counts(conn, f, restrict, "hexagon", 500)

            ms_ours, g = timed(ours_grid, args.repeat)

            def naive_grid(f: IncidentFilter = f) -> dict[tuple[int, int], int]:
                pts = points(conn, f).to_crs(SRID)
                hexes = gpd.read_postgis(
                    "SELECT i, j, geom FROM ST_HexagonGrid(500, (SELECT ST_Transform(geom, 9209)"
                    " FROM admin_units WHERE level = 'province' AND valid_to IS NULL))",
                    conn, geom_col="geom", crs=SRID)
                joined = gpd.sjoin(pts, hexes, predicate="within")
                return {(int(i), int(j)): int(c) for (i, j), c in
                        joined.groupby(["i", "j"]).size().items()}

            ms_naive, naive_counts = timed(naive_grid, args.repeat)
            ok = naive_counts == {(i, j): c for i, j, c, _ in g.cells}
            rows.append((label, n, "hexagon counts 500 m", ms_ours, ms_naive, ok))

            # --- rates per commune
            def ours_rates(f: IncidentFilter = f) -> D.UnitRates:
                return D.unit_rates(conn, f, restrict, None, day)

            ms_ours, r = timed(ours_rates, args.repeat)

            def naive_rates(f: IncidentFilter = f) -> dict[str, int]:
                pts = points(conn, f)
                units = gpd.read_postgis(
                    "SELECT code, population, geom FROM admin_units WHERE level = 'commune'"
                    " AND valid_to IS NULL", conn, geom_col="geom")
                joined = gpd.sjoin(pts, units, predicate="covered_by")
                counts = joined.groupby("code").size()
                units["area_km2"] = units.to_crs(SRID).area / 1e6
                units["n"] = units["code"].map(counts).fillna(0).astype(int)
                units["per_1000"] = units["n"] / units["population"] * 1000
                return dict(zip(units["code"], units["n"], strict=True))

            ms_naive, naive_units = timed(naive_rates, args.repeat)
            ok = naive_units == dict(zip(r.codes, r.counts.tolist(), strict=True))
            rows.append((label, n, "rates per commune", ms_ours, ms_naive, ok))
    for label, n, view, mo, mn, ok in rows:
        print(f"{label:7} {n:8,} {view:22} ours {mo:8.1f} ms | naive {mn:8.1f} ms | "
              f"{mn / mo:5.1f}× | {'✓' if ok else '✗'}")
    if args.no_readme:
        return
    table = "\n".join(f"| {label} | {n:,} | {view} | **{mo:.0f}** | {mn:.0f} | {mn / mo:.1f}× | "
                      f"{'✓' if ok else '✗'} |" for label, n, view, mo, mn, ok in rows)
    write_section("density", f"""### `bench/density.py`: honest maps in PostGIS + numpy vs geopandas

An operator's rows (security events hidden), {platform.machine()}, {dt.date.today().isoformat()},
median of {args.repeat}, in process on a warm connection (no HTTP). "Naive" reads the points into
geopandas and computes in Python (histogram2d + the same scipy convolution; sjoin with a
hexagon grid; sjoin with the communes); ✓ = the same surface or counts.

{HEADER}
{table}

Ours ships aggregates (one row per non-empty cell or commune); the naive path ships every point
and its geometry, and its cost grows with the window.""")


if __name__ == "__main__":
    main()
