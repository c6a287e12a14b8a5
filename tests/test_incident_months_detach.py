"""Old incident months archived (migration 0040, issue 18 "incidents become time-partitioned
like observations").

What the migration promises and these check on the sample: detaching a past month takes its
rows out of incidents and keeps them, unchanged, in the detached table; the pre-aggregates
(0027, 0035, 0037) still equal counts of the remaining raw rows and the id guard still holds
every id (compared with SQL of their own over the raw rows); the rows that linked to the
month's incidents are copied beside the month and then cascaded or unlinked as a DELETE does;
a month with open incidents is refused unless asked; the current month and later, and the
DEFAULT partition, are never detached; an incident of an archived month is refused with a
clear error (until its table is dropped); the CLI lists and detaches; the migration round-trips.

Every change runs in a transaction that is rolled back (DETACH is transactional), so the
shared sample is left as it was.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from psycopg import sql
from test_incidents_partitioned import (
    CASCADED,
    VN,
    assert_all_exact,
    link_every_table,
    month_of,
    name,
    new_incident,
    next_month,
    partitions,
)

OPEN = "status NOT IN ('resolved', 'rejected', 'closed')"


@pytest.fixture
def tx(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection inside a transaction that is rolled back at the end."""
    with psycopg.connect(db_url) as c:
        yield c
        c.rollback()


def first_month(c: psycopg.Connection[Any]) -> dt.date:
    """The sample's oldest month (a past month with a partition)."""
    return month_of(c.execute("SELECT min(reported_at) FROM incidents").fetchone()[0])


def at(m: dt.date, day: int = 15) -> dt.datetime:
    """Noon of DAY of month M, Vietnam time."""
    return dt.datetime.combine(m.replace(day=day), dt.time(12), VN)


def detach(c: psycopg.Connection[Any], before: dt.date, open_too: bool = True) -> list[str]:
    return [r[0] for r in c.execute("SELECT incidents_detach_partitions(%s, %s)",
                                    (before, open_too))]


def month_rows(c: psycopg.Connection[Any], m: dt.date) -> list[str]:
    """The month's incidents as text, every column (geom_vn too), in id order."""
    return [r[0] for r in c.execute(
        "SELECT i::text FROM incidents i WHERE reported_at >= %s AND reported_at < %s ORDER BY id",
        (at(m, 1).replace(hour=0), at(next_month(m), 1).replace(hour=0)))]


def attached(c: psycopg.Connection[Any], table: str) -> bool:
    return bool(c.execute("SELECT EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = %s::regclass)",
                          (table,)).fetchone()[0])


def test_a_past_month_leaves_incidents_and_stays_in_its_table(tx) -> None:
    c = tx
    m = first_month(c)
    before = month_rows(c, m)
    total = c.execute("SELECT count(*) FROM incidents").fetchone()[0]
    assert len(before) > 100
    # The pre-aggregates count the month now (so their emptying below means something).
    assert c.execute("SELECT sum(n) FROM incident_days WHERE day >= %s AND day < %s",
                     (m, next_month(m))).fetchone() == (len(before),)

    assert detach(c, next_month(m)) == [name(m)]
    assert month_rows(c, m) == []
    assert c.execute("SELECT count(*) FROM incidents").fetchone() == (total - len(before),)
    # The detached table is the partition itself, its rows as they were.
    assert not attached(c, name(m))
    assert [r[0] for r in c.execute(sql.SQL("SELECT t::text FROM {} t ORDER BY id").format(
        sql.Identifier(name(m))))] == before
    assert c.execute("SELECT attached, rows_estimate FROM incident_partitions WHERE name = %s",
                     (name(m),)).fetchone() == (False, len(before))
    # Nothing of the month is counted any more; every aggregate equals the remaining raw rows.
    for table, col in (("incident_days", "day"), ("incident_cell_days", "day"),
                       ("incident_heat_days", "day"), ("incident_heat_months", "month"),
                       ("incident_hex_months", "month"), ("incident_heat_years", "year"),
                       ("incident_cell_months", "month")):
        assert c.execute(sql.SQL("SELECT count(*) FROM {} WHERE {} >= %s AND {} < %s").format(
            sql.Identifier(table), sql.Identifier(col), sql.Identifier(col)),
            (m, next_month(m))).fetchone() == (0,), table
    assert c.execute(sql.SQL("SELECT count(*) FROM incident_ids WHERE id IN (SELECT id FROM {})"
                             ).format(sql.Identifier(name(m)))).fetchone() == (0,)
    assert_all_exact(c)
    # The archive is read-only for the application.
    assert c.execute("SELECT has_table_privilege('geoioc_app', %s, 'SELECT'),"
                     " has_table_privilege('geoioc_app', %s, 'INSERT')",
                     (name(m), name(m))).fetchone() == (True, False)
    # Done once: a second call has nothing left to detach.
    assert detach(c, next_month(m)) == []


def test_what_linked_to_the_month_is_archived_beside_it_and_unlinked(tx) -> None:
    """The rows naming an archived incident are copied into <month>_<table>, then go as a
    DELETE takes them: cascaded (workflow, request, reporter, photos) or unlinked (alerts,
    detections, a later incident marked as its duplicate)."""
    c = tx
    m = first_month(c)
    a = new_incident(c, at(m, 10))
    twin = new_incident(c, at(m, 11), duplicate_of=a)  # same month: archived with it
    later = new_incident(c, dt.datetime.now(dt.UTC) - dt.timedelta(days=1), duplicate_of=a)
    ids = link_every_table(c, a)
    linked = {t: c.execute(sql.SQL("SELECT t::text FROM {} t WHERE incident_id = %s").format(
        sql.Identifier(t)), (a,)).fetchall() for t in (*CASCADED, "sensor_alerts",
                                                       "camera_detections")}
    linked["incidents"] = c.execute("SELECT (id, duplicate_of)::text FROM incidents WHERE id = %s",
                                    (later,)).fetchall()
    assert all(len(v) == 1 for v in linked.values()), linked

    assert detach(c, next_month(m)) == [name(m)]
    # Beside the month, one table per linking table that named it, rows as they were.
    made = {r[0] for r in c.execute("SELECT relname FROM pg_class WHERE relname LIKE %s",
                                    (name(m) + r"\_%",)) if not r[0].endswith(("_idx", "_pkey"))}
    assert made == {f"{name(m)}_{t}" for t in linked}
    for t, rows in linked.items():
        archived = sql.Identifier(f"{name(m)}_{t}")
        if t == "incidents":
            got = c.execute(sql.SQL("SELECT (id, duplicate_of)::text FROM {}").format(archived))
        else:
            got = c.execute(sql.SQL("SELECT t::text FROM {} t").format(archived))
        assert got.fetchall() == rows, t
        assert c.execute("SELECT has_table_privilege('geoioc_app', %s, 'UPDATE')",
                         (f"{name(m)}_{t}",)).fetchone() == (False,)
    # Live: cascaded away, or unlinked.
    for t in CASCADED:
        assert c.execute(sql.SQL("SELECT count(*) FROM {} WHERE incident_id = %s").format(
            sql.Identifier(t)), (a,)).fetchone() == (0,), t
    assert c.execute("SELECT incident_id FROM sensor_alerts WHERE id = %s",
                     (ids["alert"],)).fetchone() == (None,)
    assert c.execute("SELECT incident_id FROM camera_detections WHERE id = %s",
                     (ids["detection"],)).fetchone() == (None,)
    assert c.execute("SELECT duplicate_of FROM incidents WHERE id = %s", (later,)).fetchone() == (None,)
    # The month's own duplicate keeps its link, in the archive.
    assert c.execute(sql.SQL("SELECT duplicate_of FROM {} WHERE id = %s").format(
        sql.Identifier(name(m))), (twin,)).fetchone() == (a,)
    assert c.execute("SELECT count(*) FROM incident_ids WHERE id IN (%s, %s)",
                     (a, twin)).fetchone() == (0,)
    assert_all_exact(c)


def test_a_month_with_open_incidents_is_refused_unless_asked(tx) -> None:
    c = tx
    m = first_month(c)
    lo, hi = at(m, 1).replace(hour=0), at(next_month(m), 1).replace(hour=0)
    still = c.execute(f"SELECT count(*) FROM incidents WHERE {OPEN}"  # noqa: S608 - constant
                      " AND reported_at >= %s AND reported_at < %s", (lo, hi)).fetchone()[0]
    assert still > 0  # the sample leaves some open in every month
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as e, c.transaction():
        detach(c, next_month(m), open_too=False)
    assert f"{m:%Y-%m}: {still}" in e.value.diag.message_primary
    assert "nothing was detached" in e.value.diag.message_primary
    assert attached(c, name(m))
    # Once answered, the month goes without being asked.
    c.execute(f"UPDATE incidents SET status = 'closed', resolved_at = reported_at"  # noqa: S608
              f" + interval '1 day' WHERE {OPEN} AND reported_at >= %s AND reported_at < %s",
              (lo, hi))
    assert detach(c, next_month(m), open_too=False) == [name(m)]
    assert_all_exact(c)


def test_the_current_month_and_later_are_refused(tx) -> None:
    c = tx
    this = dt.datetime.now(VN).date().replace(day=1)
    for before in (this + dt.timedelta(days=1), next_month(this), dt.date(2100, 1, 1)):
        with pytest.raises(psycopg.errors.InvalidParameterValue) as e, c.transaction():
            detach(c, before)
        assert "only months that have ended can be detached" in e.value.diag.message_primary
        assert f"{this:%Y-%m}" in e.value.diag.message_primary
    with pytest.raises(psycopg.errors.InvalidParameterValue), c.transaction():
        c.execute("SELECT incidents_detach_partitions(NULL)")
    assert attached(c, name(this)) and attached(c, name(next_month(this)))


def test_the_default_partition_is_never_detached(tx) -> None:
    c = tx
    m = first_month(c)
    ancient = new_incident(c, dt.datetime(1990, 5, 1, tzinfo=dt.UTC))  # no month: DEFAULT
    assert c.execute("SELECT tableoid::regclass::text FROM incidents WHERE id = %s",
                     (ancient,)).fetchone() == ("incidents_default",)
    assert detach(c, next_month(m)) == [name(m)]
    assert partitions(c)["incidents_default"] == "DEFAULT"
    assert c.execute("SELECT count(*) FROM incidents WHERE id = %s", (ancient,)).fetchone() == (1,)
    assert "incidents_default" not in {r[0] for r in c.execute("SELECT name FROM incident_partitions")}
    assert_all_exact(c)


def test_an_incident_of_an_archived_month_is_refused(tx) -> None:
    c = tx
    m = first_month(c)
    detach(c, next_month(m))

    def refused(statement: str, *args: Any) -> None:
        with pytest.raises(psycopg.errors.CheckViolation) as e, c.transaction():
            c.execute(statement, args)
        assert e.value.diag.constraint_name == "incidents_archived_month"
        assert e.value.diag.message_primary == (
            f"incidents of {m:%Y-%m} are archived (table {name(m)}, detached): the month takes"
            " no incident")

    # A new incident (which would land in the DEFAULT partition), a live one moved there (row
    # movement from its partition), and one moved there within the DEFAULT partition.
    with pytest.raises(psycopg.errors.CheckViolation), c.transaction():
        new_incident(c, at(m))
    refused("INSERT INTO incidents (category, severity, status, source, title, reported_at, geom)"
            " VALUES ('fire', 2, 'received', 'hotline', 't', %s,"
            " ST_SetSRID(ST_MakePoint(106.07, 21.18), 4326))", at(m, 28))
    live = c.execute("SELECT id FROM incidents WHERE resolved_at IS NULL"
                     " ORDER BY reported_at DESC LIMIT 1").fetchone()[0]
    refused("UPDATE incidents SET reported_at = %s WHERE id = %s", at(m), live)
    ancient = new_incident(c, dt.datetime(1990, 5, 1, tzinfo=dt.UTC))
    refused("UPDATE incidents SET reported_at = %s WHERE id = %s", at(m), ancient)
    # The month is not made again; other months are untouched.
    assert [r[0] for r in c.execute("SELECT incidents_create_partitions(%s, %s)", (m, m))] == []
    assert not attached(c, name(m))
    assert not [r[0] for r in c.execute("SELECT incidents_ensure_partitions(3)")]
    new_incident(c, at(next_month(m)))
    # Once the operator has dumped and dropped it, the month takes incidents again (DEFAULT),
    # and the hourly ensure gives it a partition as for any stray month.
    c.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name(m))))
    back = new_incident(c, at(m))
    assert c.execute("SELECT tableoid::regclass::text FROM incidents WHERE id = %s",
                     (back,)).fetchone() == ("incidents_default",)
    assert [r[0] for r in c.execute("SELECT incidents_ensure_partitions(3)")] == [name(m)]
    assert_all_exact(c)


@pytest.fixture
def cli_in_tx(tx, monkeypatch: pytest.MonkeyPatch) -> psycopg.Connection[Any]:
    """The CLI's connections are the test's transaction (its commits become savepoints). Only
    this thread's: the suite's in-process queue worker runs its periodic jobs meanwhile, and
    one of them given this connection nested its transaction into the CLI's (a fresh-clone run
    failed with OutOfOrderTransactionNesting)."""
    import threading

    import gis.db

    real = gis.db.connection
    test_thread = threading.get_ident()

    @contextmanager
    def connection(timeout: float | None = None) -> Iterator[psycopg.Connection[Any]]:
        if threading.get_ident() != test_thread:
            with real(timeout) as conn:
                yield conn
            return
        yield tx

    monkeypatch.setattr(gis.db, "connection", connection)
    return tx


def listed(out: str) -> dict[str, tuple[str, str]]:
    """`geoioc incidents partitions`: table -> (month, state), from its lines (the console
    expands the tabs)."""
    found = [re.fullmatch(r"(\S+)\s+(\d{4}-\d{2})\s+(.+?)\s+~\d+", line.strip())
             for line in out.splitlines()]
    assert all(found), out
    return {f[1]: (f[2], f[3]) for f in found if f}


def test_the_cli_lists_and_detaches_months(cli_in_tx) -> None:
    from typer.testing import CliRunner

    from gis.cli import app
    from gis.cli.common import CliError

    c = cli_in_tx
    m = first_month(c)
    runner = CliRunner()
    r = runner.invoke(app, ["incidents", "partitions"])
    assert r.exit_code == 0, r.output
    lines = listed(r.stdout)
    assert lines[name(m)] == (f"{m:%Y-%m}", "đã gắn / attached")
    assert set(lines) == {r[0] for r in c.execute("SELECT name FROM incident_partitions")}

    # Refused: open incidents (nothing detached), the current month, no month at all.
    r = runner.invoke(app, ["incidents", "detach", "--before", f"{next_month(m):%Y-%m}"])
    assert isinstance(r.exception, CliError)
    assert "--include-open" in str(r.exception) and f"{m:%Y-%m}: " in str(r.exception)
    assert attached(c, name(m))
    this = dt.datetime.now(VN).date().replace(day=1)
    r = runner.invoke(app, ["incidents", "detach", "--before", f"{next_month(this):%Y-%m}"])
    assert isinstance(r.exception, CliError)
    assert "only past months can be detached" in str(r.exception)
    r = runner.invoke(app, ["incidents", "detach", "--before", "2025-13"])
    assert isinstance(r.exception, CliError)

    audited = c.execute("SELECT coalesce(max(id), 0) FROM audit_log").fetchone()[0]
    r = runner.invoke(app, ["incidents", "detach", "--before", f"{next_month(m):%Y-%m}",
                            "--include-open"])
    assert r.exit_code == 0, r.output
    assert r.stdout.split() == [name(m)]
    assert f"pg_dump -t '{name(m)}*'" in r.stderr
    assert not attached(c, name(m))
    assert c.execute("SELECT action, target->'tables' FROM audit_log WHERE id > %s",
                     (audited,)).fetchall() == [("incidents_detach", [name(m)])]
    r = runner.invoke(app, ["incidents", "partitions"])
    assert listed(r.stdout)[name(m)] == (f"{m:%Y-%m}", "đã tách / detached")
    r = runner.invoke(app, ["incidents", "detach", "--before", f"{next_month(m):%Y-%m}"])
    assert r.exit_code == 0 and "nothing to detach" in r.stdout
    assert_all_exact(c)


@pytest.mark.slow
def test_the_migration_round_trips(empty_db_url: str) -> None:
    """Down to 0040's parent and up again on a database with an archived month: the function,
    view and trigger go and come back; the archived table (data not dumped yet) stays."""
    from gis import migrate

    migrate.upgrade("head", url=empty_db_url)
    m = dt.date(2024, 3, 1)
    objects = ("SELECT to_regprocedure('incidents_detach_partitions(date, boolean)') IS NOT NULL,"
               " to_regclass('incident_partitions') IS NOT NULL,"
               " EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'incidents_archived_month')")
    with psycopg.connect(empty_db_url, autocommit=True) as c:
        assert c.execute(objects).fetchone() == (True, True, True)
        c.execute("SELECT incidents_create_partitions(%s, %s)", (m, m))
        a = new_incident(c, at(m))
        c.execute("INSERT INTO incident_transitions (incident_id, actor, to_status)"
                  " VALUES (%s, 'test', 'received')", (a,))
        assert detach(c, next_month(m)) == [name(m)]
        assert_all_exact(c)
    try:
        migrate.downgrade("0040-1", url=empty_db_url)
        with psycopg.connect(empty_db_url, autocommit=True) as c:
            assert c.execute(objects).fetchone() == (False, False, False)
            assert c.execute(sql.SQL("SELECT count(*) FROM {}").format(
                sql.Identifier(name(m)))).fetchone() == (1,)
        migrate.upgrade("head", url=empty_db_url)
        with psycopg.connect(empty_db_url, autocommit=True) as c:
            assert c.execute(objects).fetchone() == (True, True, True)
            assert c.execute("SELECT attached FROM incident_partitions WHERE name = %s",
                             (name(m),)).fetchone() == (False,)
            with pytest.raises(psycopg.errors.CheckViolation):
                new_incident(c, at(m))
    finally:
        with psycopg.connect(empty_db_url, autocommit=True) as c:
            for t in (name(m), f"{name(m)}_incident_transitions"):
                c.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(t)))
