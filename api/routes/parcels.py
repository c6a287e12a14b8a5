"""Parcel inspection over HTTP: search, the parcel file, "as of", edits, cadastral extracts, and
the pages of the web client.

API (JSON; errors are `{"code", "description", ...}` like the OGC API's):
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
Bad input is a 400/404/409/422/428 naming the problem, never a 500.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlsplit

import orjson
import psycopg
from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from psycopg import errors as pg_errors

from api.i18n import request_lang
from api.ogc.tiles import CACHE as TILES
from api.security import Who, require_roles, unauthorized
from gis import audit
from gis.crs import transformer
from gis.db import connection
from gis.parcels import checks, detail, edit, extract, pdf, search
from gis.parcels.common import parse_as_of, readable
from gis.parcels.errors import BadParameter, Forbidden, InvalidInput, NotFound, ParcelError
from gis.parcels.geometry import polygon_from_geojson
from gis.settings import Settings, get_settings
from layers.access import Principal, row_filter
from layers.catalogue import get_layer
from web import parcels_pages

log = logging.getLogger(__name__)
router = APIRouter(tags=["parcels"])
JSON = "application/json"
MAX_BODY = 2_000_000
NO_STORE = {"Cache-Control": "private, no-cache"}


class Unauthorized(ParcelError):
    """Raised where a signed-in caller would get 403: anonymous callers get 401 instead."""

    status = 401
    code = "Unauthorized"


# --- plumbing ------------------------------------------------------------------------------------


def _settings(request: Request) -> Settings:
    return getattr(request.app.state, "settings", None) or get_settings()


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=JSON,
                    headers={**NO_STORE, **(headers or {})})


def _problem(e: ParcelError, request: Request | None = None) -> Response:
    if isinstance(e, Unauthorized):
        # The same 401 (with its WWW-Authenticate challenges) as every other route.
        raise unauthorized(e.description, request)
    return _json(e.body(), e.status)


def _guard(fn: Callable[..., Response], request: Request, *args: Any) -> Response:
    """Run FN, turning our problems and database refusals of bad input into 4xx answers."""
    try:
        return fn(request, *args)
    except ParcelError as e:
        return _problem(e, request)
    except pg_errors.QueryCanceled:
        return _json({"code": "Timeout", "description": "the query took too long; narrow the search"},
                     503, {"Retry-After": "5"})
    except (pg_errors.DataError, pg_errors.InternalError_) as e:
        # Input PostGIS could not digest (e.g. a geometry GEOS cannot intersect).
        log.info("parcels: database refused input: %s", e)
        return _json({"code": "InvalidValue",
                      "description": f"the database could not process the input: {e.diag.message_primary}"},
                     422)


def _int(name: str, raw: str | None, lo: int, hi: int) -> int | None:
    if raw is None or raw.strip() == "":
        return None
    try:
        v = int(raw.strip())
    except ValueError:
        raise BadParameter(f"{name}: {raw!r} is not a whole number") from None
    if not lo <= v <= hi:
        raise BadParameter(f"{name}: {v} is outside {lo}..{hi}")
    return v


def _pair(name: str, raw: str) -> tuple[float, float]:
    parts = [p for p in raw.replace(";", ",").replace(" ", ",").split(",") if p]
    try:
        a, b = (float(p) for p in parts)
    except ValueError:
        raise BadParameter(f"{name}: expected two numbers separated by a comma, got {raw!r}") from None
    return a, b


def _point(raw: str | None) -> tuple[float, float] | None:
    if not raw or not raw.strip():
        return None
    lon, lat = _pair("point", raw)
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise BadParameter(f"point: {raw!r} is not longitude,latitude (for VN-2000 X,Y use xy=)")
    return lon, lat


def _xy(raw: str | None, srid: int) -> tuple[float, float] | None:
    """VN-2000 X (northing), Y (easting) in the province's zone, as land officers write them."""
    if not raw or not raw.strip():
        return None
    x, y = _pair("xy", raw)
    if not (800_000 <= x <= 2_700_000 and 100_000 <= y <= 900_000):
        raise BadParameter(f"xy: {raw!r} is not VN-2000 X (northing), Y (easting) in metres")
    lon, lat = transformer(srid, 4326).transform(y, x)
    return lon, lat


def _owner_allowed(who: Principal) -> bool:
    return "land_user" in readable(who)


def _criteria(conn: psycopg.Connection, who: Principal, params: dict[str, Any], srid: int) -> search.Criteria:
    c = search.Criteria()
    commune = (params.get("commune") or "").strip()
    if commune:
        c.communes = search.resolve_communes(conn, commune)
    c.sheet = _int("sheet", _str(params.get("sheet")), 1, 9999)
    c.parcel = _int("parcel", _str(params.get("parcel")), 1, 99999)
    land_use = (params.get("land_use") or "").strip()
    if land_use:
        c.land_use = search.parse_land_use(land_use)
    owner = (params.get("owner") or "").strip()
    if owner:
        if not _owner_allowed(who):
            if who.anonymous:
                raise Unauthorized("sign in as a land officer to search by land user")
            raise Forbidden("searching by land user needs the right to read land users' names "
                            "(land officers)")
        c.owner = search.parse_owner(owner)
    c.point = _point(_str(params.get("point"))) or _xy(_str(params.get("xy")), srid)
    return c


def _str(v: Any) -> str | None:
    return None if v is None else str(v)


def _limits(params: dict[str, Any]) -> tuple[int, int]:
    limit = _int("limit", _str(params.get("limit")), 1, search.MAX_LIMIT) or search.DEFAULT_LIMIT
    offset = _int("offset", _str(params.get("offset")), 0, search.MAX_OFFSET) or 0
    return limit, offset


def _run_search(conn: psycopg.Connection, request: Request, who: Principal, c: search.Criteria,
                limit: int, offset: int) -> tuple[list[dict[str, Any]], bool]:
    layer = get_layer("parcels")
    results, more = search.search(conn, c, readable(who), row_filter(layer, who),
                                  limit=limit, offset=offset)
    if c.owner:
        # Looking people up by name is a read of personal data, whatever the layer's class.
        audit.record(conn, who, "read", request=request, layer="parcels",
                     target={"search": c.describe(), "returned": len(results)})
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


def _body(raw: bytes) -> Any:
    if len(raw) > MAX_BODY:
        raise InvalidInput(f"request body larger than {MAX_BODY} bytes")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise BadParameter(f"body is not JSON: {e}") from None


def _parcel_id(raw: str) -> int:
    try:
        v = int(raw)
    except ValueError:
        raise NotFound(f"parcel {raw!r} not found (parcel ids are whole numbers; for sheet and "
                       "parcel numbers use /api/parcels/by-number/{commune}/{sheet}/{parcel})") from None
    if not 1 <= v <= 2**62:
        raise NotFound(f"parcel {raw} not found")
    return v


def _srid_of(crs: Any, province: int) -> int:
    if crs in (None, "", 4326, "4326", "EPSG:4326", "CRS84", "OGC:CRS84",
               "http://www.opengis.net/def/crs/OGC/1.3/CRS84"):
        return 4326
    if crs in (province, str(province), f"EPSG:{province}",
               f"http://www.opengis.net/def/crs/EPSG/0/{province}"):
        return province
    raise InvalidInput(f"crs: {crs!r} is not supported (lon/lat EPSG:4326 or the province's "
                       f"VN-2000 TM-3 EPSG:{province}, x = easting, y = northing)")


# --- API -----------------------------------------------------------------------------------------


@router.get("/api/parcels/search")
def search_get(request: Request, who: Who) -> Response:
    def run(request: Request) -> Response:
        params = dict(request.query_params)
        limit, offset = _limits(params)
        with connection() as conn:
            c = _criteria(conn, who, params, _settings(request).province_srid)
            results, more = _run_search(conn, request, who, c, limit, offset)
        return _json(_search_body(request, results, more, limit, offset))

    return _guard(run, request)


@router.post("/api/parcels/search")
async def search_post(request: Request, who: Who) -> Response:
    raw = await request.body()

    def run(request: Request) -> Response:
        body = _body(raw)
        if not isinstance(body, dict):
            raise BadParameter("body: expected an object {\"geometry\": GeoJSON polygon, ...}")
        allowed = {"geometry", "crs", "relation", "commune", "sheet", "parcel", "land_use", "owner",
                   "limit", "offset"}
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise BadParameter(f"body: unknown member(s) {', '.join(unknown)} "
                               f"(allowed: {', '.join(sorted(allowed))})")
        if "geometry" not in body:
            raise BadParameter("body: \"geometry\" (a GeoJSON Polygon or MultiPolygon) is required; "
                               "other searches use GET /api/parcels/search")
        relation = body.get("relation", "intersects")
        if relation not in ("intersects", "within"):
            raise BadParameter("relation: \"intersects\" or \"within\"")
        settings = _settings(request)
        limit, offset = _limits(body)
        with connection() as conn:
            c = _criteria(conn, who, {k: body.get(k) for k in ("commune", "sheet", "parcel", "land_use",
                                                              "owner")}, settings.province_srid)
            c.polygon = polygon_from_geojson(conn, body["geometry"],
                                             srid=_srid_of(body.get("crs"), settings.province_srid),
                                             province_srid=settings.province_srid)
            area_km2 = conn.execute("SELECT ST_Area(ST_Transform(ST_GeomFromWKB(%s, 4326), %s)) / 1e6",
                                    (c.polygon, settings.province_srid)).fetchone()[0]
            if area_km2 > search.MAX_POLYGON_KM2:
                raise InvalidInput(f"geometry: the area is {area_km2:.1f} km²; search areas up to "
                                   f"{search.MAX_POLYGON_KM2} km² (use the OGC API for more)")
            c.within = relation == "within"
            results, more = _run_search(conn, request, who, c, limit, offset)
        return _json(_search_body(request, results, more, limit, offset))

    return await run_in_threadpool(_guard, run, request)


def _detail_response(request: Request, who: Principal, parcel_id: int, as_of: dt.datetime | None,
                     extra_headers: dict[str, str] | None = None) -> Response:
    srid = _settings(request).province_srid
    with connection() as conn:
        body = detail.detail(conn, parcel_id, who, srid, as_of)
        for layer_id in detail.sensitive_layers(who):
            audit.record(conn, who, "read", request=request, layer=layer_id,
                         target={"parcel": parcel_id, "as_of": body["as_of"]})
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


@router.get("/api/parcels/by-number/{commune}/{sheet}/{parcel}")
def by_number(request: Request, who: Who, commune: str, sheet: str, parcel: str,
              as_of: Annotated[str | None, Query()] = None) -> Response:
    def run(request: Request) -> Response:
        s = _int("sheet", sheet, 1, 9999)
        p = _int("parcel", parcel, 1, 99999)
        t = parse_as_of(as_of)
        with connection() as conn:
            pid = search.find_by_number(conn, commune.strip(), s, p,
                                        row_filter(get_layer("parcels"), who))
        return _detail_response(request, who, pid, t, {"Content-Location": f"/api/parcels/{pid}"})

    return _guard(run, request)


LandOfficer = Annotated[Principal, Depends(require_roles("land_officer"))]


@router.get("/api/parcels/anomalies")
def anomalies(request: Request, who: LandOfficer,
              commune: Annotated[str | None, Query(max_length=100)] = None) -> Response:
    """Area discrepancies and zoning conflicts over all parcels (of one commune): the land
    officer's work list."""

    def run(request: Request) -> Response:
        srid = _settings(request).province_srid
        with connection() as conn:
            code = None
            if commune:
                codes = search.resolve_communes(conn, commune)
                if len(codes) != 1:
                    raise BadParameter(f"commune: {commune!r} matches {len(codes)} communes; give its code")
                code = codes[0]
            areas = checks.all_area_discrepancies(conn, srid, code)
            conflicts = checks.all_zoning_conflicts(conn, srid, code)
            keys = {r[0]: r[1:] for r in conn.execute(
                "SELECT id, commune_code, old_commune_code, sheet_no, parcel_no FROM parcels"
                " WHERE id = ANY(%s)", ([c.parcel_id for c in conflicts],)).fetchall()}
        return _json({
            "commune": code,
            "area_discrepancies": areas,
            "zoning_conflicts": [{"id": c.parcel_id, **dict(zip(
                ("commune_code", "old_commune_code", "sheet_no", "parcel_no"), keys.get(c.parcel_id, ()),
                strict=False)), **c.as_json()} for c in conflicts],
        })

    return _guard(run, request)


@router.get("/api/parcels/{parcel_id}")
def get_parcel(request: Request, who: Who, parcel_id: str,
               as_of: Annotated[str | None, Query()] = None) -> Response:
    def run(request: Request) -> Response:
        return _detail_response(request, who, _parcel_id(parcel_id), parse_as_of(as_of))

    return _guard(run, request)


@router.patch("/api/parcels/{parcel_id}")
async def patch_parcel(request: Request, who: LandOfficer, parcel_id: str) -> Response:
    raw = await request.body()

    def run(request: Request) -> Response:
        pid = _parcel_id(parcel_id)
        body = _body(raw)
        if not isinstance(body, dict):
            raise BadParameter("body: expected an object "
                               "{\"version\", \"properties\", \"geometry\", \"note\"}")
        allowed = {"type", "version", "properties", "geometry", "crs", "note", "id"}
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise InvalidInput(f"body: unknown member(s) {', '.join(unknown)} "
                               "(send {\"version\", \"properties\": {...}, \"geometry\": {...}, \"note\"})")
        version = edit.parse_version(request.headers.get("if-match"), body.get("version"))
        settings = _settings(request)
        note = body.get("note")
        if note is not None and not isinstance(note, str):
            raise InvalidInput("note: expected text")
        with connection() as conn:
            change = edit.Edit(expected_version=version, note=note)
            if body.get("properties") is not None:
                change.properties = edit.validate_properties(conn, body["properties"], who)
            if body.get("geometry") is not None:
                change.geometry = polygon_from_geojson(
                    conn, body["geometry"], srid=_srid_of(body.get("crs"), settings.province_srid),
                    province_srid=settings.province_srid)
            result = edit.apply(conn, pid, change, who, settings.province_srid, request)
            parcel = detail.detail(conn, pid, who, settings.province_srid)
        TILES.forget("parcels")
        parcel["links"] = _links(pid, None)
        return _json({**result, "parcel": parcel}, headers={"ETag": f'"{result["version"]}"'})

    return await run_in_threadpool(_guard, run, request)


# --- extracts ------------------------------------------------------------------------------------


def _extract(request: Request, who: Principal, parcel_id: str, as_of: str | None) -> extract.Extract:
    lang = request_lang(request)
    with connection() as conn:
        ex = extract.build(conn, _parcel_id(parcel_id), who, _settings(request).province_srid,
                           parse_as_of(as_of), lang)
        audit_layers = detail.sensitive_layers(who)
        if "parcels" in audit_layers:
            audit.record(conn, who, "read", request=request, layer="parcels",
                         target={"parcel": ex.parcel_id, "extract": True})
    return ex


def _filename(ex: extract.Extract, ext: str) -> str:
    return f"trich-luc-{ex.commune['code']}-{ex.sheet_no}-{ex.parcel_no}.{ext}"


@router.get("/parcels/{parcel_id}/extract.pdf")
def extract_pdf(request: Request, who: Who, parcel_id: str,
                as_of: Annotated[str | None, Query()] = None) -> Response:
    def run(request: Request) -> Response:
        ex = _extract(request, who, parcel_id, as_of)
        body = pdf.render(ex, request_lang(request))
        return Response(body, media_type="application/pdf", headers={
            **NO_STORE, "Content-Disposition": f'inline; filename="{_filename(ex, "pdf")}"'})

    return _guard(run, request)


@router.get("/parcels/{parcel_id}/extract.html")
def extract_html(request: Request, who: Who, parcel_id: str,
                 as_of: Annotated[str | None, Query()] = None) -> Response:
    def run(request: Request) -> Response:
        ex = _extract(request, who, parcel_id, as_of)
        return HTMLResponse(parcels_pages.extract_page(ex, request_lang(request)), headers=NO_STORE)

    return _guard(run, request)


# --- pages ---------------------------------------------------------------------------------------


def _error_page(e: ParcelError, lang: str) -> HTMLResponse:
    title = parcels_pages.LABELS[lang]["error"]
    from html import escape

    headers = dict(NO_STORE)
    if e.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="GeoIOC", charset="UTF-8"'
    return HTMLResponse(
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8"><title>{title}</title>'
        '<link rel="stylesheet" href="/ogc/static/vendor/bootstrap/css/bootstrap.min.css"></head>'
        f'<body class="p-4"><h1 class="h4">{e.status} – {escape(title)}</h1>'
        f'<p id="error">{escape(e.description)}</p><p><a href="/parcels">/parcels</a></p></body></html>',
        status_code=e.status, headers=headers)


@router.get("/parcels/sign-in", include_in_schema=False)
def sign_in(request: Request, who: Who, next: str = "/parcels") -> Response:
    """Server-rendered pages cannot see the map's tokens (kept in the tab's sessionStorage):
    they use HTTP Basic, which this asks the browser for, then go back to NEXT."""
    parts = urlsplit(next)
    target = next if (not parts.scheme and not parts.netloc and next.startswith("/")
                      and not next.startswith("//")) else "/parcels"
    if who.anonymous:
        return _error_page(Unauthorized("sign in with your GeoIOC user name and password"),
                           request_lang(request))
    return RedirectResponse(target, status_code=303)


@router.get("/parcels", include_in_schema=False)
def search_page(request: Request, who: Who) -> Response:
    lang = request_lang(request)
    params = dict(request.query_params)
    settings = _settings(request)
    error = None
    results: list[dict[str, Any]] | None = None
    more = False
    limit, offset = search.DEFAULT_LIMIT, 0
    status = 200
    with connection() as conn:
        codes = conn.execute(
            "SELECT code, CASE WHEN %s = 'en' THEN name_en ELSE name_vi END FROM land_use_codes"
            " WHERE valid_to IS NULL ORDER BY code", (lang,)).fetchall()
        try:
            limit, offset = _limits(params)
            c = _criteria(conn, who, params, settings.province_srid)
            if params.get("polygon"):
                c.polygon = polygon_from_geojson(conn, orjson.loads(params["polygon"]),
                                                 province_srid=settings.province_srid)
            if not c.empty():
                results, more = _run_search(conn, request, who, c, limit, offset)
        except orjson.JSONDecodeError:
            error, status = "polygon: not GeoJSON", 400
        except ParcelError as e:
            if isinstance(e, Unauthorized):
                return _error_page(e, lang)
            error, status = e.description, e.status
    html = parcels_pages.search_page(
        lang=lang, user=who.user, roles=sorted(who.roles), query=params,
        land_use_codes=[(r[0], r[1]) for r in codes], owner_allowed=_owner_allowed(who),
        results=results, more=more, error=error, basemap_url=settings.basemap_url,
        limit=limit, offset=offset)
    return HTMLResponse(html, status_code=status, headers=NO_STORE)


@router.get("/parcels/{parcel_id}", include_in_schema=False)
def parcel_page(request: Request, who: Who, parcel_id: str,
                as_of: Annotated[str | None, Query()] = None) -> Response:
    lang = request_lang(request)
    settings = _settings(request)
    try:
        pid = _parcel_id(parcel_id)
        t = parse_as_of(as_of)
        with connection() as conn:
            body = detail.detail(conn, pid, who, settings.province_srid, t)
            for layer_id in detail.sensitive_layers(who):
                audit.record(conn, who, "read", request=request, layer=layer_id,
                             target={"parcel": pid, "as_of": body["as_of"]})
            map_data = detail.map_features(conn, body, t, lang)
    except ParcelError as e:
        return _error_page(e, lang)
    layer = get_layer("parcels")
    titles = {f.name: (f.title_en if lang == "en" else f.title_vi) for f in layer.fields}
    labels = {f.name: {k: (v[1] if lang == "en" else v[0]) for k, v in f.values.items()}
              for f in layer.fields if f.values}
    labels["incident_category"] = {k: (v[1] if lang == "en" else v[0])
                                   for k, v in get_layer("incidents").field("category").values.items()}
    html = parcels_pages.parcel_page(lang=lang, user=who.user, roles=sorted(who.roles), parcel=body,
                                     query=dict(request.query_params), map_data=map_data,
                                     basemap_url=settings.basemap_url, field_titles=titles,
                                     value_labels=labels)
    return HTMLResponse(html, headers=NO_STORE)
