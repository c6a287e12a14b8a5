"""Health checks: is the database reachable and migrated (gis/health.py asks)? What have the
MQTT ingest workers received, stored and refused (gis/sensors/health.py)?"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import Conn
from api.route_docs import problems
from gis import health
from gis.sensors import health as ingest_health
from gis.sensors.payloads import REASONS

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


class IngestWorkerOut(BaseModel):
    worker_id: str
    client_id: str = Field(description="MQTT client id: its session with the broker")
    host: str
    pid: int
    state: Literal["running", "silent", "stopped"] = Field(
        description="silent: no figures for 30 s (died, or lost the database)")
    started_at: dt.datetime
    seen_at: dt.datetime
    messages: int = Field(description="messages received from the broker")
    acknowledged: int = Field(description="messages acknowledged to the broker (after commit)")
    pending: int = Field(description="messages received and not yet committed")
    received: int = Field(description="observations in the messages received")
    stored: int = Field(description="observations stored")
    duplicates: int = Field(description="observations already stored (redeliveries)")
    rejected: int = Field(description="observations (or unreadable messages) refused")
    rejected_reasons: dict[str, int] = Field(description="rejected, by reason")
    unaccounted: int = Field(description="received - stored - duplicates - rejected: 0 unless lost")
    batches: int
    last_batch_at: dt.datetime | None
    last_error: str | None


class IngestHealthOut(BaseModel):
    running: int = Field(description="workers running now")
    workers: list[IngestWorkerOut] = Field(description="workers seen in the last day, newest first")
    totals: dict[str, int] = Field(description="the workers' figures added up")
    reasons: dict[str, str] = Field(description="what each rejection reason means")


@router.get("/healthz/ingest", response_model=IngestHealthOut, responses=problems(503))
def healthz_ingest(conn: Conn) -> IngestHealthOut:
    """The MQTT ingest workers (in every server process and `geoioc ingest`): per worker the
    messages received from the broker, acknowledged and pending, and the observations received,
    stored, duplicate and rejected (by reason), as of its last batch."""
    ws = ingest_health.workers(conn)
    keys = ("messages", "acknowledged", "pending", "received", "stored", "duplicates", "rejected",
            "unaccounted")
    return IngestHealthOut(
        running=sum(w.state == "running" for w in ws),
        workers=[IngestWorkerOut(**w.__dict__) for w in ws],
        totals={k: sum(getattr(w, k) for w in ws) for k in keys},
        reasons=REASONS)
