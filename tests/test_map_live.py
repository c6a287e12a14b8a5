"""The live map: /api/map/events end to end (MQTT through the real broker -> ingest -> NOTIFY ->
the server's one LISTEN connection -> each caller's stream, read again under its access) and the
chart's series API.

The streams are read from the real server (live_server: another process), so only PostgreSQL
NOTIFY can carry an event to them. Events a caller may not see must never arrive: each check of
"nothing arrived" is closed by a sentinel event every caller may see (congestion on a public
road), sent after the hidden ones; a stream handles its events in order, so once the sentinel
is there, whatever was sent before it has been handled.
"""

from __future__ import annotations

import datetime as dt
import json
import queue
import random
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest
from test_ingest import Publisher, Workers, figures, wait_for

from gis import live
from gis.maps import live as map_live
from gis.reports import queries as report_queries
from gis.sensors import payloads
from gis.sensors import queries as ingest
from layers.access import ANONYMOUS

VN = ZoneInfo("Asia/Ho_Chi_Minh")


class Stream:
    """One caller's /api/map/events, read in a thread into a queue of (event, data)."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.seen: list[tuple[str, Any]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._read, args=(url, headers), daemon=True)
        self.thread.start()
        assert self.next(lambda e: e[0] == "status")[1] == 200
        assert self.next(lambda e: e[0] == "ready")[1] == {"listening": True}

    def _read(self, url: str, headers: dict[str, str]) -> None:
        with httpx.Client(timeout=httpx.Timeout(5.0, read=30.0)) as http, \
                http.stream("GET", url + "/api/map/events", headers=headers) as r:
            self.events.put(("status", r.status_code))
            self.events.put(("content-type", r.headers.get("content-type")))
            name = "message"
            try:
                for line in r.iter_lines():
                    if self.stop.is_set():
                        return
                    if line.startswith("event:"):
                        name = line[6:].strip()
                    elif line.startswith("data:"):
                        self.events.put((name, json.loads(line[5:])))
                        name = "message"
            except httpx.HTTPError:
                return

    def next(self, want: Any, seconds: float = 20.0) -> tuple[str, Any]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                item = self.events.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                break
            self.seen.append(item)
            if want(item):
                return item
        pytest.fail(f"the expected event did not arrive; seen: {self.seen[-20:]}")

    def wait(self, want: Any, seconds: float = 20.0) -> tuple[str, Any]:
        """The first event, already seen or still to come, that WANT accepts (for events whose
        order between them is not fixed: a sensor event waits for its coalescing)."""
        for item in self.seen:
            if want(item):
                return item
        return self.next(want, seconds)

    def until_sentinel(self, road: int) -> list[tuple[str, Any]]:
        """Every event up to the sentinel (congestion of ROAD), the sentinel excluded."""
        start = len(self.seen)
        self.next(lambda e: e[0] == "congestion" and e[1]["segments"][0][0] == road)
        return self.seen[start:-1]


@pytest.fixture
def streams(live_server: str, keys: dict[str, dict[str, str]]) -> Iterator[dict[str, Stream]]:
    out = {who: Stream(live_server, keys[who])
           for who in ("anonymous", "operator", "security_officer")}
    yield out
    for s in out.values():
        s.stop.set()


@pytest.fixture
def road(conn: psycopg.Connection[Any]) -> int:
    return int(conn.execute("SELECT min(id) FROM roads").fetchone()[0])


def sentinel(conn: psycopg.Connection[Any], road: int) -> None:
    conn.execute("SELECT pg_notify(%s, %s)", (live.LIVE_CHANNEL, json.dumps(
        {"kind": "congestion", "layer": "roads", "segments": [[road, "heavy", 0.31]]})))


@pytest.fixture
def stations(conn: psycopg.Connection[Any]) -> Iterator[tuple[int, int, int, int]]:
    """Two river pH stations of this test: (public datastream, its station, datastream
    restricted on its own to security officers, its station)."""
    tag = random.randrange(10000)
    things = [conn.execute(
        "INSERT INTO sensors (code, name, kind, parameter, unit, threshold, status, geom) VALUES"
        " (%s, 'Trạm thử trực tiếp', 'water', 'ph', 'pH', 8.5, 'online',"
        " ST_SetSRID(ST_MakePoint(106.07, 21.18), 4326)) RETURNING id",
        (f"WAT-8{tag:04d}{n}",)).fetchone()[0] for n in range(2)]
    ds = [conn.execute("SELECT id FROM datastreams WHERE thing_id = %s", (t,)).fetchone()[0]
          for t in things]
    conn.execute("UPDATE datastreams SET access = 'restricted', roles = '{security_officer}'"
                 " WHERE id = %s", (ds[1],))
    yield ds[0], things[0], ds[1], things[1]
    conn.execute("DELETE FROM incidents WHERE id IN (SELECT incident_id FROM sensor_alerts"
                 " WHERE datastream_id = ANY(%s))", (ds,))
    conn.execute("DELETE FROM sensors WHERE id = ANY(%s)", (things,))


def store(conn: psycopg.Connection[Any], rows: list[payloads.Row]) -> None:
    """Store ROWS with the ingest's own statement (rollups and latest rows as the ingest keeps
    them), in a transaction of its own."""
    times = [r.phenomenon_time for r in rows]
    with psycopg.connect(conn.info.dsn) as c:
        c.execute("SELECT observations_create_partitions(%s, %s)",
                  (min(times).date(), max(times).date()))
        ingest.prepare(c)
        with c.cursor() as cur:
            with cur.copy(ingest.COPY_STAGING) as cp:
                cp.write("".join(map(payloads.copy_line, rows)))
            cur.execute(ingest.STORE)


def _iso(t: dt.datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def test_mqtt_observation_reaches_the_map_stream_of_who_may_see_it(
        conn, streams, stations, road, live_server, keys) -> None:
    """publish -> stored -> on the SSE stream: a breach of pH 3.0 over MQTT through the broker,
    stored by the ingest; its `sensor` (value, time, colour) and `alert` events reach every
    caller for the public datastream, and only the security officer for the datastream
    restricted on its own."""
    public, public_station, secret, secret_station = stations
    tag = uuid.uuid4().hex[:10]
    workers = Workers(f"test-{tag}/", tag)
    pub = Publisher(f"test-{tag}/")
    try:
        w = workers.start()
        now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
        for ds in (public, secret):
            pub.gateway([[ds, _iso(now - dt.timedelta(minutes=m)), 3.0 + m / 1000]
                         for m in range(0, 65, 5)])
        pub.flush()
        wait_for(lambda: figures(conn, w)["stored"] == 26)
    finally:
        workers.stop_all()
        pub.close()
    wait_for(lambda: conn.execute("SELECT count(*) FROM sensor_alerts WHERE datastream_id = ANY(%s)",
                                  ([public, secret],)).fetchone()[0] >= 2)
    for who in ("anonymous", "operator", "security_officer"):
        s = streams[who]
        _, ev = s.wait(lambda e: e[0] == "sensor" and e[1]["datastream"] == public)
        assert ev["station"] == public_station and ev["value"] == 3.0 and ev["unit"] == "pH"
        # pH 3.0 is under the station's upper threshold: ok until the low-side alert opens.
        assert ev["main"] is True and ev["state"] in ("ok", "over") and ev["stale"] is False
        assert dt.datetime.fromisoformat(ev["time"]) == now
        _, alert = s.wait(lambda e: e[0] == "alert" and e[1]["datastream"] == public)
        assert alert["event"] == "opened" and alert["rule"] == "qcvn08-ph"
        assert alert["station"] == public_station
        _, ev = s.wait(lambda e: e[0] == "sensor" and e[1]["datastream"] == public
                       and e[1]["state"] == "over")
        assert ev["value"] == 3.0
    _, ev = streams["security_officer"].wait(
        lambda e: e[0] == "sensor" and e[1]["datastream"] == secret)
    assert ev["value"] == 3.0 and ev["station"] == secret_station
    streams["security_officer"].wait(lambda e: e[0] == "alert" and e[1]["datastream"] == secret)
    # The incident the public alert escalated to reaches staff, not a guest.
    incident = conn.execute("SELECT incident_id FROM sensor_alerts WHERE datastream_id = %s",
                            (public,)).fetchone()[0]
    streams["operator"].wait(lambda e: e[0] == "incident" and e[1]["id"] == incident)
    sentinel(conn, road)
    for who in ("anonymous", "operator"):
        before = streams[who].until_sentinel(road)
        text = json.dumps(streams[who].seen)
        assert not any(e[1].get("datastream") == secret for e in streams[who].seen
                       if isinstance(e[1], dict)), who
        assert f'"station": {secret_station}' not in text, who
        if who == "anonymous":
            assert not [e for e in streams[who].seen if e[0] in ("incident", "report")]
        del before
    # The map's station list shows the restricted reading only to who may read it (the leak).
    for who, shown in (("anonymous", None), ("operator", None), ("security_officer", 3.0)):
        fc = httpx.get(live_server + "/api/map/sensors", headers=keys[who], timeout=10).json()
        props = next(f["properties"] for f in fc["features"] if f["id"] == secret_station)
        assert props["latest_value"] == shown, who
        assert props["state"] == ("none" if shown is None else "over"), who  # pH 3: alert open
        public_props = next(f["properties"] for f in fc["features"] if f["id"] == public_station)
        assert public_props["latest_value"] == 3.0


def test_bursts_are_coalesced_per_datastream(conn, streams, stations, road) -> None:
    """Ten batches within a second name the same datastream: at most one `sensor` event for it
    a second, carrying the latest value."""
    public, *_ = stations
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    for i in range(10):
        t = now + dt.timedelta(seconds=i)
        store(conn, [payloads.Row(public, t, None, 7.0 + i / 10, None, t, None, None)])
        conn.execute("SELECT pg_notify(%s, %s)", (live.LIVE_CHANNEL, json.dumps(
            {"kind": "observations", "layer": "sensors", "ids": [public]})))
    s = streams["anonymous"]
    _, ev = s.next(lambda e: e[0] == "sensor" and e[1]["datastream"] == public)
    time.sleep(1.5)
    sentinel(conn, road)
    s.until_sentinel(road)
    sent = [e[1] for e in s.seen if e[0] == "sensor" and e[1]["datastream"] == public]
    assert 1 <= len(sent) <= 2, sent
    assert sent[-1]["value"] == 7.9
    assert sent[-1]["state"] == "warn"  # 7.9 is 93 % of the station's threshold, 8.5


def test_a_low_side_breach_is_over_not_ok(conn, stations, live_server) -> None:
    """pH 5.0 is far below the station's upper threshold (8.5) but outside QCVN 08's 6.0–8.5:
    with the rule's alert open, the marker and the live event both say `over`, as the alert
    list does; once the alert closes the same reading is `ok` again."""
    public, station, *_ = stations
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    store(conn, [payloads.Row(public, now, None, 5.0, None, now, None, None)])

    def states() -> tuple[str, str]:
        fc = httpx.get(live_server + "/api/map/sensors", timeout=10).json()
        marker = next(f["properties"]["state"] for f in fc["features"] if f["id"] == station)
        (_, event), = map_live.sensor_events(conn, ANONYMOUS, [public])
        return marker, event["state"]

    assert states() == ("ok", "ok")
    alert = conn.execute(
        "INSERT INTO sensor_alerts (rule_id, datastream_id, opened_at, value, limit_value,"
        " observed_at, peak) SELECT id, %s, %s, 5.0, 6.0, %s, 5.0 FROM alert_rules"
        " WHERE code = 'qcvn08-ph' RETURNING id", (public, now, now)).fetchone()[0]
    assert states() == ("over", "over")
    conn.execute("UPDATE sensor_alerts SET closed_at = %s WHERE id = %s", (now, alert))
    assert states() == ("ok", "ok")


def test_security_incidents_and_hidden_layers_never_reach_a_stream(conn, streams, road) -> None:
    """Notifications sent by hand (the producers of other parts send the same): a security
    incident reaches nobody; an incident reaches staff only; camera events and detections
    (cameras: internal) reach staff only, with the agreed members only; congestion (roads:
    public) reaches everyone; unknown kinds and malformed payloads reach nobody."""
    ids = {}
    for cat in ("security_event", "environment"):
        ids[cat] = conn.execute(
            "INSERT INTO incidents (category, severity, status, source, title, reported_at, geom)"
            " VALUES (%s, 3, 'received', 'hotline', 'Sự cố thử trực tiếp', now(),"
            " ST_SetSRID(ST_MakePoint(106.07, 21.18), 4326))"
            " RETURNING id", (cat,)).fetchone()[0]
    camera = conn.execute("SELECT min(id) FROM cameras").fetchone()[0]
    try:
        for cat in ("security_event", "environment"):
            conn.execute("SELECT pg_notify(%s, %s)", (report_queries.EVENTS_CHANNEL, json.dumps(
                {"event": "report.created", "id": ids[cat], "status": "received"})))
        notes = [
            {"kind": "camera", "layer": "cameras", "id": camera, "status": "offline",
             "last_seen": "2026-12-03T10:00:00Z", "stream_url": "rtsp://secret"},
            {"kind": "detection", "layer": "cameras", "id": 901, "camera": camera,
             "category": "fight", "incident": ids["security_event"]},
            {"kind": "detection", "layer": "cameras", "id": 902, "camera": camera,
             "category": "fire", "incident": ids["environment"]},
            {"kind": "camera", "layer": "cameras", "id": camera, "status": "on fire"},
            {"kind": "secret_stuff", "layer": "roads", "id": 1},
            {"kind": "camera", "layer": "no_such_layer", "id": camera, "status": "online"},
            {"kind": "alert", "layer": "sensors", "event": "opened", "ids": ["x"]},
        ]
        for n in notes:
            conn.execute("SELECT pg_notify(%s, %s)", (live.LIVE_CHANNEL, json.dumps(n)))
        conn.execute("SELECT pg_notify(%s, 'not json')", (live.LIVE_CHANNEL,))
        sentinel(conn, road)
        got = {who: s.until_sentinel(road) for who, s in streams.items()}
    finally:
        conn.execute("DELETE FROM incidents WHERE id = ANY(%s)", (list(ids.values()),))
    for who, events in got.items():
        text = json.dumps(events)
        assert str(ids["security_event"]) not in text or who != "anonymous", who
        assert not [e for e in events if e[1].get("id") == ids["security_event"]], who
        assert not [e for e in events if e[0] == "detection" and e[1]["id"] == 901], who
        assert "rtsp://" not in text and "secret_stuff" not in text and "on fire" not in text
    assert [e[0] for e in got["anonymous"]] == []
    for who in ("operator", "security_officer"):
        names = [(e[0], e[1].get("id")) for e in got[who]]
        assert ("incident", ids["environment"]) in names, who
        assert ("camera", camera) in names and ("detection", 902) in names, who
        cam = next(e[1] for e in got[who] if e[0] == "camera")
        assert cam == {"id": camera, "status": "offline", "last_seen": "2026-12-03T10:00:00Z",
                       "layer": "cameras"}


def _listeners(conn: psycopg.Connection[Any]) -> int:
    return int(conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND query = ANY(%s)", ([f'LISTEN "{c}"' for c in live.CHANNELS],)).fetchone()[0])


def test_the_listener_is_one_connection_for_console_and_map(live_server, keys, conn) -> None:
    """The console's stream and the map's share the process's one LISTEN connection: opening
    more of either adds none."""
    assert report_queries.EVENTS_CHANNEL == live.REPORTS_CHANNEL
    maps = [Stream(live_server, keys[who]) for who in ("operator", "anonymous")]
    before = _listeners(conn)
    with httpx.Client(timeout=httpx.Timeout(5.0, read=5.0)) as http, \
            http.stream("GET", live_server + "/api/reports/events", headers=keys["operator"]) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("event: ready"):
                break
        maps.append(Stream(live_server, keys["security_officer"]))
        after = _listeners(conn)
    for m in maps:
        m.stop.set()
    assert before >= 1 and after == before


# --- the chart's series ------------------------------------------------------------------------


@pytest.fixture
def series_ds(conn: psycopg.Connection[Any]) -> Iterator[int]:
    """A station with 90 days of hourly readings and, for the last 2 days, one every 10 min,
    stored by the ingest's own statement (so the rollups are what the ingest keeps)."""
    thing = conn.execute(
        "INSERT INTO sensors (code, name, kind, parameter, unit, threshold, status, geom) VALUES"
        " (%s, 'Trạm biểu đồ', 'air', 'pm25', 'µg/m³', 50, 'online',"
        " ST_SetSRID(ST_MakePoint(106.07, 21.18), 4326)) RETURNING id",
        (f"AIR-7{random.randrange(100000):05d}",)).fetchone()[0]
    ds = conn.execute("SELECT id FROM datastreams WHERE thing_id = %s", (thing,)).fetchone()[0]
    end = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    times = {end - dt.timedelta(hours=h) for h in range(1, 90 * 24)}
    times |= {end - dt.timedelta(minutes=10 * m) for m in range(1, 6 * 48)}
    rows = [payloads.Row(ds, t, None, 20 + (t.timestamp() // 600) % 37, None, t, None, None)
            for t in sorted(times)]
    store(conn, rows)
    yield ds
    conn.execute("DELETE FROM sensors WHERE id = %s", (thing,))


def test_series_resolution_follows_the_range(client, conn, series_ds) -> None:
    get = lambda **p: client.get("/api/map/series", params={"datastream": series_ds, **p})  # noqa: E731
    day = get(range="day").json()
    assert day["resolution"] == "raw" and day["timezone"] == "Asia/Ho_Chi_Minh"
    raw = conn.execute("SELECT count(*) FROM observations WHERE datastream_id = %s AND"
                       " phenomenon_time >= now() - interval '1 day'", (series_ds,)).fetchone()[0]
    assert len(day["points"]) == raw and all(p[1] == p[2] == p[3] for p in day["points"])
    assert day["datastream"]["unit"] == "µg/m³" and day["datastream"]["property"] == "pm25"
    limits = {t["code"]: t for t in day["thresholds"]}
    assert limits["station"]["upper"] == 50
    assert any(t["upper"] is not None and t["code"] != "station" for t in day["thresholds"])
    week = get(range="week").json()
    assert week["resolution"] == "hour" and 160 <= len(week["points"]) <= 169
    # Hourly means equal the aggregates of the raw rows.
    t, mean, lo, hi = week["points"][-3]
    agg = conn.execute(
        "SELECT avg(result), min(result), max(result) FROM observations WHERE datastream_id = %s"
        " AND phenomenon_time >= to_timestamp(%s) AND phenomenon_time < to_timestamp(%s) + interval '1 hour'",
        (series_ds, t, t)).fetchone()
    assert (round(mean, 9), lo, hi) == (round(agg[0], 9), agg[1], agg[2])
    start = dt.datetime.now(VN) - dt.timedelta(days=80)
    long = get(start=start.isoformat()).json()
    assert long["resolution"] == "day" and 80 <= len(long["points"]) <= 82
    for t, *_ in long["points"]:
        local = dt.datetime.fromtimestamp(t, VN)
        assert (local.hour, local.minute) == (0, 0)  # days in Vietnam time
    t, mean, lo, hi = long["points"][5]
    agg = conn.execute(
        "SELECT avg(result), min(result), max(result), count(*) FROM observations"
        " WHERE datastream_id = %s AND phenomenon_time >= to_timestamp(%s)"
        " AND phenomenon_time < to_timestamp(%s) + interval '1 day'", (series_ds, t, t)).fetchone()
    assert (round(mean, 9), lo, hi, agg[3]) == (round(agg[0], 9), agg[1], agg[2], 24)
    # A short range with too many raw readings falls back to hourly; never over 2,000 points.
    assert all(len(get(range=r).json()["points"]) <= map_live.MAX_IDS for r in ("day", "month"))
    assert len(get(start=(dt.datetime.now(VN) - dt.timedelta(days=1800)).isoformat())
               .json()["points"]) <= 2000
    # A naive time is Vietnam time.
    naive = (dt.datetime.now(VN) - dt.timedelta(hours=5)).replace(tzinfo=None, microsecond=0)
    got = get(start=naive.isoformat()).json()
    assert dt.datetime.fromisoformat(got["start"]) == naive.replace(tzinfo=VN)


def test_series_bad_ranges_are_4xx_naming_the_parameter(client, series_ds) -> None:
    now = dt.datetime.now(VN)
    cases = [
        ({"range": "year"}, "range"),
        ({"range": "day", "start": now.isoformat()}, "range"),
        ({}, "start"),
        ({"start": now.isoformat(), "end": (now - dt.timedelta(hours=1)).isoformat()}, "end"),
        ({"start": (now - dt.timedelta(days=3000)).isoformat()}, "end"),
        ({"start": "yesterday"}, "start"),
    ]
    for params, name in cases:
        r = client.get("/api/map/series", params={"datastream": series_ds, **params})
        assert r.status_code == 400, (params, r.text)
        assert name in r.text, (params, r.text)
    assert client.get("/api/map/series", params={"datastream": 0, "range": "day"}).status_code == 400
    r = client.get("/api/map/series", params={"datastream": 2_000_000, "range": "day"})
    assert r.status_code == 404 and "chuỗi số liệu" in r.json()["detail"]


def test_series_of_a_restricted_datastream_is_404_for_who_may_not_read_it(
        client, conn, keys, series_ds) -> None:
    conn.execute("UPDATE datastreams SET access = 'restricted', roles = '{security_officer}'"
                 " WHERE id = %s", (series_ds,))
    params = {"datastream": series_ds, "range": "day"}
    assert client.get("/api/map/series", params=params).status_code == 404
    assert client.get("/api/map/series", params=params, headers=keys["operator"]).status_code == 404
    r = client.get("/api/map/series", params=params, headers=keys["security_officer"])
    assert r.status_code == 200 and r.json()["points"]


def test_coalescer_sends_each_datastream_at_most_once_a_second() -> None:
    c = map_live.Coalescer(interval=1.0, delay=0.2)
    c.add([1, 2], 0.0)
    assert c.due(0.1) == [] and c.wait(0.1) == pytest.approx(0.1)
    assert c.due(0.2) == [1, 2]
    c.add([1], 0.3)
    assert c.due(0.6) == [] and c.wait(0.6) == pytest.approx(0.6)
    c.add([1, 3], 0.7)
    assert c.due(0.9) == [3]
    assert c.due(1.2) == [1] and c.wait(1.2) is None


def test_notify_payloads_are_chunked_under_the_limit() -> None:
    pieces = live.chunks({"kind": "observations", "layer": "sensors"}, "ids", list(range(1, 5001)))
    assert len(pieces) > 1
    assert all(len(json.dumps(p, separators=(",", ":")).encode()) < live.MAX_PAYLOAD for p in pieces)
    assert [i for p in pieces for i in p["ids"]] == list(range(1, 5001))
