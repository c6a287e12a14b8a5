"""The audit log: who read restricted or secret data, who wrote anything, who signed in (or
failed to), when, with which request and what was touched.

Rows are only ever inserted: the application's database role may not UPDATE or DELETE them and
a trigger refuses it even to the owner (migrations/versions/0004). Writing is synchronous and
fails loudly: an action that must be audited must not happen unaudited. For a write, pass the
connection of the write's transaction so the data and its audit row commit together.

`request` is anything shaped like a Starlette request (method, url.path, url.query,
client.host), so this module does not depend on the web stack.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from gis.db import connection
from layers.access import Principal

# Long query strings (CQL2 filters, bbox lists) are kept, but not without bound.
MAX_TEXT = 2000
MAX_NAME = 200

_INSERT = (
    "INSERT INTO audit_log (username, roles, action, credential, method, path, query, layer, "
    "target, status, client) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


def client_address(request: Any) -> str | None:
    client = getattr(request, "client", None)
    return getattr(client, "host", None) if client is not None else None


def record(conn: psycopg.Connection | None, principal: Principal | None, action: str, *,
           request: Any = None, layer: str | None = None, target: Any = None,
           status: int | None = None, username: str | None = None,
           credential: str | None = None, client: str | None = None) -> None:
    """Append one row. conn=None takes a pooled connection (autocommit: committed at once).

    `target` (JSON-serialisable) says what was touched: ids, counts, bbox, a filter.
    `username` overrides the principal's (failed sign-ins name the account that was tried);
    `credential` overrides how the principal authenticated (e.g. "password", "cli").
    """
    principal = principal or Principal()
    method = path = query = None
    if request is not None:
        method = request.method
        path = request.url.path[:MAX_TEXT]
        query = (request.url.query or None) and request.url.query[:MAX_TEXT]
        client = client or client_address(request)
    if username is not None:  # failed sign-ins: whatever the client typed, bounded
        username = username[:MAX_NAME]
    params = (
        username if username is not None else principal.user,
        sorted(principal.roles),
        action,
        credential or getattr(principal, "credential", None) or None,
        method, path, query, layer,
        Jsonb(target) if target is not None else None,
        status,
        client,
    )
    if conn is None:
        with connection() as pooled:
            pooled.execute(_INSERT, params)
    else:
        conn.execute(_INSERT, params)


async def record_async(principal: Principal | None, action: str, **kwargs: Any) -> None:
    """record() from async code, off the event loop (pooled connection)."""
    await asyncio.to_thread(record, None, principal, action, **kwargs)


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: dt.datetime
    username: str | None
    roles: list[str]
    action: str
    credential: str | None
    method: str | None
    path: str | None
    query: str | None
    layer: str | None
    target: Any
    status: int | None
    client: str | None


_DURATION = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: dt.datetime | None = None) -> dt.datetime:
    """'30m', '12h', '7d', '2w' (ago), or an ISO date / date-time (UTC when no zone given)."""
    now = now or dt.datetime.now(dt.UTC)
    text = text.strip()
    m = _DURATION.match(text)
    if m:
        return now - dt.timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is neither a duration (30m, 12h, 7d, 2w) nor an ISO date") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def query(conn: psycopg.Connection, *, user: str | None = None, layer: str | None = None,
          action: str | None = None, since: dt.datetime | None = None,
          until: dt.datetime | None = None, limit: int = 100) -> list[AuditEntry]:
    """Newest first. Filters are exact matches (user is case-insensitive)."""
    where: list[sql.Composable] = []
    params: list[Any] = []
    for column, value in (("username", user and user.strip().lower()), ("layer", layer),
                          ("action", action)):
        if value:
            where.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
            params.append(value)
    if since is not None:
        where.append(sql.SQL("at >= %s"))
        params.append(since)
    if until is not None:
        where.append(sql.SQL("at < %s"))
        params.append(until)
    stmt: sql.Composable = sql.SQL("SELECT id, at, username, roles, action, credential, method, path, query, "
                   "layer, target, status, client FROM audit_log")
    if where:
        stmt += sql.SQL(" WHERE ") + sql.SQL(" AND ").join(where)
    stmt += sql.SQL(" ORDER BY at DESC, id DESC LIMIT %s")
    params.append(max(1, min(limit, 100_000)))
    with conn.cursor(row_factory=class_row(AuditEntry)) as cur:
        cur.execute(stmt, params)
        return cur.fetchall()
