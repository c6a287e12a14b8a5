"""Cameras alive: health from heartbeats, the latest snapshot, detections that become incidents.

Cameras are rows of the `cameras` layer (not SensorThings Things): what they send arrives by
the ingest's own ways in, MQTT through the ingest worker (gis/sensors/ingest.py: same client,
QoS 1, batched, acknowledged after commit, counted in /healthz/ingest) and HTTP
(api/routes/cameras.py), and is read here.

MQTT topics (after the setting mqtt_topic_prefix):

- `geoioc/cameras/<code>/heartbeat`: {"time"?: ISO 8601 with offset, "fps"?: number,
  "bitrate_kbps"?: number, "quality"?: 0..1}; an empty payload or `{}` is a heartbeat too.
  `time` defaults to the arrival and is never taken beyond it (a camera's clock running ahead
  must not keep it online).
- `geoioc/cameras/<code>/detections`: one detection {"category", "confidence": 0..1, "time"?,
  "snapshot"?: base64 JPEG/PNG, "attributes"?: object} or an array of them.

Health (camera_health in SQL, migration 0023): online when heard from within
camera_online_seconds and not reporting a frame rate under camera_min_fps or a quality under
camera_min_quality (then degraded); degraded when later than that (late); offline once silent
for more than camera_offline_seconds. A camera never heard from keeps the status of the camera
register (the sample's, an import's): the health machinery governs cameras that send
heartbeats. `maintenance` is an operator's status and is left alone. Each heartbeat batch and
the minute's sweep (gis/sensors/camera_jobs.py) store every change in camera_status_history
and send the `camera` NOTIFY on geoioc_live, in their transaction.

Detections: a detection's category maps to an incident category and severity
(detection_categories, data). At or above detection_confidence_threshold it becomes an incident
at once, through the workflow as an alert's does (gis/reports/workflow.py: the `received`
transition, then verified and assigned when its category names an agency); below, it waits
(`pending`) for an operator who confirms it (the incident is made, verified by the operator)
or dismisses it; both audited. Each sends the `detection` NOTIFY.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from gis import audit, fmt
from gis.reports import photos, workflow
from gis.sensors import camera_queries as q
from gis.sensors.payloads import Window
from gis.settings import Settings
from layers.access import ADMIN, Principal, readable_layer, row_filter
from layers.errors import (
    PROBLEMS,
    Conflict,
    Forbidden,
    Invalid,
    Message,
    NotFound,
    Problem,
    TooLarge,
)

CAMERAS_LAYER = q.CAMERAS_LAYER
INCIDENTS_LAYER = "incidents"
HEARTBEAT_TOPIC = "geoioc/cameras/+/heartbeat"
DETECTION_TOPIC = "geoioc/cameras/+/detections"
_TOPIC = re.compile(r"geoioc/cameras/([^/]{1,40})/(heartbeat|detections)")
CODE = re.compile(r"^CAM-[0-9]{4,6}$")
STATUSES = ("online", "degraded", "offline", "maintenance")
# Who may push for any camera (a key limited to cameras may push for those only).
PUSH_ROLES = frozenset({"operator"})
# Snapshots: JPEG or PNG (what cameras produce), in the report photos' limits.
SNAPSHOT_FORMATS = ("JPEG", "PNG")
MAX_SNAPSHOT_BYTES = photos.MAX_BYTES
MAX_DETECTIONS = 100  # per MQTT message or HTTP request
MAX_CATEGORY = 40
MAX_ATTRIBUTES = 4096  # bytes of JSON


@dataclass(frozen=True)
class Limits:
    """The health settings, as the SQL takes them."""

    online_s: float
    offline_s: float
    min_fps: float
    min_quality: float

    @classmethod
    def of(cls, s: Settings) -> Limits:
        return cls(float(s.camera_online_seconds),
                   float(max(s.camera_offline_seconds, s.camera_online_seconds)),
                   float(s.camera_min_fps), float(s.camera_min_quality))

    def params(self, now: dt.datetime) -> dict[str, Any]:
        return {"now": now, "online_s": self.online_s, "offline_s": self.offline_s,
                "min_fps": self.min_fps, "min_quality": self.min_quality}


@dataclass(frozen=True, slots=True)
class Heartbeat:
    code: str
    at: dt.datetime
    fps: float | None = None
    bitrate_kbps: float | None = None
    quality: float | None = None


@dataclass(frozen=True, slots=True)
class Detection:
    code: str
    category: str
    confidence: float
    at: dt.datetime
    snapshot: photos.Photo | None = None
    attributes: dict[str, Any] | None = None


def _now(now: dt.datetime | None) -> dt.datetime:
    if now is None:
        return dt.datetime.now(dt.UTC)
    return now if now.tzinfo else now.replace(tzinfo=dt.UTC)


# --- reading what cameras send --------------------------------------------------------------


class FieldError(Exception):
    """One field of a camera's message is wrong: which, the ingest's reason code (counted by
    /healthz/ingest), the English text and the message catalogue's entry (the API's 422)."""

    def __init__(self, field: str, reason: str, text: str, key: str,
                 args: dict[str, Any] | None = None, message: Message | None = None) -> None:
        super().__init__(f"{field}: {text}")
        self.field, self.reason, self.text = field, reason, text
        self.message = message or Message(key, args)


def _number(obj: dict[str, Any], name: str, lo: float, hi: float,
            required: bool = False) -> float | None:
    v = obj.get(name)
    if v is None:
        if required:
            raise FieldError(name, "camera_bad_field", "required", "required")
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
            or not lo <= v <= hi:
        raise FieldError(name, "camera_bad_field", f"expected a number from {lo:g} to {hi:g}",
                         "camera_number", {"lo": f"{lo:g}", "hi": f"{hi:g}"})
    return float(v)


def _time(obj: dict[str, Any], now: dt.datetime, window: Window | None) -> dt.datetime:
    v = obj.get("time")
    if v is None:
        return now
    bad = FieldError("time", "bad_time", "expected ISO 8601 with a UTC offset", "camera_time")
    if not isinstance(v, str) or not 10 <= len(v) <= 40:
        raise bad
    try:
        t = dt.datetime.fromisoformat(v)
    except ValueError:
        raise bad from None
    if t.tzinfo is None:
        raise bad
    t = t.astimezone(dt.UTC)
    if window is not None and t < now - window.max_age:
        raise FieldError("time", "time_out_of_range", "too far in the past", "camera_time_old")
    return min(t, now)  # never ahead of the arrival


def heartbeat(code: str, obj: Any, now: dt.datetime, window: Window | None = None) -> Heartbeat:
    """One heartbeat of camera CODE from its JSON body (None or {} : a bare heartbeat)."""
    if obj is None:
        obj = {}
    if not isinstance(obj, dict):
        raise FieldError("body", "bad_shape", "expected a JSON object", "object")
    return Heartbeat(code, _time(obj, now, window), _number(obj, "fps", 0, 1000),
                     _number(obj, "bitrate_kbps", 0, 1e7), _number(obj, "quality", 0, 1))


def snapshot_image(data: bytes, field: str = "snapshot") -> photos.Photo:
    """A snapshot as it will be stored (JPEG re-encoded, thumbnail), or the 4xx naming FIELD."""
    return photos.prepare(data, field, formats=SNAPSHOT_FORMATS)


def detection(code: str, obj: Any, now: dt.datetime, window: Window | None = None) -> Detection:
    """One detection of camera CODE from its JSON object."""
    if not isinstance(obj, dict):
        raise FieldError("body", "bad_shape", "expected a JSON object", "object")
    cat = obj.get("category")
    if not isinstance(cat, str) or not re.fullmatch(r"[a-z][a-z0-9_]{1,39}", cat):
        raise FieldError("category", "camera_bad_field",
                         "required: a category code (e.g. traffic_accident)", "camera_category")
    confidence = _number(obj, "confidence", 0, 1, required=True)
    assert confidence is not None
    attrs = obj.get("attributes")
    if attrs is not None and (not isinstance(attrs, dict)
                              or len(orjson.dumps(attrs)) > MAX_ATTRIBUTES):
        raise FieldError("attributes", "camera_bad_field",
                         f"expected a JSON object of at most {MAX_ATTRIBUTES} bytes",
                         "camera_attributes", {"max": MAX_ATTRIBUTES})
    image = None
    if (snap := obj.get("snapshot")) is not None:
        bad = FieldError("snapshot", "camera_bad_snapshot", "expected a base64 JPEG or PNG",
                         "camera_base64")
        if not isinstance(snap, str) or len(snap) > MAX_SNAPSHOT_BYTES * 4 // 3 + 4:
            raise bad
        try:
            raw = base64.b64decode(snap, validate=True)
        except (binascii.Error, ValueError):
            raise bad from None
        try:
            image = snapshot_image(raw)
        except (Invalid, TooLarge) as e:
            p = e.problems[0] if e.problems else None
            raise FieldError("snapshot", "camera_bad_snapshot", p.reason if p else e.detail,
                             "camera_base64", message=p.message if p else None) from None
    return Detection(code, cat, confidence, _time(obj, now, window), image, attrs)


def is_camera_topic(topic: str, prefix: str) -> bool:
    return topic.startswith(prefix) and topic.startswith("geoioc/cameras/", len(prefix))


def parse(topic: str, payload: bytes, prefix: str, now: dt.datetime,
          window: Window) -> tuple[list[Heartbeat], list[Detection], list[str]]:
    """What one MQTT message of a camera topic holds, and the reasons of what it refuses (never
    raises: the ingest counts the reasons)."""
    m = _TOPIC.fullmatch(topic[len(prefix):]) if topic.startswith(prefix) else None
    if m is None:
        return [], [], ["bad_topic"]
    code, kind = m.group(1), m.group(2)
    if not CODE.match(code):
        return [], [], ["camera_bad_code"]
    if len(payload) > (1 << 22):
        return [], [], ["too_large"]
    try:
        body = orjson.loads(payload) if payload.strip() else None
    except orjson.JSONDecodeError:
        return [], [], ["not_json"]
    if kind == "heartbeat":
        try:
            return [heartbeat(code, body, now, window)], [], []
        except FieldError as e:
            return [], [], [e.reason]
    items = body if isinstance(body, list) else [body]
    if not items or len(items) > MAX_DETECTIONS:
        return [], [], ["bad_shape"]
    out: list[Detection] = []
    reasons: list[str] = []
    for item in items:
        try:
            out.append(detection(code, item, now, window))
        except FieldError as e:
            reasons.append(e.reason)
    return [], out, reasons


# --- health ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Applied:
    stored: int = 0
    unknown: int = 0
    changed: int = 0


def store_heartbeats(conn: psycopg.Connection[Any], beats: Sequence[Heartbeat], limits: Limits,
                     now: dt.datetime | None = None) -> Applied:
    """Apply BEATS in one statement in the caller's transaction: last_seen, the quality
    reported, the status, its history and NOTIFY (see camera_queries.HEARTBEATS)."""
    if not beats:
        return Applied()
    row = conn.execute(q.HEARTBEATS, {
        **limits.params(_now(now)), "codes": [b.code for b in beats], "ats": [b.at for b in beats],
        "fps": [b.fps for b in beats], "bitrates": [b.bitrate_kbps for b in beats],
        "qualities": [b.quality for b in beats]}).fetchone()
    assert row is not None
    return Applied(int(row[0]), int(row[1]), int(row[2]))


def status_of(conn: psycopg.Connection[Any], code: str) -> tuple[str, dt.datetime | None]:
    """Camera CODE's status and last_seen (after a push)."""
    row = conn.execute(q.STATUS_OF, (code,)).fetchone()
    if row is None:
        raise camera_not_found(code)
    return str(row[0]), row[1]


def simulation_cameras(conn: psycopg.Connection[Any]) -> list[tuple[int, str]]:
    """The cameras `geoioc simulate` speaks for (id, code): all but those in maintenance."""
    return [(int(r[0]), str(r[1])) for r in conn.execute(q.SIMULATION_CAMERAS)]


def sweep(conn: psycopg.Connection[Any], limits: Limits,
          now: dt.datetime | None = None) -> list[tuple[int, str, str]]:
    """Cameras whose health the passing of time changed (late, silent), moved in one
    transaction: (id, from, to) of each."""
    with conn.transaction():
        rows = conn.execute(q.SWEEP, limits.params(_now(now))).fetchall()
    return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]


# --- who may see and who may push ---------------------------------------------------------


def visible(who: Principal, alias: str = "c") -> sql.Composable:
    """What WHO may read of cameras (404 when WHO may not read the layer)."""
    layer = readable_layer(CAMERAS_LAYER, who)
    if layer is None:
        raise NotFound("not found", message=Message("status_404"))
    return row_filter(layer, who, alias=alias) or sql.SQL("TRUE")


def incident_visible(who: Principal, alias: str = "i") -> sql.Composable:
    layer = readable_layer(INCIDENTS_LAYER, who)
    if layer is None:
        return sql.SQL("FALSE")
    return row_filter(layer, who, alias=alias) or sql.SQL("TRUE")


def camera_not_found(code: str) -> NotFound:
    return NotFound(f"camera {code} not found", message=Message("camera_not_found", {"code": code}))


def pusher(conn: psycopg.Connection[Any], who: Principal, code: str) -> int:
    """The id of camera CODE when WHO may push for it (heartbeats, snapshots, detections): a
    key limited to cameras (camera_keys) for its own cameras only; otherwise the operator role
    (or admin), as for observations pushed over HTTP (gis/sta/write.py). Forbidden otherwise
    (the caller is signed in: api/routes/cameras.py answers 401 to anonymous callers first)."""
    row = conn.execute(q.CAMERA_BY_CODE, (code,)).fetchone()
    prefix = getattr(who, "key_prefix", None)
    bound = ({int(r[0]) for r in conn.execute(q.KEY_CAMERAS, (prefix,))} if prefix else set())
    if bound:
        if row is None or int(row[0]) not in bound:
            raise Forbidden(f"this API key is limited to other cameras than {code}",
                            message=Message("camera_key_other", {"code": code}))
        return int(row[0])
    if not (who.roles & (PUSH_ROLES | {ADMIN})):
        raise Forbidden("requires role operator or a key limited to this camera",
                        message=Message("camera_push_role"))
    if row is None or readable_layer(CAMERAS_LAYER, who) is None:
        raise camera_not_found(code)
    return int(row[0])


def bind_key(conn: psycopg.Connection[Any], prefix: str, codes: Iterable[str]) -> int:
    """Limit the key PREFIX to cameras CODES (those that exist); how many were bound."""
    cur = conn.execute(q.BIND_KEY, {"prefix": prefix, "codes": list(codes)})
    return cur.rowcount


# --- snapshots ------------------------------------------------------------------------------


def put_snapshot(conn: psycopg.Connection[Any], camera_id: int, image: photos.Photo,
                 taken_at: dt.datetime | None = None) -> dt.datetime:
    """Keep IMAGE as the camera's latest snapshot (an older one sent late changes nothing);
    the time of the snapshot kept."""
    at = _now(taken_at)
    row = conn.execute(q.PUT_SNAPSHOT, {
        "camera": camera_id, "jpeg": image.jpeg, "thumb": image.thumbnail, "width": image.width,
        "height": image.height, "sha256": image.sha256, "taken_at": at}).fetchone()
    if row is None:
        kept = conn.execute("SELECT taken_at FROM camera_snapshots WHERE camera_id = %s",
                            (camera_id,)).fetchone()
        assert kept is not None
        return kept[0]  # type: ignore[no-any-return]
    return row[0]  # type: ignore[no-any-return]


def snapshot(conn: psycopg.Connection[Any], who: Principal, code: str,
             thumb: bool) -> tuple[bytes, str, dt.datetime]:
    """The camera's latest snapshot (or thumbnail), its sha256 and time; 404 when WHO may not
    see cameras or there is none."""
    stmt = q.SNAPSHOT.format(column=sql.Identifier("thumbnail" if thumb else "jpeg"),
                             visible=visible(who))
    row = conn.execute(stmt, {"code": code}).fetchone()
    if row is None:
        raise NotFound(f"no snapshot of camera {code}",
                       message=Message("camera_no_snapshot", {"code": code}))
    return bytes(row[0]), str(row[1]), row[2]


# --- the health panel -----------------------------------------------------------------------


def since_words(seconds: float | None) -> dict[str, str] | None:
    """How long ago, in words: {"vi": "2 giờ 5 phút", "en": "2 h 5 min"}."""
    if seconds is None:
        return None
    s = max(0, int(seconds))
    if s < 60:
        return {"vi": f"{s} giây", "en": f"{s} s"}
    m = s // 60
    if m < 60:
        return {"vi": f"{m} phút", "en": f"{m} min"}
    h, m = divmod(m, 60)
    if h < 24:
        return {"vi": f"{h} giờ" + (f" {m} phút" if m else ""),
                "en": f"{h} h" + (f" {m} min" if m else "")}
    d, h = divmod(h, 24)
    return {"vi": f"{d} ngày" + (f" {h} giờ" if h else ""),
            "en": f"{d} d" + (f" {h} h" if h else "")}


def _local(at: dt.datetime | None) -> dict[str, Any]:
    if at is None:
        return {"local": None, "text": fmt.EMPTY}
    return {"local": at.astimezone(fmt.VN_TZ).isoformat(), "text": fmt.datetime(at)}


def health_panel(conn: psycopg.Connection[Any], who: Principal, *,
                 statuses: Sequence[str] = ("offline", "degraded"), commune: str | None = None,
                 limit: int = 2000, now: dt.datetime | None = None) -> dict[str, Any]:
    """Cameras of STATUSES by commune, with the time since last seen (Vietnam time), and the
    count of each status per commune, for what WHO may see."""
    at = _now(now)
    vis = visible(who)
    params = {"now": at, "statuses": list(statuses), "commune": commune, "limit": limit}
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(q.PANEL.format(visible=vis), params).fetchall()
        counts = cur.execute(q.COUNTS.format(visible=vis), params).fetchall()
    by: dict[str | None, dict[str, Any]] = {}
    for c in counts:
        by[c["commune_code"]] = {
            "code": c["commune_code"], "name": c["commune_name"],
            "counts": {k: int(c[k]) for k in ("total", "online", "degraded", "offline",
                                              "maintenance")},
            "cameras": []}
    for r in rows:
        seen = r["last_seen"]
        entry = by.setdefault(r["commune_code"], {"code": r["commune_code"],
                                                  "name": r["commune_name"], "counts": {},
                                                  "cameras": []})
        entry["cameras"].append({
            "id": r["id"], "code": r["code"], "name": r["name"], "status": r["status"],
            "last_seen": seen, "last_seen_local": _local(seen)["local"],
            "last_seen_text": _local(seen)["text"],
            "seconds_since_seen": None if seen is None else round(r["seconds_since_seen"], 1),
            "since": since_words(r["seconds_since_seen"]),
            "status_changed_at": r["status_changed_at"], "fps": r["fps"],
            "quality": r["quality"], "lon": r["lon"], "lat": r["lat"]})
    communes = [c for c in by.values() if c["cameras"]]
    totals = {k: sum(c["counts"].get(k, 0) for c in by.values())
              for k in ("total", "online", "degraded", "offline", "maintenance")}
    return {"as_of": at, "as_of_local": at.astimezone(fmt.VN_TZ).isoformat(),
            "statuses": list(statuses), "totals": totals, "communes": communes,
            "counts": [{"code": c["code"], "name": c["name"], **c["counts"]}
                       for c in by.values() if c["counts"]]}


def camera_health(conn: psycopg.Connection[Any], who: Principal, code: str,
                  limit: int = 50, now: dt.datetime | None = None) -> dict[str, Any]:
    """One camera's health with its recent status changes (newest first)."""
    at = _now(now)
    vis = visible(who)
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(q.ONE_CAMERA.format(visible=vis), {"code": code}).fetchone()
        if row is None:
            raise camera_not_found(code)
        history = cur.execute(q.HISTORY.format(visible=vis),
                              {"code": code, "limit": limit}).fetchall()
    seen = row["last_seen"]
    secs = None if seen is None else (at - seen).total_seconds()
    return {**row, "last_seen_local": _local(seen)["local"], "last_seen_text": _local(seen)["text"],
            "seconds_since_seen": secs, "since": since_words(secs), "history": history}


# --- detections -----------------------------------------------------------------------------


@dataclass
class Stored:
    """What storing detections did: per detection its id (None when refused), whether it was
    new, its status and incident, or the reason it was refused."""

    id: int | None = None
    created: bool = False
    status: str | None = None
    incident: int | None = None
    reason: str | None = None


def store_detections(conn: psycopg.Connection[Any], items: Sequence[Detection],
                     threshold: float, now: dt.datetime | None = None) -> list[Stored]:
    """Store ITEMS in the caller's transaction: each once (camera, category, time), escalated
    to an incident at or above THRESHOLD, else pending; a `detection` NOTIFY for each new one."""
    at = _now(now)
    out = []
    for d in items:
        target = conn.execute(q.DETECTION_TARGET, {"code": d.code, "category": d.category}).fetchone()
        if target is None:
            out.append(Stored(reason="unknown_camera"))
            continue
        if target[1] is None:
            out.append(Stored(reason="unknown_category"))
            continue
        camera = int(target[0])
        status = "escalated" if d.confidence >= threshold else "pending"
        snap = d.snapshot
        row = conn.execute(q.INSERT_DETECTION, {
            "camera": camera, "category": d.category, "confidence": d.confidence, "at": d.at,
            "now": at, "attributes": Jsonb(d.attributes) if d.attributes is not None else None,
            "snapshot": snap.jpeg if snap else None, "thumbnail": snap.thumbnail if snap else None,
            "status": status}).fetchone()
        if row is None:  # stored already (a redelivery)
            old = conn.execute(q.DETECTION_ID, {"camera": camera, "category": d.category,
                                                "at": d.at}).fetchone()
            assert old is not None
            out.append(Stored(int(old[0]), False, str(old[1]), old[2]))
            continue
        ident = int(row[0])
        incident = None
        if status == "escalated":
            incident = _escalate(conn, ident, workflow.SYSTEM, at, confirmed=False)
        conn.execute(q.DETECTION_EVENT, {"id": ident})
        out.append(Stored(ident, True, status, incident))
    return out


def _facts(conn: psycopg.Connection[Any], ident: int) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        f = cur.execute(q.DETECTION_FACTS, {"id": ident}).fetchone()
    assert f is not None
    return f


def title(f: dict[str, Any]) -> str:
    """'Va chạm giao thông (độ tin cậy 92 %) tại camera CAM-0012 lúc 14:30 03/12/2026'."""
    pct = fmt.number(100 * f["confidence"], "vi", 0)
    local = f["detected_at"].astimezone(fmt.VN_TZ).strftime("%H:%M %d/%m/%Y")
    return f"{f['category_vi']} (độ tin cậy {pct} %) tại camera {f['camera_code']} lúc {local}"


def description(f: dict[str, Any], confirmed_by: str | None) -> str:
    where = f", {f['commune_name']}" if f["commune_name"] else ""
    lines = [f"Phát hiện tự động từ camera {f['camera_name']} ({f['camera_code']}){where}.",
             f"Loại: {f['category_vi']}; độ tin cậy {fmt.number(100 * f['confidence'], 'vi', 0)} %.",
             f"Thời điểm: {fmt.datetime(f['detected_at'])} (giờ Việt Nam).",
             f"Phát hiện #{f['id']}" + (" (có ảnh chụp)." if f["has_snapshot"] else ".")]
    if confirmed_by:
        lines.append(f"Cán bộ {confirmed_by} đã xác nhận.")
    return "\n".join(lines)


def _escalate(conn: psycopg.Connection[Any], ident: int, actor: str, now: dt.datetime, *,
              confirmed: bool, note: str | None = None) -> int:
    """Detection IDENT becomes an incident at its camera, in its commune, linked to it."""
    f = _facts(conn, ident)
    row = conn.execute(q.INSERT_INCIDENT, {
        "category": f["incident_category"], "severity": f["severity"], "title": title(f),
        "description": description(f, actor if confirmed else None),
        "commune_code": f["commune_code"], "at": f["detected_at"], "now": now,
        "camera": f["camera_id"]}).fetchone()
    assert row is not None
    incident = int(row[0])
    conn.execute(q.LINK_INCIDENT, {
        "incident": incident, "id": ident, "status": "confirmed" if confirmed else "escalated",
        "actor": actor if confirmed else None, "decided_at": now if confirmed else None,
        "note": note})
    workflow.record(conn, incident, at=now, actor=workflow.SYSTEM, kind="status",
                    from_status=None, to_status="received",
                    note=f"Phát hiện tự động #{ident} từ camera {f['camera_code']}")
    if confirmed:
        text = f"Cán bộ {actor} xác nhận phát hiện #{ident}" + (f": {note}" if note else "")
        workflow.transition(conn, incident, "verified", actor=actor, note=text, at=now)
    else:
        agency = f["agency_code"]
        if agency and conn.execute(q.AGENCY_EXISTS, (agency,)).fetchone()[0]:  # type: ignore[index]
            workflow.transition(conn, incident, "verified", actor=workflow.SYSTEM, at=now,
                                note=f"Phát hiện tự động, độ tin cậy {f['confidence']:.2f}")
            workflow.transition(conn, incident, "assigned", actor=workflow.SYSTEM, at=now,
                                agency_code=agency)
    return incident


class DetectionConflict(Conflict):
    """An operator's decision on a detection that is no longer waiting (409)."""

    code = "DetectionConflict"
    title = "Detection conflict"


def _lock_pending(conn: psycopg.Connection[Any], ident: int, who: Principal) -> dict[str, Any]:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(q.LOCK_DETECTION.format(visible=visible(who)), {"id": ident}).fetchone()
    if row is None:
        raise NotFound(f"detection {ident} not found",
                       message=Message("detection_not_found", {"id": ident}))
    if row["status"] != "pending":
        raise DetectionConflict(
            f"detection {ident} is {row['status']}, not waiting for a decision",
            message=Message("detection_decided", {
                "id": ident, "status": row["status"], "by": row["decided_by"] or workflow.SYSTEM,
                "at": fmt.datetime(row["decided_at"]) if row["decided_at"] else fmt.EMPTY}))
    return row


def confirm(conn: psycopg.Connection[Any], ident: int, who: Principal, *,
            note: str | None = None, now: dt.datetime | None = None,
            request: Any = None) -> dict[str, Any]:
    """An operator confirms a pending detection: its incident is made (verified by WHO),
    linked, audited, announced."""
    at = _now(now)
    actor = who.user or "anonymous"
    with conn.transaction():
        _lock_pending(conn, ident, who)
        incident = _escalate(conn, ident, actor, at, confirmed=True, note=note)
        conn.execute(q.DETECTION_EVENT, {"id": ident})
        audit.record(conn, who, "detection_confirm", request=request, layer=CAMERAS_LAYER,
                     status=200, target={"detection": ident, "incident": incident})
    return {"id": ident, "status": "confirmed", "incident": incident, "decided_by": actor,
            "decided_at": at}


def dismiss(conn: psycopg.Connection[Any], ident: int, who: Principal, *,
            note: str | None = None, now: dt.datetime | None = None,
            request: Any = None) -> dict[str, Any]:
    """An operator dismisses a pending detection (a false alarm): no incident; audited."""
    at = _now(now)
    actor = who.user or "anonymous"
    with conn.transaction():
        _lock_pending(conn, ident, who)
        conn.execute(q.DISMISS, {"id": ident, "actor": actor, "at": at, "note": note})
        conn.execute(q.DETECTION_EVENT, {"id": ident})
        audit.record(conn, who, "detection_dismiss", request=request, layer=CAMERAS_LAYER,
                     status=200, target={"detection": ident})
    return {"id": ident, "status": "dismissed", "incident": None, "decided_by": actor,
            "decided_at": at}


def detections(conn: psycopg.Connection[Any], who: Principal, *,
               statuses: Sequence[str] | None = None, camera: str | None = None,
               limit: int = 100, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Detections WHO may see, newest first (the queue: statuses=["pending"])."""
    stmt = q.DETECTIONS.format(visible=visible(who), incident_visible=incident_visible(who))
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(stmt, {"statuses": list(statuses) if statuses else None,
                                  "camera": camera, "limit": limit, "offset": offset}).fetchall()
    total = int(rows[0]["total"]) if rows else 0
    for r in rows:
        r.pop("total")
        r["category_name"] = {"vi": r.pop("category_vi"), "en": r.pop("category_en")}
        r["detected_at_text"] = fmt.datetime(r["detected_at"])
    return rows, total


def detection_snapshot(conn: psycopg.Connection[Any], who: Principal, ident: int,
                       thumb: bool) -> bytes:
    stmt = q.DETECTION_SNAPSHOT.format(column=sql.Identifier("thumbnail" if thumb else "snapshot"),
                                       visible=visible(who))
    row = conn.execute(stmt, {"id": ident}).fetchone()
    if row is None:
        raise NotFound(f"detection {ident} has no snapshot",
                       message=Message("detection_not_found", {"id": ident}))
    return bytes(row[0])


def categories(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(q.CATEGORIES).fetchall()


def field_error(e: FieldError) -> Invalid:
    """A camera message's field error as the API's 422 naming the field."""
    return Invalid(f"{e.field}: {e.text}", parameter=e.field, message=PROBLEMS,
                   problems=[Problem(e.field, e.text, message=e.message)])
