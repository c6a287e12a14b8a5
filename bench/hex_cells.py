"""Hexagon grid counts: how gis/analysis/density_sql.py puts points in hexagons, against the two
ways it did before, on the same rows, alternated, median of N; and a check that all put every
point in the same cell.

- "two distances, one process": both candidate columns' distances for every point, each step
  in a subquery kept by OFFSET 0 (the query until 2026-12-04 13:00);
- "strip, parallel": the strip shortcut (two thirds of the points take their column's nearest
  centre by one rounding, the others compare two distances) as one cell key over the stored
  coordinates x_vn, y_vn, grouped right on the scan so PostgreSQL's parallel workers count
  their share of the partitions first (migration 0039 until the three floors);
- "three floors": density_sql.cell_key now, the hexagon's lattice centre from three floors
  and no distance (dask_tasks.hexagon_lattice), in parallel as above, and with parallel
  workers off.

    PYTHONPATH=. .venv/bin/python bench/hex_cells.py postgresql://.../db [--repeat 5]

The figures in bench/README.md ("Hexagon cells") come from it.
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

# Both distances for every point (parameters: size, sqrt(3) size, size, the filter's).
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


def strip_key(size: float, x: sql.Composable, y: sql.Composable) -> sql.Composable:
    """The hexagon's key as density_sql.cell_key computed it from migration 0039 until the three
    floors (2026-12-04): the strip shortcut, and in between the two candidate columns' nearest
    centres by distance; the key is KEY_BASE * i + j (key_cell("square", ...) decodes it)."""
    w, h = 1.5 * size, 3 ** 0.5 * size

    def lit(v: float) -> sql.Composable:
        return sql.SQL("{}::float8").format(sql.Literal(float(v)))

    i0 = sql.SQL("floor({} / {})").format(x, lit(w))
    i1 = sql.SQL("({} + 1)").format(i0)
    p0, p1 = (sql.SQL("({}::int8 & 1)").format(c) for c in (i0, i1))
    j0, j1 = (sql.SQL("round(({y} - {half} * {p}) / {h})").format(y=y, half=lit(h / 2), p=p,
                                                                     h=lit(h))
              for p in (p0, p1))
    u = sql.SQL("({x} - {w} * {i0})").format(x=x, w=lit(w), i0=i0)
    d0, d1 = (sql.SQL("({x} - {w} * {i}) ^ 2 + ({y} - {h} * {j} - {half} * {p}) ^ 2").format(
                  x=x, w=lit(w), i=i, y=y, h=lit(h), j=j, half=lit(h / 2), p=p)
              for i, j, p in ((i0, j0, p0), (i1, j1, p1)))
    k0, k1 = (sql.SQL("{K} * {i} + {j}").format(K=lit(q.KEY_BASE), i=i, j=j)
              for i, j in ((i0, j0), (i1, j1)))
    return sql.SQL("CASE WHEN {u} < {half_s} THEN {k0} WHEN {u} > {s} THEN {k1}"
                   " WHEN {d0} <= {d1} THEN {k0} ELSE {k1} END").format(
        u=u, half_s=lit(size / 2), s=lit(size), k0=k0, k1=k1, d0=d0, d1=d1)


def strip_parallel(size: float, cond: sql.Composable) -> sql.Composable:
    """The strip rule as one key over x_vn, y_vn, grouped on the scan (the filter's params)."""
    i, j = q.key_cell("square", sql.SQL("k"))
    key = strip_key(size, sql.SQL("t.x_vn"), sql.SQL("t.y_vn"))
    return sql.SQL("SELECT {i} AS i, {j} AS j, count(*)::int AS n FROM ("
                   " SELECT {key} AS k FROM incidents AS t WHERE {cond}) x GROUP BY k"
                   ).format(i=i, j=j, key=key, cond=cond)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("database")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    conn = psycopg.connect(args.database, autocommit=True)
    conn.execute("SET jit = off")  # as the application's sessions (gis/db.py)
    conn.execute("SET work_mem = '64MB'")  # as density.fetch
    srid = D.srid()
    stored = aggregates.stored_srid(conn)
    if stored != srid:
        raise SystemExit("needs the stored projection (incidents.geom_vn, x_vn, y_vn: 0027, 0039)")
    workers = conn.execute("SHOW max_parallel_workers_per_gather").fetchone()
    end = dt.datetime.now(dt.UTC)
    print(f"max_parallel_workers_per_gather = {workers[0] if workers else '?'}\n")
    print("| window | size | points | cells | two distances, one process ms | strip, parallel ms |"
          " three floors, parallel ms | three floors, parallel off ms | faster | same cells |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for days, size in ((365, 500.0), (3650, 500.0), (365, 150.0), (365, 2000.0)):
        f = IncidentFilter(start=end - dt.timedelta(days=days), end=end)
        cond, params = where(f, None)
        inner, inner_p = q.cell_keys(
            "hexagon", size, srid, sql.SQL("incidents AS t WHERE {}").format(cond), params,
            stored_srid=stored)
        now_q = sql.SQL("SELECT i, j, n FROM ({}) g").format(
            q.counted("hexagon", inner, sql.SQL("count(*)::int AS n")))
        runs = {
            "two": (sql.SQL(TWO_DISTANCES).format(cond=cond), [size, 3 ** 0.5 * size, size,
                                                              *params], None),
            "strip": (strip_parallel(size, cond), params, None),
            "parallel": (now_q, inner_p, None),
            "serial": (now_q, inner_p, "SET LOCAL max_parallel_workers_per_gather = 0"),
        }
        times: dict[str, list[float]] = {k: [] for k in runs}
        got: dict[str, dict] = {}
        for _ in range(args.repeat):
            for name, (query, p, setting) in runs.items():
                with conn.transaction():
                    if setting:
                        conn.execute(setting)
                    t = time.perf_counter()
                    rows = conn.execute(query, p).fetchall()
                    times[name].append(1000 * (time.perf_counter() - t))
                got[name] = {(i, j): n for i, j, n in rows}
        ms = {k: statistics.median(v) for k, v in times.items()}
        points = sum(got["parallel"].values())
        same = all(g == got["two"] for g in got.values())
        print(f"| {days} days | {size:g} m | {points:,} | {len(got['parallel']):,} |"
              f" {ms['two']:,.0f} | {ms['strip']:,.0f} | **{ms['parallel']:,.0f}** |"
              f" {ms['serial']:,.0f} | {ms['strip'] / ms['parallel']:.1f}× |"
              f" {'✓' if same else '✗'} |")


if __name__ == "__main__":
    main()
