"""Export jobs: big exports run in a small in-process thread pool, with progress and a download.

Why in-process: an export is one streaming query and one GDAL write; a queue service would add
a moving part for no gain at this scale. What is not in memory: the job itself. Each job is a
row of export_jobs (migration 0011) and its file lies under .geoioc/exports/<id>/, so every
server process answers for every job, and a job accepted by a process that then stops (a
restart, a crash) is not lost: a running job touches its row every HEARTBEAT, and a job whose
row has not been touched for STALE is taken over by the next runner that looks (at start-up
and on each new submission) and run again from the start, with the roles it was accepted with
as far as the user still holds them. Finished jobs and their files are kept JOB_TTL.

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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from gis.io.export import ExportError, ExportRequest, ExportResult, LayerNotFound
from layers.access import Principal
from layers.errors import Message

log = logging.getLogger(__name__)

JOB_TTL = dt.timedelta(hours=24)
WORKERS = 2
HEARTBEAT = 10.0  # seconds between touches of a running job's row
STALE = dt.timedelta(seconds=60)  # a job not touched for this long has lost its process
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


class JobRunner:
    def __init__(self, root: Path, workers: int = WORKERS) -> None:
        self.root = root
        self.running: set[str] = set()  # ids of the jobs this process runs (heartbeat)
        self.lock = threading.Lock()
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="geoioc-export")
        self._beat = threading.Thread(target=self._heartbeat, name="geoioc-export-heartbeat", daemon=True)
        self._beat.start()

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

    # --- running ----------------------------------------------------------------------------

    def submit(self, req: ExportRequest, who: Principal, total: int | None, request: Any = None
               ) -> ExportJob:
        from gis.db import connection

        self.clean_up()
        job_id = uuid.uuid4().hex
        job = ExportJob(job_id, who.user, req, self.root / job_id, rows_total=total)
        with connection() as conn:
            conn.execute("INSERT INTO export_jobs (id, owner, roles, request, rows_total, created, updated) "
                         "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                         (job.id, job.owner, sorted(who.roles), Jsonb(_request_json(req)), total,
                          job.created, job.updated))
        self._start(job, who, request)
        self.recover()
        return job

    def _start(self, job: ExportJob, who: Principal, request: Any) -> None:
        with self.lock:
            self.running.add(job.id)
        self.pool.submit(self._run, job, who, request)

    def _save(self, job: ExportJob) -> None:
        from gis.db import connection

        with connection() as conn:
            conn.execute(
                "UPDATE export_jobs SET status = %s, rows_done = %s, rows_total = %s, message = %s, "
                "started = %s, finished = %s, updated = %s, result = %s WHERE id = %s",
                (job.status, job.rows_done, job.rows_total, job.message, job.started, job.finished,
                 job.updated, Jsonb(_result_json(job.result)) if job.result else None, job.id))

    def _run(self, job: ExportJob, who: Principal, request: Any) -> None:
        from gis.db import connection
        from gis.io.export import export

        try:
            job.status, job.started = "running", dt.datetime.now(dt.UTC)
            job.updated = job.started
            self._save(job)
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
                                        request=request, channel="export-job")
                job.status, job.message = "successful", f"{job.result.rows} features"
            except (ExportError, LayerNotFound) as e:
                job.status, job.message = "failed", str(e)
            except Exception as e:  # a job must end in a state the client can see
                log.exception("export job %s failed", job.id)
                job.status, job.message = "failed", f"internal error: {type(e).__name__}"
            job.finished = job.updated = dt.datetime.now(dt.UTC)
            self._save(job)
        except Exception:  # the database went away: the heartbeat stops, another runner takes over
            log.exception("export job %s could not record its state", job.id)
        finally:
            with self.lock:
                self.running.discard(job.id)

    def _heartbeat(self) -> None:
        from gis.db import connection

        while True:
            time.sleep(HEARTBEAT)
            with self.lock:
                ids = list(self.running)
            if not ids:
                continue
            try:
                with connection() as conn:
                    conn.execute("UPDATE export_jobs SET updated = now() WHERE id = ANY(%s) "
                                 "AND status IN ('accepted', 'running')", (ids,))
            except Exception:  # the next beat tries again
                log.warning("export job heartbeat failed", exc_info=True)

    def recover(self) -> list[str]:
        """Take over the jobs whose process stopped (not touched for STALE) and run them again;
        returns their ids. Each is claimed by one UPDATE, so two runners never both take it."""
        from gis.auth.users import get_account
        from gis.db import connection

        taken: list[tuple[ExportJob, Principal]] = []
        with connection() as conn:
            rows = conn.execute(
                f"UPDATE export_jobs SET updated = now(), attempts = attempts + 1, status = 'accepted', "  # noqa: S608
                "rows_done = 0 WHERE status IN ('accepted', 'running') AND updated < now() - %s "
                f"RETURNING {_COLUMNS}, attempts", (STALE,)).fetchall()
            for row in rows:
                job, roles, attempts = _job(row[:-1], self.root), frozenset(row[2]), row[-1]
                who, why = self._principal(conn, job.owner, roles, get_account)
                if attempts > MAX_ATTEMPTS:
                    why = f"stopped {MAX_ATTEMPTS} times with its server process; not run again"
                if why:
                    conn.execute("UPDATE export_jobs SET status = 'failed', message = %s, finished = now() "
                                 "WHERE id = %s", (why, job.id))
                    continue
                job.status, job.message = "accepted", f"run again after an interruption (attempt {attempts})"
                taken.append((job, who))
        for job, who in taken:
            log.warning("export job %s: its process stopped; running it again", job.id)
            self._start(job, who, None)
        return [job.id for job, _ in taken]

    @staticmethod
    def _principal(conn: psycopg.Connection, owner: str | None, roles: frozenset[str],
                   get_account: Any) -> tuple[Principal, str]:
        """Who a job runs as again: the roles it was accepted with that the user still holds."""
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


_runner: JobRunner | None = None
_runner_lock = threading.Lock()


def runner() -> JobRunner:
    """The process's job runner; files under .geoioc/exports/, state in export_jobs."""
    global _runner
    if _runner is None:
        with _runner_lock:
            if _runner is None:
                from gis.settings import PROJECT_ROOT

                _runner = JobRunner(PROJECT_ROOT / ".geoioc" / "exports")
    return _runner
