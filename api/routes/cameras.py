"""Cameras under /api/cameras (gis/sensors/cameras.py): health, snapshots, detections.

  GET  /api/cameras/health?status=&commune=      the health panel: cameras offline / degraded
                                                  (default) by commune with the time since
                                                  last seen (Vietnam time), counts per commune
  GET  /api/cameras/{code}/health                 one camera's health and status history
  POST /api/cameras/{code}/heartbeat              {"time"?, "fps"?, "bitrate_kbps"?, "quality"?}
  PUT  /api/cameras/{code}/snapshot?time=         the latest snapshot: a JPEG or PNG body
  GET  /api/cameras/{code}/snapshot(/thumb)       the stored snapshot (JPEG) or its thumbnail
  POST /api/cameras/{code}/detections             {"category", "confidence", "time"?,
                                                  "snapshot"? (base64), "attributes"?} or a list
  GET  /api/cameras/detections?status=&camera=    detections, newest first (status=pending: the
                                                  operators' queue)
  GET  /api/cameras/detections/{id}/snapshot(/thumb)
  POST /api/cameras/detections/{id}/confirm       {"note"?}  operators: the incident is made
  POST /api/cameras/detections/{id}/dismiss       {"note"?}  operators: a false alarm
  GET  /api/cameras/detection-categories          categories and the incident each becomes

Reads are the cameras layer's (an internal layer: staff; anonymous callers and citizens get
404 everywhere here, as for the map's cameras). Pushes (heartbeat, snapshot, detections) are
what a camera or its gateway sends, authorised as observations pushed over HTTP are: the
operator role, or an API key limited to the camera (`geoioc key create ... --camera CAM-0001`);
the MQTT topics carry the same (gis/sensors/cameras.py). Confirming and dismissing are
operators', audited. Times are UTC (ISO 8601) unless named local (Vietnam time).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from api.deps import Conn, QueryModel, SettingsDep, query
from api.route_docs import WHO, problems
from api.security import Who, require_roles, unauthorized
from gis.sensors import cameras
from gis.sensors.payloads import Window
from layers.access import Principal
from layers.catalogue import get_layer
from layers.errors import BadRequest, Invalid, Message, Problem, TooLarge, UnsupportedMediaType

router = APIRouter(prefix="/api/cameras", tags=["cameras"])
Operator = Annotated[Principal, Depends(require_roles("operator"))]
Code = Annotated[str, Path(pattern=r"^CAM-[0-9]{4,6}$", max_length=10,
                           description="the camera's code (e.g. CAM-0012)")]
DetectionId = Annotated[int, Path(ge=1, le=2**62, description="the detection's id")]
PRIVATE = "private, max-age=60"
IMAGE = {200: {"content": {"image/jpeg": {}}}}
MAX_JSON = 8 << 20  # a few detections with their snapshots
Health = Literal["online", "degraded", "offline", "maintenance"]
DetectionStatus = Literal["pending", "escalated", "confirmed", "dismissed"]


async def _raw(request: Request) -> bytes:
    """The request body, refused past the largest snapshot before it is read whole."""
    limit = max(MAX_JSON, cameras.MAX_SNAPSHOT_BYTES)
    size = request.headers.get("content-length")
    if size is not None and size.isdigit() and int(size) > limit:
        raise TooLarge.for_field("photo_too_large", "body", f"larger than {limit >> 20} MB",
                                 max_mb=limit >> 20)
    chunks, n = [], 0
    async for chunk in request.stream():
        n += len(chunk)
        if n > limit:
            raise TooLarge.for_field("photo_too_large", "body", f"larger than {limit >> 20} MB",
                                     max_mb=limit >> 20)
        chunks.append(chunk)
    return b"".join(chunks)


Raw = Annotated[bytes, Depends(_raw)]


def _signed_in(request: Request, who: Principal) -> None:
    if who.anonymous:
        raise unauthorized("sign-in required", request, Message("auth_required"))


def _json(raw: bytes) -> Any:
    if not raw.strip():
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest("body is not JSON", parameter="body",
                         message=Message("body_not_json")) from None


def _window(settings: Any) -> Window:
    return Window(dt.timedelta(days=settings.ingest_max_age_days),
                  dt.timedelta(seconds=settings.ingest_max_future_seconds))


def _statuses(values: list[str] | None) -> list[str]:
    if not values:
        return ["offline", "degraded"]
    out = []
    for v in values:
        for part in v.split(","):
            if part not in cameras.STATUSES:
                raise BadRequest.for_field("one_of", "status", f"unknown status {part!r}",
                                           expected=", ".join(cameras.STATUSES))
            out.append(part)
    return sorted(set(out), key=cameras.STATUSES.index)


@router.get("/health", responses=problems(*WHO, 400, 404))
def health(who: Who, conn: Conn,
           status: Annotated[str | None, Query(
               max_length=60, description="statuses, comma-separated (default offline,degraded)"
           )] = None,
           commune: Annotated[str | None, Query(
               pattern=r"^[0-9]{5}$", description="only this commune (5-digit code)")] = None
           ) -> dict[str, Any]:
    """The health panel: the cameras of the statuses asked for, by commune, the longest silent
    first, each with the time since it was last seen (in words and as seconds; the time itself
    in Vietnam time too), and per commune the count of cameras in each status."""
    return cameras.health_panel(conn, who, statuses=_statuses([status] if status else None),
                                commune=commune)


@router.get("/detection-categories", responses=problems(*WHO, 404))
def detection_categories(who: Who, conn: Conn) -> dict[str, Any]:
    """What cameras' analytics may report and the incident category and severity of each."""
    cameras.visible(who)
    return {"categories": cameras.categories(conn)}


class DetectionQuery(QueryModel):
    status: Annotated[DetectionStatus | None, Field(
        description="pending (the operators' queue), escalated (made an incident at once), "
                    "confirmed, dismissed; default all")] = None
    camera: Annotated[Annotated[str, Field(pattern=r"^CAM-[0-9]{4,6}$")] | None, Field(
        description="one camera's code")] = None
    limit: Annotated[Annotated[int, Field(ge=1, le=500)] | None,
                     Field(description="page size (default 100, at most 500)")] = None
    offset: Annotated[Annotated[int, Field(ge=0, le=1_000_000)] | None,
                      Field(description="rows to skip")] = None


@router.get("/detections", responses=problems(*WHO, 400, 404))
def list_detections(who: Who, conn: Conn,
                    qm: Annotated[DetectionQuery, query(DetectionQuery)]) -> dict[str, Any]:
    """Detections the caller may see, newest first, with the incident each became when the
    caller may see that incident."""
    limit, offset = qm.limit or 100, qm.offset or 0
    items, total = cameras.detections(conn, who, statuses=[qm.status] if qm.status else None,
                                      camera=qm.camera, limit=limit, offset=offset)
    return {"total": total, "limit": limit, "offset": offset, "items": items}


class DecisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(None, max_length=2000, description="what the operator saw")


@router.post("/detections/{detection_id}/confirm", responses=problems(*WHO, 403, 404, 409, 422))
def confirm(request: Request, detection_id: DetectionId, who: Operator, conn: Conn,
            body: DecisionBody | None = None) -> dict[str, Any]:
    """An operator confirms a waiting detection: its incident is made at the camera's position,
    in its commune, linked to it and verified by the operator; audited. 409 when it was
    already decided."""
    return cameras.confirm(conn, detection_id, who, note=body.note if body else None,
                           request=request)


@router.post("/detections/{detection_id}/dismiss", responses=problems(*WHO, 403, 404, 409, 422))
def dismiss(request: Request, detection_id: DetectionId, who: Operator, conn: Conn,
            body: DecisionBody | None = None) -> dict[str, Any]:
    """An operator dismisses a waiting detection (a false alarm): no incident; audited."""
    return cameras.dismiss(conn, detection_id, who, note=body.note if body else None,
                           request=request)


def _image(request: Request, data: bytes, tag: str) -> Response:
    etag = f'"{tag}"'
    headers = {"Cache-Control": PRIVATE, "ETag": etag, "Vary": "Authorization, X-API-Key, Cookie"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(data, media_type="image/jpeg", headers=headers)


@router.get("/detections/{detection_id}/snapshot", response_class=Response,
            responses={**problems(*WHO, 404), **IMAGE})
def detection_snapshot(request: Request, detection_id: DetectionId, who: Who,
                       conn: Conn) -> Response:
    return _image(request, cameras.detection_snapshot(conn, who, detection_id, False),
                  f"d{detection_id}")


@router.get("/detections/{detection_id}/snapshot/thumb", response_class=Response,
            responses={**problems(*WHO, 404), **IMAGE})
def detection_snapshot_thumb(request: Request, detection_id: DetectionId, who: Who,
                             conn: Conn) -> Response:
    return _image(request, cameras.detection_snapshot(conn, who, detection_id, True),
                  f"d{detection_id}t")


@router.get("/{code}/health", responses=problems(*WHO, 404, 422))
def camera_health(code: Code, who: Who, conn: Conn) -> dict[str, Any]:
    """One camera's health (status, last seen, reported quality) and its status changes,
    newest first."""
    return cameras.camera_health(conn, who, code)


@router.post("/{code}/heartbeat", responses=problems(*WHO, 400, 403, 404, 413, 422))
def heartbeat(request: Request, code: Code, who: Who, conn: Conn, settings: SettingsDep,
              raw: Raw) -> dict[str, Any]:
    """A camera's heartbeat (the body may be empty): its status after it."""
    _signed_in(request, who)
    now = dt.datetime.now(dt.UTC)
    try:
        beat = cameras.heartbeat(code, _json(raw), now, _window(settings))
    except cameras.FieldError as e:
        raise cameras.field_error(e) from None
    with conn.transaction():
        cameras.pusher(conn, who, code)
        cameras.store_heartbeats(conn, [beat], cameras.Limits.of(settings), now)
        status, seen = cameras.status_of(conn, code)
    return {"code": code, "status": status, "last_seen": seen}


@router.put("/{code}/snapshot", responses=problems(*WHO, 403, 404, 413, 415, 422))
def put_snapshot(request: Request, code: Code, who: Who, conn: Conn, raw: Raw,
                 time: Annotated[dt.datetime | None, Query(
                     description="when it was taken (ISO 8601 with offset; default now)")] = None
                 ) -> dict[str, Any]:
    """The camera's latest snapshot: a JPEG or PNG body (Content-Type image/jpeg or image/png),
    checked with Pillow (a real image, at most 10 MB and 50 megapixels), stored re-encoded
    without metadata with a thumbnail for the map's popup."""
    _signed_in(request, who)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in ("image/jpeg", "image/png"):
        raise UnsupportedMediaType(f"Content-Type {ctype or '(none)'}: send image/jpeg or image/png",
                                   parameter="Content-Type",
                                   message=Message("camera_content_type"))
    if time is not None and time.tzinfo is None:
        raise Invalid("time: expected ISO 8601 with a UTC offset", parameter="time",
                      message=Message("problems"),
                      problems=[Problem("time", "expected ISO 8601 with a UTC offset",
                                        message=Message("camera_time"))])
    camera = cameras.pusher(conn, who, code)
    image = cameras.snapshot_image(raw, "body")
    now = dt.datetime.now(dt.UTC)
    with conn.transaction():
        taken = cameras.put_snapshot(conn, camera, image, min(time, now) if time else now)
    return {"code": code, "taken_at": taken, "width": image.width, "height": image.height,
            "sha256": image.sha256, "url": f"/api/cameras/{code}/snapshot",
            "thumbnail_url": f"/api/cameras/{code}/snapshot/thumb"}


@router.get("/{code}/snapshot", response_class=Response,
            responses={**problems(*WHO, 404, 422), **IMAGE})
def snapshot(request: Request, code: Code, who: Who, conn: Conn) -> Response:
    """The camera's latest snapshot (JPEG)."""
    data, sha, _ = cameras.snapshot(conn, who, code, thumb=False)
    return _image(request, data, sha[:32])


@router.get("/{code}/snapshot/thumb", response_class=Response,
            responses={**problems(*WHO, 404, 422), **IMAGE})
def snapshot_thumb(request: Request, code: Code, who: Who, conn: Conn) -> Response:
    """Its thumbnail (JPEG, at most 320 px a side): the map's camera popup."""
    data, sha, _ = cameras.snapshot(conn, who, code, thumb=True)
    return _image(request, data, sha[:32] + "t")


@router.post("/{code}/detections", status_code=201,
             responses=problems(*WHO, 400, 403, 404, 413, 422))
def detections(request: Request, code: Code, who: Who, conn: Conn, settings: SettingsDep,
               raw: Raw) -> dict[str, Any]:
    """Detections of the camera's analytics (one object or a list): each at or above the
    confidence threshold becomes an incident at once, the others wait for an operator. A
    detection sent again (same category and time) is stored once (`created` false)."""
    _signed_in(request, who)
    body = _json(raw)
    items = body if isinstance(body, list) else [body]
    if not items or len(items) > cameras.MAX_DETECTIONS:
        raise BadRequest.for_field("too_many_items", "body",
                                   f"1 to {cameras.MAX_DETECTIONS} detections",
                                   max_length=cameras.MAX_DETECTIONS)
    now = dt.datetime.now(dt.UTC)
    parsed = []
    for i, item in enumerate(items):
        try:
            parsed.append(cameras.detection(code, item, now, _window(settings)))
        except cameras.FieldError as e:
            err = cameras.field_error(e)
            if isinstance(body, list):
                err = Invalid(f"[{i}].{e.field}: {e.text}", parameter=e.field,
                              message=Message("problems"),
                              problems=[Problem(e.field, e.text, row=i, message=e.message)])
            raise err from None
    cameras.pusher(conn, who, code)
    with conn.transaction():
        done = cameras.store_detections(conn, parsed, settings.detection_confidence_threshold, now)
        for r in done:
            if r.reason == "unknown_category":
                codes = ", ".join(c["code"] for c in cameras.categories(conn))
                bad = next(p.category for p, d in zip(parsed, done, strict=True) if d is r)
                raise Invalid(f"category: unknown category {bad!r}", parameter="category",
                              message=Message("problems"), problems=[Problem(
                                  "category", f"unknown category {bad!r}",
                                  message=Message("camera_category_unknown",
                                                  {"value": bad, "codes": codes}))])
    out = [{"id": r.id, "created": r.created, "status": r.status, "incident": r.incident}
           for r in done]
    return {"items": out} if isinstance(body, list) else out[0]


# The cameras layer exists (a typo here would hide every route behind a 404).
get_layer(cameras.CAMERAS_LAYER)
