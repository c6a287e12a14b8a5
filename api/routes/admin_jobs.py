"""/api/admin/webhooks/dead: the webhook deliveries whose retries are spent (dead letters), and
their replay, for administrators (the same as `geoioc jobs dead` / `geoioc jobs replay`).

A replay puts the delivery back in the queue (gis.jobs.webhooks.replay) with its delivery id
unchanged, so a receiver that did take an earlier attempt drops the repeat. Replays are in the
audit log (action webhook_replay, the jobs replayed).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, Field

from api.deps import Conn, require_roles
from api.route_docs import problems
from gis import audit
from gis.jobs import webhooks
from layers.access import Principal
from layers.errors import Message, NotFound

router = APIRouter(prefix="/api/admin", tags=["admin"])
Admin = Annotated[Principal, Depends(require_roles("admin"))]
JobNumber = Annotated[int, Path(ge=1, le=2**63 - 1, description="the dead letter's job number")]


class DeadLetterOut(BaseModel):
    job: int = Field(description="the queue's job number (for a replay)")
    delivery: str = Field(description="the X-GeoIOC-Delivery id, the same on every attempt")
    url: str
    event: str
    attempts: int
    queued: str | None = Field(description="when it was queued (UTC)")
    failed: str | None = Field(description="when its last attempt failed (UTC)")
    payload: Any = None


class DeadLetters(BaseModel):
    deadLetters: list[DeadLetterOut]
    numberReturned: int


class Replayed(BaseModel):
    replayed: list[int] = Field(description="the jobs queued again")


ADMIN_ONLY = {403: "only administrators see and replay dead letters"}


@router.get("/webhooks/dead", response_model=DeadLetters, summary="Webhook dead letters",
            responses=problems(401, 403, 429, reasons=ADMIN_ONLY))
def dead_letters(who: Admin, conn: Conn) -> DeadLetters:
    letters = [DeadLetterOut(**d.as_json()) for d in webhooks.dead_letters(conn)]
    return DeadLetters(deadLetters=letters, numberReturned=len(letters))


@router.post("/webhooks/dead/replay", response_model=Replayed, status_code=202,
             summary="Replay every webhook dead letter",
             responses=problems(401, 403, 429, reasons=ADMIN_ONLY))
def replay_all(request: Request, who: Admin, conn: Conn) -> Replayed:
    done = webhooks.replay(conn)
    audit.record(conn, who, "webhook_replay", request=request, target={"jobs": done}, status=202)
    return Replayed(replayed=done)


@router.post("/webhooks/dead/{job}/replay", response_model=Replayed, status_code=202,
             summary="Replay one webhook dead letter", responses=problems(
                 400, 401, 403, 404, 429, reasons={**ADMIN_ONLY, 404: "no such dead letter"}))
def replay_one(job: JobNumber, request: Request, who: Admin, conn: Conn) -> Replayed:
    done = webhooks.replay(conn, job)
    if not done:
        raise NotFound(f"job {job} is not a dead letter",
                       message=Message("dead_letter_not_found", {"job": job}))
    audit.record(conn, who, "webhook_replay", request=request, target={"jobs": done}, status=202)
    return Replayed(replayed=done)
