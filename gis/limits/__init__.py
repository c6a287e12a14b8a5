"""Token buckets shared by every server process through PostgreSQL (issue 18).

`geoioc serve --workers N` runs N processes that share nothing but the database. A limit kept in
each process's memory would let a client through N times over (a fresh connection may land on
any process), so the request limits (api/middleware.py), the report flood limit
(api/report_intake.py) and the sign-in lockouts (gis/auth/throttle.py) count in tables of
migration 0032: one atomic UPSERT per request computes the bucket in SQL (gis/limits/queries.py).

Keys carry a namespace. `geoioc serve` sets one for the whole deployment (GEOIOC_LIMITS_NAMESPACE,
default "geoioc"): every process and every host on the same database then shares the counts. An
app built in-process without one (the tests build many, each with its own limits) gets a random
namespace, so its counters start fresh, as they did in memory.

The hot path: a request costs at most one round trip (a busy client's tokens are taken a few
at once: LEASE_MAX), on a connection of the process's own (LimitStore), not the pool's: the
middleware runs before a route takes a pooled connection, and on the event loop, where waiting
for the pool would stall every request. bench/rate_limit.py measures
it (bench/README.md). If the database cannot be asked (it is down, or the statement fails), a
bucket falls back to one in the process's memory until the store reconnects in the background:
the limit holds per process during an outage instead of failing every request.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

from gis.limits import queries

log = logging.getLogger(__name__)

# Bounds on what one request may wait for the store, since it waits on the event loop.
STATEMENT_TIMEOUT_MS = 250
CONNECT_TIMEOUT_SECONDS = 2
RETRY_SECONDS = 1.0
LOCK_WAIT_SECONDS = 0.25


def namespace(configured: str | None) -> str:
    """The configured namespace, or a fresh one of this app alone."""
    return configured or "app-" + uuid.uuid4().hex[:12]


class LimitStore:
    """One autocommit connection of this process to the limits' tables. Statements run under a
    lock (the event loop of an app calls it; tests run several apps in threads). While it has
    no connection, `row` answers None at once and a thread reconnects, once a second at most."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()
        self._reconnecting = False
        self._first = True

    def row(self, query: sql.SQL | sql.Composed, params: dict[str, Any]) -> tuple[Any, ...] | None:
        """QUERY's one row, or None if the database cannot be asked now."""
        if not self._lock.acquire(timeout=LOCK_WAIT_SECONDS):
            return None
        try:
            if self._conn is None and self._first:
                self._first = False  # the first use connects in line: counts start right away
                self._conn = self._connect_or_none()
            conn = self._conn
            if conn is None or conn.closed:
                self._conn = None
                self._reconnect_later()
                return None
            try:
                return conn.execute(query, params).fetchone()
            except psycopg.Error:
                if conn.broken or conn.closed:
                    log.warning("limits: lost the database; counting in this process until back")
                    self._conn = None
                    self._reconnect_later()
                else:
                    log.warning("limits: statement failed; counted in this process", exc_info=True)
                return None
        finally:
            self._lock.release()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _connect_or_none(self) -> psycopg.Connection[Any] | None:
        try:
            return psycopg.connect(
                self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS,
                application_name=f"geoioc-limits-{os.getpid()}",
                options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS} -c TimeZone=UTC",
                # A database that vanishes without closing the connection (a network cut) is
                # noticed in seconds, not at TCP's minutes: the statement waits on the loop.
                keepalives=1, keepalives_idle=2, keepalives_interval=1, keepalives_count=2,
                tcp_user_timeout=3000)
        except psycopg.Error:
            log.warning("limits: database unreachable; counting in this process until back")
            return None

    def _reconnect_later(self) -> None:
        if self._reconnecting:
            return
        self._reconnecting = True

        def run() -> None:
            try:
                while True:
                    conn = self._connect_or_none()
                    if conn is not None:
                        with self._lock:
                            self._conn = conn
                        log.warning("limits: database back; counts shared again")
                        return
                    time.sleep(RETRY_SECONDS)
            finally:
                self._reconnecting = False

        threading.Thread(target=run, name="geoioc-limits-reconnect", daemon=True).start()


_stores: dict[str, LimitStore] = {}
_stores_lock = threading.Lock()


def store(url: str) -> LimitStore:
    """The process's store for the database at URL."""
    with _stores_lock:
        found = _stores.get(url)
        if found is None:
            found = _stores[url] = LimitStore(url)
        return found


class TokenBuckets:
    """One token bucket per key: RATE tokens a second, at most BURST saved up. In memory, per
    process: the fallback of SharedTokenBuckets while the database cannot be asked."""

    def __init__(self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 100_000) -> None:
        self.rate, self.burst, self.clock, self.max_keys = rate, float(burst), clock, max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    @classmethod
    def per_window(cls, count: int, seconds: float, **kwargs: Any) -> TokenBuckets:
        """COUNT at once, then COUNT per SECONDS on average: a limit people state in those
        words ("10 reports per 10 minutes")."""
        return cls(count / seconds, count, **kwargs)

    def take(self, key: str) -> float:
        """Take one token: 0 if allowed, else the seconds until one is available. (Runs on the
        event loop thread only, so it needs no lock.)"""
        now = self.clock()
        tokens, at = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        if tokens >= 1:
            if key not in self._buckets and len(self._buckets) >= self.max_keys:
                self._prune(now)
            self._buckets[key] = (tokens - 1, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1 - tokens) / self.rate

    def _prune(self, now: float) -> None:
        # Buckets that have refilled completely hold no information.
        full_after = self.burst / self.rate
        for key in [k for k, (_, at) in self._buckets.items() if now - at >= full_after]:
            del self._buckets[key]
        if len(self._buckets) >= self.max_keys:
            for key in list(self._buckets)[: self.max_keys // 10]:
                del self._buckets[key]


# A process takes up to LEASE_MAX tokens of a busy client's bucket at once (never more than a
# LEASE_SHARE of its burst) and spends them from memory for LEASE_SECONDS: one round trip per
# few requests instead of one per request (bench/README.md). The limit is never exceeded (every
# token spent was taken from the shared bucket); a client may be refused a few requests early
# while other processes still hold tokens of its bucket, which they forget after LEASE_SECONDS.
LEASE_MAX = 8
LEASE_SHARE = 50
LEASE_SECONDS = 1.0


def lease_size(burst: int | float) -> int:
    """Tokens taken at once from a bucket of BURST: 1 (exact) for small bursts."""
    return max(1, min(LEASE_MAX, int(burst) // LEASE_SHARE))


class SharedTokenBuckets:
    """TokenBuckets whose counts live in the database (rate_buckets), under NAMESPACE: the same
    for every process of a deployment. Same interface as TokenBuckets. A busy client's tokens are
    taken a few at a time (lease_size) and spent from memory for a moment."""

    def __init__(self, rate: float, burst: int, *, store: LimitStore, namespace: str,
                 clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000) -> None:
        self.rate, self.burst = rate, float(burst)
        self.store, self.prefix = store, namespace + ":"
        self.lease, self.clock, self.max_keys = lease_size(burst), clock, max_keys
        self.local = TokenBuckets(rate, burst)
        self._leases: dict[str, tuple[int, float]] = {}  # key -> (tokens left, until)

    @classmethod
    def per_window(cls, count: int, seconds: float, **kwargs: Any) -> SharedTokenBuckets:
        return cls(count / seconds, count, **kwargs)

    def take(self, key: str) -> float:
        """Take one token: 0 if allowed, else the seconds until one is available."""
        now = self.clock()
        if self.lease > 1:
            left, until = self._leases.get(key, (0, 0.0))
            if left > 0 and now < until:
                self._leases[key] = (left - 1, until)
                return 0.0
        row = self.store.row(queries.TAKE, {"key": self.prefix + key, "rate": self.rate,
                                            "burst": self.burst, "n": self.lease})
        if row is None:
            return self.local.take(key)
        granted, tokens = int(row[0]), float(row[1])
        if granted == 0:
            self._leases.pop(key, None)
            return (1 - tokens) / self.rate
        if granted > 1:
            if len(self._leases) >= self.max_keys:
                self._leases = {k: v for k, v in self._leases.items() if v[1] > now}
            self._leases[key] = (granted - 1, now + LEASE_SECONDS)
        return 0.0


def forget_old(conn: psycopg.Connection[Any]) -> tuple[int, int]:
    """Delete the rows that hold nothing any more (full buckets, failures past their window and
    lock): the queue's upkeep runs it (gis/jobs/maintenance.py). Returns the rows deleted."""
    buckets = conn.execute(queries.FORGET_FULL_BUCKETS).rowcount
    failures = conn.execute(queries.FORGET_OLD_FAILURES).rowcount
    return buckets, failures
