"""Export jobs: big exports run by the platform's job queue (gis.jobs), with progress and a
download.

Each job is a row of export_jobs (migration 0011), the status document, and a job of the queue
(task `export.run`) that runs it; the two are written in one transaction, so a job accepted is
a job queued. Its file lies under .geoioc/exports/<id>/, so every server process answers for
every job. A job whose worker stops mid-run (a restart, a crash) is not lost: the queue sees the
worker's heartbeat stop and queues the job again (gis.jobs.maintenance, procrastinate's stalled
jobs), and the run that takes it over starts from the beginning, counts the interruption
(`attempts`; after MAX_ATTEMPTS it gives up) and runs with the roles the job was accepted with
as far as the user still holds them; an open job that no queue job runs any more is queued
again by the upkeep (requeue_orphans). Finished jobs and their files are kept JOB_TTL.

The status document follows OGC API - Processes' statusInfo (jobID, status accepted / running /
successful / failed, progress 0-100, created / started / finished / updated, links), so a
Processes client can poll it.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from procrastinate import RetryStrategy
from psycopg.types.json import Jsonb

from gis import audit as audit_log
from gis.io.export import ExportError, ExportRequest, ExportResult, LayerNotFound
from gis.jobs.maintenance import recover_stalled
from gis.jobs.queue import EXPORTS, MAINTENANCE, app, enqueue
from layers.access import Principal
from layers.errors import Message

log = logging.getLogger(__name__)

JOB_TTL = dt.timedelta(hours=24)
MAX_ATTEMPTS = 3  # a job that keeps killing its process is not run a fourth time
PROGRESS_EVERY = 1.0  # seconds between progress writes


@dataclass
class ExportJob:
    id: str
    owner: str | None  # user name; anonymous jobs are reachable by their unguessable id only
    request: ExportRequest
    directory: Path
    status: str = "accepted"
    rows_done: int = 0
    rows_total: int | None = None
    message: str = ""
    created: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    started: dt.datetime | None = None
    finished: dt.datetime | None = None
    updated: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    result: ExportResult | None = None

    @property
    def progress(self) -> int:
        if self.status == "successful":
            return 100
        if not self.rows_total:
            return 0
        return min(99, int(100 * self.rows_done / self.rows_total))

    def status_info(self, url: str, results: str) -> dict[str, Any]:
        """An OGC API - Processes status document; URL is the job's own, RESULTS its file's."""
        links = [{"rel": "self", "type": "application/json", "href": url}]
        if self.status == "successful" and self.result is not None:
            links.append({"rel": "http://www.opengis.net/def/rel/ogc/1.0/results",
                          "type": self.result.media_type, "href": results,
                          "title": self.result.filename})
        stamp = {k: v.isoformat().replace("+00:00", "Z") for k, v in (
            ("created", self.created), ("started", self.started), ("finished", self.finished),
            ("updated", self.updated)) if v is not None}
        out: dict[str, Any] = {
            "jobID": self.id, "type": "process", "processID": "export", "status": self.status,
            "progress": self.progress, "message": self.message, "rows": self.rows_done,
            "rowsTotal": self.rows_total, "request": self.request.summary(), **stamp, "links": links,
        }
        if self.result is not None:
            out["file"] = {"name": self.result.filename, "rows": self.result.rows,
                           "bytes": self.result.path.stat().st_size if self.result.path.exists() else None,
                           "warnings": self.result.warnings}
        return out


# The job's message is stored as English (export_jobs.message); these are its catalogue entries
# (api/messages.py), so that a job's status reads in the user's language: the message's shape,
# the entry, and the names of its parts (digits are numbers).
_MESSAGES: tuple[tuple[re.Pattern[str], str, tuple[str, ...]], ...] = (
    (re.compile(r"(\d+) features"), "job_done", ("rows",)),
    (re.compile(r"internal error: (\w+)"), "job_internal_error", ("kind",)),
    (re.compile(r"run again after an interruption \(attempt (\d+)\)"), "job_rerun", ("attempt",)),
    (re.compile(r"stopped (\d+) times with its server process; not run again"), "job_stopped", ("n",)),
    (re.compile(r"user (.+) no longer exists or is disabled: not run again"), "job_user_gone", ("user",)),
)


def message_entry(job: ExportJob) -> Message | None:
    """JOB's message as a catalogue entry: one of ours by its shape; an export's own error (in
    English, as the exporter raised it) as "the export failed"; None without a message."""
    for pattern, key, names in _MESSAGES:
        m = pattern.fullmatch(job.message)
        if m:
            return Message(key, {n: int(v) if v.isdigit() else v for n, v in zip(names, m.groups(),
                                                                                  strict=True)})
    return Message("job_failed") if job.status == "failed" and job.message else None


def _request_json(req: ExportRequest) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in req.__dict__.items()}


def _result_json(r: ExportResult) -> dict[str, Any]:
    return {**r.__dict__, "path": str(r.path)}


_COLUMNS = ("id, owner, roles, request, status, rows_done, rows_total, message, created, started, "
            "finished, updated, result")


def _job(row: tuple, root: Path) -> ExportJob:
    (job_id, owner, _roles, request, status, rows_done, rows_total, message, created, started,
     finished, updated, result) = row
    return ExportJob(job_id, owner, ExportRequest(**request), root / job_id, status, rows_done,
                     rows_total, message, created, started, finished, updated,
                     ExportResult(**{**result, "path": Path(result["path"])}) if result else None)


def _cols(alias: str) -> str:
    return ", ".join(f"{alias}.{c.strip()}" for c in _COLUMNS.split(","))


# Take a job for a run: `running` again from the start. A job found `running` was interrupted
# (its worker died and the queue gave it to this one): one attempt more.
_CLAIM = (f"WITH old AS (SELECT id, status FROM export_jobs WHERE id = %s "  # noqa: S608
          "AND status IN ('accepted', 'running') FOR UPDATE) "
          "UPDATE export_jobs j SET attempts = j.attempts + (old.status = 'running')::int, "
          "status = 'running', rows_done = 0, message = '', started = now(), updated = now() "
          f"FROM old WHERE j.id = old.id RETURNING {_cols('j')}, j.attempts, old.status")


# Open export jobs without a live queue job (see ExportJobs.requeue_orphans), locked so two
# upkeeps do not both queue one. A job just accepted has its queue job from the same
# transaction; the age is only a margin.
_ORPHANS = """
SELECT e.id FROM export_jobs e
 WHERE e.status IN ('accepted', 'running') AND e.updated < now() - %(age)s
   AND NOT EXISTS (SELECT FROM procrastinate_jobs j WHERE j.task_name = %(task)s
                    AND j.args ->> 'job_id' = e.id AND j.status IN ('todo', 'doing'))
 FOR UPDATE OF e SKIP LOCKED
"""
ORPHAN_AFTER = dt.timedelta(minutes=2)


class ExportJobs:
    """The export jobs whose files lie under ROOT: submit, read, run (by the queue's worker)."""

    def __init__(self, root: Path, queue: str = EXPORTS) -> None:
        self.root = root
        self.queue = queue  # the queue its jobs go to (a deployment may give some their own)

    # --- reading ----------------------------------------------------------------------------

    def of(self, who: Principal) -> list[ExportJob]:
        """WHO's jobs, newest first (anonymous callers list none: theirs are reachable by id)."""
        if who.user is None:
            return []
        from gis.db import connection

        with connection() as conn:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM export_jobs WHERE owner = %s "  # noqa: S608
                                "ORDER BY created DESC LIMIT 1000", (who.user,)).fetchall()
        return [_job(r, self.root) for r in rows]

    def get(self, job_id: str, who: Principal) -> ExportJob | None:
        """The job, if WHO started it (another user's job does not exist for them)."""
        from gis.db import connection

        with connection() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM export_jobs WHERE id = %s "  # noqa: S608
                               "AND owner IS NOT DISTINCT FROM %s", (job_id, who.user)).fetchone()
        return _job(row, self.root) if row else None

    # --- submitting -------------------------------------------------------------------------

    def submit(self, req: ExportRequest, who: Principal, total: int | None, request: Any = None
               ) -> ExportJob:
        """Accept the job: its row and its queue job in one transaction (both or neither)."""
        from gis.db import connection

        self.clean_up()
        job_id = uuid.uuid4().hex
        job = ExportJob(job_id, who.user, req, self.root / job_id, rows_total=total)
        with connection() as conn, conn.transaction():
            conn.execute("INSERT INTO export_jobs (id, owner, roles, request, rows_total, created, updated) "
                         "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                         (job.id, job.owner, sorted(who.roles), Jsonb(_request_json(req)), total,
                          job.created, job.updated))
            enqueue(conn, run_export, queue=self.queue, job_id=job.id, root=str(self.root),
                    audit=audit_log.request_args(request))
        return job

    def requeue_orphans(self) -> list[str]:
        """Queue again the open jobs that no queue job runs any more; returns their ids.

        A stalled worker is the queue's business (recover). This is the other way a job can be
        left open: a worker stopped gracefully (Ctrl+C on `geoioc serve`) gives its running
        jobs GRACE_SECONDS, then procrastinate marks them `aborted`, a final state; if the
        process is then killed before the export's thread ends, the export_jobs row stays
        `running` with nothing to run it. The periodic upkeep calls this; the run that takes
        the job counts the interruption like any other."""
        from gis.db import connection

        taken = []
        with connection() as conn, conn.transaction():
            rows = conn.execute(_ORPHANS, {"task": run_export.name, "age": ORPHAN_AFTER}).fetchall()
            for job_id, in rows:
                enqueue(conn, run_export, queue=self.queue, job_id=job_id, root=str(self.root), audit=None)
                taken.append(job_id)
        for job_id in taken:
            log.warning("export job %s: no queue job ran it any more; queued again", job_id)
        return taken

    def recover(self) -> list[str]:
        """Queue again the export jobs whose worker stopped (procrastinate's stalled jobs); returns
        their ids. The worker's upkeep does this every minute; here for a caller that will not
        wait (a worker starting, tests)."""
        return [r["args"]["job_id"] for r in recover_stalled(run_export.name)]

    # --- running (in a worker) ----------------------------------------------------------------

    def _save(self, job: ExportJob) -> None:
        from gis.db import connection

        with connection() as conn:
            conn.execute(
                "UPDATE export_jobs SET status = %s, rows_done = %s, rows_total = %s, message = %s, "
                "started = %s, finished = %s, updated = %s, result = %s WHERE id = %s",
                (job.status, job.rows_done, job.rows_total, job.message, job.started, job.finished,
                 job.updated, Jsonb(_result_json(job.result)) if job.result else None, job.id))

    def run(self, job_id: str, audit: dict[str, Any] | None = None) -> str:
        """Run the job (the queue's task); returns its final status. A job already finished (or
        forgotten) is left alone. An error recording its state (the database went away) is
        raised: the queue retries the run."""
        from gis.auth.users import get_account
        from gis.db import connection
        from gis.io.export import export

        with connection() as conn:
            row = conn.execute(_CLAIM, (job_id,)).fetchone()
            if row is None:
                return "gone"
            job, roles, attempts, was = _job(row[:-2], self.root), frozenset(row[2]), row[-2], row[-1]
            who, why = self._principal(conn, job.owner, roles, get_account)
        if attempts > MAX_ATTEMPTS:
            why = f"stopped {MAX_ATTEMPTS} times with its server process; not run again"
        if was == "running" and not why:
            job.message = f"run again after an interruption (attempt {attempts})"
            log.warning("export job %s: its worker stopped; running it again", job.id)
        if why:
            job.status, job.message = "failed", why
            job.finished = job.updated = dt.datetime.now(dt.UTC)
            self._save(job)
            return job.status
        saved = time.monotonic()

        def progress(done: int, total: int | None) -> None:
            nonlocal saved
            job.rows_done, job.updated = done, dt.datetime.now(dt.UTC)
            if total is not None:
                job.rows_total = total
            if time.monotonic() - saved >= PROGRESS_EVERY:
                self._save(job)
                saved = time.monotonic()

        try:
            shutil.rmtree(job.directory, ignore_errors=True)  # a run again starts clean
            with connection() as conn:
                job.result = export(conn, job.request, who, job.directory, progress=progress,
                                    request=audit_log.request_from_args(audit), channel="export-job")
            job.status, job.message = "successful", f"{job.result.rows} features"
        except (ExportError, LayerNotFound) as e:
            job.status, job.message = "failed", str(e)
        except psycopg.OperationalError:
            raise  # the database went away: the queue runs the job again later
        except Exception as e:  # a job must end in a state the client can see
            log.exception("export job %s failed", job.id)
            job.status, job.message = "failed", f"internal error: {type(e).__name__}"
        job.finished = job.updated = dt.datetime.now(dt.UTC)
        self._save(job)
        return job.status

    @staticmethod
    def _principal(conn: psycopg.Connection, owner: str | None, roles: frozenset[str],
                   get_account: Any) -> tuple[Principal, str]:
        """Who a job runs as: the roles it was accepted with that the user still holds."""
        if owner is None:
            return Principal(), ""
        account = get_account(conn, owner)
        if account is None or account.disabled:
            return Principal(), f"user {owner} no longer exists or is disabled: not run again"
        return Principal(owner, roles & frozenset(account.roles)), ""

    def clean_up(self) -> None:
        """Forget jobs finished more than JOB_TTL ago and delete their files, and any files no
        job knows about."""
        from gis.db import connection

        cutoff = dt.datetime.now(dt.UTC) - JOB_TTL
        with connection() as conn:
            conn.execute("DELETE FROM export_jobs WHERE finished < %s", (cutoff,))
            known = {r[0] for r in conn.execute("SELECT id FROM export_jobs")}
        if self.root.exists():
            for d in self.root.iterdir():
                if d.is_dir() and d.name not in known and d.name != "tmp":
                    mtime = dt.datetime.fromtimestamp(d.stat().st_mtime, dt.UTC)
                    if mtime < cutoff:
                        shutil.rmtree(d, ignore_errors=True)


# The database away for a while: the run is tried again twice, a minute apart.
@app.task(name="export.run", queue=EXPORTS,
          retry=RetryStrategy(max_attempts=2, wait=60, retry_exceptions=[psycopg.OperationalError]))
def run_export(job_id: str, root: str, audit: dict[str, Any] | None = None) -> str:
    return ExportJobs(Path(root)).run(job_id, audit)


@app.periodic(cron="*/5 * * * *")
@app.task(name="export.clean_up", queue=MAINTENANCE)
def clean_up(timestamp: int) -> None:
    """The 24 h TTL holds without new submissions too; orphaned jobs are queued again."""
    exports().clean_up()
    exports().requeue_orphans()


_exports: ExportJobs | None = None
_exports_lock = threading.Lock()


def exports() -> ExportJobs:
    """The export jobs of the server; files under .geoioc/exports/, state in export_jobs."""
    global _exports
    if _exports is None:
        with _exports_lock:
            if _exports is None:
                from gis.settings import PROJECT_ROOT

                _exports = ExportJobs(PROJECT_ROOT / ".geoioc" / "exports")
    return _exports
