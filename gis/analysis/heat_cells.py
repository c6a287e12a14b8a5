"""The map's Web Mercator views of a long window read off `incident_heat_months` and
`incident_heat_days` (migration 0037): incidents per Vietnam-time month (day), category and cell
of level 16, with counts per severity and the sums of their Mercator x and y.

Why: the heatmap, the clusters and the low-zoom incident tiles group a window's points on Web
Mercator cells that nest (8 pixels at zoom z, 64 pixels at z, 64 tile units at z: levels z + 5,
z + 2 and z + 6 of a square cut in 2^level along each axis); a year's window at 1,000,000
incidents read ~520,000 raw rows and called ST_X / ST_Y on each. A window's whole years come
from `incident_heat_years` (migration 0043: five years at 10,000,000 incidents were ~60 months
of rows), its other whole months from the month table (~150,000 rows for a year, no geometry
function), its other whole days from the day table, and only the hours before its first Vietnam
midnight and after its last from raw rows. A window is first widened to the farthest year,
month or day boundary beyond each end with no incident in between (aggregates.widen: "all time"
and "until now" become whole years), and the widenings' raw rows are subtracted in the same
statement.

What they answer (`usable`): filters on the category only (the aggregates have no status or
source; severity only as counts), the caller's row restriction among those
layers.access.row_filter makes on the category, no unit and no bbox (neither follows cell
boundaries), a level at or below 16 and a window holding a whole day. Anything else reads raw
rows, as before.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, replace

import psycopg
from psycopg import sql

from gis.analysis import aggregates
from gis.analysis import incidents as raw
from gis.analysis.incidents import (
    CLUSTER_CELL_PX,
    EARTH_RADIUS,
    HEAT_CELL_PX,
    INCIDENTS,
    POINTS_MAX,
    TILE_PX,
    WEB_MERCATOR_HALF,
    Heatmap,
    IncidentFilter,
    PointsOrClusters,
)
from layers.tiles_sql import BUFFER, CLUSTER_CELL, EXTENT, TimeRange, tile_bounds

YEARS, MONTHS, DAYS = "incident_heat_years", "incident_heat_months", "incident_heat_days"
LEVEL = 16
CELL_M = 2 * WEB_MERCATOR_HALF / 2**LEVEL

# One raw row as the aggregate's columns (gx, gy of level 16, category, n1..n4, sx, sy): the
# same expressions as the migration's, so a ragged hour counts exactly as a whole day does.
_MX = sql.SQL("({} * radians(ST_X(t.{})))").format(
    sql.Literal(EARTH_RADIUS), sql.Identifier(INCIDENTS.geometry_column))
_MY = sql.SQL("({} * ln(tan(pi() / 4 + radians(ST_Y(t.{})) / 2)))").format(
    sql.Literal(EARTH_RADIUS), sql.Identifier(INCIDENTS.geometry_column))
_RAW_ROW = sql.SQL(
    "floor({mx} / {cell})::int AS gx, floor({my} / {cell})::int AS gy, t.category,"
    " (t.severity = 1)::int AS n1, (t.severity = 2)::int AS n2, (t.severity = 3)::int AS n3,"
    " (t.severity = 4)::int AS n4, {mx} AS sx, {my} AS sy"
).format(mx=_MX, my=_MY, cell=sql.Literal(CELL_M))
_AGG_ROW = sql.SQL("t.gx, t.gy, t.category, t.n1, t.n2, t.n3, t.n4, t.sx, t.sy")
# A raw row taken away (a window's widening, aggregates.widen).
_NEGATED = sql.SQL("gx, gy, category, -n1, -n2, -n3, -n4, -sx, -sy")


def usable(conn: psycopg.Connection, f: IncidentFilter, restrict: sql.Composable | None,
           level: float) -> bool:
    """Whether F (with RESTRICT) at cells of LEVEL can be read off the aggregate."""
    return (level == int(level) and 0 <= level <= LEVEL and not f.severities
            and not f.statuses and not f.sources and f.bbox is None and f.unit is None
            and aggregates.whole_days(f) is not None
            and aggregates.restrict_ok(conn, restrict, columns=("category",))
            and aggregates.present(conn, DAYS))


def has_years(conn: psycopg.Connection) -> bool:
    """Whether the schema has incident_heat_years (migration 0043)."""
    return aggregates.present(conn, YEARS)


Range = tuple[dt.date, dt.date]


def _outside(outer: Range, inner: Range | None) -> tuple[Range, ...]:
    """OUTER [a, b) without INNER (a sub-range): the pieces before and after it."""
    if inner is None:
        return (outer,)
    return tuple((a, b) for a, b in ((outer[0], inner[0]), (inner[1], outer[1])) if a < b)


@dataclass(frozen=True)
class Spans:
    """How a window is read: its whole Vietnam-time MONTHS [m1, m2) (None if it has none), of
    which the whole YEARS [y1, y2) (their first days; None if none, or not asked for) from
    incident_heat_years and the rest from incident_heat_months, its other whole DAYS (ranges
    [d1, d2)) from incident_heat_days, and the hours before its first midnight and after its
    last (RAW) from the incidents; less the incidents of MINUS when the window read is a
    widening of the one asked for (read)."""

    months: Range | None
    days: tuple[Range, ...]
    raw: tuple[IncidentFilter, ...]
    years: Range | None = None
    minus: tuple[IncidentFilter, ...] = ()  # raw rows taken away: the window's widenings

    @property
    def month_ranges(self) -> tuple[Range, ...]:
        """The whole months read from the month table: those outside the whole years."""
        return _outside(self.months, self.years) if self.months else ()


def spans(f: IncidentFilter, *, years: bool = False) -> Spans | None:
    """F's window cut into whole months (of them whole years, with YEARS), whole days and
    ragged hours; None without a whole day."""
    whole = aggregates.whole_days(f)
    if whole is None:
        return None
    d1, d2 = whole
    m1 = aggregates.month_at_or_after(d1)
    m2 = d2.replace(day=1)
    raw = tuple(aggregates.edges(f, whole))
    if m1 >= m2:
        return Spans(None, (whole,), raw)
    y1 = aggregates.year_at_or_after(m1)
    y2 = m2.replace(month=1)
    return Spans((m1, m2), _outside(whole, (m1, m2)), raw,
                 (y1, y2) if years and y1 < y2 else None)


def read(conn: psycopg.Connection, f: IncidentFilter) -> Spans | None:
    """How F's window is read here: widened to whole periods where nothing lies beyond its ends
    (aggregates.widen), cut into spans, whole years included when the schema has them."""
    wide, minus = aggregates.widen(conn, f)
    cut = spans(wide, years=has_years(conn))
    return replace(cut, minus=minus) if cut is not None else None


def _cond(f: IncidentFilter, restrict: sql.Composable | None, column: str,
          ranges: tuple[Range, ...],
          box: tuple[int, int, int, int] | None) -> tuple[sql.Composable, list]:
    """WHERE clause on an aggregate AS t: its COLUMN in RANGES, F's categories, RESTRICT, BOX."""
    col = sql.Identifier("t", column)
    spans_sql = sql.SQL(" OR ").join(sql.SQL("({c} >= %s AND {c} < %s)").format(c=col)
                                     for _ in ranges)
    parts: list[sql.Composable] = [spans_sql]
    params: list = [d for r in ranges for d in r]
    if box is not None:
        # On the columns themselves, so the planner's estimate comes from their statistics (an
        # expression on them was guessed at 4 rows: a sort spilled to disk, not a hash).
        parts.append(sql.SQL("t.gx BETWEEN %s AND %s AND t.gy BETWEEN %s AND %s"))
        params.extend(box)
    if f.categories:
        parts.append(sql.SQL("t.category = ANY(%s)"))
        params.append(list(f.categories))
    if restrict is not None:
        parts.append(restrict)
    return sql.SQL(" AND ").join(sql.SQL("({})").format(p) for p in parts), params


def cells(f: IncidentFilter, restrict: sql.Composable | None, cut: Spans,
          box: tuple[int, int, int, int] | None = None) -> tuple[sql.Composed, list]:
    """Rows (gx, gy of level 16, category, n1..n4, sx, sy) for F's window cut as CUT: whole
    years, months and days from the aggregates, the ragged hours from raw rows (one row per
    incident), and the widenings' raw rows negated (CUT.minus: group with HAVING a positive
    count, so a cell they empty is left out);
    with BOX (gx0, gx1, gy0, gy1: level 16, inclusive) only the cells inside it. Group them by
    (gx >> k, gy >> k) for cells of level 16 - k."""
    selects: list[sql.Composable] = []
    params: list = []
    for table, column, ranges in ((YEARS, "year", (cut.years,) if cut.years else ()),
                                  (MONTHS, "month", cut.month_ranges),
                                  (DAYS, "day", cut.days)):
        if ranges:
            cond, ps = _cond(f, restrict, column, ranges, box)
            selects.append(sql.SQL("SELECT {} FROM {} AS t WHERE {}").format(
                _AGG_ROW, sql.Identifier(table), cond))
            params.extend(ps)
    for parts, columns in ((cut.raw, sql.SQL("*")), (cut.minus, _NEGATED)):
        if not parts and columns is _NEGATED:
            continue
        raw_cond, raw_params = aggregates.raw_where(list(parts), restrict)
        raw_box: sql.Composable = sql.SQL("")
        if box is not None:
            raw_box = sql.SQL(" WHERE gx BETWEEN %s AND %s AND gy BETWEEN %s AND %s")
            raw_params = [*raw_params, *box]
        selects.append(sql.SQL("SELECT {} FROM (SELECT {} FROM {} AS t WHERE {}) r{}").format(
            columns, _RAW_ROW, sql.Identifier(INCIDENTS.table), raw_cond, raw_box))
        params.extend(raw_params)
    return sql.SQL(" UNION ALL ").join(selects), params


def level_of(z: float, cell_px: int) -> float:
    """The level whose cells are CELL_PX screen pixels at zoom Z (z + log2(256 / cell_px))."""
    return z + math.log2(TILE_PX / cell_px)


def _cell(level: int) -> float:
    return 2 * WEB_MERCATOR_HALF / 2**level


# --- the map's views ---------------------------------------------------------------------------


def heatmap(conn: psycopg.Connection, f: IncidentFilter, restrict: sql.Composable | None,
            z: float) -> Heatmap:
    """incidents.heatmap's answer, its whole months and days read off the aggregates when they
    can."""
    level = level_of(z, HEAT_CELL_PX)
    if not usable(conn, f, restrict, level):
        return raw.heatmap(conn, f, restrict, z)
    cut = read(conn, f)
    assert cut is not None  # usable() checked it
    source, params = cells(f, restrict, cut)
    cell = _cell(int(level))
    q = sql.SQL(
        "SELECT round({lat}::numeric, 6)::float8, round({lon}::numeric, 6)::float8, n FROM ("
        " SELECT (gx + 0.5::float8) * %s AS x, (gy + 0.5::float8) * %s AS y, n FROM ("
        "  SELECT gx >> %s AS gx, gy >> %s AS gy, sum(n1 + n2 + n3 + n4)::int AS n"
        "  FROM ({source}) c GROUP BY 1, 2 HAVING sum(n1 + n2 + n3 + n4) > 0) g) s"
        " ORDER BY n DESC"
    ).format(lat=raw.LAT_OF_Y, lon=raw.LON_OF_X, source=source)
    shift = LEVEL - int(level)
    rows = conn.execute(q, [cell, cell, shift, shift, *params]).fetchall()
    out = [(lat, lon, n) for lat, lon, n in rows]
    return Heatmap(cells=out, cell_m=cell, total=sum(n for *_, n in out),
                   max=max((n for *_, n in out), default=0))


def points_or_clusters(conn: psycopg.Connection, f: IncidentFilter,
                       restrict: sql.Composable | None, z: float,
                       max_points: int = POINTS_MAX) -> PointsOrClusters:
    """incidents.points_or_clusters' answer; clusters of a long window read its whole months and
    days off the aggregates when they can (a few thousand points are single points, as before)."""
    level = level_of(z, CLUSTER_CELL_PX)
    if not usable(conn, f, restrict, level):
        return raw.points_or_clusters(conn, f, restrict, z, max_points)
    n = raw.count_upto(conn, f, restrict, max_points + 1)
    if n <= max_points:
        return raw.single_points(conn, f, restrict, n)
    cut = read(conn, f)
    assert cut is not None  # usable() checked it
    source, source_params = cells(f, restrict, cut)
    # As incidents.points_or_clusters: per cell and category first, then per cell.
    q = sql.SQL(
        "SELECT round({lon}::numeric, 6)::float8, round({lat}::numeric, 6)::float8, n, cat, sev"
        " FROM (SELECT sum(sx) / sum(k) AS x, sum(sy) / sum(k) AS y, sum(k)::int AS n,"
        "  (array_agg(category ORDER BY k DESC, category))[1] AS cat, max(sev)::int AS sev"
        "  FROM (SELECT gx >> %s AS gx, gy >> %s AS gy, category, sum(n1 + n2 + n3 + n4) AS k,"
        "   sum(sx) AS sx, sum(sy) AS sy, CASE WHEN sum(n4) > 0 THEN 4 WHEN sum(n3) > 0 THEN 3"
        "   WHEN sum(n2) > 0 THEN 2 ELSE 1 END AS sev"
        "   FROM ({source}) c GROUP BY 1, 2, 3 HAVING sum(n1 + n2 + n3 + n4) > 0) c"
        "  GROUP BY gx, gy) s ORDER BY n DESC"
    ).format(lon=raw.LON_OF_X, lat=raw.LAT_OF_Y, source=source)
    shift = LEVEL - int(level)
    rows = conn.execute(q, [shift, shift, *source_params]).fetchall()
    return PointsOrClusters("clusters", sum(r[2] for r in rows), rows)


# The low-zoom incident tiles' cells: CLUSTER_CELL tile units of EXTENT, level z + 6.
TILE_LEVEL_OFFSET = math.log2(EXTENT / CLUSTER_CELL)
# Bounds for an open end of an OGC `datetime` interval: before and after any incident.
_EARLIEST = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
_LATEST = dt.datetime(3000, 1, 1, tzinfo=dt.UTC)


def tile_filter(time_range: TimeRange | None) -> IncidentFilter:
    """The OGC `datetime` interval (closed: both ends included) as a half-open window."""
    start, end = time_range or (None, None)
    return IncidentFilter(start or _EARLIEST,
                          end + dt.timedelta(microseconds=1) if end else _LATEST)


def tile_usable(conn: psycopg.Connection, z: int, restrict: sql.Composable | None,
                time_range: TimeRange | None) -> bool:
    """Whether an aggregated incident tile (layers.tiles_sql.tile_sql with aggregate) at Z can be
    built from the aggregate."""
    return BUFFER == CLUSTER_CELL and usable(conn, tile_filter(time_range), restrict,
                                             z + TILE_LEVEL_OFFSET)


def tile_read(conn: psycopg.Connection, time_range: TimeRange | None) -> Spans:
    """How a tile's window is read (read); call after tile_usable."""
    cut = read(conn, tile_filter(time_range))
    assert cut is not None  # tile_usable checked there is a whole day
    return cut


def tile_sql(z: int, x: int, y: int, restrict: sql.Composable | None,
             time_range: TimeRange | None, cut: Spans) -> tuple[sql.Composed, list]:
    """layers.tiles_sql.tile_sql's aggregated incident tile (cells of CLUSTER_CELL tile units,
    each at its incidents' mean position, with their count), from the aggregate. The tile and its
    buffer (BUFFER tile units: one cell) are whole cells, so the cells kept are exactly those of
    the points the raw tile's box keeps. CUT: how the window is read (tile_read)."""
    level = int(z + TILE_LEVEL_OFFSET)
    per_tile = 2 ** (level - z)
    x0 = x * per_tile - 2 ** (level - 1)  # the tile's first cell (Mercator x origin at 0)
    y1 = 2 ** (level - 1) - y * per_tile  # one past its last cell going north
    xmin, ymin, xmax, ymax, _ = tile_bounds(z, x, y)
    shift = LEVEL - level
    # The tile's cells and its buffer's (one cell each side) as a box of level-16 cells.
    box = ((x0 - 1) << shift, ((x0 + per_tile + 1) << shift) - 1,
           (y1 - per_tile - 1) << shift, ((y1 + 1) << shift) - 1)
    source, params = cells(tile_filter(time_range), restrict, cut, box)
    q = sql.SQL(
        "SELECT ST_AsMVT(m, {name}, {extent}, 'geom') FROM ("
        " SELECT n AS count, ST_AsMVTGeom(ST_SetSRID(ST_MakePoint(px, py), 3857),"
        "  ST_MakeEnvelope(%s, %s, %s, %s, 3857), {extent}, {buffer}, true) AS geom FROM ("
        "  SELECT sum(sx) / sum(k) AS px, sum(sy) / sum(k) AS py, sum(k)::int AS n FROM ("
        "   SELECT gx >> %s AS gx, gy >> %s AS gy, n1 + n2 + n3 + n4 AS k, sx, sy"
        "   FROM ({source}) c) s GROUP BY gx, gy HAVING sum(k) > 0) g) m"
    ).format(name=sql.Literal(INCIDENTS.id), extent=sql.Literal(EXTENT), buffer=sql.Literal(BUFFER),
             source=source)
    return q, [xmin, ymin, xmax, ymax, shift, shift, *params]
