"""The leaders' dashboard beyond the incident figures (gis/analysis/dashboard.py): the open
sensor alerts its KPI cards add, and the weekly briefing (PDF, on demand and on a schedule).

A package of its own because it joins several domains (incidents, reports, sensors) that
import one another in one direction only; nothing in gis imports it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
from psycopg import sql

from gis.analysis import dashboard as dash
from layers.access import Principal
from layers.errors import NotFound


def open_alerts(conn: psycopg.Connection, who: Principal) -> dict[str, int] | None:
    """Sensor alerts open now that WHO may see: all not closed (`open`), and those nobody
    acknowledged yet (`unacknowledged`); None when WHO may not read the sensors layer."""
    from gis.sensors import alerts

    try:
        active, unacknowledged = alerts.count_open(conn, who)
    except NotFound:
        return None
    return {"open": active, "unacknowledged": unacknowledged}


def kpis(conn: psycopg.Connection, scope: dash.Scope, restrict: sql.Composable | None,
         monday: dt.date, now: dt.datetime, who: Principal) -> dict[str, Any]:
    """The week's KPI cards: the incident figures and WHO's open sensor alerts."""
    return dash.kpis(conn, scope, restrict, monday, now, alerts=open_alerts(conn, who))
