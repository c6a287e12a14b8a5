"""SLA deadlines and overdue reports, computed by PostgreSQL in Vietnam time.

A category's SLA in whole days ends at local midnight after the last day (a report of 23:30
on Monday with one day is due at the end of Tuesday, Vietnam time); in hours it is counted in
hours (geoioc_sla_deadline, migration 0015). A report is overdue when it is still open at its
deadline; a duplicate rides on its original and is never counted itself.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from gis.reports import queries as q


def deadline(conn: psycopg.Connection, received: dt.datetime, sla_hours: int) -> dt.datetime:
    row = conn.execute(q.DEADLINE, {"at": received, "sla_hours": sla_hours}).fetchone()
    assert row is not None
    value: dt.datetime = row[0]
    return value


def _where(row_filter: sql.Composable | None) -> sql.Composable:
    return row_filter if row_filter is not None else sql.SQL("TRUE")


def overdue(conn: psycopg.Connection, now: dt.datetime | None = None, *, agency: str | None = None,
            row_filter: sql.Composable | None = None, limit: int = 1000) -> list[dict[str, Any]]:
    """Open reports past their deadline at NOW, the longest overdue first, each with how many
    Vietnamese calendar days late it is."""
    with conn.cursor(row_factory=dict_row) as cur:
        return list(cur.execute(q.OVERDUE.format(row_filter=_where(row_filter)), {
            "now": now or dt.datetime.now(dt.UTC), "agency": agency, "limit": limit}).fetchall())


def overdue_counts(conn: psycopg.Connection, now: dt.datetime | None = None, *,
                   row_filter: sql.Composable | None = None) -> dict[str | None, int]:
    """Overdue reports per agency (None: not assigned yet)."""
    rows = conn.execute(q.OVERDUE_COUNTS.format(row_filter=_where(row_filter)),
                        {"now": now or dt.datetime.now(dt.UTC)}).fetchall()
    return {r[0]: int(r[1]) for r in rows}
