"""Cameras (gis/sensors/cameras.py, api/routes/cameras.py): health from heartbeats through the real
broker and the ingest worker, the sweep, history and the `camera` NOTIFY; the health panel by
commune; snapshots; detections that become incidents or wait for an operator.

Each test uses cameras of its own (codes CAM-9xxxxx, made here at a point of a current commune,
removed at the end with the incidents their detections made) and MQTT topics of its own (a
unique prefix and share group, as tests/test_ingest.py).
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import random
import time
import uuid
from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from PIL import Image

from gis.auth import api_keys, users
from gis.jobs import queue
from gis.sensors import cameras, simulate, simulator
from gis.sensors import mqtt as broker
from gis.sensors.ingest import IngestWorker
from gis.settings import get_settings

LIMITS = cameras.Limits.of(get_settings())


@pytest.fixture(scope="module")
def place(conn) -> dict[str, Any]:
    code, name, lon, lat = conn.execute(
        "SELECT code, name, ST_X(p), ST_Y(p) FROM (SELECT code, name, ST_PointOnSurface(geom) AS p"
        " FROM admin_units WHERE level = 'commune' AND valid_to IS NULL ORDER BY code LIMIT 1) q"
    ).fetchone()
    return {"commune": code, "commune_name": name, "lon": float(lon), "lat": float(lat)}


class Cams:
    def __init__(self, conn: psycopg.Connection[Any], place: dict[str, Any]) -> None:
        self.conn, self.place, self.ids = conn, place, []

    def make(self, status: str = "offline") -> tuple[int, str]:
        code = f"CAM-9{random.randrange(100000):05d}"
        cid = self.conn.execute(
            "INSERT INTO cameras (code, name, heading, fov_deg, range_m, status, stream_url, geom)"
            " VALUES (%s, 'Camera thử', 90, 60, 100, %s, 'rtsp://secret.invalid/x',"
            " ST_SetSRID(ST_MakePoint(%s, %s), 4326)) RETURNING id",
            (code, status, self.place["lon"], self.place["lat"])).fetchone()[0]
        self.ids.append(cid)
        return cid, code

    def close(self) -> None:
        incidents = [r[0] for r in self.conn.execute(
            "SELECT incident_id FROM camera_detections WHERE camera_id = ANY(%s)"
            " AND incident_id IS NOT NULL", (self.ids,))]
        self.conn.execute("DELETE FROM cameras WHERE id = ANY(%s)", (self.ids,))
        self.conn.execute("DELETE FROM incidents WHERE id = ANY(%s)", (incidents,))


@pytest.fixture
def cams(conn, place) -> Iterator[Cams]:
    c = Cams(conn, place)
    yield c
    c.close()


@pytest.fixture
def worker() -> Iterator[tuple[IngestWorker, str]]:
    tag = uuid.uuid4().hex[:10]
    prefix = f"test-{tag}/"
    w = IngestWorker(client_id=f"test-{tag}-cams", topic_prefix=prefix,
                     share_group=f"test-{tag}").start()
    yield w, prefix
    w.stop()


def _publish(topic: str, body: Any) -> None:
    url = broker.parse_url(get_settings().mqtt_url)
    c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    c.connect(url.host, url.port)
    c.loop_start()
    try:
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        c.publish(topic, payload, qos=1).wait_for_publish(10)
    finally:
        c.disconnect()
        c.loop_stop()


def _wait(check: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


def _status(conn, cid: int) -> tuple[str, Any]:
    return tuple(conn.execute("SELECT status, last_seen FROM cameras WHERE id = %s",
                              (cid,)).fetchone())


def _history(conn, cid: int) -> list[tuple[str | None, str, str]]:
    return [tuple(r) for r in conn.execute(
        "SELECT from_status, to_status, cause FROM camera_status_history WHERE camera_id = %s"
        " ORDER BY id", (cid,))]


class Listener:
    """LISTEN geoioc_live on a connection of its own."""

    def __init__(self, db_url: str) -> None:
        self.conn = psycopg.connect(db_url, autocommit=True)
        self.conn.execute("LISTEN geoioc_live")

    def events(self, kind: str, timeout: float = 5.0, want: int = 1) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(out) < want and time.monotonic() < deadline:
            for n in self.conn.notifies(timeout=max(0.05, deadline - time.monotonic()),
                                        stop_after=1):
                e = json.loads(n.payload)
                if e.get("kind") == kind:
                    out.append(e)
        return out

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def listener(db_url) -> Iterator[Listener]:
    lis = Listener(db_url)
    yield lis
    lis.close()


# --- health -----------------------------------------------------------------------------------


def test_mqtt_heartbeat_puts_a_camera_online_and_silence_takes_it_offline(conn, cams, worker,
                                                                          listener, db_url):
    w, prefix = worker
    cid, code = cams.make("offline")
    _publish(f"{prefix}geoioc/cameras/{code}/heartbeat", {"fps": 25, "quality": 0.9})
    assert _wait(lambda: _status(conn, cid)[0] == "online")
    status, seen = _status(conn, cid)
    assert abs((dt.datetime.now(dt.UTC) - seen).total_seconds()) < 30
    assert _history(conn, cid) == [("offline", "online", "heartbeat")]
    [event] = listener.events("camera")
    assert event == {"kind": "camera", "layer": "cameras", "id": cid, "status": "online",
                     "last_seen": seen.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"}
    # Counted by the worker like observations: received, stored.
    row = conn.execute("SELECT received, stored, rejected FROM ingest_workers WHERE worker_id = %s",
                       (w.worker_id,)).fetchone()
    assert tuple(row) == (1, 1, 0)
    # A second heartbeat changes nothing: no history, no event.
    _publish(f"{prefix}geoioc/cameras/{code}/heartbeat", b"")
    assert _wait(lambda: conn.execute("SELECT stored FROM ingest_workers WHERE worker_id = %s",
                                      (w.worker_id,)).fetchone()[0] == 2)
    assert len(_history(conn, cid)) == 1 and listener.events("camera", 0.5) == []
    # Time passes without a heartbeat: late (degraded), then silent (offline) - the sweep.
    _, seen = _status(conn, cid)
    assert cameras.sweep(conn, LIMITS, seen + dt.timedelta(seconds=LIMITS.online_s - 1)) == []
    late = seen + dt.timedelta(seconds=LIMITS.online_s + 1)
    assert (cid, "online", "degraded") in cameras.sweep(conn, LIMITS, late)
    gone = seen + dt.timedelta(seconds=LIMITS.offline_s + 1)
    assert (cid, "degraded", "offline") in cameras.sweep(conn, LIMITS, gone)
    assert _status(conn, cid)[0] == "offline"
    assert _history(conn, cid)[1:] == [("online", "degraded", "sweep"),
                                       ("degraded", "offline", "sweep")]
    events = [e for e in listener.events("camera", want=2) if e["id"] == cid]
    assert [e["status"] for e in events] == ["degraded", "offline"]
    at = conn.execute("SELECT at FROM camera_status_history WHERE camera_id = %s ORDER BY id DESC"
                      " LIMIT 1", (cid,)).fetchone()[0]
    assert at == gone  # timestamptz, the sweep's instant


def test_the_sweep_is_a_periodic_job():
    assert "gis.sensors.camera_jobs" in queue.TASK_MODULES
    from gis.sensors import camera_jobs

    assert camera_jobs.health_sweep.queue == queue.MAINTENANCE
    assert any(p.task.name == "cameras.health_sweep" and p.cron == "* * * * *"
               for p in queue.app.periodic_registry.periodic_tasks.values())


def test_poor_quality_or_low_fps_is_degraded(conn, cams, worker):
    _, prefix = worker
    a, code_a = cams.make()
    b, code_b = cams.make()
    _publish(f"{prefix}geoioc/cameras/{code_a}/heartbeat", {"fps": 3})
    _publish(f"{prefix}geoioc/cameras/{code_b}/heartbeat", {"fps": 25, "quality": 0.2})
    assert _wait(lambda: _status(conn, a)[0] == "degraded" and _status(conn, b)[0] == "degraded")
    assert conn.execute("SELECT fps, quality FROM cameras WHERE id = %s", (b,)).fetchone() == (25.0, 0.2)
    # A good heartbeat puts it back online.
    _publish(f"{prefix}geoioc/cameras/{code_a}/heartbeat", {"fps": 30})
    assert _wait(lambda: _status(conn, a)[0] == "online")
    assert [h[1] for h in _history(conn, a)] == ["degraded", "online"]


def test_bad_camera_messages_are_counted_not_stored(conn, cams, worker):
    w, prefix = worker
    _publish(f"{prefix}geoioc/cameras/CAM-1/heartbeat", {})
    _publish(f"{prefix}geoioc/cameras/CAM-999999/heartbeat", {})
    _publish(f"{prefix}geoioc/cameras/CAM-000001/heartbeat", {"fps": "fast"})
    _publish(f"{prefix}geoioc/cameras/CAM-000001/heartbeat", b"{not json")

    def reasons() -> dict[str, int]:
        return conn.execute("SELECT rejected_reasons FROM ingest_workers WHERE worker_id = %s",
                            (w.worker_id,)).fetchone()[0]
    assert _wait(lambda: sum(reasons().values()) == 4)
    assert reasons() == {"camera_bad_code": 1, "unknown_camera": 1, "camera_bad_field": 1,
                         "not_json": 1}


def test_a_camera_never_heard_from_keeps_its_register_status(conn, cams):
    cid, _ = cams.make("online")
    cameras.sweep(conn, LIMITS, dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    assert _status(conn, cid) == ("online", None)


def test_maintenance_is_left_alone(conn, cams, client, keys):
    cid, code = cams.make("maintenance")
    r = client.post(f"/api/cameras/{code}/heartbeat", json={}, headers=keys["operator"])
    assert r.status_code == 200 and r.json()["status"] == "maintenance"
    cameras.sweep(conn, LIMITS, dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    assert _status(conn, cid)[0] == "maintenance" and _history(conn, cid) == []


# --- HTTP pushes and who may push ---------------------------------------------------------------


def test_http_heartbeat_and_who_may_push(conn, cams, client, keys, listener):
    cid, code = cams.make("offline")
    other, other_code = cams.make("offline")
    assert client.post(f"/api/cameras/{code}/heartbeat", json={}).status_code == 401
    r = client.post(f"/api/cameras/{code}/heartbeat", json={}, headers=keys["citizen"])
    assert r.status_code == 403 and _status(conn, cid)[0] == "offline"
    r = client.post(f"/api/cameras/{code}/heartbeat", json={"fps": 25, "quality": 0.95},
                    headers=keys["operator"])
    assert r.status_code == 200 and r.json()["status"] == "online"
    assert [e["id"] for e in listener.events("camera")] == [cid]
    # A device's key, limited to one camera, of a user holding no role.
    name = f"dev-{uuid.uuid4().hex[:8]}"
    users.add_user(conn, name, "a-long-device-password-1", roles=[])
    try:
        key = api_keys.create_key(conn, name, "camera", days=1)
        assert cameras.bind_key(conn, key.prefix, [other_code]) == 1
        dev = {"X-API-Key": key.key}
        assert client.post(f"/api/cameras/{other_code}/heartbeat", json={},
                           headers=dev).json()["status"] == "online"
        r = client.post(f"/api/cameras/{code}/heartbeat", json={}, headers=dev)
        assert r.status_code == 403 and code in r.json()["detail"]
        # It reads nothing of cameras.
        assert client.get("/api/cameras/health", headers=dev).status_code == 404
    finally:
        conn.execute("DELETE FROM users WHERE username = %s", (name,))
    assert _status(conn, other)[0] == "online"


def test_bad_heartbeats_name_the_field(cams, client, keys):
    _, code = cams.make()
    for body, field in (({"fps": -1}, "fps"), ({"quality": 2}, "quality"),
                        ({"time": "yesterday"}, "time"), ({"time": "2026-12-01T08:00:00"}, "time"),
                        ([1, 2], "body")):
        r = client.post(f"/api/cameras/{code}/heartbeat", json=body, headers=keys["operator"])
        assert r.status_code == 422, (body, r.text)
        assert r.json()["errors"][0]["field"] == field
    r = client.post(f"/api/cameras/{code}/heartbeat", content=b"{", headers=keys["operator"])
    assert r.status_code == 400
    r = client.post("/api/cameras/CAM-1/heartbeat", json={}, headers=keys["operator"])
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "code"
    r = client.post("/api/cameras/CAM-999998/heartbeat", json={}, headers=keys["operator"])
    assert r.status_code == 404


# --- the health panel ---------------------------------------------------------------------------


def test_panel_by_commune_equals_an_independent_count(conn, cams, client, keys, place):
    for status in ("offline", "degraded", "degraded", "online"):
        cams.make(status)
    conn.execute("UPDATE cameras SET last_seen = now() - interval '2 hours 5 minutes'"
                 " WHERE id = %s", (cams.ids[0],))
    r = client.get("/api/cameras/health", headers=keys["operator"])
    assert r.status_code == 200
    body = r.json()
    got = {c["code"]: len(c["cameras"]) for c in body["communes"]}
    expected = dict(conn.execute(
        "SELECT a.code, count(*) FROM cameras c JOIN admin_units a ON a.level = 'commune'"
        " AND a.valid_to IS NULL AND ST_Intersects(a.geom, c.geom)"
        " WHERE c.status IN ('offline', 'degraded') GROUP BY a.code").fetchall())
    outside = conn.execute(
        "SELECT count(*) FROM cameras c WHERE c.status IN ('offline', 'degraded') AND NOT EXISTS"
        " (SELECT 1 FROM admin_units a WHERE a.level = 'commune' AND a.valid_to IS NULL"
        " AND ST_Intersects(a.geom, c.geom))").fetchone()[0]
    if outside:
        expected[None] = outside
    assert got == expected
    counts = {c["code"]: c for c in body["counts"]}
    mine = counts[place["commune"]]
    assert mine["offline"] + mine["degraded"] == expected[place["commune"]]
    total = conn.execute("SELECT count(*) FROM cameras").fetchone()[0]
    assert body["totals"]["total"] == total
    # Our silent camera: the time since in words and in Vietnam time.
    entry = next(c for c in body["communes"] if c["code"] == place["commune"])
    cam = next(c for c in entry["cameras"] if c["id"] == cams.ids[0])
    assert cam["since"]["vi"].startswith("2 giờ 5 phút") or cam["since"]["vi"].startswith("2 giờ 4")
    assert cam["last_seen_local"].endswith("+07:00")
    assert "stream_url" not in json.dumps(body)
    # One commune, and statuses chosen.
    r = client.get(f"/api/cameras/health?commune={place['commune']}&status=online",
                   headers=keys["land_officer"])
    assert r.status_code == 200
    assert {c["status"] for e in r.json()["communes"] for c in e["cameras"]} == {"online"}
    assert client.get("/api/cameras/health?status=broken",
                      headers=keys["operator"]).json()["errors"][0]["field"] == "status"
    for who in ("anonymous", "citizen"):
        assert client.get("/api/cameras/health", headers=keys[who]).status_code == 404
    # One camera's history.
    cid, code = cams.make("offline")
    client.post(f"/api/cameras/{code}/heartbeat", json={}, headers=keys["operator"])
    h = client.get(f"/api/cameras/{code}/health", headers=keys["operator"]).json()
    assert h["status"] == "online" and [x["to_status"] for x in h["history"]] == ["online"]
    assert client.get(f"/api/cameras/{code}/health", headers=keys["citizen"]).status_code == 404


# --- snapshots ----------------------------------------------------------------------------------


def _png(w: int = 800, h: int = 600) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (w, h), (30, 120, 200)).save(out, "PNG")
    return out.getvalue()


def test_snapshot_upload_thumbnail_and_access(conn, cams, client, keys):
    cid, code = cams.make()
    url = f"/api/cameras/{code}/snapshot"
    r = client.put(url, content=_png(), headers={**keys["operator"], "Content-Type": "image/png"})
    assert r.status_code == 200, r.text
    assert (r.json()["width"], r.json()["height"]) == (800, 600)
    stored = Image.open(io.BytesIO(client.get(url, headers=keys["security_officer"]).content))
    assert stored.format == "JPEG" and stored.size == (800, 600)
    thumb = client.get(url + "/thumb", headers=keys["land_officer"])
    assert thumb.headers["content-type"] == "image/jpeg"
    assert max(Image.open(io.BytesIO(thumb.content)).size) == 320
    # Roles that may not see cameras: nothing, as if there were no camera.
    for who in ("anonymous", "citizen"):
        assert client.get(url, headers=keys[who]).status_code == 404
        assert client.get(url + "/thumb", headers=keys[who]).status_code == 404
    # The map's camera carries the snapshot's time (its popup shows the thumbnail), never the
    # stream to who may not read it.
    feats = client.get("/api/map/cameras", headers=keys["operator"]).json()["features"]
    mine = next(f for f in feats if f["id"] == cid)
    assert "snapshot_at" in mine["properties"] and "stream_url" not in mine["properties"]
    # Bad input: 4xx naming what is wrong, nothing stored.
    before = conn.execute("SELECT sha256 FROM camera_snapshots WHERE camera_id = %s",
                          (cid,)).fetchone()[0]
    r = client.put(url, content=b"not an image", headers={**keys["operator"],
                                                          "Content-Type": "image/png"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body"
    gif = io.BytesIO()
    Image.new("RGB", (10, 10)).save(gif, "GIF")
    r = client.put(url, content=gif.getvalue(), headers={**keys["operator"],
                                                         "Content-Type": "image/png"})
    assert r.status_code == 422
    r = client.put(url, content=_png(), headers={**keys["operator"], "Content-Type": "text/plain"})
    assert r.status_code == 415
    r = client.put(url, content=_png(), headers={**keys["citizen"], "Content-Type": "image/png"})
    assert r.status_code == 403
    assert conn.execute("SELECT sha256 FROM camera_snapshots WHERE camera_id = %s",
                        (cid,)).fetchone()[0] == before


# --- detections ---------------------------------------------------------------------------------


def _incident(conn, incident: int) -> dict[str, Any]:
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute(
            "SELECT i.category, i.source, i.status, i.commune_code, i.geom = c.geom AS at_camera,"
            " i.title FROM incidents i JOIN camera_detections d ON d.incident_id = i.id"
            " JOIN cameras c ON c.id = d.camera_id WHERE i.id = %s", (incident,)).fetchone()


def test_high_confidence_detection_becomes_one_incident(conn, cams, client, keys, place,
                                                        listener):
    cid, code = cams.make("online")
    at = "2026-12-03T08:15:00+07:00"
    snap = base64.b64encode(_png(64, 48)).decode()
    r = client.post(f"/api/cameras/{code}/detections", headers=keys["operator"],
                    json={"category": "fire", "confidence": 0.93, "time": at, "snapshot": snap})
    assert r.status_code == 201, r.text
    d = r.json()
    assert d["status"] == "escalated" and d["created"] and d["incident"] is not None
    inc = _incident(conn, d["incident"])
    assert inc["category"] == "fire" and inc["source"] == "camera" and inc["at_camera"]
    assert inc["commune_code"] == place["commune"] and inc["status"] == "received"
    assert code in inc["title"] and "08:15 03/12/2026" in inc["title"]
    assert conn.execute("SELECT count(*) FROM incident_transitions WHERE incident_id = %s",
                        (d["incident"],)).fetchone()[0] == 1
    [e] = listener.events("detection")
    assert e == {"kind": "detection", "layer": "cameras", "id": d["id"], "camera": cid,
                 "category": "fire", "incident": d["incident"], "status": "escalated",
                 "confidence": pytest.approx(0.93)}
    # Sent again: stored once, still one incident.
    r = client.post(f"/api/cameras/{code}/detections", headers=keys["operator"],
                    json={"category": "fire", "confidence": 0.93, "time": at})
    assert r.json() == {**d, "created": False}
    assert conn.execute("SELECT count(*) FROM camera_detections WHERE camera_id = %s",
                        (cid,)).fetchone()[0] == 1
    thumb = client.get(f"/api/cameras/detections/{d['id']}/snapshot/thumb", headers=keys["leader"])
    assert Image.open(io.BytesIO(thumb.content)).size == (64, 48)
    assert client.get(f"/api/cameras/detections/{d['id']}/snapshot",
                      headers=keys["citizen"]).status_code == 404


def test_mqtt_detection_through_the_broker(conn, cams, worker):
    w, prefix = worker
    cid, code = cams.make("online")
    _publish(f"{prefix}geoioc/cameras/{code}/detections",
             [{"category": "traffic_accident", "confidence": 0.97},
              {"category": "crowd", "confidence": 0.3},
              {"category": "nonsense_kind", "confidence": 0.9}])
    rows = _wait(lambda: conn.execute(
        "SELECT category, status, incident_id IS NOT NULL FROM camera_detections"
        " WHERE camera_id = %s ORDER BY category", (cid,)).fetchall() if conn.execute(
        "SELECT count(*) FROM camera_detections WHERE camera_id = %s", (cid,)).fetchone()[0] == 2
        else None)
    assert rows == [("crowd", "pending", False), ("traffic_accident", "escalated", True)]
    fig = _wait(lambda: conn.execute(
        "SELECT received, stored, rejected_reasons FROM ingest_workers WHERE worker_id = %s"
        " AND received = 3", (w.worker_id,)).fetchone())
    assert fig == (3, 2, {"unknown_category": 1})


def test_low_confidence_waits_then_confirm_or_dismiss(conn, cams, client, keys, listener):
    cid, code = cams.make("online")
    post = lambda c, t: client.post(f"/api/cameras/{code}/detections", headers=keys["operator"],  # noqa: E731
                                    json={"category": c, "confidence": 0.55, "time": t}).json()
    a = post("crowd", "2026-12-03T09:00:00Z")
    b = post("smoke", "2026-12-03T09:01:00Z")
    assert a["status"] == b["status"] == "pending" and a["incident"] is b["incident"] is None
    assert [e["id"] for e in listener.events("detection", want=2)] == [a["id"], b["id"]]
    queue_ = client.get(f"/api/cameras/detections?status=pending&camera={code}",
                        headers=keys["operator"]).json()
    assert [i["id"] for i in queue_["items"]] == [b["id"], a["id"]]
    assert queue_["items"][0]["category_name"]["vi"] == "Khói"
    # Who may not decide.
    assert client.post(f"/api/cameras/detections/{a['id']}/confirm",
                       headers=keys["land_officer"]).status_code == 403
    assert client.post(f"/api/cameras/detections/{a['id']}/confirm").status_code == 401
    # Confirmed: one incident at the camera, verified by the operator, audited.
    r = client.post(f"/api/cameras/detections/{a['id']}/confirm", headers=keys["operator"],
                    json={"note": "đã xem camera"})
    assert r.status_code == 200, r.text
    incident = r.json()["incident"]
    inc = _incident(conn, incident)
    assert inc["category"] == "public_order" and inc["at_camera"] and inc["status"] == "verified"
    assert conn.execute("SELECT status, decided_by IS NOT NULL FROM camera_detections WHERE id = %s",
                        (a["id"],)).fetchone() == ("confirmed", True)
    assert conn.execute("SELECT count(*) FROM audit_log WHERE action = 'detection_confirm'"
                        " AND target ->> 'detection' = %s", (str(a["id"]),)).fetchone()[0] == 1
    assert listener.events("detection")[0]["incident"] == incident
    again = client.post(f"/api/cameras/detections/{a['id']}/confirm", headers=keys["operator"])
    assert again.status_code == 409
    # Dismissed: no incident.
    r = client.post(f"/api/cameras/detections/{b['id']}/dismiss", headers=keys["operator"])
    assert r.status_code == 200 and r.json()["incident"] is None
    assert conn.execute("SELECT status, incident_id FROM camera_detections WHERE id = %s",
                        (b["id"],)).fetchone() == ("dismissed", None)
    assert conn.execute("SELECT count(*) FROM audit_log WHERE action = 'detection_dismiss'"
                        " AND target ->> 'detection' = %s", (str(b["id"]),)).fetchone()[0] == 1
    assert client.post(f"/api/cameras/detections/{b['id']}/confirm",
                       headers=keys["operator"]).status_code == 409
    assert conn.execute("SELECT count(*) FROM camera_detections WHERE camera_id = %s AND"
                        " incident_id IS NOT NULL", (cid,)).fetchone()[0] == 1
    # Who may not see cameras sees no queue.
    assert client.get("/api/cameras/detections", headers=keys["citizen"]).status_code == 404


def test_security_incidents_stay_hidden_in_the_queue(conn, cams, client, keys):
    """An intrusion becomes a security event: its id is shown only to who may read it."""
    cid, code = cams.make("online")
    d = client.post(f"/api/cameras/{code}/detections", headers=keys["operator"],
                    json={"category": "intrusion", "confidence": 0.99}).json()
    assert d["incident"] is not None
    seen = {who: next(i for i in client.get(f"/api/cameras/detections?camera={code}",
                                            headers=keys[who]).json()["items"])["incident_id"]
            for who in ("operator", "security_officer")}
    assert seen == {"operator": None, "security_officer": d["incident"]}


def test_bad_detections_name_the_field(cams, client, keys):
    _, code = cams.make()
    url = f"/api/cameras/{code}/detections"
    for body, field in (({"confidence": 0.9}, "category"),
                        ({"category": "fire"}, "confidence"),
                        ({"category": "fire", "confidence": 1.5}, "confidence"),
                        ({"category": "fire", "confidence": True}, "confidence"),
                        ({"category": "fire", "confidence": 0.9, "time": "08:00"}, "time"),
                        ({"category": "fire", "confidence": 0.9, "snapshot": "!!"}, "snapshot"),
                        ({"category": "fire", "confidence": 0.9,
                          "snapshot": base64.b64encode(b"not an image").decode()}, "snapshot"),
                        ({"category": "unknown_thing", "confidence": 0.9}, "category")):
        r = client.post(url, json=body, headers=keys["operator"])
        assert r.status_code == 422, (body, r.text)
        assert r.json()["errors"][0]["field"] == field, (body, r.json())
    r = client.post(url, json=[], headers=keys["operator"])
    assert r.status_code == 400
    vi = client.post(url + "?lang=vi", json={"category": "fire", "confidence": 2},
                     headers=keys["operator"]).json()
    assert "phải là số từ 0 đến 1" in json.dumps(vi, ensure_ascii=False)


# --- the simulator ------------------------------------------------------------------------------


def test_simulated_cameras_go_offline_and_come_back_one_degraded():
    ids = __import__("numpy").arange(1, 301, dtype="int64")
    t = simulate.grid(1.7e9, 1.7e9 + 3 * 86400, 60)
    state = simulate.camera_heartbeats(ids, t, 1)
    assert set(state[0].tolist()) <= {1.0, 2.0} and (state[0] == 1.0).mean() > 0.9  # degraded
    others = state[1:]
    went = (others == 2.0).any(axis=1)
    assert went.sum() > 10  # some go offline ...
    assert ((others[went, -1] == 0.0).mean()) > 0.8  # ... and come back
    found = simulate.camera_detections(ids, t, 1, 60)
    per_hour = len(found) / (len(t) / 60)
    assert 2 < per_hour < 15
    conf = [f[3] for f in found]
    assert min(conf) < 0.8 <= max(conf) and all(0 <= c <= 1 for c in conf)
    assert simulate.camera_detections(ids, t, 1, 60) == found  # pure


def test_the_simulator_publishes_heartbeats_and_detections(conn, cams, worker):
    w, prefix = worker
    made = [cams.make("offline") for _ in range(3)]
    cs = simulator.Cameras.of(sorted(made))
    settings = get_settings().model_copy(update={"mqtt_topic_prefix": prefix})
    pub = simulator.Publisher(settings)
    now = time.time()
    times = simulate.grid(now - 300, now, 60)
    fig = simulator.Figures()
    simulator.publish_cameras(cs, times, 1, 60, pub, fig)
    pub.close()
    assert fig.heartbeats > 0
    first = made[0][0]  # the smallest id: degraded throughout
    assert _wait(lambda: _status(conn, first)[0] == "degraded")
    assert _wait(lambda: conn.execute("SELECT stored FROM ingest_workers WHERE worker_id = %s",
                                      (w.worker_id,)).fetchone()[0] == fig.heartbeats + fig.detections)
    seen = conn.execute("SELECT count(*) FROM cameras WHERE id = ANY(%s) AND last_seen IS NOT NULL",
                        ([c for c, _ in made],)).fetchone()[0]
    assert seen >= 1
