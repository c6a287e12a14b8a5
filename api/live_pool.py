"""`Conn` as in api/deps.py, but never from a closed pool.

api.deps.get_pool takes app.state.pool, the pool the app's lifespan opened. Several apps in one
process (the test suite's session client next to short-lived `TestClient(create_app())`s) share
gis.db's one pool, and each lifespan closes it on exit: the long-lived app would then hold a
closed pool and answer 503 to every request. Here a closed pool is replaced by the process's
current one (gis.db reopens it on demand), which is what `gis.db.connection()` always did.

Meant to be folded into api.deps.get_pool (one `and not pool.closed`), after which the routes
import `Conn` from api.deps again.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import psycopg
from fastapi import Depends, Request
from psycopg_pool import ConnectionPool

from api import deps
from gis import db


def get_live_pool(request: Request) -> ConnectionPool:
    """The app's pool, or the process's current one when the app's was closed."""
    pool = deps.get_pool(request)
    if pool.closed:
        pool = db.get_pool()
        request.app.state.pool = pool
    return pool


def get_connection(pool: Annotated[ConnectionPool, Depends(get_live_pool)]) -> Iterator[psycopg.Connection]:
    with pool.connection() as conn:
        yield conn


Conn = Annotated[psycopg.Connection, Depends(get_connection)]
