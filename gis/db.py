"""One connection pool per process, shared by the API, the providers and the CLI."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg_pool import ConnectionPool

from gis.settings import get_settings

_pool: ConnectionPool | None = None
_lock = threading.Lock()


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
                    kwargs={"autocommit": True},
                    open=True,
                    name="geoioc",
                )
    return _pool


def close_pool() -> None:
    global _pool
    with _lock:
        if _pool is not None:
            _pool.close()
            _pool = None


@contextmanager
def connection() -> Iterator[psycopg.Connection]:
    with get_pool().connection() as conn:
        yield conn


def connect(url: str | None = None, **kwargs) -> psycopg.Connection:
    """A dedicated connection, for long jobs (migrations, loads) that must not hold a pool slot."""
    return psycopg.connect(url or get_settings().database_url, **kwargs)
