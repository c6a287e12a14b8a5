"""What the Dask workers run for gis/analysis/distributed.py: read one partition of incidents
from PostgreSQL, and bin projected points to cells and calendar bins.

Apart from distributed.py because a worker imports it: it needs only numpy, pandas, geopandas
and psycopg, not the catalogue, the settings or the SQL builders (a worker's first task then
starts sooner, and the workers need no configuration: they get the database URL and the SQL).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import psycopg

if TYPE_CHECKING:
    import geopandas as gpd
    import pandas as pd

SQRT3 = 3 ** 0.5  # as density_sql's (the same double as math.sqrt(3))


@dataclass(frozen=True)
class Partition:
    """What a worker needs to read one partition: the database URL and the SQL with its
    parameters (the restriction already rendered: psycopg's composition is not sent)."""

    url: str
    query: str
    params: tuple[Any, ...]


def read_partition(part: Partition) -> gpd.GeoDataFrame:
    """On a worker: one partition's points (EPSG:4326) and their times (epoch µs, column `us`)."""
    import geopandas as gpd
    import shapely

    with psycopg.connect(part.url, autocommit=True, application_name="geoioc-dask") as conn:
        # As density.fetch: the estimate of a big scan passes jit_above_cost; compiling costs
        # more than it saves.
        conn.execute("SET jit = off")
        row = conn.cursor(binary=True).execute(part.query, list(part.params)).fetchone()
    wkb, us = row if row is not None else (None, None)
    points = shapely.get_parts(shapely.from_wkb(bytes(wkb))) if wkb is not None else np.empty(0, object)
    times = np.asarray(us if us is not None else [], dtype=np.int64)
    return gpd.GeoDataFrame({"us": times}, geometry=points, crs="EPSG:4326")




# --- binning -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Binning:
    """How a partition's projected points become cells: `raster` (KDE grid: ORIGIN, CELL,
    SHAPE (ny, nx), cells off it dropped), `square` or `hexagon` of SIZE (PostGIS's cell ids);
    BIN_STARTS (epoch µs of the calendar bins' starts) adds the bin number b."""

    kind: str
    size: float
    origin: tuple[float, float] = (0.0, 0.0)
    shape: tuple[int, int] = (0, 0)
    bin_starts: tuple[int, ...] | None = None

    @property
    def keys(self) -> list[str]:
        return ["i", "j", "b"] if self.bin_starts is not None else ["i", "j"]


def hexagon_factors(size: float) -> tuple[float, float]:
    """(3 / w, 2 / h) for flat-topped hexagons of edge SIZE, w = 1.5 SIZE and h = sqrt(3) SIZE
    the spacing of their columns and rows: x times the first is three per column, y times the
    second two per row (hexagon_lattice)."""
    return 3 / (1.5 * size), 2 / (SQRT3 * size)


def hexagon_lattice(x: np.ndarray, y: np.ndarray, s: float) -> tuple[np.ndarray, np.ndarray]:
    """The centre (a, b) of the flat-topped hexagon of edge S holding each point, in lattice
    coordinates: column i = a + b, half-rows up a - b. Operation for operation as
    density_sql.cell_key computes it in SQL, so both put every point in the same cell.

    Why three floors do it: in units of u = x / w and v = 2 y / h the centres are the integer
    points with u + v even, and every hexagon edge lies on a line v = n, 3u + v = n or
    3u - v = n (n whole). The three floors F1, F2, F3 of those forms therefore name a piece of
    the plane inside one hexagon, and a = floor((2 F1 + F2 + 4) / 6), b = floor((F3 - 2 F1 +
    2) / 6) is that hexagon (found by search over small integer coefficients and checked
    against the nearest-centre rule on 21,000,000 random points at seven sizes, 50 to 2,500 m;
    a point exactly on an edge may fall on the other side than ST_HexagonGrid's)."""
    across, up = hexagon_factors(s)
    f1 = np.floor(y * up)
    f2 = np.floor(x * across + y * up)
    f3 = np.floor(x * across - y * up)
    return np.floor((2 * f1 + f2 + 4) / 6), np.floor((f3 - 2 * f1 + 2) / 6)


def hexagon_cells(x: np.ndarray, y: np.ndarray, s: float) -> tuple[np.ndarray, np.ndarray]:
    """PostGIS's (i, j) of the flat-topped hexagon (edge S) holding each point (odd columns
    shifted up half a row), from hexagon_lattice as density_sql.key_cell does."""
    a, b = hexagon_lattice(x, y, s)
    i = (a + b).astype(np.int64)
    return i, ((a - b - (i & 1)) / 2).astype(np.int64)


def bin_partition(gdf: gpd.GeoDataFrame, how: Binning) -> pd.DataFrame:
    """On a worker: the cell (i, j) and bin b of each projected point of a partition."""
    import pandas as pd

    x = gdf.geometry.x.to_numpy(dtype=np.float64)
    y = gdf.geometry.y.to_numpy(dtype=np.float64)
    keep: np.ndarray | None = None
    if how.kind == "raster":
        i = np.floor((x - how.origin[0]) / how.size).astype(np.int64)
        j = np.floor((y - how.origin[1]) / how.size).astype(np.int64)
        ny, nx = how.shape
        keep = (i >= 0) & (i < nx) & (j >= 0) & (j < ny)
    elif how.kind == "square":
        i = np.floor(x / how.size).astype(np.int64)
        j = np.floor(y / how.size).astype(np.int64)
    else:
        i, j = hexagon_cells(x, y, how.size)
    cols = {"i": i, "j": j}
    if how.bin_starts is not None:
        starts = np.asarray(how.bin_starts, dtype=np.int64)
        cols["b"] = np.searchsorted(starts, gdf["us"].to_numpy(np.int64), side="right") - 1
    out = pd.DataFrame(cols)
    return out[keep] if keep is not None else out


