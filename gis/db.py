"""One connection pool per process, shared by the API, the providers and the CLI.

A busy pool and an absent database are told apart. Under load a request waits for a connection
up to `pool_timeout_seconds` (long: a burst of map users must be served, not refused). Once the
database has been found unreachable (a pooled connection broke, or the pool could not reconnect)
a waiting request gives up within WAIT_SLICE_SECONDS and fails (503 with Retry-After,
api/errors.py), until a connection works again. The pool gives up reconnecting after a few
seconds instead of backing off for minutes, so that the first request after the database's
return opens a fresh connection at once; the first connection found broken makes the pool check
all its idle ones in the background, so nobody after the outage is handed a dead connection.
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
# A request waits for a connection in slices this long, checking between them whether the
# database has been found unreachable meanwhile.
WAIT_SLICE_SECONDS = 0.5
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
                    reconnect_failed=lambda _pool: _mark_unreachable(),
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


# When the database was last found unreachable (None: it answers).
_unreachable_since: float | None = None


def _mark_unreachable() -> None:
    global _unreachable_since
    if _unreachable_since is None:
        _unreachable_since = time.monotonic()
        log.warning("database unreachable: requests answer 503 until it is back")


def take(pool: ConnectionPool, timeout: float | None = None) -> psycopg.Connection:
    """A connection of POOL, to be handed back with give_back() (pooled() does both for a block).
    TIMEOUT: the longest wait, default the pool's; a database found unreachable cuts it short."""
    return _take(pool, timeout)


def give_back(pool: ConnectionPool, conn: psycopg.Connection) -> None:
    """Return CONN to POOL. A connection found broken means the database went away: requests
    waiting for one are then answered at once (503) instead of waiting out the pool timeout."""
    if conn.broken or conn.closed:
        _mark_unreachable()
        _check_idle_connections(pool)
    pool.putconn(conn)


def _take(pool: ConnectionPool, timeout: float | None) -> psycopg.Connection:
    global _unreachable_since
    deadline = time.monotonic() + (pool.timeout if timeout is None else timeout)
    while True:
        wait = min(WAIT_SLICE_SECONDS, deadline - time.monotonic())
        try:
            conn = pool.getconn(timeout=max(wait, 0.001))
        except PoolTimeout:
            if _unreachable_since is not None or time.monotonic() >= deadline:
                raise
            continue
        if _unreachable_since is not None:
            _unreachable_since = None
            log.warning("database reachable again")
        return conn


@contextmanager
def pooled(pool: ConnectionPool, timeout: float | None = None) -> Iterator[psycopg.Connection]:
    """A connection of POOL for the block (TIMEOUT: the longest wait for one, default the
    pool's; a database found unreachable cuts the wait short)."""
    conn = _take(pool, timeout)
    try:
        yield conn
    except PoolTimeout:
        raise
    except psycopg.OperationalError:
        if conn.broken or conn.closed:
            _mark_unreachable()
            _check_idle_connections(pool)
        raise
    finally:
        pool.putconn(conn)


@contextmanager
def connection(timeout: float | None = None) -> Iterator[psycopg.Connection]:
    with pooled(get_pool(), timeout) as conn:
        yield conn


def connect(url: str | None = None, **kwargs) -> psycopg.Connection:
    """A dedicated connection, for long jobs (migrations, loads) that must not hold a pool slot."""
    return psycopg.connect(url or get_settings().database_url, **kwargs)
