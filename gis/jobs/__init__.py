"""Background work: one job queue in PostgreSQL (procrastinate), run by queue workers.

Every job of the platform is a row of procrastinate_jobs (schema: migration 0016): export jobs
(gis.io.jobs), webhook deliveries (gis.jobs.webhooks), later the scheduled briefings (periodic
tasks of the same app). queue.py holds the app and the list of task modules, worker.py the
worker (`geoioc worker`, and one inside `geoioc serve`), webhooks.py the deliveries and their
dead letters.

Why procrastinate (3.10) and not pgqueuer (1.6):
- psycopg 3 on both sides, and our pool: its synchronous connector accepts an existing
  psycopg_pool.ConnectionPool, so enqueueing and the admin's replays use gis.db's pool (same
  role, same outage handling); the worker has its own asyncio pool. pgqueuer's drivers wrap one
  connection each, mostly asyncio, and have nothing for a synchronous FastAPI handler's pool.
- alembic: its schema is a plain SQL file shipped in the package (procrastinate/sql/schema.sql,
  with a delta file per version in sql/migrations/), which our migration applies as it is;
  pgqueuer generates its SQL in Python and installs it with its own CLI (`pgq install`).
- what issue 15 asks is in the library: a job deferred on a given connection, inside the
  caller's transaction (`task.configure(connection=conn)`); retry strategies with backoff per
  task; failed jobs stay in the table with status `failed` (our dead-letter list) and
  `retry_job_by_id` puts one back; worker heartbeats and a stalled-jobs query for jobs whose
  worker died; periodic (cron) tasks for the briefings to come.
"""
