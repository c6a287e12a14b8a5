"""The map client's own endpoints under /api/map: the per-caller layer manifest, "what is here"
for a click, cameras with their fields of view, sensors with their latest reading, the
gazetteer's labels, and the number of features of each layer in view.

Each one asks layers.access, like every other way out: a layer the caller may not read is a 404
that does not say whether it exists, hidden fields are absent, hidden rows are not returned, and
reads of restricted data are audited. Which layers a click asks about, and how, comes from the
catalogue (Layer.identify, Layer.identify_filter); the SQL is in gis/maps/queries.py.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from psycopg import sql

from api.deps import BBox, BBoxParam, IsoDate, ReadConn, Who
from api.route_docs import FEATURE_COLLECTION_SCHEMA, GEOJSON, JSON, ok, problems
from gis import audit
from gis.maps import queries
from gis.maps.reference import reference
from layers.access import (
    Principal,
    access_condition,
    readable_fields,
    readable_layer,
    readable_layers,
    row_filter,
)
from layers.catalogue import LAYERS, gazetteer, label_field
from layers.errors import BadRequest, Message, NotFound
from layers.model import Layer
from web import manifest

router = APIRouter(prefix="/api/map", tags=["map"])
PRIVATE = {"Cache-Control": "private, max-age=0"}
# Compatibility: the limits used to live here.
MAX_POINTS = queries.MAX_POINTS
STALE_AFTER = queries.STALE_AFTER

# Topmost first: the catalogue's order is bottom (boundaries) to top.
IDENTIFY_LAYERS = tuple(reversed([layer.id for layer in LAYERS if layer.identify]))
# The gazetteer: the layer whose units have eras (valid from/to); its labels are place names.
GAZETTEER = gazetteer()


def readable(layer_id: str, who: Principal) -> Layer:
    """The layer, or a 404 that is the same whether it does not exist or may not be read."""
    layer = readable_layer(layer_id, who)
    if layer is None:
        raise NotFound("not found", message=Message("status_404"))
    return layer


def _json(body: object, media_type: str = JSON, cache: str = "private, max-age=0") -> Response:
    return Response(orjson.dumps(body), media_type=media_type, headers={"Cache-Control": cache})


def _feature_collection(rows: list[str]) -> Response:
    body = '{"type":"FeatureCollection","features":[' + ",".join(rows) + "]}"
    return Response(body.encode(), media_type=GEOJSON, headers=PRIVATE)


def _envelope(bbox: BBox | None) -> queries.Envelope | None:
    return queries.Envelope(bbox.box, bbox.srid) if bbox else None


AsOf = Annotated[dt.date | None, IsoDate, Query(
    description="the day whose administrative units are meant (YYYY-MM-DD, default today)")]


def _noon(day: dt.date | None) -> dt.datetime:
    """Noon UTC of the given day (default today): the instant an administrative era is read at."""
    return dt.datetime.combine(day or dt.datetime.now(dt.UTC).date(), dt.time(12), dt.UTC)


@router.get("/layers", response_class=Response,
            responses={200: ok("The caller's layer manifest"), **problems(503)})
def layers(who: Who, conn: ReadConn) -> Response:
    """The layers this caller may read, grouped by domain, with styles, legends, zoom ranges,
    sources (vector tile URL templates or GeoJSON endpoints) and readable fields."""
    return _json(manifest.manifest(reference(conn), who))


@router.get("/identify", response_class=Response, responses={
    200: ok("The features under or near the point, topmost layer first, each with member "
            "`layer`", GEOJSON, FEATURE_COLLECTION_SCHEMA),
    **problems(400, 404, 503)})
def identify(
    request: Request, who: Who, conn: ReadConn,
    lon: Annotated[float, Query(ge=-180, le=180, description="longitude (WGS84)")],
    lat: Annotated[float, Query(ge=-90, le=90, description="latitude (WGS84)")],
    layers: Annotated[str | None, Query(
        max_length=500, description="comma-separated layer ids (default: every layer the "
        f"caller may read among {', '.join(IDENTIFY_LAYERS)})")] = None,
    z: Annotated[float | None, Query(ge=0, le=30, description="the map's zoom: layers drawn "
                                     "only from some zoom are skipped below it, and the click "
                                     "tolerance for points and lines follows it")] = None,
    as_of: AsOf = None,
) -> Response:
    """What a click landed on: the polygon under the point (the parcel, the planning zone, the
    commune of the era AS_OF) and the nearest point or line within a few screen pixels at zoom
    Z (a facility, a road), one feature per layer, topmost layer first."""
    when = _noon(as_of)
    if layers is None:
        allowed = {layer.id for layer in readable_layers(who)}
        wanted = [name for name in IDENTIFY_LAYERS if name in allowed]
    else:
        wanted = [name for name in layers.split(",") if name]
    # Topmost first whatever order they were asked in: a click on a road over a planning zone
    # is about the road.
    wanted = sorted(dict.fromkeys(wanted), key=lambda n: IDENTIFY_LAYERS.index(n)
                    if n in IDENTIFY_LAYERS else -1)
    targets = []
    for name in wanted:
        layer = readable(name, who)
        if not layer.identify:
            raise BadRequest.for_field("not_identified", "layers",
                                       f"{name!r} is not identified by the server", layer=repr(name))
        if z is not None and z < layer.min_zoom:
            continue
        targets.append(layer)
    tolerance = queries.tolerance_m(z, lat)
    features: list[bytes] = []
    for layer in targets:
        text = queries.identify(conn, layer, readable_fields(layer, who), row_filter(layer, who),
                                lon, lat, when, tolerance)
        if text is not None:
            feature = orjson.loads(text)
            feature["layer"] = layer.id
            features.append(orjson.dumps(feature))
            audit.record_read(conn, who, layer, "identify", ids=[feature["id"]],
                              filter={"point": [lon, lat], "z": z}, request=request)
    body = b'{"type":"FeatureCollection","features":[' + b",".join(features) + b"]}"
    return Response(body, media_type=GEOJSON, headers=PRIVATE)


@router.get("/cameras", response_class=Response, responses={
    200: ok("Cameras with member `fov` (field-of-view polygon)", GEOJSON,
            FEATURE_COLLECTION_SCHEMA),
    **problems(400, 404, 503)})
def cameras(request: Request, who: Who, conn: ReadConn, bbox: BBoxParam) -> Response:
    """Cameras as GeoJSON points with their field-of-view polygon (member `fov` of each
    feature), readable fields only."""
    layer = readable("cameras", who)
    rows = queries.cameras(conn, layer, readable_fields(layer, who), row_filter(layer, who),
                           _envelope(bbox))
    audit.record_read(conn, who, layer, "map-cameras",
                      filter={"bbox": request.query_params.get("bbox")}, request=request)
    return _feature_collection(rows)


@router.get("/sensors", response_class=Response, responses={
    200: ok("Stations with their latest reading", GEOJSON, FEATURE_COLLECTION_SCHEMA),
    **problems(400, 404, 503)})
def sensors(request: Request, who: Who, conn: ReadConn, bbox: BBoxParam) -> Response:
    """Monitoring stations with their latest reading: `latest_value`, `observed_at`, `ratio`
    (value / threshold), `state` (ok below 80 %, warn up to 100 %, over above; none without a
    reading, or with a datastream the caller may not read) and `stale` (no reading in the last
    24 hours)."""
    layer = readable("sensors", who)
    # A datastream restricted on its own (a camera's, a security sensor's) shows no reading to
    # who may not read it, though its station is on the map.
    readable_streams = access_condition(who, sql.Identifier("d", "access"),
                                        sql.Identifier("d", "roles"))
    rows = queries.sensors(conn, layer, readable_fields(layer, who), row_filter(layer, who),
                           _envelope(bbox), readable_streams)
    audit.record_read(conn, who, layer, "map-sensors",
                      filter={"bbox": request.query_params.get("bbox")}, request=request)
    return _feature_collection(rows)


COUNTS_SCHEMA: dict[str, Any] = {"type": "object", "properties": {"counts": {
    "type": "object", "additionalProperties": {"type": ["integer", "null"]},
    "description": "layer id -> features intersecting the bbox (null: not counted in time)"}}}
MAX_COUNT_LAYERS = 20


@router.get("/counts", response_class=Response, responses={
    200: ok("Features of each layer in the bbox", JSON, COUNTS_SCHEMA), **problems(400, 404, 503)})
def counts(who: Who, conn: ReadConn, bbox: BBoxParam,
           layers: Annotated[str, Query(max_length=500, description="comma-separated layer ids")],
           as_of: AsOf = None) -> Response:
    """How many features of each layer intersect BBOX (the map's view), counted in the database
    under the caller's access (rows hidden from the caller are not counted; a layer the caller
    may not read is a 404, as everywhere); for layers with eras, the units valid AS_OF. The map
    shows these counts in its layer list: what is there, not what the tiles happened to draw."""
    if bbox is None:
        raise BadRequest.for_field("bbox_required", "bbox", "required (the view to count in)")
    names = list(dict.fromkeys(n for n in layers.split(",") if n))
    if not names or len(names) > MAX_COUNT_LAYERS:
        raise BadRequest.for_field("layer_ids", "layers", f"give 1 to {MAX_COUNT_LAYERS} layer ids",
                                   max=MAX_COUNT_LAYERS)
    targets = [readable(name, who) for name in names]
    env = queries.Envelope(bbox.box, bbox.srid)
    when = _noon(as_of)
    body = {"counts": {layer.id: queries.count_in_view(conn, layer, row_filter(layer, who), env, when)
                       for layer in targets}}
    return _json(body)


LABELS_SCHEMA: dict[str, Any] = {"type": "object", "properties": {"labels": {
    "type": "array", "items": {"type": "object", "properties": {
        "code": {"type": "string"}, "name": {"type": "string"}, "lon": {"type": "number"},
        "lat": {"type": "number"}}}}}}


@router.get("/labels", response_class=Response,
            responses={200: ok("Place names", JSON, LABELS_SCHEMA), **problems(400, 404, 503)})
def labels(who: Who, conn: ReadConn, as_of: AsOf = None) -> Response:
    """Names of the gazetteer's units (communes) of the era AS_OF (default today), each at a
    point inside it: the offline map's place names."""
    if GAZETTEER is None:
        raise NotFound("not found", message=Message("status_404"))
    layer = readable(GAZETTEER.id, who)
    rows = queries.labels(conn, layer, label_field(layer) or layer.id_column,
                          row_filter(layer, who), _noon(as_of))
    return _json({"labels": rows}, cache="public, max-age=300")
