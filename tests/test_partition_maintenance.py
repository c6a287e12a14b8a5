"""The periodic job keeps the monthly partitions of observations and observation_hourly ahead
(gis/sensors/partitions.py), creating the missing months and nothing else, however often it
runs (issue 18: "the partition maintenance creates partitions ahead").

The migration already made the current month and the next three, so a run on a fresh database
finds nothing to do; these tests take away the furthest months (empty, in the future) and ask
for more months than there are, so that the job has something to create.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from gis.settings import get_settings

PARENTS = ("observations", "observation_hourly")


def months_from_now(n: int) -> list[dt.date]:
    """The first day of the current UTC month and of the N following ones."""
    m = dt.datetime.now(dt.UTC).date().replace(day=1)
    out = []
    for _ in range(n + 1):
        out.append(m)
        m = (m + dt.timedelta(days=32)).replace(day=1)
    return out


def attached(conn: psycopg.Connection[Any]) -> dict[str, tuple[str, str]]:
    """Attached partition -> its bounds as PostgreSQL states them (FROM ... TO ...)."""
    rows = conn.execute(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i"
        " JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent IN ('observations'::regclass, 'observation_hourly'::regclass)")
    return {r[0]: r[1] for r in rows}


def name(parent: str, month: dt.date) -> str:
    return f"{parent}_y{month:%Y}m{month:%m}"


def drop_empty(conn: psycopg.Connection[Any], part: str) -> None:
    """Drop a partition of a future month, which must be empty."""
    ident = sql.Identifier(part)
    assert conn.execute(sql.SQL("SELECT count(*) FROM {}").format(ident)).fetchone() == (0,)
    conn.execute(sql.SQL("DROP TABLE {}").format(ident))


def bounds(month: dt.date) -> str:
    nxt = (month + dt.timedelta(days=32)).replace(day=1)
    return f"FOR VALUES FROM ('{month} 00:00:00+00') TO ('{nxt} 00:00:00+00')"


@pytest.fixture
def ahead(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """observation_partitions_ahead raised by two for the test (the job reads the setting)."""
    base = get_settings().observation_partitions_ahead
    monkeypatch.setenv("GEOIOC_OBSERVATION_PARTITIONS_AHEAD", str(base + 2))
    get_settings.cache_clear()
    yield base + 2
    monkeypatch.undo()
    get_settings.cache_clear()


def test_job_creates_the_months_ahead_and_is_idempotent(conn: psycopg.Connection[Any],
                                                         ahead: int) -> None:
    from gis.jobs.queue import app
    from gis.sensors.partitions import partitions_ahead

    app.perform_import_paths()  # type: ignore[no-untyped-call]
    assert any(p.task.name == "sensors.partitions_ahead"
               for p in app.periodic_registry.periodic_tasks.values()), "the job is not periodic"
    months = months_from_now(ahead)
    before = set(attached(conn))
    # The furthest month the migration made goes (it is in the future: empty), and the two
    # months beyond the default do not exist yet: the job must make all three, both parents.
    default_last = months[ahead - 2]
    for parent in PARENTS:
        part = name(parent, default_last)
        if part in before:
            drop_empty(conn, part)
    later = {name(p, m) for p in PARENTS for m in months[ahead - 1:]}
    try:
        for part in later & before:  # left by an earlier run: gone, so the job makes them again
            drop_empty(conn, part)
        snapshot = set(attached(conn))
        expected = {name(p, m) for p in PARENTS for m in months} - snapshot
        assert {name(p, default_last) for p in PARENTS} | later <= expected

        partitions_ahead(timestamp=0)  # the periodic task itself, as the worker runs it
        have = attached(conn)
        assert set(have) == snapshot | expected  # the missing months, and nothing else
        for parent in PARENTS:
            for m in months:
                assert have.get(name(parent, m)) == bounds(m), (parent, m, have.get(name(parent, m)))

        # Again: nothing to do, nothing changed (an hourly job must not pile up or fail).
        from gis.sensors.partitions import ensure_ahead

        assert ensure_ahead() == []
        assert attached(conn) == have
    finally:
        for part in later - before:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(part)))


def test_rows_of_a_month_ahead_land_in_its_partition(conn: psycopg.Connection[Any]) -> None:
    """A partition made ahead takes that month's rows (bounds in UTC, not the server's zone)."""
    from gis.sensors.partitions import ensure_ahead

    ensure_ahead()
    month = months_from_now(get_settings().observation_partitions_ahead)[-1]
    ds = conn.execute("SELECT d.id, l.feature_of_interest_id FROM datastreams d"
                      " JOIN thing_locations l ON l.thing_id = d.thing_id"
                      " ORDER BY d.id LIMIT 1").fetchone()
    assert ds is not None, "the sample has no datastream"
    first = dt.datetime.combine(month, dt.time(), dt.UTC)
    with conn.transaction(force_rollback=True):
        conn.execute("SET LOCAL TimeZone = 'Asia/Ho_Chi_Minh'")
        for t in (first, first - dt.timedelta(milliseconds=1)):
            conn.execute("INSERT INTO observations (datastream_id, phenomenon_time, result,"
                         " feature_of_interest_id) VALUES (%s, %s, 1, %s)", (ds[0], t, ds[1]))
        where = conn.execute(
            "SELECT tableoid::regclass::text, phenomenon_time FROM observations"
            " WHERE datastream_id = %s AND phenomenon_time IN (%s, %s) ORDER BY 2",
            (ds[0], first - dt.timedelta(milliseconds=1), first)).fetchall()
    prev = (month - dt.timedelta(days=1)).replace(day=1)
    assert [w[0] for w in where] == [name("observations", prev), name("observations", month)]
