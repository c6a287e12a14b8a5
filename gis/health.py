"""What the health check reads: PostGIS answers, the schema is migrated, the sample or real data
is there."""

from __future__ import annotations

import psycopg


def database_health(conn: psycopg.Connection) -> dict[str, object]:
    row = conn.execute(
        "SELECT postgis_lib_version(), (SELECT version_num FROM alembic_version), "
        "(SELECT count(*) FROM admin_units)"
    ).fetchone()
    assert row is not None
    postgis, revision, units = row
    return {"postgis": postgis, "schema_revision": revision, "admin_units": units}
