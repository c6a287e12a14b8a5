"""The queue app: procrastinate's App over our database, and the one list of task modules.

Two connectors in one (Connector below). The worker talks to the queue asynchronously through
its own small asyncio pool (procrastinate's PsycopgConnector, opened by the worker). Everything
else - enqueueing from a request or the CLI, listing and replaying dead letters - is synchronous
and goes through procrastinate's SyncPsycopgConnector over gis.db's pool: the same role
(geoioc_app), the same limits and the same outage handling as every other query of the
process. procrastinate would otherwise hand a synchronous caller its async connector once the
worker has opened it (in this process: the server runs one), and run each call through an
event loop of its own.

Enqueue in the caller's transaction: procrastinate defers a job on a connection it is given
(`task.configure(connection=conn).defer(...)`, executed by the sync connector's
`execute_query_all_with_connection`, which neither commits nor takes a pool connection). So a
route that writes a row and enqueues the webhook announcing it does both inside one
`with conn.transaction():` block: both happen or neither does, and the worker, woken by the
NOTIFY that PostgreSQL sends at COMMIT, never sees a job for a row that is not there.
"""

from __future__ import annotations

from typing import Any

import procrastinate
import psycopg
import psycopg_pool
from procrastinate import manager
from procrastinate.sync_psycopg_connector import SyncPsycopgConnector

# Every module defining tasks: the worker imports them before it takes a job (a task it does
# not know would fail), so a new kind of background work is registered here and nowhere else.
TASK_MODULES = ["gis.jobs.webhooks", "gis.jobs.maintenance", "gis.io.jobs",
                "gis.reports.transparency_refresh", "gis.sensors.partitions",
                "gis.sensors.alert_jobs", "gis.sensors.camera_jobs", "gis.sensors.traffic_jobs",
                "gis.dashboard.jobs"]

# Queues: exports are long and blocking, deliveries short; separate names let a deployment run
# workers for one kind only (`geoioc worker --queue webhooks`).
EXPORTS, WEBHOOKS, MAINTENANCE = "exports", "webhooks", "maintenance"
# What a worker serves unless told otherwise (`geoioc worker --queue`): a queue not listed here
# is served only by workers started for it.
QUEUES = (EXPORTS, WEBHOOKS, MAINTENANCE)


def _worker_pool(**kwargs: Any) -> psycopg_pool.AsyncConnectionPool:
    """The worker's asyncio pool, built when the worker opens the app: the database URL is
    read then (tests and `geoioc serve` set it after this module is imported)."""
    from gis.db import CONNECT_TIMEOUT_SECONDS, SESSION_OPTIONS
    from gis.settings import get_settings

    s = get_settings()

    async def configure(conn: psycopg.AsyncConnection[Any]) -> None:
        # The same role as the pooled connections of gis.db (when it is granted).
        row = await (await conn.execute(
            "SELECT pg_has_role(current_user, oid, 'MEMBER') FROM pg_roles WHERE rolname = 'geoioc_app'"
        )).fetchone()
        if row and row[0]:
            await conn.execute("SET ROLE geoioc_app")
        await conn.commit()  # a pooled connection is handed over idle

    return psycopg_pool.AsyncConnectionPool(
        s.database_url, min_size=1, max_size=max(3, s.jobs_concurrency + 2),
        # Not autocommit: procrastinate opens its listening connection with the pool's
        # arguments plus autocommit=True of its own.
        kwargs={"options": SESSION_OPTIONS, "connect_timeout": CONNECT_TIMEOUT_SECONDS},
        configure=configure, **kwargs)


class _SharedPoolConnector(SyncPsycopgConnector):
    """procrastinate's sync connector over gis.db's pool, looked up at each call: the pool is
    closed and made anew (a server's shutdown, tests), and this connector outlives it."""

    @property
    def pool(self) -> psycopg_pool.ConnectionPool:
        from gis.db import get_pool

        return get_pool()


class Connector(procrastinate.PsycopgConnector):
    """Async for the worker, sync over gis.db's pool for everyone else (see the module doc)."""

    def __init__(self) -> None:
        super().__init__(pool_factory=_worker_pool)
        self._sync = _SharedPoolConnector()

    def get_sync_connector(self) -> procrastinate.BaseConnector:
        return self._sync


app = procrastinate.App(connector=Connector(), import_paths=TASK_MODULES)


def sync_manager() -> manager.JobManager:
    """procrastinate's job manager over gis.db's pool (sync calls: list, retry, cancel)."""
    return manager.JobManager(app.connector.get_sync_connector())


def enqueue(conn: psycopg.Connection[Any], task: procrastinate.tasks.Task[Any, Any, Any],
            queue: str | None = None, **kwargs: Any) -> int:
    """Enqueue TASK with KWARGS on CONN, in its transaction if it has one open (see the module
    doc), on QUEUE (default: the task's); returns the job's id. With an autocommit connection
    outside a transaction block the job is queued at once."""
    return int(task.configure(connection=conn, queue=queue).defer(**kwargs))
