"""The cameras' periodic job on the job queue (gis/jobs; registered in TASK_MODULES), run by
whichever worker gets there first, as the alerts' sweep is (gis/sensors/alert_jobs.py):

- every minute, `cameras.health_sweep`: a camera that falls silent sends nothing that could
  change its status, so the clock must: late cameras become degraded, silent ones offline
  (gis.sensors.cameras.sweep: one statement; each change stored in camera_status_history and
  announced with the `camera` NOTIFY in its transaction).

Heartbeats that arrive move a camera back at once (the ingest's batch, or the HTTP push); this
only catches what the passing of time alone changes. The instant judged is the run's own.
"""

from __future__ import annotations

import logging

from gis.jobs.queue import MAINTENANCE, app

log = logging.getLogger(__name__)


def run_sweep() -> list[tuple[int, str, str]]:
    from gis.db import connection
    from gis.sensors import cameras
    from gis.settings import get_settings

    with connection() as conn:
        changed = cameras.sweep(conn, cameras.Limits.of(get_settings()))
    if changed:
        log.info("cameras sweep: %s", ", ".join(f"{i} {a}->{b}" for i, a, b in changed[:50]))
    return changed


@app.periodic(cron="* * * * *")
@app.task(name="cameras.health_sweep", queue=MAINTENANCE)
def health_sweep(timestamp: int) -> None:
    run_sweep()
