"""What arrives over MQTT, read into rows for the observations table, or refused with a reason.

Two topics (after the optional topic prefix, setting mqtt_topic_prefix):

- `v1.1/Datastreams(<id>)/Observations`: the SensorThings MQTT extension. The payload is one
  STA Observation as JSON: {"phenomenonTime": "2026-12-03T08:00:00+07:00", "result": 41.2,
  "resultTime": ..., "parameters": {...}, "FeatureOfInterest": {"@iot.id": 7}}; phenomenonTime
  may be an interval "start/end"; only result is required (STA: a missing phenomenonTime is the
  time of arrival, which a redelivery cannot repeat, so senders that may resend give it).
  A JSON array of such objects is taken too.
- `geoioc/v1/gateways/<gateway>/observations`: the compact form for gateways that forward many
  probes at once: a JSON array of [datastream_id, phenomenonTime, result] or
  [datastream_id, phenomenonTime, result, resultTime]; each element is stored or refused alone.

A numeric result is stored in `result` (rolled up); any other JSON value (text, true/false,
objects, null) in `result_json`. Times need a UTC offset ("Z" or "+07:00"), are kept to the
millisecond (the STA id of an observation is built from its time, migration 0020) and must lie
within the accepted window (settings ingest_max_age_days back, ingest_max_future_seconds ahead).

Nothing here raises on bad input: every problem is a Rejection with a reason code, counted per
worker and shown by /healthz/ingest.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from typing import Any

import orjson

STA_TOPIC = "v1.1/+/Observations"
GATEWAY_TOPIC = "geoioc/v1/gateways/+/observations"
_STA = re.compile(r"v1\.1/Datastreams\((\d{1,7})\)/Observations")
_GATEWAY = re.compile(r"geoioc/v1/gateways/[^/]+/observations")
MAX_PAYLOAD = 1 << 20  # bytes; a gateway's batch fits many times over

# Reasons an observation (or a whole message) is refused; /healthz/ingest counts them.
REASONS = {
    "bad_topic": "the topic is neither an STA datastream's nor a gateway's",
    "too_large": f"the payload is larger than {MAX_PAYLOAD} bytes",
    "not_json": "the payload is not JSON (UTF-8)",
    "bad_shape": "not an Observation object (STA topic) or an array of arrays (gateway topic)",
    "bad_datastream": "the datastream id is not a positive integer below 2^21",
    "missing_result": "the observation has no result",
    "result_not_finite": "the result is a number that is not finite",
    "bad_time": "a time is not ISO 8601 with a UTC offset",
    "time_out_of_range": "the phenomenon time is too far in the past or the future",
    "bad_parameters": "parameters is not a JSON object",
    "bad_feature_of_interest": "FeatureOfInterest is not {\"@iot.id\": <integer>}",
    "unknown_datastream": "no datastream has this id",
    "archived_period": "the month of the phenomenon time is detached (archived)",
    "refused_by_database": "the database refused the observation (a constraint)",
    # Cameras' heartbeats and detections (gis/sensors/cameras.py), counted alike.
    "camera_bad_code": "the camera code in the topic is not CAM-<4 to 6 digits>",
    "camera_bad_field": "a heartbeat's or detection's field is missing or out of range",
    "camera_bad_snapshot": "a detection's snapshot is not a base64 JPEG or PNG within the limits",
    "unknown_camera": "no camera has this code",
    "unknown_category": "no detection category has this code",
}
MAX_DATASTREAM = 1 << 21


@dataclass(frozen=True, slots=True)
class Row:
    """One observation ready for COPY (times in UTC, to the millisecond)."""

    datastream_id: int
    phenomenon_time: dt.datetime
    phenomenon_time_end: dt.datetime | None
    result: float | None
    result_json: str | None  # JSON text
    result_time: dt.datetime | None
    feature_of_interest_id: int | None
    parameters: str | None  # JSON text


@dataclass(frozen=True)
class Window:
    """The phenomenon times accepted, relative to the time of arrival."""

    max_age: dt.timedelta
    max_future: dt.timedelta


class Rejection(Exception):  # noqa: N818 - a value as much as an error
    def __init__(self, reason: str) -> None:
        assert reason in REASONS, reason
        super().__init__(reason)
        self.reason = reason


def _time(value: Any) -> dt.datetime:
    if not isinstance(value, str) or not 10 <= len(value) <= 40:
        raise Rejection("bad_time")
    try:
        t = dt.datetime.fromisoformat(value)
    except ValueError:
        raise Rejection("bad_time") from None
    if t.tzinfo is None:
        raise Rejection("bad_time")
    t = t.astimezone(dt.UTC)
    return t.replace(microsecond=t.microsecond - t.microsecond % 1000)


def _phenomenon(value: Any, now: dt.datetime, window: Window) -> tuple[dt.datetime, dt.datetime | None]:
    if value is None:
        return now.replace(microsecond=now.microsecond - now.microsecond % 1000), None
    if isinstance(value, str) and "/" in value:
        a, _, b = value.partition("/")
        start, end = _time(a), _time(b)
        if end <= start:
            raise Rejection("bad_time")
    else:
        start, end = _time(value), None
    if not now - window.max_age <= start <= now + window.max_future:
        raise Rejection("time_out_of_range")
    return start, end


def _result(value: Any) -> tuple[float | None, str | None]:
    if isinstance(value, bool) or value is None or isinstance(value, (str, list, dict)):
        return None, orjson.dumps(value).decode()
    if isinstance(value, (int, float)):
        f = float(value)
        if not math.isfinite(f):
            raise Rejection("result_not_finite")
        return f, None
    raise Rejection("bad_shape")


def _datastream(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < MAX_DATASTREAM:
        raise Rejection("bad_datastream")
    return value


def sta_observation(datastream: int, obj: Any, now: dt.datetime, window: Window) -> Row:
    """One STA Observation object of DATASTREAM."""
    if not isinstance(obj, dict):
        raise Rejection("bad_shape")
    if "result" not in obj:
        raise Rejection("missing_result")
    start, end = _phenomenon(obj.get("phenomenonTime"), now, window)
    result, result_json = _result(obj["result"])
    rt = obj.get("resultTime")
    params = obj.get("parameters")
    if params is not None and not isinstance(params, dict):
        raise Rejection("bad_parameters")
    foi: int | None = None
    if (f := obj.get("FeatureOfInterest")) is not None:
        foi = f.get("@iot.id") if isinstance(f, dict) else None
        if isinstance(foi, bool) or not isinstance(foi, int) or foi <= 0:
            raise Rejection("bad_feature_of_interest")
    return Row(datastream, start, end, result, result_json, None if rt is None else _time(rt), foi,
               None if params is None else orjson.dumps(params).decode())


def compact_observation(item: Any, now: dt.datetime, window: Window) -> Row:
    """One [datastream, phenomenonTime, result(, resultTime)] of a gateway's array."""
    if not isinstance(item, list) or len(item) not in (3, 4):
        raise Rejection("bad_shape")
    ds = _datastream(item[0])
    start, end = _phenomenon(item[1], now, window)
    result, result_json = _result(item[2])
    rt = item[3] if len(item) == 4 else None
    return Row(ds, start, end, result, result_json, None if rt is None else _time(rt), None, None)


def parse(topic: str, payload: bytes, prefix: str, now: dt.datetime,
          window: Window) -> tuple[list[Row], list[str]]:
    """The rows of one message and the reasons of its refused observations (a message that cannot
    be read at all is one refusal)."""
    if not topic.startswith(prefix):
        return [], ["bad_topic"]
    topic = topic[len(prefix):]
    if len(payload) > MAX_PAYLOAD:
        return [], ["too_large"]
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return [], ["not_json"]
    rows: list[Row] = []
    reasons: list[str] = []
    if m := _STA.fullmatch(topic):
        try:
            ds = _datastream(int(m.group(1)))
        except Rejection as e:
            return [], [e.reason]
        for obj in body if isinstance(body, list) else [body]:
            try:
                rows.append(sta_observation(ds, obj, now, window))
            except Rejection as e:
                reasons.append(e.reason)
        if not rows and not reasons:
            reasons.append("bad_shape")  # an empty array
    elif _GATEWAY.fullmatch(topic):
        if not isinstance(body, list) or not body:
            return [], ["bad_shape"]
        for item in body:
            try:
                rows.append(compact_observation(item, now, window))
            except Rejection as e:
                reasons.append(e.reason)
    else:
        return [], ["bad_topic"]
    return rows, reasons


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _ts(t: dt.datetime | None) -> str:
    return "\\N" if t is None else t.isoformat()


def copy_line(r: Row) -> str:
    """The row in COPY text format, the columns of queries.STAGING_COLUMNS."""
    return "\t".join((
        str(r.datastream_id), r.phenomenon_time.isoformat(), _ts(r.phenomenon_time_end),
        "\\N" if r.result is None else repr(r.result),
        "\\N" if r.result_json is None else _escape(r.result_json),
        _ts(r.result_time),
        "\\N" if r.feature_of_interest_id is None else str(r.feature_of_interest_id),
        "\\N" if r.parameters is None else _escape(r.parameters),
    )) + "\n"


def month_of(t: dt.datetime) -> dt.date:
    return dt.date(t.year, t.month, 1)
