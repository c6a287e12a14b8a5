"""Is the database reachable, migrated and loaded? The one query behind /healthz.

Kept beside the domain (not in the route) like every other query: the CLI or a monitoring
script can ask the same question without the web stack.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import errors as pg_errors

from layers.errors import Unavailable


@dataclass(frozen=True)
class Health:
    postgis: str
    schema_revision: str | None
    admin_units: int


def check(conn: psycopg.Connection) -> Health:
    """PostGIS's version, the applied migration and the number of administrative units. A
    database without PostGIS or not migrated yet is Unavailable (503), not a server fault;
    an unreachable one fails in the pool and becomes a 503 too (api/errors.py)."""
    try:
        row = conn.execute(
            "SELECT postgis_lib_version(), (SELECT version_num FROM alembic_version), "
            "(SELECT count(*) FROM admin_units)"
        ).fetchone()
    except (pg_errors.UndefinedTable, pg_errors.UndefinedFunction):
        raise Unavailable("the database is not migrated (run `geoioc db migrate`)",
                          retry_after=30) from None
    assert row is not None  # a SELECT without FROM returns one row
    postgis, revision, units = row
    return Health(str(postgis), revision, int(units))
