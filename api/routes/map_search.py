"""GET /api/search?q=: the map's search box (gis/analysis/search.py says what it understands).

Results come only from layers the caller may read, in fields the caller may read, without rows
the caller may not see (layers.access, as on every other way out), each with a centre and bbox to
zoom to. Names are looked up in every readable layer's Layer.search_fields; hits come back as one
flat list (administrative units first) and grouped by layer.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api.deps import Conn, SettingsDep, Who
from api.route_docs import JSON, ok, problems
from gis import audit
from gis.analysis import search
from layers.access import (
    can_read,
    readable_fields,
    readable_layers,
    row_filter,
)
from layers.catalogue import get_layer
from layers.errors import BadRequest

router = APIRouter(prefix="/api", tags=["map"])
MAX_QUERY = 200
# The gazetteer and the cadastre have searches of their own (ranking by unit level and era;
# sheet/parcel numbers).
UNITS, PARCELS = "admin_units", "parcels"

HIT_SCHEMA: dict[str, Any] = {"type": "object", "properties": {
    "kind": {"enum": ["admin_unit", "parcel", "coordinate", "feature"]},
    "title": {"type": "object"}, "subtitle": {"type": "object"},
    "center": {"type": "array", "items": {"type": "number"}},
    "bbox": {"type": ["array", "null"]}, "layer": {"type": ["string", "null"]},
    "id": {"type": ["integer", "null"]}, "properties": {"type": "object"}}}
SEARCH_SCHEMA: dict[str, Any] = {"type": "object", "properties": {
    "query": {"type": "string"},
    "understood_as": {"enum": ["name", "parcel", "coordinate"]},
    "results": {"type": "array", "items": HIT_SCHEMA},
    "groups": {"type": "array", "items": {"type": "object", "properties": {
        "layer": {"type": "string"}, "title": {"type": "object"},
        "results": {"type": "array", "items": HIT_SCHEMA}}}}}}


@router.get("/search", response_class=Response,
            responses={200: ok("Places found", JSON, SEARCH_SCHEMA), **problems(400, 503)})
def search_places(
    request: Request, who: Who, conn: Conn, settings: SettingsDep,
    q: Annotated[str, Query(max_length=MAX_QUERY, description="a place or facility name (with "
                            "or without diacritics), sheet/parcel numbers, or coordinates "
                            "(WGS84 or VN-2000)")] = "",
    limit: Annotated[int, Query(ge=1, le=50, description="results per layer and in all")
                     ] = search.MAX_RESULTS,
) -> Response:
    """Search what the caller may read by name, cadastral number or coordinate."""
    text = q.strip()
    if not text:
        raise BadRequest("q: type a place name, sheet/parcel numbers or coordinates", parameter="q")
    units, parcels = get_layer(UNITS), get_layer(PARCELS)
    groups: list[tuple[str, list[search.Hit]]] = []
    hits: list[search.Hit] = []
    coordinate = search.parse_coordinate(text, settings.province_srid)
    if coordinate is not None:
        commune = (search.containing_commune(conn, coordinate.lon, coordinate.lat)
                   if can_read(units, who) else None)
        hits.append(search.coordinate_hit(coordinate, commune, settings.province_srid))
    parcel_query = search.parse_parcel(text) if coordinate is None else None
    if parcel_query is not None and can_read(parcels, who):
        found = search.parcels(conn, parcel_query, row_filter(parcels, who), limit)
        groups.append((PARCELS, found))
    if coordinate is None and parcel_query is None:
        for layer in readable_layers(who):
            if layer.id == UNITS:
                found = search.admin_units(conn, text, limit)
            elif layer.search_fields and layer.id != PARCELS:
                found = search.layer_features(conn, layer, readable_fields(layer, who),
                                              row_filter(layer, who), text, limit)
            else:
                continue
            if found:
                groups.append((layer.id, found))
                audit.record_read(conn, who, layer, "search", ids=[h.id for h in found],
                                  filter={"q": text}, request=request)
    for _, found in groups:
        hits.extend(found)
    kind = ("coordinate" if coordinate is not None else "parcel" if parcel_query is not None
            else "name")
    body = {
        "query": text, "understood_as": kind, "results": [h.as_json() for h in hits[:limit]],
        "groups": [{"layer": layer_id, "title": {"vi": get_layer(layer_id).title_vi,
                                                 "en": get_layer(layer_id).title_en},
                    "results": [h.as_json() for h in found]} for layer_id, found in groups],
    }
    return Response(orjson.dumps(body), media_type=JSON,
                    headers={"Cache-Control": "private, max-age=0"})

