"""The incident pre-aggregates (migration 0027, gis/analysis/aggregates.py): incident_cell_days
equals counts taken from the raw rows after inserts, updates of every key (status, category,
position, time) and deletes, single and in bulk; the stored projection equals ST_Transform;
and KDE counts and square grid counts read through the pre-aggregates equal the raw path on
the sample, for aligned and ragged windows, filters and the operator's row rule; likewise
incident_days (migration 0035) and the map's statistics read through it (incident_stats);
likewise incident_heat_months (migration 0037), its years (0043) and the map's heatmap, clusters
and tiles read through them (heat_cells).

The changes run in a transaction that is rolled back, so the shared sample is left as it was.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from dataclasses import replace
from zoneinfo import ZoneInfo

import mapbox_vector_tile
import numpy as np
import psycopg
import pytest
from psycopg import sql

from gis.analysis import aggregates, cell_months, dashboard, density_sql, heat_cells, hex_months
from gis.analysis import dashboard_queries as q
from gis.analysis import density as D
from gis.analysis import incident_stats as S
from gis.analysis import incidents as raw_views
from gis.analysis.incidents import IncidentFilter
from gis.analysis.incidents import stats as raw_stats
from gis.tiles import render_tile
from layers.access import Principal, row_filter
from layers.catalogue import INCIDENT_CATEGORIES, get_layer
from layers.tiles_sql import BUFFER, EXTENT, tile_sql

VN = ZoneInfo("Asia/Ho_Chi_Minh")
INCIDENTS = get_layer("incidents")

RAW = """
SELECT (reported_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date, category, severity, status, source,
       floor(ST_X(ST_Transform(geom, g.srid)) / g.cell_m)::int,
       floor(ST_Y(ST_Transform(geom, g.srid)) / g.cell_m)::int, count(*)::int
  FROM incidents, incident_cell_grid g GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1, 2, 3, 4, 5, 6, 7
"""
AGG = """
SELECT day, category, severity, status, source, cx, cy, n FROM incident_cell_days
 ORDER BY 1, 2, 3, 4, 5, 6, 7
"""


def assert_exact(c: psycopg.Connection) -> None:
    raw = c.execute(RAW).fetchall()
    agg = c.execute(AGG).fetchall()
    assert sum(r[-1] for r in raw) == c.execute("SELECT count(*) FROM incidents").fetchone()[0]
    assert agg == raw
    assert_hex_exact(c)
    assert_cell_months_exact(c)


# The kernel density's months (migration 0044) from the raw rows, one count per category.
RAW_CELL_MONTHS = sql.SQL(
    "SELECT date_trunc('month', reported_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date,"
    " floor(ST_X(ST_Transform(geom, g.srid)) / g.cell_m)::int,"
    " floor(ST_Y(ST_Transform(geom, g.srid)) / g.cell_m)::int, {counts}"
    " FROM incidents, incident_cell_grid g GROUP BY 1, 2, 3 ORDER BY 1, 2, 3").format(
    counts=sql.SQL(", ").join(sql.SQL("count(*) FILTER (WHERE category = {})::int").format(
        sql.Literal(c)) for c in INCIDENT_CATEGORIES))
AGG_CELL_MONTHS = sql.SQL("SELECT month, cx, cy, {} FROM incident_cell_months ORDER BY 1, 2, 3"
                          ).format(sql.SQL(", ").join(sql.Identifier(cell_months.PREFIX + c)
                                                      for c in INCIDENT_CATEGORIES))


def assert_cell_months_exact(c: psycopg.Connection) -> None:
    agg = c.execute(AGG_CELL_MONTHS).fetchall()
    assert agg == c.execute(RAW_CELL_MONTHS).fetchall()
    assert all(sum(r[3:]) > 0 for r in agg)  # no empty rows left behind


# The 500 m hexagons (migration 0042) of the raw rows by the grid's own rule (density_sql's
# cell key, decoded), so the migration's written-out arithmetic is checked against it too.
def _raw_hex() -> sql.Composed:
    k = density_sql.cell_key("hexagon", hex_months.SIZE, sql.SQL("t.x_vn"), sql.SQL("t.y_vn"))
    return sql.SQL(
        "SELECT month, category, round(k / {K})::int AS a, (k - {K} * round(k / {K}))::int AS b,"
        " count(*)::int FROM (SELECT date_trunc('month', reported_at AT TIME ZONE"
        " 'Asia/Ho_Chi_Minh')::date AS month, category, {k} AS k FROM incidents t) r"
        " GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4").format(k=k, K=sql.Literal(density_sql.KEY_BASE))


def assert_hex_exact(c: psycopg.Connection) -> None:
    raw = c.execute(_raw_hex()).fetchall()
    agg = c.execute("SELECT month, category, a, b, n FROM incident_hex_months"
                    " ORDER BY 1, 2, 3, 4").fetchall()
    assert agg == raw and sum(r[-1] for r in agg) == c.execute(
        "SELECT count(*) FROM incidents").fetchone()[0]
    assert all(r[-1] > 0 for r in agg)  # no empty rows left behind
    assert_heat_exact(c)


# The map's Mercator cells (migration 0037) from the raw rows, written independently of it.
RAW_HEAT = """
SELECT date_trunc('month', reported_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date, category,
       floor(mx / %(cell)s)::int, floor(my / %(cell)s)::int,
       count(*) FILTER (WHERE severity = 1)::int, count(*) FILTER (WHERE severity = 2)::int,
       count(*) FILTER (WHERE severity = 3)::int, count(*) FILTER (WHERE severity = 4)::int,
       sum(mx), sum(my)
  FROM (SELECT *, 6378137.0 * radians(ST_X(geom)) AS mx,
               6378137.0 * ln(tan(pi() / 4 + radians(ST_Y(geom)) / 2)) AS my FROM incidents) t
 GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
"""
AGG_HEAT = ("SELECT month, category, gx, gy, n1, n2, n3, n4, sx, sy FROM incident_heat_months"
            " ORDER BY 1, 2, 3, 4")
AGG_HEAT_DAYS = AGG_HEAT.replace("month", "day")  # incident_heat_days, by day
AGG_HEAT_YEARS = AGG_HEAT.replace("month", "year")  # incident_heat_years (0043), by year


def assert_heat_exact(c: psycopg.Connection) -> None:
    """incident_heat_months, incident_heat_days and incident_heat_years equal the raw rows:
    counts exactly, coordinate sums to their last digits (they are added and subtracted in
    another order)."""
    for agg_sql, period in ((AGG_HEAT, "month"), (AGG_HEAT_DAYS, "day"),
                            (AGG_HEAT_YEARS, "year")):
        raw = c.execute(RAW_HEAT.replace("'month', ", f"'{period}', "),
                        {"cell": heat_cells.CELL_M}).fetchall()
        agg = c.execute(agg_sql).fetchall()
        assert [r[:8] for r in agg] == [r[:8] for r in raw], period
        # sums of Mercator metres reach 10^10 in a year's cell: to a part in 10^12 of them
        assert all(math.isclose(a[k], r[k], rel_tol=1e-12, abs_tol=1e-6) for k in (8, 9)
                   for a, r in zip(agg, raw, strict=True)), period
        assert all(sum(r[4:8]) > 0 for r in agg)


@pytest.fixture
def tx(db_url: str):
    """A connection inside a transaction that is rolled back at the end."""
    with psycopg.connect(db_url) as c:
        yield c
        c.rollback()


def test_the_backfill_equals_raw_counts(conn) -> None:
    assert_exact(conn)
    # and the stored projection is ST_Transform's, to the millimetre
    off = conn.execute(
        "SELECT max(ST_Distance(geom_vn, ST_Transform(geom, ST_SRID(geom_vn)))) FROM incidents"
    ).fetchone()[0]
    assert off < 1e-3


def test_inserts_updates_and_deletes_keep_the_aggregate_exact(tx) -> None:
    c = tx
    ids = [r[0] for r in c.execute(
        "SELECT id FROM incidents WHERE status IN ('received', 'verified', 'assigned', 'in_progress')"
        " ORDER BY id LIMIT 40").fetchall()]
    assert len(ids) == 40
    # inserts: one, then many in one statement (some in the same cell and day as each other)
    c.execute(
        "INSERT INTO incidents (category, severity, status, source, title, reported_at, geom)"
        " SELECT category, severity, status, source, 'agg test', reported_at, geom"
        " FROM incidents WHERE id = %s", [ids[0]])
    c.execute(
        "INSERT INTO incidents (category, severity, status, source, title, reported_at, geom)"
        " SELECT category, severity, status, source, 'agg test', reported_at, geom"
        " FROM incidents, generate_series(1, 3) WHERE id = ANY(%s)", [ids[:10]])
    assert_exact(c)
    # updates of each key, one row and many rows
    c.execute("UPDATE incidents SET status = 'verified' WHERE id = %s", [ids[1]])
    c.execute("UPDATE incidents SET status = 'assigned' WHERE id = ANY(%s)", [ids[2:8]])
    c.execute("UPDATE incidents SET category = CASE WHEN category = 'fire' THEN 'environment'"
              " ELSE 'fire' END WHERE id = ANY(%s)", [ids[8:14]])
    c.execute("UPDATE incidents SET severity = 5 - severity, source = 'patrol'"
              " WHERE id = ANY(%s)", [ids[14:18]])
    assert_exact(c)
    # a move of 250 m east (another cell) and back to the same cell in one statement
    c.execute("UPDATE incidents SET geom = ST_Transform(ST_Translate(geom_vn, 250, 0), 4326)"
              " WHERE id = ANY(%s)", [ids[18:24]])
    c.execute("UPDATE incidents SET geom = ST_Transform(ST_Translate(geom_vn, -250, 0), 4326)"
              " WHERE id = ANY(%s)", [ids[18:21]])
    # time: into another Vietnam day (and across the UTC day line: +20 hours)
    c.execute("UPDATE incidents SET reported_at = reported_at - interval '20 hours'"
              " WHERE id = ANY(%s)", [ids[24:30]])
    assert_exact(c)
    # a move of a metre (the same 611 m Mercator cell for most: only the sums change)
    c.execute("UPDATE incidents SET geom = ST_Transform(ST_Translate(geom_vn, 1, 1), 4326)"
              " WHERE id = ANY(%s)", [ids[30:34]])
    assert_exact(c)
    # an update that changes no key writes nothing
    before = c.execute("SELECT count(*), sum(n) FROM incident_cell_days").fetchone()
    heat = c.execute(AGG_HEAT).fetchall()
    c.execute("UPDATE incidents SET status_note = 'checked' WHERE id = ANY(%s)", [ids])
    assert c.execute("SELECT count(*), sum(n) FROM incident_cell_days").fetchone() == before
    # nor does a status change to the Mercator cells (bit for bit: no sum was touched)
    c.execute("UPDATE incidents SET status = 'verified' WHERE id = ANY(%s)", [ids[:4]])
    assert c.execute(AGG_HEAT).fetchall() == heat
    # a key changed and changed back within one statement (swap of two rows' statuses)
    c.execute("UPDATE incidents SET status = CASE WHEN id = %s THEN 'verified' ELSE 'received'"
              " END WHERE id = ANY(%s)", [ids[30], [ids[30], ids[1]]])
    assert_exact(c)
    # deletes: one, then many (cells emptied are removed)
    c.execute("DELETE FROM incidents WHERE id = %s", [ids[31]])
    c.execute("DELETE FROM incidents WHERE title = 'agg test' OR id = ANY(%s)", [ids[32:40]])
    assert_exact(c)


@pytest.mark.parametrize("table", ["incident_cell_days", "incident_heat_months",
                                   "incident_hex_months", "incident_heat_years",
                                   "incident_cell_months"])
def test_the_application_role_cannot_write_the_aggregate(tx, table) -> None:
    c = tx
    if not c.execute("SELECT 1 FROM pg_roles WHERE rolname = 'geoioc_app'").fetchone():
        pytest.fail("role geoioc_app missing")
    c.execute("SET LOCAL ROLE geoioc_app")
    # its writes to incidents still maintain the aggregates (SECURITY DEFINER triggers)
    iid = c.execute("SELECT id FROM incidents WHERE status = 'received' LIMIT 1").fetchone()[0]
    c.execute("UPDATE incidents SET status = 'verified', severity = 5 - severity WHERE id = %s",
              [iid])
    assert_exact(c)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        c.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(table)))


# --- the aggregate path gives the raw path's answers --------------------------------------------


def _windows(conn) -> list[IncidentFilter]:
    end = conn.execute("SELECT max(reported_at) + interval '1 second' FROM incidents").fetchone()[0]
    aligned_end = dt.datetime(2026, 7, 1, tzinfo=VN)
    return [
        IncidentFilter(dt.datetime(2026, 1, 1, tzinfo=VN), aligned_end),  # whole days
        IncidentFilter(end - dt.timedelta(days=365), end),  # ragged at both ends
        IncidentFilter(end - dt.timedelta(days=30), end, categories=("fire", "traffic_accident"),
                       severities=(2, 3, 4)),
        IncidentFilter(end - dt.timedelta(days=400), end, statuses=("received", "closed"),
                       sources=("hotline", "camera")),
        IncidentFilter(end - dt.timedelta(hours=20), end),  # no whole day: raw only
    ]


@pytest.mark.parametrize("role", ["operator", "leader"])
def test_kde_counts_from_the_aggregate_equal_the_raw_rows(conn, role) -> None:
    restrict = row_filter(INCIDENTS, Principal(f"agg-{role}", frozenset({role})))
    srid = D.srid()
    box = D.province_box(conn, srid)
    used = 0
    for f in _windows(conn):
        for cell in (100, 200):
            grid = D.snap_grid(box, cell, 3, srid)
            used += D.raster_days(conn, f, restrict, grid) is not None
            agg = D.counts_on(conn, f, restrict, grid, use_aggregates=True)
            raw = D.counts_on(conn, f, restrict, grid, use_aggregates=False)
            assert agg.sum() > 0 or f.length < dt.timedelta(days=1)
            assert np.array_equal(agg, raw), (f, cell)
    assert used == 8  # every window but the one shorter than a day used the aggregate


@pytest.mark.parametrize("role", ["operator", "leader", None])
def test_kde_and_square_counts_from_the_cell_months_equal_the_raw_rows(conn, role) -> None:
    """Whole months summed over the columns of the categories the caller counts, the rest of the
    widened window raw, its widenings taken away: the raw rows' counts, cell for cell, on a
    raster and on squares."""
    restrict = (row_filter(INCIDENTS, Principal(f"months-{role}", frozenset({role})))
                if role else None)
    end = conn.execute("SELECT max(reported_at) + interval '1 second' FROM incidents").fetchone()[0]
    srid = D.srid()
    box = D.province_box(conn, srid)
    windows = [
        IncidentFilter(dt.datetime(2026, 1, 1, tzinfo=VN), dt.datetime(2026, 7, 1, tzinfo=VN)),
        IncidentFilter(end - dt.timedelta(days=365), end),  # ragged, the end widened
        IncidentFilter(end - dt.timedelta(days=800), end, categories=("fire", "security_event")),
        IncidentFilter(end - dt.timedelta(days=90), end - dt.timedelta(days=20),
                       categories=("security_event",)),  # nothing for an operator
    ]
    for f in windows:
        assert cell_months.usable(conn, f, restrict) and cell_months.read(conn, f) is not None
        names = cell_months.counted(conn, f, restrict)
        assert ("security_event" in names) == (role != "operator" and (
            not f.categories or "security_event" in f.categories))
        for cell in (100, 300):
            grid = D.snap_grid(box, cell, 3, srid)
            agg = D.counts_on(conn, f, restrict, grid, use_aggregates=True)
            raw = D.counts_on(conn, f, restrict, grid, use_aggregates=False)
            assert agg.sum() > 0 or names == [], (f, cell)
            assert np.array_equal(agg, raw), (f, cell)
        squares = D.grid_counts(conn, f, restrict, "square", 500, use_aggregates=True)
        assert squares.cells == D.grid_counts(conn, f, restrict, "square", 500,
                                              use_aggregates=False).cells, f
        assert squares.total > 0 or names == []


def test_what_the_cell_months_cannot_answer_reads_other_paths(conn) -> None:
    end = conn.execute("SELECT max(reported_at) + interval '1 second' FROM incidents").fetchone()[0]
    f = IncidentFilter(end - dt.timedelta(days=365), end)
    assert cell_months.usable(conn, f, None)
    for other in (replace(f, severities=(3, 4)), replace(f, statuses=("received",)),
                  replace(f, sources=("camera",)), replace(f, bbox=(105.0, 20.0, 107.0, 22.0))):
        assert not cell_months.usable(conn, other, None), other
    assert not cell_months.usable(conn, f, sql.SQL("t.title <> 'x'"))
    assert cell_months.read(conn, IncidentFilter(dt.datetime(2026, 2, 3, tzinfo=VN),
                                                 dt.datetime(2026, 3, 1, tzinfo=VN))) is None
    # a category of the catalogue without its column (added to incidents, not yet here)
    key = (conn.info.host, str(conn.info.port), conn.info.dbname)
    kept = cell_months._COLUMNS[key]
    try:
        cell_months._COLUMNS[key] = kept - {"fire"}
        assert not cell_months.usable(conn, f, None)
    finally:
        cell_months._COLUMNS[key] = kept


def test_square_grids_from_the_aggregate_equal_the_raw_rows(conn) -> None:
    restrict = row_filter(INCIDENTS, Principal("agg-operator", frozenset({"operator"})))
    for f in _windows(conn):
        for size in (100, 500, 1000):
            assert (D.square_days(conn, f, restrict, "square", size) is not None) == (
                f.length >= dt.timedelta(days=1))
            agg = D.grid_counts(conn, f, restrict, "square", size, use_aggregates=True)
            raw = D.grid_counts(conn, f, restrict, "square", size, use_aggregates=False)
            assert agg.cells == raw.cells, (f, size)


@pytest.mark.parametrize("role", ["operator", "leader", None])
def test_hexagon_grids_from_the_hex_months_equal_the_raw_rows(conn, role) -> None:
    restrict = (row_filter(INCIDENTS, Principal(f"hex-{role}", frozenset({role})))
                if role else None)
    end = conn.execute("SELECT max(reported_at) + interval '1 second' FROM incidents").fetchone()[0]
    srid, stored = D.srid(), aggregates.stored_srid(conn)
    windows = [
        IncidentFilter(dt.datetime(2026, 1, 1, tzinfo=VN), dt.datetime(2026, 7, 1, tzinfo=VN)),
        IncidentFilter(end - dt.timedelta(days=365), end),  # ragged days and hours at both ends
        IncidentFilter(end - dt.timedelta(days=800), end, categories=("fire", "traffic_accident")),
    ]
    for f in windows:
        assert hex_months.usable(conn, f, restrict, "hexagon", 500, srid, stored)
        agg = D.grid_counts(conn, f, restrict, "hexagon", 500)
        raw = D.grid_counts(conn, f, restrict, "hexagon", 500, use_aggregates=False)
        assert agg.total > 1000 and agg.cells == raw.cells, f


def test_what_the_hex_months_cannot_answer_reads_raw_rows(conn) -> None:
    end = conn.execute("SELECT max(reported_at) + interval '1 second' FROM incidents").fetchone()[0]
    f = IncidentFilter(end - dt.timedelta(days=365), end)
    srid, stored = D.srid(), aggregates.stored_srid(conn)
    assert hex_months.usable(conn, f, None, "hexagon", 500, srid, stored)
    assert not hex_months.usable(conn, f, None, "hexagon", 499, srid, stored)
    assert not hex_months.usable(conn, f, None, "square", 500, srid, stored)
    assert not hex_months.usable(conn, f, None, "hexagon", 500, 3857, stored)
    for other in (replace(f, severities=(3, 4)), replace(f, statuses=("received",)),
                  replace(f, sources=("camera",)), replace(f, bbox=(105.0, 20.0, 107.0, 22.0)),
                  IncidentFilter(dt.datetime(2026, 2, 3, tzinfo=VN),
                                 dt.datetime(2026, 3, 1, tzinfo=VN))):  # no whole month
        assert not hex_months.usable(conn, other, None, "hexagon", 500, srid, stored), other
    own = sql.SQL("t.title <> 'x'")
    assert not hex_months.usable(conn, f, own, "hexagon", 500, srid, stored)
    got = D.grid_counts(conn, f, own, "hexagon", 500)
    assert got.total == conn.execute(
        "SELECT count(*) FROM incidents AS t WHERE reported_at >= %s AND reported_at < %s"
        " AND t.title <> 'x'", [f.start, f.end]).fetchone()[0]


def test_what_the_aggregate_cannot_answer_reads_raw_rows(conn) -> None:
    f = _windows(conn)[0]
    srid = D.srid()
    grid = D.snap_grid(D.province_box(conn, srid), 250, 3, srid)  # not a multiple of 100 m
    assert D.raster_days(conn, f, None, grid) is None
    assert D.square_days(conn, f, None, "hexagon", 500) is None
    assert D.square_days(conn, f, None, "square", 250) is None
    own = sql.SQL("t.title <> 'x'")  # a condition on a column the aggregate does not have
    assert not aggregates.restrict_ok(conn, own)
    assert D.square_days(conn, f, own, "square", 500) is None
    got = D.grid_counts(conn, f, own, "square", 500)
    assert got.total == conn.execute(
        "SELECT count(*) FROM incidents AS t WHERE reported_at >= %s AND reported_at < %s"
        " AND t.title <> 'x'", [f.start, f.end]).fetchone()[0]


# --- incident_days (migration 0035) and the statistics read through it ------------------------

RAW_DAYS = """
SELECT (reported_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date, category, severity, status, source,
       count(*)::int FROM incidents GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
"""
AGG_DAYS = "SELECT day, category, severity, status, source, n FROM incident_days ORDER BY 1, 2, 3, 4, 5"


def assert_days_exact(c: psycopg.Connection) -> None:
    raw = c.execute(RAW_DAYS).fetchall()
    agg = c.execute(AGG_DAYS).fetchall()
    assert sum(r[-1] for r in raw) == c.execute("SELECT count(*) FROM incidents").fetchone()[0]
    assert agg == raw
    assert all(r[-1] > 0 for r in agg)


def test_incident_days_backfill_equals_raw_counts(conn) -> None:
    assert_days_exact(conn)
    # and it compresses: far fewer rows than incidents
    n, total = conn.execute("SELECT count(*), sum(n) FROM incident_days").fetchone()
    assert n < total


def test_incident_days_stay_exact_after_inserts_updates_and_deletes(tx) -> None:
    c = tx
    ids = [r[0] for r in c.execute(
        "SELECT id FROM incidents WHERE status IN ('received', 'verified', 'assigned', 'in_progress')"
        " ORDER BY id LIMIT 30").fetchall()]
    c.execute(
        "INSERT INTO incidents (category, severity, status, source, title, reported_at, geom)"
        " SELECT category, severity, status, source, 'days test', reported_at, geom"
        " FROM incidents, generate_series(1, 2) WHERE id = ANY(%s)", [ids[:10]])
    assert_days_exact(c)
    c.execute("UPDATE incidents SET status = 'assigned' WHERE id = ANY(%s)", [ids[:6]])
    c.execute("UPDATE incidents SET category = CASE WHEN category = 'fire' THEN 'environment'"
              " ELSE 'fire' END, severity = 5 - severity, source = 'patrol'"
              " WHERE id = ANY(%s)", [ids[6:12]])
    c.execute("UPDATE incidents SET reported_at = reported_at - interval '20 hours'"
              " WHERE id = ANY(%s)", [ids[12:18]])
    assert_days_exact(c)
    # a move (another cell, the same day) and a note change no day count
    before = c.execute("SELECT count(*), sum(n), sum(n * severity) FROM incident_days").fetchone()
    c.execute("UPDATE incidents SET geom = ST_Transform(ST_Translate(geom_vn, 250, 0), 4326),"
              " status_note = 'x' WHERE id = ANY(%s)", [ids[18:24]])
    assert c.execute("SELECT count(*), sum(n), sum(n * severity) FROM incident_days"
                     ).fetchone() == before
    c.execute("DELETE FROM incidents WHERE title = 'days test' OR id = ANY(%s)", [ids[24:]])
    assert_days_exact(c)


def test_the_application_role_cannot_write_incident_days(tx) -> None:
    c = tx
    c.execute("SET LOCAL ROLE geoioc_app")
    iid = c.execute("SELECT id FROM incidents WHERE status = 'received' LIMIT 1").fetchone()[0]
    c.execute("UPDATE incidents SET status = 'verified' WHERE id = %s", [iid])
    assert_days_exact(c)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        c.execute("UPDATE incident_days SET n = n + 1")


def _stats_windows(conn) -> list[IncidentFilter]:
    end = conn.execute("SELECT max(reported_at) + interval '1 second' FROM incidents").fetchone()[0]
    return [
        *_windows(conn),
        IncidentFilter(dt.datetime(2025, 7, 1, tzinfo=VN), dt.datetime(2026, 7, 1, tzinfo=VN)),
        IncidentFilter(end - dt.timedelta(days=3000), end, severities=(1, 4)),  # 30-day buckets
        IncidentFilter(end - dt.timedelta(days=100), end, categories=("security_event",)),
        # windows starting early and late in a Vietnam day: a partial first bucket either way
        *(IncidentFilter(dt.datetime(2025, 3, 1, h, tzinfo=VN), dt.datetime(2026, 3, 1, h, tzinfo=VN),
                         sources=("hotline", "camera", "patrol")) for h in (3, 20)),
    ]


@pytest.mark.parametrize("role", ["operator", "leader", None])
def test_stats_from_incident_days_equal_the_raw_rows(conn, role) -> None:
    restrict = (row_filter(INCIDENTS, Principal(f"agg-{role}", frozenset({role})))
                if role else None)
    used = 0
    for f in _stats_windows(conn):
        used += S.plan(f) is not None
        got = S.stats(conn, f, restrict)
        want = raw_stats(conn, f, restrict)
        assert got == want, f
        if role == "operator" and f.categories == ("security_event",):
            assert got.current.total == 0  # the row rule holds on the aggregate path too
        else:
            assert got.current.total > 0 or f.length < dt.timedelta(days=1)
    assert used >= 5  # aligned windows and ragged ones read the aggregate


def test_the_series_are_calendar_buckets_in_vietnam_time(conn) -> None:
    """Weeks from Monday, days, and quarters of the day from 0, 6, 12 and 18 h, Vietnam time,
    whatever the hour the window starts at: the first and last buckets partial."""
    end = conn.execute("SELECT max(reported_at) + interval '1 second' FROM incidents").fetchone()[0]
    local = "(reported_at AT TIME ZONE 'Asia/Ho_Chi_Minh')"
    truncs = {"week": f"date_trunc('week', {local})", "day": f"date_trunc('day', {local})",
              "quarter": f"date_trunc('hour', {local}) - make_interval(hours =>"
                         f" extract(hour FROM {local})::int %% 6)"}
    for days, unit, step in ((200, "week", dt.timedelta(days=7)), (20, "day", dt.timedelta(days=1)),
                             (4, "quarter", dt.timedelta(hours=6))):
        f = IncidentFilter(end - dt.timedelta(days=days), end)
        got = S.stats(conn, f, None)
        assert got.bucket_seconds == step.total_seconds()
        counts = dict(conn.execute(
            f"SELECT {truncs[unit]}, count(*) FROM incidents WHERE reported_at >= %s"  # noqa: S608
            " AND reported_at < %s GROUP BY 1", [f.start, f.end]).fetchall())
        first = min(counts)
        want = [counts.get(first + i * step, 0) for i in range(len(got.current.series))]
        assert got.current.series == want and sum(want) == got.current.total > 0, unit
        assert got.current.series_start == first.replace(tzinfo=VN)
        assert len(want) == math.ceil((f.end - got.current.series_start) / step)
        if unit == "week":
            assert got.current.series_start.weekday() == 0
    day = dt.datetime(2026, 3, 2, tzinfo=VN)  # a window a microsecond into its second day
    assert raw_views.series_length(day, day + dt.timedelta(days=1, microseconds=1), 86400) == 2


def test_stats_the_aggregate_cannot_answer_read_raw_rows(conn) -> None:
    f = _windows(conn)[0]
    own = sql.SQL("t.title <> 'x'")
    assert not aggregates.filter_ok(conn, f, own)
    assert S.stats(conn, f, own).current.total == conn.execute(
        "SELECT count(*) FROM incidents AS t WHERE reported_at >= %s AND reported_at < %s"
        " AND t.title <> 'x'", [f.start, f.end]).fetchone()[0]
    boxed = IncidentFilter(f.start, f.end, bbox=(105.0, 20.0, 107.0, 22.0))
    assert not aggregates.filter_ok(conn, boxed, None)
    assert S.stats(conn, boxed, None) == S.stats(conn, boxed, None, use_aggregates=False)
    # hour and 6-hour buckets (windows up to 62 hours) read raw rows; daily ones do not
    end = f.end - dt.timedelta(hours=5)
    assert S.plan(IncidentFilter(end - dt.timedelta(days=2), end)) is None
    ragged = S.plan(IncidentFilter(end - dt.timedelta(days=30), end))
    assert ragged is not None and len(ragged.ranges) == 2 and len(ragged.raw) == 4
    aligned = S.plan(IncidentFilter(f.end - dt.timedelta(days=30), f.end))
    assert aligned is not None and len(aligned.ranges) == 2 and not aligned.raw


@pytest.mark.parametrize("role", ["operator", None])
def test_dashboard_series_from_incident_days_equal_the_raw_rows(conn, role) -> None:
    restrict = (row_filter(INCIDENTS, Principal(f"agg-{role}", frozenset({role})))
                if role else None)
    for f in _stats_windows(conn):
        scope = dashboard.Scope(f)
        unit = dashboard.bucket_unit(scope.length)
        cond, params = scope.cond(restrict)
        raw = conn.execute(q.BY_CATEGORY.format(unit=sql.Literal(unit), vn=q.VN, cond=cond),
                           params).fetchall()
        got: Counter = Counter()
        for bucket, category, n in dashboard._by_category_rows(conn, scope, restrict, unit):
            got[(bucket, category)] += n
        assert got == Counter({(b, c): n for b, c, n in raw}), f


# --- incident_heat_months (migration 0037): the map's heatmap and clusters read through it -----


def _heat_windows(conn) -> list[IncidentFilter]:
    end = conn.execute("SELECT max(reported_at) + interval '1 second' FROM incidents").fetchone()[0]
    return [
        IncidentFilter(dt.datetime(2025, 9, 1, tzinfo=VN), dt.datetime(2026, 3, 1, tzinfo=VN)),
        IncidentFilter(end - dt.timedelta(days=365), end),  # ragged at both ends
        IncidentFilter(dt.datetime(2000, 1, 1, tzinfo=VN), end),  # all time: years 2000-2025
        # the year 2025 whole (0043), a month before it and one after, days and hours
        IncidentFilter(dt.datetime(2024, 11, 20, 9, tzinfo=VN), dt.datetime(2026, 2, 10, 15, tzinfo=VN)),
        IncidentFilter(end - dt.timedelta(days=200), end, categories=("fire", "traffic_accident")),
        IncidentFilter(end - dt.timedelta(days=20), end),  # no whole month: days and hours
        IncidentFilter(dt.datetime(2026, 2, 3, tzinfo=VN), dt.datetime(2026, 3, 1, tzinfo=VN)),
    ]


@pytest.mark.parametrize("role", ["operator", "leader", None])
def test_heatmap_and_clusters_from_the_heat_months_equal_the_raw_rows(conn, role) -> None:
    restrict = (row_filter(INCIDENTS, Principal(f"heat-{role}", frozenset({role})))
                if role else None)
    # all time and the window around 2025 read whole years (0043)
    assert [f for f in _heat_windows(conn) if heat_cells.spans(
        f, years=heat_cells.has_years(conn)).years] == _heat_windows(conn)[2:4]
    for f in _heat_windows(conn):
        for z in (11, 9, 6):
            assert heat_cells.usable(conn, f, restrict, heat_cells.level_of(z, 8))
            got, want = heat_cells.heatmap(conn, f, restrict, z), raw_views.heatmap(conn, f, restrict, z)
            assert want.total > 0 and sorted(got.cells) == sorted(want.cells), (f, z)
            assert (got.total, got.max, got.cell_m) == (want.total, want.max, want.cell_m)
            pc = heat_cells.points_or_clusters(conn, f, restrict, z, max_points=100)
            rc = raw_views.points_or_clusters(conn, f, restrict, z, max_points=100)
            assert pc.mode == rc.mode == "clusters" and pc.total == rc.total
            a, b = sorted(pc.rows, key=lambda r: r[:2]), sorted(rc.rows, key=lambda r: r[:2])
            assert len(a) == len(b)
            for x, y in zip(a, b, strict=True):
                # centroids from sums in another order: equal to the rounding of the sixth decimal
                assert abs(x[0] - y[0]) <= 2e-6 and abs(x[1] - y[1]) <= 2e-6, (f, z)
                assert x[2:] == y[2:], (f, z)


def test_what_the_heat_months_cannot_answer_reads_raw_rows(conn) -> None:
    f = _heat_windows(conn)[1]
    level = heat_cells.level_of(11, 8)
    assert heat_cells.usable(conn, f, None, level)
    for other in (replace(f, severities=(3, 4)), replace(f, statuses=("received",)),
                  replace(f, sources=("camera",)), replace(f, bbox=(105.0, 20.0, 107.0, 22.0)),
                  replace(f, start=f.end - dt.timedelta(hours=20))):  # no whole day
        assert not heat_cells.usable(conn, other, None, level), other
        assert heat_cells.heatmap(conn, other, None, 11) == raw_views.heatmap(conn, other, None, 11)
    assert not heat_cells.usable(conn, f, None, heat_cells.level_of(11.5, 8))  # fractional zoom
    assert not heat_cells.usable(conn, f, None, heat_cells.level_of(14, 8))  # finer than level 16
    own = sql.SQL("t.title <> 'x'")
    assert not heat_cells.usable(conn, f, own, level)
    # a restriction on the severity: the aggregate has it only as counts, not as a key
    sev = sql.SQL("t.severity <> ALL({})").format(sql.Literal([4]))
    assert not heat_cells.usable(conn, f, sev, level)


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    y = (1 - math.log(math.tan(math.radians(lat)) + 1 / math.cos(math.radians(lat))) / math.pi) / 2
    return int((lon + 180) / 360 * n), int(y * n)


def _cells_of(tile: bytes) -> list[tuple]:
    """The tile's cells (position, count), but those on the outer edge of its buffer: the raw
    tile's `&&` compares float4 boxes, so it also keeps a point up to a metre outside the
    buffer, in a cell the aggregate leaves out; such a cell is drawn nowhere."""
    features = mapbox_vector_tile.decode(tile)["incidents"]["features"]
    edge = (-BUFFER, EXTENT + BUFFER)
    return sorted((tuple(f["geometry"]["coordinates"]), f["properties"]["count"]) for f in features
                  if all(edge[0] < v < edge[1] for v in f["geometry"]["coordinates"]))


@pytest.mark.parametrize("role", ["operator", None])
def test_low_zoom_incident_tiles_from_the_heat_months_equal_the_raw_rows(conn, role) -> None:
    restrict = (row_filter(INCIDENTS, Principal(f"heat-{role}", frozenset({role})))
                if role else None)
    lon, lat, end = conn.execute(
        "SELECT avg(ST_X(geom)), avg(ST_Y(geom)), max(reported_at) FROM incidents").fetchone()
    for z in (10, 7):
        x, y = _tile_of(lon, lat, z)
        for window in ((end - dt.timedelta(days=365), end), (None, None),
                       (dt.datetime(2025, 3, 1, tzinfo=VN), None)):
            assert heat_cells.tile_usable(conn, z, restrict, window)
            q, params = heat_cells.tile_sql(z, x, y, restrict, window,
                                              heat_cells.tile_read(conn, window))
            got = bytes(conn.execute(q, params).fetchone()[0])
            q, params = tile_sql(INCIDENTS, [], z, x, y, aggregate=True, restrict=restrict,
                                 time_range=window)
            want = bytes(conn.execute(q, params).fetchone()[0])
            assert sum(n for _, n in _cells_of(want)) > 100
            assert _cells_of(got) == _cells_of(want), (z, window)
    # The tile the map gets is that one (more points than the threshold: cells), and a zoom
    # finer than the aggregate's cells or a window with no whole day reads raw rows.
    x, y = _tile_of(lon, lat, 10)
    window = (end - dt.timedelta(days=365), end)
    q, params = heat_cells.tile_sql(10, x, y, restrict, window,
                                          heat_cells.tile_read(conn, window))
    assert _cells_of(render_tile(conn, INCIDENTS, [], 10, x, y, restrict, window)) == _cells_of(
        bytes(conn.execute(q, params).fetchone()[0]))
    assert not heat_cells.tile_usable(conn, 11, restrict, window)
    assert not heat_cells.tile_usable(conn, 10, restrict, (end - dt.timedelta(hours=20), end))


def test_a_window_at_the_end_of_the_calendar_reads_raw_rows(conn) -> None:
    """An OGC `datetime` ending in the last hours of 9999-12-31 has no Vietnam-time day after
    it: the tile is built from raw rows instead of failing (an open start, year 1, likewise)."""
    lon, lat = conn.execute("SELECT avg(ST_X(geom)), avg(ST_Y(geom)) FROM incidents").fetchone()
    x, y = _tile_of(lon, lat, 7)
    for window in ((None, dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC)),
                   (dt.datetime(1, 1, 1, tzinfo=dt.UTC), None)):
        tile = render_tile(conn, INCIDENTS, [], 7, x, y, None, window)
        q, params = tile_sql(INCIDENTS, [], 7, x, y, aggregate=True, time_range=window)
        assert _cells_of(tile) == _cells_of(bytes(conn.execute(q, params).fetchone()[0]))
        assert sum(n for _, n in _cells_of(tile)) > 100


def test_a_window_is_widened_to_whole_periods_where_nothing_lies_beyond_it(conn) -> None:
    first, last = conn.execute("SELECT min(reported_at), max(reported_at) FROM incidents").fetchone()
    f = IncidentFilter(first, last + dt.timedelta(seconds=1))  # "all time", as the map asks
    wide, minus = aggregates.widen(conn, f)
    y1, y2 = first.astimezone(VN).year, last.astimezone(VN).year + 1
    assert (wide.start, wide.end) == (dt.datetime(y1, 1, 1, tzinfo=VN), dt.datetime(y2, 1, 1, tzinfo=VN))
    assert [(m.start, m.end) for m in minus] == [(wide.start, f.start), (f.end, wide.end)]
    cut = heat_cells.read(conn, f)
    assert cut is not None and cut.years == (dt.date(y1, 1, 1), dt.date(y2, 1, 1))
    assert cut.month_ranges == () and cut.days == () and cut.raw == ()
    # an end with incidents just beyond it stays where it is; one a day before them widens to
    # that day's midnight at most
    mid = conn.execute("SELECT reported_at FROM incidents ORDER BY reported_at OFFSET 20000 LIMIT 1"
                       ).fetchone()[0]
    same, none = aggregates.widen(conn, IncidentFilter(first, mid))
    assert same.end == mid and [m.end for m in none] == [first]
    nxt = conn.execute("SELECT min(reported_at) FROM incidents WHERE reported_at > %s", [mid]
                       ).fetchone()[0]
    between = mid + (nxt - mid) / 2
    wide, minus = aggregates.widen(conn, IncidentFilter(mid, between))
    assert wide.start <= mid and wide.end <= nxt and wide.end >= between
    assert not conn.execute("SELECT count(*) FROM incidents WHERE (reported_at >= %s AND"
                            " reported_at < %s) OR (reported_at >= %s AND reported_at < %s)",
                            [wide.start, mid, between, wide.end]).fetchone()[0]


def test_what_is_written_into_a_widening_is_taken_away_again(tx) -> None:
    """Between the probe and the read an incident may arrive beyond the window's end (any
    report made "now"): the aggregates count it, and the widening's raw rows take it away."""
    c = tx
    layer_restrict = row_filter(INCIDENTS, Principal("widen-operator", frozenset({"operator"})))
    lon, lat, end = c.execute(
        "SELECT avg(ST_X(geom)), avg(ST_Y(geom)), max(reported_at) FROM incidents").fetchone()
    window = (None, end)
    f = heat_cells.tile_filter(window)
    cut = heat_cells.tile_read(c, window)
    assert cut.minus and cut.raw == () and cut.days == ()  # the end widened to a year
    year = IncidentFilter(end - dt.timedelta(days=365), end + dt.timedelta(seconds=1))
    months = cell_months.read(c, year)  # the kernel density's cut (0044), likewise widened
    assert months is not None and months.minus
    # two incidents an hour after the end: one where others are, one in an empty cell
    c.execute(
        "INSERT INTO incidents (category, severity, status, source, title, reported_at, geom)"
        " SELECT 'fire', 4, 'received', 'hotline', 'widen test', %s, g FROM"
        " (VALUES (ST_SetSRID(ST_MakePoint(%s, %s), 4326)), (ST_SetSRID(ST_MakePoint(%s, %s), 4326))) v(g)",
        [end + dt.timedelta(hours=1), lon, lat, lon + 0.09, lat + 0.09])
    assert not c.execute("SELECT count(*) FROM incidents WHERE title <> 'widen test' AND"
                         " geom && ST_Expand(ST_SetSRID(ST_MakePoint(%s, %s), 4326), 0.004)",
                         [lon + 0.09, lat + 0.09]).fetchone()[0]
    x, y = _tile_of(lon, lat, 10)
    q, params = heat_cells.tile_sql(10, x, y, layer_restrict, window, cut)
    got = _cells_of(bytes(c.execute(q, params).fetchone()[0]))
    q, params = tile_sql(INCIDENTS, [], 10, x, y, aggregate=True, restrict=layer_restrict,
                         time_range=window)
    assert got == _cells_of(bytes(c.execute(q, params).fetchone()[0]))
    # the same for the heatmap's and the clusters' rows, summed per cell (no cell of zero)
    source, ps = heat_cells.cells(f, layer_restrict, cut)
    rows = c.execute(sql.SQL("SELECT gx, gy, sum(n1 + n2 + n3 + n4) FROM ({}) c GROUP BY 1, 2"
                             " HAVING sum(n1 + n2 + n3 + n4) <> 0").format(source), ps).fetchall()
    raw_total = c.execute(sql.SQL("SELECT count(*) FROM incidents AS t WHERE reported_at <= %s"
                                  " AND {}").format(layer_restrict), [end]).fetchone()[0]
    assert all(n > 0 for *_, n in rows) and sum(n for *_, n in rows) == raw_total
    # and the kernel density's cells: the year's incidents, none of the two
    base = aggregates.base_grid(c)
    assert base is not None
    grid = D.snap_grid(D.province_box(c, D.srid()), 100, 3, D.srid())
    q, params = cell_months.raster_counts(layer_restrict, months, cell_months.counted(
        c, year, layer_restrict), grid.origin, grid.cell, grid.shape,
        grid.lonlat_bounds(pad=grid.cell), base.cell)
    _, _, counts = c.execute(q, params).fetchone()
    assert all(n > 0 for n in counts) and sum(counts) == c.execute(sql.SQL(
        "SELECT count(*) FROM incidents AS t WHERE reported_at >= %s AND reported_at <= %s"
        " AND {}").format(layer_restrict), [year.start, end]).fetchone()[0]


def test_a_window_is_cut_into_months_days_and_hours() -> None:
    f = IncidentFilter(dt.datetime(2025, 12, 4, 10, tzinfo=VN), dt.datetime(2026, 12, 4, 9, tzinfo=VN))
    cut = heat_cells.spans(f)
    assert cut is not None
    assert cut.months == (dt.date(2026, 1, 1), dt.date(2026, 12, 1))
    assert cut.days == ((dt.date(2025, 12, 5), dt.date(2026, 1, 1)),
                        (dt.date(2026, 12, 1), dt.date(2026, 12, 4)))
    assert [(r.start, r.end) for r in cut.raw] == [
        (f.start, dt.datetime(2025, 12, 5, tzinfo=VN)), (dt.datetime(2026, 12, 4, tzinfo=VN), f.end)]
    # a month that starts the window exactly is whole; no whole month leaves days only
    aligned = heat_cells.spans(replace(f, start=dt.datetime(2026, 1, 1, tzinfo=VN)))
    assert aligned is not None and aligned.months == (dt.date(2026, 1, 1), dt.date(2026, 12, 1))
    assert aligned.days == ((dt.date(2026, 12, 1), dt.date(2026, 12, 4)),)
    short = heat_cells.spans(replace(f, start=dt.datetime(2026, 11, 20, 8, tzinfo=VN)))
    assert short is not None and short.months is None
    assert short.days == ((dt.date(2026, 11, 21), dt.date(2026, 12, 4)),)
    assert heat_cells.spans(replace(f, start=f.end - dt.timedelta(hours=20))) is None
    # whole years only when asked for (incident_heat_years, 0043), the months around them
    assert cut.years is None and cut.month_ranges == (cut.months,)
    assert heat_cells.spans(f, years=True) == cut  # no whole year in it
    long = heat_cells.spans(replace(f, start=dt.datetime(2023, 11, 30, 23, tzinfo=VN)), years=True)
    assert long is not None and long.years == (dt.date(2024, 1, 1), dt.date(2026, 1, 1))
    assert long.months == (dt.date(2023, 12, 1), dt.date(2026, 12, 1))
    assert long.month_ranges == ((dt.date(2023, 12, 1), dt.date(2024, 1, 1)),
                                 (dt.date(2026, 1, 1), dt.date(2026, 12, 1)))
    assert long.days == ((dt.date(2026, 12, 1), dt.date(2026, 12, 4)),)
    exact = heat_cells.spans(IncidentFilter(dt.datetime(2025, 1, 1, tzinfo=VN),
                                            dt.datetime(2026, 1, 1, tzinfo=VN)), years=True)
    assert exact is not None and exact.years == exact.months == (dt.date(2025, 1, 1),
                                                                 dt.date(2026, 1, 1))
    assert exact.month_ranges == () and exact.days == () and exact.raw == ()


def test_the_cell_days_are_read_only_where_they_pay(conn) -> None:
    """The sample's incident_cell_days holds about one row per incident (its key is a day, a
    100 m cell and four attributes): reading it would cost more than the raw rows, so the
    default path reads raw (aggregates.PAY_RATIO), and gives the same counts. So do its
    incident_cell_months: the sample's incidents are too sparse for a month's cell to hold many
    (at 10,000,000 incidents 0.29 rows per incident, bench/README.md)."""
    agg, months, raw = conn.execute(
        "SELECT (SELECT count(*) FROM incident_cell_days), (SELECT count(*) FROM"
        " incident_cell_months), (SELECT count(*) FROM incidents)").fetchone()
    assert agg > aggregates.PAY_RATIO * raw and months > aggregates.PAY_RATIO * raw
    for table in ("incident_cell_days", "incident_cell_months", "incidents"):
        conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))
    aggregates._PAYS.clear()
    assert not aggregates.pays(conn)
    assert not aggregates.pays(conn, cell_months.TABLE)
    f = _windows(conn)[1]
    srid = D.srid()
    grid = D.snap_grid(D.province_box(conn, srid), 100, 3, srid)
    assert np.array_equal(D.counts_on(conn, f, None, grid),
                          D.counts_on(conn, f, None, grid, use_aggregates=True))
