"""One connection pool per process, shared by the API, the providers and the CLI.

A database outage must be short for users too: while PostgreSQL is away a request waits at most
`pool_timeout_seconds` for a connection and then fails (503 with Retry-After, api/errors.py), and
the pool gives up reconnecting after a few seconds instead of backing off for minutes, so that the
first request after the database's return opens a fresh connection at once. The first connection
found broken makes the pool check all its idle ones in the background, so nobody after the outage
is handed a dead connection.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool, PoolTimeout

from gis.settings import get_settings

log = logging.getLogger(__name__)

# UTC timestamps in JSON built by PostgreSQL; a runaway query from user input is cut off.
SESSION_OPTIONS = "-c TimeZone=UTC -c statement_timeout=60000"
# A server that does not answer the TCP handshake is down as far as a request is concerned.
CONNECT_TIMEOUT_SECONDS = 2
# Reconnection attempts of the pool stop after this long; the next request tries again.
RECONNECT_SECONDS = 2.0
# Pooled connections act as this role: full DML on data, but the audit log is append-only
# (SELECT, INSERT). Migrations and bulk loads use `connect()` and keep the owner's rights.
APP_ROLE = "geoioc_app"

_pool: ConnectionPool | None = None
_lock = threading.Lock()
# Whether pooled connections can switch to APP_ROLE: decided once per process (None = not yet).
_app_role_usable: bool | None = None


def _can_use_app_role(conn: psycopg.Connection) -> bool:
    global _app_role_usable
    if _app_role_usable is None:
        row = conn.execute(
            "SELECT pg_has_role(current_user, oid, 'MEMBER') FROM pg_roles WHERE rolname = %s",
            (APP_ROLE,),
        ).fetchone()
        _app_role_usable = bool(row and row[0])
        if not _app_role_usable:
            why = "does not exist" if row is None else "is not granted to the connecting user"
            log.warning("database role %s %s: the application runs with the connecting user's "
                        "rights (it could alter the audit log)", APP_ROLE, why)
    return _app_role_usable


def _configure(conn: psycopg.Connection) -> None:
    """Runs once on each new pooled connection (autocommit, so the SET ROLE persists)."""
    if _can_use_app_role(conn):
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(APP_ROLE)))


def get_pool() -> ConnectionPool:
    """Create the pool on first use; pygeoapi providers and our routes share it."""
    global _pool
    if _pool is None:
        with _lock:
            if _pool is None:
                s = get_settings()
                _pool = ConnectionPool(
                    s.database_url,
                    min_size=s.pool_min_size,
                    max_size=s.pool_max_size,
                    kwargs={"autocommit": True, "options": SESSION_OPTIONS,
                            "connect_timeout": CONNECT_TIMEOUT_SECONDS},
                    configure=_configure,
                    open=True,
                    name="geoioc",
                    timeout=s.pool_timeout_seconds,
                    reconnect_timeout=RECONNECT_SECONDS,
                )
    return _pool


def close_pool() -> None:
    global _pool, _app_role_usable
    with _lock:
        if _pool is not None:
            _pool.close()
            _pool = None
        _app_role_usable = None


_last_check = 0.0


def _check_idle_connections(pool: ConnectionPool) -> None:
    """Discard the pool's broken idle connections, at most once a second, off the request."""
    global _last_check
    now = time.monotonic()
    with _lock:
        if now - _last_check < 1.0:
            return
        _last_check = now

    def run() -> None:
        try:
            pool.check()
        except Exception:  # the pool may be closing; nothing to clean then
            log.debug("pool check failed", exc_info=True)

    threading.Thread(target=run, name="geoioc-pool-check", daemon=True).start()


@contextmanager
def pooled(pool: ConnectionPool, timeout: float | None = None) -> Iterator[psycopg.Connection]:
    """A connection of POOL for the block (TIMEOUT: the wait for one, default the pool's)."""
    try:
        with pool.connection(timeout=timeout) as conn:
            yield conn
    except PoolTimeout:  # busy, or the database is away: nothing to clean up
        raise
    except psycopg.OperationalError:
        _check_idle_connections(pool)
        raise


@contextmanager
def connection(timeout: float | None = None) -> Iterator[psycopg.Connection]:
    with pooled(get_pool(), timeout) as conn:
        yield conn


def connect(url: str | None = None, **kwargs) -> psycopg.Connection:
    """A dedicated connection, for long jobs (migrations, loads) that must not hold a pool slot."""
    return psycopg.connect(url or get_settings().database_url, **kwargs)
