"""The limits shared through PostgreSQL (gis/limits, migration 0032), as two server processes
see them: two bucket objects (or two sign-in guards) on the same namespace are one limit.
tests/test_workers.py checks the same through `geoioc serve --workers 3`."""

from __future__ import annotations

import time
import uuid

import psycopg
import pytest

from gis import limits
from gis.auth.errors import TooManyFailures
from gis.auth.throttle import SignInGuard
from gis.jobs import maintenance
from gis.settings import get_settings


def _namespace() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


def test_two_processes_share_one_bucket(db_url: str) -> None:
    ns = _namespace()
    # Two stores: two connections, as two processes have.
    a = limits.SharedTokenBuckets(0.5, 5, store=limits.LimitStore(db_url), namespace=ns)
    b = limits.SharedTokenBuckets(0.5, 5, store=limits.LimitStore(db_url), namespace=ns)
    waits = [(a if i % 2 else b).take("client") for i in range(8)]
    assert waits[:5] == [0.0] * 5
    assert all(1.0 <= w <= 2.0 for w in waits[5:]), waits  # 1 token at 0.5/s: about 2 s
    assert a.take("another client") == 0.0


def test_a_busy_client_is_leased_a_few_tokens_and_never_gets_more_than_the_limit(db_url) -> None:
    ns = _namespace()
    burst = 400
    procs = [limits.SharedTokenBuckets(0.001, burst, store=limits.LimitStore(db_url), namespace=ns)
             for _ in range(3)]
    assert procs[0].lease == limits.lease_size(burst) == 8
    allowed = sum(procs[i % 3].take("busy") == 0.0 for i in range(3 * burst))
    # Never more than the burst; at most what the other processes hold in leases less.
    assert burst - 2 * (procs[0].lease - 1) <= allowed <= burst, allowed


def test_full_buckets_and_old_failures_are_forgotten(db_url: str, conn: psycopg.Connection) -> None:
    ns = _namespace()
    fast = limits.SharedTokenBuckets(1000.0, 2, store=limits.LimitStore(db_url), namespace=ns)
    slow = limits.SharedTokenBuckets(0.001, 2, store=limits.LimitStore(db_url), namespace=ns)
    fast.take("refills")
    slow.take("stays")
    time.sleep(0.05)
    maintenance.forget_old_limits()  # what the queue's upkeep runs every minute
    keys = {r[0] for r in conn.execute("SELECT key FROM rate_buckets WHERE key LIKE %s",
                                       (ns + ":%",))}
    assert keys == {ns + ":stays"}


def test_a_lockout_counted_by_one_process_holds_on_another(conn: psycopg.Connection) -> None:
    s = get_settings().model_copy(update={"signin_max_failures_per_user": 2})
    ns = _namespace()
    one, other = SignInGuard.from_settings(s, ns), SignInGuard.from_settings(s, ns)
    assert one.failure("someone", "10.1.1.1", conn) == 0.0
    assert other.failure("someone", "10.1.1.2", conn) == s.signin_lockout_seconds
    for guard in (one, other):
        with pytest.raises(TooManyFailures):
            guard.check("someone", "10.9.9.9", conn)
    # Another namespace (another app) has counters of its own.
    SignInGuard.from_settings(s, _namespace()).check("someone", "10.9.9.9", conn)
    conn.execute("DELETE FROM signin_failures WHERE key LIKE %s", (ns + ":%",))
