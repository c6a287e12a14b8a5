"""Open311 GeoReport v2 at /open311/v2, in .json and .xml (http://wiki.open311.org/GeoReport_v2).

  GET  /open311/v2/discovery.{format}                 service discovery
  GET  /open311/v2/services.{format}                  the service list (categories)
  GET  /open311/v2/services/{service_code}.{format}   a service definition (its attributes)
  POST /open311/v2/requests.{format}                  a new request, form-encoded
  GET  /open311/v2/requests.{format}                  requests: service_request_id, service_code,
                                                      start_date, end_date, status; 90 days, 1000
  GET  /open311/v2/requests/{id}.{format}             one request
  GET  /open311/v2/tokens/{token}.{format}            token -> service_request_id

Public and anonymous: a citizen needs no account (api_key is accepted and not required). The
reporter's name, phone, e-mail and device are stored (gis/reports/intake.py) and never read
here. `jurisdiction_id` may be given: the province's (settings.open311_jurisdiction_id or its
code); another is 404, as the spec says. Names and errors are Vietnamese unless `lang=en` or
Accept-Language asks for English. `extensions=true` adds the agency, commune, duplicate link and
the public history of a request (the "extended attributes" convention of the spec's wiki).
Errors are the spec's error list (api/errors.py, api/open311.py).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request
from starlette.responses import Response

from api import open311, report_intake
from api.deps import Conn, SettingsDep
from api.i18n import request_lang
from api.report_intake import ReportForm
from gis.fmt import VN_TZ
from gis.reports import intake, photos, reference, requests
from gis.settings import Settings
from layers.errors import BadRequest, Message, NotFound, Problem

router = APIRouter(prefix="/open311/v2", tags=["open311"])
Format = Annotated[Literal["json", "xml"], Path(description="json or xml")]


def _lang(request: Request) -> str:
    return request_lang(request)


def _jurisdiction(conn: Any, settings: Settings, value: str | None) -> None:
    if value is None or value.strip() == "":
        return
    accepted = [settings.open311_jurisdiction_id, *requests.province_codes(conn)]
    if value.strip() not in accepted:
        raise NotFound(f"jurisdiction_id {value!r} not found; this endpoint serves "
                       f"{accepted[0]}", message=Message(
                           "jurisdiction_unknown", {"value": value, "expected": accepted[0]}))


# --- discovery and services ----------------------------------------------------------------------


@router.get("/discovery.{fmt}", responses=open311.responses("the discovery document"))
def discovery(fmt: Format, request: Request, settings: SettingsDep) -> Response:
    base = settings.base_url.rstrip("/") + "/open311/v2"
    doc = {
        "changeset": settings.open311_changeset,
        "contact": settings.open311_contact,
        "key_service": "Không cần khóa API để gửi phản ánh / No API key is needed to report.",
        "endpoints": open311.ListOf("endpoint", [{
            "specification": open311.SPEC, "url": base, "changeset": settings.open311_changeset,
            "type": "production",
            "formats": open311.ListOf("format", ["text/xml", "application/json"])}]),
    }
    return open311.render(fmt, "discovery", doc)


def _service(s: dict[str, Any], lang: str, extensions: bool) -> dict[str, Any]:
    en = lang == "en"
    out: dict[str, Any] = {
        "service_code": s["code"],
        "service_name": s["name_en" if en else "name_vi"],
        "description": s["description_en" if en else "description_vi"] or None,
        "metadata": bool(s["attributes"]),
        "type": "realtime",
        "keywords": ", ".join(s["keywords"]),
        "group": s["group_en" if en else "group_vi"],
    }
    if extensions:
        out["extended_attributes"] = {
            "agency_code": s["agency_code"],
            "agency_name": s["agency_name_en" if en else "agency_name_vi"],
            "sla_hours": s["sla_hours"]}
    return out


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "").strip().lower() in ("true", "1", "yes")


@router.get("/services.{fmt}", responses=open311.responses("the service list", 404))
def service_list(fmt: Format, request: Request, conn: Conn, settings: SettingsDep) -> Response:
    _jurisdiction(conn, settings, request.query_params.get("jurisdiction_id"))
    lang, ext = _lang(request), _flag(request, "extensions")
    return open311.render(fmt, "services", open311.ListOf(
        "service", [_service(s, lang, ext) for s in reference.services(conn)]))


def _attribute(a: dict[str, Any], lang: str) -> dict[str, Any]:
    en = lang == "en"
    out: dict[str, Any] = {
        "variable": bool(a.get("variable", True)),
        "code": a["code"],
        "datatype": a["datatype"],
        "required": bool(a.get("required", False)),
        "datatype_description": a.get("datatype_description_en" if en else "datatype_description_vi"),
        "order": a.get("order", 1),
        "description": a.get("description_en" if en else "description_vi"),
    }
    if a["datatype"] in ("singlevaluelist", "multivaluelist"):
        out["values"] = open311.ListOf("value", [
            {"key": v["key"], "name": v.get("name_en" if en else "name_vi")}
            for v in a.get("values", ())])
    return out


@router.get("/services/{service_code}.{fmt}",
            responses=open311.responses("the service definition", 404))
def service_definition(service_code: Annotated[str, Path(max_length=40)], fmt: Format,
                       request: Request, conn: Conn, settings: SettingsDep) -> Response:
    _jurisdiction(conn, settings, request.query_params.get("jurisdiction_id"))
    found = reference.services(conn, service_code)
    if not found:
        raise NotFound(f"service_code {service_code!r} not found",
                       message=Message("service_unknown", {"value": service_code}))
    lang = _lang(request)
    attributes = sorted(found[0]["attributes"], key=lambda a: a.get("order", 1))
    return open311.render(fmt, "service_definition", {
        "service_code": found[0]["code"],
        "attributes": open311.ListOf("attribute", [_attribute(a, lang) for a in attributes])})


# --- POST a request ------------------------------------------------------------------------------


FORM_FIELDS = ("jurisdiction_id", "api_key", "service_code", "lat", "long", "address_string",
               "address_id", "email", "device_id", "account_id", "first_name", "last_name",
               "phone", "description", "media_url")
_FORM_SCHEMA = {"type": "object", "properties": {
    **{name: {"type": "string"} for name in FORM_FIELDS},
    "media": {"type": "array", "maxItems": photos.MAX_PHOTOS,
              "items": {"type": "string", "format": "binary"},
              "description": "up to 3 photos (JPEG, PNG or WebP), multipart/form-data only"},
    "attribute[code]": {"type": "string", "description": "attribute[CODE]=value, repeated (or "
                        "attribute[CODE][]=) for a multivaluelist"}},
    "required": ["service_code"]}


@router.post("/requests.{fmt}", responses=open311.responses("the request created", 404, 429),
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/x-www-form-urlencoded": {"schema": _FORM_SCHEMA},
                 "multipart/form-data": {"schema": _FORM_SCHEMA}}}})
def post_request(fmt: Format, request: Request, conn: Conn, settings: SettingsDep,
                 form: Annotated[ReportForm, Depends(report_intake.report_form)]) -> Response:
    """A new request; photos may be uploaded (multipart/form-data, field `media`, up to 3)
    besides or instead of `media_url`. Past the flood limit: 429 with Retry-After."""
    _jurisdiction(conn, settings, form.first().get("jurisdiction_id")
                  or request.query_params.get("jurisdiction_id"))
    created = intake.create(conn, form.new_report(), province_srid=settings.province_srid)
    lang = _lang(request)
    notice = None
    if created.expected_at is not None:
        when = created.expected_at.astimezone(VN_TZ).strftime("%d/%m/%Y %H:%M")
        notice = (f"Expected to be handled by {when} (Vietnam time). Tracking code: {created.token}"
                  if lang == "en" else
                  f"Dự kiến xử lý xong trước {when}. Mã theo dõi: {created.token}")
        if created.duplicate_of is not None:
            notice += (f". Likely a duplicate of request {created.duplicate_of}, already being handled"
                       if lang == "en" else
                       f". Có thể trùng với phản ánh {created.duplicate_of} đang được xử lý")
    return open311.render(fmt, "service_requests", open311.ListOf("request", [{
        "service_request_id": created.id, "service_notice": notice,
        "account_id": None}]),
        headers={"Location": f"/open311/v2/requests/{created.id}.{fmt}"})


def _blank(value: str | None) -> str | None:
    return value.strip() or None if value is not None else None


# --- GET requests --------------------------------------------------------------------------------


def _media_url(r: dict[str, Any], base_url: str) -> str | None:
    """Our stored photo (the first) when the report has one and it is public; else the URL the
    client gave. A sensitive report's photos are not public: no link to them here."""
    if r["photo_ids"]:
        return None if r["sensitive"] else report_intake.media_urls(base_url, r["photo_ids"][:1])[0]
    return r["media_url"]


def _request_doc(r: dict[str, Any], lang: str, extensions: bool, conn: Any,
                 base_url: str) -> dict[str, Any]:
    en = lang == "en"
    note = r["status_note"]
    if r["duplicate_of"] is not None:
        dup = (f"Duplicate of request {r['duplicate_of']}" if en
               else f"Trùng với phản ánh {r['duplicate_of']}")
        note = f"{dup}. {note}" if note else f"{dup}."
    sensitive = bool(r["sensitive"])
    lat, lon = (round(r["lat"], 3), round(r["lon"], 3)) if sensitive else (r["lat"], r["lon"])
    updated = r["updated_at"]
    out: dict[str, Any] = {
        "service_request_id": r["id"],
        "status": requests.open311_status(r["status"]),
        "status_notes": note,
        "service_name": r["service_name_en" if en else "service_name_vi"],
        "service_code": r["service_code"],
        "description": None if sensitive else r["description"],
        "agency_responsible": r["agency_name_en" if en else "agency_name_vi"],
        "service_notice": None,
        "requested_datetime": r["reported_at"],
        "updated_datetime": updated,
        "expected_datetime": r["expected_at"],
        "address": r["address"],
        "address_id": r["address_id"],
        "zipcode": r["zipcode"],
        "lat": lat,
        "long": lon,
        "media_url": _media_url(r, base_url),
    }
    if extensions:
        out["extended_attributes"] = {
            "workflow_status": r["status"], "agency_code": r["agency_code"],
            "commune_code": r["commune_code"], "duplicate_of": r["duplicate_of"],
            "media_urls": open311.ListOf("media_url", [] if r["sensitive"] else
                                         report_intake.media_urls(base_url, r["photo_ids"]))}
        out["notes"] = open311.ListOf("note", [
            {"datetime": n["at"], "type": n["to_status"] if n["kind"] == "status" else n["kind"],
             "description": n["note"], "actor": n["actor"]}
            for n in requests.notes(conn, r["id"])])
    return out


def _instant(name: str, raw: str | None) -> dt.datetime | None:
    if raw is None or raw.strip() == "":
        return None
    try:
        text = raw.strip().replace("z", "Z").replace("Z", "+00:00")
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"{name}: {raw!r} is not a W3C date-time (2010-01-01T00:00:00Z)",
                         parameter=name, problems=[Problem(name, "expected an ISO 8601 date-time",
                                                           message=Message("datetime"))]) from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _list(raw: str | None) -> list[str]:
    return [v.strip() for v in (raw or "").split(",") if v.strip()]


@router.get("/requests.{fmt}", responses=open311.responses("service requests", 404))
def get_requests(fmt: Format, request: Request, conn: Conn, settings: SettingsDep) -> Response:
    params = request.query_params
    for name, value in params.multi_items():
        if "\x00" in value:
            raise BadRequest(f"{name}: NUL characters are not accepted", parameter=name)
    _jurisdiction(conn, settings, params.get("jurisdiction_id"))
    lang, ext = _lang(request), _flag(request, "extensions")
    ids_raw = _list(params.get("service_request_id"))
    if ids_raw:
        if not all(v.isdigit() and len(v) < 19 for v in ids_raw):
            raise BadRequest("service_request_id: expected comma-separated numbers",
                             parameter="service_request_id", problems=[Problem(
                                 "service_request_id", "expected comma-separated numbers",
                                 message=Message("whole_number"))])
        rows = requests.find(conn, ids=[int(v) for v in ids_raw[:requests.MAX_REQUESTS]])
    else:
        statuses = _list(params.get("status"))
        bad = [s for s in statuses if s not in ("open", "closed")]
        if bad:
            raise BadRequest(f"status: {bad[0]!r} is not open or closed", parameter="status",
                             problems=[Problem("status", "must be one of: open, closed",
                                               message=Message("one_of",
                                                               {"expected": "open, closed"}))])
        start, end = _instant("start_date", params.get("start_date")), \
            _instant("end_date", params.get("end_date"))
        if start is None and end is None:
            end = dt.datetime.now(dt.UTC)
            start = end - requests.WINDOW
        elif start is None:
            assert end is not None
            start = end - requests.WINDOW
        elif end is None:
            end = start + requests.WINDOW
        if end - start > requests.WINDOW:
            raise BadRequest("start_date, end_date: the range may not span more than 90 days",
                             parameter="end_date", problems=[Problem(
                                 "end_date", "the range may not span more than 90 days",
                                 message=Message("date_range_too_long"))])
        rows = requests.find(conn, service_codes=_list(params.get("service_code")),
                             statuses=statuses, start=start, end=end)
    return open311.render(fmt, "service_requests", open311.ListOf(
        "request", [_request_doc(r, lang, ext, conn, settings.base_url) for r in rows]))


@router.get("/requests/{service_request_id}.{fmt}",
            responses=open311.responses("one service request", 404))
def get_request(service_request_id: Annotated[str, Path(max_length=20)], fmt: Format,
                request: Request, conn: Conn, settings: SettingsDep) -> Response:
    _jurisdiction(conn, settings, request.query_params.get("jurisdiction_id"))
    rows = requests.find(conn, ids=[int(service_request_id)]) \
        if service_request_id.isdigit() and len(service_request_id) < 19 else []
    if not rows:
        raise NotFound(f"service request {service_request_id} not found",
                       message=Message("request_not_found", {"id": service_request_id}))
    return open311.render(fmt, "service_requests", open311.ListOf(
        "request", [_request_doc(rows[0], _lang(request), _flag(request, "extensions"), conn,
                                 settings.base_url)]))


@router.get("/tokens/{token}.{fmt}", responses=open311.responses("the request of a token", 404))
def get_token(token: Annotated[str, Path(max_length=64)], fmt: Format, request: Request,
              conn: Conn, settings: SettingsDep) -> Response:
    _jurisdiction(conn, settings, request.query_params.get("jurisdiction_id"))
    found = requests.by_token(conn, token) if "\x00" not in token else None
    if found is None:
        raise NotFound(f"token {token!r} not found",
                       message=Message("token_not_found", {"id": token}))
    return open311.render(fmt, "service_requests", open311.ListOf(
        "request", [{"service_request_id": found, "token": token}]))
