"""Road traffic's periodic job on the job queue (gis/jobs; registered in TASK_MODULES):
every minute, `sensors.traffic_sweep` turns the road segments whose live data stopped into
'unknown' (gis/sensors/traffic.py). Arriving speeds are the ingest's business; this only
catches what the passing of time alone changes."""

from __future__ import annotations

import logging

from gis.jobs.queue import MAINTENANCE, app

log = logging.getLogger(__name__)


def run_sweep() -> int:
    from gis.db import connection
    from gis.sensors import traffic

    with connection() as conn:
        n = traffic.sweep(conn)
    if n:
        log.info("traffic: %d road segments without recent speeds, now unknown", n)
    return n


@app.periodic(cron="* * * * *")
@app.task(name="sensors.traffic_sweep", queue=MAINTENANCE)
def traffic_sweep(timestamp: int) -> None:
    run_sweep()
