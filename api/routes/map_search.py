"""GET /api/search?q=: the map's search box (gis/analysis/search.py says what it understands).

Results come only from layers the caller may read (administrative units and parcels are public
today; the check stays so that a stricter catalogue stays safe), each with a centre and bbox to
zoom to.
"""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api.ogc.errors import bad_parameter
from api.security import Who
from gis.analysis import search
from gis.db import connection
from gis.settings import get_settings
from layers.access import can_read, row_filter
from layers.catalogue import get_layer

router = APIRouter(prefix="/api", tags=["map"])
MAX_QUERY = 200


@router.get("/search")
def search_places(request: Request, who: Who, q: Annotated[str, Query(max_length=MAX_QUERY)] = "",
                  limit: Annotated[int, Query(ge=1, le=50)] = search.MAX_RESULTS) -> Response:
    text = q.strip()
    if not text:
        raise bad_parameter("q: type a place name, sheet/parcel numbers or coordinates")
    settings = getattr(request.app.state, "settings", None) or get_settings()
    units, parcels = get_layer("admin_units"), get_layer("parcels")
    hits: list[search.Hit] = []
    with connection() as conn:
        coordinate = search.parse_coordinate(text, settings.province_srid)
        if coordinate is not None:
            commune = (search.containing_commune(conn, coordinate.lon, coordinate.lat)
                       if can_read(units, who) else None)
            hits.append(search.coordinate_hit(coordinate, commune, settings.province_srid))
        parcel_query = search.parse_parcel(text) if coordinate is None else None
        if parcel_query is not None and can_read(parcels, who):
            hits.extend(search.parcels(conn, parcel_query, row_filter(parcels, who), limit))
        if coordinate is None and parcel_query is None and can_read(units, who):
            hits.extend(search.admin_units(conn, text, limit))
    kind = ("coordinate" if coordinate is not None else "parcel" if parcel_query is not None
            else "name")
    return Response(orjson.dumps({"query": text, "understood_as": kind,
                                  "results": [h.as_json() for h in hits[:limit]]}),
                    media_type="application/json", headers={"Cache-Control": "private, max-age=0"})
