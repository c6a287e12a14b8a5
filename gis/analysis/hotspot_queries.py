"""SQL of the hot-spot analyses (gis/analysis/hotspots.py): the study area, the grid over it and
the incident counts per cell and time bin, all computed in PostGIS.

The grid is PostGIS's own ST_HexagonGrid / ST_SquareGrid in the province's projected CRS
(VN-2000 / TM-3, metres), anchored at that CRS's origin, so a cell's (i, j) is the same whatever
area it is generated for. Cells are those intersecting the study area, including the empty ones
(a cell with no incident is data for Gi*: it lowers its neighbours' local sums).

An incident is assigned to its cell by arithmetic on its projected coordinates rather than by a
spatial join against the generated cells: tens of thousands of cells in a CTE have no index, and
a join would test every point against every cell. Squares: i = floor(x / s), j = floor(y / s).
Hexagons (flat-topped, size s = edge = circumradius, h = s·√3): column i has its centres at
x = 1.5·s·i and y = h·j (+ h/2 in odd columns); a point lies in the hexagon with the nearest
centre, which is in column floor(x / 1.5s) or the next one, in the row rounding (y - offset) / h.
tests/test_hotspots.py checks every assignment against ST_Covers on the generated cells.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import psycopg
from psycopg import sql

from gis import db
from gis.analysis import aggregates, density_sql
from gis.analysis import incidents as base
from gis.fmt import VN_TZ
from gis.rows import one

SHAPES = {"hexagon": "ST_HexagonGrid", "square": "ST_SquareGrid"}


@dataclass(frozen=True)
class StudyArea:
    id: int
    code: str
    name: str
    level: str
    area_m2: float  # in the projected CRS
    # A digest of the boundary: the grid cells cached for an area (hotspots.area_cells) are
    # valid while it is unchanged, so a boundary corrected in place is never served stale cells.
    version: str = ""


def study_area(conn: psycopg.Connection, srid: int, code: str | None, day: dt.date,
               restrict: sql.Composable | None) -> StudyArea | None:
    """The administrative unit CODE valid on DAY (a commune before a district sharing the code),
    or the province valid on DAY when CODE is None, among the units the caller may read
    (RESTRICT: layers.access.row_filter on admin_units, alias admin_units)."""
    which = sql.SQL("code = %s") if code is not None else sql.SQL("level = 'province'")
    q = sql.SQL(
        "SELECT id, code, name, level, ST_Area(ST_Transform(geom, %s)), md5(ST_AsEWKB(geom))"
        " FROM admin_units"
        " WHERE {which} AND valid_from <= %s AND (valid_to IS NULL OR valid_to > %s) AND {restrict}"
        " ORDER BY level = 'commune' DESC, id LIMIT 1"
    ).format(which=which, restrict=restrict if restrict is not None else sql.SQL("TRUE"))
    params: list = [srid, *([code] if code is not None else []), day, day]
    row = conn.execute(q, params).fetchone()
    return StudyArea(row[0], row[1], row[2], row[3], float(row[4]), row[5]) if row else None


def cell_area_m2(shape: str, size: float) -> float:
    return 1.5 * np.sqrt(3) * size * size if shape == "hexagon" else size * size


@dataclass
class GridCells:
    i: np.ndarray  # int64
    j: np.ndarray
    x: np.ndarray  # centroid in the projected CRS (metres)
    y: np.ndarray
    wkb: list[bytes]  # cell polygon in EPSG:4326


def grid_cells(conn: psycopg.Connection, srid: int, area_id: int, shape: str,
               size: float) -> GridCells:
    """The cells of SHAPE and SIZE (metres) intersecting the study area, ordered by (i, j)."""
    q = sql.SQL(
        "WITH a AS MATERIALIZED (SELECT ST_Transform(geom, %s) AS g FROM admin_units WHERE id = %s)"
        " SELECT c.i, c.j, ST_X(ST_Centroid(c.geom)), ST_Y(ST_Centroid(c.geom)),"
        " ST_AsBinary(ST_Transform(c.geom, 4326))"
        " FROM a, {grid}(%s, a.g) AS c WHERE ST_Intersects(c.geom, a.g) ORDER BY c.i, c.j"
    ).format(grid=sql.Identifier(SHAPES[shape].lower()))
    rows = conn.execute(q, [srid, area_id, size]).fetchall()
    return GridCells(i=np.fromiter((r[0] for r in rows), np.int64, len(rows)),
                     j=np.fromiter((r[1] for r in rows), np.int64, len(rows)),
                     x=np.fromiter((r[2] for r in rows), np.float64, len(rows)),
                     y=np.fromiter((r[3] for r in rows), np.float64, len(rows)),
                     wkb=[bytes(r[4]) for r in rows])


def _cell_of(shape: str) -> sql.Composable:
    """(i, j) of the cell holding the projected point (p.x, p.y), for a grid of size %s."""
    if shape == "square":
        return sql.SQL(
            "SELECT floor(p.x / s.v)::int AS i, floor(p.y / s.v)::int AS j FROM (SELECT %s::float8 AS v) s")
    # Both candidate columns in one row, no sort: the nearer centre wins.
    return sql.SQL(
        "SELECT CASE WHEN d.d0 <= d.d1 THEN d.i0 ELSE d.i0 + 1 END AS i,"
        " CASE WHEN d.d0 <= d.d1 THEN d.j0 ELSE d.j1 END AS j FROM ("
        "  SELECT r.i0, r.j0, r.j1,"
        "   (p.x - 1.5 * r.v * r.i0) ^ 2 + (p.y - r.o0 - r.h * r.j0) ^ 2 AS d0,"
        "   (p.x - 1.5 * r.v * (r.i0 + 1)) ^ 2 + (p.y - r.o1 - r.h * r.j1) ^ 2 AS d1 FROM ("
        "   SELECT k.*, round((p.y - k.o0) / k.h)::int AS j0, round((p.y - k.o1) / k.h)::int AS j1"
        "   FROM (SELECT c.v, c.h, c.i0,"
        "    CASE WHEN mod(c.i0, 2) <> 0 THEN c.h / 2 ELSE 0 END AS o0,"
        "    CASE WHEN mod(c.i0, 2) = 0 THEN c.h / 2 ELSE 0 END AS o1"
        "    FROM (SELECT s.v, s.v * sqrt(3) AS h, floor(p.x / (1.5 * s.v))::int AS i0"
        "     FROM (SELECT %s::float8 AS v) s) c) k) r) d")


@dataclass(frozen=True)
class Bins:
    """Calendar bins in Vietnam time: `weekly` (weeks from Monday 00:00) or `monthly`."""

    kind: str
    starts: tuple[dt.date, ...]  # local start day of each bin

    @property
    def count(self) -> int:
        return len(self.starts)

    @property
    def instants(self) -> list[dt.datetime]:
        """Each bin's start instant: Vietnam midnight of its start day."""
        return [base.vn_day_start(d) for d in self.starts]


def bins_for(kind: str, start: dt.datetime, end: dt.datetime) -> Bins:
    """The calendar weeks or months (Vietnam time) meeting the window [start, end)."""
    tz = VN_TZ
    first = start.astimezone(tz).date()
    last = (end - dt.timedelta(microseconds=1)).astimezone(tz).date()
    starts: list[dt.date] = []
    if kind == "weekly":
        day = first - dt.timedelta(days=first.weekday())
        while day <= last:
            starts.append(day)
            day += dt.timedelta(days=7)
    else:
        y, m = first.year, first.month
        while dt.date(y, m, 1) <= last:
            starts.append(dt.date(y, m, 1))
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return Bins(kind, tuple(starts))


def _bin_of(bins: Bins) -> tuple[sql.Composable, list]:
    """Bin number (0-based) of an incident's time (alias t): a binary search among the bins'
    start instants (Vietnam midnight of each start day), exact for weeks and calendar months
    alike, and much cheaper per row than converting every timestamp to local time. Before the
    first bin: -1."""
    time_col = sql.Identifier("t", base.INCIDENTS.time_column or "reported_at")
    return sql.SQL("(width_bucket({}, %s::timestamptz[]) - 1)").format(time_col), [bins.instants]


def cube_counts(conn: psycopg.Connection, f: base.IncidentFilter, restrict: sql.Composable | None,
                srid: int, area_id: int, shape: str, size: float,
                bins: Bins) -> list[tuple[int, int, int, int]]:
    """Incidents matching F (and RESTRICT, the caller's row filter) near the study area, counted
    per cell (i, j) and bin: rows (i, j, bin, count); empty cells and bins are absent, and so are
    cells off the grid (the caller keeps the grid's cells only).

    A cell on the area's boundary counts all its incidents, also those just outside the area:
    every cell is then a full cell, and the boundary does not read as a ring of cold spots (a
    half-covered cell would have half the incidents)."""
    cond, params = base.where(f, restrict)
    geom = sql.Identifier("t", base.INCIDENTS.geometry_column)
    # Cells reach up to two cell sizes past the area's boundary (degrees: 1° ≥ 100 km here).
    # The search box is a value, not a subquery: the planner then knows how many points it
    # holds (for the province, nearly all: it scans by time alone, and hashes the groups rather
    # than sorting half a million rows it thought were fifty).
    reach = 2.5 * size / 100_000
    box = one(conn.execute("SELECT ST_Expand(ST_Envelope(geom), %s) FROM admin_units"
                           " WHERE id = %s", [reach, area_id]))[0]
    # Each point's cell by density_sql's arithmetic over the stored coordinates (x_vn, y_vn:
    # migration 0039), grouped right on the scan.
    source = sql.SQL("{table} WHERE {cond} AND {geom} && %s::geometry").format(
        table=base._table(), cond=cond, geom=geom)
    stored = aggregates.stored_srid(conn)
    if bins.count <= MAX_BIN_BRANCHES:
        q, all_params = _per_bin(shape, size, srid, source, [*params, box], bins, stored)
    else:
        bin_sql, bin_params = _bin_of(bins)
        inner, all_params = density_sql.cell_keys(
            shape, size, srid, source, [*params, box], carry=bin_sql, carry_params=bin_params,
            stored_srid=stored)
        q = density_sql.counted(shape, inner, sql.SQL("count(*)::int"), by_carry=True)
    # A year of 100 m cells × bins is some 10^5 groups: hashed in memory, not sorted on disk.
    with db.grouping(conn):
        # Hash the (cell, bin) groups (tens of thousands, some MB) rather than sort the points
        # (half a million at 1,000,000 incidents): EXPLAIN ANALYZE 5.3 s → 4.1 s there.
        conn.execute("SET LOCAL enable_sort = off")
        rows: list[tuple[int, int, int, int]] = conn.execute(q, all_params).fetchall()
    return rows


# Bins counted one branch each (below), up to this many; more (weekly bins over years) carry
# the bin as a column instead.
MAX_BIN_BRANCHES = 64


def _per_bin(shape: str, size: float, srid: int, source: sql.Composable, source_params: list,
             bins: Bins, stored_srid: int | None) -> tuple[sql.Composed, list]:
    """cube_counts' statement as one branch per bin, each grouped by cell alone (UNION ALL).

    Why not one GROUP BY cell, bin: the bin is an expression on reported_at, whose statistics
    say nearly every value is distinct, so the planner expects about as many groups as points
    (1.9 million for a year at 10,000,000 incidents, against 114,549), sees nothing to gain in
    counting per worker first, and hashes every point in one process (3.8-4.6 s). Grouped by
    cell alone (0039's hint: 10,000 cells) each branch is counted whole by one of the parallel
    workers, the bins shared among them (1.9-2.1 s; bench/README.md, "Gi* counted per bin")."""
    time_col = sql.Identifier("t", base.INCIDENTS.time_column or "reported_at")
    starts = bins.instants
    parts: list[sql.Composable] = []
    params: list = []
    for w, start in enumerate(starts):
        upto = starts[w + 1] if w + 1 < len(starts) else None
        cut = sql.SQL("{} AND {} >= %s{}").format(
            source, time_col,
            sql.SQL(" AND {} < %s").format(time_col) if upto else sql.SQL(""))
        inner, inner_params = density_sql.cell_keys(
            shape, size, srid, cut, [*source_params, start, *([upto] if upto else [])],
            stored_srid=stored_srid)
        parts.append(density_sql.counted(
            shape, inner, sql.SQL("{}::int, count(*)::int").format(sql.Literal(w))))
        params.extend(inner_params)
    return sql.SQL(" UNION ALL ").join(parts), params


def count_in_area(conn: psycopg.Connection, f: base.IncidentFilter,
                  restrict: sql.Composable | None, area_id: int) -> int:
    """Incidents matching F inside the study area (what the grid's counts must add up to)."""
    cond, params = base.where(f, restrict)
    geom = sql.Identifier("t", base.INCIDENTS.geometry_column)
    q = sql.SQL(
        "SELECT count(*) FROM {table}, (SELECT geom AS g FROM admin_units WHERE id = %s) a"
        " WHERE {cond} AND {geom} && a.g AND ST_Covers(a.g, {geom})"
    ).format(table=base._table(), cond=cond, geom=geom)
    return int(one(conn.execute(q, [area_id, *params]))[0])
