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
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gis.sensors import mqtt as broker
from gis.sensors import simulate
from gis.settings import Settings

log = logging.getLogger("geoioc.simulate")

GATEWAY = "simulator"
MESSAGE_OBSERVATIONS = 1000  # per MQTT message (about 55 kB)
CHUNK_OBSERVATIONS = 20000   # computed at once


@dataclass
class Figures:
    """What a run did so far (for the progress display and the tests)."""

    observations: int = 0
    messages: int = 0
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

    def publish(self, payload: bytes) -> None:
        self.pending.append(self.client.publish(self.topic, payload, qos=1))

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


def run(streams: simulate.Streams, clock: Clock, seed: int, publisher: Publisher,
        report: Callable[[Figures], None] = lambda f: None,
        keep_going: Callable[[], bool] = lambda: True,
        wall: Callable[[], float] = time.time) -> Figures:
    """Publish the readings of STREAMS over CLOCK's span; REPORT after each chunk; stop early
    when KEEP_GOING says no. Returns the figures."""
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
