"""Brute-force protection for password sign-in (token endpoint and HTTP Basic).

Failures are counted per username and per client address. Past the limit the key is locked for
a while, doubling with each further failure up to a maximum; a lock refuses every attempt,
right or wrong, with "retry after N seconds" (HTTP 429). Success clears the username's count but
not the address's (one valid account must not launder guesses at others). Counts are forgotten
after a quiet window.

State is in memory, per process: with N server processes an attacker gets N times the attempts
before a lock. That bound is acceptable for the threat (online guessing); a shared store
(PostgreSQL or Redis) is the step up if it is not.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from gis.auth.errors import TooManyFailures
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

    def retry_after(self, key: str) -> float:
        """Seconds until KEY may try again (0 = now)."""
        with self._lock:
            rec = self._records.get(key)
            return max(0.0, rec.locked_until - self.clock()) if rec else 0.0

    def failure(self, key: str) -> float:
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

    def success(self, key: str) -> None:
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


class SignInGuard:
    """Per-username and per-address counters used together."""

    def __init__(self, users: FailureCounter, clients: FailureCounter) -> None:
        self.users, self.clients = users, clients

    @classmethod
    def from_settings(cls, s: Settings) -> SignInGuard:
        def counter(limit: int) -> FailureCounter:
            return FailureCounter(limit, s.signin_lockout_seconds, s.signin_max_lockout_seconds,
                                  s.signin_failure_window_seconds)

        return cls(counter(s.signin_max_failures_per_user), counter(s.signin_max_failures_per_ip))

    def check(self, username: str, client: str | None) -> None:
        """Raise TooManyFailures if either the user or the address is locked."""
        wait = max(self.users.retry_after(username),
                   self.clients.retry_after(client) if client else 0.0)
        if wait > 0:
            raise TooManyFailures(wait)

    def failure(self, username: str, client: str | None) -> float:
        """Count a failure for both; returns the lock it caused (0 = none)."""
        lock = self.users.failure(username)
        if client:
            lock = max(lock, self.clients.failure(client))
        return lock

    def success(self, username: str) -> None:
        self.users.success(username)
