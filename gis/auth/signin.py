"""Checking a username and password: the brute-force guard, argon2, and a short-lived cache.

argon2 costs about 50-100 ms on purpose. QGIS and GDAL send HTTP Basic credentials with every
request (hundreds when paging features or fetching tiles), so a verified (username, password)
is remembered for a few minutes, keyed by an HMAC of the pair under a per-process random key
(the cache never holds passwords or plain hashes of them). A repeated *wrong* pair is
remembered for a minute too: it is refused without argon2 and counted once, so a client looping
on a stale password does not lock its user out, while every *different* guess still counts.

The account itself (disabled? roles? password changed?) is read from the database on every
call; a cache entry is only valid for the password_changed_at it was made with.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import psycopg

from gis.auth import passwords
from gis.auth.errors import CredentialsRejected
from gis.auth.throttle import SignInGuard
from gis.auth.users import Account, get_account, store_rehash

WRONG = "wrong username or password"
FAILED_PAIR_SECONDS = 60.0
MAX_NAME = 128


@dataclass(frozen=True)
class _Verdict:
    ok: bool
    # The user's password_changed_at when verified (None: no such user).
    changed_at: dt.datetime | None
    expires: float


class PasswordVerifier:
    def __init__(self, guard: SignInGuard, *, cache_seconds: float = 300.0,
                 clock: Callable[[], float] = time.monotonic, max_entries: int = 10_000) -> None:
        self.guard = guard
        self.cache_seconds, self.clock, self.max_entries = cache_seconds, clock, max_entries
        self._key = secrets.token_bytes(32)
        self._cache: OrderedDict[bytes, _Verdict] = OrderedDict()
        self._lock = threading.Lock()

    def verify(self, conn: psycopg.Connection, username: str, password: str,
               client: str | None) -> Account:
        """The account if the password is right and the account enabled.

        Raises TooManyFailures while the user or address is locked, CredentialsRejected
        otherwise (`counted` is True for a fresh wrong guess: audit it).
        """
        # Bounded: the name is attacker-controlled and becomes a key in the guard's memory.
        name = username.strip().lower()[:MAX_NAME]
        self.guard.check(name, client, conn)
        account = get_account(conn, name)
        changed_at = account.password_changed_at if account else None
        fingerprint = hmac.new(self._key, f"{name}\0{password}".encode(), hashlib.sha256).digest()
        verdict = self._cached(fingerprint, changed_at)
        fresh = verdict is None
        if verdict is None:
            ok = account is not None and passwords.verify_password(account.password_hash, password)
            if account is None:
                passwords.verify_password(None, password)  # same cost as a real check
            ttl = self.cache_seconds if ok else min(self.cache_seconds, FAILED_PAIR_SECONDS)
            verdict = _Verdict(ok, changed_at, self.clock() + ttl)
            self._store(fingerprint, verdict)
            if ok and account is not None and passwords.needs_rehash(account.password_hash):
                store_rehash(conn, account.id, account.password_hash,
                             passwords.hash_password(password))
        if not verdict.ok or account is None:
            lockout = self.guard.failure(name, client, conn) if fresh else 0.0
            raise CredentialsRejected(WRONG, counted=fresh, lockout=lockout)
        # Only someone who knows the password learns that the account is disabled.
        if account.disabled:
            raise CredentialsRejected("user disabled")
        if fresh:
            # A remembered success cleared the count when it was verified: a client sending
            # Basic credentials with every request costs no write per request.
            self.guard.success(name, conn)
        return account

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()

    def _cached(self, fingerprint: bytes, changed_at: dt.datetime | None) -> _Verdict | None:
        with self._lock:
            verdict = self._cache.get(fingerprint)
            if verdict is None:
                return None
            if verdict.expires <= self.clock() or verdict.changed_at != changed_at:
                del self._cache[fingerprint]
                return None
            return verdict

    def _store(self, fingerprint: bytes, verdict: _Verdict) -> None:
        with self._lock:
            self._cache[fingerprint] = verdict
            self._cache.move_to_end(fingerprint)
            while len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)
