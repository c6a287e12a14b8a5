"""Health check: is the database reachable and migrated?"""

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from gis.db import connection

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> JSONResponse:
    try:
        with connection() as conn:
            row = conn.execute(
                "SELECT postgis_lib_version(), (SELECT version_num FROM alembic_version), "
                "(SELECT count(*) FROM admin_units)"
            ).fetchone()
    except Exception as e:  # any failure here means "not healthy", reported as such
        return JSONResponse({"status": "error", "database": str(e).splitlines()[0]}, 503)
    postgis, revision, units = row
    return JSONResponse(
        {"status": "ok", "postgis": postgis, "schema_revision": revision, "admin_units": units}
    )
