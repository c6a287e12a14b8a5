"""Incidents partitioned by Vietnam-time month (migration 0038, issue 18 "Province scale").

What the migration promises and these check on the sample: the table is partitioned with a
month per partition whose bounds are Vietnam midnights, covering every row; the hourly job
makes incident months ahead as it does observation months; an incident of a month without a
partition lands in the DEFAULT one, stays readable and moves into its month when that month is
created; an update moving rows across months keeps the pre-aggregates (0027, 0035, 0037) equal
to raw counts; the links that were foreign keys still refuse a missing incident (SQLSTATE 23503)
and still cascade or become NULL when one is deleted; an id stays unique and unchangeable; a
query of one month reads one partition; the row estimate of a partitioned layer is its
partitions'.

Changes run in transactions that are rolled back (or, for the job, undone), so the shared
sample is left as it was.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg import sql
from test_incident_aggregates import assert_exact

from gis.settings import get_settings

VN = ZoneInfo("Asia/Ho_Chi_Minh")
PART = r"^incidents_y[0-9]{4}m[0-9]{2}$"

# incident_days (0035) from the raw rows, and as kept.
RAW_DAYS = ("SELECT (reported_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date, category, severity,"
            " status, source, count(*)::int FROM incidents GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5")
AGG_DAYS = ("SELECT day, category, severity, status, source, n FROM incident_days"
            " ORDER BY 1, 2, 3, 4, 5")


def assert_all_exact(c: psycopg.Connection[Any]) -> None:
    """Every incident pre-aggregate equals the raw rows, and the id guard holds every id."""
    assert_exact(c)
    assert c.execute(AGG_DAYS).fetchall() == c.execute(RAW_DAYS).fetchall()
    assert c.execute("SELECT (SELECT count(*) FROM incident_ids),"
                     " (SELECT count(*) FROM incidents),"
                     " (SELECT count(*) FROM incidents i JOIN incident_ids d USING (id))"
                     ).fetchone() == (c.execute("SELECT count(*) FROM incidents").fetchone()[0],) * 3


@pytest.fixture
def tx(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection inside a transaction that is rolled back at the end."""
    with psycopg.connect(db_url) as c:
        yield c
        c.rollback()


def month_of(t: dt.datetime) -> dt.date:
    return t.astimezone(VN).date().replace(day=1)


def next_month(m: dt.date) -> dt.date:
    return (m + dt.timedelta(days=32)).replace(day=1)


def name(m: dt.date) -> str:
    return f"incidents_y{m:%Y}m{m:%m}"


def bounds(m: dt.date) -> str:
    """A month's partition bounds as PostgreSQL states them (in the server's zone: UTC here,
    so Vietnam midnight is 17:00 the day before)."""
    lo = dt.datetime.combine(m, dt.time(), VN).astimezone(dt.UTC)
    hi = dt.datetime.combine(next_month(m), dt.time(), VN).astimezone(dt.UTC)
    return f"FOR VALUES FROM ('{lo:%Y-%m-%d %H:%M:%S}+00') TO ('{hi:%Y-%m-%d %H:%M:%S}+00')"


def partitions(c: psycopg.Connection[Any]) -> dict[str, str]:
    """Attached partition -> its bounds."""
    with c.transaction():
        c.execute("SET LOCAL TimeZone = 'UTC'")
        rows = c.execute("SELECT p.relname, pg_get_expr(p.relpartbound, p.oid) FROM pg_inherits i"
                         " JOIN pg_class p ON p.oid = i.inhrelid"
                         " WHERE i.inhparent = 'incidents'::regclass").fetchall()
    return {r[0]: r[1] for r in rows}


def new_incident(c: psycopg.Connection[Any], at: dt.datetime, **more: Any) -> int:
    cols = ["category", "severity", "status", "source", "title", "reported_at", "geom", *more]
    vals = [sql.Literal("fire"), sql.Literal(2), sql.Literal("received"), sql.Literal("hotline"),
            sql.Literal("partition test"), sql.Literal(at),
            sql.SQL("ST_SetSRID(ST_MakePoint(106.07, 21.18), 4326)"),
            *(sql.Literal(v) for v in more.values())]
    row = c.execute(sql.SQL("INSERT INTO incidents ({}) VALUES ({}) RETURNING id").format(
        sql.SQL(", ").join(map(sql.Identifier, cols)), sql.SQL(", ").join(vals))).fetchone()
    assert row is not None
    return int(row[0])


def test_incidents_are_partitioned_by_vietnam_month(conn: psycopg.Connection[Any]) -> None:
    assert conn.execute("SELECT relkind FROM pg_class WHERE oid = 'incidents'::regclass"
                        ).fetchone() == ("p",)
    assert conn.execute("SELECT pg_get_partkeydef('incidents'::regclass)").fetchone() == (
        "RANGE (reported_at)",)
    have = partitions(conn)
    assert have.pop("incidents_default") == "DEFAULT"
    first, last = conn.execute("SELECT min(reported_at), max(reported_at) FROM incidents").fetchone()
    m = month_of(first)
    while m <= month_of(max(last, dt.datetime.now(dt.UTC))):  # every month of the sample, and on
        assert have.get(name(m)) == bounds(m), (m, have.get(name(m)))
        m = next_month(m)
    assert all(have[p] == bounds(dt.date(int(p[11:15]), int(p[16:18]), 1)) for p in have)
    # Every row sits in its Vietnam month's partition, none in the DEFAULT one.
    wrong = conn.execute(
        "SELECT count(*) FROM incidents WHERE tableoid::regclass::text <> 'incidents_y'"
        " || to_char(reported_at AT TIME ZONE 'Asia/Ho_Chi_Minh', 'YYYY\"m\"MM')").fetchone()
    assert wrong == (0,)
    assert conn.execute("SELECT count(*) FROM incidents_default").fetchone() == (0,)


@pytest.fixture
def ahead(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """observation_partitions_ahead raised by two for the test (the job reads the setting)."""
    base = get_settings().observation_partitions_ahead
    monkeypatch.setenv("GEOIOC_OBSERVATION_PARTITIONS_AHEAD", str(base + 2))
    get_settings.cache_clear()
    yield base + 2
    monkeypatch.undo()
    get_settings.cache_clear()


def test_the_job_creates_incident_months_ahead(conn: psycopg.Connection[Any], ahead: int) -> None:
    from gis.sensors.partitions import ensure_ahead, partitions_ahead

    months = [month_of(dt.datetime.now(dt.UTC))]
    for _ in range(ahead):
        months.append(next_month(months[-1]))
    before = set(partitions(conn))
    # The furthest month the migration (or an earlier run) made goes: empty, in the future.
    gone = [m for m in months[ahead - 2:] if name(m) in before]
    for m in gone:
        ident = sql.Identifier(name(m))
        assert conn.execute(sql.SQL("SELECT count(*) FROM {}").format(ident)).fetchone() == (0,)
        conn.execute(sql.SQL("DROP TABLE {}").format(ident))
    try:
        snapshot = set(partitions(conn))
        expected = {name(m) for m in months} - snapshot
        assert {name(m) for m in months[ahead - 2:]} <= expected
        partitions_ahead(timestamp=0)  # the periodic task, as the worker runs it
        have = partitions(conn)
        assert set(have) == snapshot | expected
        for m in months:
            assert have[name(m)] == bounds(m)
        assert not [p for p in ensure_ahead() if p.startswith("incidents")]  # nothing twice
    finally:
        for m in months[ahead - 2:]:
            if name(m) not in before:
                conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name(m))))


def test_an_old_incident_lands_in_the_default_partition_then_in_its_month(tx) -> None:
    c = tx
    at = dt.datetime(1990, 3, 31, 20, 0, tzinfo=dt.UTC)  # 1 April 03:00 in Vietnam
    old = new_incident(c, at)
    c.execute("INSERT INTO incident_transitions (incident_id, actor, to_status)"
              " VALUES (%s, 'test', 'received')", (old,))
    row = c.execute("SELECT tableoid::regclass::text, reported_at, title FROM incidents"
                    " WHERE id = %s", (old,)).fetchone()
    assert row == ("incidents_default", at, "partition test")
    assert_all_exact(c)
    before = c.execute("SELECT i::text FROM incidents i WHERE id = %s", (old,)).fetchone()
    made = [r[0] for r in c.execute("SELECT incidents_create_partitions('1990-03-01', '1990-04-01')")]
    assert made == ["incidents_y1990m03", "incidents_y1990m04"]
    assert c.execute("SELECT tableoid::regclass::text FROM incidents WHERE id = %s",
                     (old,)).fetchone() == ("incidents_y1990m04",)
    # The same row (every column), its link, the aggregates and the id guard untouched.
    assert c.execute("SELECT i::text FROM incidents i WHERE id = %s", (old,)).fetchone() == before
    assert c.execute("SELECT count(*) FROM incident_transitions WHERE incident_id = %s",
                     (old,)).fetchone() == (1,)
    assert c.execute("SELECT count(*) FROM incidents_default").fetchone() == (0,)
    assert_all_exact(c)


def test_the_job_moves_recent_months_out_of_the_default_partition(tx) -> None:
    """An import of incidents eight years old lands in the DEFAULT partition (no month yet);
    the periodic job's ensure makes their month and moves them; a 1990 one stays."""
    c = tx
    at = (dt.datetime.now(dt.UTC) - dt.timedelta(days=8 * 365)).replace(microsecond=0)
    stray, ancient = new_incident(c, at), new_incident(c, dt.datetime(1990, 5, 1, tzinfo=dt.UTC))
    where = "SELECT tableoid::regclass::text FROM incidents WHERE id = %s"
    assert c.execute(where, (stray,)).fetchone() == ("incidents_default",)
    made = [r[0] for r in c.execute("SELECT incidents_ensure_partitions(3)")]
    assert made == [name(month_of(at))]
    assert c.execute(where, (stray,)).fetchone() == (name(month_of(at)),)
    assert c.execute(where, (ancient,)).fetchone() == ("incidents_default",)
    assert [r[0] for r in c.execute("SELECT incidents_ensure_partitions(3)")] == []
    assert_all_exact(c)


def test_rows_moved_across_months_keep_the_aggregates_exact(tx) -> None:
    c = tx
    rows = c.execute("SELECT id, tableoid::regclass::text FROM incidents"
                     " WHERE reported_at < now() - interval '90 days' ORDER BY id LIMIT 30").fetchall()
    ids = [r[0] for r in rows]
    # 40 days back (another month, another partition), then a few 20 years back (the DEFAULT).
    c.execute("UPDATE incidents SET reported_at = reported_at - interval '40 days',"
              " resolved_at = resolved_at - interval '40 days',"
              " answered_at = answered_at - interval '40 days' WHERE id = ANY(%s)", (ids,))
    c.execute("UPDATE incidents SET reported_at = reported_at - interval '20 years',"
              " resolved_at = resolved_at - interval '20 years',"
              " answered_at = answered_at - interval '20 years' WHERE id = ANY(%s)", (ids[:5],))
    moved = dict(c.execute("SELECT id, tableoid::regclass::text FROM incidents WHERE id = ANY(%s)",
                           (ids,)).fetchall())
    assert all(moved[i] != p for i, p in rows)
    assert {moved[i] for i in ids[:5]} == {"incidents_default"}
    assert_all_exact(c)


def link_every_table(c: psycopg.Connection[Any], a: int) -> dict[str, int]:
    """A row naming incident A in every table that links to incidents; the ids of the alert
    and the camera detection made."""
    c.execute("INSERT INTO incident_transitions (incident_id, actor, to_status)"
              " VALUES (%s, 'test', 'received')", (a,))
    c.execute("INSERT INTO incident_requests (incident_id, token) VALUES (%s, %s)",
              (a, f"tok-{a}"))
    c.execute("INSERT INTO incident_reporters (incident_id, first_name) VALUES (%s, 'An')", (a,))
    c.execute("INSERT INTO report_photos (incident_id, position, jpeg, thumbnail, width, height,"
              " sha256) VALUES (%s, 1, 'x', 'x', 1, 1, %s)", (a, hashlib.sha256(b"x").hexdigest()))
    alert = c.execute(
        "INSERT INTO sensor_alerts (rule_id, datastream_id, opened_at, value, limit_value, peak,"
        " closed_at, incident_id) SELECT r.id, d.id, now(), 1, 1, 1, now(), %s"
        " FROM alert_rules r, datastreams d ORDER BY r.id, d.id LIMIT 1 RETURNING id",
        (a,)).fetchone()
    detection = c.execute(
        "INSERT INTO camera_detections (camera_id, category, confidence, detected_at, status,"
        " incident_id) SELECT c.id, k.code, 0.9, now(), 'confirmed', %s"
        " FROM cameras c, detection_categories k ORDER BY c.id, k.code LIMIT 1 RETURNING id",
        (a,)).fetchone()
    assert alert and detection, "the sample has no alert rule, datastream, camera or category"
    return {"alert": alert[0], "detection": detection[0]}


@pytest.fixture
def linked(tx) -> tuple[psycopg.Connection[Any], dict[str, int]]:
    """An incident with a row in every table that links to one, and a second incident that is
    its duplicate."""
    c = tx
    now = dt.datetime.now(dt.UTC)
    a = new_incident(c, now - dt.timedelta(days=3))
    b = new_incident(c, now - dt.timedelta(days=2), duplicate_of=a)
    return c, {"a": a, "b": b, **link_every_table(c, a)}


CASCADED = ("incident_transitions", "incident_requests", "incident_reporters", "report_photos")


def test_deleting_an_incident_cascades_and_unlinks(linked) -> None:
    c, ids = linked
    for t in CASCADED:
        assert c.execute(sql.SQL("SELECT count(*) FROM {} WHERE incident_id = %s").format(
            sql.Identifier(t)), (ids["a"],)).fetchone() == (1,), t
    c.execute("DELETE FROM incidents WHERE id = %s", (ids["a"],))
    for t in CASCADED:
        assert c.execute(sql.SQL("SELECT count(*) FROM {} WHERE incident_id = %s").format(
            sql.Identifier(t)), (ids["a"],)).fetchone() == (0,), t
    assert c.execute("SELECT incident_id FROM sensor_alerts WHERE id = %s",
                     (ids["alert"],)).fetchone() == (None,)
    assert c.execute("SELECT incident_id FROM camera_detections WHERE id = %s",
                     (ids["detection"],)).fetchone() == (None,)
    assert c.execute("SELECT duplicate_of FROM incidents WHERE id = %s",
                     (ids["b"],)).fetchone() == (None,)
    assert c.execute("SELECT count(*) FROM incident_ids WHERE id = %s",
                     (ids["a"],)).fetchone() == (0,)
    assert_all_exact(c)


def test_links_to_a_missing_incident_are_refused(linked) -> None:
    c, ids = linked
    missing = c.execute("SELECT max(id) + 1000 FROM incidents").fetchone()[0]
    cases = [
        ("INSERT INTO incident_transitions (incident_id, actor, to_status)"
         " VALUES (%(missing)s, 'test', 'received')", "incident_transitions_incident_id_fkey"),
        ("UPDATE incident_requests SET incident_id = %(missing)s WHERE incident_id = %(a)s",
         "incident_requests_incident_id_fkey"),
        ("UPDATE sensor_alerts SET incident_id = %(missing)s WHERE id = %(alert)s",
         "sensor_alerts_incident_id_fkey"),
        ("UPDATE camera_detections SET incident_id = %(missing)s WHERE id = %(detection)s",
         "camera_detections_incident_id_fkey"),
        ("UPDATE incidents SET duplicate_of = %(missing)s WHERE id = %(b)s",
         "incidents_duplicate_of_fkey"),
    ]
    for statement, constraint in cases:
        with pytest.raises(psycopg.errors.ForeignKeyViolation) as e, c.transaction():
            c.execute(statement, {**ids, "missing": missing})
        assert e.value.diag.sqlstate == "23503"
        assert e.value.diag.constraint_name == constraint


def test_a_missing_incident_is_a_404_in_the_api(client, keys, conn) -> None:
    missing = conn.execute("SELECT max(id) + 1000 FROM incidents").fetchone()[0]
    r = client.post(f"/api/incidents/{missing}/transitions", headers=keys["operator"],
                    json={"status": "verified"})
    assert r.status_code == 404, r.text


def test_an_id_stays_unique_and_fixed(tx) -> None:
    c = tx
    some = c.execute("SELECT id FROM incidents ORDER BY id LIMIT 1").fetchone()[0]
    # Another month, so the primary key (id, reported_at) alone would let it through.
    with pytest.raises(psycopg.errors.UniqueViolation) as e, c.transaction():
        c.execute("INSERT INTO incidents (id, category, severity, status, source, title,"
                  " reported_at, geom) OVERRIDING SYSTEM VALUE VALUES (%s, 'fire', 1, 'received',"
                  " 'hotline', 't', '2001-01-01Z', ST_SetSRID(ST_MakePoint(106.07, 21.18), 4326))",
                  (some,))
    assert e.value.diag.constraint_name == "incident_ids_pkey"
    with pytest.raises(psycopg.errors.GeneratedAlways), c.transaction():
        c.execute("UPDATE incidents SET id = id + 10000000 WHERE id = %s", (some,))
    # New ids still come from the sequence, past every id there is.
    new = new_incident(c, dt.datetime.now(dt.UTC))
    assert new > c.execute("SELECT max(id) FROM incidents WHERE id <> %s", (new,)).fetchone()[0]


def test_a_month_reads_one_partition(conn: psycopg.Connection[Any]) -> None:
    plan = conn.execute(
        "EXPLAIN (FORMAT JSON) SELECT count(*) FROM incidents"
        " WHERE reported_at >= '2026-03-01 00:00+07' AND reported_at < '2026-04-01 00:00+07'"
    ).fetchone()[0]

    def relations(node: dict[str, Any]) -> list[str]:
        own = [node["Relation Name"]] if "Relation Name" in node else []
        return own + [r for child in node.get("Plans", []) for r in relations(child)]

    assert relations(plan[0]["Plan"]) == ["incidents_y2026m03"]


def test_the_row_estimate_of_a_partitioned_layer(conn: psycopg.Connection[Any]) -> None:
    from gis.db import rows_estimate

    conn.execute("ANALYZE incidents")
    n = conn.execute("SELECT count(*) FROM incidents").fetchone()[0]
    assert rows_estimate(conn, "incidents") == pytest.approx(n, rel=0.01)
    conn.execute("ANALYZE sensors")
    assert rows_estimate(conn, "sensors") == pytest.approx(
        conn.execute("SELECT count(*) FROM sensors").fetchone()[0], rel=0.01)


def test_a_bulk_load_sets_the_partitioned_indexes_aside_and_back(tx) -> None:
    """geoioc_bulk_load_begin (0010, extended by 0038) takes the partitioned incidents: it drops
    the secondary indexes of the whole tree and geoioc_bulk_load_end re-creates them on every
    partition (not ON ONLY the parent, which would leave the partitions without them)."""
    c = tx
    index_sql = ("SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid),"
                 " (SELECT count(*) FROM pg_inherits h WHERE h.inhparent = i.indexrelid)"
                 " FROM pg_index i WHERE i.indrelid = 'incidents'::regclass ORDER BY 1")
    parts = c.execute("SELECT count(*) FROM pg_inherits WHERE inhparent = 'incidents'::regclass"
                      ).fetchone()[0]
    before = c.execute(index_sql).fetchall()
    assert {r[2] for r in before} == {parts}  # every index is on every partition
    assert c.execute("SELECT geoioc_bulk_load_begin('incidents')").fetchone() == (len(before) - 1,)
    assert [r[0] for r in c.execute(index_sql)] == ["incidents_pkey"]
    new_incident(c, dt.datetime.now(dt.UTC))
    assert c.execute("SELECT geoioc_bulk_load_end('incidents')").fetchone() == (len(before) - 1,)
    assert c.execute(index_sql).fetchall() == before
    assert c.execute("SELECT bool_and(indisvalid) FROM pg_index WHERE indrelid IN ("
                     " SELECT inhrelid FROM pg_inherits WHERE inhparent = 'incidents'::regclass)"
                     ).fetchone() == (True,)
