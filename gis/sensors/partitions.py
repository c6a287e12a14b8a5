"""Monthly partitions created ahead, by a periodic job of the queue (gis/jobs), and the figures of
ingest workers long gone forgotten.

The migrations create the current month and the next three; this job, run by whichever queue
worker gets there first every hour, keeps `observation_partitions_ahead` months ahead of
observations, observation_hourly (UTC months) and incidents (Vietnam-time months, migration
0038), so an observation never waits for (or fails on) a missing partition and a new incident
never lands in the incidents' DEFAULT partition. The ingest worker also creates a
back-filled month it meets. Detaching old months is an operator's decision
(`geoioc observations detach --before YYYY-MM`, `geoioc incidents detach --before YYYY-MM`),
not a job.
"""

from __future__ import annotations

import datetime as dt
import logging

from gis.jobs.queue import MAINTENANCE, app

log = logging.getLogger(__name__)

FORGET_WORKERS_AFTER = dt.timedelta(days=7)


def ensure_ahead() -> list[str]:
    """Create the missing partitions (observations and incidents) up to the setting's months
    ahead; the names created."""
    from gis.db import connection
    from gis.sensors import queries
    from gis.settings import get_settings

    with connection() as conn, conn.transaction():
        ahead = get_settings().observation_partitions_ahead
        made = queries.ensure_partitions(conn, ahead)
        made += queries.ensure_incident_partitions(conn, ahead)
        queries.forget_workers(conn, FORGET_WORKERS_AFTER)
    for name in made:
        log.info("created partition %s", name)
    return made


@app.periodic(cron="17 * * * *")
@app.task(name="sensors.partitions_ahead", queue=MAINTENANCE)
def partitions_ahead(timestamp: int) -> None:
    ensure_ahead()
