"""GeoJSON features built in PostgreSQL.

Each row comes back as one finished GeoJSON Feature (text), so Python only joins bytes: no
per-row dict building or JSON encoding. The same query object serves our fast OGC routes and
the pygeoapi provider, so both answer the same way. This module only builds SQL; gis.features
runs it on a connection.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from psycopg import sql

from layers.model import Field, Layer


@dataclass
class FeatureQuery:
    """A validated request for features of one layer (validation happens at the API edge)."""

    layer: Layer
    fields: Sequence[Field]
    limit: int = 10
    offset: int = 0
    # bbox in bbox_srid, as (minx, miny, maxx, maxy) in that CRS's x/y (easting-first) order.
    bbox: tuple[float, float, float, float] | None = None
    bbox_srid: int = 4326
    # Closed/open interval on the layer's time column(s); None ends are open.
    time_range: tuple[dt.datetime | None, dt.datetime | None] | None = None
    equals: dict[str, object] = field(default_factory=dict)
    # Extra condition (CQL2) composed elsewhere, already safe SQL.
    condition: sql.Composable | None = None
    # Rows the caller may not see (layers.access.row_filter); part of every query, counts too.
    restrict: sql.Composable | None = None
    sortby: Sequence[tuple[str, bool]] = ()  # (field name, ascending)
    out_srid: int = 4326
    swap_axes: bool = False
    skip_geometry: bool = False
    feature_id: int | None = None

    @property
    def filtered(self) -> bool:
        return bool(
            self.bbox or self.time_range or self.equals or self.condition is not None
            or self.feature_id is not None or self.restrict is not None
        )


def _col(name: str) -> sql.Identifier:
    return sql.Identifier("t", name)


def where(q: FeatureQuery) -> tuple[sql.Composable, list]:
    """The WHERE clause and its parameters."""
    parts: list[sql.Composable] = []
    params: list = []
    layer = q.layer
    if q.feature_id is not None:
        parts.append(sql.SQL("{} = %s").format(_col(layer.id_column)))
        params.append(q.feature_id)
    if q.bbox:
        env: sql.Composable = sql.SQL("ST_MakeEnvelope(%s, %s, %s, %s, %s)")
        if q.bbox_srid != 4326:
            env = sql.SQL("ST_Transform({}, 4326)").format(env)
        parts.append(sql.SQL("{} && {}").format(_col(layer.geometry_column), env))
        parts.append(sql.SQL("ST_Intersects({}, {})").format(_col(layer.geometry_column), env))
        params += [*q.bbox, q.bbox_srid, *q.bbox, q.bbox_srid]
    if q.time_range:
        if layer.time_column is None:
            raise ValueError(f"layer {layer.id!r} has no time column to filter on")
        start, end = q.time_range
        begin_col = _col(layer.time_column)
        end_col = _col(layer.time_end_column) if layer.time_end_column else begin_col
        if end is not None:
            parts.append(sql.SQL("{} <= %s").format(begin_col))
            params.append(end)
        if start is not None:
            # An open-ended validity (NULL end) is still valid at any later time.
            if layer.time_end_column:
                parts.append(sql.SQL("({0} IS NULL OR {0} > %s)").format(end_col))
            else:
                parts.append(sql.SQL("{} >= %s").format(end_col))
            params.append(start)
    for name, value in q.equals.items():
        f = layer.field(name)
        if f.type == "str[]":
            parts.append(sql.SQL("%s = ANY({})").format(_col(name)))
        else:
            parts.append(sql.SQL("{} = %s").format(_col(name)))
        params.append(value)
    if q.condition is not None:
        parts.append(q.condition)
    if q.restrict is not None:
        parts.append(q.restrict)
    if not parts:
        return sql.SQL("TRUE"), params
    return sql.SQL(" AND ").join(sql.SQL("({})").format(p) for p in parts), params


def _geometry_json(q: FeatureQuery) -> sql.Composable:
    if q.skip_geometry:
        return sql.SQL("'null'")
    g: sql.Composable = _col(q.layer.geometry_column)
    if q.out_srid != 4326:
        g = sql.SQL("ST_Transform({}, {})").format(g, sql.Literal(q.out_srid))
    if q.swap_axes:
        g = sql.SQL("ST_FlipCoordinates({})").format(g)
    # About a millimetre either way: 1e-8 degree, or 1e-3 metre.
    digits = 8 if q.out_srid in (4326, 4756) else 3
    return sql.SQL("ST_AsGeoJSON({}, {}, 0)").format(g, sql.Literal(digits))


def _json_value(f: Field) -> sql.Composable:
    """Floats always carry a decimal point (50.0, not 50): clients such as GDAL guess a field's
    type from the first values they see and would otherwise truncate a later 8.5 to 8."""
    col = _col(f.name)
    if f.type == "float":
        return sql.SQL("CASE WHEN {0} = trunc({0}) THEN round({0}::numeric, 1) ELSE {0}::numeric END"
                       ).format(col)
    return col


def _properties_json(q: FeatureQuery) -> sql.Composable:
    if not q.fields:  # `properties=` (none): an empty object (a composable, not a format string)
        return sql.SQL("'{}'")
    pairs = sql.SQL(", ").join(
        sql.SQL("{}, {}").format(sql.Literal(f.name), _json_value(f)) for f in q.fields
    )
    return sql.SQL("json_build_object({})::text").format(pairs)


def _order_by(q: FeatureQuery) -> sql.Composable:
    keys: list[sql.Composable] = [
        sql.SQL("{} {}").format(_col(name), sql.SQL("ASC" if asc else "DESC NULLS LAST"))
        for name, asc in q.sortby
    ]
    keys.append(_col(q.layer.id_column))
    return sql.SQL(", ").join(keys)


def features_sql(q: FeatureQuery, extra_row: bool = True) -> tuple[sql.Composed, list]:
    """One text column per row, each a complete GeoJSON Feature.

    With extra_row, one row beyond the limit is asked for: its presence tells that a next page
    exists without counting the whole result.
    """
    cond, params = where(q)
    query = sql.SQL(
        "SELECT '{{\"type\":\"Feature\",\"id\":' || {id} || ',\"geometry\":' || "
        "COALESCE({geom}, 'null') || ',\"properties\":' || {props} || '}}' "
        "FROM {table} AS t WHERE {cond} ORDER BY {order} LIMIT %s OFFSET %s"
    ).format(
        id=_col(q.layer.id_column),
        geom=_geometry_json(q),
        props=_properties_json(q),
        table=sql.Identifier(q.layer.table),
        cond=cond,
        order=_order_by(q),
    )
    return query, [*params, q.limit + (1 if extra_row else 0), q.offset]


def count_sql(q: FeatureQuery, cap: int) -> tuple[sql.Composed, list]:
    """Count the matches, stopping after cap + 1 (more than cap means: too many to count)."""
    cond, params = where(q)
    query = sql.SQL(
        "SELECT count(*) FROM (SELECT 1 FROM {table} AS t WHERE {cond} LIMIT %s) AS s"
    ).format(table=sql.Identifier(q.layer.table), cond=cond)
    return query, [*params, cap + 1]
