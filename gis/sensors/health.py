"""The ingest workers' figures as /healthz/ingest reports them (and `geoioc ingest --status`).

Every worker writes its figures to `ingest_workers` in each batch's transaction, so any API
process reports every worker, wherever it runs. Per worker: messages received from the broker,
acknowledged to it, pending (received, not yet committed); observations received, stored,
duplicates (already stored: redeliveries) and rejected, by reason. What was received and is
neither stored, duplicate, rejected nor pending would be a loss: `unaccounted` says how many
(always 0 unless something is wrong).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import psycopg

from gis.sensors import queries

# A running worker writes at least every HEARTBEAT_SECONDS (gis.sensors.ingest); silent for
# this long, it has died or lost the database.
SILENT_AFTER = dt.timedelta(seconds=30)
SHOWN_FOR = dt.timedelta(days=1)


@dataclass(frozen=True)
class WorkerFigures:
    worker_id: str
    client_id: str
    host: str
    pid: int
    state: str  # running, silent, stopped
    started_at: dt.datetime
    seen_at: dt.datetime
    messages: int
    acknowledged: int
    pending: int
    received: int
    stored: int
    duplicates: int
    rejected: int
    rejected_reasons: dict[str, int]
    unaccounted: int
    batches: int
    last_batch_at: dt.datetime | None
    last_error: str | None


def workers(conn: psycopg.Connection[Any], now: dt.datetime | None = None) -> list[WorkerFigures]:
    now = now or dt.datetime.now(dt.UTC)
    out = []
    for r in queries.workers(conn, SHOWN_FOR):
        state = ("stopped" if r["stopped_at"] is not None
                 else "silent" if now - r["seen_at"] > SILENT_AFTER else "running")
        out.append(WorkerFigures(
            worker_id=r["worker_id"], client_id=r["client_id"], host=r["host"], pid=r["pid"],
            state=state, started_at=r["started_at"], seen_at=r["seen_at"], messages=r["messages"],
            acknowledged=r["acknowledged"], pending=r["pending"], received=r["received"],
            stored=r["stored"], duplicates=r["duplicates"], rejected=r["rejected"],
            rejected_reasons={k: int(v) for k, v in r["rejected_reasons"].items()},
            unaccounted=r["received"] - r["stored"] - r["duplicates"] - r["rejected"],
            batches=r["batches"], last_batch_at=r["last_batch_at"], last_error=r["last_error"]))
    return out
