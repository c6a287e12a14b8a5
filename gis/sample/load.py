"""Load a generated sample into PostGIS: one transaction, COPY per table, provenance row last."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import date

import pandas as pd
import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from gis.fmt import VN_TZ_NAME
from gis.rows import scalar
from gis.sample import reports
from gis.sample.assemble import (
    INDICATOR_VALUES,
    PARCEL_VERSIONS,
    STEPS,
    TABLES,
    Sample,
    generate,
    new_hash,
    update_hash,
)
from gis.sample.serialize import columns, table_text
from gis.settings import get_settings

# Everything the sample owns (land_use_codes is reference data from a migration, not ours).
# The citizen reports' tables (gis/sample/reports.py) are filled after the generated tables,
# by the domain itself, and are not part of the data hash.
REPORT_TABLES = ("report_photos", "incident_transitions", "incident_requests", "incident_reporters",
                 "service_categories", "agencies")
# What the stations' and main roads' SensorThings side derives from them (migrations 0020 and
# 0024): made by the sensors' trigger, by _road_things and by _load_observations, emptied with
# them (the observed properties and sensor
# models are reference data of the migration, like land_use_codes).
STREAM_TABLES = ("observation_hourly", "observation_daily", "datastream_latest", "datastreams",
                 "thing_locations", "features_of_interest", "things",
                 # the alerts on them (migration 0022; the rules are reference data)
                 "sensor_alert_events", "sensor_alerts")
# The indicators' values (their definitions are reference data of migration 0026).
# What cameras gather (migration 0023), emptied with the cameras (detection categories are
# reference data of the migration).
CAMERA_TABLES = ("camera_detections", "camera_snapshots", "camera_status_history", "camera_keys")
SAMPLE_TABLES = (*TABLES, *REPORT_TABLES, *STREAM_TABLES, *CAMERA_TABLES, INDICATOR_VALUES,
                 "sample_info")
CHUNK = 1 << 20


class SampleExistsError(RuntimeError):
    """The target database already holds sample data and replace=False."""


class _Progress:
    """One rich progress bar over generation steps and table loads (or nothing at all)."""

    def __init__(self, enabled: bool, total: int) -> None:
        self._p = (
            Progress(
                SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
            )  # fmt: skip
            if enabled
            else None
        )
        self._task = self._p.add_task("sample", total=total) if self._p else None
        self._started = False

    def __enter__(self) -> _Progress:
        if self._p:
            self._p.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._p:
            self._p.stop()

    def step(self, text: str) -> None:
        if self._p and self._task is not None:
            if self._started:
                self._p.advance(self._task)
            self._started = True
            self._p.update(self._task, description=text)


@contextlib.contextmanager
def _connection(conn_or_url: psycopg.Connection | str) -> Iterator[psycopg.Connection]:
    if isinstance(conn_or_url, psycopg.Connection):
        yield conn_or_url
    else:
        with psycopg.connect(conn_or_url) as conn:
            yield conn


def _copy(cur: psycopg.Cursor, table: str, text: str, names: list[str] | None = None) -> None:
    data = memoryview(text.encode())
    cols = ", ".join(names or columns(table))
    with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as cp:
        for start in range(0, len(data), CHUNK):
            cp.write(data[start : start + CHUNK])


def _load_observations(cur: psycopg.Cursor, text: str) -> None:
    """The sample's readings (COPY text: sensor id, time, value) into `observations`, each in
    the datastream of its station's parameter (made by the sensors' trigger) at the station's
    position, in the months' partitions; then the rollups and latest rows are built from them
    in one pass (arriving data maintain them row by row instead: gis/sensors)."""
    cur.execute("CREATE TEMP TABLE _sample_observations (sensor_id bigint, observed_at timestamptz,"
                " value double precision) ON COMMIT DROP")
    _copy(cur, "_sample_observations", text, columns("observations"))
    cur.execute("SELECT observations_create_partitions(min(observed_at)::date, max(observed_at)::date)"
                " FROM _sample_observations HAVING count(*) > 0")
    cur.execute(
        "INSERT INTO observations (datastream_id, phenomenon_time, result, result_time,"
        " feature_of_interest_id)"
        " SELECT d.id, o.observed_at, o.value, o.observed_at, l.feature_of_interest_id"
        " FROM _sample_observations AS o JOIN sensors AS s ON s.id = o.sensor_id"
        " JOIN observed_properties AS p ON p.code = s.parameter"
        " JOIN datastreams AS d ON d.thing_id = s.id AND d.observed_property_id = p.id"
        " JOIN LATERAL (SELECT feature_of_interest_id FROM thing_locations"
        "  WHERE thing_id = s.id ORDER BY time DESC LIMIT 1) AS l ON TRUE"
        " ORDER BY d.id, o.observed_at")
    # The stations stood there from their first reading (the trigger dated them now).
    cur.execute("UPDATE thing_locations AS t SET time = f.first FROM (SELECT sensor_id,"
                " min(observed_at) AS first FROM _sample_observations GROUP BY sensor_id) AS f"
                " WHERE f.sensor_id = t.thing_id AND f.first < t.time")
    cur.execute("SELECT observation_rollups_rebuild()")


def _incident_months(cur: psycopg.Cursor, df: pd.DataFrame) -> None:
    """The monthly partitions of the sample's window (migration 0038), made before the COPY so
    the rows go straight to their months, not through the DEFAULT partition."""
    if len(df):
        t = pd.to_datetime(df["reported_at"], utc=True).dt.tz_convert(VN_TZ_NAME)
        cur.execute("SELECT incidents_create_partitions(%s, %s)", (t.min().date(), t.max().date()))


def _road_things(cur: psycopg.Cursor, as_of: date) -> None:
    """The main road segments' Things, Locations and speed and flow datastreams (migration
    0024), after the stations' (the roads' trigger was deferred for the load); their Locations
    dated at the sample's day (midnight in Vietnam), so a load is the same whenever it runs."""
    cur.execute("SELECT set_config('geoioc.defer_road_things', 'off', true)")
    cur.execute("SELECT geoioc_road_things((%s::date)::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh')",
                (as_of,))


def _replay_parcel_versions(cur: psycopg.Cursor, text: str) -> None:
    """Apply the later versions of the parcels with a legal history (COPY text of
    parcel_versions), step by step, as UPDATEs: the history triggers record each version the
    way they record any change, with the version's note. The parcels were COPYed into an empty
    table, so the n-th parcel (0-based, the `parcel` of a version) is the n-th by id."""
    if not text:
        return
    cols = columns("parcels")
    ident = sql.SQL(", ").join(map(sql.Identifier, cols))
    cur.execute(sql.SQL(
        "CREATE TEMP TABLE _sample_parcel_versions ON COMMIT DROP AS SELECT NULL::int AS parcel, "
        "NULL::int AS step, NULL::text AS note, {} FROM parcels WITH NO DATA").format(ident))
    _copy(cur, "_sample_parcel_versions", text, columns(PARCEL_VERSIONS))
    update = sql.SQL(
        "UPDATE parcels AS p SET ({cols}) = ROW({values}) FROM _sample_parcel_versions AS v"
        " JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS parcel FROM parcels) AS i"
        " USING (parcel) WHERE p.id = i.id AND v.step = %s AND v.note = %s").format(
        cols=ident, values=sql.SQL(", ").join(sql.Identifier("v", c) for c in cols))
    cur.execute("SELECT set_config('geoioc.user', 'sample', true)")
    for step, note in cur.execute("SELECT DISTINCT step, note FROM _sample_parcel_versions "
                                  "ORDER BY step, note").fetchall():
        cur.execute("SELECT set_config('geoioc.note', %s, true)", (note,))
        cur.execute(update, (step, note))
    cur.execute("SELECT set_config('geoioc.note', '', true), set_config('geoioc.user', '', true)")


def _load_indicator_values(cur: psycopg.Cursor, text: str) -> None:
    """The indicator values (COPY text naming each unit by code and start of validity) into
    indicator_values, with the ids of their units."""
    cur.execute("CREATE TEMP TABLE _sample_indicator_values (indicator_code text, unit_code text,"
                " unit_valid_from date, period text, value text) ON COMMIT DROP")
    _copy(cur, "_sample_indicator_values", text, columns(INDICATOR_VALUES))
    cur.execute(
        "INSERT INTO indicator_values (indicator_code, unit_id, period, value, source_file)"
        " SELECT s.indicator_code, u.id, s.period, s.value::double precision, 'sample'"
        " FROM _sample_indicator_values AS s JOIN admin_units AS u"
        " ON u.code = s.unit_code AND u.valid_from = s.unit_valid_from")
    if cur.rowcount != text.count("\n"):
        raise RuntimeError("indicator values name units the sample does not have")


def load_sample(
    conn_or_url: psycopg.Connection | str,
    seed: int = 1,
    scale: float = 1.0,
    as_of: date | None = None,
    progress: bool = True,
    replace: bool = False,
) -> Sample:
    """Generate the sample and load it in a single transaction; returns the Sample.

    `conn_or_url` is a database URL (a connection is opened and closed here) or a psycopg
    connection, which is left open; if it already has a transaction open, the load runs in a
    savepoint of it and the caller commits. Raises SampleExistsError, before generating
    anything, if a sample table already has rows and replace is False; with replace=True those
    tables are truncated first (identities restarted; land_use_codes is left alone). Nothing is
    left half-loaded: any error rolls the whole load back. sample_info gets one row with the
    parameters, the data hash and the planted anomalies.
    """
    with (
        _Progress(progress, len(STEPS) + len(TABLES) + 4) as bar,
        _connection(conn_or_url) as conn,
        conn.transaction(),
        conn.cursor() as cur,
    ):
        # Check first: refusing should not cost a generation.
        bar.step("Checking target tables")
        filled = [
            t for t in SAMPLE_TABLES
            if scalar(cur.execute(f"SELECT EXISTS (SELECT 1 FROM {t})"))  # noqa: S608
        ]  # fmt: skip
        if filled and not replace:
            raise SampleExistsError(
                "the database already holds sample data in "
                + ", ".join(filled)
                + "; pass replace=True (CLI: --replace) to overwrite it"
            )
        sample = generate(seed, scale, as_of, on_step=lambda s: bar.step(f"Generating {s}"))
        if filled:
            cur.execute(f"TRUNCATE {', '.join(SAMPLE_TABLES)} RESTART IDENTITY")
        h = new_hash(sample)
        # The roads' trigger waits: stations get their Things and datastreams first (the low
        # ids), the main road segments theirs after them (_road_things).
        cur.execute("SELECT set_config('geoioc.defer_road_things', 'on', true)")
        sensor_ids: dict[str, int] = {}
        for table in TABLES:
            bar.step(f"Loading {table} ({len(sample.tables[table]):,} rows)")
            text = table_text(sample.tables, table, for_hash=True)
            update_hash(h, table, text)
            if table == "observations":  # hashed with sensor codes, loaded with their ids
                text = table_text(sample.tables, table, sensor_ids=sensor_ids)
            if table == "observations":
                _load_observations(cur, text)
            else:
                if table == "incidents":
                    _incident_months(cur, sample.tables[table])
                _copy(cur, table, text)
            del text
            if table == "sensors":
                sensor_ids = dict(cur.execute("SELECT code, id FROM sensors").fetchall())
        _road_things(cur, sample.as_of)
        text = sample.versions_text()
        update_hash(h, PARCEL_VERSIONS, text)
        _replay_parcel_versions(cur, text)
        bar.step("Loading indicator values")
        text = sample.indicators_text()
        update_hash(h, INDICATOR_VALUES, text)
        _load_indicator_values(cur, text)
        bar.step("Playing citizen reports")
        reports.load(conn, sample.as_of, seed, get_settings().province_srid)
        sample._hash = h.hexdigest()
        bar.step("Recording sample_info")
        cur.execute(
            "INSERT INTO sample_info (seed, scale, as_of, data_hash, planted) "
            "VALUES (%s, %s, %s, %s, %s)",
            (seed, scale, sample.as_of, sample._hash, Jsonb(sample.planted)),
        )
        bar.step("Done")
    return sample



