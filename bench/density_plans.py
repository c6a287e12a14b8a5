"""EXPLAIN (ANALYZE, BUFFERS) of the KDE counting statement and the grid counts for one year,
as main computed them (ST_Transform per row, 4 MB work_mem) and as migration 0027 lets them
(the stored projection incidents.geom_vn; the per-day cell counts incident_cell_days) and
migration 0044 (the per-month cell counts incident_cell_months), each timed as the median of 3.
The figures in bench/README.md ("The stored projection and the per-day cell counts", "Whole
months of 100 m cells for the KDE") come from it.

    PYTHONPATH=. .venv/bin/python bench/density_plans.py postgresql://.../db [name filter ...]
"""

from __future__ import annotations

import datetime as dt
import statistics
import sys
import time

import psycopg
from psycopg import sql

from gis.analysis import aggregates, cell_months
from gis.analysis import density as D
from gis.analysis import density_sql as q
from gis.analysis.incidents import IncidentFilter
from layers.access import Principal, row_filter
from layers.catalogue import get_layer


def main() -> None:
    url, only = sys.argv[1], sys.argv[2:]
    conn = psycopg.connect(url, autocommit=True)
    conn.execute("SET jit = off")
    end = conn.execute("SELECT max(reported_at) + interval '1 second' FROM incidents").fetchone()[0]
    f = IncidentFilter(end - dt.timedelta(days=365), end)
    restrict = row_filter(get_layer("incidents"), Principal("bench", frozenset({"operator"})))
    srid = D.srid()
    k = D.kernel("quartic", 500, 100)
    grid = D.snap_grid(D.province_box(conn, srid), 100, k.shape[0] // 2, srid)
    lonlat = grid.lonlat_bounds(pad=grid.cell)
    base = aggregates.base_grid(conn)
    days = D.raster_days(conn, f, restrict, grid)
    cut = cell_months.read(conn, f)
    if base is None or days is None or cut is None:
        raise SystemExit("the database has no incident_cell_days (migration 0027)"
                         " or no incident_cell_months (0044)")
    variants = {
        "KDE counts, before (ST_Transform per row)": q.raster_counts(
            f, restrict, srid, grid.origin, grid.cell, grid.shape, lonlat),
        "KDE counts, stored geom_vn": q.raster_counts(
            f, restrict, srid, grid.origin, grid.cell, grid.shape, lonlat, stored_srid=srid),
        "KDE counts, incident_cell_days + ragged ends": q.raster_counts_agg(
            f, restrict, grid.origin, grid.cell, grid.shape, lonlat, base.cell, days),
        "KDE counts, incident_cell_months + the rest raw": cell_months.raster_counts(
            restrict, cut, cell_months.counted(conn, f, restrict), grid.origin, grid.cell,
            grid.shape, lonlat, base.cell),
        "hexagon grid 500 m, before": q.grid_counts(f, restrict, srid, "hexagon", 500),
        "hexagon grid 500 m, stored geom_vn": q.grid_counts(
            f, restrict, srid, "hexagon", 500, stored_srid=srid),
        "square grid 500 m, stored geom_vn": q.grid_counts(
            f, restrict, srid, "square", 500, stored_srid=srid),
        "square grid 500 m, incident_cell_days": q.square_counts_agg(
            f, restrict, srid, 500, base.cell, days),
        "square grid 500 m, incident_cell_months + the rest raw": cell_months.square_counts(
            restrict, cut, cell_months.counted(conn, f, restrict), srid, 500, base.cell),
    }
    for name, (query, params) in variants.items():
        if only and not any(o in name for o in only):
            continue
        conn.execute("SET work_mem = '4MB'" if "before" in name else "SET work_mem = '64MB'")
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            conn.execute(query, params).fetchall()
            times.append((time.perf_counter() - t0) * 1000)
        print(f"## {name}: {statistics.median(times):.0f} ms (median of 3)")
        plan = conn.execute(sql.SQL("EXPLAIN (ANALYZE, BUFFERS) ") + query, params).fetchall()
        print("\n".join(r[0] for r in plan), end="\n\n")


if __name__ == "__main__":
    main()
