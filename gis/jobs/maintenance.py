"""The queue's own upkeep, a periodic task every worker offers (procrastinate defers each
periodic run once, whichever worker gets there first): jobs whose worker died are run again,
finished jobs are forgotten after a week, and the shared limits' rows that hold nothing any more
(full rate buckets, sign-in failures past their window and lock: gis/limits) are deleted.

A job is stalled when its worker has not written a heartbeat for `jobs_stalled_seconds` (the
worker writes one every `jobs_heartbeat_seconds`): the process died, was killed or lost the
database. procrastinate finds those jobs (its select_stalled_jobs_by_heartbeat query, the one
JobManager.get_stalled_jobs runs) and puts each back in the queue with retry_job_by_id; the
task itself decides what a second run means (gis.io.jobs counts the interruptions of an export
and gives up after a few).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from procrastinate import sql
from procrastinate.exceptions import ConnectorException

from gis.jobs.queue import MAINTENANCE, app, sync_manager

log = logging.getLogger(__name__)

KEEP_FINISHED = dt.timedelta(days=7)  # succeeded / cancelled / aborted jobs; failed ones stay


def recover_stalled(task: str | None = None) -> list[dict[str, Any]]:
    """Put the stalled jobs (of TASK, or all) back in the queue; returns them (id, task_name,
    args). Each is put back once: a second recoverer finds it `todo` and leaves it."""
    from gis.settings import get_settings

    manager = sync_manager()
    rows = manager.connector.execute_query_all(
        query=sql.queries["select_stalled_jobs_by_heartbeat"], queue=None, task_name=task,
        seconds_since_heartbeat=get_settings().jobs_stalled_seconds)
    taken = []
    now = dt.datetime.now(dt.UTC)
    for row in rows:
        try:
            manager.retry_job_by_id(row["id"], retry_at=now)
        except ConnectorException:  # taken by another recoverer meanwhile
            continue
        log.warning("job %s (%s): its worker stopped; queued again", row["id"], row["task_name"])
        taken.append({k: row[k] for k in ("id", "task_name", "args")})
    return taken


def forget_finished() -> None:
    sync_manager().connector.execute_query(
        query=sql.queries["delete_old_jobs"], nb_hours=int(KEEP_FINISHED.total_seconds() // 3600),
        queue=None, statuses=["succeeded", "cancelled", "aborted"])


def forget_old_limits() -> tuple[int, int]:
    """Delete full rate buckets and forgotten sign-in failures; returns how many of each."""
    from gis import db, limits

    with db.connection() as conn:
        return limits.forget_old(conn)


@app.periodic(cron="* * * * *")
@app.task(name="maintenance.upkeep", queue=MAINTENANCE)
def upkeep(timestamp: int) -> None:
    recover_stalled()
    forget_finished()
    forget_old_limits()
