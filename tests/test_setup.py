"""The set-up is idempotent: running it again over a prepared database changes nothing."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


# What the suite's own queue worker writes while this test runs (its periodic upkeep, every
# minute: alert sweeps that open incidents, camera health, transparency figures, export expiry,
# rate limits, ingest workers): running state, not set-up. On a slow machine the two set-up
# runs span a minute or two, and one of these moved a count (CI, 2026-12-04).
RUNNING_STATE = ("spatial_ref_sys", "audit_log", "users", "user_roles", "api_keys",
                 "auth_sessions", "sensor_alerts", "sensor_alert_events", "camera_status_history",
                 "camera_snapshots", "camera_detections", "cameras", "transparency_figures",
                 "export_jobs", "rate_buckets", "signin_failures", "ingest_workers",
                 "datastream_latest", "incident_cell_days", "incident_days", "incident_heat_days",
                 "incident_heat_months", "incident_hex_months", "incident_heat_years",
                 "incident_cell_months", "incident_ids",
                 "incident_transitions", "incidents")
RUNNING_PREFIXES = ("procrastinate\\_", "incidents\\_", "observation")


def fingerprint(conn) -> tuple:
    """Schema revision, the sample's content hash, and row counts of every table but the
    running state: accounts, the audit log, the job queue's tables and what the suite's worker
    writes meanwhile (RUNNING_STATE; incidents and observations and their partitions)."""
    tables = [r[0] for r in conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        " AND NOT tablename = ANY(%s) AND NOT tablename LIKE ANY(%s) ORDER BY tablename",
        (list(RUNNING_STATE), [f"{p}%" for p in RUNNING_PREFIXES]))]
    counts = tuple((t, conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0])  # noqa: S608
                   for t in tables)
    return (conn.execute("SELECT version_num FROM alembic_version").fetchone(),
            conn.execute("SELECT seed, scale, as_of, data_hash FROM sample_info").fetchone(),
            counts,
            conn.execute("SELECT count(*) FROM spatial_ref_sys").fetchone())


@pytest.mark.slow  # runs scripts/setup.sh twice
def test_running_the_setup_again_changes_nothing(conn, db_url) -> None:
    before = fingerprint(conn)
    # With GEOIOC_DATABASE_URL set the script installs and starts nothing: it migrates and loads
    # the sample only if the database is empty ("prepare" stops before serving).
    env = {**os.environ, "GEOIOC_DATABASE_URL": db_url}
    for _ in range(2):
        run = subprocess.run(["bash", str(ROOT / "scripts" / "setup.sh"), "prepare"], env=env,
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-2000:]
        assert "sample province already loaded" in run.stdout
    assert fingerprint(conn) == before
