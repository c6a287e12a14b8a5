"""The job queue's periodic recomputation of the kept transparency figures
(gis/reports/transparency.py, "Kept figures"): every minute, whichever worker gets there first.
"""

from __future__ import annotations

import logging

from gis.jobs.queue import MAINTENANCE, app

log = logging.getLogger(__name__)


@app.periodic(cron="* * * * *")
@app.task(name="transparency.refresh", queue=MAINTENANCE)
def refresh(timestamp: int) -> None:
    from gis.db import connection
    from gis.reports import transparency

    with connection() as conn:
        computed = transparency.refresh(conn)
    if computed:
        log.info("transparency figures: %d periods recomputed", computed)
