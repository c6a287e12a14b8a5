"""The alerts' periodic jobs on the job queue (gis/jobs; registered in TASK_MODULES), each run
by whichever worker gets there first (procrastinate defers a periodic run once):

- every minute, `sensors.alerts_sweep`: stations that stopped reporting (no data arrive to
  trigger an evaluation, so the clock must), and every open alert, which closes once its
  datastream has read normal for the rule's time even if nothing arrives any more;
- every hour, `sensors.alerts_long`: means over more than a day (annual means), too long to
  recompute after every ingest batch and slow to change.

Evaluation after each ingest batch is the ingest's call (gis.sensors.alerts.evaluate); these
only catch what the passing of time alone changes. The instant evaluated is the run's own
(the current time), not the schedule's: a run that starts late judges the present.
"""

from __future__ import annotations

import logging

from gis.jobs.queue import MAINTENANCE, app

log = logging.getLogger(__name__)


def _log(kind: str, opened: tuple[int, ...], closed: tuple[int, ...]) -> None:
    if opened or closed:
        log.info("alerts %s: opened %s, closed %s", kind, list(opened), list(closed))


def run_sweep() -> None:
    from gis.db import connection
    from gis.sensors import alerts

    with connection() as conn:
        done = alerts.sweep(conn)
    _log("sweep", done.opened, done.closed)


def run_long() -> None:
    from gis.db import connection
    from gis.sensors import alerts

    with connection() as conn:
        done = alerts.sweep_long(conn)
    _log("long means", done.opened, done.closed)


@app.periodic(cron="* * * * *")
@app.task(name="sensors.alerts_sweep", queue=MAINTENANCE)
def alerts_sweep(timestamp: int) -> None:
    run_sweep()


@app.periodic(cron="7 * * * *")
@app.task(name="sensors.alerts_long", queue=MAINTENANCE)
def alerts_long(timestamp: int) -> None:
    run_long()
