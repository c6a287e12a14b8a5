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
    # Keyset paging: only rows whose id is above this one (in id order). Needs the id order, so
    # it never combines with sortby (the API refuses the pair); offset still applies after it.
    after: int | None = None
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

    @property
    def keyset(self) -> bool:
        """Whether pages can follow each other by id (the order is the id order alone)."""
        return not self.sortby or list(self.sortby) == [(self.layer.id_column, True)]


def _col(name: str) -> sql.Identifier:
    return sql.Identifier("t", name)


def time_condition(layer: Layer, time_range: tuple[dt.datetime | None, dt.datetime | None]
                   ) -> tuple[sql.Composable, list]:
    """The rows of LAYER whose time (an instant, or a validity from time_column to
    time_end_column) meets the OGC `datetime` interval TIME_RANGE (either end open: None).
    Shared by items and tiles, so a tile with `datetime` holds exactly the items of that window."""
    if layer.time_column is None:
        raise ValueError(f"layer {layer.id!r} has no time column to filter on")
    start, end = time_range
    begin_col = _col(layer.time_column)
    end_col = _col(layer.time_end_column) if layer.time_end_column else begin_col
    parts: list[sql.Composable] = []
    params: list = []
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
    if not parts:
        return sql.SQL("TRUE"), []
    return sql.SQL(" AND ").join(parts), params


def where(q: FeatureQuery, cursor: bool = True) -> tuple[sql.Composable, list]:
    """The WHERE clause and its parameters; without `cursor`, the keyset position (`after`) is
    left out, which is what numberMatched counts (the whole selection, not what is left of it)."""
    parts: list[sql.Composable] = []
    params: list = []
    layer = q.layer
    if q.feature_id is not None:
        parts.append(sql.SQL("{} = %s").format(_col(layer.id_column)))
        params.append(q.feature_id)
    if cursor and q.after is not None:
        parts.append(sql.SQL("{} > %s").format(_col(layer.id_column)))
        params.append(q.after)
    if q.bbox:
        env: sql.Composable = sql.SQL("ST_MakeEnvelope(%s, %s, %s, %s, %s)")
        if q.bbox_srid != 4326:
            env = sql.SQL("ST_Transform({}, 4326)").format(env)
        parts.append(sql.SQL("{} && {}").format(_col(layer.geometry_column), env))
        parts.append(sql.SQL("ST_Intersects({}, {})").format(_col(layer.geometry_column), env))
        params += [*q.bbox, q.bbox_srid, *q.bbox, q.bbox_srid]
    if q.time_range:
        cond, time_params = time_condition(layer, q.time_range)
        parts.append(cond)
        params += time_params
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
    """The properties object, from a one-row subquery whose columns are named as the fields.

    row_to_json() writes the same values as json_build_object() (both through PostgreSQL's
    datum_to_json), in the same order, without the spaces json_build_object() puts around
    every ':' and ',': for 10,000 parcels of 13 fields, 30 ms instead of 40 in PostgreSQL and
    about 7 % fewer bytes to send and for the client to parse (bench/README.md, GDAL clients).
    """
    if not q.fields:  # `properties=` (none): an empty object (a composable, not a format string)
        return sql.SQL("'{}'")
    columns = sql.SQL(", ").join(
        sql.SQL("{} AS {}").format(_json_value(f), sql.Identifier(f.name)) for f in q.fields
    )
    # p.*: the whole row even if a field were named p.
    return sql.SQL("(SELECT row_to_json(p.*) FROM (SELECT {}) AS p)::text").format(columns)


def _order_by(q: FeatureQuery) -> sql.Composable:
    keys: list[sql.Composable] = [
        sql.SQL("{} {}").format(_col(name), sql.SQL("ASC" if asc else "DESC NULLS LAST"))
        for name, asc in q.sortby
    ]
    keys.append(_col(q.layer.id_column))
    return sql.SQL(", ").join(keys)


def features_sql(q: FeatureQuery, extra_row: bool = True) -> tuple[sql.Composed, list]:
    """Two columns per row: a complete GeoJSON Feature (text) and the feature's id (the keyset
    position a next page starts after).

    With extra_row, one row beyond the limit is asked for: its presence tells that a next page
    exists without counting the whole result.

    With an offset, the rows to skip are skipped on ids alone: PostgreSQL computes a query's
    select list below its LIMIT/OFFSET, so `... ORDER BY id OFFSET 799000` would build 799,000
    GeoJSON texts only to throw them away (3.7 s for a page of 1,000 parcels at 800,000). The
    page's ids come from a subquery (an index-only scan for the id order), and the GeoJSON is
    built for the page's rows only.
    """
    cond, params = where(q)
    n = q.limit + (1 if extra_row else 0)
    feature = sql.SQL(
        "'{{\"type\":\"Feature\",\"id\":' || {id} || ',\"geometry\":' || "
        "COALESCE({geom}, 'null') || ',\"properties\":' || {props} || '}}', {id}"
    ).format(id=_col(q.layer.id_column), geom=_geometry_json(q), props=_properties_json(q))
    table = sql.Identifier(q.layer.table)
    order = _order_by(q)
    if q.offset == 0:
        query = sql.SQL("SELECT {feature} FROM {table} AS t WHERE {cond} ORDER BY {order} LIMIT %s"
                        ).format(feature=feature, table=table, cond=cond, order=order)
        return query, [*params, n]
    query = sql.SQL(
        "SELECT {feature} FROM (SELECT {id} AS page_id FROM {table} AS t WHERE {cond} "
        "ORDER BY {order} LIMIT %s OFFSET %s) AS page JOIN {table} AS t ON {id} = page.page_id "
        "ORDER BY {order}"
    ).format(feature=feature, id=_col(q.layer.id_column), table=table, cond=cond, order=order)
    return query, [*params, n, q.offset]


def count_sql(q: FeatureQuery) -> tuple[sql.Composed, list]:
    """Count the whole selection (filters and row rules; not the keyset position)."""
    cond, params = where(q, cursor=False)
    query = sql.SQL("SELECT count(*) FROM {table} AS t WHERE {cond}").format(
        table=sql.Identifier(q.layer.table), cond=cond)
    return query, params
