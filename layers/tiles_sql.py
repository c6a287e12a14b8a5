"""Mapbox Vector Tiles built in PostGIS (ST_AsMVT), WebMercatorQuad.

No tile may grow into a multi-megabyte monster at low zoom: dense point layers are aggregated
into grid cells with counts, and polygons/lines smaller than a pixel are dropped before encoding.
This module only builds SQL; gis.tiles runs it on a connection.
"""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import sql

from layers.errors import NotFound
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


def point_count_sql(layer: Layer, bounds: Sequence[float], restrict: sql.Composable | None
                    ) -> tuple[sql.Composed, list]:
    """Count the points of a tile (its `bounds` in EPSG:3857), stopping after the cluster
    threshold + 1: enough to choose between single points and grid cells."""
    q = sql.SQL(
        "SELECT count(*) FROM (SELECT 1 FROM {t} AS t WHERE {g} && ST_Transform("
        "ST_MakeEnvelope(%s, %s, %s, %s, 3857), 4326) AND {r} LIMIT %s) s"
    ).format(t=sql.Identifier(layer.table), g=sql.Identifier("t", layer.geometry_column),
             r=restrict if restrict is not None else sql.SQL("TRUE"))
    return q, [*bounds[:4], POINT_CLUSTER_THRESHOLD + 1]


def tile_sql(layer: Layer, fields: Sequence[Field], z: int, x: int, y: int,
             aggregate: bool = False, restrict: sql.Composable | None = None,
             ) -> tuple[sql.Composed, list]:
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
    allowed = restrict if restrict is not None else sql.SQL("TRUE")

    if aggregate:
        cell = pixel * CLUSTER_CELL
        query = sql.SQL(
            "SELECT ST_AsMVT(m, {name}, {extent}, 'geom') FROM ("
            " SELECT count(*)::int AS count, ST_AsMVTGeom(ST_SetSRID(ST_MakePoint(avg(px), avg(py)),"
            " 3857), {env}, {extent}, {buffer}, true) AS geom FROM ("
            "  SELECT ST_X(p) AS px, ST_Y(p) AS py FROM ("
            "   SELECT ST_Transform({geom}, 3857) AS p FROM {table} AS t WHERE {geom} && {box}"
            "   AND {allowed}) a) b"
            " GROUP BY floor(px / %s), floor(py / %s)) m"
        ).format(name=name, extent=sql.Literal(EXTENT), buffer=sql.Literal(BUFFER), env=envelope,
                 geom=geom, table=table, box=box, allowed=allowed)
        return query, [*env_params, *box_params, cell, cell]

    if layer.overview is not None and z < layer.overview.below_zoom and restrict is None:
        return _overview_tile_sql(layer, fields, envelope, env_params, pixel)

    props = [sql.SQL("{} AS {}").format(_mvt_value(f), sql.Identifier(f.name))
             for f in fields if f.in_tiles]
    select_props = sql.SQL(", ").join([sql.SQL("t.{} AS id").format(sql.Identifier(layer.id_column)),
                                       *props])
    where = [sql.SQL("{} && {}").format(geom, box), allowed]
    params = [*env_params, *box_params]
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
