"""Parcel inspection over HTTP: search, the parcel file, "as of", edits, cadastral extracts, and
the pages of the web client.

API (JSON; errors are RFC 9457 problem details, raised as layers.errors and rendered by api/errors.py):
  GET   /api/parcels/search?commune=&sheet=&parcel=&land_use=&owner=&point=lon,lat&xy=X,Y&limit=&offset=
  POST  /api/parcels/search            {"geometry": GeoJSON polygon, "relation": "intersects"|"within", ...}
  GET   /api/parcels/by-number/{commune}/{sheet}/{parcel}[?as_of=]   (current or pre-2025 code)
  GET   /api/parcels/anomalies[?commune=]                            (land officers)
  GET   /api/parcels/{id}[?as_of=YYYY-MM-DD|date-time]
  PATCH /api/parcels/{id}   If-Match: "<version>" (or "version" in the body); land officers
Documents and pages:
  GET /parcels/{id}/extract.html, /parcels/{id}/extract.pdf [?as_of=&lang=en]
  GET /parcels (search page), /parcels/{id} (parcel page), /parcels/sign-in

Access: the parcels layer is public, its personal fields (and the owner search) only for whom
layers.access.readable_fields allows; incidents and cameras sections follow their layers'
rules. Sensitive reads and every write go to the audit log (edits inside their transaction).
Bad input is a 400/404/409/422/428 naming the problem, never a 500. Every parameter, body and
status is declared, so /openapi.json describes these routes. The search page shows a bad search
inside the form (with its status); the other pages raise, and a browser gets an HTML error page.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import orjson
import psycopg
from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt

from api import messages
from api.deps import Conn, QueryModel, SettingsDep, query
from api.errors import status_of
from api.i18n import request_lang
from api.ogc.tiles import CACHE as TILES
from api.route_docs import (
    BINARY,
    HTML,
    WHO,
    body_schema,
    check_members,
    json_body,
    problems,
    validate,
)
from api.security import Who, require_roles, unauthorized
from gis import audit
from gis.crs import transformer
from gis.parcels import checks, detail, edit, extract, pdf, queries, search
from gis.parcels.common import parse_as_of, readable
from gis.parcels.geometry import polygon_from_geojson
from layers.access import Principal, row_filter
from layers.catalogue import get_layer
from layers.errors import (
    BadRequest,
    Collect,
    Forbidden,
    GeoIOCError,
    Invalid,
    Message,
    NotFound,
    Unauthorized,
)
from web import parcels_pages

log = logging.getLogger(__name__)
router = APIRouter(tags=["parcels"])
JSON = "application/json"
MAX_BODY = 2_000_000
NO_STORE = {"Cache-Control": "private, no-cache"}
# What a page's 401 asks for: pages cannot see the map's tokens, so the browser's password dialog.
BASIC_CHALLENGE = 'Basic realm="GeoIOC", charset="UTF-8"'
MAX_SHEET = 9999
OWNER_SIGN_IN = "sign in as a land officer to search by land user"
MAX_PARCEL = 99999


# --- plumbing ------------------------------------------------------------------------------------


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=JSON,
                    headers={**NO_STORE, **(headers or {})})


def _blank_none(value: Any) -> Any:
    """An empty form field (`?sheet=`) means "not given", as it always has."""
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


Blank = BeforeValidator(_blank_none)
# Bounds on the number itself (not on "number or nothing"), so that the schema says them.
SheetInt = Annotated[int, Field(ge=1, le=MAX_SHEET)]
ParcelInt = Annotated[int, Field(ge=1, le=MAX_PARCEL)]
LimitInt = Annotated[int, Field(ge=1, le=search.MAX_LIMIT)]
OffsetInt = Annotated[int, Field(ge=0, le=search.MAX_OFFSET)]
SheetNo = Annotated[SheetInt | None, Blank, Field(description="map sheet number")]
ParcelNo = Annotated[ParcelInt | None, Blank, Field(description="parcel number on the sheet")]
Text = Annotated[str | None, Blank]


def _int(name: str, raw: str | None, lo: int, hi: int) -> int | None:
    """The search page's own reading of a number, so its form shows our message in place."""
    if raw is None or raw.strip() == "":
        return None
    try:
        v = int(raw.strip())
    except ValueError:
        raise BadRequest.for_field("not_whole_number", name, f"{raw!r} is not a whole number",
                                   value=raw) from None
    if not lo <= v <= hi:
        raise BadRequest.for_field("out_of_range", name, f"{v} is outside {lo}..{hi}",
                                   value=v, lo=lo, hi=hi)
    return v


def _pair(name: str, raw: str) -> tuple[float, float]:
    parts = [p for p in raw.replace(";", ",").replace(" ", ",").split(",") if p]
    try:
        a, b = (float(p) for p in parts)
    except ValueError:
        raise BadRequest.for_field("two_numbers", name,
                                   f"expected two numbers separated by a comma, got {raw!r}",
                                   value=raw) from None
    return a, b


def _point(raw: str | None) -> tuple[float, float] | None:
    if not raw or not raw.strip():
        return None
    lon, lat = _pair("point", raw)
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise BadRequest.for_field("not_lon_lat", "point",
                                   f"{raw!r} is not longitude,latitude (for VN-2000 X,Y use xy=)",
                                   value=raw)
    return lon, lat


def _xy(raw: str | None, srid: int) -> tuple[float, float] | None:
    """VN-2000 X (northing), Y (easting) in the province's zone, as land officers write them."""
    if not raw or not raw.strip():
        return None
    x, y = _pair("xy", raw)
    if not (800_000 <= x <= 2_700_000 and 100_000 <= y <= 900_000):
        raise BadRequest.for_field("not_vn2000_xy", "xy",
                                   f"{raw!r} is not VN-2000 X (northing), Y (easting) in metres",
                                   value=raw)
    lon, lat = transformer(srid, 4326).transform(y, x)
    return lon, lat


def _owner_allowed(who: Principal) -> bool:
    return "land_user" in readable(who)


@dataclass
class SearchTerms:
    """The criteria of a search as the caller gave them (numbers already read)."""

    commune: str | None = None
    sheet: int | None = None
    parcel: int | None = None
    land_use: str | None = None
    owner: str | None = None
    point: str | None = None
    xy: str | None = None


def _criteria(conn: psycopg.Connection, who: Principal, terms: SearchTerms, srid: int,
              request: Request | None = None) -> search.Criteria:
    """REQUEST: whose credentials decide the 401's challenges; None offers Basic (the pages)."""
    c = search.Criteria()
    owner = (terms.owner or "").strip()
    if owner and not _owner_allowed(who):
        if who.anonymous:
            raise (unauthorized(OWNER_SIGN_IN, request, Message("owner_sign_in"))
                   if request is not None
                   else Unauthorized(OWNER_SIGN_IN, challenges=(BASIC_CHALLENGE,),
                                     message=Message("owner_sign_in")))
        raise Forbidden.for_field("owner_forbidden", "owner",
                                  "searching by land user needs the right to read land "
                                  "users' names (land officers)")
    # Every criterion is checked, and all those in error are listed in one answer.
    check = Collect()
    commune = (terms.commune or "").strip()
    if commune:
        c.communes = check(search.resolve_communes, conn, commune)
    c.sheet, c.parcel = terms.sheet, terms.parcel
    land_use = (terms.land_use or "").strip()
    if land_use:
        c.land_use = check(search.parse_land_use, land_use)
    if owner:
        c.owner = check(search.parse_owner, owner)
    c.point = check(_point, terms.point) or check(_xy, terms.xy, srid)
    check.done()
    return c


def _run_search(conn: psycopg.Connection, request: Request, who: Principal, c: search.Criteria,
                limit: int, offset: int) -> tuple[list[dict[str, Any]], bool]:
    layer = get_layer("parcels")
    results, more = search.search(conn, c, readable(who), row_filter(layer, who),
                                  limit=limit, offset=offset)
    # Results carry land users' names for whom may read them; looking people up by name is
    # only open to them. The criteria are recorded without the name itself.
    audit.record_read(conn, who, layer, "parcel-search" if request.url.path.startswith("/api/")
                      else "parcel-search-page", ids=[r["id"] for r in results],
                      filter={**c.describe(), "limit": limit, "offset": offset}, request=request)
    return results, more


def _search_body(request: Request, results: list[dict[str, Any]], more: bool, limit: int,
                 offset: int) -> dict[str, Any]:
    links = [{"rel": "self", "href": str(request.url)}]
    if more and request.method == "GET":
        q = dict(request.query_params)
        q.update(offset=str(offset + limit), limit=str(limit))
        links.append({"rel": "next", "href": str(request.url.replace_query_params(**q))})
    return {"numberReturned": len(results), "limit": limit, "offset": offset, "more": more,
            "results": results, "links": links}


def _parcel_id(raw: str) -> int:
    try:
        v = int(raw)
    except ValueError:
        raise NotFound(f"parcel {raw!r} not found (parcel ids are whole numbers; for sheet and "
                       "parcel numbers use /api/parcels/by-number/{commune}/{sheet}/{parcel})",
                       message=Message("parcel_not_found", {"id": raw})) from None
    if not 1 <= v <= 2**62:
        raise NotFound(f"parcel {raw} not found", message=Message("parcel_not_found", {"id": raw}))
    return v


def _srid_of(crs: Any, province: int) -> int:
    if crs in (None, "", 4326, "4326", "EPSG:4326", "CRS84", "OGC:CRS84",
               "http://www.opengis.net/def/crs/OGC/1.3/CRS84"):
        return 4326
    if crs in (province, str(province), f"EPSG:{province}",
               f"http://www.opengis.net/def/crs/EPSG/0/{province}"):
        return province
    raise Invalid.for_field("geometry_crs", "crs",
                            f"{crs!r} is not supported (lon/lat EPSG:4326 or the province's "
                            f"VN-2000 TM-3 EPSG:{province}, x = easting, y = northing)",
                            value=repr(crs), srid=str(province))


# --- typed parameters ----------------------------------------------------------------------------


ParcelIdPath = Annotated[str, Path(
    description="the parcel's id (a whole number; an id that is not one is a 404, as for any "
                "parcel that does not exist)", max_length=100, examples=["1"])]


async def get_as_of(as_of: Annotated[str | None, Query(
        description="the parcel as it was then: `YYYY-MM-DD` (the end of that day, province "
                    "time) or an ISO date-time; default now", max_length=40,
        examples=["2025-06-30"])] = None) -> dt.datetime | None:
    return parse_as_of(as_of)


AsOf = Annotated[dt.datetime | None, Depends(get_as_of)]


async def get_lang(request: Request, lang: Annotated[str | None, Query(
        description="`en` for English; default Vietnamese (or the browser's Accept-Language)",
        max_length=10)] = None) -> str:
    return request_lang(request)


Lang = Annotated[str, Depends(get_lang)]


class SearchQuery(QueryModel):
    """GET /api/parcels/search: the criteria and the page, one model (api.deps.QueryModel)."""

    commune: Annotated[str | None, Field(description="commune code (5 digits, current or pre-2025) "
                                         "or name", max_length=100)] = None
    sheet: SheetNo = None
    parcel: ParcelNo = None
    land_use: Annotated[str | None, Field(description="land-use code(s), comma-separated (e.g. ONT,CLN)",
                                          max_length=200)] = None
    owner: Annotated[str | None, Field(description="part of the land user's name (land officers only)",
                                       max_length=200)] = None
    point: Annotated[str | None, Field(description="lon,lat: the parcel under this point",
                                       max_length=100, examples=["106.05,21.1"])] = None
    xy: Annotated[str | None, Field(description="VN-2000 X (northing),Y (easting) in metres, in the "
                                    "province's TM-3 zone", max_length=100)] = None
    limit: Annotated[LimitInt | None, Blank, Field(description=(
        f"results per page (default {search.DEFAULT_LIMIT}, at most {search.MAX_LIMIT})"))] = None
    offset: Annotated[OffsetInt | None, Blank, Field(description="results to skip")] = None

    def terms(self) -> SearchTerms:
        return SearchTerms(self.commune, self.sheet, self.parcel, self.land_use, self.owner,
                           self.point, self.xy)


LandOfficer = Annotated[Principal, Depends(require_roles("land_officer"))]


# --- bodies --------------------------------------------------------------------------------------


class PolygonSearch(BaseModel):
    """POST /api/parcels/search: the parcels intersecting (or within) a drawn polygon, optionally
    narrowed by the GET search's criteria."""

    model_config = ConfigDict(extra="forbid", title="PolygonSearch")

    geometry: Any = Field(description="a GeoJSON Polygon or MultiPolygon (at most "
                                      f"{search.MAX_POLYGON_KM2:g} km²)",
                          json_schema_extra={"type": "object"})
    crs: str | int | None = Field(None, description="CRS of the coordinates: EPSG:4326 (default) or "
                                                    "the province's VN-2000 TM-3 (x = easting)")
    relation: Literal["intersects", "within"] = "intersects"
    commune: Text = Field(None, max_length=100)
    sheet: SheetNo = None
    parcel: ParcelNo = None
    land_use: Text = Field(None, max_length=200)
    owner: Text = Field(None, max_length=200)
    limit: Annotated[LimitInt | None, Blank] = None
    offset: Annotated[OffsetInt | None, Blank] = None


class ParcelPatch(BaseModel):
    """PATCH /api/parcels/{id}: what changes, and the version it was made on (or If-Match). A
    GeoJSON Feature (`type`, `id`) is accepted as well."""

    model_config = ConfigDict(extra="forbid", title="ParcelPatch")

    type: str | None = Field(None, examples=["Feature"])
    id: int | str | None = None
    version: Annotated[Annotated[StrictInt, Field(ge=1)] | None, Field(description="the version edited "
                                                                 "(or If-Match: \"<version>\")")] = None
    properties: dict[str, Any] | None = Field(None, description="field: new value; fields: "
                                                                + ", ".join(edit.EDITABLE))
    geometry: Any = Field(None, description="the new boundary, a GeoJSON Polygon or MultiPolygon",
                          json_schema_extra={"type": "object"})
    crs: str | int | None = None
    # The bound is edit.apply's (its message names it); the schema states it.
    note: str | None = Field(None, description=f"why (at most {edit.MAX_NOTE} characters)",
                             json_schema_extra={"maxLength": edit.MAX_NOTE})


search_body = json_body(max_bytes=MAX_BODY,
                        not_object="body: expected an object {\"geometry\": GeoJSON polygon, ...}")
patch_body = json_body(max_bytes=MAX_BODY, not_object="body: expected an object "
                                                      "{\"version\", \"properties\", \"geometry\", \"note\"}")


# --- responses -----------------------------------------------------------------------------------


class SearchResults(BaseModel):
    numberReturned: int
    limit: int
    offset: int
    more: bool
    results: list[dict[str, Any]]
    links: list[dict[str, str]]


class ParcelFile(BaseModel):
    """The parcel file (fields as the caller may read them, area checks, zoning, neighbours,
    history, incidents and cameras nearby, links); ETag is its version."""

    model_config = ConfigDict(extra="allow")
    id: int
    version: int
    links: list[dict[str, str]]


class Anomalies(BaseModel):
    commune: str | None
    area_discrepancies: list[dict[str, Any]]
    zoning_conflicts: list[dict[str, Any]]


class EditResult(BaseModel):
    id: int
    version: int
    updated_at: str
    changed: list[str]
    warnings: list[str]
    parcel: dict[str, Any]


ETAG = {"ETag": {"schema": {"type": "string"}, "description": "the parcel's version, for If-Match"}}


# --- API -----------------------------------------------------------------------------------------


@router.get("/api/parcels/search", summary="Search parcels", responses={
    200: {"model": SearchResults, "description": "a page of parcels"},
    **problems(400, 401, 403, 404, 422, 429, reasons={
        404: "the commune named is not known", 401: "searching by land user needs sign-in",
        403: "searching by land user needs the right to read land users' names"})})
def search_get(request: Request, who: Who, conn: Conn, settings: SettingsDep,
               q: Annotated[SearchQuery, query(SearchQuery)]) -> Response:
    """Parcels by commune, sheet, parcel number, land use, land user (land officers), a point in
    lon/lat or a VN-2000 X,Y."""
    c = _criteria(conn, who, q.terms(), settings.province_srid, request)
    limit, offset = q.limit or search.DEFAULT_LIMIT, q.offset or 0
    results, more = _run_search(conn, request, who, c, limit, offset)
    return _json(_search_body(request, results, more, limit, offset))


@router.post("/api/parcels/search", summary="Search parcels in a polygon",
             openapi_extra=body_schema(PolygonSearch), responses={
                 200: {"model": SearchResults, "description": "a page of parcels"},
                 **problems(400, 401, 403, 404, 422, 429, reasons={
                     400: "the body is not a JSON object, or a member is unknown, missing or malformed",
                     422: "the polygon is invalid (reason and place), too large, or in an unknown CRS"})})
def search_post(request: Request, who: Who, conn: Conn, settings: SettingsDep,
                body: Annotated[dict[str, Any], Depends(search_body)]) -> Response:
    check_members(body, PolygonSearch.model_fields, BadRequest,
                  f"(allowed: {', '.join(sorted(PolygonSearch.model_fields))})")
    if "geometry" not in body:
        raise BadRequest("body: \"geometry\" (a GeoJSON Polygon or MultiPolygon) is required; "
                         "other searches use GET /api/parcels/search")
    q = validate(PolygonSearch, body, BadRequest)  # every member in error at once
    limit, offset = q.limit or search.DEFAULT_LIMIT, q.offset or 0
    srid = settings.province_srid
    # Then the criteria, the CRS and the polygon: all that is wrong in one answer.
    check = Collect()
    c = check(_criteria, conn, who, SearchTerms(q.commune, q.sheet, q.parcel, q.land_use, q.owner),
              srid, request)
    given = check(_srid_of, q.crs, srid)
    polygon = (check(polygon_from_geojson, conn, q.geometry, srid=given, province_srid=srid)
               if given is not None else None)
    check.done()
    assert c is not None and polygon is not None
    c.polygon = polygon
    area_km2 = queries.area_km2(conn, c.polygon, srid)
    if area_km2 > search.MAX_POLYGON_KM2:
        raise Invalid.for_field("search_area", "geometry",
                                f"the area is {area_km2:.1f} km²; search areas up to "
                                f"{search.MAX_POLYGON_KM2} km² (use the OGC API for more)",
                                area=round(area_km2, 1), max=search.MAX_POLYGON_KM2)
    c.within = q.relation == "within"
    results, more = _run_search(conn, request, who, c, limit, offset)
    return _json(_search_body(request, results, more, limit, offset))


def _detail_response(conn: psycopg.Connection, request: Request, who: Principal, parcel_id: int,
                     as_of: dt.datetime | None, srid: int,
                     extra_headers: dict[str, str] | None = None) -> Response:
    body = detail.detail(conn, parcel_id, who, srid, as_of)
    detail.audit_read(conn, who, body, "parcel-api", request)
    body["links"] = _links(parcel_id, as_of)
    headers = dict(extra_headers or {})
    if as_of is None:
        headers["ETag"] = f'"{body["version"]}"'
    return _json(body, headers=headers)


def _links(parcel_id: int, as_of: dt.datetime | None) -> list[dict[str, str]]:
    q = f"?as_of={as_of.isoformat().replace('+', '%2B')}" if as_of else ""
    return [{"rel": "self", "type": JSON, "href": f"/api/parcels/{parcel_id}{q}"},
            {"rel": "alternate", "type": "text/html", "href": f"/parcels/{parcel_id}{q}"},
            {"rel": "extract", "type": "application/pdf", "href": f"/parcels/{parcel_id}/extract.pdf{q}"},
            {"rel": "extract", "type": "text/html", "href": f"/parcels/{parcel_id}/extract.html{q}"}]


@router.get("/api/parcels/by-number/{commune}/{sheet}/{parcel}", summary="A parcel by its number",
            responses={200: {"model": ParcelFile, "description": "the parcel file",
                             "headers": {**ETAG, "Content-Location": {
                                 "schema": {"type": "string"}, "description": "the parcel's URL"}}},
                       **problems(300, 400, *WHO, 404, reasons={
                           300: "a post-2025 commune code whose merged communes share the sheet and "
                                "parcel numbers: `candidates` lists them"})})
def by_number(request: Request, who: Who, conn: Conn, settings: SettingsDep,
              commune: Annotated[str, Path(description="commune code, current or pre-2025 (5 digits)",
                                           max_length=100, examples=["09244"])],
              sheet: Annotated[int, Path(ge=1, le=MAX_SHEET, description="map sheet number")],
              parcel: Annotated[int, Path(ge=1, le=MAX_PARCEL, description="parcel number on the sheet")],
              as_of: AsOf) -> Response:
    pid = search.find_by_number(conn, commune.strip(), sheet, parcel, row_filter(get_layer("parcels"), who))
    return _detail_response(conn, request, who, pid, as_of, settings.province_srid,
                            {"Content-Location": f"/api/parcels/{pid}"})


@router.get("/api/parcels/anomalies", summary="Area discrepancies and zoning conflicts",
            responses={200: {"model": Anomalies, "description": "the land officer's work list"},
                       **problems(400, *WHO, 403, 404)})
def anomalies(who: LandOfficer, conn: Conn, settings: SettingsDep,
              commune: Annotated[str | None, Query(max_length=100, description=(
                  "only this commune (its code or an unambiguous name)"))] = None) -> Response:
    """Area discrepancies and zoning conflicts over all parcels (of one commune): the land
    officer's work list."""
    srid = settings.province_srid
    code = None
    if commune:
        codes = search.resolve_communes(conn, commune)
        if len(codes) != 1:
            raise BadRequest.for_field("commune_matches", "commune",
                                       f"{commune!r} matches {len(codes)} communes; give its code",
                                       value=repr(commune), n=len(codes))
        code = codes[0]
    areas = checks.all_area_discrepancies(conn, srid, code)
    conflicts = checks.all_zoning_conflicts(conn, srid, code)
    keys = queries.parcel_keys(conn, [c.parcel_id for c in conflicts])
    return _json({
        "commune": code,
        "area_discrepancies": areas,
        "zoning_conflicts": [{"id": c.parcel_id, **keys.get(c.parcel_id, {}), **c.as_json()}
                             for c in conflicts],
    })


@router.get("/api/parcels/{parcel_id}", summary="The parcel file", responses={
    200: {"model": ParcelFile, "description": "the parcel file (ETag only for the current version)",
          "headers": ETAG},
    **problems(400, *WHO, 404, reasons={404: "no such parcel (or none at `as_of`: the body says since when "
                                       "it is recorded)"})})
def get_parcel(request: Request, who: Who, conn: Conn, settings: SettingsDep, parcel_id: ParcelIdPath,
               as_of: AsOf) -> Response:
    return _detail_response(conn, request, who, _parcel_id(parcel_id), as_of, settings.province_srid)


@router.patch("/api/parcels/{parcel_id}", summary="Edit a parcel (land officers)",
              openapi_extra=body_schema(ParcelPatch), responses={
                  200: {"model": EditResult, "description": "the change, and the parcel as it now is",
                        "headers": ETAG},
                  **problems(400, *WHO, 403, 404, 409, 422, 428, reasons={
                      400: "the body is not a JSON object, or If-Match is malformed or disagrees "
                           "with the body's version",
                      403: "a field the caller may not change",
                      409: "someone saved the parcel since (code VersionConflict, with both versions)",
                      422: "unknown members, invalid values or geometry (code InvalidGeometry with "
                           "`problems`: reason and place of each)"})})
def patch_parcel(request: Request, who: LandOfficer, conn: Conn, settings: SettingsDep,
                 parcel_id: ParcelIdPath, body: Annotated[dict[str, Any], Depends(patch_body)],
                 if_match: Annotated[str | None, Header(
                     description="the version edited, e.g. \"3\" (or `version` in the body)",
                     max_length=100)] = None) -> Response:
    pid = _parcel_id(parcel_id)
    check_members(body, ParcelPatch.model_fields,
                  Invalid, "(send {\"version\", \"properties\": {...}, \"geometry\": {...}, \"note\"})")
    version = edit.parse_version(if_match, body.get("version"))
    if body.get("note") is not None and not isinstance(body["note"], str):
        raise Invalid.for_field("text", "note", "expected text")
    srid = settings.province_srid
    change = edit.Edit(expected_version=version, note=body.get("note"))
    if body.get("properties") is not None:
        # The domain's own check first: its messages name the field and the rule.
        change.properties = edit.validate_properties(conn, body["properties"], who)
    change_of = validate(ParcelPatch, body, Invalid)
    if change_of.geometry is not None:
        change.geometry = polygon_from_geojson(conn, change_of.geometry, srid=_srid_of(change_of.crs, srid),
                                               province_srid=srid)
    result = edit.apply(conn, pid, change, who, srid, request)
    lang = request_lang(request)
    result["warnings"] = [messages.text(w, lang) or w.key for w in result["warnings"]]
    parcel = detail.detail(conn, pid, who, srid)
    TILES.forget("parcels")
    parcel["links"] = _links(pid, None)
    return _json({**result, "parcel": parcel}, headers={"ETag": f'"{result["version"]}"'})


# --- extracts ------------------------------------------------------------------------------------


def _extract(conn: psycopg.Connection, request: Request, who: Principal, parcel_id: str,
             as_of: dt.datetime | None, srid: int, lang: str, channel: str) -> extract.Extract:
    ex = extract.build(conn, _parcel_id(parcel_id), who, srid, as_of, lang)
    audit.record_read(conn, who, get_layer("parcels"), channel,
                      ids=[ex.parcel_id], filter={"as_of": as_of.isoformat()} if as_of else None,
                      request=request)
    return ex


def _filename(ex: extract.Extract, ext: str) -> str:
    return f"trich-luc-{ex.commune['code']}-{ex.sheet_no}-{ex.parcel_no}.{ext}"


@router.get("/parcels/{parcel_id}/extract.pdf", summary="Cadastral extract (PDF)", response_class=Response,
            responses={200: {"description": "the extract", "content": {"application/pdf": {"schema": BINARY}},
                             "headers": {"Content-Disposition": {"schema": {"type": "string"}}}},
                       **problems(400, *WHO, 404, page=True)})
def extract_pdf(request: Request, who: Who, conn: Conn, settings: SettingsDep, parcel_id: ParcelIdPath,
                as_of: AsOf, lang: Lang) -> Response:
    ex = _extract(conn, request, who, parcel_id, as_of, settings.province_srid, lang, "extract-pdf")
    body = pdf.render(ex, lang)
    return Response(body, media_type="application/pdf", headers={
        **NO_STORE, "Content-Disposition": f'inline; filename="{_filename(ex, "pdf")}"'})


@router.get("/parcels/{parcel_id}/extract.html", summary="Cadastral extract (printable page)",
            response_class=HTMLResponse,
            responses={200: {"description": "the extract", "content": {"text/html": {"schema": HTML}}},
                       **problems(400, *WHO, 404, page=True)})
def extract_html(request: Request, who: Who, conn: Conn, settings: SettingsDep, parcel_id: ParcelIdPath,
                 as_of: AsOf, lang: Lang) -> Response:
    ex = _extract(conn, request, who, parcel_id, as_of, settings.province_srid, lang, "extract-html")
    return HTMLResponse(parcels_pages.extract_page(ex, lang), headers=NO_STORE)


# --- pages ---------------------------------------------------------------------------------------


@router.get("/parcels/sign-in", include_in_schema=False)
def sign_in(who: Who, next: Annotated[str, Query(max_length=2000)] = "/parcels") -> Response:
    """Server-rendered pages cannot see the map's tokens (kept in the tab's sessionStorage):
    they use HTTP Basic, which this asks the browser for, then go back to NEXT."""
    parts = urlsplit(next)
    target = next if (not parts.scheme and not parts.netloc and next.startswith("/")
                      and not next.startswith("//")) else "/parcels"
    if who.anonymous:
        raise Unauthorized("sign in with your GeoIOC user name and password",
                           challenges=(BASIC_CHALLENGE,), message=Message("auth_sign_in_pages"))
    return RedirectResponse(target, status_code=303)


def _page_polygon(conn: psycopg.Connection, raw: str, srid: int) -> bytes:
    """The polygon drawn on the search page's map (GeoJSON text in a hidden field)."""
    try:
        geometry = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest.for_field("not_geojson", "polygon", "not GeoJSON") from None
    return polygon_from_geojson(conn, geometry, province_srid=srid)


@router.get("/parcels", include_in_schema=False)
def search_page(
    request: Request, who: Who, conn: Conn, settings: SettingsDep, lang: Lang,
    commune: Annotated[str | None, Query(max_length=100)] = None,
    sheet: Annotated[str | None, Query(max_length=20)] = None,
    parcel: Annotated[str | None, Query(max_length=20)] = None,
    land_use: Annotated[str | None, Query(max_length=200)] = None,
    owner: Annotated[str | None, Query(max_length=200)] = None,
    point: Annotated[str | None, Query(max_length=100)] = None,
    xy: Annotated[str | None, Query(max_length=100)] = None,
    polygon: Annotated[str | None, Query(max_length=MAX_BODY)] = None,
    limit: Annotated[str | None, Query(max_length=20)] = None,
    offset: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    """The search form and its results. A bad search is shown in the form, with its status (a
    person corrects it there); only a 401 becomes the browser's password dialog."""
    error = None
    problems: list[tuple[str | None, str]] = []
    results: list[dict[str, Any]] | None = None
    more = False
    page_limit, page_offset = search.DEFAULT_LIMIT, 0
    status = 200
    codes = queries.current_land_use_codes(conn, lang)
    labels = parcels_pages.LABELS[lang]
    try:
        # Every field is read and checked before anything is searched, so that the form
        # shows all that is wrong at once.
        check = Collect()
        page_limit = check(_int, "limit", limit, 1, search.MAX_LIMIT) or search.DEFAULT_LIMIT
        page_offset = check(_int, "offset", offset, 0, search.MAX_OFFSET) or 0
        terms = SearchTerms(commune, check(_int, "sheet", sheet, 1, MAX_SHEET),
                            check(_int, "parcel", parcel, 1, MAX_PARCEL), land_use, owner, point, xy)
        c = check(_criteria, conn, who, terms, settings.province_srid)
        shape = check(_page_polygon, conn, polygon, settings.province_srid) if polygon else None
        check.done()
        assert c is not None
        c.polygon = shape
        if not c.empty():
            results, more = _run_search(conn, request, who, c, page_limit, page_offset)
    except Unauthorized:
        raise
    except GeoIOCError as e:
        # In the page's language, each field under the form's own label.
        error, status = messages.detail(e, lang, labels), status_of(e)
        problems = [(p.field, messages.reason(p, lang)) for p in e.problems]
    html = parcels_pages.search_page(
        lang=lang, user=who.user, roles=sorted(who.roles), query=dict(request.query_params),
        land_use_codes=codes, owner_allowed=_owner_allowed(who),
        results=results, more=more, error=error, problems=problems, basemap_url=settings.basemap_url,
        limit=page_limit, offset=page_offset, credential=getattr(who, "credential", ""))
    return HTMLResponse(html, status_code=status, headers=NO_STORE)


@router.get("/parcels/{parcel_id}", include_in_schema=False)
def parcel_page(request: Request, who: Who, conn: Conn, settings: SettingsDep, lang: Lang,
                parcel_id: ParcelIdPath, as_of: AsOf) -> Response:
    pid = _parcel_id(parcel_id)
    body = detail.detail(conn, pid, who, settings.province_srid, as_of)
    detail.audit_read(conn, who, body, "parcel-page", request)
    map_data = detail.map_features(conn, body, as_of, lang)
    layer = get_layer("parcels")
    titles = {f.name: (f.title_en if lang == "en" else f.title_vi) for f in layer.fields}
    labels = {f.name: {k: (v[1] if lang == "en" else v[0]) for k, v in f.values.items()}
              for f in layer.fields if f.values}
    labels["incident_category"] = {k: (v[1] if lang == "en" else v[0])
                                   for k, v in get_layer("incidents").field("category").values.items()}
    labels["incident_status"] = {k: (v[1] if lang == "en" else v[0])
                                 for k, v in get_layer("incidents").field("status").values.items()}
    labels["camera_status"] = {k: (v[1] if lang == "en" else v[0])
                               for k, v in get_layer("cameras").field("status").values.items()}
    html = parcels_pages.parcel_page(lang=lang, user=who.user, roles=sorted(who.roles), parcel=body,
                                     query=dict(request.query_params), map_data=map_data,
                                     basemap_url=settings.basemap_url, field_titles=titles,
                                     value_labels=labels, credential=getattr(who, "credential", ""))
    return HTMLResponse(html, headers=NO_STORE)
