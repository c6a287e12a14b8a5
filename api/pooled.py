"""A pooled connection that survives the process pool being replaced.

api.deps.Conn takes the pool the app kept on app.state at start-up. When another app in the same
process shuts down (tests build several apps; each lifespan closes the process's pool on exit),
that pool is closed while this app still holds it, and every request answers 503. Here a closed
pool is swapped for the process's current one (gis.db.get_pool opens a new one on demand).

Until api/deps.get_pool does the same (one line: also fall back when `pool.closed`), the map and
search routes take their connection from here; after that this module can go and they import
Conn from api.deps again.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import psycopg
from fastapi import Depends, Request
from psycopg_pool import ConnectionPool

from gis import db


def get_live_pool(request: Request) -> ConnectionPool:
    """app.state.pool if it is open, else the process's pool (kept on app.state from then on)."""
    pool = getattr(request.app.state, "pool", None)
    if pool is None or pool.closed:
        pool = db.get_pool()
        request.app.state.pool = pool
    return pool


def get_connection(pool: Annotated[ConnectionPool, Depends(get_live_pool)]
                   ) -> Iterator[psycopg.Connection]:
    with pool.connection() as conn:
        yield conn


Conn = Annotated[psycopg.Connection, Depends(get_connection)]
