"""Sensor alerts: rules as data, one alert per datastream and rule while a breach lasts, the
incident it escalates to, closing on recovery, acknowledgement by operators.

The rules (table `alert_rules`, migration 0022) are thresholds per observed property seeded from
QCVN 05:2023/BTNMT (ambient air, with the regulation's averaging periods: means read from the
hourly and daily rollups), VN_AQI (Decision 1459/QĐ-TCMT) and QCVN 08:2023/BTNMT (surface water),
rate-of-change rules and a "station stopped reporting" rule; the migration's docstring says what
each kind means and where each value comes from.

Who evaluates, and when:

- the ingest, after each committed batch: ``evaluate(conn, datastream_ids, now)`` for the
  datastreams the batch stored (every rule but the long means);
- the job queue, every minute (gis/sensors/alert_jobs.py): ``sweep(conn, now)``: silence of
  every station, and every pair with an open alert, so an alert closes on time when no data
  arrive; every hour, ``sweep_long(conn, now)``: the annual means.

Each is one transaction: one set-based statement (alert_queries.evaluate) evaluates the pairs
and opens, updates and closes alerts; then, for the few alerts that opened, an incident in the
workflow (gis/reports: category environment, source sensor, the station's position and current
commune, a Vietnamese title with the value, the limit and the time in Vietnam time; assigned at
once when the rule names an agency that exists), and for those that closed, the incident moved
on: resolved when an agency had it (assigned or in progress), rejected when nobody had taken it
up yet (received or verified: the breach ended by itself, nothing left to handle), left alone
when already answered - always with a note saying since when readings are normal.

An operator acknowledges an alert (``acknowledge``): timestamped, audited (gis/audit, in the
same transaction), and a received incident becomes verified by that operator.

Alerts that open, close or are acknowledged are told to the live map by a NOTIFY in the same
transaction (gis/live.py, kind `alert`: ids only; each map stream reads them under its access).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from gis import audit, fmt, live
from gis.reports import workflow
from gis.sensors import alert_queries as q
from layers.access import Principal, access_condition, readable_layer, row_filter
from layers.errors import Conflict, Message, NotFound

SENSORS_LAYER = "sensors"
INCIDENTS_LAYER = "incidents"
STATUSES = ("open", "acknowledged", "closed")
# Readings shown around an alert (api: one alert "with its readings context").
CONTEXT_BEFORE = dt.timedelta(hours=24)
CONTEXT_AFTER = dt.timedelta(hours=1)
MAX_CONTEXT = dt.timedelta(days=7)
MAX_READINGS = 200


class AlertConflict(Conflict):
    """An operator's action the alert's state does not allow (409)."""

    code = "AlertConflict"
    title = "Alert conflict"


@dataclass(frozen=True)
class Evaluation:
    """What an evaluation changed: the alerts opened and closed, the incidents made."""

    opened: tuple[int, ...] = ()
    closed: tuple[int, ...] = ()
    incidents: tuple[int, ...] = field(default=())


def _now(now: dt.datetime | None) -> dt.datetime:
    if now is None:
        return dt.datetime.now(dt.UTC)
    return now if now.tzinfo else now.replace(tzinfo=dt.UTC)


# --- evaluation -----------------------------------------------------------------------------


def evaluate(conn: psycopg.Connection[Any], datastream_ids: Iterable[int],
             now: dt.datetime | None = None) -> Evaluation:
    """Evaluate every rule of DATASTREAM_IDS at NOW (default: the current time) and apply the
    outcome: what the ingest calls after each committed batch, with the datastreams it stored.

    One transaction on CONN (its own, or a savepoint in the caller's, whose remaining
    statements then run with jit off too): about 0.04 ms a datastream (bench/alerts.py),
    whatever the number of observations (set-based SQL over datastream_latest and the
    rollups). An ingest under heavy load may pass the datastreams of several batches at once:
    the evaluation reads the current state, not the batch. Annual means are left to the
    hourly sweep. Raises on a database error (the batch itself is already committed)."""
    ids = sorted({int(i) for i in datastream_ids})
    if not ids:
        return Evaluation()
    return _run(conn, q.SCOPE_BATCH, q.LOCK_OPEN_IDS, {"ids": ids}, _now(now))


def sweep(conn: psycopg.Connection[Any], now: dt.datetime | None = None) -> Evaluation:
    """The minute's sweep: stations that stopped reporting, and every open alert (closed once
    normal for its rule's time, even when no data arrive)."""
    return _run(conn, q.SCOPE_SWEEP, q.LOCK_OPEN_ALL, {}, _now(now))


def sweep_long(conn: psycopg.Connection[Any], now: dt.datetime | None = None) -> Evaluation:
    """The hour's sweep: means over more than a day (annual means) of every datastream."""
    return _run(conn, q.SCOPE_LONG, q.LOCK_OPEN_ALL, {}, _now(now))


def _run(conn: psycopg.Connection[Any], scope: sql.Composable, lock: str,
         params: dict[str, Any], now: dt.datetime) -> Evaluation:
    params = {**params, "now": now}
    with conn.transaction():
        # A statement of milliseconds whose estimate (lateral lookups per datastream) passes
        # jit_above_cost for a large batch: compiling it cost 0.2 to 1 s each time.
        conn.execute("SET LOCAL jit = off")
        conn.execute(lock, params)
        rows = conn.execute(q.evaluate(scope), params).fetchall()
        opened = tuple(int(r[1]) for r in rows if r[0] == "opened")
        closed = tuple(int(r[1]) for r in rows if r[0] == "closed")
        incidents = _follow_up(conn, opened, closed, now) if rows else ()
        for event, ids in (("opened", opened), ("closed", closed)):
            if ids:  # the live map hears of it at the commit (gis/live.py)
                live.notify_chunked(conn, {"kind": "alert", "layer": SENSORS_LAYER,
                                           "event": event}, "ids", sorted(ids))
    return Evaluation(opened, closed, incidents)


def _follow_up(conn: psycopg.Connection[Any], opened: tuple[int, ...], closed: tuple[int, ...],
               now: dt.datetime) -> tuple[int, ...]:
    """The incidents of the alerts that opened, and the moves of those whose alert closed (a
    handful per evaluation at most: a breach opens one alert, not one per reading)."""
    with conn.cursor(row_factory=dict_row) as cur:
        facts = cur.execute(q.ALERT_FACTS, {"ids": [*opened, *closed]}).fetchall()
    made = []
    for f in facts:
        if f["id"] in opened and f["escalate"]:
            made.append(_escalate(conn, f, now))
        elif f["id"] in closed and f["incident_id"] is not None:
            _settle(conn, f, now)
    return tuple(made)


def _escalate(conn: psycopg.Connection[Any], f: dict[str, Any], now: dt.datetime) -> int:
    row = conn.execute(q.INSERT_INCIDENT, {
        "severity": f["severity"], "title": title(f), "description": description(f),
        "commune_code": f["commune_code"], "at": now, "station_id": f["station_id"]}).fetchone()
    assert row is not None  # the station is there: the alert's datastream refers to it
    incident = int(row[0])
    conn.execute(q.LINK_INCIDENT, {"incident": incident, "id": f["id"]})
    conn.execute(q.INSERT_EVENT, {"id": f["id"], "at": now, "kind": "escalated",
                                  "actor": workflow.SYSTEM, "value": None,
                                  "note": f"incident {incident}"})
    # The first transition (received), as intake stores a report's: the consoles hear of it.
    workflow.record(conn, incident, at=now, actor=workflow.SYSTEM, kind="status", from_status=None,
                    to_status="received", note=f"Cảnh báo tự động #{f['id']} ({f['rule_code']})")
    agency = f["agency_code"]
    if agency and conn.execute(q.AGENCY_EXISTS, (agency,)).fetchone()[0]:  # type: ignore[index]
        workflow.transition(conn, incident, "verified", actor=workflow.SYSTEM, at=now,
                            note=f"Số liệu quan trắc tự động vượt ngưỡng ({f['rule_code']})")
        workflow.transition(conn, incident, "assigned", actor=workflow.SYSTEM, at=now,
                            agency_code=agency)
    return incident


def _settle(conn: psycopg.Connection[Any], f: dict[str, Any], now: dt.datetime) -> None:
    """Move the closed alert's incident on (see the module docstring); nothing when an operator
    has already answered it."""
    status = f["incident_status"]
    to = {"assigned": "resolved", "in_progress": "resolved",
          "received": "rejected", "verified": "rejected"}.get(status or "")
    if to is None:
        return
    workflow.transition(conn, f["incident_id"], to, actor=workflow.SYSTEM, at=now,
                        note=close_note(f, unhandled=to == "rejected"))


# --- wording (Vietnamese: incidents are read by the centre's operators) ---------------------


def number(value: float | None, *, limit: bool = False) -> str:
    """A value as the title shows it (Vietnamese separators): readings with 1 decimal (2 under
    10, pH and mg/L), limits as the regulation writes them (50, 8,5, 4)."""
    if value is None:
        return fmt.EMPTY
    decimals = 2 if abs(value) < 10 else 1 if abs(value) < 1000 else 0
    text = fmt.number(value, "vi", decimals)
    if limit and "," in text:
        text = text.rstrip("0").rstrip(",")
    return text


def period(minutes: int) -> str:
    """An averaging period or a window in words: 1 giờ, 24 giờ, năm, 30 phút."""
    if minutes == 525600:
        return "năm"
    if minutes > 1440 and minutes % 1440 == 0:
        return f"{minutes // 1440} ngày"
    if minutes % 60 == 0:
        return f"{minutes // 60} giờ"
    return f"{minutes} phút"


def duration(minutes: float) -> str:
    """Minutes as a person says them: 45 phút, 2 giờ 5 phút, 3 ngày 2 giờ."""
    m = int(minutes)
    if m < 60:
        return f"{m} phút"
    hours, m = divmod(m, 60)
    if hours < 24:
        return f"{hours} giờ" + (f" {m} phút" if m else "")
    days, hours = divmod(hours, 24)
    return f"{days} ngày" + (f" {hours} giờ" if hours else "")


def _unit(f: dict[str, Any]) -> str:
    return f" {f['unit']}" if f["unit"] and f["unit"] not in ("pH", "AQI") else ""


def _what(f: dict[str, Any]) -> str:
    """The breach in a few words: '…trung bình 24 giờ 62,4 µg/m³, vượt giới hạn 50 µg/m³'."""
    u, v, lim = _unit(f), f["value"], f["limit_value"]
    prop = f["property_vi"]
    if f["kind"] == "silence":
        return f"không nhận được số liệu {prop} trong {duration(v)}"
    if f["kind"] == "rate":
        way = "tăng" if v >= 0 else "giảm"
        return (f"{prop} {way} {number(abs(v))}{u} trong {period(f['window_minutes'])}, "
                f"vượt mức thay đổi cho phép {number(abs(lim), limit=True)}{u}")
    mean = f" trung bình {period(f['window_minutes'])}" if f["statistic"] == "mean" else ""
    band = f" (mức {f['aqi_band_vi']})" if f.get("aqi_band_vi") else ""
    side = "dưới giới hạn tối thiểu" if f["lower_limit"] is not None and v < f["lower_limit"] \
        else "vượt giới hạn"
    shown = fmt.number(v, "vi", 0) if f["property"] == "aqi" else number(v)
    return f"{prop}{mean} {shown}{u}{band}, {side} {number(lim, limit=True)}{u}"


def title(f: dict[str, Any]) -> str:
    """The incident's title: what, where and when (Vietnam time), e.g. 'Bụi PM2.5 trung bình 24
    giờ 62,4 µg/m³, vượt giới hạn 50 µg/m³ tại AIR-001 lúc 14:30 03/12/2026'."""
    if f["kind"] == "silence":
        last = f"; số liệu cuối lúc {_hm(f['observed_at'])}" if f["observed_at"] else ""
        return (f"Trạm {f['station_code']} ngừng gửi số liệu {f['property_vi']} "
                f"({duration(f['value'])}{last})")
    return f"{_what(f)} tại {f['station_code']} lúc {_hm(f['observed_at'] or f['opened_at'])}"


def _hm(at: dt.datetime | None) -> str:
    """HH:MM dd/mm/yyyy in Vietnam time."""
    if at is None:
        return fmt.EMPTY
    local = at.astimezone(fmt.VN_TZ)
    return local.strftime("%H:%M %d/%m/%Y")


def description(f: dict[str, Any]) -> str:
    where = f", {f['commune_name']}" if f["commune_name"] else ""
    lines = [
        f"{f['rule_vi']}.",
        f"Trạm: {f['station_name']} ({f['station_code']}){where}.",
        f"Diễn biến: {_what(f)}.",
    ]
    if f["source"]:
        lines.append(f"Căn cứ: {f['source']}.")
    if f["observed_at"] is not None:
        lines.append(f"Thời điểm số liệu: {fmt.datetime(f['observed_at'])} (giờ Việt Nam).")
    lines.append(f"Cảnh báo tự động #{f['id']} mở lúc {fmt.datetime(f['opened_at'])} "
                 f"(giờ Việt Nam).")
    return "\n".join(lines)


def close_note(f: dict[str, Any], *, unhandled: bool = False) -> str:
    since = fmt.datetime(f["normal_since"]) if f["normal_since"] else fmt.datetime(f["closed_at"])
    back = ("Trạm đã gửi số liệu trở lại" if f["kind"] == "silence"
            else f"{f['property_vi']} đã trở lại bình thường")
    note = (f"Tự động: {back} từ {since} (giờ Việt Nam), liên tục "
            f"{duration(f['clear_minutes'])}; cảnh báo #{f['id']} đã đóng lúc "
            f"{fmt.datetime(f['closed_at'])}.")
    if unhandled:
        note += " Sự cố kết thúc trước khi được phân công xử lý: không cần xử lý thêm."
    return note


# --- operators ------------------------------------------------------------------------------


def visible(who: Principal) -> sql.Composable:
    """What WHO may read of alerts: the sensors layer (404 when WHO may not read it), its row
    filter on the station (alias s) and the datastream's own access level (alias d)."""
    layer = readable_layer(SENSORS_LAYER, who)
    if layer is None:
        raise NotFound("not found", message=Message("status_404"))
    parts = [c for c in (row_filter(layer, who, alias="s"),
                         access_condition(who, sql.Identifier("d", "access"),
                                          sql.Identifier("d", "roles"))) if c is not None]
    return sql.SQL(" AND ").join(parts) if parts else sql.SQL("TRUE")


def incident_visible(who: Principal, alias: str = "i") -> sql.Composable:
    """Whether WHO may read an alert's incident (the incidents layer's rules)."""
    layer = readable_layer(INCIDENTS_LAYER, who)
    if layer is None:
        return sql.SQL("FALSE")
    return row_filter(layer, who, alias=alias) or sql.SQL("TRUE")


def _not_found(alert_id: int) -> NotFound:
    return NotFound(f"alert {alert_id} not found",
                    message=Message("alert_not_found", {"id": alert_id}))


def acknowledge(conn: psycopg.Connection[Any], alert_id: int, who: Principal, *,
                note: str | None = None, now: dt.datetime | None = None,
                request: Any = None) -> dict[str, Any]:
    """WHO acknowledges the alert: stored with the time and the operator, an event, the audit
    row (same transaction), and its incident, when still just received, verified by WHO.
    NotFound when WHO may not see it; AlertConflict when closed or already acknowledged."""
    at = _now(now)
    actor = who.user or "anonymous"
    with conn.transaction():
        with conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(q.LOCK_ALERT.format(visible=visible(who)), {"id": alert_id}).fetchone()
        if row is None:
            raise _not_found(alert_id)
        if row["closed_at"] is not None:
            raise AlertConflict(f"alert {alert_id} is closed", message=Message(
                "alert_closed", {"id": alert_id, "at": fmt.datetime(row["closed_at"])}))
        if row["acknowledged_at"] is not None:
            raise AlertConflict(
                f"alert {alert_id} was acknowledged by {row['acknowledged_by']}",
                message=Message("alert_acknowledged", {
                    "id": alert_id, "by": row["acknowledged_by"],
                    "at": fmt.datetime(row["acknowledged_at"])}))
        conn.execute(q.ACKNOWLEDGE, {"id": alert_id, "at": at, "actor": actor, "note": note})
        conn.execute(q.INSERT_EVENT, {"id": alert_id, "at": at, "kind": "acknowledged",
                                      "actor": actor, "value": None, "note": note})
        moved = None
        incident = row["incident_id"]
        if incident is not None:
            shown = conn.execute(q.INCIDENT_STATUS.format(visible=incident_visible(who, "t")),
                                 {"id": incident}).fetchone()
            if shown is not None and shown[0] == "received":
                text = f"Cán bộ {actor} xác nhận cảnh báo #{alert_id}" + (f": {note}" if note else "")
                moved = workflow.transition(conn, incident, "verified", actor=actor, note=text,
                                            at=at)[0].as_json()
        live.notify(conn, {"kind": "alert", "layer": SENSORS_LAYER, "event": "acknowledged",
                           "ids": [alert_id]})
        audit.record(conn, who, "alert_acknowledge", request=request, layer=SENSORS_LAYER,
                     status=200, target={"alert": alert_id, "datastream": row["datastream_id"],
                                         "incident": incident})
    return {"id": alert_id, "status": "acknowledged", "acknowledged_at": at,
            "acknowledged_by": actor, "incident": incident, "incident_transition": moved}


# --- reads ----------------------------------------------------------------------------------


def _staff(who: Principal) -> bool:
    """Who acknowledged an alert is the centre's business (not a citizen's)."""
    return not who.anonymous and bool(who.roles - {"citizen"})


def _shaped(row: dict[str, Any], who: Principal) -> dict[str, Any]:
    out = dict(row)
    out.pop("total", None)
    if not _staff(who):
        out["acknowledged_by"] = None
        out["acknowledge_note"] = None
    out["rule_name"] = {"vi": out.pop("rule_vi"), "en": out.pop("rule_en")}
    out["property_name"] = {"vi": out.pop("property_vi"), "en": out.pop("property_en")}
    return out


def list_alerts(conn: psycopg.Connection[Any], who: Principal, *,
                statuses: Iterable[str] | None = None, station: str | None = None,
                prop: str | None = None, rule: str | None = None,
                since: dt.datetime | None = None, until: dt.datetime | None = None,
                limit: int = 100, offset: int = 0) -> tuple[list[dict[str, Any]], int, bool]:
    """The alerts WHO may see, newest first: (page, total matching, whether the page carries
    datastreams that are not public - such reads are audited by the caller)."""
    stmt = q.LIST.format(visible=visible(who), incident_visible=incident_visible(who))
    wanted = sorted(set(statuses)) if statuses else None
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(stmt, {"statuses": wanted, "station": station, "property": prop,
                                  "rule": rule, "since": since, "until": until, "limit": limit,
                                  "offset": offset}).fetchall()
    total = int(rows[0]["total"]) if rows else 0
    restricted = any(r["datastream_access"] != "public" for r in rows)
    return [_shaped(r, who) for r in rows], total, restricted


def count_open(conn: psycopg.Connection[Any], who: Principal) -> tuple[int, int]:
    """(not closed, open and nobody acknowledged yet): the alerts WHO may see, counted as
    list_alerts would count them (NotFound when WHO may not read the sensors layer)."""
    row = conn.execute(q.COUNT_OPEN.format(visible=visible(who))).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def alert_detail(conn: psycopg.Connection[Any], who: Principal, alert_id: int,
                 now: dt.datetime | None = None) -> dict[str, Any]:
    """One alert with its readings context: the rule and its limits, the station, the events,
    the hourly means and raw readings from a day before it opened to its end (or now), every
    threshold that applies to the datastream (a chart's lines) and the latest reading."""
    at = _now(now)
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(q.ONE.format(visible=visible(who), incident_visible=incident_visible(who)),
                          {"id": alert_id}).fetchone()
        if row is None:
            raise _not_found(alert_id)
        start = row["opened_at"] - max(CONTEXT_BEFORE,
                                       dt.timedelta(minutes=min(row["window_minutes"], 1440)))
        end = min((row["closed_at"] or at) + CONTEXT_AFTER, start + MAX_CONTEXT)
        span = {"ds": row["datastream_id"], "start": start, "end": end}
        events = cur.execute(q.EVENTS, {"id": alert_id}).fetchall()
        hourly = cur.execute(q.HOURLY, span).fetchall()
        readings = cur.execute(q.READINGS, {**span, "limit": MAX_READINGS}).fetchall()
        limits = cur.execute(q.LIMITS, {"ds": row["datastream_id"], "now": at}).fetchall()
    out = _shaped(row, who)
    if not _staff(who):
        for e in events:
            if e["kind"] == "acknowledged":
                e["actor"], e["note"] = None, None
    out["events"] = events
    out["context"] = {"start": start, "end": end, "hourly": hourly, "readings": readings,
                      "limits": [{**lim, "name": {"vi": lim.pop("name_vi"), "en": lim.pop("name_en")}}
                                 for lim in limits]}
    return out


def rules(conn: psycopg.Connection[Any], prop: str | None = None) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(q.RULES, {"property": prop}).fetchall()


def aqi_bands(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(q.AQI_BANDS).fetchall()
