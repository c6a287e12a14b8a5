"""Live events of the whole process: PostgreSQL NOTIFY in, per-stream queues out.

Producers send a NOTIFY in the transaction that made the change (so an event exists if and only
if the change committed, and every server process hears it):

- channel `geoioc_reports` (gis/reports/events.py): a citizen report or incident arrived or moved;
- channel `geoioc_live` (LIVE_CHANNEL): a JSON object `{"kind": ..., "layer": ..., ...}` under
  MAX_PAYLOAD bytes - `observations` (the ingest, one per batch: the datastream ids it stored),
  `alert` (gis/sensors/alerts.py: opened, closed, acknowledged), `camera`, `congestion` and
  `detection` (cameras and traffic).

Each process keeps ONE LISTEN connection (Listener) for every channel, however many event
streams are open (the operator console's, the live map's), and fans each notification out to
the streams that asked for its channel. Payloads carry ids and public facts only: each stream
reads what it shows under its own caller's access (api/routes/map_live.py, api/routes/reports.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

LIVE_CHANNEL = "geoioc_live"
REPORTS_CHANNEL = "geoioc_reports"  # gis/reports/queries.EVENTS_CHANNEL (checked by the tests)
CHANNELS = (REPORTS_CHANNEL, LIVE_CHANNEL)
# The channel of the listener's own `resync` event, which every stream receives.
ANY_CHANNEL = "*"
# PostgreSQL refuses a NOTIFY payload of 8000 bytes or more; the agreed bound leaves room.
MAX_PAYLOAD = 7000
# A stream that does not keep up loses its oldest events (the clients refetch on `resync`).
QUEUE_SIZE = 1000
# Seconds before the listener tries again after losing its connection.
RETRY_SECONDS = 1.0

NOTIFY = "SELECT pg_notify(%s, %s)"


def notify(conn: psycopg.Connection[Any], payload: dict[str, Any],
           channel: str = LIVE_CHANNEL) -> None:
    """NOTIFY PAYLOAD on CHANNEL in CONN's current transaction (delivered at its commit).
    ValueError when it would not fit MAX_PAYLOAD: producers chunk lists (notify_chunked)."""
    text = json.dumps(payload, separators=(",", ":"), default=str)
    if len(text.encode()) >= MAX_PAYLOAD:
        raise ValueError(f"live event of {len(text.encode())} bytes (at most {MAX_PAYLOAD})")
    conn.execute(NOTIFY, (channel, text))


def chunks(payload: dict[str, Any], key: str, items: Sequence[Any]) -> list[dict[str, Any]]:
    """PAYLOAD with its list KEY cut into as few pieces as keep each under MAX_PAYLOAD."""
    out: list[dict[str, Any]] = []
    base = len(json.dumps({**payload, key: []}, separators=(",", ":"), default=str).encode())
    part: list[Any] = []
    size = base
    for item in items:
        n = len(json.dumps(item, separators=(",", ":"), default=str).encode()) + 1
        if part and size + n >= MAX_PAYLOAD:
            out.append({**payload, key: part})
            part, size = [], base
        part.append(item)
        size += n
    if part:
        out.append({**payload, key: part})
    return out


def notify_chunked(conn: psycopg.Connection[Any], payload: dict[str, Any], key: str,
                   items: Sequence[Any]) -> int:
    """One NOTIFY per piece of ITEMS (usually one); how many were sent."""
    pieces = chunks(payload, key, items)
    for p in pieces:
        notify(conn, p)
    return len(pieces)


def notify_observations(conn: psycopg.Connection[Any], datastream_ids: Iterable[int]) -> int:
    """The ingest's event for one stored batch: which datastreams have new observations (the
    map's streams read their latest values under each caller's access)."""
    ids = sorted({int(i) for i in datastream_ids})
    if not ids:
        return 0
    return notify_chunked(conn, {"kind": "observations", "layer": "sensors"}, "ids", ids)


@dataclass(eq=False)
class Subscription:
    """One event stream's inbox: (channel, event) pairs of the channels it asked for."""

    channels: frozenset[str]
    queue: asyncio.Queue[tuple[str, dict[str, Any]]] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_SIZE))

    async def get(self) -> tuple[str, dict[str, Any]]:
        return await self.queue.get()


class Listener:
    """One LISTEN connection per process, on every channel, shared by every event stream."""

    def __init__(self, conninfo: str, channels: Sequence[str] = CHANNELS) -> None:
        self.conninfo = conninfo
        self.channels = tuple(channels)
        self.subscribers: set[Subscription] = set()
        self.task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    def subscribe(self, channels: Iterable[str] | None = None) -> Subscription:
        wanted = frozenset(channels) if channels is not None else frozenset(self.channels)
        unknown = wanted - set(self.channels)
        if unknown:
            raise ValueError(f"not listened to: {sorted(unknown)}")
        sub = Subscription(wanted)
        self.subscribers.add(sub)
        if self.task is None or self.task.done():
            self.ready.clear()
            self.task = asyncio.create_task(self._run(), name="geoioc-live-events")
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self.subscribers.discard(sub)

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

    def _fan_out(self, channel: str, event: dict[str, Any]) -> None:
        for sub in list(self.subscribers):
            if channel not in sub.channels and channel != ANY_CHANNEL:
                continue
            if sub.queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    sub.queue.get_nowait()
            sub.queue.put_nowait((channel, event))

    def _resync(self) -> None:
        """A reconnection may have missed events: every stream is told (once) to refetch."""
        self._fan_out(ANY_CHANNEL, {"event": "resync"})

    async def _run(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                        self.conninfo, autocommit=True) as conn:
                    for channel in self.channels:
                        await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                    self.ready.set()
                    self._resync()
                    async for n in conn.notifies():
                        try:
                            event = json.loads(n.payload)
                        except ValueError:
                            continue
                        if isinstance(event, dict):
                            self._fan_out(n.channel, event)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.ready.clear()
                log.warning("live events: listener connection lost; retrying", exc_info=True)
                await asyncio.sleep(RETRY_SECONDS)


def process_listener(state: Any, conninfo: str) -> Listener:
    """The process's one Listener, kept on STATE (the app's state): created on first use."""
    listener = getattr(state, "live_events", None)
    if listener is None:
        listener = state.live_events = Listener(conninfo)
    return listener
