"""The map client's own endpoints under /api/map: the per-caller layer manifest, "what is here"
for a click, cameras with their fields of view, sensors with their latest reading, and commune
labels.

Each one asks layers.access, like every other way out: a layer the caller may not read is a 404
that does not say whether it exists, hidden fields are absent, hidden rows are not returned, and
reads of restricted data are audited.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from psycopg import sql

from api.ogc.errors import bad_parameter, not_found
from api.ogc.params import parse_bbox
from api.security import Who
from gis import audit
from gis.db import connection
from gis.features import fetch_page
from gis.maps.reference import reference
from layers.access import (
    Principal,
    is_sensitive_read,
    readable_fields,
    readable_layer,
    row_filter,
)
from layers.catalogue import LAYERS
from layers.features_sql import FeatureQuery
from layers.model import Field, Layer
from web import manifest

router = APIRouter(prefix="/api/map", tags=["map"])
JSON = "application/json"
GEOJSON = "application/geo+json"
# Point layers drawn whole: a province has hundreds of cameras and stations, not millions.
MAX_POINTS = 5_000
# A reading older than this is shown as stale.
STALE_AFTER = dt.timedelta(hours=24)


def readable(layer_id: str, who: Principal) -> Layer:
    """The layer, or a 404 that is the same whether it does not exist or may not be read."""
    layer = readable_layer(layer_id, who)
    if layer is None:
        raise not_found("not found")
    return layer


def audit_read(layer: Layer, who: Principal, request: Request, target: dict) -> None:
    if is_sensitive_read(layer, who):
        audit.record(None, who, "read", request=request, layer=layer.id, target=target)


def _json(body: object, media_type: str = JSON) -> Response:
    return Response(orjson.dumps(body), media_type=media_type,
                    headers={"Cache-Control": "private, max-age=0"})


@router.get("/layers")
def layers(who: Who) -> Response:
    """The layers this caller may read, grouped by domain, with styles, legends, zoom ranges,
    sources (vector tile URL templates or GeoJSON endpoints) and readable fields."""
    with connection() as conn:
        return _json(manifest.manifest(reference(conn), who))


def _float(name: str, raw: str | None, lo: float, hi: float) -> float:
    try:
        v = float(raw) if raw is not None else None
    except ValueError:
        v = None
    if v is None or not lo <= v <= hi:
        raise bad_parameter(f"{name}: expected a number between {lo} and {hi}")
    return v


def _as_of(raw: str | None) -> dt.datetime:
    """Noon UTC of the given day (default today): the instant an administrative era is read at."""
    try:
        day = dt.date.fromisoformat(raw) if raw else dt.datetime.now(dt.UTC).date()
    except ValueError:
        raise bad_parameter(f"as_of: {raw!r} is not a date (YYYY-MM-DD)") from None
    return dt.datetime.combine(day, dt.time(12), dt.UTC)


# Topmost first: the catalogue's order is bottom (boundaries) to top.
IDENTIFY_LAYERS = tuple(reversed([layer.id for layer in LAYERS if layer.identify]))


@router.get("/identify")
def identify(request: Request, who: Who, lon: Annotated[str, Query()],
             lat: Annotated[str, Query()], layers: str = ",".join(IDENTIFY_LAYERS),
             z: str | None = None, as_of: str | None = None) -> Response:
    """The features of the polygon layers under a point, topmost layer first: the parcel, the
    planning zone and the commune (of the era AS_OF, default today) a click landed on. Layers
    drawn only from some zoom (parcels from 15) are skipped below it."""
    x = _float("lon", lon, -180, 180)
    y = _float("lat", lat, -90, 90)
    zoom = _float("z", z, 0, 30) if z is not None else None
    when = _as_of(as_of)
    features: list[bytes] = []
    wanted = [name for name in layers.split(",") if name]
    targets = []
    for name in wanted:
        layer = readable(name, who)
        if layer.geometry_type not in ("Polygon", "MultiPolygon"):
            raise bad_parameter(f"layers: {name!r} is not a polygon layer")
        if zoom is not None and zoom < layer.min_zoom:
            continue
        targets.append(layer)
    with connection() as conn:
        for layer in targets:
            q = FeatureQuery(layer=layer, fields=readable_fields(layer, who), limit=1,
                             restrict=row_filter(layer, who))
            cover = sql.SQL("ST_Covers({}, ST_SetSRID(ST_MakePoint({}, {}), 4326))").format(
                sql.Identifier("t", layer.geometry_column), sql.Literal(x), sql.Literal(y))
            if layer.time_end_column:  # a gazetteer with history: the units valid AS_OF
                q.time_range = (when, when)
            if layer.identify_filter:  # e.g. admin units: the commune, not its district
                name, value = layer.identify_filter
                cover = sql.SQL("{} AND {} = {}").format(cover, sql.Identifier("t", name),
                                                         sql.Literal(value))
            q.condition = cover
            page = fetch_page(conn, q)
            if page.rows:
                feature = orjson.loads(page.rows[0])
                feature["layer"] = layer.id
                features.append(orjson.dumps(feature))
                audit_read(layer, who, request, {"identify": [x, y], "id": feature["id"]})
    body = b'{"type":"FeatureCollection","features":[' + b",".join(features) + b"]}"
    return Response(body, media_type=GEOJSON, headers={"Cache-Control": "private, max-age=0"})


def _properties(fields: tuple[Field, ...], alias: str = "t") -> sql.Composable:
    if not fields:
        return sql.SQL("'{{}}'::jsonb")
    return sql.SQL("jsonb_build_object({})").format(sql.SQL(", ").join(
        sql.SQL("{}, {}").format(sql.Literal(f.name), sql.Identifier(alias, f.name))
        for f in fields))


def _bbox_condition(raw: str | None, layer: Layer) -> tuple[sql.Composable, list]:
    if not raw:
        return sql.SQL("TRUE"), []
    (x1, y1, x2, y2), srid = parse_bbox(raw, None)
    return (sql.SQL("{} && ST_MakeEnvelope(%s, %s, %s, %s, 4326)").format(
        sql.Identifier("t", layer.geometry_column)), [x1, y1, x2, y2])


@router.get("/cameras")
def cameras(request: Request, who: Who, bbox: str | None = None) -> Response:
    """Cameras as GeoJSON points with their field-of-view polygon (member `fov` of each
    feature), readable fields only."""
    layer = readable("cameras", who)
    fov = layer.extra_geometry_columns[0]
    cond, params = _bbox_condition(bbox, layer)
    restrict = row_filter(layer, who)
    q = sql.SQL(
        "SELECT jsonb_build_object('type', 'Feature', 'id', t.{id}, 'geometry',"
        " ST_AsGeoJSON(t.{g}, 7)::jsonb, 'properties', {props}, 'fov', ST_AsGeoJSON(t.{fov}, 7)::jsonb)::text"
        " FROM {table} AS t WHERE {cond} AND {restrict} ORDER BY t.{id} LIMIT %s"
    ).format(id=sql.Identifier(layer.id_column), g=sql.Identifier(layer.geometry_column),
             fov=sql.Identifier(fov), props=_properties(readable_fields(layer, who)),
             table=sql.Identifier(layer.table), cond=cond,
             restrict=restrict if restrict is not None else sql.SQL("TRUE"))
    with connection() as conn:
        rows = [r[0] for r in conn.execute(q, [*params, MAX_POINTS])]
    audit_read(layer, who, request, {"map": "cameras", "bbox": bbox})
    return _feature_collection(rows)


def _feature_collection(rows: list[str]) -> Response:
    body = '{"type":"FeatureCollection","features":[' + ",".join(rows) + "]}"
    return Response(body.encode(), media_type=GEOJSON, headers={"Cache-Control": "private, max-age=0"})


@router.get("/sensors")
def sensors(request: Request, who: Who, bbox: str | None = None) -> Response:
    """Monitoring stations with their latest reading: `latest_value`, `observed_at`, `ratio`
    (value / threshold), `state` (ok below 80 %, warn up to 100 %, over above; none without a
    reading) and `stale` (no reading in the last 24 hours)."""
    layer = readable("sensors", who)
    cond, params = _bbox_condition(bbox, layer)
    restrict = row_filter(layer, who)
    q = sql.SQL(
        "SELECT jsonb_build_object('type', 'Feature', 'id', t.{id}, 'geometry',"
        " ST_AsGeoJSON(t.{g}, 7)::jsonb, 'properties', {props} || jsonb_build_object("
        "  'latest_value', o.value, 'observed_at', o.observed_at, 'ratio',"
        "  round((o.value / NULLIF(t.threshold, 0))::numeric, 3),"
        "  'state', CASE WHEN o.value IS NULL THEN 'none' WHEN o.value > t.threshold THEN 'over'"
        "   WHEN o.value >= 0.8 * t.threshold THEN 'warn' ELSE 'ok' END,"
        "  'stale', o.observed_at IS NULL OR o.observed_at < now() - %s))::text"
        " FROM {table} AS t LEFT JOIN LATERAL (SELECT value, observed_at FROM observations"
        "  WHERE sensor_id = t.{id} ORDER BY observed_at DESC LIMIT 1) AS o ON TRUE"
        " WHERE {cond} AND {restrict} ORDER BY t.{id} LIMIT %s"
    ).format(id=sql.Identifier(layer.id_column), g=sql.Identifier(layer.geometry_column),
             props=_properties(readable_fields(layer, who)), table=sql.Identifier(layer.table),
             cond=cond, restrict=restrict if restrict is not None else sql.SQL("TRUE"))
    with connection() as conn:
        rows = [r[0] for r in conn.execute(q, [STALE_AFTER, *params, MAX_POINTS])]
    audit_read(layer, who, request, {"map": "sensors", "bbox": bbox})
    return _feature_collection(rows)


@router.get("/labels")
def labels(who: Who, as_of: str | None = None) -> Response:
    """Commune names at a point inside each commune of the era AS_OF (default today): the
    offline map's place names."""
    layer = readable("admin_units", who)
    when = _as_of(as_of)
    restrict = row_filter(layer, who)
    q = sql.SQL(
        "SELECT t.code, t.name, round(ST_X(p)::numeric, 6)::float8, round(ST_Y(p)::numeric, 6)::float8"
        " FROM (SELECT *, ST_PointOnSurface(geom) AS p FROM {table}) AS t"
        " WHERE t.level = 'commune' AND t.valid_from <= %s AND (t.valid_to IS NULL OR t.valid_to > %s)"
        " AND {restrict} ORDER BY t.code"
    ).format(table=sql.Identifier(layer.table),
             restrict=restrict if restrict is not None else sql.SQL("TRUE"))
    with connection() as conn:
        rows = conn.execute(q, [when, when]).fetchall()
    return Response(orjson.dumps({"labels": [{"code": c, "name": n, "lon": x, "lat": y}
                                             for c, n, x, y in rows]}),
                    media_type=JSON, headers={"Cache-Control": "public, max-age=300"})
