"""Live report events for the operator console: PostgreSQL NOTIFY in, server-sent events out.

publish() sends a NOTIFY on the connection of the transaction that stored a new report or a
transition (called from notify.on_transition; a new report's events are sent by intake's own
statement, queries.CREATE_REPORT, with the same payload), so an event exists if and only if the change
committed, and every server process hears it: each process keeps one LISTEN connection
(Listener) and fans the events out to its subscribers (one queue per open event stream).
The payload holds public facts only (id, status, service, agency, commune, deadline): the
console refetches what it shows under its own access.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
from typing import Any

import psycopg

from gis.reports import queries as q

log = logging.getLogger(__name__)

# An event stream that does not keep up loses its oldest events (the console refetches anyway).
QUEUE_SIZE = 100
# Seconds before the listener tries again after losing its connection.
RETRY_SECONDS = 1.0


def publish(conn: psycopg.Connection, incident_id: int, event: str, kind: str,
            at: dt.datetime) -> None:
    """NOTIFY the report event in CONN's current transaction (nothing for a security event)."""
    conn.execute(q.NOTIFY_EVENT, {"channel": q.EVENTS_CHANNEL, "event": event, "kind": kind,
                                  "at": at, "id": incident_id})


class Listener:
    """One LISTEN connection per process, shared by every event stream of the process."""

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self.subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self.task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        self.subscribers.add(queue)
        if self.task is None or self.task.done():
            self.ready.clear()
            self.task = asyncio.create_task(self._run(), name="geoioc-report-events")
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self.subscribers.discard(queue)

    async def wait_ready(self, timeout: float) -> bool:
        """Whether LISTEN is in place (events committed from now on will arrive)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.ready.wait(), timeout)
        return self.ready.is_set()

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
            self.task = None

    def _fan_out(self, payload: str) -> None:
        try:
            event = json.loads(payload)
        except ValueError:
            return
        for queue in list(self.subscribers):
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(event)

    async def _run(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                        self.conninfo, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {q.EVENTS_CHANNEL}")
                    self.ready.set()
                    # A reconnection may have missed events: tell the consoles to refetch.
                    self._fan_out(json.dumps({"event": "resync"}))
                    async for n in conn.notifies():
                        self._fan_out(n.payload)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.ready.clear()
                log.warning("report events: listener connection lost; retrying", exc_info=True)
                await asyncio.sleep(RETRY_SECONDS)
