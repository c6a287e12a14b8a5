"""Mapbox Vector Tiles built in PostGIS (ST_AsMVT), WebMercatorQuad.

No tile may grow into a multi-megabyte monster at low zoom: dense point layers are aggregated
into grid cells with counts, and polygons/lines smaller than a pixel are dropped before encoding.
This module only builds SQL; gis.tiles runs it on a connection.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from psycopg import sql

from layers.errors import NotFound
from layers.features_sql import time_condition
from layers.model import Field, Layer
from layers.overviews import overview_view

EXTENT = 4096
BUFFER = 64
# A tile with more points than this shows grid cells with counts instead of single points.
POINT_CLUSTER_THRESHOLD = 3_000
# Cell size of aggregated points, in tile units (of EXTENT).
CLUSTER_CELL = 64
# Tile units per screen pixel on a 256-pixel tile: below a pixel nothing is visible.
UNITS_PER_PIXEL = EXTENT // 256
WEB_MERCATOR_HALF = 20037508.342789244
# Web Mercator written out for the aggregated points (the same numbers as ST_Transform(geom,
# 3857) on lon/lat points, several times faster per row, and costed as cheap by the planner,
# which no longer JIT-compiles a province-wide tile: gis.analysis.incidents does the same).
EARTH_RADIUS = 6378137.0
# An OGC `datetime` interval (either end open: None).
TimeRange = tuple[dt.datetime | None, dt.datetime | None]
# The values asked for a layer's tile filters (Layer.tile_filters), by field name; a filter
# missing here takes its default.
TileFilters = Mapping[str, object]


class TileOutOfRange(NotFound, ValueError):
    pass


def check_tile(layer: Layer, z: int, x: int, y: int) -> None:
    if not layer.min_zoom <= z <= layer.max_zoom:
        raise TileOutOfRange(
            f"zoom {z} is outside the zoom range {layer.min_zoom}..{layer.max_zoom} of {layer.id!r}"
        )
    n = 1 << z
    if not (0 <= x < n and 0 <= y < n):
        raise TileOutOfRange(f"tile column {x} / row {y} do not exist at zoom {z} (0..{n - 1})")


def _mvt_value(f: Field) -> sql.Composable:
    """MVT attributes are scalars: arrays become comma lists, times ISO text, numerics float."""
    col = sql.Identifier("t", f.name)
    if f.type == "str[]":
        return sql.SQL("array_to_string({}, ',')").format(col)
    if f.type in ("date", "datetime"):
        return sql.SQL("{}::text").format(col)
    if f.type == "float":
        return sql.SQL("{}::float8").format(col)
    return col


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float, float]:
    """Tile envelope in EPSG:3857 and the size of one tile pixel in metres."""
    size = 2 * WEB_MERCATOR_HALF / (1 << z)
    xmin = -WEB_MERCATOR_HALF + x * size
    ymax = WEB_MERCATOR_HALF - y * size
    return xmin, ymax - size, xmin + size, ymax, size / EXTENT


def filter_conditions(layer: Layer, base: Sequence[sql.Composable], base_params: Sequence[object],
                      filters: TileFilters | None) -> tuple[list[sql.Composable], list]:
    """The layer's tile filters (Layer.tile_filters) as conditions on alias t: the value asked,
    else the filter's default, else (latest_by) the value of the newest row among those that
    BASE (the caller's restriction, the time window: conditions on alias t, with BASE_PARAMS)
    and the earlier filters select. The subquery names its table t as well, so BASE applies
    inside it unchanged."""
    asked = filters or {}
    parts: list[sql.Composable] = []
    params: list = []
    for f in layer.tile_filters:
        col = sql.Identifier("t", f.field)
        value = asked.get(f.field, f.default)
        if value is not None:
            parts.append(sql.SQL("{} = %s").format(col))
            params.append(value)
        elif f.latest_by is not None:
            inner = [*base, *parts] or [sql.SQL("TRUE")]
            parts.append(sql.SQL(
                "{col} = (SELECT {col} FROM {table} AS t WHERE {where}"
                " ORDER BY {by} DESC LIMIT 1)"
            ).format(col=col, table=sql.Identifier(layer.table),
                     where=sql.SQL(" AND ").join(sql.SQL("({})").format(p) for p in inner),
                     by=sql.Identifier("t", f.latest_by)))
            params = [*params, *base_params, *params]
    return parts, params


def _allowed(layer: Layer, restrict: sql.Composable | None, time_range: TimeRange | None,
             filters: TileFilters | None = None) -> tuple[sql.Composable, list]:
    """The caller's row restriction, the asked time window and the layer's tile filters, as
    one condition on alias t."""
    parts: list[sql.Composable] = [restrict if restrict is not None else sql.SQL("TRUE")]
    params: list = []
    if time_range is not None:
        cond, params = time_condition(layer, time_range)
        parts.append(cond)
    if layer.tile_filters:
        conds, filter_params = filter_conditions(layer, parts, params, filters)
        parts = [*parts, *conds]
        params = [*params, *filter_params]
    return sql.SQL(" AND ").join(sql.SQL("({})").format(p) for p in parts), params


def point_count_sql(layer: Layer, bounds: Sequence[float], restrict: sql.Composable | None,
                    time_range: TimeRange | None = None, filters: TileFilters | None = None
                    ) -> tuple[sql.Composed, list]:
    """Count the points of a tile (its `bounds` in EPSG:3857), stopping after the cluster
    threshold + 1: enough to choose between single points and grid cells."""
    allowed, allowed_params = _allowed(layer, restrict, time_range, filters)
    q = sql.SQL(
        "SELECT count(*) FROM (SELECT 1 FROM {t} AS t WHERE {g} && ST_Transform("
        "ST_MakeEnvelope(%s, %s, %s, %s, 3857), 4326) AND {r} LIMIT %s) s"
    ).format(t=sql.Identifier(layer.table), g=sql.Identifier("t", layer.geometry_column),
             r=allowed)
    return q, [*bounds[:4], *allowed_params, POINT_CLUSTER_THRESHOLD + 1]


def tile_sql(layer: Layer, fields: Sequence[Field], z: int, x: int, y: int,
             aggregate: bool = False, restrict: sql.Composable | None = None,
             time_range: TimeRange | None = None, filters: TileFilters | None = None
             ) -> tuple[sql.Composed, list]:
    """One tile's SQL; TIME_RANGE (OGC `datetime`) keeps only the rows of that window, so a map
    showing a week draws that week's incidents, not every incident ever recorded; FILTERS the
    values of the layer's tile filters (their defaults when absent)."""
    xmin, ymin, xmax, ymax, pixel = tile_bounds(z, x, y)
    margin = pixel * BUFFER
    geom = sql.Identifier("t", layer.geometry_column)
    table = sql.Identifier(layer.table)
    # Search box in storage CRS, widened by the tile buffer so edge features are not cut off.
    box = sql.SQL("ST_Transform(ST_MakeEnvelope(%s, %s, %s, %s, 3857), 4326)")
    box_params = [xmin - margin, ymin - margin, xmax + margin, ymax + margin]
    envelope = sql.SQL("ST_MakeEnvelope(%s, %s, %s, %s, 3857)")
    env_params = [xmin, ymin, xmax, ymax]
    name = sql.Literal(layer.id)
    allowed, allowed_params = _allowed(layer, restrict, time_range, filters)

    if aggregate:
        cell = pixel * CLUSTER_CELL
        query = sql.SQL(
            "SELECT ST_AsMVT(m, {name}, {extent}, 'geom') FROM ("
            " SELECT count(*)::int AS count, ST_AsMVTGeom(ST_SetSRID(ST_MakePoint(avg(px), avg(py)),"
            " 3857), {env}, {extent}, {buffer}, true) AS geom FROM ("
            "  SELECT {mx} AS px, {my} AS py FROM {table} AS t WHERE {geom} && {box}"
            "  AND {allowed}) b"
            " GROUP BY floor(px / %s), floor(py / %s)) m"
        ).format(name=name, extent=sql.Literal(EXTENT), buffer=sql.Literal(BUFFER), env=envelope,
                 geom=geom, table=table, box=box, allowed=allowed,
                 mx=sql.SQL("({} * radians(ST_X({})))").format(sql.Literal(EARTH_RADIUS), geom),
                 my=sql.SQL("({} * ln(tan(pi() / 4 + radians(ST_Y({})) / 2)))").format(
                     sql.Literal(EARTH_RADIUS), geom))
        return query, [*env_params, *box_params, *allowed_params, cell, cell]

    if (layer.overview is not None and z < layer.overview.below_zoom and restrict is None
            and time_range is None and not layer.tile_filters):
        return _overview_tile_sql(layer, fields, envelope, env_params, pixel)

    props = [sql.SQL("{} AS {}").format(_mvt_value(f), sql.Identifier(f.name))
             for f in fields if f.in_tiles]
    select_props = sql.SQL(", ").join([sql.SQL("t.{} AS id").format(sql.Identifier(layer.id_column)),
                                       *props])
    where = [sql.SQL("{} && {}").format(geom, box), allowed]
    params = [*env_params, *box_params, *allowed_params]
    if layer.geometry_type != "Point":
        # Features smaller than a screen pixel are invisible: skip them by their bounding box.
        deg = pixel * UNITS_PER_PIXEL / 111_320
        where.append(sql.SQL(
            "(ST_XMax({g}) - ST_XMin({g}) > %s OR ST_YMax({g}) - ST_YMin({g}) > %s)"
        ).format(g=geom))
        params += [deg, deg]
        # Simplify below a pixel before encoding (ST_AsMVTGeom makes the result valid).
        shape = sql.SQL("ST_Simplify(ST_Transform({}, 3857), %s, true)").format(geom)
        shape_params = [pixel * UNITS_PER_PIXEL / 2]
    else:
        shape = sql.SQL("ST_Transform({}, 3857)").format(geom)
        shape_params = []
    query = sql.SQL(
        "SELECT ST_AsMVT(m, {name}, {extent}, 'geom', 'id') FROM ("
        " SELECT {props}, ST_AsMVTGeom({shape}, {env}, {extent}, {buffer}, true) AS geom"
        " FROM {table} AS t WHERE {where} OFFSET 0) m WHERE m.geom IS NOT NULL"
    ).format(name=name, extent=sql.Literal(EXTENT), buffer=sql.Literal(BUFFER), props=select_props,
             shape=shape, env=envelope, table=table, where=sql.SQL(" AND ").join(where))
    return query, [*shape_params, *params]


def _overview_tile_sql(layer: Layer, fields: Sequence[Field], envelope: sql.Composable,
                       env_params: list, pixel: float) -> tuple[sql.Composed, list]:
    """Low zoom: the pre-dissolved overview (already EPSG:3857), simplified to the pixel."""
    assert layer.overview is not None  # tile_sql calls this only for layers with an overview
    kept = [f for f in fields if f.name in layer.overview.group_by]
    props = sql.SQL("").join(
        sql.SQL(", {} AS {}").format(_mvt_value(f), sql.Identifier(f.name)) for f in kept)
    px = pixel * UNITS_PER_PIXEL
    query = sql.SQL(
        "SELECT ST_AsMVT(m, {name}, {extent}, 'geom', 'id') FROM ("
        " SELECT t.id{props}, ST_AsMVTGeom(ST_Simplify(t.geom, %s), {env}, {extent}, {buffer}, true)"
        " AS geom FROM {view} AS t WHERE t.geom && {env}"
        " AND (ST_XMax(t.geom) - ST_XMin(t.geom) > %s OR ST_YMax(t.geom) - ST_YMin(t.geom) > %s)"
        " OFFSET 0) m WHERE m.geom IS NOT NULL"
    ).format(name=sql.Literal(layer.id), extent=sql.Literal(EXTENT), buffer=sql.Literal(BUFFER),
             props=props, env=envelope, view=sql.Identifier(overview_view(layer.table)))
    return query, [px / 2, *env_params, *env_params, px, px]
