"""Health check: is the database reachable and migrated? Load balancers and `geoioc serve`'s
callers poll it; a database that is away is a 503 with Retry-After like every other route."""

from fastapi import APIRouter

from api.deps import Conn
from gis.health import database_health

router = APIRouter(tags=["health"])


@router.get("/healthz", responses={503: {"description": "the database is not reachable",
                                         "content": {"application/problem+json": {}}}})
def healthz(conn: Conn) -> dict[str, object]:
    return {"status": "ok", **database_health(conn)}
