"""Incident aggregates for the command map: heatmap cells, clusters, counts against the previous
window, and the cameras whose field of view covers an incident.

Why aggregate in PostGIS: a year of incidents is tens of thousands of points. Shipping them to
the browser costs megabytes and seconds of parsing (bench/heatmap.py measures it); a grid of
cells sized to the screen (a few hundred rows) carries the same picture. Every function takes the
caller's row restriction (layers.access.row_filter), so a security event an operator may not open
one by one is not counted in an operator's heatmap either.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field, replace

import psycopg
from psycopg import sql

from gis import db
from gis.fmt import VN_TZ
from gis.rows import scalar
from layers.catalogue import get_layer
from layers.model import Field

INCIDENTS = get_layer("incidents")
CAMERAS = get_layer("cameras")
# The field-of-view polygon: the cameras layer's extra geometry.
FOV_COLUMN = CAMERAS.extra_geometry_columns[0]
WEB_MERCATOR_HALF = 20037508.342789244
TILE_PX = 256
# Heatmap cell in screen pixels: well under Leaflet.heat's blur radius, so cells read as a surface.
HEAT_CELL_PX = 8
# Below this many matching incidents the map gets single points (clustered in the browser);
# above it, server-side clusters of CLUSTER_CELL_PX pixels (a power of two, so that clusters are
# whole groups of the pre-aggregated heatmap cells: gis/analysis/heat_cells.py).
POINTS_MAX = 4_000
CLUSTER_CELL_PX = 64
MAX_ZOOM = 22


# Web Mercator (EPSG:3857) written out: the same numbers as ST_Transform(geom, 3857), but plain
# arithmetic, which the planner costs as cheap (ST_Transform's declared cost made it JIT-compile
# the heatmap query for half a second) and which runs several times faster.
EARTH_RADIUS = 6378137.0


def _mercator_x(alias: str) -> sql.Composable:
    return sql.SQL("({} * radians(ST_X({})))").format(
        sql.Literal(EARTH_RADIUS), sql.Identifier(alias, INCIDENTS.geometry_column))


def _mercator_y(alias: str) -> sql.Composable:
    return sql.SQL("({} * ln(tan(pi() / 4 + radians(ST_Y({})) / 2)))").format(
        sql.Literal(EARTH_RADIUS), sql.Identifier(alias, INCIDENTS.geometry_column))


# Back from Mercator x / y (columns named x and y) to longitude / latitude.
LON_OF_X = sql.SQL("degrees(x / {})").format(sql.Literal(EARTH_RADIUS))
LAT_OF_Y = sql.SQL("degrees(2 * atan(exp(y / {})) - pi() / 2)").format(sql.Literal(EARTH_RADIUS))


def pixel_metres(z: float) -> float:
    """Size of one screen pixel in Web Mercator metres at zoom z (256-pixel tiles)."""
    z = min(max(z, 0), MAX_ZOOM)
    return 2 * WEB_MERCATOR_HALF / (TILE_PX * 2**z)


# People in the province count days in Vietnam time (UTC+7, no daylight saving): a date in a
# filter is that day from 00:00 to 24:00 here, so an incident at 23:30 on day D (16:30 UTC) is
# counted on D, not on D + 1 as a UTC day would have it.


def vn_day_start(day: dt.date) -> dt.datetime:
    """The instant day DAY begins in Vietnam time."""
    return dt.datetime.combine(day, dt.time(), VN_TZ)


def vn_today() -> dt.date:
    return dt.datetime.now(VN_TZ).date()


@dataclass(frozen=True)
class IncidentFilter:
    """The filters every incident view shares: the half-open time window [start, end), and
    optional category, severity, status and source lists (empty = all), bbox (lon/lat) and an
    administrative unit (incidents inside its boundary, on the boundaries of the unit's era).

    New fields come last with defaults so that code building a filter positionally or by
    keyword before they existed still does."""

    start: dt.datetime
    end: dt.datetime
    categories: tuple[str, ...] = ()
    severities: tuple[int, ...] = ()
    statuses: tuple[str, ...] = ()
    bbox: tuple[float, float, float, float] | None = None
    sources: tuple[str, ...] = ()
    unit: Area | None = None

    @property
    def length(self) -> dt.timedelta:
        return self.end - self.start

    def previous(self) -> IncidentFilter:
        """The window of the same length just before this one (for trends)."""
        return replace(self, start=self.start - self.length, end=self.start)


def _col(alias: str, name: str) -> sql.Identifier:
    return sql.Identifier(alias, name)


def where(f: IncidentFilter, restrict: sql.Composable | None, alias: str = "t", *,
          start: dt.datetime | None = None) -> tuple[sql.Composable, list]:
    """WHERE clause for F on the incidents table aliased ALIAS; START overrides the window start
    (a trend query reads the previous window too)."""
    time_col = _col(alias, INCIDENTS.time_column or "reported_at")
    geom = _col(alias, INCIDENTS.geometry_column)
    parts: list[sql.Composable] = [sql.SQL("{} >= %s").format(time_col),
                                   sql.SQL("{} < %s").format(time_col)]
    params: list = [start or f.start, f.end]
    for name, values in (("category", f.categories), ("severity", f.severities),
                         ("status", f.statuses), ("source", f.sources)):
        if values:
            parts.append(sql.SQL("{} = ANY(%s)").format(_col(alias, name)))
            params.append(list(values))
    if f.bbox is not None:
        parts.append(sql.SQL("{} && ST_MakeEnvelope(%s, %s, %s, %s, 4326)").format(geom))
        params.extend(f.bbox)
    if f.unit is not None:
        # The unit's boundary as an init plan (read once): `&&` can use the GiST index, and
        # ST_Covers sees the same polygon on every row, which PostGIS prepares once.
        parts.append(sql.SQL(
            "{g} && (SELECT geom FROM admin_units WHERE id = %s)"
            " AND ST_Covers((SELECT geom FROM admin_units WHERE id = %s), {g})").format(g=geom))
        params.extend([f.unit.id, f.unit.id])
    if restrict is not None:
        parts.append(restrict)
    return sql.SQL(" AND ").join(sql.SQL("({})").format(p) for p in parts), params


def _table(alias: str = "t") -> sql.Composable:
    return sql.SQL("{} AS {}").format(sql.Identifier(INCIDENTS.table), sql.Identifier(alias))


def count(conn: psycopg.Connection, f: IncidentFilter, restrict: sql.Composable | None) -> int:
    cond, params = where(f, restrict)
    q = sql.SQL("SELECT count(*) FROM {} WHERE {}").format(_table(), cond)
    return int(scalar(conn.execute(q, params)))


# --- heatmap ---------------------------------------------------------------------------------


@dataclass
class Heatmap:
    cells: list[tuple[float, float, int]]  # (lat, lon, weight): Leaflet.heat's point order
    cell_m: float
    total: int
    max: int


def heatmap(conn: psycopg.Connection, f: IncidentFilter, restrict: sql.Composable | None,
            z: float) -> Heatmap:
    """Incidents counted on a Web Mercator grid of HEAT_CELL_PX screen pixels at zoom z; each cell
    is reported at its centre with its count as weight (the weights sum to the matching count)."""
    cell = pixel_metres(z) * HEAT_CELL_PX
    cond, params = where(f, restrict)
    q = sql.SQL(
        "SELECT round({lat}::numeric, 6)::float8, round({lon}::numeric, 6)::float8, n FROM ("
        " SELECT (gx + 0.5) * %s AS x, (gy + 0.5) * %s AS y, n FROM ("
        "  SELECT floor({mx} / %s) AS gx, floor({my} / %s) AS gy, count(*)::int AS n"
        "  FROM {table} WHERE {cond} GROUP BY 1, 2) g) s ORDER BY n DESC"
    ).format(lat=LAT_OF_Y, lon=LON_OF_X, mx=_mercator_x("t"), my=_mercator_y("t"), table=_table(),
             cond=cond)
    with db.grouping(conn):
        rows = conn.execute(q, [cell, cell, cell, cell, *params]).fetchall()
    cells = [(lat, lon, n) for lat, lon, n in rows]
    return Heatmap(cells=cells, cell_m=cell, total=sum(n for *_, n in cells),
                   max=max((n for *_, n in cells), default=0))


# --- clustered points ------------------------------------------------------------------------


@dataclass
class PointsOrClusters:
    """Either single points (mode "points": id, lon, lat, category, severity, status) for the
    browser to cluster, or server-side clusters (mode "clusters": lon, lat, count, most frequent
    category, highest severity) when there are too many points to ship."""

    mode: str
    total: int
    rows: list[tuple] = field(default_factory=list)


def count_upto(conn: psycopg.Connection, f: IncidentFilter, restrict: sql.Composable | None,
               limit: int) -> int:
    """The incidents matching F, counted up to LIMIT (enough to choose points or clusters)."""
    cond, params = where(f, restrict)
    return int(scalar(conn.execute(
        sql.SQL("SELECT count(*) FROM (SELECT 1 FROM {} WHERE {} LIMIT %s) s").format(_table(), cond),
        [*params, limit])))


def single_points(conn: psycopg.Connection, f: IncidentFilter, restrict: sql.Composable | None,
                  n: int) -> PointsOrClusters:
    """The N incidents matching F as single points for the browser to cluster."""
    cond, params = where(f, restrict)
    geom = _col("t", INCIDENTS.geometry_column)
    q = sql.SQL(
        "SELECT t.id, round(ST_X({g})::numeric, 6)::float8, round(ST_Y({g})::numeric, 6)::float8,"
        " t.category, t.severity, t.status FROM {table} WHERE {cond}"
        " ORDER BY t.severity, {time}, t.id"
    ).format(g=geom, table=_table(), cond=cond,
             time=_col("t", INCIDENTS.time_column or "reported_at"))
    return PointsOrClusters("points", n, conn.execute(q, params).fetchall())


def points_or_clusters(conn: psycopg.Connection, f: IncidentFilter,
                       restrict: sql.Composable | None, z: float,
                       max_points: int = POINTS_MAX) -> PointsOrClusters:
    n = count_upto(conn, f, restrict, max_points + 1)
    if n <= max_points:
        return single_points(conn, f, restrict, n)
    cond, params = where(f, restrict)
    cell = pixel_metres(z) * CLUSTER_CELL_PX
    # Counted per cell and category first (one hashed pass over the rows), then per cell: the
    # most frequent category is the first by count, ties to the smallest code, as mode() gives,
    # without mode()'s sort of every row (a year at 1,000,000 incidents: 2.1 s -> see
    # bench/README.md, "analytics").
    q = sql.SQL(
        "SELECT round({lon}::numeric, 6)::float8, round({lat}::numeric, 6)::float8, n, cat, sev"
        " FROM (SELECT sum(sx) / sum(k) AS x, sum(sy) / sum(k) AS y, sum(k)::int AS n,"
        "  (array_agg(category ORDER BY k DESC, category))[1] AS cat, max(sev)::int AS sev"
        "  FROM (SELECT floor(mx / %s) AS gx, floor(my / %s) AS gy, category, count(*) AS k,"
        "   sum(mx) AS sx, sum(my) AS sy, max(severity) AS sev"
        "   FROM (SELECT {mx} AS mx, {my} AS my, t.category, t.severity FROM {table}"
        "    WHERE {cond}) a GROUP BY 1, 2, 3) c"
        "  GROUP BY gx, gy) s ORDER BY n DESC"
    ).format(lon=LON_OF_X, lat=LAT_OF_Y, mx=_mercator_x("t"), my=_mercator_y("t"), table=_table(),
             cond=cond)
    with db.grouping(conn):
        rows = conn.execute(q, [cell, cell, *params]).fetchall()
    return PointsOrClusters("clusters", sum(r[2] for r in rows), rows)


# --- counts against the previous window ------------------------------------------------------

BUCKETS = (3600, 6 * 3600, 86400, 7 * 86400, 30 * 86400)
MAX_BUCKETS = 62
DAY = 86400
WEEK = 7 * DAY


def bucket_seconds(window: dt.timedelta) -> int:
    """The smallest of hour / 6 h / day / week / 30 days giving at most MAX_BUCKETS buckets."""
    seconds = window.total_seconds()
    for b in BUCKETS:
        if seconds / b <= MAX_BUCKETS:
            return b
    return BUCKETS[-1]


def series_start(t: dt.datetime, bucket: int) -> dt.datetime:
    """The start of the calendar bucket holding instant T, Vietnam time: its hour, its quarter of
    the day (0, 6, 12 or 18 h), its day, its week from Monday (as the dashboard's weeks), or for
    30-day buckets its day.

    Why calendar buckets rather than slices from the window's own start: a chart of "the last
    7 days" reads as seven calendar days (the first and last partial), as in the dashboard, not
    as days running from 14:37 to 14:37; and every whole Vietnam day then lies in one bucket, so
    the per-day pre-aggregate answers a long window without cutting days
    (gis.analysis.incident_stats)."""
    local = t.astimezone(VN_TZ)
    if bucket < DAY:
        hours = bucket // 3600
        return local.replace(hour=local.hour - local.hour % hours, minute=0, second=0,
                             microsecond=0)
    day = local.date()
    if bucket == WEEK:
        day -= dt.timedelta(days=day.weekday())
    return vn_day_start(day)


def series_length(start: dt.datetime, end: dt.datetime, bucket: int) -> int:
    """The calendar buckets the window [START, END) touches (at least one)."""
    return max(1, math.ceil((end - series_start(start, bucket)).total_seconds() / bucket))


@dataclass
class WindowCounts:
    start: dt.datetime
    end: dt.datetime
    total: int = 0
    by_category: dict[str, int] = field(default_factory=dict)
    by_severity: dict[str, int] = field(default_factory=dict)
    by_status: dict[str, int] = field(default_factory=dict)
    series: list[int] = field(default_factory=list)
    series_start: dt.datetime | None = None  # the first bucket's start (series_start)


@dataclass
class Stats:
    current: WindowCounts
    previous: WindowCounts
    bucket_seconds: int

    @property
    def change(self) -> float | None:
        """Relative change against the previous window (None when it had nothing)."""
        if not self.previous.total:
            return None
        return (self.current.total - self.previous.total) / self.previous.total


def stats(conn: psycopg.Connection, f: IncidentFilter, restrict: sql.Composable | None,
          area_unit_id: int | None = None) -> Stats:
    """Counts in F's window and in the previous window of the same length, by category,
    severity and status, plus a time series of calendar buckets for each (series_start);
    AREA_UNIT_ID (admin_units.id) limits them to the incidents inside that unit's boundary."""
    prev = f.previous()
    cond, params = where(f, restrict, start=prev.start)
    area: sql.Composable = sql.SQL("")
    area_params: list = []
    if area_unit_id is not None:
        area = sql.SQL(" AND t.{g} && u.geom AND ST_Covers(u.geom, t.{g})").format(
            g=sql.Identifier(INCIDENTS.geometry_column))
        area_params = [area_unit_id]
    source = sql.SQL("{table}{join} WHERE {cond}{area}").format(
        table=_table(),
        join=sql.SQL(", (SELECT geom FROM admin_units WHERE id = %s) AS u") if area_unit_id
        is not None else sql.SQL(""),
        cond=cond, area=area)
    q = sql.SQL(
        "SELECT {time} >= %s AS cur, t.category, t.severity::text, t.status, {b} AS b,"
        " count(*)::int FROM {source} GROUP BY 1, 2, 3, 4, 5"
    ).format(time=_col("t", INCIDENTS.time_column or "reported_at"), b=bucket_sql("t"),
             source=source)
    # Two windows of raw rows (100,000 for a week at 10,000,000 incidents) grouped in memory:
    # with the default work_mem they were merge-sorted on disk (830-930 ms against 330-350).
    with db.grouping(conn):
        rows = conn.execute(q, [f.start, *bucket_params(f), *area_params, *params]).fetchall()
    return tally(f, rows)


def bucket_sql(alias: str) -> sql.Composed:
    """A row's bucket number in its own window, counted from that window's series_start; its
    parameters are bucket_params'."""
    time = _col(alias, INCIDENTS.time_column or "reported_at")
    return sql.SQL(
        "floor(extract(epoch FROM {time} - CASE WHEN {time} >= %s THEN %s::timestamptz"
        " ELSE %s::timestamptz END) / %s)::int").format(time=time)


def bucket_params(f: IncidentFilter) -> list:
    bucket = bucket_seconds(f.length)
    return [f.start, series_start(f.start, bucket), series_start(f.previous().start, bucket),
            bucket]


def tally(f: IncidentFilter, rows: list[tuple]) -> Stats:
    """Stats from rows (current?, category, severity text, status, bucket, n); rows may repeat
    a key (the aggregate path sends the pre-aggregated days and the raw ends apart)."""
    bucket = bucket_seconds(f.length)
    current, previous = (
        WindowCounts(w.start, w.end, series=[0] * series_length(w.start, w.end, bucket),
                     series_start=series_start(w.start, bucket))
        for w in (f, f.previous()))
    for cur, category, severity, status, b, n in rows:
        w = current if cur else previous
        w.total += n
        w.by_category[category] = w.by_category.get(category, 0) + n
        w.by_severity[severity] = w.by_severity.get(severity, 0) + n
        w.by_status[status] = w.by_status.get(status, 0) + n
        if 0 <= b < len(w.series):
            w.series[b] += n
    return Stats(current, previous, bucket)


# --- the administrative unit a stats view is limited to ---------------------------------------

# The 2025 reform of administrative units (districts abolished, communes merged) took effect on
# 1 July 2025 (shared reference vietnam-geodata.md); admin_units keeps both eras. A view "on
# pre-2025 boundaries" reads the units as they were the day before.
REFORM_DATE = dt.date(2025, 7, 1)
ERAS = ("current", "pre2025")


def era_day(era: str) -> dt.date:
    """The day whose units make up boundary set ERA: today (Vietnam time) or the eve of the
    reform."""
    if era == "pre2025":
        return REFORM_DATE - dt.timedelta(days=1)
    if era == "current":
        return vn_today()
    raise ValueError(f"unknown boundary set {era!r}; expected one of {', '.join(ERAS)}")



@dataclass(frozen=True)
class Area:
    """An administrative unit as it was on a day (units change: the 2025 reform merged communes
    and abolished districts, and the old units stay in admin_units with their valid_to)."""

    id: int
    code: str
    name: str
    level: str
    valid_from: str
    valid_to: str | None

    def public(self) -> dict[str, str | None]:
        """What a client sees: everything but the internal row id."""
        return {"code": self.code, "name": self.name, "level": self.level,
                "valid_from": self.valid_from, "valid_to": self.valid_to}


def area_on(conn: psycopg.Connection, code: str, day: dt.date,
            restrict: sql.Composable | None) -> Area | None:
    """The unit with CODE valid on DAY (a commune before a district sharing the code), among
    those the caller may read (RESTRICT: layers.access.row_filter on admin_units), or None."""
    row = conn.execute(sql.SQL(
        "SELECT id, code, name, level, valid_from::text, valid_to::text FROM admin_units"
        " WHERE code = %s AND valid_from <= %s AND (valid_to IS NULL OR valid_to > %s) AND {}"
        " ORDER BY level = 'commune' DESC LIMIT 1").format(
        restrict if restrict is not None else sql.SQL("TRUE")), (code, day, day)).fetchone()
    return Area(*row) if row is not None else None


# --- cameras covering an incident ------------------------------------------------------------


@dataclass
class CoveringCamera:
    id: int
    distance_m: float
    properties: str  # JSON object text of the readable fields
    point: str  # GeoJSON geometry text
    fov: str  # GeoJSON geometry text


def incident_visible(conn: psycopg.Connection, incident_id: int,
                     restrict: sql.Composable | None) -> bool:
    q = sql.SQL("SELECT 1 FROM {} WHERE t.id = %s AND {}").format(
        _table(), restrict if restrict is not None else sql.SQL("TRUE"))
    return conn.execute(q, [incident_id]).fetchone() is not None


def cameras_covering(conn: psycopg.Connection, incident_id: int, fields: tuple[Field, ...],
                     camera_restrict: sql.Composable | None) -> list[CoveringCamera]:
    """Cameras whose field-of-view polygon covers the incident, nearest first (geodesic metres;
    ties by id). CAMERA_RESTRICT must be a row filter for the alias `c`."""
    props = sql.SQL(", ").join(
        sql.SQL("{}, {}").format(sql.Literal(f.name), sql.Identifier("c", f.name)) for f in fields)
    q = sql.SQL(
        "SELECT c.id, ST_Distance(c.{g}::geography, i.{ig}::geography) AS d,"
        " {props}, ST_AsGeoJSON(c.{g}, 7), ST_AsGeoJSON(c.{fov}, 7)"
        " FROM {cameras} AS c JOIN {incidents} AS i ON i.id = %s"
        " WHERE c.{fov} && i.{ig} AND ST_Covers(c.{fov}, i.{ig}) AND {restrict}"
        " ORDER BY d, c.id"
    ).format(g=sql.Identifier(CAMERAS.geometry_column), fov=sql.Identifier(FOV_COLUMN),
             ig=sql.Identifier(INCIDENTS.geometry_column),
             props=sql.SQL("json_build_object({})::text").format(props) if fields
             else sql.SQL("'{{}}'"),
             cameras=sql.Identifier(CAMERAS.table), incidents=sql.Identifier(INCIDENTS.table),
             restrict=camera_restrict if camera_restrict is not None else sql.SQL("TRUE"))
    return [CoveringCamera(i, round(d, 1), p, pt, fov)
            for i, d, p, pt, fov in conn.execute(q, [incident_id]).fetchall()]
