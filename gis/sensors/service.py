"""The ingest worker inside `geoioc serve` (setting ingest_in_process, on by default).

Started from the app's lifespan like the job-queue worker (gis/jobs/worker.py), counted the same
way (every start needs its stop; the last stop stops it), and never in the way of serving: a
broker or database not there yet is logged and retried in the background, and the API answers
meanwhile (/healthz/ingest shows the worker is not running).
"""

from __future__ import annotations

import logging
import threading

from gis.sensors.ingest import IngestWorker
from gis.settings import Settings

log = logging.getLogger(__name__)
RETRY_SECONDS = 15.0


class _InProcess:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.starts = 0
        self.worker: IngestWorker | None = None
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        self.settings: Settings | None = None

    def start(self, settings: Settings | None = None) -> None:
        with self.lock:
            self.starts += 1
            if self.thread is not None:
                return
            self.stopping.clear()
            self.settings = settings
            self.thread = threading.Thread(target=self._main, name="geoioc-ingest-start", daemon=True)
            self.thread.start()

    def _main(self) -> None:
        while not self.stopping.is_set():
            try:
                worker = IngestWorker(self.settings)
                with self.lock:
                    if self.stopping.is_set():
                        return
                    self.worker = worker
                worker.start(timeout=30.0)
                return
            except Exception as e:  # the database or the broker is not there yet
                with self.lock:
                    w, self.worker = self.worker, None
                if w is not None:
                    w.stop(timeout=1)
                log.warning("the in-process ingest worker could not start (%s); again in %.0f s",
                            e, RETRY_SECONDS)
                self.stopping.wait(RETRY_SECONDS)

    def stop(self) -> None:
        with self.lock:
            self.starts = max(0, self.starts - 1)
            if self.starts or self.thread is None:
                return
            self.stopping.set()
            thread, self.thread = self.thread, None
        thread.join(35)
        with self.lock:
            worker, self.worker = self.worker, None
        if worker is not None:
            worker.stop()


_ingest = _InProcess()


def in_process_start(settings: Settings | None = None) -> None:
    """Start this process's worker (with SETTINGS, default the environment's), or count one
    more user of it."""
    _ingest.start(settings)


def running() -> IngestWorker | None:
    """This process's worker, once started."""
    return _ingest.worker


def in_process_stop() -> None:
    _ingest.stop()
