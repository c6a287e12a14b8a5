"""The audit log: who read restricted or secret data, who wrote anything, who signed in (or
failed to), when, with which request and what was touched.

Rows are only ever inserted: the application's database role may not UPDATE or DELETE them and
a trigger refuses it even to the owner (migrations/versions/0004). Writing is synchronous and
fails loudly: an action that must be audited must not happen unaudited. For a write, pass the
connection of the write's transaction so the data and its audit row commit together.

`request` is anything shaped like a Starlette request (method, url.path, url.query,
client.host), so this module does not depend on the web stack.

Reads: every way out that can carry personal or restricted data (OGC items and single items,
their HTML pages, tiles, identify, search, the parcel page and API, extracts, exports from the
API, a job or the CLI) calls record_read() once per request and layer. It decides itself whether
the read is one to record (layers.access.is_sensitive_read: personal fields, restricted layers,
fields or rows), so anonymous and public reads cost nothing and do not flood the log, and writes
one row naming the way out (`target.channel`) and the feature ids read (`target.ids`, an array)
or, for bulk reads, the filter (`target.filter`: bbox, CQL2, limit/offset...).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from gis.db import connection, is_standby
from layers.access import Principal, is_sensitive_read
from layers.model import Field, Layer

# Long query strings (CQL2 filters, bbox lists) are kept, but not without bound.
MAX_TEXT = 2000
MAX_NAME = 200
# Ids kept per read row: a page of search results or a parcel file's sections, not a bulk read
# (those are recorded by their filter). Beyond it the row says how many were read.
MAX_IDS = 10_000
# Ways out, as `target.channel` of read rows (the admin API and `geoioc audit --channel` filter on it).
CHANNELS = ("ogc-items", "ogc-item", "ogc-items-html", "ogc-item-html", "tile", "identify",
            "map-cameras", "map-sensors", "sensor-alerts", "heatmap", "incident-points",
            "incident-stats", "incident", "density", "incident-grid", "incident-rates",
            "incident-change", "hotspots", "emerging-hotspots",
            "search", "parcel-search", "parcel-search-page", "parcel-api", "parcel-page",
            "extract-pdf", "extract-html", "export", "export-job", "export-cli", "report-api",
            "sta", "dashboard", "map-events", "map-series")
_CHANNEL_SET = frozenset(CHANNELS)

_INSERT = (
    "INSERT INTO audit_log (username, roles, action, credential, method, path, query, layer, "
    "target, status, client) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


def client_address(request: Any) -> str | None:
    client = getattr(request, "client", None)
    return getattr(client, "host", None) if client is not None else None


def request_args(request: Any) -> dict[str, Any] | None:
    """What record() needs of REQUEST, as JSON: a job or a background task that outlives the
    request keeps this (in its queue arguments) rather than the request itself."""
    if request is None:
        return None
    return {"method": request.method, "path": request.url.path, "query": request.url.query,
            "client": client_address(request)}


def request_from_args(args: Mapping[str, Any] | None) -> Any:
    """A request as record() reads one, from request_args()."""
    if not args:
        return None
    return SimpleNamespace(method=args["method"],
                           url=SimpleNamespace(path=args["path"], query=args["query"]),
                           client=SimpleNamespace(host=args["client"]))


def detached(request: Any) -> Any:
    """REQUEST as record() reads it, detached from the connection it came on."""
    return request_from_args(request_args(request))


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
        path = request.url.path[:MAX_TEXT].replace("\x00", "")
        query = (request.url.query or None) and request.url.query[:MAX_TEXT].replace("\x00", "")
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
    # A read answered by a replica (api.deps.ReadConn) is recorded on the primary.
    if conn is None or is_standby(conn):
        with connection() as pooled:
            pooled.execute(_INSERT, params)
    else:
        conn.execute(_INSERT, params)


def _bounded(value: Any) -> Any:
    """A filter as JSON, long texts cut at MAX_TEXT (a CQL2 filter, a polygon)."""
    if isinstance(value, str):  # PostgreSQL text and jsonb hold no NUL character
        return value[:MAX_TEXT].replace("\x00", "")
    if isinstance(value, Mapping):
        return {_bounded(str(k)[:MAX_NAME]): _bounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_bounded(v) for v in value[:MAX_IDS]]
    if value is None or isinstance(value, bool | int | float):
        return value
    return _bounded(str(value))


def _check_channel(channel: str) -> None:
    if channel not in _CHANNEL_SET:  # a typo would make rows that no filter finds
        raise ValueError(f"unknown audit channel {channel!r}")


def read_target(channel: str, ids: Iterable[Any] | None = None,
                filter: Mapping[str, Any] | None = None,
                extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The `target` of a read row: the way out, the ids read (an array) and/or the filter."""
    _check_channel(channel)
    target: dict[str, Any] = {"channel": channel}
    if ids is not None:
        # Feature ids as numbers wherever they are numbers (a path gives text), so that one
        # containment query (target->'ids' @> '[123]') finds every read of a feature.
        id_list = [int(i) if isinstance(i, str) and i.isdecimal() and len(i) < 19 else i for i in ids]
        target["ids"] = id_list[:MAX_IDS]
        if len(id_list) > MAX_IDS:
            target["ids_read"] = len(id_list)
    if filter is not None:
        target["filter"] = _bounded(filter)
    if extra:
        target.update(_bounded(extra))
    return target


def record_read(conn: psycopg.Connection | None, principal: Principal | None, layer: Layer,
                channel: str, *, ids: Iterable[Any] | None = None,
                filter: Mapping[str, Any] | None = None, fields: Sequence[Field] | None = None,
                request: Any = None, action: str = "read", status: int | None = None,
                credential: str | None = None, extra: Mapping[str, Any] | None = None) -> bool:
    """Audit one read of LAYER through CHANNEL when it carries personal or restricted data for
    PRINCIPAL (layers.access.is_sensitive_read over FIELDS, the fields the read carries; default
    every readable field). Returns whether a row was written.

    One INSERT, ids as one array. Exports pass action="export" (their rows keep that action) and
    EXTRA (rows written, fields). conn=None takes a pooled connection."""
    _check_channel(channel)
    who = principal or Principal()
    if not is_sensitive_read(layer, who, fields):
        return False
    record(conn, who, action, request=request, layer=layer.id, status=status,
           credential=credential, target=read_target(channel, ids, filter, extra))
    return True


async def record_read_async(principal: Principal | None, layer: Layer, channel: str,
                            **kwargs: Any) -> bool:
    """record_read() from async code: decides at once, goes off the event loop only to write."""
    _check_channel(channel)
    if not is_sensitive_read(layer, principal or Principal(), kwargs.get("fields")):
        return False
    return await asyncio.to_thread(record_read, None, principal, layer, channel, **kwargs)


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


MAX_PAGE = 1000
MAX_OFFSET = 1_000_000


def query(conn: psycopg.Connection, *, user: str | None = None, layer: str | None = None,
          action: str | None = None, channel: str | None = None, since: dt.datetime | None = None,
          until: dt.datetime | None = None, before: int | None = None, limit: int = 100,
          offset: int = 0) -> list[AuditEntry]:
    """Newest first (by id: the order rows were written). Filters are exact matches (user is
    case-insensitive; channel is a read's `target.channel`). Page with BEFORE, the id of the
    last row seen (a cursor: stable while new rows arrive, and as fast deep in the log as at its
    head), or with OFFSET."""
    where: list[sql.Composable] = []
    params: list[Any] = []
    for column, value in (("username", user and user.strip().lower()), ("layer", layer),
                          ("action", action)):
        if value:
            where.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
            params.append(value)
    if channel:
        where.append(sql.SQL("target->>'channel' = %s"))
        params.append(channel)
    if since is not None:
        where.append(sql.SQL("at >= %s"))
        params.append(since)
    if until is not None:
        where.append(sql.SQL("at < %s"))
        params.append(until)
    if before is not None:
        where.append(sql.SQL("id < %s"))
        params.append(before)
    stmt: sql.Composable = sql.SQL("SELECT id, at, username, roles, action, credential, method, path, query, "
                   "layer, target, status, client FROM audit_log")
    if where:
        stmt += sql.SQL(" WHERE ") + sql.SQL(" AND ").join(where)
    stmt += sql.SQL(" ORDER BY id DESC LIMIT %s OFFSET %s")
    params += [max(1, min(limit, 100_000)), max(0, min(offset, MAX_OFFSET))]
    with conn.cursor(row_factory=class_row(AuditEntry)) as cur:
        cur.execute(stmt, params)
        return cur.fetchall()
