"""One connection pool per process, shared by the API, the providers and the CLI."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

from gis.settings import get_settings

log = logging.getLogger(__name__)

# UTC timestamps in JSON built by PostgreSQL; a runaway query from user input is cut off.
SESSION_OPTIONS = "-c TimeZone=UTC -c statement_timeout=60000"
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
                    kwargs={"autocommit": True, "options": SESSION_OPTIONS},
                    configure=_configure,
                    open=True,
                    name="geoioc",
                )
    return _pool


def close_pool() -> None:
    global _pool, _app_role_usable
    with _lock:
        if _pool is not None:
            _pool.close()
            _pool = None
        _app_role_usable = None


@contextmanager
def connection() -> Iterator[psycopg.Connection]:
    with get_pool().connection() as conn:
        yield conn


def connect(url: str | None = None, **kwargs) -> psycopg.Connection:
    """A dedicated connection, for long jobs (migrations, loads) that must not hold a pool slot."""
    return psycopg.connect(url or get_settings().database_url, **kwargs)
