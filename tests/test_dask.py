"""Distributed analytics (issue 18): with GEOIOC_DASK_SCHEDULER set, KDE, grid counts, Gi* and
emerging hot spots are counted on a Dask cluster (gis/analysis/distributed.py) and give the
same answers as the in-database path; without it, or with the scheduler unreachable, the
database counts.

The cluster is real: a dask.distributed LocalCluster of two worker processes (one thread each)
on loopback, whose workers read their partitions from the test database themselves. Each check
also asserts that the partitions were read on both workers, not in the test process."""

from __future__ import annotations

import datetime as dt
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from zoneinfo import ZoneInfo

import numpy as np
import psycopg
import pytest
from psycopg import sql

from gis.analysis import density as D
from gis.analysis import distributed
from gis.analysis import hotspot_queries as hq
from gis.analysis import hotspots as hs
from gis.analysis.incidents import IncidentFilter
from gis.settings import get_settings
from layers.access import Principal, row_filter
from layers.catalogue import get_layer

VN = ZoneInfo("Asia/Ho_Chi_Minh")
H1 = IncidentFilter(dt.datetime(2026, 1, 1, tzinfo=VN), dt.datetime(2026, 7, 1, tzinfo=VN))
# The whole history of the sample (it spans two years before its load day).
ALL = IncidentFilter(dt.datetime(2020, 1, 1, tzinfo=VN), dt.datetime(2027, 1, 1, tzinfo=VN))
SRID = 9209
ENV = "GEOIOC_DASK_SCHEDULER"


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
                      dashboard_address=None) as c:
        yield c.scheduler_address
    distributed.close_clients()


@contextmanager
def scheduler(address: str) -> Iterator[None]:
    """The setting as a deployment gives it (environment), for the block only."""
    before = os.environ.get(ENV)
    os.environ[ENV] = address
    get_settings.cache_clear()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = before
        get_settings.cache_clear()


@contextmanager
def on_dask(address: str) -> Iterator[set[str]]:
    """Run the block against the cluster; yields the workers that read partitions (filled when
    the block ends)."""
    from distributed import get_task_stream

    readers: set[str] = set()
    with scheduler(address):
        c = distributed.client()
        assert c is not None, "the test cluster is unreachable"
        with get_task_stream(client=c) as ts:
            yield readers
        readers.update(t["worker"] for t in ts.data if "read-incidents" in str(t["key"]))


def operator_rows() -> sql.Composable | None:
    return row_filter(get_layer("incidents"), Principal("dask-operator", frozenset({"operator"})))


def test_kde_on_dask_equals_in_database(conn, cluster) -> None:
    restrict = operator_rows()
    cases = (("quartic", 500, 100, H1), ("gaussian", 500, 250, ALL))
    expected = [D.kde(conn, f, restrict, bandwidth=b, cell=c, kernel_name=k)
                for k, b, c, f in cases]
    with on_dask(cluster) as readers:
        got = [D.kde(conn, f, restrict, bandwidth=b, cell=c, kernel_name=k)
               for k, b, c, f in cases]
    assert len(readers) == 2, readers  # both workers read partitions
    for a, b in zip(expected, got, strict=True):
        assert a.counted > 1000 and b.counted == a.counted
        assert a.grid == b.grid
        assert np.allclose(a.values, b.values, rtol=0, atol=1e-12)
        assert b.mass == pytest.approx(a.mass, rel=1e-12)


def test_grid_counts_on_dask_equal_in_database(conn, cluster) -> None:
    restrict = operator_rows()
    # the request's filters travel to the workers as SQL parameters (arrays among them)
    some = replace(H1, categories=("traffic_accident", "public_order"), severities=(2, 3, 4),
                   sources=("hotline", "camera"))
    cases = (("hexagon", 250, H1), ("square", 1000, ALL), ("hexagon", 500, some))
    expected = [D.grid_counts(conn, f, restrict, shape, size) for shape, size, f in cases]
    with on_dask(cluster) as readers:
        got = [D.grid_counts(conn, f, restrict, shape, size) for shape, size, f in cases]
    assert len(readers) == 2
    for a, b in zip(expected, got, strict=True):
        assert a.total > 300
        assert b.cells == a.cells  # i, j, count and the polygon's text, in the same order


def _area(conn: psycopg.Connection) -> hq.StudyArea:
    area = hq.study_area(conn, SRID, None, hs.window_day(ALL.end), None)
    assert area is not None
    return area


def test_hot_spots_and_emerging_on_dask_equal_in_database(conn, cluster) -> None:
    area = _area(conn)
    year = IncidentFilter(dt.datetime(2025, 12, 1, tzinfo=VN), dt.datetime(2026, 12, 1, tzinfo=VN))
    restrict = operator_rows()
    cases = ((year, "hexagon", 1500, "monthly"), (ALL, "square", 2500, "weekly"))
    expected = [hs.load_grid(conn, f, restrict, SRID, area, s, z, b) for f, s, z, b in cases]
    with on_dask(cluster) as readers:
        got = [hs.load_grid(conn, f, restrict, SRID, area, s, z, b) for f, s, z, b in cases]
    assert len(readers) == 2
    hot = 0
    for (a, b), perms in zip(zip(expected, got, strict=True), (999, None), strict=True):
        assert a.counts.sum() > 1000
        assert np.array_equal(a.counts, b.counts)  # cells × bins, exact
        # Gi*: seeded permutations on one, analytic p (auto above 150 cells) on the other
        ha, hb = hs.hot_spots(a, perms), hs.hot_spots(b, perms)
        assert np.allclose(ha.z, hb.z, rtol=0, atol=1e-12)
        assert np.array_equal(ha.p, hb.p) and np.array_equal(ha.gi_bin, hb.gi_bin)
        assert ha.summary == hb.summary
        hot += ha.summary["hot_99"]
        ea, eb = hs.emerging(a), hs.emerging(b)
        assert ea.categories == eb.categories and ea.summary == eb.summary
        assert np.allclose(ea.z, eb.z, rtol=0, atol=1e-12)
    assert hot > 0  # the comparison is not of empty answers: the sample has hot spots


def test_a_branch_per_bin_counts_as_the_bin_carried_in_one_grouping(conn, monkeypatch) -> None:
    """cube_counts' two statements (a branch per bin; past MAX_BIN_BRANCHES bins one grouping
    by cell and bin) give the same rows, for calendar months and weeks, the window's first and
    last bins partial."""
    area = _area(conn)
    window = IncidentFilter(dt.datetime(2025, 11, 20, 9, tzinfo=VN),
                            dt.datetime(2026, 11, 12, 15, tzinfo=VN))
    for kind in ("monthly", "weekly"):
        bins = hq.bins_for(kind, window.start, window.end)
        args = (conn, window, operator_rows(), SRID, area.id, "hexagon", 500, bins)
        assert bins.count <= hq.MAX_BIN_BRANCHES
        branched = sorted(hq.cube_counts(*args))
        monkeypatch.setattr(hq, "MAX_BIN_BRANCHES", 0)
        carried = sorted(hq.cube_counts(*args))
        monkeypatch.undo()
        assert branched == carried and sum(r[3] for r in branched) > 1000
        assert {r[2] for r in branched} == set(range(bins.count))


def test_the_api_answers_the_same_on_dask(client, keys, cluster) -> None:
    """The routes are unchanged: the dispatch is below them. Same bodies, byte for byte."""
    window = {"start": "2025-12-01", "end": "2026-11-30"}
    calls = (("/api/incidents/grid", {**window, "shape": "hexagon", "size": 700}),
             ("/api/incidents/hotspots", {**window, "cell_m": 1500}),
             ("/api/incidents/hotspots/emerging", {**window, "cell_m": 3000, "bin": "weekly"}))
    expected = [client.get(path, headers=keys["operator"], params=params) for path, params in calls]
    with on_dask(cluster) as readers:
        got = [client.get(path, headers=keys["operator"], params=params) for path, params in calls]
    assert len(readers) == 2
    for a, b in zip(expected, got, strict=True):
        assert a.status_code == b.status_code == 200, (a.text[:300], b.text[:300])
        assert a.json() == b.json()


def test_without_the_setting_the_database_counts(conn, cluster) -> None:
    with scheduler(""):
        assert distributed.client() is None
        grid = D.snap_grid(D.study_box(conn, H1, SRID), 200, 0, SRID)
        assert distributed.raster_counts(conn, H1, None, grid) is None
        assert distributed.grid_counts(conn, H1, None, SRID, "hexagon", 500) is None
        counts = D.counts_on(conn, H1, None, grid)  # in PostGIS
    assert counts.sum() > 1000


def test_an_unreachable_scheduler_falls_back_to_the_database(conn) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    try:
        with scheduler(address):
            g = D.grid_counts(conn, H1, None, "hexagon", 500)  # counted in PostGIS
            assert distributed.client() is None  # refused, and not retried at once
        assert g.total > 1000
        assert g.cells == D.grid_counts(conn, H1, None, "hexagon", 500).cells
    finally:
        distributed.close_clients()
