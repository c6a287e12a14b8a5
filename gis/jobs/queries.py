"""SQL over procrastinate's tables that its job manager does not offer: the dead letters of a
task (failed jobs, with when they were queued and when they last failed)."""

from __future__ import annotations

# A dead letter: a job of the task that ended `failed` (its retries spent). The events table
# (procrastinate's) dates them and counts its runs (`attempts` of the job also counts replays).
DEAD_LETTERS = """
SELECT j.id, j.args,
       (SELECT count(*) FROM procrastinate_events e WHERE e.job_id = j.id AND e.type = 'started') AS runs,
       j.queue_name,
       (SELECT min(e.at) FROM procrastinate_events e WHERE e.job_id = j.id AND e.type = 'deferred') AS queued,
       (SELECT max(e.at) FROM procrastinate_events e WHERE e.job_id = j.id AND e.type = 'failed') AS failed
  FROM procrastinate_jobs j
 WHERE j.task_name = %(task)s AND j.status = 'failed'
   AND (%(id)s::bigint IS NULL OR j.id = %(id)s)
 ORDER BY j.id
 LIMIT %(limit)s
"""

# A job's status and attempts (tests, the CLI).
JOB = "SELECT id, status, attempts, args FROM procrastinate_jobs WHERE id = %s"
