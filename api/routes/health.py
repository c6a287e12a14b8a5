"""Health check: is the database reachable and migrated? (gis/health.py asks.)"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import Conn
from api.route_docs import problems
from gis import health

router = APIRouter(tags=["health"])


class HealthOut(BaseModel):
    status: Literal["ok"] = "ok"
    postgis: str
    schema_revision: str | None
    admin_units: int


@router.get("/healthz", response_model=HealthOut, responses=problems(503))
def healthz(conn: Conn) -> HealthOut:
    """200 when the database answers and is migrated; 503 (with Retry-After) when it is
    unreachable, busy or not migrated."""
    h = health.check(conn)
    return HealthOut(postgis=h.postgis, schema_revision=h.schema_revision, admin_units=h.admin_units)
