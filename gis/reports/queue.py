"""The operator console's queue: open reports, the nearest deadline first, filtered and paged.

`now` is a parameter (tests stand at any instant); `overdue` is decided in SQL against it, the
same rule as deadlines.overdue() (a duplicate is never overdue by itself).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from gis.reports import queries as q


@dataclass(frozen=True)
class QueueFilter:
    """What the operator narrowed the queue to (None: any)."""

    statuses: tuple[str, ...] = q.OPEN_STATUSES
    service: str | None = None
    agency: str | None = None
    commune: str | None = None
    overdue_only: bool = False
    text: str | None = None


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def open_reports(conn: psycopg.Connection, f: QueueFilter, *, limit: int, offset: int,
                 row_filter: sql.Composable | None = None,
                 now: dt.datetime | None = None) -> tuple[list[dict[str, Any]], int]:
    """A page of the queue and the number of reports matching F in all."""
    stmt = q.QUEUE.format(row_filter=row_filter if row_filter is not None else sql.SQL("TRUE"))
    text = f.text.strip() if f.text and f.text.strip() else None
    params = {"statuses": list(f.statuses), "service": f.service, "agency": f.agency,
              "commune": f.commune, "overdue_only": f.overdue_only, "text": text,
              "pattern": _like(text) if text else None, "limit": limit, "offset": offset,
              "now": now or dt.datetime.now(dt.UTC)}
    with conn.cursor(row_factory=dict_row) as cur:
        rows = list(cur.execute(stmt, params).fetchall())
    total = int(rows[0]["total"]) if rows else 0
    if not rows and offset:  # a page past the end still tells how many there are
        with conn.cursor(row_factory=dict_row) as cur:
            first = cur.execute(stmt, {**params, "limit": 1, "offset": 0}).fetchone()
        total = int(first["total"]) if first else 0
    for r in rows:
        del r["total"]
    return rows, total


def options(conn: psycopg.Connection) -> dict[str, list[dict[str, Any]]]:
    """The console's pickers: agencies (assignment, filter), services and communes (filters)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return {"agencies": list(cur.execute(q.CONSOLE_AGENCIES).fetchall()),
                "services": list(cur.execute(q.CONSOLE_SERVICES).fetchall()),
                "communes": list(cur.execute(q.CURRENT_COMMUNES).fetchall())}
