"""`geoioc simulate` end to end: the model's readings of every sample datastream published to the
real broker (GEOIOC_MQTT_URL, default 127.0.0.1:1883), stored by a real ingest worker in real
PostGIS, then read back.

The simulated window lies before the sample's own observations (around the last pollution
episode that ends there), on topics of this module's own (a unique prefix and share group); its
observations are deleted at the end and the rollups rebuilt, so the sample is as it was.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest

from gis.sensors import queries, simulate, simulator
from gis.sensors.ingest import IngestWorker
from gis.settings import get_settings

SEED = 11
STEP = 600.0  # ten minutes of simulated time between readings


@dataclass
class Run:
    streams: simulate.Streams
    times: np.ndarray
    episode: simulate.Episode
    figures: simulator.Figures
    prefix: str
    worker: IngestWorker


def _wait_stored(conn: psycopg.Connection[Any], ids: list[int], start: dt.datetime,
                 end: dt.datetime, want: int, timeout: float = 120.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        n = int(conn.execute(
            "SELECT count(*) FROM observations WHERE datastream_id = ANY(%s)"
            " AND phenomenon_time >= %s AND phenomenon_time < %s", (ids, start, end)).fetchone()[0])
        if n >= want or time.monotonic() > deadline:
            return n
        time.sleep(0.2)


@pytest.fixture(scope="module")
def run(db_url: str) -> Iterator[Run]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        rows = queries.simulation_streams(conn)
        first = conn.execute("SELECT min(phenomenon_time) FROM observations").fetchone()[0]
        first = first or dt.datetime.now(dt.UTC)
        months = {r[0] for r in conn.execute("SELECT name FROM observation_partitions")}
        streams, _ = simulator.split(simulate.Streams.of(*map(list, zip(*rows, strict=True))))
        # The last episode that ends a day before the sample's first observation, 12 h before
        # it to 18 h after.
        ep = [e for e in simulate.episodes(SEED, first - dt.timedelta(days=12), first)
              if e.end + dt.timedelta(hours=18) < first][-1]
        start, end = ep.start - dt.timedelta(hours=12), ep.end + dt.timedelta(hours=18)
        tag = uuid.uuid4().hex[:10]
        prefix = f"test-{tag}/"
        worker = IngestWorker(client_id=f"test-{tag}-sim", topic_prefix=prefix,
                              share_group=f"test-{tag}").start()
        ids = streams.ids.tolist()
        try:
            settings = get_settings().model_copy(update={"mqtt_topic_prefix": prefix})
            pub = simulator.Publisher(settings)
            clock = simulator.Clock(start=start.timestamp(), end=end.timestamp(), step=STEP)
            fig = simulator.run(streams, clock, SEED, pub)
            pub.close()
            times = simulate.grid(start.timestamp(), end.timestamp(), STEP)
            assert fig.observations == len(streams) * len(times)
            assert _wait_stored(conn, ids, start, end, fig.observations) == fig.observations
            yield Run(streams, times, ep, fig, prefix, worker)
        finally:
            worker.stop()
            conn.execute("DELETE FROM observations WHERE datastream_id = ANY(%s)"
                         " AND phenomenon_time >= %s AND phenomenon_time < %s", (ids, start, end))
            conn.execute("SELECT observation_rollups_rebuild()")
            for (name,) in conn.execute("SELECT name FROM observation_partitions").fetchall():
                if name not in months:  # made for this window: empty again
                    conn.execute(psycopg.sql.SQL("DROP TABLE {}").format(psycopg.sql.Identifier(name)))


def _stored(conn: psycopg.Connection[Any], r: Run) -> np.ndarray:
    """The stored readings as (streams, times), NaN where nothing is stored."""
    t0 = dt.datetime.fromtimestamp(r.times[0], dt.UTC)
    t1 = dt.datetime.fromtimestamp(r.times[-1], dt.UTC)
    out = np.full((len(r.streams), len(r.times)), np.nan)
    row_of = {int(d): i for i, d in enumerate(r.streams.ids)}
    for ds, t, v in conn.execute(
            "SELECT datastream_id, extract(epoch FROM phenomenon_time)::float8, result"
            " FROM observations WHERE datastream_id = ANY(%s)"
            " AND phenomenon_time BETWEEN %s AND %s", (r.streams.ids.tolist(), t0, t1)):
        out[row_of[ds], int(round((t - r.times[0]) / STEP))] = v
    return out


def test_every_sample_datastream_is_stored_as_the_model_says(conn, run):
    assert len(run.streams) >= 50  # the sample's stations: air and water, every parameter
    assert set(run.streams.properties) >= {"pm25", "pm10", "no2", "ph", "turbidity",
                                          "dissolved_oxygen", "cod"}
    stored = _stored(conn, run)
    assert not np.isnan(stored).any(), "a datastream lacks readings"
    # Same seed, same values: what was stored is what the model computes again.
    assert np.array_equal(stored, simulate.values(run.streams, run.times, SEED))
    # Results produced at their phenomenon time, as the sample's.
    assert conn.execute(
        "SELECT count(*) FROM observations WHERE datastream_id = ANY(%s) AND phenomenon_time"
        " BETWEEN %s AND %s AND result_time IS DISTINCT FROM phenomenon_time",
        (run.streams.ids.tolist(), dt.datetime.fromtimestamp(run.times[0], dt.UTC),
         dt.datetime.fromtimestamp(run.times[-1], dt.UTC))).fetchone()[0] == 0
    # The rollups kept pace with the arrivals.
    n = conn.execute("SELECT sum(n) FROM observation_hourly WHERE datastream_id = ANY(%s)"
                     " AND bucket >= %s AND bucket < %s",
                     (run.streams.ids.tolist(), dt.datetime.fromtimestamp(run.times[0], dt.UTC),
                      dt.datetime.fromtimestamp(run.times[-1] + STEP, dt.UTC))).fetchone()[0]
    assert n == run.figures.observations


def test_the_episode_crosses_the_qcvn_limit_and_clears(conn, run):
    """The network's PM2.5 (mean of the stations, as stored) goes over QCVN 05:2023's 50 µg/m³
    during the episode (for hours, usually: how long depends on the time of day it falls on) and
    stays under it before and after."""
    stored = _stored(conn, run)
    network = stored[run.streams.properties == "pm25"].mean(axis=0)
    t = run.times
    start, end = run.episode.start.timestamp(), run.episode.end.timestamp()
    during = (t >= start) & (t <= end)
    assert (network[during] > simulate.QCVN05_PM25).any()
    assert network[during].max() > 1.1 * simulate.QCVN05_PM25
    assert network[t < start - 3 * 3600].max() < simulate.QCVN05_PM25
    assert network[t > end + 6 * 3600].max() < simulate.QCVN05_PM25
    # Outside the episode: morning and evening peaks over the afternoon's low (Vietnam time).
    h = simulate.local_hour(t)
    calm = (t < start - 3 * 3600) | (t > end + 6 * 3600)
    afternoon = network[calm & (h >= 13) & (h < 16)]
    morning = network[calm & (h >= 7) & (h < 9)]
    evening = network[calm & (h >= 18) & (h < 20)]
    if afternoon.size and morning.size:
        assert morning.mean() > 1.2 * afternoon.mean()
    if afternoon.size and evening.size:
        assert evening.mean() > 1.15 * afternoon.mean()


def test_readings_are_physically_plausible(conn, run):
    stored = _stored(conn, run)
    prop = run.streams.properties
    assert (stored >= 0).all()
    assert stored[prop == "ph"].min() >= 6.0 and stored[prop == "ph"].max() <= 9.5
    do = stored[prop == "dissolved_oxygen"]
    assert do.min() >= 0.2 and do.max() <= 14
    assert stored[prop == "pm10"].mean() > stored[prop == "pm25"].mean()  # PM10 holds PM2.5
    # Noise: neighbouring readings differ, but little.
    pm = stored[prop == "pm25"]
    steps = np.abs(np.diff(np.log(pm), axis=1))
    assert 0.005 < np.median(steps) < 0.3


def test_republishing_the_window_stores_nothing_twice(conn, run):
    settings = get_settings().model_copy(update={"mqtt_topic_prefix": run.prefix})
    pub = simulator.Publisher(settings)
    fig = simulator.run(run.streams, simulator.Clock(start=run.times[0], end=run.times[-1] + STEP,
                                                     step=STEP), SEED, pub)
    pub.close()
    assert fig.observations == run.figures.observations
    deadline = time.monotonic() + 60
    while True:
        dup = conn.execute("SELECT duplicates FROM ingest_workers WHERE worker_id = %s",
                           (run.worker.worker_id,)).fetchone()[0]
        if dup >= fig.observations or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert dup == fig.observations
    assert _stored(conn, run).size == len(run.streams) * len(run.times)
    assert int(conn.execute(
        "SELECT count(*) FROM observations WHERE datastream_id = ANY(%s) AND phenomenon_time"
        " BETWEEN %s AND %s", (run.streams.ids.tolist(),
                               dt.datetime.fromtimestamp(run.times[0], dt.UTC),
                               dt.datetime.fromtimestamp(run.times[-1], dt.UTC))).fetchone()[0]
               ) == run.figures.observations


def test_the_command_publishes_one_round_with_once(conn, run):
    """`geoioc simulate --once` (the console script, a process of its own): one reading of every
    datastream at --start."""
    at = dt.datetime.fromtimestamp(run.times[0], dt.UTC) + dt.timedelta(minutes=5)  # off the grid
    env = {**os.environ, "GEOIOC_MQTT_TOPIC_PREFIX": run.prefix}
    p = subprocess.run([str(Path(sys.executable).parent / "geoioc"), "simulate", "--once",
                        "--start", at.isoformat(), "--step", "5m", "--seed", str(SEED), "--quiet"],
                       env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert f"{len(run.streams)} observations in 1 messages" in p.stderr
    assert "traffic (road segments)" in p.stderr
    got = _wait_stored(conn, run.streams.ids.tolist(), at, at + dt.timedelta(seconds=1),
                       len(run.streams), timeout=60)
    assert got == len(run.streams)


# --- the model alone --------------------------------------------------------------------------
def _streams() -> simulate.Streams:
    props = list(simulate.MODELLED)
    return simulate.Streams.of(list(range(1, len(props) + 1)), props,
                               [1, 1, 1, 1] + [2] * 6 + [3, 3, 4])


def test_the_model_is_pure_and_seeded():
    s = _streams()
    t = simulate.grid(1.7e9, 1.7e9 + 5 * 86400, 300)
    a = simulate.values(s, t, 3)
    # The same values whatever the chunks (a back-fill and the live part join seamlessly) ...
    b = np.concatenate([simulate.values(s, t[:700], 3), simulate.values(s, t[700:], 3)], axis=1)
    assert np.array_equal(a, b)
    # ... and whichever other datastreams are computed alongside.
    assert np.array_equal(simulate.values(s.select(np.arange(len(s)) % 2 == 0), t, 3), a[::2])
    assert not np.array_equal(a, simulate.values(s, t, 4))


def test_water_follows_the_rain():
    s = simulate.Streams.of([1, 2, 3, 4, 5], ["water_level", "turbidity", "dissolved_oxygen",
                                              "cod", "rainfall"], [7] * 5)
    t = simulate.grid(1.7e9, 1.7e9 + 40 * 86400, 900)
    v = simulate.values(s, t, 5)
    r = simulate.runoff(t, 5)
    wet, dry = r > 0.5, r < 0.05
    assert wet.sum() > 20 and dry.sum() > 20
    level, turb, do, cod, rain = v
    assert level[wet].mean() > level[dry].mean() + 0.5       # the river rises after rain
    assert turb[wet].mean() > 1.5 * turb[dry].mean()
    assert cod[wet].mean() > cod[dry].mean()
    assert do[wet].mean() < do[dry].mean()
    # The level peaks hours after the rain, not during it.
    first_rain = int(np.flatnonzero(rain > 0)[0])
    window = level[first_rain:first_rain + 96]
    assert 4 <= int(np.argmax(window)) * 900 / 3600 <= 20


def test_cameras_and_traffic_when_there_are_datastreams():
    s = simulate.Streams.of([1, 2, 3], ["traffic_speed", "traffic_flow", "camera_status"], [1, 1, 2])
    t = simulate.grid(1.7e9, 1.7e9 + 30 * 86400, 600)
    speed, flow, cam = simulate.values(s, t, 2)
    h = simulate.local_hour(t)
    rush = (h >= 7) & (h < 8)
    night = (h >= 1) & (h < 4)
    assert speed[rush].mean() < 0.8 * speed[night].mean()
    assert flow[rush].mean() > 2 * flow[night].mean()
    assert set(np.unique(cam)) == {0.0, 1.0, 2.0}  # outages happen and end
    assert (cam == 0).mean() > 0.95
    # What the ingest reads of the simulator's messages: numbers as results, camera states as text.
    from gis.sensors import payloads

    down = int(np.flatnonzero(cam == 2)[0])
    [message] = simulator.encode(s, t[down:down + 2], np.stack([speed, flow, cam])[:, down:down + 2])
    rows, refused = payloads.parse(f"geoioc/v1/gateways/{simulator.GATEWAY}/observations", message,
                                   "", dt.datetime.fromtimestamp(t[down], dt.UTC),
                                   payloads.Window(dt.timedelta(days=1), dt.timedelta(days=1)))
    assert not refused and len(rows) == 6
    assert [r.result for r in rows[:2]] == [speed[down], flow[down]]
    assert rows[2].result_json == '"offline"' and rows[2].result is None
    assert all(r.result_time == r.phenomenon_time for r in rows)


def test_the_command_names_bad_options():
    from gis.cli.common import CliError
    from gis.cli.simulate import span, when

    assert span("1d12h") == 36 * 3600 and span("90s") == 90
    assert when("-6h", 1e9) == 1e9 - 6 * 3600
    assert when("2026-12-01T08:00", 0) == dt.datetime(2026, 12, 1, 1, tzinfo=dt.UTC).timestamp()
    for bad in ("5x", "", "6h-"):
        with pytest.raises(CliError, match="expected a span"):
            span(bad)
    with pytest.raises(CliError, match="--start 'yesterday'"):
        when("yesterday", 0)


def test_road_segments_datastreams_are_read_with_their_free_flow_speed(db_url):
    """Traffic plugs in through the road segments' Things (migration 0024): every main road
    segment's speed and flow datastreams are simulated, keyed by the segment's Thing (distinct
    from every station's key), around its free-flow speed (its free_flow_speed, here set in a
    transaction rolled back, or its speed limit)."""
    with psycopg.connect(db_url) as c:
        road, thing = c.execute("SELECT r.id, t.id FROM roads r JOIN things t ON t.road_id = r.id"
                                " ORDER BY r.id LIMIT 1").fetchone()
        c.execute("UPDATE roads SET free_flow_speed = 55 WHERE id = %s", (road,))
        every = queries.simulation_streams(c)
        rows = [r for r in every if r[2] == thing]
        c.rollback()
    assert sorted(r[1] for r in rows) == ["traffic_flow", "traffic_speed"]
    assert all(r[3] == 55 for r in rows)
    stations = {r[2] for r in every if r[1] not in simulate.TRAFFIC}
    roads = {r[2] for r in every if r[1] in simulate.TRAFFIC}
    assert not stations & roads and len(roads) == sum(r[1] == "traffic_speed" for r in every)
    assert all(r[3] is not None for r in every if r[1] in simulate.TRAFFIC)
    streams = simulate.Streams.of(*map(list, zip(*rows, strict=True)))
    assert simulator.describe(streams)[0] == "traffic (road segments): 2 datastreams"
    t = simulate.grid(1.7e9, 1.7e9 + 7 * 86400, 900)
    speed = simulate.values(streams, t, 1)[list(streams.properties).index("traffic_speed")]
    assert 0.85 * 55 < np.median(speed) < 1.1 * 55  # around the free-flow speed
