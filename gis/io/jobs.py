"""Export jobs: big exports run in a small in-process thread pool, with progress and a download.

Why in-process: an export is one streaming query and one GDAL write; a queue service would add
a moving part for no gain at this scale. The price, said plainly: job state lives in memory (a
restart forgets running and finished jobs; their files under .geoioc/exports/ are removed by the
next clean-up), and several server processes do not share jobs (a job must be polled on the
process that runs it - one process, or sticky sessions). Finished files are kept JOB_TTL.

The status document follows OGC API - Processes' statusInfo (jobID, status accepted / running /
successful / failed, progress 0-100, created / started / finished / updated, links), so a
Processes client can poll it.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gis.io.export import ExportError, ExportRequest, ExportResult, LayerNotFound
from layers.access import Principal

log = logging.getLogger(__name__)

JOB_TTL = dt.timedelta(hours=24)
WORKERS = 2


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


class JobRunner:
    def __init__(self, root: Path, workers: int = WORKERS) -> None:
        self.root = root
        self.jobs: dict[str, ExportJob] = {}
        self.lock = threading.Lock()
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="geoioc-export")

    def submit(self, req: ExportRequest, who: Principal, total: int | None, request: Any = None
               ) -> ExportJob:
        self.clean_up()
        job_id = uuid.uuid4().hex
        job = ExportJob(job_id, who.user, req, self.root / job_id, rows_total=total)
        with self.lock:
            self.jobs[job_id] = job
        self.pool.submit(self._run, job, who, request)
        return job

    def of(self, who: Principal) -> list[ExportJob]:
        """WHO's jobs, newest first (anonymous callers list none: theirs are reachable by id)."""
        if who.user is None:
            return []
        with self.lock:
            mine = [job for job in self.jobs.values() if job.owner == who.user]
        return sorted(mine, key=lambda job: job.created, reverse=True)

    def get(self, job_id: str, who: Principal) -> ExportJob | None:
        """The job, if WHO started it (another user's job does not exist for them)."""
        job = self.jobs.get(job_id)
        if job is None or job.owner != who.user:
            return None
        return job

    def _run(self, job: ExportJob, who: Principal, request: Any) -> None:
        from gis.db import connection
        from gis.io.export import export

        job.status, job.started = "running", dt.datetime.now(dt.UTC)
        job.updated = job.started

        def progress(done: int, total: int | None) -> None:
            job.rows_done, job.updated = done, dt.datetime.now(dt.UTC)
            if total is not None:
                job.rows_total = total

        try:
            with connection() as conn:
                job.result = export(conn, job.request, who, job.directory, progress=progress,
                                    request=request)
            job.status, job.message = "successful", f"{job.result.rows} features"
        except (ExportError, LayerNotFound) as e:
            job.status, job.message = "failed", str(e)
        except Exception as e:  # a job must end in a state the client can see
            log.exception("export job %s failed", job.id)
            job.status, job.message = "failed", f"internal error: {type(e).__name__}"
        job.finished = job.updated = dt.datetime.now(dt.UTC)

    def clean_up(self) -> None:
        """Forget jobs finished more than JOB_TTL ago and delete their files, and any files
        left by a previous process."""
        cutoff = dt.datetime.now(dt.UTC) - JOB_TTL
        with self.lock:
            for job_id, job in list(self.jobs.items()):
                if job.finished is not None and job.finished < cutoff:
                    shutil.rmtree(job.directory, ignore_errors=True)
                    del self.jobs[job_id]
            known = set(self.jobs)
        if self.root.exists():
            for d in self.root.iterdir():
                if d.is_dir() and d.name not in known and d.name != "tmp":
                    mtime = dt.datetime.fromtimestamp(d.stat().st_mtime, dt.UTC)
                    if mtime < cutoff:
                        shutil.rmtree(d, ignore_errors=True)


_runner: JobRunner | None = None
_runner_lock = threading.Lock()


def runner() -> JobRunner:
    """The process's job runner; files under .geoioc/exports/."""
    global _runner
    if _runner is None:
        with _runner_lock:
            if _runner is None:
                from gis.settings import PROJECT_ROOT

                _runner = JobRunner(PROJECT_ROOT / ".geoioc" / "exports")
    return _runner
