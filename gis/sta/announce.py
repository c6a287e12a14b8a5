"""Observations created over HTTP (POST Observations, CreateObservations) announced on the MQTT
broker, on the SensorThings topic `v1.1/Datastreams(<id>)/Observations` (after the setting
mqtt_topic_prefix), so that a client subscribed there receives them as it receives those
published by the stations themselves (STA 1.1, the MQTT extension's "receive updates").

Each message carries the MQTT v5 user property ORIGIN_PROPERTY: the ingest workers, which
subscribe to the same topic to store what stations publish, recognise the server's own
announcements and skip them (gis/sensors/ingest.py), so nothing is stored twice or loops.

After the commit and off the request: a broker that is away costs the HTTP client nothing (the
observations are stored; the announcement is logged as lost). The connection is made per POST
(milliseconds on the loopback): a POST is far rarer than the ingest's messages.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import urllib.parse
from collections.abc import Sequence
from typing import Any

import orjson

from gis.settings import Settings

log = logging.getLogger(__name__)

# The same pair as gis.sensors.ingest.ORIGIN_PROPERTY (the worker's side).
ORIGIN_PROPERTY = ("geoioc-origin", "server")
PUBLISH_TIMEOUT_SECONDS = 5.0


def topic(settings: Settings, datastream_id: int) -> str:
    return f"{settings.mqtt_topic_prefix}v1.1/Datastreams({datastream_id})/Observations"


def _time(t: dt.datetime | None) -> str | None:
    if t is None:
        return None
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def observation(base: str, obs_id: int, row: Any) -> dict[str, Any]:
    """The Observation as GET Observations(<id>) writes it (row: a gis.sensors.payloads.Row)."""
    start, end = _time(row.phenomenon_time), _time(row.phenomenon_time_end)
    result = row.result if row.result is not None else (
        orjson.loads(row.result_json) if row.result_json is not None else None)
    out: dict[str, Any] = {
        "@iot.id": obs_id, "@iot.selfLink": f"{base}/Observations({obs_id})",
        "phenomenonTime": f"{start}/{end}" if end else start, "result": result,
        "resultTime": _time(row.result_time)}
    if row.parameters is not None:
        out["parameters"] = orjson.loads(row.parameters)
    return out


def announce(settings: Settings, messages: Sequence[tuple[int, dict[str, Any]]],
             wait: bool = False) -> threading.Thread | None:
    """Publish MESSAGES ((datastream id, Observation JSON) pairs) in a thread of their own;
    WAIT: join it (tests)."""
    if not messages or not settings.mqtt_url:
        return None
    thread = threading.Thread(target=_publish, args=(settings, list(messages)),
                              name="geoioc-sta-announce", daemon=True)
    thread.start()
    if wait:
        thread.join(PUBLISH_TIMEOUT_SECONDS + 5)
    return thread


def _publish(settings: Settings, messages: list[tuple[int, dict[str, Any]]]) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    url = urllib.parse.urlsplit(settings.mqtt_url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    try:
        if url.username:
            client.username_pw_set(urllib.parse.unquote(url.username),
                                   urllib.parse.unquote(url.password or ""))
        if url.scheme == "mqtts":
            client.tls_set()
        client.connect(url.hostname or "127.0.0.1",
                       url.port or (8883 if url.scheme == "mqtts" else 1883), keepalive=15)
        client.loop_start()
        props = Properties(PacketTypes.PUBLISH)
        props.UserProperty = [ORIGIN_PROPERTY]
        sent = [client.publish(topic(settings, ds), orjson.dumps(obj), qos=1, properties=props)
                for ds, obj in messages]
        for info in sent:
            info.wait_for_publish(PUBLISH_TIMEOUT_SECONDS)
        client.disconnect()
    except Exception as e:  # the broker is away or refuses us: stored all the same
        log.warning("could not announce %d observation(s) on MQTT: %s", len(messages), e)
    finally:
        client.loop_stop()
