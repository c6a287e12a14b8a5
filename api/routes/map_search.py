"""GET /api/search?q=: the map's search box (gis/analysis/search.py says what it understands).

Results come only from layers the caller may read, in fields the caller may read, without rows
the caller may not see (layers.access, as on every other way out), each with a centre and bbox to
zoom to. Names are looked up in every readable layer's Layer.search_fields; hits come back
grouped by kind of thing (current administrative units, units that ended with the 2025 reform,
each layer, parcels, a coordinate), each group with its name in Vietnamese and English, groups
with the best match first; and as one flat list of the first ones.
"""

from __future__ import annotations

from dataclasses import dataclass
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
        "key": {"type": "string", "description": "the kind of thing: a layer id, "
                "'admin_units:former' (units that ended) or 'coordinate'"},
        "layer": {"type": ["string", "null"]},
        "title": {"type": "object", "description": "the kind's name, {vi, en}"},
        "results": {"type": "array", "items": HIT_SCHEMA}}}}}}
COORDINATE_TITLE = {"vi": "Tọa độ", "en": "Coordinates"}


@dataclass
class Group:
    key: str
    layer: str | None
    title: dict[str, str]
    hits: list[search.Hit]

    def as_json(self) -> dict[str, Any]:
        return {"key": self.key, "layer": self.layer, "title": self.title,
                "results": [h.as_json() for h in self.hits]}


def _unit_groups(hits: list[search.Hit]) -> list[Group]:
    """Current units, and units that ended (the 2025 reform) as a kind of their own."""
    layer = get_layer(UNITS)
    current = [h for h in hits if h.properties.get("current")]
    former = [h for h in hits if not h.properties.get("current")]
    groups = [Group(UNITS, UNITS, {"vi": layer.title_vi, "en": layer.title_en}, current)]
    if former:
        until = max(str(h.properties["valid_to"]) for h in former)
        groups.append(Group(f"{UNITS}:former", UNITS, {
            "vi": f"Đơn vị hành chính cũ (trước {search.format_day(until, 'vi')})",
            "en": f"Former administrative units (before {search.format_day(until, 'en')})"}, former))
    return [g for g in groups if g.hits]


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
        raise BadRequest.for_field("search_text", "q", "type a place name, sheet/parcel numbers or "
                                   "coordinates")
    units, parcels = get_layer(UNITS), get_layer(PARCELS)
    groups: list[Group] = []
    coordinate = search.parse_coordinate(text, settings.province_srid)
    if coordinate is not None:
        commune = (search.containing_commune(conn, coordinate.lon, coordinate.lat)
                   if can_read(units, who) else None)
        groups.append(Group("coordinate", None, COORDINATE_TITLE,
                            [search.coordinate_hit(coordinate, commune, settings.province_srid)]))
    parcel_query = search.parse_parcel(text) if coordinate is None else None
    if parcel_query is not None and can_read(parcels, who):
        found = search.parcels(conn, parcel_query, row_filter(parcels, who), limit)
        groups.append(Group(PARCELS, PARCELS, {"vi": parcels.title_vi, "en": parcels.title_en},
                            found))
    if coordinate is None and parcel_query is None:
        for layer in readable_layers(who):
            if layer.id == UNITS:
                found = search.admin_units(conn, text, limit)
                kinds = _unit_groups(found)
            elif layer.search_fields and layer.id != PARCELS:
                found = search.layer_features(conn, layer, readable_fields(layer, who),
                                              row_filter(layer, who), text, limit)
                kinds = [Group(layer.id, layer.id, {"vi": layer.title_vi, "en": layer.title_en},
                               found)]
            else:
                continue
            if found:
                groups.extend(kinds)
                ids = [i for h in found for i in h.properties.get("ids") or [h.id]]
                audit.record_read(conn, who, layer, "search", ids=ids, filter={"q": text},
                                  request=request)
    # The kind with the best match first (a tourism place named "Chùa ..." before a street
    # named "... Công Chúa" for "chua"); the catalogue's order otherwise.
    ranked = sorted((min(h.rank for h in g.hits), i, g) for i, g in enumerate(groups) if g.hits)
    groups = [g for _, _, g in ranked]
    hits = [h for g in groups for h in g.hits]
    kind = ("coordinate" if coordinate is not None else "parcel" if parcel_query is not None
            else "name")
    body = {"query": text, "understood_as": kind, "results": [h.as_json() for h in hits[:limit]],
            "groups": [g.as_json() for g in groups]}
    return Response(orjson.dumps(body), media_type=JSON,
                    headers={"Cache-Control": "private, max-age=0"})

