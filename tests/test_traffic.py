"""Road traffic (issue 16, migration 0024): road segments are SensorThings Things with speed and
flow datastreams; a speed published over MQTT through the real broker, stored by a real ingest
worker, changes the segment's congestion class in the roads layer (OGC items, vector tiles) and
announces it on channel geoioc_live; stale live states become 'unknown'; the simulator's rush
hours; STA serves road Things like stations.

Segments of these tests are roads rows made here (the trigger gives a trunk road its Thing and
datastreams) and deleted at the end with all they have, so the sample's roads stay as they were.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import select
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import mapbox_vector_tile
import numpy as np
import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gis.sensors import mqtt as broker
from gis.sensors import simulate, traffic
from gis.sensors.ingest import IngestWorker
from gis.settings import get_settings
from layers.catalogue import TRAFFIC_STATES, get_layer

STA = "/sta/v1.1"
LINE = "LINESTRING(106.0701 21.1801, 106.0745 21.1822, 106.0790 21.1840)"


def wait_for(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (got := check()):
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.1)
    return got


@pytest.fixture
def segment(conn: psycopg.Connection[Any]) -> Iterator[dict[str, int]]:
    """A trunk road segment of this test (free-flow speed 80 km/h, static state 'free'): its
    id, its Thing's and its speed and flow datastreams' ids."""
    road = conn.execute(
        "INSERT INTO roads (name, road_class, lanes, max_speed, free_flow_speed, traffic_state,"
        " traffic_at, geom) VALUES ('Quốc lộ thử', 'trunk', 4, 90, 80, 'free', now() - interval"
        " '1 day', ST_GeomFromText(%s, 4326)) RETURNING id", (LINE,)).fetchone()[0]
    thing = conn.execute("SELECT id FROM things WHERE road_id = %s", (road,)).fetchone()[0]
    ds = dict(conn.execute(
        "SELECT p.code, d.id FROM datastreams d JOIN observed_properties p"
        " ON p.id = d.observed_property_id WHERE d.thing_id = %s", (thing,)).fetchall())
    yield {"road": road, "thing": thing, "speed": ds["traffic_speed"], "flow": ds["traffic_flow"]}
    conn.execute("DELETE FROM roads WHERE id = %s", (road,))


class Listener:
    """A LISTEN on geoioc_live of its own connection: the congestion events received."""

    def __init__(self, url: str) -> None:
        self.c = psycopg.connect(url, autocommit=True)
        self.c.execute("LISTEN geoioc_live")

    def events(self, wait: float = 0.0) -> list[dict[str, Any]]:
        out = []
        deadline = time.monotonic() + wait
        while True:
            for n in self.c.notifies(timeout=0, stop_after=1000):
                out.append(json.loads(n.payload))
            left = deadline - time.monotonic()
            if left <= 0:
                return out
            select.select([self.c.fileno()], [], [], min(left, 0.1))

    def segments(self, road: int, wait: float = 0.0) -> list[list[Any]]:
        """The [road, class, ratio] entries of ROAD in the congestion events received."""
        return [s for e in self.events(wait) if e["kind"] == "congestion"
                for s in e["segments"] if s[0] == road]

    def close(self) -> None:
        self.c.close()


@pytest.fixture
def listener(db_url: str) -> Iterator[Listener]:
    lis = Listener(db_url)
    yield lis
    lis.close()


class Publisher:
    def __init__(self, prefix: str) -> None:
        url = broker.parse_url(get_settings().mqtt_url)
        self.prefix = prefix
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        if url.username:
            self.c.username_pw_set(url.username, url.password)
        self.c.connect(url.host, url.port)
        self.c.loop_start()

    def speed(self, ds: int, at: dt.datetime, kmh: float) -> None:
        info = self.c.publish(f"{self.prefix}v1.1/Datastreams({ds})/Observations", json.dumps(
            {"phenomenonTime": at.isoformat(), "result": kmh}), qos=1)
        info.wait_for_publish(10)
        assert info.is_published()

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


@pytest.fixture
def ingest() -> Iterator[Publisher]:
    """A real ingest worker and a publisher on topics of this test's own."""
    tag = uuid.uuid4().hex[:10]
    prefix = f"test-{tag}/"
    worker = IngestWorker(client_id=f"test-{tag}-traffic", topic_prefix=prefix,
                          share_group=f"test-{tag}").start()
    pub = Publisher(prefix)
    yield pub
    pub.close()
    worker.stop()


def _road(conn: psycopg.Connection[Any], road: int) -> tuple[str, float | None, dt.datetime]:
    return conn.execute("SELECT traffic_state, speed_ratio, traffic_at FROM roads WHERE id = %s",
                        (road,)).fetchone()


def _stored(conn: psycopg.Connection[Any], ds: int) -> int:
    return conn.execute("SELECT count(*) FROM observations WHERE datastream_id = %s",
                        (ds,)).fetchone()[0]


def _tile_props(client: Any, road: int, z: int = 15) -> dict[str, Any]:
    """The segment's attributes in the roads tile over its middle (the server's tile cache
    emptied first: the test wants this instant's state, not the minute's)."""
    from api.ogc.tiles import CACHE

    lon, lat = 106.0745, 21.1822
    n = 1 << z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    CACHE.clear()
    r = client.get(f"/ogc/collections/roads/tiles/WebMercatorQuad/{z}/{y}/{x}")
    assert r.status_code == 200
    [f] = [f for f in mapbox_vector_tile.decode(r.content)["roads"]["features"] if f["id"] == road]
    return f["properties"]


# --- thresholds -----------------------------------------------------------------------------------
def test_congestion_classes_are_data_with_documented_thresholds(conn):
    assert traffic.congestion_classes(conn) == [("free", 0.75), ("moderate", 0.5),
                                                ("heavy", 0.25), ("jammed", 0.0)]
    assert traffic.classify(conn, [1.3, 1.0, 0.75, 0.7499, 0.5, 0.4999, 0.25, 0.2499, 0.0]) == [
        "free", "free", "free", "moderate", "moderate", "heavy", "heavy", "jammed", "jammed"]
    # The layer knows every class, 'unknown' too, each with a colour and a Vietnamese label first.
    roads = get_layer("roads")
    assert set(roads.style.palette) == set(TRAFFIC_STATES) == {
        c for c, _ in traffic.congestion_classes(conn)} | {"unknown"}
    assert TRAFFIC_STATES["jammed"][0].startswith("Tắc nghẽn")


def test_main_road_segments_are_things_with_speed_and_flow(conn):
    """Every expressway, trunk and primary segment, and only those, has its Thing, a Location
    that is its line, and exactly a speed and a flow datastream, public like the roads layer."""
    rows = conn.execute(
        "SELECT r.road_class, count(DISTINCT t.id), count(d.id),"
        " count(*) FILTER (WHERE d.access = 'public'),"
        " count(DISTINCT t.id) FILTER (WHERE ST_Equals(l.geom, r.geom))"
        " FROM roads r LEFT JOIN things t ON t.road_id = r.id"
        " LEFT JOIN datastreams d ON d.thing_id = t.id"
        " LEFT JOIN thing_locations l ON l.thing_id = t.id"
        " GROUP BY 1").fetchall()
    n = dict(conn.execute("SELECT road_class, count(*) FROM roads GROUP BY 1").fetchall())
    for cls, things, datastreams, public, located in rows:
        main = cls in ("expressway", "trunk", "primary")
        assert things == (n[cls] if main else 0), cls
        assert datastreams == public == 2 * things and located == things, cls
    assert conn.execute(
        "SELECT count(*) FROM datastreams d JOIN things t ON t.id = d.thing_id"
        " JOIN observed_properties p ON p.id = d.observed_property_id"
        " WHERE t.road_id IS NOT NULL AND p.code NOT IN ('traffic_speed', 'traffic_flow')"
    ).fetchone()[0] == 0
    # Stations keep their Things' ids (those of their sensors rows); road Things take others.
    assert conn.execute("SELECT count(*) FROM things WHERE sensor_id IS NOT NULL AND id <> sensor_id"
                        ).fetchone()[0] == 0


# --- live congestion end to end ------------------------------------------------------------------
def test_a_speed_over_mqtt_recolours_its_segment_and_is_announced(conn, client, segment, listener,
                                                                 ingest):
    road, speed = segment["road"], segment["speed"]
    t1 = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=5)
    listener.events()  # nothing before

    # 16 km/h on an 80 km/h segment: ratio 0.2, jammed.
    ingest.speed(speed, t1, 16.0)
    wait_for(lambda: _road(conn, road)[1] is not None)
    assert _road(conn, road) == ("jammed", pytest.approx(0.2), t1)
    assert _stored(conn, speed) == 1
    assert listener.segments(road, wait=2) == [[road, "jammed", pytest.approx(0.2)]]
    # What the roads layer serves: OGC items and vector tiles carry the live state.
    item = client.get(f"/ogc/collections/roads/items/{road}", params={"f": "json"}).json()
    assert item["properties"]["traffic_state"] == "jammed"
    assert item["properties"]["speed_ratio"] == pytest.approx(0.2)
    assert item["properties"]["free_flow_speed"] == 80
    props = _tile_props(client, road)
    assert props["traffic_state"] == "jammed" and props["speed_ratio"] == pytest.approx(0.2)

    # 44 km/h a minute later: 0.55, moderate; announced.
    ingest.speed(speed, t1 + dt.timedelta(minutes=1), 44.0)
    wait_for(lambda: _road(conn, road)[0] == "moderate")
    assert listener.segments(road, wait=2) == [[road, "moderate", pytest.approx(0.55)]]
    # 50 km/h: still moderate, the ratio follows, nothing announced (the class did not change).
    ingest.speed(speed, t1 + dt.timedelta(minutes=2), 50.0)
    wait_for(lambda: _road(conn, road)[1] == pytest.approx(0.625))
    assert listener.segments(road, wait=1) == []
    # An older reading arriving late is stored but does not turn the clock back.
    ingest.speed(speed, t1 - dt.timedelta(minutes=1), 79.0)
    wait_for(lambda: _stored(conn, speed) == 4)
    assert _road(conn, road)[:2] == ("moderate", pytest.approx(0.625))
    # A back-filled reading older than the staleness period neither: stored, not live.
    ingest.speed(speed, t1 + dt.timedelta(minutes=3) - dt.timedelta(hours=2), 5.0)
    wait_for(lambda: _stored(conn, speed) == 5)
    assert _road(conn, road)[0] == "moderate" and listener.segments(road, wait=1) == []
    assert _tile_props(client, road)["traffic_state"] == "moderate"

    # The rollups of the segment's speed still equal the aggregates of its raw rows.
    hourly = conn.execute(
        "SELECT bucket, n, sum, min, max FROM observation_hourly WHERE datastream_id = %s"
        " ORDER BY bucket", (speed,)).fetchall()
    raw = conn.execute(
        "SELECT date_trunc('hour', phenomenon_time, 'UTC'), count(*), sum(result), min(result),"
        " max(result) FROM observations WHERE datastream_id = %s GROUP BY 1 ORDER BY 1",
        (speed,)).fetchall()
    assert hourly == raw


def test_the_staleness_sweep_is_a_periodic_job() -> None:
    from gis.jobs import queue
    from gis.sensors import traffic_jobs

    assert "gis.sensors.traffic_jobs" in queue.TASK_MODULES
    assert traffic_jobs.traffic_sweep.name == "sensors.traffic_sweep"
    periodic = {t.task.name for t in queue.app.periodic_registry.periodic_tasks.values()}
    assert "sensors.traffic_sweep" in periodic


def test_stale_live_states_become_unknown_and_static_ones_stay(conn, segment, listener):
    road = segment["road"]
    conn.execute("UPDATE roads SET traffic_state = 'heavy', speed_ratio = 0.3,"
                 " traffic_at = now() - interval '31 minutes' WHERE id = %s", (road,))
    static = conn.execute("SELECT count(*) FROM roads WHERE speed_ratio IS NULL"
                          " AND traffic_state <> 'unknown'").fetchone()[0]
    assert traffic.sweep(conn) >= 1
    assert _road(conn, road)[:2] == ("unknown", None)
    assert listener.segments(road, wait=2) == [[road, "unknown", None]]
    assert conn.execute("SELECT count(*) FROM roads WHERE speed_ratio IS NULL"
                        " AND traffic_state <> 'unknown'").fetchone()[0] == static
    # A fresh live state is kept.
    conn.execute("UPDATE roads SET traffic_state = 'heavy', speed_ratio = 0.3,"
                 " traffic_at = now() - interval '29 minutes' WHERE id = %s", (road,))
    traffic.sweep(conn)
    assert _road(conn, road)[:2] == ("heavy", pytest.approx(0.3))


def test_a_batch_announces_in_chunks_under_the_payload_limit(conn, db_url, listener):
    """Many segments changing in one batch: several NOTIFYs, each under 7,000 bytes, every
    segment once (the ingest's statement, run here on segments of this test)."""
    from gis.sensors import queries

    roads = [r[0] for r in conn.execute(
        "INSERT INTO roads (road_class, lanes, max_speed, traffic_state, geom)"
        " SELECT 'primary', 2, 60, 'free', ST_Translate(ST_GeomFromText(%s, 4326), 0, i * 0.001)"
        " FROM generate_series(1, 450) i RETURNING id", (LINE,)).fetchall()]
    try:
        at = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=1)
        with psycopg.connect(db_url) as c:
            queries.prepare(c)
            with c.cursor() as cur, cur.copy(queries.COPY_STAGING) as cp:
                for (ds,) in conn.execute(
                        "SELECT d.id FROM datastreams d JOIN things t ON t.id = d.thing_id"
                        " JOIN observed_properties p ON p.id = d.observed_property_id"
                        " WHERE t.road_id = ANY(%s) AND p.code = 'traffic_speed'", (roads,)):
                    cp.write_row((ds, at, None, 6.0, None, at, None, None))
            stored, unknown, announced, _ = c.execute(queries.STORE).fetchone()
        assert (stored, unknown, announced) == (450, 0, 3)
        events = [e for e in listener.events(wait=2) if e["kind"] == "congestion"]
        got = [s for e in events for s in e["segments"] if s[0] in set(roads)]
        assert sorted(s[0] for s in got) == roads and {s[1] for s in got} == {"jammed"}
        assert all(len(json.dumps(e)) < 7000 and e["layer"] == "roads" for e in events)
    finally:
        conn.execute("DELETE FROM roads WHERE id = ANY(%s)", (roads,))


# --- the simulator's rush hours ----------------------------------------------------------------
def test_the_simulator_has_rush_hours_and_jams_on_main_roads(conn):
    n = 60
    ids = list(range(1, 2 * n + 1))
    props = ["traffic_speed", "traffic_flow"] * n
    stations = [1000 + i // 2 for i in range(2 * n)]
    free = [float(80 if i % 3 else 60) for i in range(2 * n)]
    streams = simulate.Streams.of(ids, props, stations, free)
    t = simulate.grid(1.7e9, 1.7e9 + 14 * 86400, 600)
    v = simulate.values(streams, t, 7)
    assert v.shape == (2 * n, len(t)) and not np.isnan(v).any()
    speed, flow = v[0::2], v[1::2]
    ratio = speed / np.asarray(free[0::2])[:, None]
    h = simulate.local_hour(t)
    morning, evening = (h >= 7) & (h < 9), (h >= 17) & (h < 19)
    off = (h >= 10) & (h < 15)
    night = (h >= 0) & (h < 5)
    assert ratio[:, morning].mean() < 0.75 * ratio[:, off].mean()
    assert ratio[:, evening].mean() < 0.8 * ratio[:, off].mean()
    assert flow[:, morning].mean() > 1.1 * flow[:, off].mean() > 2 * flow[:, night].mean()
    # Off-peak every segment flows freely; at the morning peak some segments jam, not all.
    assert traffic.classify(conn, [float(np.median(ratio[:, off]))]) == ["free"]
    peak = (h >= 7.5) & (h < 8)
    worst = ratio[:, peak].mean(axis=1)
    classes = traffic.classify(conn, worst.tolist())
    assert 0.08 < classes.count("jammed") / n < 0.45
    assert {"moderate", "heavy"} & set(classes)


# --- SensorThings: road Things served like stations --------------------------------------------
def test_sta_road_thing_with_location_datastreams_and_expand(client, segment):
    road, thing = segment["road"], segment["thing"]
    body = client.get(f"{STA}/Things({thing})", params={
        "$expand": "Locations,Datastreams($orderby=id;$expand=ObservedProperty,Sensor)"}).json()
    assert body["name"] == f"Quốc lộ thử – đoạn {road}"
    assert body["properties"]["kind"] == "road_segment" and body["properties"]["road_id"] == road
    assert body["properties"]["free_flow_speed"] == 80
    [loc] = body["Locations"]
    assert loc["location"]["type"] == "LineString" and len(loc["location"]["coordinates"]) == 3
    ds = body["Datastreams"]
    assert [d["@iot.id"] for d in ds] == sorted([segment["speed"], segment["flow"]])
    assert {d["ObservedProperty"]["properties"]["code"] for d in ds} == {"traffic_speed",
                                                                         "traffic_flow"}
    assert {d["Sensor"]["name"] for d in ds} == {"Thiết bị đo tốc độ và lưu lượng giao thông"}
    assert {d["unitOfMeasurement"]["symbol"] for d in ds} == {"km/h", "xe/h"}
    # Navigation both ways, and the filters STA clients use.
    back = client.get(f"{STA}/Datastreams({segment['speed']})/Thing").json()
    assert back["@iot.id"] == thing
    found = client.get(f"{STA}/Things", params={
        "$filter": "properties/kind eq 'road_segment' and st_intersects(Locations/location, "
                   "geography'POLYGON((106.074 21.181, 106.075 21.181, 106.075 21.183, "
                   "106.074 21.183, 106.074 21.181))')", "$select": "id"}).json()
    assert [t["@iot.id"] for t in found["value"]] == [thing]
    stations = client.get(f"{STA}/Things", params={
        "$filter": "properties/kind eq 'air'", "$top": "1000", "$select": "id"}).json()["value"]
    assert stations and thing not in {t["@iot.id"] for t in stations}


def test_sta_every_datastream_has_its_thing(client, conn):
    """Every Datastream, station's or road segment's, has a Thing reached by $expand."""
    want = conn.execute("SELECT count(*) FROM datastreams WHERE access = 'public'").fetchone()[0]
    seen: dict[int, int] = {}
    url: str | None = f"{STA}/Datastreams?$expand=Thing($select=id)&$select=id&$top=100"
    while url:
        body = client.get(url.replace("http://testserver", "")).json()
        for d in body["value"]:
            assert "Thing" in d and d["Thing"]["@iot.id"] > 0, d
            seen[d["@iot.id"]] = d["Thing"]["@iot.id"]
        url = body.get("@iot.nextLink")
        if url and "://" in url:
            url = url[url.index(STA):]
    assert len(seen) == want
    kinds = dict(conn.execute("SELECT t.road_id IS NOT NULL, count(*) FROM datastreams d JOIN things t"
                              " ON t.id = d.thing_id WHERE d.access = 'public' GROUP BY 1").fetchall())
    assert kinds.get(True, 0) > 0 and kinds.get(False, 0) > 0


def test_the_map_legend_of_roads_is_the_congestion_classes(client):
    """The map client colours roads by traffic_state from the tiles; its legend lists the
    classes with their bounds, Vietnamese first, and 'unknown' last."""
    body = client.get("/api/map/layers").json()
    roads = next(e for e in body["layers"] if e["id"] == "roads")
    legend = roads["legend"]
    assert {e["group"]["vi"] for e in legend} == {"Tình trạng giao thông"}
    assert [e["value"] for e in legend] == ["free", "moderate", "heavy", "jammed", "unknown"]
    assert [e["label"]["vi"] for e in legend] == [
        "Thông thoáng (≥ 75% tốc độ tự do)", "Đông (50–75%)", "Ùn ứ (25–50%)",
        "Tắc nghẽn (< 25%)", "Chưa có dữ liệu mới"]
    assert legend[3]["label"]["en"] == "Jammed (< 25%)"
    assert roads["style"]["by"] == "traffic_state"
    assert {e["value"]: e["color"] for e in legend} == roads["style"]["palette"]
    fields = {f["name"]: f for f in roads["fields"]}
    assert fields["speed_ratio"]["title"]["vi"] == "Tỷ lệ tốc độ / tốc độ tự do"
