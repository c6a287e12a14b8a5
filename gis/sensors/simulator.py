"""`geoioc simulate` at work: the simulated clock, and publishing the model's readings
(gis/sensors/simulate.py) to MQTT as a gateway would, on the compact topic
`geoioc/v1/gateways/simulator/observations` (gis/sensors/payloads.py), QoS 1.

The clock: observation times are a grid of `step` seconds from `start` (multiples of the step
since the epoch). Times in the past are back-filled as fast as `speed` (simulated seconds per
second; 0: no limit) and `rate` (observations per second, all datastreams together; 0: no limit)
allow; then the clock follows the wall clock, one grid time after the other: nothing is published
for a time still to come. It stops at `end` (None: never), or after one grid time (`once`: the
one at or just before `start`).

Camera and traffic datastreams are simulated like any other when there are some; when there are
none (road segments and cameras get theirs apart from the stations), the run says so once.

Cameras themselves (the `cameras` layer, not datastreams) send what real ones do
(gis/sensors/cameras.py), for grid times within LIVE_CAMERAS of the wall clock only (a back-fill
of heartbeats would only replay outages that are over): a heartbeat per camera and grid time
on `geoioc/cameras/<code>/heartbeat` unless it is in an outage (simulate.camera_heartbeats:
some go offline and come back, one is degraded throughout, reporting a low frame rate), and
now and then a detection on `geoioc/cameras/<code>/detections` (simulate.camera_detections,
some below the confidence threshold). `messages` counts the observations' messages only.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gis.sensors import mqtt as broker
from gis.sensors import simulate
from gis.settings import Settings

log = logging.getLogger("geoioc.simulate")

GATEWAY = "simulator"
MESSAGE_OBSERVATIONS = 1000  # per MQTT message (about 55 kB)
CHUNK_OBSERVATIONS = 20000   # computed at once


LIVE_CAMERAS = 600.0  # seconds: cameras speak for grid times this close to the wall clock


@dataclass(frozen=True)
class Cameras:
    """The cameras that send heartbeats: ids (the model's keys) and codes (their topics)."""

    ids: np.ndarray
    codes: list[str]

    @classmethod
    def of(cls, rows: list[tuple[int, str]]) -> Cameras:
        return cls(np.asarray([r[0] for r in rows], dtype=np.int64), [r[1] for r in rows])

    def __len__(self) -> int:
        return len(self.codes)


@dataclass
class Figures:
    """What a run did so far (for the progress display and the tests)."""

    observations: int = 0
    messages: int = 0
    heartbeats: int = 0
    detections: int = 0
    first: float | None = None  # simulated times (epoch seconds)
    last: float | None = None
    skipped: dict[str, int] = field(default_factory=dict)  # property: datastreams not modelled


def split(streams: simulate.Streams) -> tuple[simulate.Streams, dict[str, int]]:
    """The datastreams the model draws, and how many of each other property it leaves alone."""
    known = np.isin(streams.properties, simulate.MODELLED)
    other, counts = np.unique(streams.properties[~known], return_counts=True)
    return streams.select(known), dict(zip(other.tolist(), counts.tolist(), strict=True))


def describe(streams: simulate.Streams) -> list[str]:
    """Lines for the log: what is simulated, and what is not there to simulate (yet)."""
    lines = []
    for group, props in (("traffic (road segments)", simulate.TRAFFIC),
                         ("cameras", simulate.CAMERA)):
        n = int(np.isin(streams.properties, props).sum())
        lines.append(f"{group}: {n} datastreams" if n else
                     f"{group}: no datastream of {', '.join(props)} in this database, not simulated")
    return lines


def encode(streams: simulate.Streams, times: np.ndarray, values: np.ndarray) -> list[bytes]:
    """Gateway payloads [[datastream, time, result, resultTime], ...] of at most
    MESSAGE_OBSERVATIONS each, times major (a message is one moment of many stations, as a
    gateway forwards them). The result is produced at the phenomenon time (resultTime, as the
    sample's observations have it). Camera status is published as its text (STA category
    observation)."""
    stamps = np.char.add(np.char.add('"', np.datetime_as_string(times.astype("datetime64[s]"),
                                                               timezone="UTC")), '"')
    ti, si = np.nonzero(~np.isnan(values.T))
    vals = values.T[ti, si]
    res = vals.astype(str)  # the shortest repr, valid JSON (NaN and infinities never get here)
    cams = np.isin(streams.properties[si], simulate.CAMERA)
    if cams.any():
        res = res.astype(object)
        res[cams] = np.array([f'"{c}"' for c in simulate.CAMERA_STATUS])[vals[cams].astype(int)]
    # The items' JSON text built column-wise (numpy's string ufuncs), joined per message.
    items = np.char.add(np.char.add(np.char.add("[", streams.ids[si].astype(str)), ","), stamps[ti])
    items = np.char.add(np.char.add(np.char.add(items, ","), res.astype(str)), ",")
    items = np.char.add(np.char.add(items, stamps[ti]), "]").tolist()
    return [("[" + ",".join(items[i:i + MESSAGE_OBSERVATIONS]) + "]").encode()
            for i in range(0, len(items), MESSAGE_OBSERVATIONS)]


class Publisher:
    """One MQTT connection publishing with QoS 1; `flush` waits for the broker's acknowledgements."""

    def __init__(self, settings: Settings, client_id: str = "") -> None:
        url = broker.parse_url(settings.mqtt_url)
        self.topic = f"{settings.mqtt_topic_prefix}geoioc/v1/gateways/{GATEWAY}/observations"
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv5)
        if url.username:
            self.client.username_pw_set(url.username, url.password)
        if url.tls:
            self.client.tls_set()
        self.client.max_inflight_messages_set(100)
        try:
            self.client.connect(url.host, url.port, keepalive=30)
        except OSError as e:
            raise ConnectionError(f"cannot reach the MQTT broker at {url.host}:{url.port}: {e}") from None
        self.client.loop_start()
        self.pending: list[mqtt.MQTTMessageInfo] = []

        self.prefix = settings.mqtt_topic_prefix

    def publish(self, payload: bytes, topic: str | None = None) -> None:
        self.pending.append(self.client.publish(topic or self.topic, payload, qos=1))

    def camera_topic(self, code: str, kind: str) -> str:
        return f"{self.prefix}geoioc/cameras/{code}/{kind}"

    def flush(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        for info in self.pending:
            info.wait_for_publish(max(0.1, deadline - time.monotonic()))
            if not info.is_published():
                raise ConnectionError("the MQTT broker did not acknowledge the observations "
                                      f"within {timeout:.0f} s")
        self.pending.clear()

    def close(self) -> None:
        self.flush()
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class Clock:
    """The run's simulated time span and pace (see the module's docstring)."""

    start: float
    end: float | None = None
    step: float = 60.0
    speed: float = 0.0
    rate: float = 0.0
    once: bool = False


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat().replace("+00:00", "Z")


def publish_cameras(cams: Cameras, times: np.ndarray, seed: int, step: float,
                    publisher: Publisher, fig: Figures) -> None:
    """The cameras' heartbeats and detections at TIMES (see the module's docstring)."""
    if not len(cams) or not len(times):
        return
    state = simulate.camera_heartbeats(cams.ids, times, seed)
    for j, t in enumerate(times):
        for i, code in enumerate(cams.codes):
            if state[i, j] == 2.0:
                continue  # offline: silent
            poor = state[i, j] == 1.0
            body = {"time": _iso(float(t)), "fps": 6.0 if poor else 25.0,
                    "bitrate_kbps": 600.0 if poor else 4000.0, "quality": 0.35 if poor else 0.92}
            publisher.publish(orjson.dumps(body), publisher.camera_topic(code, "heartbeat"))
            fig.heartbeats += 1
    for i, j, category, confidence in simulate.camera_detections(cams.ids, times, seed, step):
        if state[i, j] == 2.0:
            continue
        body = {"category": category, "confidence": confidence, "time": _iso(float(times[j]))}
        publisher.publish(orjson.dumps(body), publisher.camera_topic(cams.codes[i], "detections"))
        fig.detections += 1


def run(streams: simulate.Streams, clock: Clock, seed: int, publisher: Publisher,
        report: Callable[[Figures], None] = lambda f: None,
        keep_going: Callable[[], bool] = lambda: True,
        wall: Callable[[], float] = time.time, cameras: Cameras | None = None) -> Figures:
    """Publish the readings of STREAMS over CLOCK's span, and what CAMERAS send for the times
    close to the wall clock; REPORT after each chunk; stop early when KEEP_GOING says no.
    Returns the figures."""
    fig = Figures()
    if len(streams) == 0:
        return fig
    per_chunk = max(1, CHUNK_OBSERVATIONS // len(streams))
    if clock.rate:
        per_chunk = max(1, min(per_chunk, int(clock.rate // len(streams)) or 1))
    cursor = float(simulate.grid(clock.start, clock.start + clock.step, clock.step)[0])
    if clock.once:  # the grid time at or just before the start: no wait for the next one
        cursor = float(np.floor(clock.start / clock.step) * clock.step)
        clock.end = cursor + clock.step
    began = time.monotonic()
    while keep_going() and (clock.end is None or cursor < clock.end):
        now = wall()
        horizon = now + 1e-3 if clock.end is None else min(now + 1e-3, clock.end)
        if clock.speed:  # the simulated clock runs SPEED times as fast as the wall clock
            horizon = min(horizon, clock.start + clock.step + clock.speed * (time.monotonic() - began))
        times = simulate.grid(cursor, min(horizon, cursor + per_chunk * clock.step), clock.step)
        if len(times) == 0:
            # Live (or paced): wait for the next grid time, a little at a time.
            time.sleep(min(1.0, max(0.05, (cursor - horizon) / max(clock.speed, 1.0))))
            continue
        values = simulate.values(streams, times, seed)
        payloads = encode(streams, times, values)
        for p in payloads:
            publisher.publish(p)
        if cameras is not None:
            publish_cameras(cameras, times[times >= now - LIVE_CAMERAS], seed, clock.step,
                            publisher, fig)
        publisher.flush()
        n = int(np.count_nonzero(~np.isnan(values)))
        fig.observations += n
        fig.messages += len(payloads)
        fig.first = float(times[0]) if fig.first is None else fig.first
        fig.last = float(times[-1])
        cursor = float(times[-1]) + clock.step
        report(fig)
        if clock.rate:  # stay under RATE observations per second since the start
            ahead = fig.observations / clock.rate - (time.monotonic() - began)
            if ahead > 0:
                time.sleep(ahead)
    return fig
