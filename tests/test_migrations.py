"""Migrations apply to an empty database, round-trip, and register the VN-2000 TM-3 SRIDs."""

from __future__ import annotations

import psycopg
import pytest
from pyproj import Transformer

from gis import migrate
from gis.crs import VN2000_TM3_MISSING_IN_POSTGIS

TABLES = {"admin_units", "parcels", "land_use_codes", "land_use_zones", "roads", "tourism_places",
          "public_facilities",
          "cameras", "sensors", "observations", "incidents", "sample_info",
          "users", "user_roles", "api_keys", "auth_sessions", "audit_log",
          "parcel_history", "parcel_zoning_rules", "harvest_provenance", "bulk_load_indexes", "export_jobs",
          "agencies", "service_categories", "incident_transitions", "incident_requests",
          "incident_reporters", "incident_cell_days", "incident_cell_grid", "incident_days",
          "incident_heat_months", "incident_heat_days", "incident_hex_months", "incident_heat_years",
          "incident_cell_months",
          # incidents partitioned by month (migration 0038; the monthly partitions are left out
          # below): the DEFAULT partition and the id guard
          "incidents_default", "incident_ids",
          # the job queue (migration 0016: procrastinate's schema)
          "procrastinate_jobs", "procrastinate_events", "procrastinate_periodic_defers",
          "procrastinate_workers",
          # citizens' photos (migration 0017)
          "report_photos",
          # transparency figures kept per period (migration 0019)
          "transparency_figures",
          # sensor streams (migration 0020; the monthly partitions are left out below)
          "observed_properties", "sensor_models", "features_of_interest", "thing_locations",
          "datastreams", "observation_hourly", "observation_daily", "datastream_latest",
          "ingest_workers",
          # sensor alerts (migration 0022)
          "alert_rules", "sensor_alerts", "sensor_alert_events", "aqi_bands",
          # cameras' health, snapshots and detections (migration 0023)
          "camera_status_history", "camera_snapshots", "camera_keys", "detection_categories",
          "camera_detections",
          # road traffic (migration 0024)
          "things", "traffic_congestion_classes",
          # indicators by administrative unit (migration 0026)
          "indicators", "indicator_values",
          # limits shared by the server processes (migration 0032)
          "rate_buckets", "signin_failures"}


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as c:
        rows = c.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename NOT IN ('spatial_ref_sys', 'alembic_version') "
            "AND tablename !~ '_y[0-9]{4}m[0-9]{2}$'"
        ).fetchall()
    return {r[0] for r in rows}


def _srids(url: str) -> int:
    with psycopg.connect(url) as c:
        return c.execute(
            "SELECT count(*) FROM spatial_ref_sys WHERE srid BETWEEN 9205 AND 9218"
        ).fetchone()[0]


@pytest.mark.slow
def test_upgrade_on_empty_database_and_round_trip(empty_db_url: str) -> None:
    migrate.downgrade("base", url=empty_db_url)
    assert _tables(empty_db_url) == set()
    migrate.upgrade("head", url=empty_db_url)
    assert _tables(empty_db_url) == TABLES
    assert _srids(empty_db_url) == 14
    with psycopg.connect(empty_db_url) as c:
        assert c.execute("SELECT count(*) FROM land_use_codes").fetchone()[0] > 50
    migrate.downgrade("base", url=empty_db_url)
    assert _tables(empty_db_url) == set()
    assert _srids(empty_db_url) == 0
    migrate.upgrade("head", url=empty_db_url)
    assert _tables(empty_db_url) == TABLES
    assert migrate.current(empty_db_url) == migrate.current()


# Points spread over Vietnam's north, centre and south, and Bac Ninh itself.
POINTS = [(106.07, 21.18), (105.90, 20.95), (106.35, 21.30), (105.85, 21.03), (107.58, 16.46),
          (106.70, 10.78), (103.0, 22.3), (108.5, 11.9)]


@pytest.mark.parametrize("srid", [*VN2000_TM3_MISSING_IN_POSTGIS, 3405, 4756, 5897])
def test_postgis_transform_equals_pyproj(conn, srid: int) -> None:
    t = Transformer.from_crs(4326, srid, always_xy=True)
    for lon, lat in POINTS:
        x, y = conn.execute(
            "SELECT ST_X(g), ST_Y(g) FROM "
            "(SELECT ST_Transform(ST_SetSRID(ST_MakePoint(%s, %s), 4326), %s) AS g) q",
            (lon, lat, srid),
        ).fetchone()
        ex, ey = t.transform(lon, lat)
        # Metres for projected CRS, degrees for 4756 (1e-8 degree is about a millimetre).
        tol = 1e-8 if srid == 4756 else 0.001
        assert abs(x - ex) < tol and abs(y - ey) < tol, (srid, lon, lat, x - ex, y - ey)


def test_bac_ninh_datum_shift_is_applied(conn) -> None:
    """Without the VN-2000 datum shift a point lands about 220 m off: guard against it."""
    x, y = conn.execute(
        "SELECT ST_X(g), ST_Y(g) FROM (SELECT ST_Transform(ST_SetSRID("
        "ST_MakePoint(106.07, 21.18), 4326), 9209) AS g) q"
    ).fetchone()
    local = Transformer.from_crs(
        4326, "+proj=tmerc +lon_0=105.5 +k=0.9999 +x_0=500000 +ellps=WGS84 +units=m",
        always_xy=True)
    lx, ly = local.transform(106.07, 21.18)
    assert 150 < ((x - lx) ** 2 + (y - ly) ** 2) ** 0.5 < 300


def test_camera_field_of_view_is_derived(conn) -> None:
    """A camera inserted without its `fov` polygon gets one: a valid sector of its range that
    contains a point straight ahead and not one behind."""
    with conn.transaction(force_rollback=True):
        fov, ahead, behind = conn.execute(
            "WITH c AS (INSERT INTO cameras (code, name, heading, fov_deg, range_m, status, geom) "
            "VALUES ('CAM-999999', 'thử', 90, 60, 100, 'online', "
            "ST_SetSRID(ST_MakePoint(106.07, 21.18), 4326)) RETURNING fov, geom) "
            "SELECT ST_IsValid(fov), "
            "ST_Covers(fov, ST_Project(geom::geography, 50, radians(90))::geometry), "
            "ST_Covers(fov, ST_Project(geom::geography, 50, radians(270))::geometry) FROM c"
        ).fetchone()
    assert fov and ahead and not behind


@pytest.mark.slow  # refreshes every overview
def test_the_application_role_can_refresh_overviews_and_nothing_else(conn) -> None:
    from gis.overviews import refresh_overviews

    with conn.transaction(force_rollback=True):
        conn.execute("SET LOCAL ROLE geoioc_app")
        assert refresh_overviews(conn) == ["land_use_zones_overview"]
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="not an overview"):
            conn.execute("SELECT geoioc_refresh_overview('parcels')")


def _parcel_columns(url: str) -> set[str]:
    with psycopg.connect(url) as c:
        return {r[0] for r in c.execute(
            "SELECT table_name || '.' || column_name FROM information_schema.columns WHERE table_schema"
            " = 'public' AND table_name IN ('parcels', 'parcel_history') AND column_name IN"
            " ('legal_valid_from', 'decision_no')")}


def _edit_keeps_history(url: str, legal: bool) -> tuple:
    """Insert a parcel, update it, and read back what the history trigger kept (rolled back)."""
    with psycopg.connect(url) as c:
        (pid,) = c.execute(
            "INSERT INTO parcels (commune_code, sheet_no, parcel_no, land_use_codes, legal_area, geom)"
            " VALUES ('99995', 1, 1, '{ONT}', 10, ST_Multi(ST_MakeEnvelope(106.1, 21.1, 106.1001,"
            " 21.1001, 4326))) RETURNING id").fetchone()
        if not legal:
            c.execute("UPDATE parcels SET legal_area = 11 WHERE id = %s", (pid,))
            kept = c.execute("SELECT version, legal_area FROM parcel_history WHERE parcel_id = %s",
                             (pid,)).fetchone()
            c.rollback()
            return tuple(kept)
        c.execute("UPDATE parcels SET legal_valid_from = '2010-05-01', decision_no = '1/QĐ-UBND'"
                  " WHERE id = %s", (pid,))
        c.execute("UPDATE parcels SET legal_area = 11, legal_valid_from = '2020-01-01' WHERE id = %s", (pid,))
        kept = c.execute("SELECT version, legal_area, legal_valid_from::text, decision_no FROM parcel_history"
                         " WHERE parcel_id = %s ORDER BY version DESC LIMIT 1", (pid,)).fetchone()
        with pytest.raises(psycopg.errors.CheckViolation, match="legal order"):
            c.execute("UPDATE parcels SET legal_valid_from = '2019-12-31' WHERE id = %s", (pid,))
        c.rollback()
    return tuple(kept)


@pytest.mark.slow
def test_legal_versions_migration_round_trips(empty_db_url: str) -> None:
    """0013 adds the legal time (and its order rule) to parcels and their history, and gives the
    history trigger of 0006 back on the way down."""
    migrate.upgrade("head", url=empty_db_url)
    assert _parcel_columns(empty_db_url) == {"parcels.legal_valid_from", "parcels.decision_no",
                                             "parcel_history.legal_valid_from", "parcel_history.decision_no"}
    assert _edit_keeps_history(empty_db_url, legal=True) == (2, 10, "2010-05-01", "1/QĐ-UBND")
    migrate.downgrade("0012", url=empty_db_url)
    assert _parcel_columns(empty_db_url) == set()
    assert _edit_keeps_history(empty_db_url, legal=False) == (1, 10)
    migrate.upgrade("head", url=empty_db_url)
    assert _edit_keeps_history(empty_db_url, legal=True) == (2, 10, "2010-05-01", "1/QĐ-UBND")


@pytest.mark.slow
def test_incident_statuses_migrate_both_ways(empty_db_url: str) -> None:
    """0015 maps the old status `new` to `received` (and back on downgrade: received and
    verified to new, rejected to closed), keeping the answered/resolved_at rule true."""
    migrate.downgrade("base", url=empty_db_url)
    migrate.upgrade("0014", url=empty_db_url)
    insert = ("INSERT INTO incidents (category, severity, status, source, title, reported_at,"
              " resolved_at, geom) VALUES ('fire', 2, %s, 'hotline', 't', '2026-01-01Z', %s,"
              " ST_SetSRID(ST_MakePoint(106.07, 21.18), 4326))")
    with psycopg.connect(empty_db_url) as c:
        c.execute(insert, ("new", None))
        c.execute(insert, ("closed", "2026-01-02Z"))
        c.execute(insert, ("assigned", None))
    migrate.upgrade("0015", url=empty_db_url)
    with psycopg.connect(empty_db_url) as c:
        assert [r[0] for r in c.execute("SELECT status FROM incidents ORDER BY id")] == \
            ["received", "closed", "assigned"]
        c.execute(insert, ("rejected", "2026-01-03Z"))
        c.execute(insert, ("verified", None))
        c.commit()
        with pytest.raises(psycopg.errors.CheckViolation):
            c.execute(insert, ("new", None))
    migrate.downgrade("0014", url=empty_db_url)
    with psycopg.connect(empty_db_url) as c:
        assert [r[0] for r in c.execute("SELECT status FROM incidents ORDER BY id")] == \
            ["new", "closed", "assigned", "closed", "new"]
    migrate.downgrade("base", url=empty_db_url)
    migrate.upgrade("head", url=empty_db_url)
