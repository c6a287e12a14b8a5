"""Hexagon grid counts: how gis/analysis/density_sql.py puts points in hexagons, against the two
ways it did before, on the same rows, alternated, median of N; and a check that all put every
point in the same cell.

- "two distances": both candidate columns' distances for every point, each step in a subquery
  kept by OFFSET 0 (the query until 2026-12-04 13:00);
- "strip, one process": the strip shortcut (two thirds of the points take their column's
  nearest centre by one rounding), still over geom_vn with each step kept by OFFSET 0, which
  keeps the counting in one process (until migration 0039);
- "parallel": the same rule as one cell key over the stored coordinates x_vn, y_vn (migration
  0039), grouped right on the scan, so PostgreSQL's parallel workers count their share of the
  partitions first (Partial HashAggregate); and the same query with parallel workers off.

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


def strip_one_process(size: float, cond: sql.Composable) -> sql.Composable:
    """The strip shortcut as density_sql ran it before migration 0039 (the filter's params)."""
    w, h = 1.5 * size, 3 ** 0.5 * size

    def lit(v: float) -> sql.Composable:
        return sql.SQL("{}::float8").format(sql.Literal(float(v)))

    j_of = [sql.SQL("round((y - {} * ({} & 1)) / {})::int").format(lit(h / 2), sql.SQL(c), lit(h))
            for c in ("i0", "(i0 + 1)")]
    d0 = sql.SQL("(u) ^ 2 + (y - {h} * {j} - {h2} * (i0 & 1)) ^ 2").format(
        h=lit(h), j=j_of[0], h2=lit(h / 2))
    d1 = sql.SQL("(x - {w} * (i0 + 1)) ^ 2 + (y - {h} * {j} - {h2} * ((i0 + 1) & 1)) ^ 2").format(
        w=lit(w), h=lit(h), j=j_of[1], h2=lit(h / 2))

    def pick(a: sql.Composable, b: sql.Composable) -> sql.Composable:
        return sql.SQL("CASE WHEN u < {} THEN {} WHEN u > {} THEN {} WHEN {} <= {} THEN {}"
                       " ELSE {} END").format(lit(size / 2), a, lit(size), b, d0, d1, a, b)

    return sql.SQL(
        "SELECT i, j, count(*)::int AS n FROM (SELECT {i} AS i, {j} AS j FROM ("
        " SELECT x, x - {w} * i0 AS u, y, i0 FROM ("
        "  SELECT ST_X(p) AS x, ST_Y(p) AS y, floor(ST_X(p) / {w})::int AS i0"
        "  FROM (SELECT t.geom_vn AS p FROM incidents AS t WHERE {cond} OFFSET 0) a"
        "  OFFSET 0) b OFFSET 0) c) x GROUP BY i, j"
    ).format(i=pick(sql.SQL("i0"), sql.SQL("i0 + 1")), j=pick(j_of[0], j_of[1]), w=lit(w),
             cond=cond)


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
    print("| window | size | points | cells | two distances ms | strip, one process ms |"
          " parallel ms | parallel off ms | faster | same cells |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for days, size in ((365, 500.0), (3650, 500.0), (365, 150.0), (365, 2000.0)):
        f = IncidentFilter(start=end - dt.timedelta(days=days), end=end)
        cond, params = where(f, None)
        inner, inner_p = q.cell_keys(
            "hexagon", size, srid, sql.SQL("incidents AS t WHERE {}").format(cond), params,
            stored_srid=stored)
        now_q = sql.SQL("SELECT i, j, n FROM ({}) g").format(
            q.counted(inner, sql.SQL("count(*)::int AS n")))
        runs = {
            "two": (sql.SQL(TWO_DISTANCES).format(cond=cond), [size, 3 ** 0.5 * size, size,
                                                              *params], None),
            "strip": (strip_one_process(size, cond), params, None),
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
