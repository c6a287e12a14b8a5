"""Hexagon grid counts: the point-in-hexagon rule of gis/analysis/density_sql.py (the strip
shortcut: two thirds of the points take their column's nearest centre by one rounding) against
the rule it replaced (both candidate columns' distances for every point), on the same rows,
alternated, median of N; and a check that both put every point in the same cell.

    PYTHONPATH=. .venv/bin/python bench/hex_cells.py postgresql://.../db [--repeat 5]

The figures in bench/README.md ("Hexagon cells: the strip shortcut") come from it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time

import psycopg
from psycopg import sql

from gis.analysis import aggregates
from gis.analysis import density as D
from gis.analysis import density_sql as q
from gis.analysis.incidents import IncidentFilter, where

# The rule before: both distances for every point (the query as it was, parameters as it had).
TWO_DISTANCES = (
    "SELECT i, j, count(*)::int AS n FROM ("
    " SELECT CASE WHEN d0 <= d1 THEN i0 ELSE i0 + 1 END AS i,"
    " CASE WHEN d0 <= d1 THEN j0 ELSE j1 END AS j"
    " FROM (SELECT i0, j0, j1,"
    "  (x - 1.5 * s * i0) ^ 2 + (y - h * j0 - h / 2 * (i0 & 1)) ^ 2 AS d0,"
    "  (x - 1.5 * s * (i0 + 1)) ^ 2 + (y - h * j1 - h / 2 * ((i0 + 1) & 1)) ^ 2 AS d1"
    "  FROM (SELECT x, y, s, h, i0,"
    "   round((y - h / 2 * (i0 & 1)) / h)::int AS j0,"
    "   round((y - h / 2 * ((i0 + 1) & 1)) / h)::int AS j1"
    "   FROM (SELECT ST_X(p) AS x, ST_Y(p) AS y, %s::float8 AS s, %s::float8 AS h,"
    "    floor(ST_X(p) / (1.5 * %s))::int AS i0"
    "    FROM (SELECT t.geom_vn AS p FROM incidents AS t WHERE {cond} OFFSET 0) a OFFSET 0) b) c) d"
    " ) x GROUP BY i, j"
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("database")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    conn = psycopg.connect(args.database, autocommit=True)
    srid = D.srid()
    stored = aggregates.stored_srid(conn)
    if stored != srid:
        raise SystemExit("needs migration 0027's stored projection (incidents.geom_vn)")
    end = dt.datetime.now(dt.UTC)
    print("| window | size | points | cells | two distances ms | strip shortcut ms | faster | same cells |")
    print("|---|---|---|---|---|---|---|---|")
    for days, size in ((365, 500.0), (3650, 500.0), (365, 150.0), (365, 2000.0)):
        f = IncidentFilter(start=end - dt.timedelta(days=days), end=end)
        cond, params = where(f, None)
        old_q = sql.SQL(TWO_DISTANCES).format(cond=cond)
        old_p = [size, 3 ** 0.5 * size, size, *params]
        inner, inner_p = q._points_in_cells(
            "hexagon", size, srid, sql.SQL("incidents AS t WHERE {}").format(cond), params,
            stored_srid=stored)
        new_q = sql.SQL("SELECT i, j, count(*)::int AS n FROM ({}) x GROUP BY i, j").format(inner)
        times: dict[str, list[float]] = {"old": [], "new": []}
        got: dict[str, dict] = {}
        for _ in range(args.repeat):
            for name, (query, p) in (("old", (old_q, old_p)), ("new", (new_q, inner_p))):
                t = time.perf_counter()
                rows = conn.execute(query, p).fetchall()
                times[name].append(1000 * (time.perf_counter() - t))
                got[name] = {(i, j): n for i, j, n in rows}
        old_ms, new_ms = (statistics.median(times[k]) for k in ("old", "new"))
        points = sum(got["new"].values())
        print(f"| {days} days | {size:g} m | {points:,} | {len(got['new']):,} | {old_ms:,.0f} |"
              f" **{new_ms:,.0f}** | {old_ms / new_ms:.1f}× |"
              f" {'✓' if got['old'] == got['new'] else '✗'} |")


if __name__ == "__main__":
    main()
