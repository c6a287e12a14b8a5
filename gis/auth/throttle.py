"""Brute-force protection for password sign-in (token endpoint and HTTP Basic).

Failures are counted per username and per client address. Past the limit the key is locked for
a while, doubling with each further failure up to a maximum; a lock refuses every attempt,
right or wrong, with "retry after N seconds" (HTTP 429). Success clears the username's count but
not the address's (one valid account must not launder guesses at others). Counts are forgotten
after a quiet window.

An app's counters are shared by every server process through PostgreSQL (SharedFailureCounter,
table signin_failures of migration 0032): with `geoioc serve --workers N` a lockout set through
one process holds on the others, and an attacker gets no more attempts for more processes. Each
failure is one atomic UPSERT (gis/limits/queries.py). FailureCounter, in memory per process,
is the same arithmetic for a guard without a database (and its unit test).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from gis.auth.errors import TooManyFailures
from gis.limits import queries
from gis.settings import Settings


@dataclass
class _Record:
    failures: int = 0
    last_failure: float = 0.0
    locked_until: float = 0.0


class FailureCounter:
    """Failures per key with lockout and exponential backoff."""

    def __init__(self, max_failures: int, lockout: float, max_lockout: float, window: float,
                 clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000) -> None:
        self.max_failures, self.lockout, self.max_lockout = max_failures, lockout, max_lockout
        self.window, self.clock, self.max_keys = window, clock, max_keys
        self._records: dict[str, _Record] = {}
        self._lock = threading.Lock()

    def retry_after(self, key: str, conn: psycopg.Connection[Any] | None = None) -> float:
        """Seconds until KEY may try again (0 = now). (CONN: for the shared counter's interface.)"""
        with self._lock:
            rec = self._records.get(key)
            return max(0.0, rec.locked_until - self.clock()) if rec else 0.0

    def failure(self, key: str, conn: psycopg.Connection[Any] | None = None) -> float:
        """Count a failure; returns the lock it caused in seconds (0 = not locked)."""
        now = self.clock()
        with self._lock:
            rec = self._records.get(key)
            if rec is None or now - rec.last_failure > self.window:
                if len(self._records) >= self.max_keys:
                    self._prune(now)
                rec = self._records[key] = _Record()
            rec.failures += 1
            rec.last_failure = now
            over = rec.failures - self.max_failures
            if over < 0:
                return 0.0
            lock = min(self.max_lockout, self.lockout * 2 ** min(over, 30))
            rec.locked_until = now + lock
            return lock

    def success(self, key: str, conn: psycopg.Connection[Any] | None = None) -> None:
        with self._lock:
            self._records.pop(key, None)

    def _prune(self, now: float) -> None:
        stale = [k for k, r in self._records.items()
                 if now - r.last_failure > self.window and r.locked_until <= now]
        for k in stale:
            del self._records[k]
        if len(self._records) >= self.max_keys:  # under attack from many addresses: forget oldest
            for k in list(self._records)[: self.max_keys // 10]:
                del self._records[k]


class SharedFailureCounter:
    """FailureCounter's rules with the counts in the database (signin_failures), under PREFIX
    (the app's limits namespace and what is counted: users or addresses). Each method runs one
    statement on CONN, the caller's connection (the sign-in holds one already)."""

    def __init__(self, max_failures: int, lockout: float, max_lockout: float, window: float,
                 prefix: str) -> None:
        self.max_failures, self.lockout, self.max_lockout = max_failures, lockout, max_lockout
        self.window, self.prefix = window, prefix

    def retry_after(self, key: str, conn: psycopg.Connection[Any] | None = None) -> float:
        """Seconds until KEY may try again (0 = now)."""
        return retry_after(_need(conn), [self.prefix + key])

    def failure(self, key: str, conn: psycopg.Connection[Any] | None = None) -> float:
        """Count a failure; returns the lock it caused in seconds (0 = not locked)."""
        first_lock = (min(self.max_lockout, float(self.lockout)) if self.max_failures <= 1
                      else 0.0)
        row = _need(conn).execute(queries.FAILURE, {
            "key": self.prefix + key, "window": float(self.window), "limit": self.max_failures,
            "lockout": float(self.lockout), "max_lockout": float(self.max_lockout),
            "first_lock": first_lock}).fetchone()
        assert row is not None  # INSERT ... RETURNING always returns the row
        failures, lock = row
        return float(lock) if failures >= self.max_failures else 0.0

    def success(self, key: str, conn: psycopg.Connection[Any] | None = None) -> None:
        _need(conn).execute(queries.SUCCESS, {"key": self.prefix + key})


def retry_after(conn: psycopg.Connection[Any], keys: list[str]) -> float:
    """Seconds until the most locked of KEYS (full keys, prefix included) may try again."""
    row = conn.execute(queries.RETRY_AFTER, {"keys": keys}).fetchone()
    return float(row[0]) if row and row[0] is not None else 0.0


def _need(conn: psycopg.Connection[Any] | None) -> psycopg.Connection[Any]:
    if conn is None:
        raise ValueError("the shared failure counter counts on the caller's connection")
    return conn


Counter = FailureCounter | SharedFailureCounter


class SignInGuard:
    """Per-username and per-address counters used together. CONN: the caller's connection,
    which shared counters count on (memory counters ignore it)."""

    def __init__(self, users: Counter, clients: Counter) -> None:
        self.users, self.clients = users, clients

    @classmethod
    def from_settings(cls, s: Settings, namespace: str | None = None) -> SignInGuard:
        """Counters shared by every process under NAMESPACE (gis.limits.namespace), or in this
        process's memory without one."""
        def counter(limit: int, what: str) -> Counter:
            args = (limit, s.signin_lockout_seconds, s.signin_max_lockout_seconds,
                    s.signin_failure_window_seconds)
            if namespace is None:
                return FailureCounter(*args)
            return SharedFailureCounter(*args, prefix=f"{namespace}:{what}:")

        return cls(counter(s.signin_max_failures_per_user, "user"),
                   counter(s.signin_max_failures_per_ip, "ip"))

    def check(self, username: str, client: str | None,
              conn: psycopg.Connection[Any] | None = None) -> None:
        """Raise TooManyFailures if either the user or the address is locked."""
        users, clients = self.users, self.clients
        if (conn is not None and isinstance(users, SharedFailureCounter)
                and isinstance(clients, SharedFailureCounter)):
            # Both in one round trip: this runs on every password check (HTTP Basic: every request).
            keys = [users.prefix + username] + ([clients.prefix + client] if client else [])
            wait = retry_after(conn, keys)
        else:
            wait = max(users.retry_after(username, conn),
                       clients.retry_after(client, conn) if client else 0.0)
        if wait > 0:
            raise TooManyFailures(wait)

    def failure(self, username: str, client: str | None,
                conn: psycopg.Connection[Any] | None = None) -> float:
        """Count a failure for both; returns the lock it caused (0 = none)."""
        lock = self.users.failure(username, conn)
        if client:
            lock = max(lock, self.clients.failure(client, conn))
        return lock

    def success(self, username: str, conn: psycopg.Connection[Any] | None = None) -> None:
        self.users.success(username, conn)
