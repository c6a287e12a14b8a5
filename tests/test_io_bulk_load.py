"""Bulk loads: a big import sets the layer's secondary indexes aside and rebuilds them before
commit (migration 0010). The indexes must come back exactly as they were whatever happens (a
refused row, a caller that forgets to rebuild), and an import that cannot get the table's lock
quickly must fall back to row-by-row index upkeep rather than wait. Thresholds are lowered so
that a few sensors count as a bulk load."""

from __future__ import annotations

import random

import geopandas as gpd
import psycopg
import pytest
from _io_util import RUN

import gis.io.imports as imp
from gis.io.imports import write
from layers.access import Principal

ADMIN = Principal("io-bulk-test", frozenset({"admin"}))
# Sensor codes of this run: WAT-8xxxxx (test_io_import uses WAT-9xxxxx).
BASE = 800000 + random.Random(RUN).randrange(0, 90000)


@pytest.fixture(autouse=True)
def cleanup(conn):
    yield
    conn.execute("DELETE FROM sensors WHERE code >= %s AND code < %s",
                 (f"WAT-{BASE}", f"WAT-{BASE + 1000}"))


@pytest.fixture
def bulk(monkeypatch):
    """Every import of at least one new row is a bulk load."""
    monkeypatch.setattr(write, "BULK_MIN_ROWS", 1)
    monkeypatch.setattr(write, "BULK_SHARE", 0.0)


def _indexes(conn) -> dict[str, tuple[int, str]]:
    """name -> (oid, definition) of the sensors table's indexes."""
    rows = conn.execute("SELECT c.relname, c.oid::int, pg_get_indexdef(c.oid) FROM pg_index i "
                        "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = 'sensors'::regclass"
                        ).fetchall()
    return {name: (oid, definition) for name, oid, definition in rows}


def _sensors(tmp_path, n: int, parameter: str = "ph", bad_row: int | None = None):
    gdf = gpd.GeoDataFrame({
        "code": [f"WAT-{BASE + i}" for i in range(n)],
        "name": [f"Trạm nước số {i}" for i in range(n)],
        "kind": ["water"] * n,
        "parameter": ["pm25" if i == bad_row else parameter for i in range(n)],
        "unit": ["pH"] * n, "threshold": [8.5] * n, "status": ["online"] * n,
    }, geometry=gpd.points_from_xy([106.05 + 0.001 * i for i in range(n)], [21.1] * n), crs=4326)
    path = tmp_path / "sensors.gpkg"
    gdf.to_file(path, engine="pyogrio")
    return path


def _stored(conn) -> int:
    return conn.execute("SELECT count(*) FROM sensors WHERE code >= %s AND code < %s",
                        (f"WAT-{BASE}", f"WAT-{BASE + 1000}")).fetchone()[0]


def _uses_geom_index(conn) -> bool:
    plan = conn.execute("EXPLAIN (FORMAT json) SELECT id FROM sensors WHERE geom && "
                        "ST_MakeEnvelope(106.05, 21.09, 106.06, 21.11, 4326)").fetchone()[0]
    return "sensors_geom_idx" in str(plan)


def test_bulk_import_rebuilds_the_indexes_as_they_were(conn, tmp_path, bulk) -> None:
    before = _indexes(conn)
    assert "sensors_geom_idx" in before
    report = imp.import_file(conn, _sensors(tmp_path, 40), imp.ImportOptions("sensors"), ADMIN)
    assert report.committed and report.inserted == 40, report.to_json()
    after = _indexes(conn)
    # Same names and definitions; the secondary (GiST) index is a new one, the unique ones
    # (primary key, code) are the same objects.
    assert {k: v[1] for k, v in after.items()} == {k: v[1] for k, v in before.items()}
    assert after["sensors_geom_idx"][0] != before["sensors_geom_idx"][0]
    assert after["sensors_pkey"][0] == before["sensors_pkey"][0]
    assert conn.execute("SELECT count(*) FROM bulk_load_indexes").fetchone()[0] == 0
    assert _stored(conn) == 40
    conn.execute("SET enable_seqscan = off")
    try:
        assert _uses_geom_index(conn)
        found = conn.execute("SELECT count(*) FROM sensors WHERE geom && ST_MakeEnvelope(106.05, 21.09, "
                             "106.0605, 21.11, 4326) AND code >= %s AND code < %s",
                             (f"WAT-{BASE}", f"WAT-{BASE + 1000}")).fetchone()[0]
    finally:
        conn.execute("RESET enable_seqscan")
    assert found == 11  # 106.050 .. 106.060: the rebuilt index finds the new rows


def test_dry_run_keeps_the_indexes(conn, tmp_path, bulk) -> None:
    """A dry run is rolled back anyway: it takes no exclusive lock and rebuilds nothing."""
    before = _indexes(conn)
    report = imp.import_file(conn, _sensors(tmp_path, 40), imp.ImportOptions("sensors", dry_run=True), ADMIN)
    assert report.inserted == 40 and not report.committed
    assert _indexes(conn) == before
    assert _stored(conn) == 0


def test_small_import_keeps_the_indexes(conn, tmp_path) -> None:
    before = _indexes(conn)
    report = imp.import_file(conn, _sensors(tmp_path, 3), imp.ImportOptions("sensors"), ADMIN)
    assert report.committed and report.inserted == 3
    assert _indexes(conn) == before


def test_refused_bulk_import_leaves_indexes_and_data_untouched(conn, tmp_path, bulk) -> None:
    before = _indexes(conn)
    # kind water with a parameter of the air: only the table's CHECK refuses it.
    report = imp.import_file(conn, _sensors(tmp_path, 30, bad_row=17), imp.ImportOptions("sensors"), ADMIN)
    assert not report.committed
    assert [r.row for r in report.rejected] == [18]
    assert "check" in report.rejected[0].reason.lower()
    assert _indexes(conn) == before
    assert _stored(conn) == 0
    assert conn.execute("SELECT count(*) FROM bulk_load_indexes").fetchone()[0] == 0


def test_bulk_import_does_not_wait_for_readers(conn, db_url, tmp_path, bulk, monkeypatch) -> None:
    monkeypatch.setattr(write, "BULK_LOCK_WAIT", "200ms")
    before = _indexes(conn)
    with psycopg.connect(db_url) as reader:  # a transaction that has read the layer and goes on
        reader.execute("SELECT count(*) FROM sensors").fetchone()
        report = imp.import_file(conn, _sensors(tmp_path, 20), imp.ImportOptions("sensors"), ADMIN)
        reader.rollback()
    assert report.committed and report.inserted == 20
    assert _indexes(conn) == before  # maintained row by row, not rebuilt


def test_indexes_set_aside_and_not_rebuilt_cannot_commit(db_url) -> None:
    with psycopg.connect(db_url) as app:
        app.execute("SET ROLE geoioc_app")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute("DROP INDEX sensors_geom_idx")
        app.rollback()
        # Its secondary indexes: the geometry's and the search box's trigram indexes.
        (secondary,) = app.execute(
            "SELECT count(*) FROM pg_index i WHERE i.indrelid = 'sensors'::regclass"
            " AND NOT i.indisunique AND NOT i.indisprimary").fetchone()
        assert secondary >= 1
        app.execute("SET ROLE geoioc_app")
        assert app.execute("SELECT geoioc_bulk_load_begin('sensors')").fetchone()[0] == secondary
        assert app.execute("SELECT count(*) FROM pg_indexes WHERE indexname = 'sensors_geom_idx'"
                           ).fetchone()[0] == 0
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState,
                           match=r"index sensors_\w+_idx of sensors was set aside"):
            app.commit()
    with psycopg.connect(db_url) as check:
        assert check.execute("SELECT count(*) FROM pg_indexes WHERE indexname = 'sensors_geom_idx'"
                             ).fetchone()[0] == 1


@pytest.mark.parametrize("table", ["audit_log", "users", "bulk_load_indexes", "no_such_table"])
def test_only_layer_tables_can_be_bulk_loaded(db_url, table) -> None:
    with psycopg.connect(db_url) as app:
        app.execute("SET ROLE geoioc_app")
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="not a layer table"):
            app.execute("SELECT geoioc_bulk_load_begin(%s)", (table,))


def test_bulk_import_through_the_api_as_the_application_role(client, conn, tmp_path, bulk, keys) -> None:
    """The API's connections run as geoioc_app, which owns no index: the SECURITY DEFINER
    functions of migration 0010 do the dropping and rebuilding for it."""
    before = _indexes(conn)
    path = _sensors(tmp_path, 25)
    with path.open("rb") as f:
        r = client.post("/api/imports", data={"layer": "sensors"}, files={"file": (path.name, f)},
                        headers=keys["operator"])
    assert r.status_code == 200 and r.json()["inserted"] == 25, r.text
    after = _indexes(conn)
    assert after["sensors_geom_idx"][0] != before["sensors_geom_idx"][0]
    assert after["sensors_geom_idx"][1] == before["sensors_geom_idx"][1]
    assert _stored(conn) == 25
