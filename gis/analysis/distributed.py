"""The heavy incident analytics on a Dask cluster (dask.distributed + dask-geopandas), when one is
configured (settings.dask_scheduler); in the database otherwise.

Why: at province scale (issue 18: ten million incidents over five years) the per-point work of
KDE, grid counts, Gi* and emerging hot spots over the whole history is projecting every point
to VN-2000 TM-3 and binning it, which the in-database path does on the one database server.
Here that work runs on the cluster's workers, and the database only serves each partition's
rows through its indexes.

What is distributed, and what is not:
- the window is cut into time slices (partitions, at least two per worker thread, at most
  ROWS_PER_PARTITION estimated rows each). Each worker reads its slice straight from PostgreSQL
  (it gets the database URL and the SQL text, never the rows through the client), with the same
  filter SQL the in-database path uses (incidents.where: the request's filters and the caller's
  row restriction) and the same spatial pre-filter (distributed_sql);
- dask-geopandas projects the points to the province CRS on the workers (pyproj: the PROJ of
  PostGIS's ST_Transform, agreeing within 2e-9 m here), each partition bins them to the same
  cells by the same arithmetic as the SQL (density_sql, hotspot_queries: square cells by floor,
  hexagons by the three floors of dask_tasks.hexagon_lattice, operation for operation;
  calendar bins as width_bucket over the bins' start instants), and the per-cell counts are
  reduced on the cluster;
- only the counts come back (a few thousand numbers), and they go to the SAME numpy code as the
  in-database path: density.smooth (KDE), hotspots.hot_spots / emerging (Gi*, permutations, BH,
  Mann-Kendall, categories). Results are equal by construction once the counts are; the counts
  are equal unless a point lies within nanometres of a cell edge (tests/test_dask.py checks them
  on the sample).

The dispatch is this module's: density.counts_on, density.grid_counts and hotspots.load_grid
ask it first (`raster_counts`, `grid_counts`, `cube_counts`) and count in the database when it
answers None (no scheduler configured, or the cluster unreachable: logged, retried after
RETRY_SECONDS, so the service keeps answering).

The cluster must be trusted: the task graph carries the database URL (with its password) to the
scheduler and workers. Its workers need the geoioc package installed (the read and binning
functions are gis/analysis/dask_tasks.py's, which imports nothing of the rest of GeoIOC) and a
route to the database.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import psycopg
from psycopg import sql

from gis.analysis import distributed_sql as q
from gis.analysis.dask_tasks import Binning, Partition, bin_partition, read_partition
from gis.analysis.incidents import IncidentFilter
from gis.fmt import VN_TZ
from gis.settings import get_settings

if TYPE_CHECKING:
    import geopandas as gpd
    import pandas as pd
    from distributed import Client

    from gis.analysis.hotspot_queries import Bins

log = logging.getLogger(__name__)

# A partition holds at most about this many rows (the planner's estimate): one worker holds it
# as a GeoDataFrame of shapely points, some 200 bytes a point.
ROWS_PER_PARTITION = 500_000
MAX_PARTITIONS = 512
CONNECT_TIMEOUT_SECONDS = 5
# After the scheduler could not be reached, the database counts for this long before the next
# attempt (a request must not wait CONNECT_TIMEOUT_SECONDS every time).
RETRY_SECONDS = 60.0


# --- the client ----------------------------------------------------------------------------------

_CLIENTS: dict[str, Client] = {}
_DOWN_UNTIL: dict[str, float] = {}
_LOCK = threading.Lock()


def scheduler_address() -> str:
    return get_settings().dask_scheduler.strip()


def client() -> Client | None:
    """The process's client of the configured scheduler (one per address, shared by threads),
    or None: none configured, or it could not be reached lately."""
    address = scheduler_address()
    if not address:
        return None
    with _LOCK:
        c = _CLIENTS.get(address)
        if c is not None and c.status == "running":
            return c
        if time.monotonic() < _DOWN_UNTIL.get(address, 0.0):
            return None
        from distributed import Client

        if c is not None:
            _close(c)
        try:
            c = Client(address, timeout=CONNECT_TIMEOUT_SECONDS, set_as_default=False)
        except (OSError, TimeoutError) as e:
            log.warning("Dask scheduler %s unreachable (%s): analytics counted in the database"
                        " for %.0f s", address, e, RETRY_SECONDS)
            _DOWN_UNTIL[address] = time.monotonic() + RETRY_SECONDS
            return None
        _CLIENTS[address] = c
        _DOWN_UNTIL.pop(address, None)
        return c


def _close(c: Client) -> None:
    try:
        c.close(timeout=CONNECT_TIMEOUT_SECONDS)
    except Exception:  # noqa: BLE001 - a client of a cluster already gone cannot close cleanly
        log.debug("closing a Dask client failed", exc_info=True)


def close_clients() -> None:
    """Close this process's clients (tests, shutdown); the next analysis connects again."""
    with _LOCK:
        for c in _CLIENTS.values():
            _close(c)
        _CLIENTS.clear()
        _DOWN_UNTIL.clear()


def _failures() -> tuple[type[BaseException], ...]:
    """What makes the database count instead: the cluster lost (a worker killed, the connection
    to the scheduler closed), or a worker that cannot reach the database."""
    from distributed.scheduler import KilledWorker

    return (OSError, TimeoutError, KilledWorker, psycopg.OperationalError)


# --- partitions ------------------------------------------------------------------------------------


def _meta() -> gpd.GeoDataFrame:
    import geopandas as gpd

    return gpd.GeoDataFrame({"us": np.empty(0, np.int64)}, geometry=gpd.GeoSeries([], crs=4326),
                            crs="EPSG:4326")


def _span(conn: psycopg.Connection) -> tuple[dt.datetime | None, dt.datetime | None, float]:
    row = conn.execute(*q.span()).fetchone()
    if row is None:
        return None, None, 0.0
    return row[0], row[1], float(row[2] or 0)


def slices(f: IncidentFilter, first: dt.datetime | None, last: dt.datetime | None,
           rows: float, threads: int) -> list[IncidentFilter]:
    """F's window cut into time slices of equal length over the part of it that holds incidents
    (FIRST..LAST: the table's first and last time), the outer bounds kept as F's (a row written
    since the span was read is still in a slice). Enough slices for every worker thread to
    take two, and for no slice to hold more than ROWS_PER_PARTITION of the ROWS estimated
    (spread evenly over the table's span). No incidents in the window: no slice."""
    if first is None or last is None:
        return []
    lo = max(f.start, first)
    hi = min(f.end, last + dt.timedelta(microseconds=1))
    if lo >= hi:
        return []
    total = max((last - first).total_seconds(), 1e-6)
    expected = rows * min(1.0, (hi - lo).total_seconds() / total)
    n = max(2 * max(threads, 1), math.ceil(expected / ROWS_PER_PARTITION))
    n = min(n, MAX_PARTITIONS)
    step = (hi - lo) / n
    edges = [f.start] + [lo + step * k for k in range(1, n)] + [f.end]
    return [replace(f, start=a, end=b) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def _bin_meta(how: Binning) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame({k: np.empty(0, np.int64) for k in how.keys})


# --- the pipeline -----------------------------------------------------------------------------------


def _counts(c: Client, conn: psycopg.Connection, f: IncidentFilter,
            restrict: sql.Composable | None, extra: tuple[sql.Composable, list] | None,
            srid: int, how: Binning) -> pd.Series:
    """Incidents per cell (and bin) counted on the cluster: a Series indexed by how.keys."""
    import dask
    import dask.dataframe as dd
    import dask_geopandas  # noqa: F401 - registers the GeoDataFrame backend of dask.dataframe
    import pandas as pd

    first, last, rows = _span(conn)
    threads = sum(c.nthreads().values())
    url = get_settings().database_url
    parts = []
    for part_filter in slices(f, first, last, rows, threads):
        query, params = q.partition_points(part_filter, restrict, extra)
        parts.append(Partition(url, query.as_string(conn), tuple(params)))
    if not parts:
        return pd.Series([], index=pd.MultiIndex.from_arrays([[]] * len(how.keys),
                                                             names=how.keys), dtype=np.int64)
    # No conversion of object columns to pyarrow strings (dask's default): there are none to
    # convert, and the check is a pass over every partition.
    with dask.config.set({"dataframe.convert-string": False}):
        points = dd.from_map(read_partition, parts, meta=_meta(), label="read-incidents",
                             enforce_metadata=False)
        projected = points.to_crs(epsg=srid)  # dask-geopandas: pyproj on each partition
        cells = projected.map_partitions(bin_partition, how, meta=_bin_meta(how))
        counts = cells.groupby(how.keys).size()
    result: pd.Series = c.compute(counts).result()
    return result


def _run(what: str, fn: Any) -> Any:
    """FN(client) on the configured cluster, or None: the database counts instead."""
    c = client()
    if c is None:
        return None
    try:
        return fn(c)
    except _failures() as e:
        log.warning("Dask %s failed (%s: %s): counted in the database", what,
                    type(e).__name__, e)
        return None


class RasterGrid(Protocol):
    """density.Grid as this module uses it (density imports this module)."""

    @property
    def srid(self) -> int: ...
    @property
    def origin(self) -> tuple[float, float]: ...
    @property
    def cell(self) -> float: ...
    @property
    def shape(self) -> tuple[int, int]: ...
    def lonlat_bounds(self, pad: float = 0.0) -> tuple[float, float, float, float]: ...


def raster_counts(conn: psycopg.Connection, f: IncidentFilter, restrict: sql.Composable | None,
                  grid: RasterGrid) -> np.ndarray | None:
    """density.counts_on on the cluster: incidents per cell of GRID (row 0 south), or None."""
    def run(c: Client) -> np.ndarray:
        how = Binning("raster", grid.cell, grid.origin, grid.shape)
        extra = q.raster_filter(grid.lonlat_bounds(pad=grid.cell))
        s = _counts(c, conn, replace(f, bbox=None), restrict, extra, grid.srid, how)
        out = np.zeros(grid.shape, dtype=np.float64)
        if len(s):
            ix = s.index.get_level_values("i").to_numpy(np.intp)
            iy = s.index.get_level_values("j").to_numpy(np.intp)
            out[iy, ix] = s.to_numpy(np.float64)
        return out

    result: np.ndarray | None = _run("KDE counts", run)
    return result


def grid_counts(conn: psycopg.Connection, f: IncidentFilter, restrict: sql.Composable | None,
                srid: int, shape: str, size: float) -> list[tuple[int, int, int, str]] | None:
    """density.grid_counts' rows (i, j, n, GeoJSON polygon), counted on the cluster (the
    polygons of the non-empty cells drawn by PostGIS, as there), or None."""
    def run(c: Client) -> list[tuple[int, int, int, str]]:
        s = _counts(c, conn, f, restrict, None, srid, Binning(shape, size))
        if not len(s):
            return []
        i = s.index.get_level_values("i").to_numpy(np.int64).tolist()
        j = s.index.get_level_values("j").to_numpy(np.int64).tolist()
        query, params = q.cell_polygons(srid, shape, size, i, j, s.to_numpy(np.int64).tolist())
        return [(int(a), int(b), int(n), g) for a, b, n, g in conn.execute(query, params).fetchall()]

    result: list[tuple[int, int, int, str]] | None = _run("grid counts", run)
    return result


def cube_counts(conn: psycopg.Connection, f: IncidentFilter, restrict: sql.Composable | None,
                srid: int, area_id: int, shape: str, size: float,
                bins: Bins) -> list[tuple[int, int, int, int]] | None:
    """hotspot_queries.cube_counts on the cluster: rows (i, j, bin, count), or None."""
    tz = VN_TZ
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    starts = tuple((dt.datetime.combine(d, dt.time(), tz) - epoch) // dt.timedelta(microseconds=1)
                   for d in bins.starts)

    def run(c: Client) -> list[tuple[int, int, int, int]]:
        how = Binning(shape, size, bin_starts=starts)
        s = _counts(c, conn, f, restrict, q.area_filter(area_id, size), srid, how)
        idx = s.index
        return [(int(i), int(j), int(b), int(n)) for i, j, b, n in zip(
            idx.get_level_values("i"), idx.get_level_values("j"), idx.get_level_values("b"),
            s.to_numpy(np.int64), strict=True)]

    result: list[tuple[int, int, int, int]] | None = _run("cube counts", run)
    return result
