"""Sensor alerts under /api/sensors (gis/sensors/alerts.py).

  GET  /api/sensors/alerts                    alerts, newest first; filters status (open,
                                               acknowledged, closed, active = open or
                                               acknowledged), station, property, rule, since,
                                               until; paged
  GET  /api/sensors/alerts/{id}               one alert with its readings context: rule and
                                               limits, station and commune, events, hourly means
                                               and raw readings around it, the datastream's
                                               thresholds (a chart's lines), its latest reading
  POST /api/sensors/alerts/{id}/acknowledge   {"note"?}  operators; timestamped and audited;
                                               409 when closed or already acknowledged
  GET  /api/sensors/alert-rules?property=     the rules (thresholds as data, with their source)
  GET  /api/sensors/aqi-bands                 the VN_AQI bands (Decision 1459/QĐ-TCMT) and colours

Access is the sensors layer's, as for the map's sensors (api/routes/map_api.py): who may not
read it gets 404 everywhere here; a datastream with its own access level (a camera's,
restricted to its roles) hides its alerts from who may not read it, and reads that carry such
datastreams are audited (channel `sensor-alerts`). Who acknowledged an alert is shown to the
centre's staff only. Times are UTC (ISO 8601); the incidents' Vietnamese titles say the time
in Vietnam time.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from api.deps import Conn, DatetimeParam, QueryModel, query
from api.route_docs import WHO, problems
from api.security import Who, require_roles
from gis import audit
from gis.sensors import alerts
from layers.access import Principal
from layers.catalogue import get_layer

router = APIRouter(prefix="/api/sensors", tags=["sensor alerts"])
Operator = Annotated[Principal, Depends(require_roles("operator"))]
AlertId = Annotated[int, Path(ge=1, le=2**62, description="the alert's id")]


Status = Literal["open", "acknowledged", "closed", "active"]


class AlertQuery(QueryModel):
    """GET /api/sensors/alerts: the filters and the page, one model (api.deps.QueryModel)."""

    status: Annotated[Status | None, Field(
        description="open (not yet acknowledged), acknowledged (still open), closed, or active "
                    "(open or acknowledged); default all")] = None
    station: Annotated[Annotated[str, Field(max_length=40, pattern=r"^[A-Za-z0-9_.-]+$")] | None,
                       Field(description="the station's code (e.g. AIR-001)")] = None
    property: Annotated[Annotated[str, Field(max_length=40, pattern=r"^[a-z][a-z0-9_]*$")] | None,
                        Field(description="the observed property's code (e.g. pm25)")] = None
    rule: Annotated[Annotated[str, Field(max_length=63, pattern=r"^[a-z0-9][a-z0-9_.-]*$")] | None,
                    Field(description="the rule's code (GET /api/sensors/alert-rules)")] = None
    limit: Annotated[Annotated[int, Field(ge=1, le=500)] | None,
                     Field(description="page size (default 100, at most 500)")] = None
    offset: Annotated[Annotated[int, Field(ge=0, le=1_000_000)] | None,
                      Field(description="rows to skip")] = None


class RulesQuery(QueryModel):
    property: Annotated[Annotated[str, Field(max_length=40, pattern=r"^[a-z][a-z0-9_]*$")] | None,
                        Field(description="only the rules of this observed property")] = None


class AcknowledgeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(None, max_length=2000, description="what the operator did or saw")


def _audit_restricted(conn: Any, who: Principal, request: Request, ids: list[int],
                      restricted: bool) -> None:
    """Reads that carry datastreams that are not public are audited, like every way out."""
    if restricted:
        audit.record(conn, who, "read", request=request, layer=alerts.SENSORS_LAYER, status=200,
                     target=audit.read_target("sensor-alerts", ids=ids))


@router.get("/alerts", responses=problems(*WHO, 400, 404))
def list_alerts(request: Request, who: Who, conn: Conn,
                qm: Annotated[AlertQuery, query(AlertQuery)],
                window: DatetimeParam) -> dict[str, Any]:
    """Alerts the caller may see, newest first, with the total matching. `datetime` keeps the
    alerts that were open at some time within it (an instant, a day or an interval)."""
    since, until = window if window is not None else (None, None)
    statuses = (("open", "acknowledged") if qm.status == "active"
                else (qm.status,) if qm.status else None)
    limit, offset = qm.limit or 100, qm.offset or 0
    items, total, restricted = alerts.list_alerts(
        conn, who, statuses=statuses, station=qm.station, prop=qm.property, rule=qm.rule,
        since=since, until=_end(until), limit=limit, offset=offset)
    _audit_restricted(conn, who, request, [i["id"] for i in items], restricted)
    return {"total": total, "limit": limit, "offset": offset, "items": items}


def _end(until: dt.datetime | None) -> dt.datetime | None:
    """The interval's end is inclusive in the OGC sense: an alert opened at that instant counts."""
    return until + dt.timedelta(microseconds=1) if until is not None else None


@router.get("/alerts/{alert_id}", responses=problems(*WHO, 404))
def one_alert(request: Request, alert_id: AlertId, who: Who, conn: Conn) -> dict[str, Any]:
    """One alert with its readings context (see the module docstring)."""
    out = alerts.alert_detail(conn, who, alert_id)
    _audit_restricted(conn, who, request, [alert_id], out["datastream_access"] != "public")
    return out


@router.post("/alerts/{alert_id}/acknowledge", responses=problems(*WHO, 400, 403, 404, 409, 422))
def acknowledge(request: Request, alert_id: AlertId, who: Operator, conn: Conn,
                body: AcknowledgeBody | None = None) -> dict[str, Any]:
    """An operator acknowledges the alert: time (UTC) and operator stored, audited; its
    incident, when still just received, becomes verified by the operator. 409 when the alert
    is closed or already acknowledged (the answer says by whom and when)."""
    return alerts.acknowledge(conn, alert_id, who, note=body.note if body else None,
                              request=request)


@router.get("/alert-rules", responses=problems(*WHO, 400, 404))
def alert_rules(who: Who, conn: Conn,
                qm: Annotated[RulesQuery, query(RulesQuery)]) -> dict[str, Any]:
    """The alert rules: thresholds per observed property with their averaging period and
    source (QCVN 05:2023/BTNMT, QCVN 08:2023/BTNMT, VN_AQI), rate-of-change and silence rules,
    and the time a datastream must read normal before its alert closes."""
    alerts.visible(who)  # the sensors layer's guard
    return {"rules": alerts.rules(conn, qm.property)}


@router.get("/aqi-bands", responses=problems(*WHO, 404))
def aqi_bands(who: Who, conn: Conn) -> dict[str, Any]:
    """The six VN_AQI bands (Decision 1459/QĐ-TCMT of 2019): range, name and colour."""
    alerts.visible(who)
    return {"source": "Quyết định 1459/QĐ-TCMT (2019), Bảng 1",
            "bands": alerts.aqi_bands(conn)}


# The sensors layer exists (a typo here would hide every route behind a 404).
get_layer(alerts.SENSORS_LAYER)
