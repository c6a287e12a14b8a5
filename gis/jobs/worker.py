"""Queue workers: `geoioc worker` (a process of its own) and the one inside `geoioc serve`.

The arrangement, the simplest that is honest about what runs: `geoioc serve` (and so `make
run`) starts one worker in a thread of the server process (in_process_start, from the app's
lifespan; setting `jobs_in_process` false turns it off), so a fresh checkout processes jobs
without a second command. Where the load asks for it, `geoioc worker` runs workers apart (on
other machines, for some queues only) and the servers run with GEOIOC_JOBS_IN_PROCESS=false.
Either way the jobs are rows of one table: any number of workers share them, and a job whose
worker died is run again by another (gis.jobs.maintenance).

The in-process worker has its own thread and event loop: a job never blocks a request's loop,
and blocking jobs (exports) run in the worker's threads as procrastinate runs every sync task.
A worker started again while running is the same worker (a count of starts), so every test
client and the server's lifespan may start and stop it freely.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Iterable
from typing import Any

from gis.jobs.queue import QUEUES, app

log = logging.getLogger(__name__)

GRACE_SECONDS = 10.0  # on stop, running jobs get this long; after it they are stalled and re-run
RESTART_MAX_SECONDS = 30.0


def options(queues: Iterable[str] | None = None, name: str | None = None,
            concurrency: int | None = None) -> dict[str, Any]:
    from gis.settings import get_settings

    s = get_settings()
    return {"queues": list(queues or QUEUES), "name": name or "geoioc",
            "concurrency": concurrency or s.jobs_concurrency,
            "fetch_job_polling_interval": s.jobs_poll_seconds,
            "abort_job_polling_interval": max(s.jobs_poll_seconds, 5.0),
            "update_heartbeat_interval": s.jobs_heartbeat_seconds,
            "stalled_worker_timeout": s.jobs_stalled_seconds,
            "shutdown_graceful_timeout": GRACE_SECONDS,
            "listen_notify": True}


async def run(queues: Iterable[str] | None = None, name: str | None = None,
              concurrency: int | None = None, install_signal_handlers: bool = True) -> None:
    """Run a worker until stopped (a signal, or the task cancelled)."""
    from gis.jobs.maintenance import recover_stalled

    app.perform_import_paths()  # type: ignore[no-untyped-call]
    # Jobs left by a worker that died before this one started are not left for the next
    # minute's upkeep.
    await asyncio.to_thread(recover_stalled)
    async with app.open_async():
        await app.run_worker_async(**options(queues, name, concurrency),
                                   install_signal_handlers=install_signal_handlers)


class _InProcess:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.starts = 0
        self.thread: threading.Thread | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task[None] | None = None
        self.ready = threading.Event()

    def start(self) -> None:
        with self.lock:
            self.starts += 1
            if self.thread is not None:
                return
            self.ready.clear()
            self.thread = threading.Thread(target=self._main, name="geoioc-jobs-worker", daemon=True)
            self.thread.start()
        self.ready.wait(10)

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self.loop = loop
        try:
            self.task = loop.create_task(self._run())
            loop.run_until_complete(self.task)
        except asyncio.CancelledError:
            pass
        finally:
            loop.close()
            self.ready.set()

    async def _run(self) -> None:
        """Run the worker; when it fails (the database went away) start it again after a pause
        that doubles up to RESTART_MAX_SECONDS: the server outlives an outage, so must its
        worker. Only a cancellation (stop) ends it."""
        self.ready.set()
        pause = 1.0
        while True:
            try:
                await run(name="geoioc-serve", install_signal_handlers=False)
                return
            except Exception:
                log.warning("the in-process job worker stopped; starting again in %.0f s", pause,
                            exc_info=True)
            await asyncio.sleep(pause)
            pause = min(RESTART_MAX_SECONDS, pause * 2)

    def stop(self, wait: float = GRACE_SECONDS + 5) -> None:
        with self.lock:
            self.starts = max(0, self.starts - 1)
            if self.starts or self.thread is None:
                return
            thread, loop, task = self.thread, self.loop, self.task
            self.thread = self.loop = self.task = None
        if loop is not None and task is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop ended on its own meanwhile
                loop.call_soon_threadsafe(task.cancel)
        thread.join(wait)


_worker = _InProcess()


def in_process_start() -> None:
    """Start the worker of this process (or count one more user of it)."""
    _worker.start()


def in_process_stop() -> None:
    """One user less; the last one stops the worker (running jobs get GRACE_SECONDS)."""
    _worker.stop()
