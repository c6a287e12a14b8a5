"""The weekly briefing on a schedule: every Monday at 07:00 Vietnam time (00:00 UTC: the job
queue's cron is in UTC), the province's briefing of the week that just ended, kept under
.geoioc/briefings/ (gis/dashboard/briefing.py) and listed by GET /api/dashboard/briefings.
Whichever worker gets there first makes it; a second run of the same week overwrites it with
the same figures.
"""

from __future__ import annotations

import datetime as dt
import logging

from gis.jobs.queue import MAINTENANCE, app

log = logging.getLogger(__name__)
CRON = "0 0 * * 1"  # Monday 00:00 UTC = Monday 07:00 in Vietnam (UTC+7, no daylight saving)


@app.periodic(cron=CRON)
@app.task(name="dashboard.weekly_briefing", queue=MAINTENANCE)
def weekly_briefing(timestamp: int) -> str:
    from gis.dashboard import briefing
    from gis.db import connection

    at = dt.datetime.fromtimestamp(timestamp, dt.UTC)
    with connection() as conn:
        note = briefing.store(conn, briefing.last_whole_week(at))
    log.info("weekly briefing %s made (%d bytes)", note["name"], note["bytes"])
    return str(note["name"])
