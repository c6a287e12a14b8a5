"""The MQTT ingest worker: observations from the broker into PostGIS, nothing lost, nothing twice.

How a message travels, and why nothing is lost or doubled:

1. The worker holds an MQTT v5 session that outlives it (clean_start False, a session expiry
   of `ingest_session_expiry_seconds`) under a client id that stays the same across restarts
   (mqtt.client_id), and subscribes with QoS 1 through the shared subscription
   `$share/<ingest_share_group>/...`: the broker hands each message to one worker of the group,
   keeps what arrives while a worker is away, and sends again whatever a worker has not
   acknowledged.
2. paho's network thread puts each message in a queue (manual acknowledgement: paho does not
   acknowledge it). The worker's own thread takes a batch (up to `ingest_batch_max`
   observations, or whatever came within `ingest_batch_linger_seconds`), reads it
   (gis/sensors/payloads.py: bad messages are refused with a reason, never raised), COPYs the
   rows into a temporary table and runs queries.STORE: INSERT ... ON CONFLICT DO NOTHING
   RETURNING into the partitioned observations, rollups and latest rows from the returned rows,
   in one transaction with the worker's figures (ingest_workers) and the live map's event (a
   NOTIFY naming the datastreams that got new observations, gis/live.py).
3. Only after COMMIT are the batch's messages acknowledged (PUBACK), in the order received. A
   worker that dies before (process killed, database gone) has acknowledged nothing of the
   batch; the broker sends it again, to this worker when it returns or to another, and the key
   (datastream, phenomenon time) makes the second INSERT store nothing: the figures count those
   as duplicates and the rollups never see them.

A message received on an earlier connection (the link dropped and paho reconnected) is stored
but not acknowledged: its packet id belongs to the old connection, and the broker sends it
again on the new one, where it is acknowledged as a duplicate.

Cameras' heartbeats and detections (topics `geoioc/cameras/<code>/heartbeat|detections`,
gis/sensors/cameras.py) travel the same way: read in `_take_batch`, applied in the batch's
transaction after the observations (heartbeats in one set-based statement: last_seen, status,
history, the `camera` NOTIFY; detections one by one, a high-confidence one becoming its
incident), acknowledged after the commit and counted with the observations (an item each:
received, stored, duplicates - a detection sent again - and rejected by reason).

A batch the database refuses for its content (a constraint) is split in halves until the
refused messages are alone; those are acknowledged and counted as `refused_by_database`, so one
bad message never blocks the stream. A lost connection is retried with a doubling pause (the
batch stays in memory, unacknowledged).
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions
from psycopg import sql

from gis import live
from gis.sensors import alerts, cameras, payloads, queries
from gis.sensors import mqtt as broker
from gis.settings import Settings, get_settings

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0
RETRY_MAX_SECONDS = 30.0
# A message published by the server itself (the STA part announcing what it stored) carries this
# MQTT v5 user property; the worker acknowledges and skips it, so nothing loops.
ORIGIN_PROPERTY = ("geoioc-origin", "server")


@dataclass(slots=True)
class Message:
    mid: int
    qos: int
    topic: str
    payload: bytes
    generation: int  # the connection it came on
    rows: list[payloads.Row] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    heartbeats: list[cameras.Heartbeat] = field(default_factory=list)
    detections: list[cameras.Detection] = field(default_factory=list)

    @property
    def items(self) -> int:
        """What the message counts for: observations, camera items and refusals."""
        return len(self.rows) + len(self.reasons) + len(self.heartbeats) + len(self.detections)


@dataclass
class BatchResult:
    stored: int = 0
    duplicates: int = 0
    reasons: collections.Counter[str] = field(default_factory=collections.Counter)


class IngestWorker:
    """One ingest worker: an MQTT client and a database connection, in two threads of its own.

    `start()` returns once it is connected and subscribed (or raises after `timeout`);
    `stop()` finishes the batch in hand, acknowledges it and disconnects (the session stays with
    the broker); `kill()` is a crash: it drops everything not yet acknowledged, as a killed
    process would (tests, benchmarks)."""

    def __init__(self, settings: Settings | None = None, *, client_id: str | None = None,
                 topic_prefix: str | None = None, share_group: str | None = None,
                 batch_max: int | None = None) -> None:
        self.settings = s = settings or get_settings()
        self._slot = None
        if client_id is None:
            client_id, self._slot = broker.client_id(s)
        self.client_id = client_id
        self.prefix = s.mqtt_topic_prefix if topic_prefix is None else topic_prefix
        self.group = share_group or s.ingest_share_group
        self.batch_max = batch_max or s.ingest_batch_max
        self.window = payloads.Window(dt.timedelta(days=s.ingest_max_age_days),
                                      dt.timedelta(seconds=s.ingest_max_future_seconds))
        self.camera_limits = cameras.Limits.of(s)
        self.worker_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._queue: collections.deque[Message] = collections.deque()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._killed = False
        self._connected = threading.Event()
        self._generation = 0
        self._unreported_acks = 0
        self._drain = 0  # messages still to store once stopping
        self._conn: psycopg.Connection[Any] | None = None
        self._months: set[dt.date] = set()
        self._thread: threading.Thread | None = None
        self._client = self._make_client()

    # --- MQTT -------------------------------------------------------------------------------
    def _make_client(self) -> mqtt.Client:
        url = broker.parse_url(self.settings.mqtt_url)
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id,
                        protocol=mqtt.MQTTv5, manual_ack=True)
        if url.username:
            c.username_pw_set(url.username, url.password)
        if url.tls:
            c.tls_set()
        c.reconnect_delay_set(1, int(RETRY_MAX_SECONDS))
        c.on_connect = self._on_connect
        c.on_message = self._on_message
        c.on_subscribe = self._on_subscribe
        c.on_disconnect = self._on_disconnect
        return c

    def topics(self) -> list[str]:
        return [f"$share/{self.group}/{self.prefix}{t}"
                for t in (payloads.STA_TOPIC, payloads.GATEWAY_TOPIC, cameras.HEARTBEAT_TOPIC,
                          cameras.DETECTION_TOPIC)]

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        if reason.is_failure:
            log.warning("ingest %s: the broker refused the connection: %s", self.client_id, reason)
            return
        self._generation += 1
        client.subscribe([(t, SubscribeOptions(qos=1)) for t in self.topics()])
        log.info("ingest %s: connected (session %s)", self.client_id,
                 "resumed" if flags.session_present else "new")

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any,
                      properties: Any) -> None:
        """Subscribed (a resumed session was already): start() returns once messages flow."""
        if any(r.is_failure for r in reasons):
            log.error("ingest %s: the broker refused the subscription: %s", self.client_id,
                      ", ".join(str(r) for r in reasons))
            return
        self._connected.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                       properties: Any) -> None:
        self._connected.clear()
        if not self._stopping.is_set():
            log.warning("ingest %s: disconnected from the broker (%s); reconnecting",
                        self.client_id, reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        props = getattr(msg, "properties", None)
        if props is not None and ORIGIN_PROPERTY in (getattr(props, "UserProperty", None) or []):
            if msg.qos:
                client.ack(msg.mid, msg.qos)
            return
        self._queue.append(Message(msg.mid, msg.qos, msg.topic, bytes(msg.payload),
                                   self._generation))
        self._wake.set()

    # --- life -------------------------------------------------------------------------------
    def start(self, timeout: float = 15.0) -> IngestWorker:
        self._connect_db()
        url = broker.parse_url(self.settings.mqtt_url)
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self.settings.ingest_session_expiry_seconds
        props.ReceiveMaximum = self.settings.ingest_receive_maximum
        self._client.connect_async(url.host, url.port, keepalive=30, clean_start=False,
                                   properties=props)
        self._client.loop_start()
        self._thread = threading.Thread(target=self._main, name=f"geoioc-ingest-{self.client_id}",
                                        daemon=True)
        self._thread.start()
        if not self._connected.wait(timeout):
            self.stop()
            raise ConnectionError(f"the MQTT broker at {url.host}:{url.port} did not answer "
                                  f"within {timeout:.0f} s")
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Finish and acknowledge what is in hand, then disconnect (the session is kept). What
        arrives meanwhile is left unacknowledged: the broker sends it again."""
        self._drain = len(self._queue)
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._client.disconnect()
        self._client.loop_stop()
        if self._conn is not None and not self._conn.closed:
            try:
                queries.heartbeat(self._conn, self.worker_id, len(self._queue),
                                  self._take_acks(), stopped=True)
                self._conn.commit()
            except psycopg.Error:
                pass
            self._conn.close()
        self._release_slot()

    def _release_slot(self) -> None:
        if self._slot is not None:
            self._slot.close()
            self._slot = None

    def kill(self) -> None:
        """A crash: nothing more is acknowledged or committed; the broker keeps the rest."""
        self._killed = True
        self._stopping.set()
        self._wake.set()
        sock = self._client.socket()
        if isinstance(sock, socket.socket):  # no DISCONNECT: the link just ends
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._client.loop_stop()
        if self._conn is not None and not self._conn.closed:
            with contextlib.suppress(psycopg.Error):
                self._conn.cancel_safe()  # a statement running now is stopped, not committed
        if self._thread is not None:
            self._thread.join(10)
        if self._conn is not None and not self._conn.closed:
            self._conn.close()
        self._queue.clear()
        self._release_slot()

    # --- the database -----------------------------------------------------------------------
    def _connect_db(self) -> None:
        from gis.db import APP_ROLE, CONNECT_TIMEOUT_SECONDS, SESSION_OPTIONS

        conn = psycopg.connect(self.settings.database_url, options=SESSION_OPTIONS,
                               connect_timeout=CONNECT_TIMEOUT_SECONDS, autocommit=True)
        row = conn.execute("SELECT pg_has_role(current_user, oid, 'MEMBER') FROM pg_roles"
                           " WHERE rolname = %s", (APP_ROLE,)).fetchone()
        if row and row[0]:
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(APP_ROLE)))
        queries.prepare(conn)
        queries.register_worker(conn, self.worker_id, self.client_id, socket.gethostname(),
                                os.getpid())
        self._months = queries.attached_months(conn)
        conn.autocommit = False
        self._conn = conn

    def _reconnect_db(self) -> None:
        pause = 1.0
        while not self._stopping.is_set():
            try:
                if self._conn is not None:
                    self._conn.close()
                self._connect_db()
                return
            except psycopg.OperationalError as e:
                log.warning("ingest %s: database unreachable (%s); again in %.0f s",
                            self.client_id, str(e).strip().splitlines()[0] if str(e) else e, pause)
                self._stopping.wait(pause)
                pause = min(RETRY_MAX_SECONDS, pause * 2)

    # --- the batch loop ---------------------------------------------------------------------
    def _main(self) -> None:
        last_beat = time.monotonic()
        while True:
            if self._killed:
                return
            stopping = self._stopping.is_set()
            if stopping and self._drain <= 0:
                return
            if not self._queue:
                if stopping:
                    return
                self._wake.wait(1.0)
                self._wake.clear()
                if not self._queue and time.monotonic() - last_beat > HEARTBEAT_SECONDS:
                    self._beat()
                    last_beat = time.monotonic()
                continue
            batch = self._take_batch(self._drain if stopping else None)
            self._drain -= len(batch)
            if batch:
                self._process(batch)
                last_beat = time.monotonic()

    def _take_batch(self, max_messages: int | None = None) -> list[Message]:
        """Messages up to batch_max observations (a message's observations are counted when it is
        read), waiting at most ingest_batch_linger_seconds for more once one is in hand."""
        deadline = time.monotonic() + self.settings.ingest_batch_linger_seconds
        batch: list[Message] = []
        n = 0
        now = dt.datetime.now(dt.UTC)
        while n < self.batch_max and not self._killed and (
                max_messages is None or len(batch) < max_messages):
            try:
                m = self._queue.popleft()
            except IndexError:
                left = deadline - time.monotonic()
                if left <= 0 or self._stopping.is_set():
                    break
                self._wake.clear()
                self._wake.wait(min(left, 0.01))
                continue
            if cameras.is_camera_topic(m.topic, self.prefix):
                m.heartbeats, m.detections, m.reasons = cameras.parse(
                    m.topic, m.payload, self.prefix, now, self.window)
            else:
                m.rows, m.reasons = payloads.parse(m.topic, m.payload, self.prefix, now,
                                                   self.window)
            batch.append(m)
            n += m.items
        return batch

    def _process(self, batch: list[Message]) -> None:
        pause = 1.0
        while not self._killed:
            try:
                result = self._store_checked(batch)
                break
            except (psycopg.OperationalError, psycopg.InterfaceError) as e:
                if self._killed:
                    return
                if isinstance(e, psycopg.errors.TransactionRollback) and self._conn is not None:
                    self._conn.rollback()  # a deadlock or serialization failure: again at once
                    continue
                log.warning("ingest %s: storing a batch failed (%s); again in %.0f s",
                            self.client_id, str(e).strip().splitlines()[0] if str(e) else e, pause)
                time.sleep(pause)
                pause = min(RETRY_MAX_SECONDS, pause * 2)
                self._reconnect_db()
        else:
            return
        del result
        self._ack(batch)

    def _store_checked(self, batch: list[Message]) -> BatchResult:
        """Store BATCH, splitting it when the database refuses its content."""
        try:
            return self._store(batch, refused=())
        except (psycopg.errors.DataError, psycopg.errors.IntegrityError) as e:
            assert self._conn is not None
            self._conn.rollback()
            if len(batch) == 1:
                log.warning("ingest %s: the database refused a message on %s: %s", self.client_id,
                            batch[0].topic, str(e).strip().splitlines()[0])
                return self._store(batch, refused=batch)
            half = len(batch) // 2
            a = self._store_checked(batch[:half])
            b = self._store_checked(batch[half:])
            return BatchResult(a.stored + b.stored, a.duplicates + b.duplicates,
                               a.reasons + b.reasons)

    def _store(self, batch: list[Message], refused: tuple[Message, ...] | list[Message]) -> BatchResult:
        conn = self._conn
        assert conn is not None
        out = BatchResult()
        rows: list[payloads.Row] = []
        beats: list[cameras.Heartbeat] = []
        found: list[cameras.Detection] = []
        for m in batch:
            out.reasons.update(m.reasons)
            if any(m is r for r in refused):
                out.reasons["refused_by_database"] += m.items - len(m.reasons)
            else:
                rows.extend(m.rows)
                beats.extend(m.heartbeats)
                found.extend(m.detections)
        rows = self._in_partitions(rows, out.reasons)
        if rows:
            with conn.cursor() as cur:
                with cur.copy(queries.COPY_STAGING) as cp:
                    cp.write("".join(map(payloads.copy_line, rows)))
                stored, unknown, _, changed = cur.execute(queries.STORE).fetchone() or (0, 0, 0, [])
            out.stored = int(stored)
            # The live map hears of the batch at its commit (one NOTIFY, chunked if long).
            live.notify_observations(conn, changed)
            out.reasons["unknown_datastream"] += int(unknown)
            out.duplicates = len(rows) - out.stored - int(unknown)
        if beats or found:
            self._store_cameras(conn, beats, found, out)
        received = sum(m.items for m in batch)
        reasons = {k: v for k, v in out.reasons.items() if v}
        queries.record_batch(conn, self.worker_id, messages=len(batch), received=received,
                             stored=out.stored, duplicates=out.duplicates, reasons=reasons,
                             pending=len(self._queue), acknowledged=self._take_acks())
        if self._killed:
            raise psycopg.OperationalError("killed")
        conn.commit()
        if out.stored:
            self._alert({r.datastream_id for r in rows})
        return out

    def _store_cameras(self, conn: psycopg.Connection[Any], beats: list[cameras.Heartbeat],
                       found: list[cameras.Detection], out: BatchResult) -> None:
        """The batch's heartbeats and detections, in its transaction (a heartbeat of a camera
        that is not there is refused as unknown_camera; every heartbeat of a known camera is
        stored, several of one camera in a batch being applied as its latest)."""
        now = dt.datetime.now(dt.UTC)
        if beats:
            applied = cameras.store_heartbeats(conn, beats, self.camera_limits, now)
            out.stored += len(beats) - applied.unknown
            out.reasons["unknown_camera"] += applied.unknown
        if found:
            for r in cameras.store_detections(conn, found,
                                              self.settings.detection_confidence_threshold, now):
                if r.reason is not None:
                    out.reasons[r.reason] += 1
                elif r.created:
                    out.stored += 1
                else:
                    out.duplicates += 1

    def _alert(self, datastream_ids: set[int]) -> None:
        """The alert rules of the datastreams just stored, after the commit: the observations
        are kept whatever the evaluation does (it fails: logged, and the minute's sweep of the
        job queue evaluates every open alert again)."""
        conn = self._conn
        assert conn is not None
        try:
            alerts.evaluate(conn, datastream_ids)
            conn.commit()
        except psycopg.Error:
            log.warning("ingest %s: alert evaluation failed", self.client_id, exc_info=True)
            conn.rollback()

    def _in_partitions(self, rows: list[payloads.Row],
                       reasons: collections.Counter[str]) -> list[payloads.Row]:
        """The rows whose month has a partition, creating missing months first (a back-filled
        month); rows of a detached month are refused (archived_period)."""
        months = {payloads.month_of(r.phenomenon_time) for r in rows}
        missing = months - self._months
        if not missing:
            return rows
        conn = self._conn
        assert conn is not None
        queries.create_partitions(conn, min(missing), max(missing))
        conn.commit()
        self._months = queries.attached_months(conn)
        conn.commit()
        if not months - self._months:
            return rows
        kept = [r for r in rows if payloads.month_of(r.phenomenon_time) in self._months]
        reasons["archived_period"] += len(rows) - len(kept)
        return kept

    def _ack(self, batch: list[Message]) -> None:
        gen = self._generation
        n = 0
        for m in batch:
            if m.qos and m.generation == gen and not self._killed:
                self._client.ack(m.mid, m.qos)
                n += 1
        self._unreported_acks += n

    def _take_acks(self) -> int:
        n, self._unreported_acks = self._unreported_acks, 0
        return n

    def _beat(self) -> None:
        conn = self._conn
        if conn is None or self._killed:
            return
        try:
            queries.heartbeat(conn, self.worker_id, len(self._queue), self._take_acks())
            conn.commit()
        except psycopg.Error:
            log.warning("ingest %s: heartbeat failed", self.client_id, exc_info=True)
            try:
                conn.rollback()
            except psycopg.Error:
                self._reconnect_db()


def run(settings: Settings | None = None, client_id: str | None = None) -> None:
    """Run one worker until interrupted (`geoioc ingest`)."""
    w = IngestWorker(settings, client_id=client_id)
    log.info("ingest %s: subscribing to %s", w.client_id, ", ".join(w.topics()))
    w.start(timeout=3600)
    try:
        while w._thread is not None and w._thread.is_alive():
            w._thread.join(1.0)
    finally:
        w.stop()
