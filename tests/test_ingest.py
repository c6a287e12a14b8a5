"""MQTT ingest end to end: a real broker (GEOIOC_MQTT_URL, default 127.0.0.1:1883), real PostGIS.

Each test publishes on topics of its own (a unique prefix and share group) to stations of its
own (sensors rows made here, their datastreams made by the trigger of migration 0020, deleted
with everything they have at the end), so neither the sample nor another user of the broker
sees anything of it.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gis.sensors import mqtt as broker
from gis.sensors.ingest import IngestWorker
from gis.settings import get_settings

T0 = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=3)


def _iso(t: dt.datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


@pytest.fixture
def tag() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def prefix(tag: str) -> str:
    return f"test-{tag}/"


@pytest.fixture
def stations(conn: psycopg.Connection[Any]) -> Iterator[list[int]]:
    """Two stations of this test (a PM2.5 and a water pH probe): their datastreams' ids."""
    codes = [f"AIR-9{random.randrange(100000):05d}", f"WAT-9{random.randrange(100000):05d}"]
    ids = [conn.execute(
        "INSERT INTO sensors (code, name, kind, parameter, unit, threshold, status, geom) VALUES"
        " (%s, 'Trạm thử', %s, %s, %s, 50, 'online', ST_SetSRID(ST_MakePoint(106.07, 21.18), 4326))"
        " RETURNING id", (code, kind, param, unit)).fetchone()[0]
        for code, kind, param, unit in zip(codes, ("air", "water"), ("pm25", "ph"), ("µg/m³", "pH"),
                                           strict=True)]
    ds = [conn.execute("SELECT id FROM datastreams WHERE thing_id = %s", (i,)).fetchone()[0]
          for i in ids]
    yield ds
    conn.execute("DELETE FROM sensors WHERE id = ANY(%s)", (ids,))


class Workers:
    """Ingest workers of one test: same prefix and share group; stopped at the end."""

    def __init__(self, prefix: str, tag: str) -> None:
        self.prefix, self.tag, self.started = prefix, tag, []

    def start(self, name: str = "a", batch_max: int | None = None) -> IngestWorker:
        w = IngestWorker(client_id=f"test-{self.tag}-{name}", topic_prefix=self.prefix,
                         share_group=f"test-{self.tag}", batch_max=batch_max).start()
        self.started.append(w)
        return w

    def stop_all(self) -> None:
        for w in self.started:
            if w._thread is not None and w._thread.is_alive():
                w.stop()


@pytest.fixture
def workers(prefix: str, tag: str) -> Iterator[Workers]:
    ws = Workers(prefix, tag)
    yield ws
    ws.stop_all()


class Publisher:
    def __init__(self, prefix: str) -> None:
        url = broker.parse_url(get_settings().mqtt_url)
        self.prefix = prefix
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        if url.username:
            self.c.username_pw_set(url.username, url.password)
        self.c.connect(url.host, url.port)
        self.c.loop_start()
        self.pending: list[mqtt.MQTTMessageInfo] = []

    def raw(self, topic: str, payload: bytes | str) -> None:
        self.pending.append(self.c.publish(self.prefix + topic, payload, qos=1))

    def sta(self, ds: int, obj: dict[str, Any]) -> None:
        self.raw(f"v1.1/Datastreams({ds})/Observations", json.dumps(obj))

    def gateway(self, rows: list[list[Any]], gw: str = "gw1") -> None:
        self.raw(f"geoioc/v1/gateways/{gw}/observations", json.dumps(rows))

    def flush(self) -> None:
        """Every message so far acknowledged by the broker (QoS 1)."""
        for info in self.pending:
            info.wait_for_publish(10)
            assert info.is_published()
        self.pending.clear()

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


@pytest.fixture
def pub(prefix: str) -> Iterator[Publisher]:
    p = Publisher(prefix)
    yield p
    p.close()


def figures(conn: psycopg.Connection[Any], *workers: IngestWorker) -> dict[str, Any]:
    rows = conn.execute(
        "SELECT sum(messages), sum(received), sum(stored), sum(duplicates), sum(rejected),"
        " sum(acknowledged) FROM ingest_workers WHERE worker_id = ANY(%s)",
        ([w.worker_id for w in workers],)).fetchone()
    keys = ("messages", "received", "stored", "duplicates", "rejected", "acknowledged")
    return {k: int(v or 0) for k, v in zip(keys, rows, strict=True)}


def wait_for(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.1)


def stored_count(conn: psycopg.Connection[Any], ds: list[int]) -> int:
    return int(conn.execute("SELECT count(*) FROM observations WHERE datastream_id = ANY(%s)",
                            (ds,)).fetchone()[0])


def assert_rollups_match_raw(conn: psycopg.Connection[Any], ds: list[int]) -> None:
    """observation_hourly and observation_daily equal the aggregates of the raw rows, and
    datastream_latest their latest row and counts."""
    for table, bucket in (("observation_hourly", "date_trunc('hour', phenomenon_time, 'UTC')"),
                          ("observation_daily", "geoioc_vn_day(phenomenon_time)")):
        raw = conn.execute(
            f"SELECT datastream_id, {bucket} AS b, count(*), round(sum(result)::numeric, 6),"  # noqa: S608
            " min(result), max(result), min(phenomenon_time),"
            " (array_agg(result ORDER BY phenomenon_time))[1], max(phenomenon_time),"
            " (array_agg(result ORDER BY phenomenon_time DESC))[1]"
            " FROM observations WHERE datastream_id = ANY(%s) AND result IS NOT NULL"
            " GROUP BY 1, 2 ORDER BY 1, 2", (ds,)).fetchall()
        rolled = conn.execute(
            f"SELECT datastream_id, bucket, n, round(sum::numeric, 6), min, max, first_time,"  # noqa: S608
            f" first_result, last_time, last_result FROM {table}"
            " WHERE datastream_id = ANY(%s) ORDER BY 1, 2", (ds,)).fetchall()
        assert rolled == raw, table
    latest = conn.execute(
        "SELECT datastream_id, phenomenon_time, result, observations, phenomenon_time_start"
        " FROM datastream_latest WHERE datastream_id = ANY(%s) ORDER BY 1", (ds,)).fetchall()
    raw_latest = conn.execute(
        "SELECT DISTINCT ON (datastream_id) datastream_id, phenomenon_time, result,"
        " count(*) OVER w, min(phenomenon_time) OVER w FROM observations"
        " WHERE datastream_id = ANY(%s) WINDOW w AS (PARTITION BY datastream_id)"
        " ORDER BY datastream_id, phenomenon_time DESC", (ds,)).fetchall()
    assert latest == raw_latest


def test_published_observations_are_stored_latest_and_rolled_up(conn, stations, workers, pub, client):
    w = workers.start()
    air, water = stations
    # 3 hours of PM2.5 every 10 minutes over STA topics (one in Vietnam time), pH from a gateway.
    for i in range(18):
        t = T0 + dt.timedelta(minutes=10 * i)
        stamp = t.astimezone(dt.timezone(dt.timedelta(hours=7))).isoformat() if i == 5 else _iso(t)
        pub.sta(air, {"phenomenonTime": stamp, "result": 20 + i, "resultTime": _iso(t)})
    pub.gateway([[water, _iso(T0 + dt.timedelta(minutes=m)), 7.0 + m / 100] for m in range(0, 180, 30)])
    pub.sta(water, {"phenomenonTime": _iso(T0 + dt.timedelta(minutes=7)), "result": "đục"})
    pub.flush()
    wait_for(lambda: figures(conn, w)["received"] == 25)
    f = figures(conn, w)
    assert (f["messages"], f["stored"], f["duplicates"], f["rejected"]) == (20, 25, 0, 0)
    wait_for(lambda: figures(conn, w)["acknowledged"] == 20)  # acknowledged after the commit
    assert stored_count(conn, stations) == 25
    row = conn.execute("SELECT result, result_time, feature_of_interest_id FROM observations"
                       " WHERE datastream_id = %s AND phenomenon_time = %s",
                       (air, T0 + dt.timedelta(minutes=50))).fetchone()
    foi = conn.execute("SELECT l.feature_of_interest_id FROM thing_locations l JOIN datastreams d"
                       " ON d.thing_id = l.thing_id WHERE d.id = %s", (air,)).fetchone()[0]
    assert row == (25.0, T0 + dt.timedelta(minutes=50), foi)
    text = conn.execute("SELECT result, result_json FROM observations WHERE datastream_id = %s"
                        " AND phenomenon_time = %s", (water, T0 + dt.timedelta(minutes=7))).fetchone()
    assert text == (None, "đục")
    latest = conn.execute("SELECT result, phenomenon_time, observations FROM datastream_latest"
                          " WHERE datastream_id = %s", (air,)).fetchone()
    assert latest == (37.0, T0 + dt.timedelta(minutes=170), 18)
    assert conn.execute("SELECT array_agg(n ORDER BY bucket) FROM observation_hourly"
                        " WHERE datastream_id = %s", (air,)).fetchone()[0] == [6, 6, 6]
    assert_rollups_match_raw(conn, stations)
    # The map shows the station's latest reading from datastream_latest.
    thing = conn.execute("SELECT thing_id FROM datastreams WHERE id = %s", (air,)).fetchone()[0]
    feature = next(f for f in client.get("/api/map/sensors").json()["features"] if f["id"] == thing)
    assert feature["properties"]["latest_value"] == 37.0


def test_redelivery_stores_nothing_twice(conn, stations, workers, pub):
    w = workers.start()
    air, _ = stations
    obs = {"phenomenonTime": _iso(T0), "result": 42.5}
    pub.sta(air, obs)
    pub.sta(air, obs)  # the same message again, as a sender that lost the PUBACK resends it
    pub.gateway([[air, _iso(T0), 42.5], [air, _iso(T0 + dt.timedelta(seconds=1)), 43]])
    pub.flush()
    wait_for(lambda: figures(conn, w)["received"] == 4)
    f = figures(conn, w)
    assert (f["stored"], f["duplicates"], f["rejected"]) == (2, 2, 0)
    assert stored_count(conn, [air]) == 2
    hourly = conn.execute("SELECT n, sum FROM observation_hourly WHERE datastream_id = %s",
                          (air,)).fetchone()
    assert hourly == (2, 85.5)
    assert conn.execute("SELECT observations FROM datastream_latest WHERE datastream_id = %s",
                        (air,)).fetchone()[0] == 2
    assert_rollups_match_raw(conn, [air])


def test_worker_killed_mid_stream_loses_nothing(conn, stations, workers, pub):
    """A worker crashes (no acknowledgement, its transaction lost) in the middle of a stream and
    comes back under its client id: every observation the broker acknowledged to the publisher
    is stored once, and the rollups count each once."""
    air, water = stations
    w1 = workers.start("a", batch_max=40)
    n_messages, per_message = 300, 10
    done = threading.Event()

    def publish() -> None:
        for i in range(n_messages):
            t = T0 + dt.timedelta(seconds=per_message * i)
            pub.gateway([[air if k % 2 else water, _iso(t + dt.timedelta(seconds=k)), i + k / 10]
                         for k in range(per_message)])
            if i % 20 == 0:
                time.sleep(0.02)
        pub.flush()
        done.set()

    sender = threading.Thread(target=publish)
    sender.start()
    wait_for(lambda: figures(conn, w1)["stored"] >= 600)
    w1.kill()
    killed_at = figures(conn, w1)
    time.sleep(0.5)
    w2 = workers.start("a", batch_max=40)  # the same client id: the session resumes
    sender.join(60)
    assert done.is_set()
    total = n_messages * per_message
    wait_for(lambda: stored_count(conn, stations) == total, timeout=60)
    wait_for(lambda: figures(conn, w1, w2)["received"] - figures(conn, w1, w2)["duplicates"]
             == total, timeout=30)
    f = figures(conn, w1, w2)
    assert f["stored"] == total and f["rejected"] == 0
    assert killed_at["stored"] < total  # the kill came mid-stream
    assert stored_count(conn, stations) == total
    assert_rollups_match_raw(conn, stations)
    assert conn.execute("SELECT sum(n) FROM observation_hourly WHERE datastream_id = ANY(%s)",
                        (stations,)).fetchone()[0] == total


def test_shared_subscription_splits_the_load(conn, stations, workers, pub):
    a, b = workers.start("a"), workers.start("b")
    air, _ = stations
    for i in range(200):
        pub.sta(air, {"phenomenonTime": _iso(T0 + dt.timedelta(seconds=i)), "result": i})
    pub.flush()
    wait_for(lambda: figures(conn, a, b)["stored"] == 200)
    fa, fb = figures(conn, a), figures(conn, b)
    assert fa["messages"] > 0 and fb["messages"] > 0 and fa["messages"] + fb["messages"] == 200
    assert_rollups_match_raw(conn, [air])


def test_rejected_messages_are_counted_with_reasons(conn, stations, workers, pub, client):
    w = workers.start()
    air, _ = stations
    pub.raw(f"v1.1/Datastreams({air})/Observations", b"{not json")
    pub.raw("v1.1/Things(1)/Observations", json.dumps({"result": 1}))
    pub.sta(air, {"phenomenonTime": _iso(T0)})  # no result
    pub.sta(air, {"phenomenonTime": "2026-12-03 10:00", "result": 1})  # no UTC offset
    pub.sta(air, {"phenomenonTime": "1990-01-01T00:00:00Z", "result": 1})
    pub.sta(air, {"phenomenonTime": _iso(T0), "result": 1, "parameters": [1]})
    pub.sta(2097151, {"phenomenonTime": _iso(T0), "result": 1})  # no such datastream
    pub.gateway([[air, _iso(T0), 1], [0, _iso(T0), 1], "x"])  # one stored, two refused
    pub.raw("geoioc/v1/gateways/gw1/observations", f'[[{air}, "{_iso(T0)}", 1e999]]')
    pub.sta(air, {"phenomenonTime": _iso(T0 + dt.timedelta(seconds=1)), "result": 2,
                  "FeatureOfInterest": {"@iot.id": 2 ** 40}})  # no such feature: the database says so
    pub.flush()
    wait_for(lambda: figures(conn, w)["received"] == 12)
    reasons = conn.execute("SELECT rejected_reasons FROM ingest_workers WHERE worker_id = %s",
                           (w.worker_id,)).fetchone()[0]
    assert reasons == {"not_json": 2, "bad_topic": 1, "missing_result": 1, "bad_time": 1,
                       "time_out_of_range": 1, "bad_parameters": 1, "unknown_datastream": 1,
                       "bad_datastream": 1, "bad_shape": 1, "refused_by_database": 1}
    f = figures(conn, w)
    assert (f["stored"], f["rejected"], f["duplicates"]) == (1, 11, 0)
    wait_for(lambda: figures(conn, w)["acknowledged"] == 10)  # refused messages are not resent
    assert w._thread is not None and w._thread.is_alive()
    body = client.get("/healthz/ingest").json()
    mine = next(x for x in body["workers"] if x["worker_id"] == w.worker_id)
    assert mine["state"] == "running" and mine["rejected_reasons"] == reasons
    assert mine["unaccounted"] == 0 and mine["received"] == 12
    assert set(reasons) <= set(body["reasons"])


def test_partitions_created_ahead_backfilled_and_detached(conn, stations, workers, pub):
    from gis.jobs.queue import app
    from gis.sensors.partitions import ensure_ahead

    app.perform_import_paths()  # type: ignore[no-untyped-call]
    assert "sensors.partitions_ahead" in app.tasks
    assert any(p.task.name == "sensors.partitions_ahead"
               for p in app.periodic_registry.periodic_tasks.values())
    ensure_ahead()
    ahead = get_settings().observation_partitions_ahead
    month = dt.date.today().replace(day=1)
    want = []
    for _ in range(ahead + 1):
        want.append(month)
        month = (month + dt.timedelta(days=32)).replace(day=1)
    for parent in ("observations", "observation_hourly"):
        have = {r[0] for r in conn.execute(
            "SELECT month FROM observation_partitions WHERE parent = %s AND attached", (parent,))}
        assert set(want) <= have, parent
    # A back-filled month gets its partition from the worker; a detached month is refused.
    air, _ = stations
    old = dt.datetime(dt.date.today().year - 2, 3, 15, tzinfo=dt.UTC)
    archived = dt.datetime(dt.date.today().year - 9, 1, 10, tzinfo=dt.UTC)
    with conn.transaction():
        conn.execute("SELECT observations_create_partitions(%s, %s)", (archived.date(), archived.date()))
        detached = conn.execute("SELECT observations_detach_partitions('observations', %s)",
                                (archived.date().replace(month=2, day=1),)).fetchall()
    assert detached == [(f"observations_y{archived.year}m01",)]
    try:
        w = workers.start()
        pub.sta(air, {"phenomenonTime": _iso(old), "result": 5})
        pub.sta(air, {"phenomenonTime": _iso(archived), "result": 6})
        pub.flush()
        wait_for(lambda: figures(conn, w)["received"] == 2)
        assert figures(conn, w)["stored"] == 1
        assert conn.execute("SELECT rejected_reasons FROM ingest_workers WHERE worker_id = %s",
                            (w.worker_id,)).fetchone()[0] == {"archived_period": 1}
        assert conn.execute("SELECT attached FROM observation_partitions WHERE name = %s",
                            (f"observations_y{old.year}m03",)).fetchone() == (True,)
    finally:
        for t in (f"observations_y{archived.year}m01", f"observation_hourly_y{archived.year}m01"):
            conn.execute(f"DROP TABLE IF EXISTS {t}")


def test_sta_observation_id_round_trips(conn):
    t = dt.datetime(2026, 12, 3, 8, 15, 30, 123000, tzinfo=dt.UTC)
    oid = conn.execute("SELECT sta_observation_id(2097151, %s)", (t,)).fetchone()[0]
    assert oid > 0
    assert conn.execute("SELECT * FROM sta_observation_key(%s)", (oid,)).fetchone() == (2097151, t)


def test_serve_runs_an_ingest_worker(conn, stations, prefix, tag, pub):
    """`geoioc serve`'s app starts a worker in its process (setting ingest_in_process) and stops
    it with the app; it stores what is published and reports in /healthz/ingest."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from gis.sensors import service

    settings = get_settings().model_copy(update={
        "ingest_in_process": True, "jobs_in_process": False, "mqtt_topic_prefix": prefix,
        "ingest_share_group": f"test-{tag}", "ingest_client_id": f"test-{tag}-serve"})
    air, _ = stations
    with TestClient(create_app(settings)) as c:
        wait_for(lambda: service.running() is not None and service.running()._connected.is_set())
        pub.sta(air, {"phenomenonTime": _iso(T0), "result": 12.5})
        pub.flush()
        wait_for(lambda: stored_count(conn, [air]) == 1)
        body = c.get("/healthz/ingest").json()
        mine = [w for w in body["workers"] if w["client_id"] == f"test-{tag}-serve"]
        assert mine and mine[0]["state"] == "running" and mine[0]["stored"] == 1
    assert service.running() is None
    assert conn.execute("SELECT stopped_at IS NOT NULL FROM ingest_workers WHERE client_id = %s",
                        (f"test-{tag}-serve",)).fetchone() == (True,)


def test_a_breach_published_over_mqtt_opens_one_alert(conn, stations, workers, pub):
    """The ingest evaluates the alert rules of what it stored (gis.sensors.alerts.evaluate):
    an hour of pH 3.0 from a river probe opens the QCVN 08:2023 pH alert and its incident,
    once, however many readings breach."""
    w = workers.start()
    _, water = stations
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    pub.gateway([[water, _iso(now - dt.timedelta(minutes=m)), 3.0] for m in range(0, 65, 5)])
    pub.flush()
    wait_for(lambda: figures(conn, w)["stored"] == 13)
    wait_for(lambda: conn.execute(
        "SELECT count(*) FROM sensor_alerts a JOIN alert_rules r ON r.id = a.rule_id"
        " WHERE a.datastream_id = %s AND r.code = 'qcvn08-ph'", (water,)).fetchone()[0] > 0)
    rows = conn.execute(
        "SELECT r.code, a.incident_id FROM sensor_alerts a JOIN alert_rules r ON r.id = a.rule_id"
        " WHERE a.datastream_id = %s", (water,)).fetchall()
    try:
        assert [r[0] for r in rows].count("qcvn08-ph") == 1
        incident = next(r[1] for r in rows if r[0] == "qcvn08-ph")
        assert incident is not None
        source, category = conn.execute("SELECT source, category FROM incidents WHERE id = %s",
                                        (incident,)).fetchone()
        assert (source, category) == ("sensor", "environment")
    finally:
        conn.execute("DELETE FROM incidents WHERE id = ANY(%s)",
                     ([r[1] for r in rows if r[1] is not None],))
