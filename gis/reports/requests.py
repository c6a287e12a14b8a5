"""Reading citizen reports as public Open311 service requests.

Only citizen reports (a service code) are service requests; security events never are; the
reporter is never read here (incident_reporters is not joined). A duplicate is shown with its
original's status, answer, agency and deadline: the citizen sees what is being done about it.
Open311's two statuses: `open` (received, verified, assigned, in progress) and `closed`
(resolved, rejected, closed).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from gis.reports import queries as q

MAX_REQUESTS = 1000  # GeoReport v2: "first 1000 requests returned"
WINDOW = dt.timedelta(days=90)  # GeoReport v2: "may not span more than 90 days"


def open311_status(status: str) -> str:
    return "open" if status in q.OPEN_STATUSES else "closed"


def find(conn: psycopg.Connection, *, ids: Sequence[int] = (), service_codes: Sequence[str] = (),
         statuses: Sequence[str] = (), start: dt.datetime | None = None,
         end: dt.datetime | None = None, limit: int = MAX_REQUESTS) -> list[dict[str, Any]]:
    """Service requests in the order they were made (the spec's examples list them so; with
    the 1000 cap, the first 1000 of the window). IDS override every other filter (the spec's
    rule)."""
    where: list[sql.Composable] = []
    params: dict[str, Any] = {"limit": limit}
    if ids:
        where.append(sql.SQL("i.id = ANY(%(ids)s)"))
        params["ids"] = list(ids)
    else:
        if service_codes:
            where.append(sql.SQL("i.service_code = ANY(%(codes)s)"))
            params["codes"] = list(service_codes)
        wanted = {s for s in statuses}
        if wanted and wanted != {"open", "closed"}:
            inner = q.OPEN_STATUSES if "open" in wanted else q.CLOSED_STATUSES
            where.append(sql.SQL("COALESCE(o.status, i.status) = ANY(%(statuses)s)"))
            params["statuses"] = list(inner)
        if start is not None:
            where.append(sql.SQL("i.reported_at >= %(start)s"))
            params["start"] = start
        if end is not None:
            where.append(sql.SQL("i.reported_at <= %(end)s"))
            params["end"] = end
    stmt = sql.SQL("{} {} ORDER BY i.reported_at, i.id LIMIT %(limit)s").format(
        q.REQUEST_COLUMNS,
        sql.SQL("").join(sql.SQL(" AND ") + w for w in where))
    with conn.cursor(row_factory=dict_row) as cur:
        return list(cur.execute(stmt, params).fetchall())


def by_token(conn: psycopg.Connection, token: str) -> int | None:
    row = conn.execute("SELECT i.id FROM incident_requests r JOIN incidents i ON i.id ="
                       " r.incident_id WHERE r.token = %s AND i.service_code IS NOT NULL"
                       " AND i.category <> 'security_event'", (token,)).fetchone()
    return int(row[0]) if row else None


def province_codes(conn: psycopg.Connection) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT code FROM admin_units WHERE level = 'province' AND valid_to IS NULL")]


def notes(conn: psycopg.Connection, incident_id: int) -> list[dict[str, Any]]:
    """The public history of a request (status moves; no actor names beyond citizen/system/
    staff), for Open311's `extensions=true`."""
    with conn.cursor(row_factory=dict_row) as cur:
        return list(cur.execute(
            "SELECT at, kind, from_status, to_status, note,"
            " CASE WHEN actor IN ('citizen', 'system') THEN actor ELSE 'staff' END AS actor"
            " FROM incident_transitions WHERE incident_id = %s ORDER BY at, id",
            (incident_id,)).fetchall())
