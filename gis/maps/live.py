"""The live map's events for one caller: what gis/live.py hears, read again under the caller's
access, and nothing else.

A notification names ids and public facts only; before any of it reaches a map, the stream reads
what it will send under its own caller's access:

- `observations` (the ingest: datastream ids) -> `sensor` events: the latest value, time and
  colour class of each datastream the caller may read (the sensors layer, its row filter and
  the datastream's own access level - gis/sensors/alerts.visible). Bursts are coalesced per
  stream (Coalescer): at most one event per datastream per second.
- `alert` (ids) -> `alert` events for the alerts the caller may see, as the alert API would.
- the reports channel (an incident id) -> `report` (a citizen report) or `incident`, read from
  the incidents layer under its row filter; a security event never, whoever asks (the reports
  channel carries none either).
- `camera`, `congestion`, `detection`: the catalogue access of the event's `layer` (and its row
  filter, read in SQL when the caller has one); only the agreed members are passed on; a
  detection whose incident the caller may not read is dropped whole.

Anything else (an unknown kind, a malformed payload) is dropped: a stream sends what it
understood and checked, never a payload as it came.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from gis import live
from gis.maps import queries as q
from gis.sensors.alerts import visible as sensors_visible
from layers.access import Principal, readable_layer, row_filter
from layers.errors import NotFound

SENSORS = "sensors"
INCIDENTS = "incidents"
# The kinds of channel geoioc_live passed on after the layer check, and the members kept.
LAYER_KINDS: dict[str, tuple[str, ...]] = {
    "camera": ("id", "status", "last_seen"),
    "congestion": ("segments",),
    "detection": ("id", "camera", "category", "incident", "confidence", "time"),
}
CONGESTION_CLASSES = ("free", "moderate", "heavy", "jammed")
CAMERA_STATUSES = ("online", "degraded", "offline")
# At most this many datastreams read per query (a batch names at most a few thousand).
MAX_IDS = 5000

Event = tuple[str, dict[str, Any]]


def _ids(value: Any, limit: int = MAX_IDS) -> list[int]:
    if not isinstance(value, list):
        return []
    return sorted({int(v) for v in value[:limit]
                   if isinstance(v, int) and not isinstance(v, bool) and 0 < v < 2**62})


def _id(value: Any) -> int | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**62
    return int(value) if ok else None


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def _sensors_visible(who: Principal) -> sql.Composable | None:
    try:
        return sensors_visible(who)
    except NotFound:  # the sensors layer is not for WHO
        return None


def observation_ids(event: dict[str, Any]) -> list[int]:
    """The datastream ids of an `observations` event (empty when malformed)."""
    return _ids(event.get("ids"))


def sensor_events(conn: psycopg.Connection[Any], who: Principal, ids: Iterable[int]) -> list[Event]:
    """`sensor` events of the datastreams IDS that WHO may read: datastream, station, property,
    unit, latest value and time, and `state` (the station's colour class against its threshold,
    as /api/map/sensors: only for the station's own parameter; null for its other streams)."""
    wanted = sorted(set(ids))[:MAX_IDS]
    cond = _sensors_visible(who)
    if not wanted or cond is None:
        return []
    with conn.cursor(row_factory=dict_row) as cur:
        state = q.sensor_state(sql.SQL("l.result"), sql.SQL("s.threshold"), sql.SQL("d.id"))
        rows = cur.execute(q.LIVE_SENSORS.format(visible=cond, state=state),
                           {"ids": wanted, "stale": q.STALE_AFTER}).fetchall()
    out = []
    for r in rows:
        r["time"] = _iso(r["time"])
        if r["value"] is not None and not math.isfinite(r["value"]):
            r["value"] = None
        out.append(("sensor", r))
    return out


def alert_events(conn: psycopg.Connection[Any], who: Principal, event: dict[str, Any]) -> list[Event]:
    """`alert` events for the alerts of EVENT that WHO may see (opened, closed, acknowledged),
    each opened or closed one followed by its datastream's `sensor` event: a low-side breach
    turns the marker `over` when the alert opens, not at the next reading."""
    kind = event.get("event")
    ids = _ids(event.get("ids"))
    cond = _sensors_visible(who)
    if kind not in ("opened", "closed", "acknowledged") or not ids or cond is None:
        return []
    incidents = readable_layer(INCIDENTS, who)
    incident_ok: sql.Composable = sql.SQL("FALSE")
    if incidents is not None:
        incident_ok = row_filter(incidents, who, alias="i") or sql.SQL("TRUE")
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(q.LIVE_ALERTS.format(visible=cond, incident_visible=incident_ok),
                           {"ids": ids}).fetchall()
    out: list[Event] = []
    for r in rows:
        for k in ("opened_at", "closed_at", "acknowledged_at", "observed_at"):
            r[k] = _iso(r[k])
        out.append(("alert", {"event": kind, **r}))
    if kind != "acknowledged":  # the station's colour follows its open alerts (sensor_state)
        out.extend(sensor_events(conn, who, {r["datastream"] for r in rows}))
    return out


def incident_event(conn: psycopg.Connection[Any], who: Principal, event: dict[str, Any]) -> list[Event]:
    """`report` (a citizen report: it has a service) or `incident` for the reports channel's
    EVENT, read under the incidents layer's access; nothing for a security event."""
    incident = _id(event.get("id"))
    layer = readable_layer(INCIDENTS, who)
    if incident is None or layer is None:
        return []
    cond = row_filter(layer, who, alias="t") or sql.SQL("TRUE")
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(q.LIVE_INCIDENT.format(visible=cond), {"id": incident}).fetchone()
    if row is None:
        return []
    row["reported_at"] = _iso(row["reported_at"])
    name = "report" if row["service_code"] is not None else "incident"
    what = event.get("event")
    return [(name, {"event": what if isinstance(what, str) else None, **row})]


def _row_visible(conn: psycopg.Connection[Any], layer_id: str, who: Principal, ids: list[Any]) -> set[Any]:
    """Which of IDS (of LAYER_ID's id column) WHO may see by the layer's row filter."""
    layer = readable_layer(layer_id, who)
    if layer is None:
        return set()
    cond = row_filter(layer, who, alias="t")
    if cond is None:
        return set(ids)
    stmt = sql.SQL("SELECT t.{id} FROM {table} AS t WHERE t.{id} = ANY(%s) AND {cond}").format(
        id=sql.Identifier(layer.id_column), table=sql.Identifier(layer.table), cond=cond)
    return {r[0] for r in conn.execute(stmt, (ids,))}


def layer_event(conn: psycopg.Connection[Any], who: Principal, event: dict[str, Any]) -> list[Event]:
    """A `camera`, `congestion` or `detection` event, when WHO may read its layer (and its rows);
    only the agreed members."""
    kind = event.get("kind")
    layer_id = event.get("layer")
    if kind not in LAYER_KINDS or not isinstance(layer_id, str):
        return []
    if readable_layer(layer_id, who) is None:
        return []
    # Scalars only (a list only for congestion's segments, checked below): nothing nested rides
    # along under an agreed name.
    data = {k: event[k] for k in LAYER_KINDS[kind]
            if k in event and (k == "segments" or event[k] is None
                               or isinstance(event[k], str | int | float))}
    data["layer"] = layer_id
    if kind == "camera":
        cam = _id(data.get("id"))
        if cam is None or data.get("status") not in CAMERA_STATUSES:
            return []
        if cam not in _row_visible(conn, layer_id, who, [cam]):
            return []
    elif kind == "congestion":
        segments = [s for s in data.get("segments") or []
                    if isinstance(s, list) and len(s) >= 2 and _id(s[0]) is not None
                    and s[1] in CONGESTION_CLASSES
                    and (len(s) < 3 or s[2] is None or isinstance(s[2], int | float))][:MAX_IDS]
        seen = _row_visible(conn, layer_id, who, [s[0] for s in segments])
        data["segments"] = [s[:3] for s in segments if s[0] in seen]
        if not data["segments"]:
            return []
    else:  # detection
        cam = _id(data.get("camera"))
        if _id(data.get("id")) is None or cam is None:
            return []
        if cam not in _row_visible(conn, layer_id, who, [cam]):
            return []
        incident = data.get("incident")
        if incident is not None:
            iid = _id(incident)
            if iid is None or not incident_event(conn, who, {"id": iid}):
                return []  # an incident WHO may not read (a security event): not even its camera
    return [(kind, data)]


def translate(conn: psycopg.Connection[Any], who: Principal, channel: str,
              event: dict[str, Any]) -> list[Event]:
    """The events WHO's map stream sends for one notification (observations excepted: the
    stream coalesces those and asks sensor_events)."""
    if channel == live.REPORTS_CHANNEL:
        return incident_event(conn, who, event)
    if channel != live.LIVE_CHANNEL:
        return []
    if event.get("kind") == "alert":
        return alert_events(conn, who, event)
    return layer_event(conn, who, event)


class Coalescer:
    """Datastream ids waiting to be sent by one stream: each at most once per INTERVAL seconds,
    and a burst gathered for DELAY seconds into one read."""

    def __init__(self, interval: float = 1.0, delay: float = 0.2) -> None:
        self.interval, self.delay = interval, delay
        self.pending: dict[int, float] = {}  # id -> when it became pending
        self.sent: dict[int, float] = {}  # id -> when it was last sent

    def add(self, ids: Iterable[int], now: float) -> None:
        for i in ids:
            self.pending.setdefault(i, now)

    def _ready_at(self, i: int) -> float:
        return max(self.pending[i] + self.delay, self.sent.get(i, -math.inf) + self.interval)

    def wait(self, now: float) -> float | None:
        """Seconds until the next id is due (None: nothing pending)."""
        if not self.pending:
            return None
        return max(0.0, min(self._ready_at(i) for i in self.pending) - now)

    def due(self, now: float) -> list[int]:
        """The ids to send now (marked sent)."""
        out = [i for i in self.pending if self._ready_at(i) <= now]
        for i in out:
            del self.pending[i]
            self.sent[i] = now
        if len(self.sent) > 4 * MAX_IDS:  # forget what can no longer hold anything back
            self.sent = {i: t for i, t in self.sent.items() if t > now - self.interval}
        return sorted(out)
