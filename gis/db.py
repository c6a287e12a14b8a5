"""One connection pool per process, shared by the API, the providers and the CLI.

A busy pool and an absent database are told apart. Under load a request waits for a connection
up to `pool_timeout_seconds` (long: a burst of map users must be served, not refused). Once the
database has been found unreachable (a pooled connection broke, or the pool could not reconnect)
a waiting request gives up within WAIT_SLICE_SECONDS and fails (503 with Retry-After,
api/errors.py), until a connection works again. The pool gives up reconnecting after a few
seconds instead of backing off for minutes, so that the first request after the database's
return opens a fresh connection at once; the first connection found broken makes the pool check
all its idle ones in the background, so nobody after the outage is handed a dead connection.

Read replicas (settings.read_database_urls): read-only traffic takes `take_read()` /
`read_connection()`, which hand out a streaming replica's connection when one has replayed the
WAL position the request must see (`read_after`, set per request by the API from what its user
last wrote), else the primary's. A replica that fails is skipped (reads go to the primary) and
probed in the background until it answers again; it never makes the primary count as down.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool, PoolTimeout

from gis.settings import get_settings

log = logging.getLogger(__name__)

# UTC timestamps in JSON built by PostgreSQL; a runaway query from user input is cut off; no
# JIT: its compilation is paid per statement and per partition, and with incidents partitioned
# by month (migration 0038) the map's count of the sample's incidents in view compiled 305
# functions in 1.3-1.5 s for a query that runs in 69 ms (it then missed the count timeout, and
# numberMatched went missing). The density and alert queries had already turned it off.
SESSION_OPTIONS = "-c TimeZone=UTC -c statement_timeout=60000 -c jit=off"
# A server that does not answer the TCP handshake is down as far as a request is concerned.
CONNECT_TIMEOUT_SECONDS = 2
# Reconnection attempts of the pool stop after this long; the next request tries again.
RECONNECT_SECONDS = 2.0
# A request waits for a connection in slices this long, checking between them whether the
# database has been found unreachable meanwhile.
WAIT_SLICE_SECONDS = 0.5
# Pooled connections act as this role: full DML on data, but the audit log is append-only
# (SELECT, INSERT). Migrations and bulk loads use `connect()` and keep the owner's rights.
APP_ROLE = "geoioc_app"

_pool: ConnectionPool | None = None
_lock = threading.Lock()
# Whether pooled connections can switch to APP_ROLE: decided once per process (None = not yet).
_app_role_usable: bool | None = None


def _can_use_app_role(conn: psycopg.Connection) -> bool:
    global _app_role_usable
    if _app_role_usable is None:
        row = conn.execute(
            "SELECT pg_has_role(current_user, oid, 'MEMBER') FROM pg_roles WHERE rolname = %s",
            (APP_ROLE,),
        ).fetchone()
        _app_role_usable = bool(row and row[0])
        if not _app_role_usable:
            why = "does not exist" if row is None else "is not granted to the connecting user"
            log.warning("database role %s %s: the application runs with the connecting user's "
                        "rights (it could alter the audit log)", APP_ROLE, why)
    return _app_role_usable


def _configure(conn: psycopg.Connection) -> None:
    """Runs once on each new pooled connection (autocommit, so the SET ROLE persists)."""
    if _can_use_app_role(conn):
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(APP_ROLE)))


def get_pool() -> ConnectionPool:
    """Create the pool on first use; pygeoapi providers and our routes share it."""
    global _pool
    if _pool is None:
        with _lock:
            if _pool is None:
                s = get_settings()
                _pool = ConnectionPool(
                    s.database_url,
                    min_size=s.pool_min_size,
                    max_size=s.pool_max_size,
                    kwargs={"autocommit": True, "options": SESSION_OPTIONS,
                            "connect_timeout": CONNECT_TIMEOUT_SECONDS},
                    configure=_configure,
                    open=True,
                    name="geoioc",
                    timeout=s.pool_timeout_seconds,
                    reconnect_timeout=RECONNECT_SECONDS,
                    reconnect_failed=lambda _pool: _mark_unreachable(),
                )
    return _pool


def close_pool() -> None:
    global _pool, _app_role_usable, _replicas
    with _lock:
        if _pool is not None:
            _pool.close()
            _pool = None
        for replica in _replicas or ():
            replica.close()
        _replicas = None
        _app_role_usable = None


_last_check = 0.0


def _check_idle_connections(pool: ConnectionPool) -> None:
    """Discard the pool's broken idle connections, at most once a second, off the request."""
    global _last_check
    now = time.monotonic()
    with _lock:
        if now - _last_check < 1.0:
            return
        _last_check = now

    def run() -> None:
        try:
            pool.check()
        except Exception:  # the pool may be closing; nothing to clean then
            log.debug("pool check failed", exc_info=True)

    threading.Thread(target=run, name="geoioc-pool-check", daemon=True).start()


# When the database was last found unreachable (None: it answers).
_unreachable_since: float | None = None


def _mark_unreachable() -> None:
    global _unreachable_since
    if _unreachable_since is None:
        _unreachable_since = time.monotonic()
        log.warning("database unreachable: requests answer 503 until it is back")


def take(pool: ConnectionPool, timeout: float | None = None) -> psycopg.Connection:
    """A connection of POOL, to be handed back with give_back() (pooled() does both for a block).
    TIMEOUT: the longest wait, default the pool's; a database found unreachable cuts it short."""
    return _take(pool, timeout)


def give_back(pool: ConnectionPool, conn: psycopg.Connection) -> None:
    """Return CONN to POOL. A connection found broken means the database went away: requests
    waiting for one are then answered at once (503) instead of waiting out the pool timeout."""
    if _replayed:
        _replayed.pop(conn, None)
    if conn.broken or conn.closed:
        replica = _replica_of(pool)
        if replica is not None:  # a replica went away: its reads go to the primary meanwhile
            replica.mark_down()
        else:
            _mark_unreachable()
            _check_idle_connections(pool)
    pool.putconn(conn)


def _take(pool: ConnectionPool, timeout: float | None) -> psycopg.Connection:
    global _unreachable_since
    deadline = time.monotonic() + (pool.timeout if timeout is None else timeout)
    while True:
        wait = min(WAIT_SLICE_SECONDS, deadline - time.monotonic())
        try:
            conn = pool.getconn(timeout=max(wait, 0.001))
        except PoolTimeout:
            if _unreachable_since is not None or time.monotonic() >= deadline:
                raise
            continue
        if _unreachable_since is not None:
            _unreachable_since = None
            log.warning("database reachable again")
        return conn


@contextmanager
def pooled(pool: ConnectionPool, timeout: float | None = None) -> Iterator[psycopg.Connection]:
    """A connection of POOL for the block (TIMEOUT: the longest wait for one, default the
    pool's; a database found unreachable cuts the wait short)."""
    conn = _take(pool, timeout)
    try:
        yield conn
    except PoolTimeout:
        raise
    except psycopg.OperationalError:
        if conn.broken or conn.closed:
            _mark_unreachable()
            _check_idle_connections(pool)
        raise
    finally:
        pool.putconn(conn)


@contextmanager
def connection(timeout: float | None = None) -> Iterator[psycopg.Connection]:
    with pooled(get_pool(), timeout) as conn:
        yield conn


def connect(url: str | None = None, **kwargs) -> psycopg.Connection:
    """A dedicated connection, for long jobs (migrations, loads) that must not hold a pool slot."""
    return psycopg.connect(url or get_settings().database_url, **kwargs)


# The planner's row estimate of a table: its own reltuples, or for a partitioned table (a
# parent's reltuples is -1 until someone ANALYZEs the parent, and autovacuum never does) the sum
# over its leaf partitions, which autovacuum keeps. Never a count.
ROWS_ESTIMATE = """
SELECT coalesce(
    (SELECT sum(greatest(c.reltuples, 0)) FROM pg_partition_tree(%(t)s::regclass) p
       JOIN pg_class c ON c.oid = p.relid WHERE p.isleaf),
    (SELECT greatest(reltuples, 0) FROM pg_class WHERE oid = %(t)s::regclass), 0)::float8
"""


# Memory for one query's hash tables: analytics group hundreds of thousands of rows.
GROUPING_WORK_MEM = "64MB"


@contextmanager
def grouping(conn: psycopg.Connection, work_mem: str = GROUPING_WORK_MEM
             ) -> Iterator[psycopg.Connection]:
    """A transaction for a query that groups many rows: JIT off (such estimates pass
    jit_above_cost, and compiling took seconds for queries that run in tens of milliseconds) and
    WORK_MEM, so the groups are hashed in memory. With the default 4 MB the planner sorted
    them through temporary files instead (a 1-year KDE at 1,000,000 incidents sorted 490,000
    rows; a year's statistics at 10,000,000 merged 171,000 day rows on disk: 790 ms)."""
    with conn.transaction():
        conn.execute("SET LOCAL jit = off")
        conn.execute(sql.SQL("SET LOCAL work_mem = {}").format(sql.Literal(work_mem)))
        yield conn


def rows_estimate(conn: psycopg.Connection, table: str) -> float:
    """The planner's estimate of TABLE's rows (ROWS_ESTIMATE): a plain or a partitioned table."""
    row = conn.execute(ROWS_ESTIMATE, {"t": table}).fetchone()
    return float(row[0]) if row else 0.0


# --- read replicas ---------------------------------------------------------------------------------

# The WAL position (an integer LSN) the current request's reads must see: what its user last
# wrote (api/deps.py sets it per request). 0: any replica will do.
read_after: ContextVar[int] = ContextVar("geoioc_read_after", default=0)
# A busy replica pool is waited for this long before the primary answers the read instead.
REPLICA_WAIT_SECONDS = 0.5
# Replicas' connections handed out, with the WAL position their replica had replayed then.
_replayed: weakref.WeakKeyDictionary[psycopg.Connection, int] = weakref.WeakKeyDictionary()


def lsn(text: str) -> int:
    """A pg_lsn's text ('16/B374D848') as an integer, to compare positions."""
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


def lsn_text(position: int) -> str:
    return f"{position >> 32:X}/{position & 0xFFFFFFFF:X}"


class Replica:
    """One streaming replica: its pool, and whether it is down (then a thread probes it every
    `retry` seconds and reads skip it; a probe that connects brings it back)."""

    def __init__(self, url: str, number: int, retry: float) -> None:
        s = get_settings()
        self.url, self.retry = url, retry
        self.down_since: float | None = None
        self._lock = threading.Lock()
        self.pool = ConnectionPool(
            url, min_size=s.pool_min_size, max_size=s.pool_max_size,
            kwargs={"autocommit": True, "options": SESSION_OPTIONS,
                    "connect_timeout": CONNECT_TIMEOUT_SECONDS},
            configure=_configure, open=True, name=f"geoioc-read-{number}",
            timeout=REPLICA_WAIT_SECONDS, reconnect_timeout=RECONNECT_SECONDS,
            reconnect_failed=lambda _pool: self.mark_down())

    def take(self, position: int) -> psycopg.Connection | None:
        """A connection if this replica answers and has replayed POSITION, else None. The one
        query it costs checks both, so a connection the replica dropped (it stopped or
        restarted) is found here, before the request's own query."""
        if self.down_since is not None:
            return None
        try:
            conn = self.pool.getconn(timeout=REPLICA_WAIT_SECONDS)
        except PoolTimeout:  # busy, or it cannot connect (then it has no connection at all)
            if not self.pool.get_stats().get("pool_size"):
                self.mark_down()
            return None
        try:
            row = conn.execute("SELECT pg_last_wal_replay_lsn()::text").fetchone()
        except psycopg.Error:
            self.pool.putconn(conn)
            self.mark_down()
            return None
        # NULL: not in recovery (a primary given as a replica): it is as current as can be.
        replayed = lsn(row[0]) if row and row[0] else 1 << 64
        if replayed < position:
            self.pool.putconn(conn)
            return None
        _replayed[conn] = replayed
        return conn

    def mark_down(self) -> None:
        with self._lock:
            if self.down_since is not None or self.pool.closed:
                return
            self.down_since = time.monotonic()
        log.warning("read replica %s unreachable: its reads go to the primary",
                    self.pool.name)
        threading.Thread(target=self._probe, name=f"{self.pool.name}-probe", daemon=True).start()

    def _probe(self) -> None:
        while not self.pool.closed:
            time.sleep(self.retry)
            try:
                with psycopg.connect(self.url, connect_timeout=CONNECT_TIMEOUT_SECONDS) as conn:
                    conn.execute("SELECT 1")
            except psycopg.Error:
                continue
            try:
                self.pool.check()  # drop the connections the outage broke
            except Exception:  # closing meanwhile
                log.debug("replica pool check failed", exc_info=True)
            self.down_since = None
            log.warning("read replica %s reachable again", self.pool.name)
            return

    def close(self) -> None:
        self.pool.close()


_replicas: list[Replica] | None = None
_turn = itertools.count()


def get_replicas() -> list[Replica]:
    """The read replicas of settings.read_database_urls (opened on first use; [] for none)."""
    global _replicas
    if _replicas is None:
        with _lock:
            if _replicas is None:
                s = get_settings()
                _replicas = [Replica(url, n, s.read_replica_retry_seconds)
                             for n, url in enumerate(s.read_database_urls, 1)]
    return _replicas


def _replica_of(pool: ConnectionPool) -> Replica | None:
    return next((r for r in _replicas or () if r.pool is pool), None)


def take_read(primary: ConnectionPool,
              position: int | None = None) -> tuple[ConnectionPool, psycopg.Connection]:
    """(pool, connection) for a read that writes nothing: a replica that has replayed POSITION
    (default: the request's read_after), taken in turn, else PRIMARY. Give it back with
    give_back(pool, connection)."""
    replicas = get_replicas()
    if replicas:
        want = read_after.get() if position is None else position
        first = next(_turn)
        for i in range(len(replicas)):
            replica = replicas[(first + i) % len(replicas)]
            conn = replica.take(want)
            if conn is not None:
                return replica.pool, conn
    return primary, take(primary)


@contextmanager
def read_connection(position: int | None = None) -> Iterator[psycopg.Connection]:
    """connection() for reads only (take_read says which server answers)."""
    pool, conn = take_read(get_pool(), position)
    try:
        yield conn
    finally:
        give_back(pool, conn)


def replayed(conn: psycopg.Connection) -> int | None:
    """The WAL position CONN's data is at least as recent as, if it is a replica's; None for
    the primary's (current). Caches of data read on a replica keep it (api/ogc/tiles.py)."""
    return _replayed.get(conn)


def is_standby(conn: psycopg.Connection) -> bool:
    """Whether CONN is a hot standby's: it cannot write (the audit row of a read made on a
    replica goes to the primary: gis/audit.py)."""
    return bool(_replicas) and conn.info.parameter_status("in_hot_standby") == "on"


def write_position(conn: psycopg.Connection | None = None) -> int:
    """The primary's WAL insert position now (asked on CONN, a primary's connection, or a
    pooled one): every write committed before is at or before it, so a replica that has
    replayed it shows them."""
    if conn is None:
        with connection() as pooled_conn:
            return write_position(pooled_conn)
    row = conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
    return lsn(row[0]) if row else 0
