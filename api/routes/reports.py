"""The incident workflow for operators under /api (citizens use /open311/v2).

  POST /api/incidents/{id}/transitions        {"status", "note"?, "agency"?}  operators; 409 when
                                               the workflow does not allow the move
  POST /api/incidents/{id}/assignment         {"agency", "note"?}  (re)assign; operators
  POST /api/incidents/{id}/duplicate/unlink   {"note"?}  "not a duplicate"; operators
  GET  /api/incidents/{id}/timeline           every stored transition, oldest first
  GET  /api/incidents/{id}/report             the citizen report: service, agency, deadline,
                                               duplicate link, own status and allowed moves,
                                               and the reporter's identity for
                                               roles that may read it (audited, channel
                                               `report-api`)
  GET  /api/reports/overdue?agency=&limit=    open reports past their SLA deadline, and counts
  GET  /api/reports/queue                     the operator console's queue: open reports, the
                                               nearest deadline first; filters status, service,
                                               agency, commune, overdue, q (id or text); paged
  GET  /api/reports/console-options           the console's pickers: agencies, services, communes
  POST /api/reports/bulk/transitions          {"ids", "status", "note"?, "agency"?}  all or
                                               nothing: 409 lists every id that cannot move
  POST /api/reports/bulk/assignment           {"ids", "agency", "note"?}  all or nothing
  GET  /api/reports/events                    server-sent events: a report arrived or moved
                                               (operators; ids and public facts only; fed by
                                               PostgreSQL NOTIFY, so every process hears all)
  GET  /api/reports/track/{token}             a citizen's view of their report by its tracking
                                               token: status, deadline, answer, public history
  POST /api/reports/track/{token}/reopen      {"note"?}  the citizen reopens a resolved report
                                               (within GEOIOC_REPORT_REOPEN_DAYS; else 409)
  POST /api/reports                           the report page's submit: Open311's fields as
                                               multipart/form-data with up to 3 photos (`media`);
                                               201 {id, token, ...}, or a 422 listing every field
                                               in error; 429 past the flood limit
  GET  /api/reports/photos/{id}(/thumb)       a stored photo (JPEG) or its thumbnail: public for
                                               a public report, else for who may read the report

Access is the incidents layer's (layers.access): who may not read it gets 404 everywhere here;
rows hidden from the caller (security events for an operator) are 404 too. The reporter's
fields are catalogue.REPORTER_FIELDS: readable_fields decides, record_read audits.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from psycopg import sql
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from starlette.responses import Response

from api import report_intake
from api.deps import Conn, QueryModel, SettingsDep, query
from api.report_intake import ReportForm
from api.route_docs import WHO, problems
from api.security import Who, require_roles
from gis import audit, live
from gis.reports import bulk, deadlines, intake, requests, workflow
from gis.reports import queries as q
from gis.reports import queue as report_queue
from layers.access import Principal, can_read_field, readable_layer, row_filter
from layers.catalogue import REPORTER_FIELDS
from layers.errors import Message, NotFound
from layers.model import Layer

router = APIRouter(tags=["reports"])
Operator = Annotated[Principal, Depends(require_roles("operator"))]
IncidentId = Annotated[int, Path(ge=1, le=2**62, description="the incident's id")]


def _layer(who: Principal) -> Layer:
    layer = readable_layer("incidents", who)
    if layer is None:
        raise NotFound("not found")
    return layer


def _actor(who: Principal) -> str:
    return who.user or "anonymous"


class TransitionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: str = Field(max_length=20, description="the status to move to: " + ", ".join(workflow.STATUSES))
    note: str | None = Field(None, max_length=4000, description="why; shown to the citizen")
    agency: str | None = Field(None, max_length=40, description="with status=assigned: the agency "
                               "(default: routing by category and commune)")


class AssignmentBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agency: str = Field(max_length=40, description="the agency's code")
    note: str | None = Field(None, max_length=4000)


class NoteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(None, max_length=4000)


@router.post("/api/incidents/{incident_id}/transitions",
             responses=problems(*WHO, 400, 403, 404, 409, 422))
def move(incident_id: IncidentId, body: TransitionBody, who: Operator, conn: Conn,
         settings: SettingsDep) -> dict[str, Any]:
    layer = _layer(who)
    done = workflow.transition(conn, incident_id, body.status, actor=_actor(who), note=body.note,
                               row_filter=row_filter(layer, who), agency_code=body.agency,
                               reopen_days=settings.report_reopen_days)
    return {"incident": incident_id, "transitions": [t.as_json() for t in done]}


@router.post("/api/incidents/{incident_id}/assignment",
             responses=problems(*WHO, 400, 403, 404, 409, 422))
def assignment(incident_id: IncidentId, body: AssignmentBody, who: Operator,
               conn: Conn) -> dict[str, Any]:
    layer = _layer(who)
    t = workflow.assign(conn, incident_id, body.agency, actor=_actor(who), note=body.note,
                        row_filter=row_filter(layer, who))
    return {"incident": incident_id, "transitions": [t.as_json()]}


@router.post("/api/incidents/{incident_id}/duplicate/unlink",
             responses=problems(*WHO, 403, 404, 409, 422))
def unlink(incident_id: IncidentId, body: NoteBody, who: Operator, conn: Conn) -> dict[str, Any]:
    layer = _layer(who)
    t = workflow.unlink_duplicate(conn, incident_id, actor=_actor(who), note=body.note,
                                  row_filter=row_filter(layer, who))
    return {"incident": incident_id, "transitions": [t.as_json()]}


@router.get("/api/incidents/{incident_id}/timeline", responses=problems(*WHO, 404))
def timeline(incident_id: IncidentId, who: Who, conn: Conn) -> dict[str, Any]:
    layer = _layer(who)
    rows = workflow.timeline(conn, incident_id, row_filter(layer, who))
    return {"incident": incident_id, "transitions": [
        {**r, "at": r["at"].isoformat()} for r in rows]}


@router.get("/api/incidents/{incident_id}/report", responses=problems(*WHO, 404))
def report(incident_id: IncidentId, who: Who, conn: Conn) -> dict[str, Any]:
    layer = _layer(who)
    rf = row_filter(layer, who)
    rows = requests.find(conn, ids=[incident_id]) if rf is None or _visible(conn, incident_id, rf) \
        else []
    if not rows:
        raise NotFound(f"report {incident_id} not found",
                       message=Message("incident_not_found", {"id": incident_id}))
    r = rows[0]
    fields = [f for f in REPORTER_FIELDS if can_read_field(f, who)]
    out: dict[str, Any] = {
        "id": r["id"], "token": r["token"], "service_code": r["service_code"],
        "service_name": {"vi": r["service_name_vi"], "en": r["service_name_en"]},
        "status": r["status"], "status_note": r["status_note"], "agency_code": r["agency_code"],
        "commune_code": r["commune_code"], "reported_at": r["reported_at"].isoformat(),
        "expected_at": r["expected_at"].isoformat() if r["expected_at"] else None,
        "duplicate_of": r["duplicate_of"], "address": r["address"], "media_url": r["media_url"],
        "description": r["description"], "lon": r["lon"], "lat": r["lat"],
    }
    own = conn.execute(q.OWN_STATUS, (incident_id,)).fetchone()
    if own is not None:  # what the console offers: the moves from the report's own status
        out["own_status"] = own[0]
        out["allowed"] = sorted(workflow.ALLOWED.get(own[0], ()))
    if fields:
        row = conn.execute(q.REPORTER, {"id": incident_id}).fetchone()
        values = dict(zip(("first_name", "last_name", "email", "phone", "device_id",
                           "account_id"), row, strict=True)) if row else {}
        out["reporter"] = {f.name: values.get(f.name) for f in fields}
        audit.record_read(conn, who, layer, "report-api", ids=[incident_id], fields=fields)
    return out


def _visible(conn: Any, incident_id: int, rf: Any) -> bool:
    stmt = sql.SQL("SELECT 1 FROM incidents t WHERE t.id = %s AND {}").format(rf)
    return conn.execute(stmt, (incident_id,)).fetchone() is not None


@router.get("/api/reports/overdue", responses=problems(*WHO, 400, 404))
def overdue(who: Who, conn: Conn,
            agency: Annotated[str | None, Query(max_length=40, description="one agency's")] = None,
            limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    layer = _layer(who)
    rf = row_filter(layer, who)
    rows = deadlines.overdue(conn, agency=agency, row_filter=rf, limit=limit)
    counts = deadlines.overdue_counts(conn, row_filter=rf)
    return {"counts": [{"agency_code": k, "overdue": v} for k, v in counts.items()],
            "total": sum(counts.values()),
            "items": [{**r, "reported_at": r["reported_at"].isoformat(),
                       "expected_at": r["expected_at"].isoformat()} for r in rows]}


# --- the citizen's side: by tracking token, no account -------------------------------------------

Token = Annotated[str, Path(min_length=4, max_length=64, pattern=r"^[A-Za-z0-9_-]+$",
                            description="the tracking token given when the report was made")]


def _by_token(conn: Any, token: str) -> int:
    found = requests.by_token(conn, token)
    if found is None:
        raise NotFound(f"token {token!r} not found", message=Message("token_not_found", {"id": token}))
    return found


def tracking(conn: Any, token: str, *, reopen_days: int) -> dict[str, Any]:
    """What a citizen sees of their report by its token (the API and the tracking page): the
    status (a duplicate's is its original's), the agency and its answer, the public history,
    the photos when the report is public, and `reopen_until`: while the citizen may reopen it
    (resolved, within REOPEN_DAYS), the end of that window in Vietnam time, else null."""
    incident_id = _by_token(conn, token)
    r = requests.find(conn, ids=[incident_id])[0]
    until = workflow.reopen_until(conn, incident_id, reopen_days=reopen_days)
    return {
        "id": r["id"], "token": token, "service_code": r["service_code"],
        "service_name": {"vi": r["service_name_vi"], "en": r["service_name_en"]},
        "status": r["status"], "status_note": r["status_note"],
        "agency": {"code": r["agency_code"], "vi": r["agency_name_vi"], "en": r["agency_name_en"]},
        "reported_at": r["reported_at"].isoformat(),
        "expected_at": r["expected_at"].isoformat() if r["expected_at"] else None,
        "duplicate_of": r["duplicate_of"],
        "original_status": r["original_status"],
        "photos": [] if r["sensitive"] else [
            {"url": report_intake.photo_path(i), "thumb": report_intake.photo_path(i, True)}
            for i in r["photo_ids"]],
        "history": [{"at": n["at"].isoformat(), "kind": n["kind"], "from_status": n["from_status"],
                     "to_status": n["to_status"], "note": n["note"], "actor": n["actor"]}
                    for n in requests.notes(conn, incident_id)],
        "reopen_until": until.isoformat(timespec="seconds") if until else None,
    }


@router.get("/api/reports/track/{token}", responses=problems(400, 404, 429))
def track(token: Token, conn: Conn, settings: SettingsDep) -> dict[str, Any]:
    return tracking(conn, token, reopen_days=settings.report_reopen_days)


@router.post("/api/reports/track/{token}/reopen", responses=problems(400, 404, 409, 422, 429))
def reopen(token: Token, body: NoteBody, conn: Conn, settings: SettingsDep) -> dict[str, Any]:
    incident_id = _by_token(conn, token)
    done = workflow.transition(conn, incident_id, "assigned", actor=workflow.CITIZEN,
                               note=body.note, reopen_days=settings.report_reopen_days,
                               only_from=("resolved",))
    return {"incident": incident_id, "transitions": [t.as_json() for t in done]}


# --- the report page's submit and the stored photos ----------------------------------------------


@router.post("/api/reports", status_code=201, responses=problems(400, 413, 422, 429),
             openapi_extra={"requestBody": {"required": True, "content": {
                 "multipart/form-data": {"schema": {"type": "object", "properties": {
                     "service_code": {"type": "string"}, "lat": {"type": "string"},
                     "long": {"type": "string"}, "description": {"type": "string"},
                     "first_name": {"type": "string"}, "phone": {"type": "string"},
                     "media": {"type": "array", "maxItems": 3,
                               "items": {"type": "string", "format": "binary"}}},
                     "required": ["service_code"]}}}}})
def create_report(conn: Conn, settings: SettingsDep,
                  form: Annotated[ReportForm, Depends(report_intake.report_form)]) -> JSONResponse:
    """A citizen's report from the report page (Open311's fields and checks: gis/reports/
    intake.py). Errors are problem details listing every field in error in the page's
    language (`lang=`), so the page shows each beside its field."""
    created = intake.create(conn, form.new_report(), province_srid=settings.province_srid)
    expected = created.expected_at  # the deadline told (the original's for a duplicate)
    return JSONResponse({
        "id": created.id, "token": created.token, "duplicate_of": created.duplicate_of,
        "expected_at": expected.isoformat() if expected else None,
        "photos": [report_intake.photo_path(i) for i in created.photo_ids],
        "tracking_url": f"/report/track/{created.token}"}, status_code=201,
        headers={"Location": f"/api/reports/track/{created.token}"})


PhotoId = Annotated[int, Path(ge=1, le=2**62, description="the photo's id")]
PUBLIC_CACHE = "public, max-age=31536000, immutable"  # a stored photo never changes
PRIVATE_CACHE = "private, max-age=3600"


def _photo(request: Request, photo_id: int, who: Principal, conn: Any, thumb: bool) -> Response:
    stmt = q.PHOTO.format(column=sql.Identifier("thumbnail" if thumb else "jpeg"))
    row = conn.execute(stmt, {"id": photo_id}).fetchone()
    restricted = row is not None and row[3]
    if row is not None and restricted:
        layer = readable_layer("incidents", who)
        rf = row_filter(layer, who) if layer is not None else None
        if layer is None or (rf is not None and not _visible(conn, row[2], rf)):
            row = None
    if row is None:
        raise NotFound(f"photo {photo_id} not found",
                       message=Message("photo_not_found", {"id": photo_id}))
    etag = f'"{row[1][:32]}{"t" if thumb else ""}"'
    headers = {"Cache-Control": PRIVATE_CACHE if restricted else PUBLIC_CACHE, "ETag": etag}
    if restricted:
        headers["Vary"] = "Authorization, X-API-Key, Cookie"
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(bytes(row[0]), media_type="image/jpeg", headers=headers)


@router.get("/api/reports/photos/{photo_id}", response_class=Response,
            responses={**problems(*WHO, 404), 200: {"content": {"image/jpeg": {}}}})
def photo(request: Request, photo_id: PhotoId, who: Who, conn: Conn) -> Response:
    return _photo(request, photo_id, who, conn, thumb=False)


@router.get("/api/reports/photos/{photo_id}/thumb", response_class=Response,
            responses={**problems(*WHO, 404), 200: {"content": {"image/jpeg": {}}}})
def photo_thumb(request: Request, photo_id: PhotoId, who: Who, conn: Conn) -> Response:
    return _photo(request, photo_id, who, conn, thumb=True)
# --- the operator console ------------------------------------------------------------------------


def _blank_none(value: Any) -> Any:
    """An empty field of the console's filter form means "any"."""
    return None if isinstance(value, str) and not value.strip() else value


Blank = BeforeValidator(_blank_none)
CodeStr = Annotated[str, Field(max_length=40, pattern=r"^[A-Za-z0-9_.-]+$")]
Code = Annotated[CodeStr | None, Blank]
OpenStatus = Literal["received", "verified", "assigned", "in_progress"]


class QueueQuery(QueryModel):
    """GET /api/reports/queue: the filters and the page, one model (api.deps.QueryModel)."""

    status: Annotated[OpenStatus | None, Blank, Field(description="one open status")] = None
    service: Annotated[Code, Field(description="service (category) code")] = None
    agency: Annotated[Code, Field(description="agency code")] = None
    commune: Annotated[Code, Field(description="commune code")] = None
    overdue: Annotated[bool | None, Blank, Field(description="only reports past their deadline")] = None
    q: Annotated[Annotated[str, Field(max_length=200)] | None, Blank, Field(description=(
        "a report id, or words of its title or description"))] = None
    limit: Annotated[Annotated[int, Field(ge=1, le=500)] | None, Blank,
                     Field(description="page size (default 50, at most 500)")] = None
    offset: Annotated[Annotated[int, Field(ge=0, le=1_000_000)] | None, Blank,
                      Field(description="rows to skip")] = None


def _iso(value: Any) -> Any:
    return value.isoformat() if value is not None else None


@router.get("/api/reports/queue", responses=problems(*WHO, 400, 403, 404))
def report_queue_page(who: Operator, conn: Conn,
                      qm: Annotated[QueueQuery, query(QueueQuery)]) -> dict[str, Any]:
    """Open reports, the nearest deadline first (none last), overdue ones flagged: what the
    console lists and maps. Rows hidden from the caller (security events) are left out."""
    layer = _layer(who)
    f = report_queue.QueueFilter(
        statuses=(qm.status,) if qm.status else q.OPEN_STATUSES, service=qm.service,
        agency=qm.agency, commune=qm.commune, overdue_only=bool(qm.overdue), text=qm.q)
    limit, offset = qm.limit or 50, qm.offset or 0
    rows, total = report_queue.open_reports(conn, f, limit=limit, offset=offset,
                                            row_filter=row_filter(layer, who))
    return {"total": total, "limit": limit, "offset": offset,
            "items": [{**r, "reported_at": _iso(r["reported_at"]),
                       "expected_at": _iso(r["expected_at"]),
                       "allowed": sorted(workflow.ALLOWED.get(r["status"], ()))} for r in rows]}


@router.get("/api/reports/console-options", responses=problems(*WHO, 403, 404))
def console_options(who: Operator, conn: Conn) -> dict[str, Any]:
    """What the console's pickers offer (agency for assignment; filters)."""
    _layer(who)
    return report_queue.options(conn)


Ids = Annotated[list[Annotated[int, Field(ge=1, le=2**62)]],
                Field(min_length=1, max_length=bulk.MAX_IDS, description="the reports' ids")]


class BulkTransitionBody(TransitionBody):
    ids: Ids


class BulkAssignmentBody(AssignmentBody):
    ids: Ids


def _bulk_answer(done: list[Any]) -> dict[str, Any]:
    return {"incidents": sorted({t.incident_id for t in done}),
            "transitions": [t.as_json() for t in done]}


@router.post("/api/reports/bulk/transitions",
             responses=problems(*WHO, 400, 403, 404, 409, 422))
def bulk_move(body: BulkTransitionBody, who: Operator, conn: Conn,
              settings: SettingsDep) -> dict[str, Any]:
    """One move for many reports, all or nothing: 409 lists every id that cannot move (and
    why) and nothing is changed."""
    layer = _layer(who)
    rf = row_filter(layer, who)
    done = bulk.run(conn, body.ids, lambda i: workflow.transition(
        conn, i, body.status, actor=_actor(who), note=body.note, row_filter=rf,
        agency_code=body.agency, reopen_days=settings.report_reopen_days))
    return _bulk_answer(done)


@router.post("/api/reports/bulk/assignment",
             responses=problems(*WHO, 400, 403, 404, 409, 422))
def bulk_assign(body: BulkAssignmentBody, who: Operator, conn: Conn) -> dict[str, Any]:
    """Assign many reports to one agency, all or nothing (as bulk transitions)."""
    layer = _layer(who)
    rf = row_filter(layer, who)
    done = bulk.run(conn, body.ids, lambda i: [workflow.assign(
        conn, i, body.agency, actor=_actor(who), note=body.note, row_filter=rf)])
    return _bulk_answer(done)


# Seconds between comment lines that keep an idle event stream open through proxies.
KEEPALIVE_SECONDS = 15.0


def _listener(request: Request, settings: Any) -> live.Listener:
    """The process's one LISTEN connection, shared with the live map (gis/live.py)."""
    return live.process_listener(request.app.state, settings.database_url)


@router.get("/api/reports/events", responses={
    200: {"content": {"text/event-stream": {}}, "description": "an endless event stream"},
    **problems(*WHO, 403, 404)})
async def report_events(request: Request, who: Operator, settings: SettingsDep) -> StreamingResponse:
    """Server-sent events for the operator console: `ready` once listening, then `report` for
    each report created or moved (its id and public facts; the console refetches)."""
    _layer(who)
    listener = _listener(request, settings)
    inbox = listener.subscribe([live.REPORTS_CHANNEL])

    async def stream() -> AsyncIterator[str]:
        try:
            yield "retry: 3000\n\n"
            ready = await listener.wait_ready(10.0)
            yield f"event: ready\ndata: {json.dumps({'listening': ready})}\n\n"
            while not await request.is_disconnected():
                try:
                    _, event = await asyncio.wait_for(inbox.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                yield f"event: report\ndata: {json.dumps(event, separators=(',', ':'))}\n\n"
        finally:
            listener.unsubscribe(inbox)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
