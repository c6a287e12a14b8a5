"""Significant hot and cold spots of incidents (Getis-Ord Gi*) and emerging hot spots over a
space-time cube, on a hexagon or square grid in the province's projected CRS.

Why Gi* and not the heatmap: a heatmap shows where incidents are many; Gi* says where they are
more than chance would put there, given the study area's own mean and variance, so leaders can
tell a real cluster from noise and compare two windows on one scale (z-scores).

Method (the choices, and why):

- Grid: PostGIS ST_HexagonGrid / ST_SquareGrid of `size` metres (hexagon edge, or square side)
  in VN-2000 / TM-3 (gis/analysis/hotspot_queries.py), every cell meeting the study area (the
  province, or one administrative unit), empty cells included; counts per cell (and per time bin)
  in SQL. A boundary cell counts all its incidents, also those just outside the area, so that
  every cell is a whole cell and the boundary does not show as a ring of cold spots. The cells
  arrive as a GeoDataFrame (geopandas) for the analysis and the GeoJSON.
- Neighbours: a distance band on the cell centres just wider than the centre spacing of adjacent
  cells (binary weights, the cell itself included as Gi* requires). On a regular grid this is
  exactly Queen contiguity (6 neighbours for a hexagon, 8 for a square; the tests check it
  against libpysal's Graph.build_contiguity). The request path builds it as a sparse matrix
  from a k-d tree (`grid_weights`, milliseconds at 50,000 cells); libpysal's
  Graph.build_distance_band through geopandas gives the same matrix (tests) but took seconds.
- Statistic: the Gi* z-score of Getis & Ord (1995), vectorised (`gi_star_z`); the tests check it
  equals esda.G_Local(star=True, transform="B").Zs on the same data and weights.
- p-values, two-sided (a hot and a cold spot are both findings), chosen by grid size:
  * analytic (the normal approximation of Gi*: p = 2·(1 - Φ(|z|))) for grids over
    AUTO_PERMUTATION_MAX_CELLS cells. It has no floor, so the false-discovery-rate correction over
    tens of thousands of cells can still reach 99 %; with many cells each neighbourhood's sum is
    close to normal.
  * conditional permutations for small grids, where the normal approximation is poorest
    (`permutation_p`: two-sided, ties counted on both sides), whose smallest value is 2 / (P + 1).
    Benjamini-Hochberg rejects the most extreme of n cells at level q only when its p ≤ q / n, so
    P is chosen with 2 / (P + 1) ≤ (0.01 / n) / 2: the smallest achievable p is half the
    strictest threshold (99 % confidence, rank 1), i.e. P + 1 = 400·n rounded up to a thousand.
    999 permutations (p ≥ 0.001) could never mark a 99 % hot spot among more than ten cells.
    Permutations cost n·P (about 0.05-0.1 µs each here); AUTO_PERMUTATION_MAX_CELLS
    keeps that to a second or two. A caller may also ask for a fixed P (`permutations`), bounded by
    MAX_PERMUTATION_WORK; the answer then says the smallest achievable p.
  * The permutations are seeded: the same request gives the same answer.
- Multiple testing: Benjamini-Hochberg adjusted p-values (vectorised, `bh_adjust`); a cell is a
  hot (z > 0) or cold (z < 0) spot at 99 / 95 / 90 % when its adjusted p is below 0.01 / 0.05 /
  0.10, as the desktop tools' Gi_Bin with FDR correction.
- A cell's count trend: the Mann-Kendall test on its counts per calendar bin (weekly or monthly,
  Vietnam time) in the window.

Emerging hot spots (`emerging`): counts per cell and calendar bin (a space-time cube); Gi* per time
slice with spatial neighbours only (the desktop tool's "neighbourhood time step" of one step and
its "individual time step" global window): each slice is compared with its own mean and variance,
so a partial first or last bin, or a quiet season, does not read as a province-wide cold slice.
Each bin is a hot or cold spot when its FDR-adjusted p (per slice) is below `alpha`; the
Mann-Kendall test on each cell's series of Gi* z-scores gives the trend of the intensity of
clustering; the categories are ESRI's (`classify`, definitions in its docstring).
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psycopg
from psycopg import sql
from scipy import sparse, stats

from gis.analysis import distributed
from gis.analysis import hotspot_queries as q
from gis.analysis.incidents import IncidentFilter
from gis.fmt import VN_TZ

# --- the p-value rule ---------------------------------------------------------------------------

STRICTEST_ALPHA = 0.01  # the 99 % class
AUTO_PERMUTATION_MAX_CELLS = 150
MAX_PERMUTATION_WORK = 50_000_000  # cells × permutations a request may ask for
MAX_PERMUTATIONS = 99_999
MIN_PERMUTATIONS = 99
PERMUTATION_SEED = 12345
CONFIDENCE_LEVELS = ((0.01, 99), (0.05, 95), (0.10, 90))


def permutations_for(n_cells: int) -> int:
    """Permutations that let the most extreme of N_CELLS cells pass Benjamini-Hochberg at 99 %
    with room to spare: 2 / (P + 1) ≤ 0.01 / (2n), P + 1 rounded up to a thousand."""
    need = math.ceil(2 * n_cells * 2 / STRICTEST_ALPHA)
    return max(999, math.ceil(need / 1000) * 1000 - 1)


def p_value_method(n_cells: int, permutations: int | None) -> int:
    """The permutations to run (0: analytic p-values). PERMUTATIONS None means 'auto': the
    analytic p-value above AUTO_PERMUTATION_MAX_CELLS cells, else permutations_for(n)."""
    if permutations is not None:
        return permutations
    if n_cells > AUTO_PERMUTATION_MAX_CELLS or n_cells < 3:
        return 0
    return permutations_for(n_cells)


def smallest_p(permutations: int) -> float:
    """The smallest two-sided p-value P permutations can give (0 for the analytic p)."""
    return min(1.0, 2 / (permutations + 1)) if permutations else 0.0


# --- statistics ---------------------------------------------------------------------------------


def bh_adjust(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values), along the last axis: for the k-th
    smallest of n, min over j ≥ k of p_(j)·n/j, capped at 1. NaN stays NaN (not tested)."""
    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    flat = p.reshape(-1, p.shape[-1]) if p.ndim > 1 else p[None, :]
    res = out.reshape(-1, p.shape[-1]) if p.ndim > 1 else out[None, :]
    for row in range(flat.shape[0]):
        ok = ~np.isnan(flat[row])
        vals = flat[row][ok]
        n = vals.size
        if n == 0:
            continue
        order = np.argsort(vals, kind="stable")
        ranked = vals[order] * n / np.arange(1, n + 1)
        adj = np.minimum(np.minimum.accumulate(ranked[::-1])[::-1], 1.0)
        back = np.empty(n)
        back[order] = adj
        res[row][ok] = back
    return out


def gi_star_z(w: sparse.csr_matrix, y: np.ndarray) -> np.ndarray:
    """Gi* z-scores (Getis & Ord 1995, binary weights W including the cell itself) of every
    column of Y (cells × slices) at once:
    z_i = (Σ_j w_ij y_j - ȳ W_i) / (S √((n Σ_j w_ij² - W_i²) / (n - 1))), S the population
    standard deviation. A slice with no variance (all zero) gets z = 0."""
    y = np.asarray(y, dtype=float)
    vec = y.ndim == 1
    Y = y[:, None] if vec else y
    n = Y.shape[0]
    wi = np.asarray(w.sum(axis=1)).ravel()
    wi2 = np.asarray(w.multiply(w).sum(axis=1)).ravel()
    mean = Y.mean(axis=0)
    s = np.sqrt(np.maximum((Y ** 2).mean(axis=0) - mean ** 2, 0.0))
    den = np.sqrt(np.maximum((n * wi2 - wi ** 2) / (n - 1), 0.0))[:, None] * s[None, :]
    num = w @ Y - wi[:, None] * mean[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(den > 0, num / den, 0.0)
    return z[:, 0] if vec else z


def two_sided(z: np.ndarray) -> np.ndarray:
    return 2 * stats.norm.sf(np.abs(z))


@dataclass
class MannKendall:
    s: np.ndarray  # Kendall's S per series
    z: np.ndarray  # normal score with continuity and tie corrections
    p: np.ndarray  # two-sided p-value
    tau: np.ndarray  # S / (n(n-1)/2)


def mann_kendall(x: np.ndarray) -> MannKendall:
    """The Mann-Kendall trend test on every row of X (series × time), vectorised:
    S = Σ_{i<j} sign(x_j - x_i); Var(S) = [n(n-1)(2n+5) - Σ_t t(t-1)(2t+5)] / 18 over groups of
    t tied values; z = (S - sign S) / √Var (0 when S = 0); p = 2(1 - Φ(|z|))."""
    x = np.atleast_2d(np.asarray(x, dtype=float))
    m, n = x.shape
    s = np.zeros(m)
    for k in range(n - 1):
        s += np.sign(x[:, k + 1:] - x[:, k:k + 1]).sum(axis=1)
    # Ties: sizes of the groups of equal values in each sorted row.
    xs = np.sort(x, axis=1)
    same = np.zeros((m, n + 1), dtype=bool)
    same[:, 1:n] = np.isclose(xs[:, 1:], xs[:, :-1], rtol=0, atol=1e-12)
    tie = np.zeros(m)
    if same.any():
        # A run of k consecutive 'same' flags is a group of k + 1 equal values.
        pad = np.concatenate([np.zeros((m, 1), bool), same, np.zeros((m, 1), bool)], axis=1)
        d = np.diff(pad.astype(np.int8), axis=1)
        rows_s, starts = np.nonzero(d == 1)
        _, ends = np.nonzero(d == -1)
        t = (ends - starts + 1).astype(float)
        np.add.at(tie, rows_s, t * (t - 1) * (2 * t + 5))
    var = (n * (n - 1) * (2 * n + 5) - tie) / 18.0
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(var > 0, (s - np.sign(s)) / np.sqrt(var), 0.0)
    pairs = n * (n - 1) / 2
    return MannKendall(s=s, z=z, p=two_sided(z), tau=s / pairs if pairs else np.zeros(m))


def confidence_class(z: np.ndarray, p_adj: np.ndarray) -> np.ndarray:
    """Gi_Bin: +3/+2/+1 hot at 99/95/90 %, -3/-2/-1 cold, 0 not significant."""
    out = np.zeros(z.shape, dtype=np.int8)
    for level, (alpha, _) in zip((3, 2, 1), CONFIDENCE_LEVELS, strict=True):
        hit = (out == 0) & (p_adj < alpha)
        out[hit & (z > 0)] = level
        out[hit & (z < 0)] = -level
    return out


CLASS_NAMES = {3: "hot_99", 2: "hot_95", 1: "hot_90", 0: "not_significant",
               -1: "cold_90", -2: "cold_95", -3: "cold_99"}
# How every map draws the classes (the command map, the dashboard, the briefing): the desktop
# tools' diverging ramp, hot red, cold blue, deeper with confidence; not significant pale grey.
CLASS_COLORS = {"hot_99": "#d62f27", "hot_95": "#ed7551", "hot_90": "#fab984",
                "not_significant": "#eeeeee", "cold_90": "#abc7e0", "cold_95": "#7599c7",
                "cold_99": "#4575b5"}
CLASS_TITLES = {"hot_99": ("Điểm nóng, tin cậy 99 %", "Hot spot, 99 % confidence"),
                "hot_95": ("Điểm nóng, tin cậy 95 %", "Hot spot, 95 % confidence"),
                "hot_90": ("Điểm nóng, tin cậy 90 %", "Hot spot, 90 % confidence"),
                "not_significant": ("Không có ý nghĩa thống kê", "Not significant"),
                "cold_90": ("Điểm lạnh, tin cậy 90 %", "Cold spot, 90 % confidence"),
                "cold_95": ("Điểm lạnh, tin cậy 95 %", "Cold spot, 95 % confidence"),
                "cold_99": ("Điểm lạnh, tin cậy 99 %", "Cold spot, 99 % confidence")}
# The emerging categories' words (a category is `<word>_hot` or `<word>_cold`).
CATEGORY_WORDS: dict[str, tuple[str, str]] = {
    "new": ("mới", "new"), "consecutive": ("liên tiếp", "consecutive"),
    "intensifying": ("gia tăng", "intensifying"), "persistent": ("dai dẳng", "persistent"),
    "diminishing": ("suy giảm", "diminishing"), "sporadic": ("rải rác", "sporadic"),
    "oscillating": ("dao động", "oscillating"), "historical": ("trong quá khứ", "historical"),
}
# The emerging categories: hot ones in warm colours, cold ones in cool, persistent and
# intensifying the deepest, historical ones muted; `no_pattern` is not drawn.
CATEGORY_COLORS = {
    "new_hot": "#fee391", "consecutive_hot": "#fec44f", "intensifying_hot": "#d7301f",
    "persistent_hot": "#990000", "diminishing_hot": "#fc8d59", "sporadic_hot": "#fdbb84",
    "oscillating_hot": "#e7298a", "historical_hot": "#cc9999",
    "new_cold": "#c6dbef", "consecutive_cold": "#9ecae1", "intensifying_cold": "#2171b5",
    "persistent_cold": "#08306b", "diminishing_cold": "#6baed6", "sporadic_cold": "#deebf7",
    "oscillating_cold": "#807dba", "historical_cold": "#99aacc"}


# --- weights ------------------------------------------------------------------------------------


def neighbour_spacing(shape: str, size: float) -> float:
    """Largest centre distance between two cells sharing an edge or a corner."""
    return size * math.sqrt(3) if shape == "hexagon" else size * math.sqrt(2)


def grid_weights(x: np.ndarray, y: np.ndarray, shape: str, size: float) -> sparse.csr_matrix:
    """The same binary distance-band weights as grid_graph (the cell itself included), as a CSR
    matrix straight from a k-d tree on the cell centres.

    Why not the libpysal Graph: on 10,000 cells and more, building it through geopandas
    (GeoSeries of points, the adjacency table, assign_self_weight) took most of a Gi* request;
    the k-d tree pairs take a few milliseconds. tests/test_hotspots.py checks the matrices are
    equal and that Gi* on it equals esda's."""
    from scipy.spatial import cKDTree

    n = len(x)
    pts = np.column_stack([np.asarray(x, dtype=float), np.asarray(y, dtype=float)])
    pairs = cKDTree(pts).query_pairs(neighbour_spacing(shape, size) * 1.01, output_type="ndarray")
    diag = np.arange(n)
    rows = np.concatenate([pairs[:, 0], pairs[:, 1], diag])
    cols = np.concatenate([pairs[:, 1], pairs[:, 0], diag])
    w = sparse.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n, n))
    w.sort_indices()
    return w


def grid_graph(x: np.ndarray, y: np.ndarray, shape: str, size: float):  # -> libpysal Graph
    """Binary distance-band weights on cell centres, the cell itself included (Gi*), as the
    libpysal Graph esda takes (tests compare grid_weights and gi_star_z with it)."""
    import geopandas as gpd
    from libpysal.graph import Graph

    pts = gpd.GeoSeries(gpd.points_from_xy(x, y))
    g = Graph.build_distance_band(pts, neighbour_spacing(shape, size) * 1.01, binary=True)
    return g.assign_self_weight(1.0)


def graph_matrix(g, n: int) -> sparse.csr_matrix:  # noqa: ANN001 - libpysal Graph
    """The Graph as a CSR matrix in the cells' order (0..n-1)."""
    adj = g.adjacency.reset_index()
    cols = adj.columns
    focal = adj[cols[0]].to_numpy(int)
    nb = adj[cols[1]].to_numpy(int)
    wt = adj[cols[2]].to_numpy(float)
    keep = wt != 0
    return sparse.csr_matrix((wt[keep], (focal[keep], nb[keep])), shape=(n, n))


# --- the grid analysis --------------------------------------------------------------------------


class TooManyCells(ValueError):
    """The grid (or cube) would exceed the bound a request may ask for."""

    def __init__(self, cells: int, maximum: int, what: str = "cells") -> None:
        super().__init__(f"{cells} {what} over the maximum {maximum}")
        self.cells, self.maximum, self.what = cells, maximum, what


class TooMuchWork(ValueError):
    def __init__(self, work: int) -> None:
        super().__init__(f"cells × permutations = {work} over {MAX_PERMUTATION_WORK}")
        self.work = work


MAX_CELLS = 60_000
MAX_CUBE_BINS = 3_000_000


def estimated_cells(area: q.StudyArea, shape: str, size: float) -> int:
    """About how many cells cover AREA (area / cell area, plus the partial cells on a boundary)."""
    cell = q.cell_area_m2(shape, size)
    return int(area.area_m2 / cell * 1.05) + 1


@dataclass
class Grid:
    """Cells (GeoDataFrame: i, j, geometry in EPSG:4326, x/y centroid in the projected CRS) and the
    counts per cell and bin."""

    cells: Any  # geopandas.GeoDataFrame
    counts: np.ndarray  # cells × bins, int
    bins: q.Bins
    shape: str
    size: float
    area: q.StudyArea
    source: AreaCells | None = None  # the cached cells (their GeoJSON kept between requests)

    @property
    def geojson(self) -> list[str]:
        """Each cell's geometry as GeoJSON (EPSG:4326, 1e-6 degree precision)."""
        if self.source is None:
            self.source = AreaCells(self.cells, {})
        return self.source.geojson

    @property
    def n(self) -> int:
        return int(self.counts.shape[0])

    @property
    def totals(self) -> np.ndarray:
        return self.counts.sum(axis=1)


@dataclass
class AreaCells:
    """The cells of one grid over one study area, as every request on it needs them: the
    GeoDataFrame, the (i, j) → row index and each cell's GeoJSON geometry (built on first use).
    Shared between requests: read-only."""

    cells: Any  # geopandas.GeoDataFrame
    index: dict[tuple[int, int], int]
    _geojson: list[str] | None = None
    _lut: tuple[int, int, np.ndarray] | None = None

    def rows_of(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """The row of each cell (I, J) in the grid, -1 for a cell off it: a dense lookup table
        over the grid's index ranges (a few hundred by a few hundred), built on first use."""
        if self._lut is None:
            ii = self.cells["i"].to_numpy(np.int64)
            jj = self.cells["j"].to_numpy(np.int64)
            i0, j0 = (int(ii.min()), int(jj.min())) if ii.size else (0, 0)
            lut = np.full((int(ii.max()) - i0 + 1, int(jj.max()) - j0 + 1) if ii.size else (0, 0),
                          -1, dtype=np.int64)
            lut[ii - i0, jj - j0] = np.arange(ii.size)
            self._lut = (i0, j0, lut)
        i0, j0, lut = self._lut
        a, b = np.asarray(i, np.int64) - i0, np.asarray(j, np.int64) - j0
        inside = (a >= 0) & (a < lut.shape[0]) & (b >= 0) & (b < lut.shape[1])
        out = np.full(a.shape, -1, dtype=np.int64)
        out[inside] = lut[a[inside], b[inside]]
        return out

    @property
    def geojson(self) -> list[str]:
        if self._geojson is None:
            import shapely

            geoms = shapely.set_precision(self.cells.geometry.to_numpy(), 1e-6)
            self._geojson = list(shapely.to_geojson(geoms))
        return self._geojson


# The grid over an area depends only on the area's boundary and the grid (shape, size, CRS), not
# on the filters: generating it (ST_HexagonGrid over the province, ST_Intersects with the
# boundary, each cell to EPSG:4326) took 0.4-0.9 s of a Gi* request at 10,000 cells, every time.
# Kept per process, keyed by the database, the boundary's digest (StudyArea.version) and the
# grid; bounded by the cells held (about 0.5 kB each with its GeoJSON), oldest dropped first.
CELL_CACHE_MAX = 250_000
_cell_cache: OrderedDict[tuple[Any, ...], AreaCells] = OrderedDict()
_cell_cache_lock = threading.Lock()


def area_cells(conn: psycopg.Connection, srid: int, area: q.StudyArea, shape: str,
               size: float) -> AreaCells:
    """The grid's cells over AREA, from the process's cache when the boundary is unchanged."""
    import geopandas as gpd
    import shapely

    info = conn.info
    key = (info.host, info.port, info.dbname, srid, area.id, area.version, shape, float(size))
    with _cell_cache_lock:
        hit = _cell_cache.get(key)
        if hit is not None:
            _cell_cache.move_to_end(key)
            return hit
    cells = q.grid_cells(conn, srid, area.id, shape, size)
    gdf = gpd.GeoDataFrame({"i": cells.i, "j": cells.j, "x": cells.x, "y": cells.y},
                           geometry=shapely.from_wkb(cells.wkb), crs="EPSG:4326")
    index = {(int(a), int(b)): k for k, (a, b) in enumerate(zip(cells.i, cells.j, strict=True))}
    entry = AreaCells(gdf, index)
    if area.version and len(index) <= CELL_CACHE_MAX:
        with _cell_cache_lock:
            _cell_cache[key] = entry
            while sum(len(e.index) for e in _cell_cache.values()) > CELL_CACHE_MAX:
                _cell_cache.popitem(last=False)
    return entry


def load_grid(conn: psycopg.Connection, f: IncidentFilter, restrict: sql.Composable | None,
              srid: int, area: q.StudyArea, shape: str, size: float, bin_kind: str,
              max_cells: int = MAX_CELLS) -> Grid:
    est = estimated_cells(area, shape, size)
    if est > max_cells * 1.2:  # refuse before generating a huge grid
        raise TooManyCells(est, max_cells)
    cells = area_cells(conn, srid, area, shape, size)
    if len(cells.index) > max_cells:
        raise TooManyCells(len(cells.index), max_cells)
    bins = q.bins_for(bin_kind, f.start, f.end)
    counts = np.zeros((len(cells.index), bins.count), dtype=np.int64)
    # On the Dask cluster when one is configured (gis/analysis/distributed.py), else in SQL.
    rows = distributed.cube_counts(conn, f, restrict, srid, area.id, shape, size, bins)
    if rows is None:
        rows = q.cube_counts(conn, f, restrict, srid, area.id, shape, size, bins)
    if rows:
        a = np.asarray(rows, dtype=np.int64)  # (i, j, bin, count) per row
        k = cells.rows_of(a[:, 0], a[:, 1])
        keep = (k >= 0) & (a[:, 2] >= 0) & (a[:, 2] < bins.count)  # cells off the grid dropped
        np.add.at(counts, (k[keep], a[keep, 2]), a[keep, 3])
    return Grid(cells.cells, counts, bins, shape, size, area, cells)


@dataclass
class HotSpots:
    z: np.ndarray
    p: np.ndarray
    p_fdr: np.ndarray
    gi_bin: np.ndarray
    permutations: int
    trend: MannKendall
    summary: dict[str, int] = field(default_factory=dict)


def gi_star(y: np.ndarray, g, permutations: int = 0):  # noqa: ANN001 - libpysal Graph
    """esda's G_Local, Gi* with binary weights, seeded permutations when PERMUTATIONS > 0."""
    import esda

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba missing: esda warns it falls back to numpy
        return esda.G_Local(np.asarray(y, dtype=float), g, transform="B", star=True,
                            permutations=permutations, keep_simulations=False, n_jobs=1,
                            seed=PERMUTATION_SEED)


def _draws(rng: np.random.Generator, rows: int, population: int, k: int) -> np.ndarray:
    """ROWS draws of K distinct indices from range(POPULATION), each uniformly over the ordered
    K-tuples: independent integers, the rows with a repeat drawn again (on a grid of thousands of
    cells and 6-8 neighbours a repeat is rare, and rejection keeps the draw exactly uniform over
    distinct tuples). A small population, where repeats are common, takes the first K of a
    random permutation instead."""
    if k == 0:
        return np.zeros((rows, 0), dtype=np.int64)
    if population < 4 * k * k:
        return np.argsort(rng.random((rows, population)), axis=1)[:, :k]
    d = rng.integers(0, population, size=(rows, k))
    while True:
        srt = np.sort(d, axis=1)
        bad = (srt[:, 1:] == srt[:, :-1]).any(axis=1)
        if not bad.any():
            return d
        d[bad] = rng.integers(0, population, size=(int(bad.sum()), k))


def permutation_p(y: np.ndarray, w: sparse.csr_matrix, permutations: int,
                  seed: int = PERMUTATION_SEED, chunk: int = 2_000) -> np.ndarray:
    """Two-sided conditional-permutation p-values of Gi* (binary weights with self): each cell
    keeps its value, its k neighbours are drawn at random from the other cells, P times;
    p = min(1, 2·min(#(S ≥ s) + 1, #(S ≤ s) + 1) / (P + 1)), S the permuted local sums.

    Not esda's p_sim: esda counts a tie as "larger" and then folds, so a cell whose
    neighbourhood is all zeros (every permuted sum ties with it) gets the smallest p there is and
    shows as a 99 % cold spot. Counting ties on both sides gives such a cell p = 1.

    How, without a loop over cells (10,000 cells × 999 permutations in tens of milliseconds):
    as esda's conditional randomisation, one draw serves every cell. Each permutation draws an
    ordered tuple of kmax + 1 distinct cells; a cell with k neighbours takes the first k of them
    that are not itself, which is a uniform k-subset of the other cells. For the cells not among
    a permutation's first k, the neighbour sum is the same prefix sum, so each group of cells with
    the same k is counted against the sorted prefix sums by binary search; the few (cell,
    permutation) pairs where the cell drew itself are then corrected one by one."""
    y = np.asarray(y, dtype=float)
    n = y.size
    rng = np.random.default_rng(seed)
    w = w.tocsr()
    k = np.diff(w.indptr) - (w.diagonal() != 0)  # neighbours without the cell itself
    obs = w @ y
    kmax = int(k.max()) if n else 0
    ge = np.zeros(n)
    le = np.zeros(n)
    # S ≥ obs - y_i (ties within 1e-9 count on both sides), S the neighbours' sum
    hi = obs - y - 1e-9
    lo = obs - y + 1e-9
    groups = [(kv, np.flatnonzero(k == kv)) for kv in np.unique(k)]
    done = 0
    while done < permutations:
        c = min(chunk, permutations - done)
        draws = _draws(rng, c, n, kmax + 1)
        prefix = np.zeros((c, kmax + 2))
        np.cumsum(y[draws], axis=1, out=prefix[:, 1:])
        for kv, cells in groups:
            sums = np.sort(prefix[:, kv])
            ge[cells] += c - np.searchsorted(sums, hi[cells], side="left")
            le[cells] += np.searchsorted(sums, lo[cells], side="right")
        for j in range(kmax):
            cell = draws[:, j]
            hit = j < k[cell]  # the cell drew itself among its first k
            if not hit.any():
                continue
            rows, cell = np.flatnonzero(hit), cell[hit]
            wrong = prefix[rows, k[cell]]
            right = prefix[rows, k[cell] + 1] - y[cell]
            np.add.at(ge, cell, (right >= hi[cell]).astype(float) - (wrong >= hi[cell]))
            np.add.at(le, cell, (right <= lo[cell]).astype(float) - (wrong <= lo[cell]))
        done += c
    return np.minimum(1.0, 2 * np.minimum(ge + 1, le + 1) / (permutations + 1))


def hot_spots(grid: Grid, permutations: int | None = None) -> HotSpots:
    """Gi* on the grid's total counts, p-values by the rule above, BH-adjusted, classed."""
    n = grid.n
    perms = p_value_method(n, permutations)
    if perms and n * perms > MAX_PERMUTATION_WORK:
        raise TooMuchWork(n * perms)
    y = grid.totals.astype(float)
    trend = mann_kendall(grid.counts) if grid.bins.count >= 3 else MannKendall(
        np.zeros(n), np.zeros(n), np.ones(n), np.zeros(n))
    if n < 3 or y.sum() == 0 or np.all(y == y[0]):
        z = np.zeros(n)
        p = np.ones(n)
    else:
        w = grid_weights(grid.cells["x"].to_numpy(), grid.cells["y"].to_numpy(), grid.shape,
                         grid.size)
        z = gi_star_z(w, y)  # esda's G_Local(star=True, transform="B").Zs: tests check
        p = permutation_p(y, w, perms) if perms else two_sided(z)
    p_fdr = bh_adjust(p)
    gi_bin = confidence_class(z, p_fdr)
    summary = {CLASS_NAMES[k]: int((gi_bin == k).sum()) for k in CLASS_NAMES}
    return HotSpots(z, p, p_fdr, gi_bin, perms, trend, summary)


# --- emerging hot spots -------------------------------------------------------------------------

CATEGORIES = ("new", "consecutive", "intensifying", "persistent", "diminishing", "sporadic",
              "oscillating", "historical")
MIN_BINS = 10  # the desktop tool needs at least ten time steps for a meaningful trend


def classify(z: np.ndarray, sig: np.ndarray, trend_z: np.ndarray, trend_p: np.ndarray,
             alpha: float = 0.05) -> list[str]:
    """ESRI's Emerging Hot Spot Analysis patterns for each cell (row), from its per-bin Gi*
    z-scores Z, significance SIG (FDR-adjusted p < alpha) and the Mann-Kendall trend of its
    z-scores (TREND_Z, TREND_P). Hot bins: significant with z > 0; cold bins: z < 0. The
    definitions (evaluated in this order, the first that holds wins; cold spots mirror them):

    - new: hot in the final bin and never hot before.
    - consecutive: a single uninterrupted run of at least two hot bins ending in the final bin,
      never hot before that run, and under 90 % of all bins hot.
    - intensifying: hot in at least 90 % of the bins, including the final one, and the intensity
      of clustering (z) increases significantly (Mann-Kendall p < alpha, trend up).
    - persistent: hot in at least 90 % of the bins, including the final one, with no significant
      trend in the intensity of clustering.
    - diminishing: hot in at least 90 % of the bins, including the final one, and the intensity of
      clustering decreases significantly.
    - sporadic: hot in the final bin, on-again off-again before (under 90 % of the bins hot), and
      never a significant cold spot.
    - oscillating: hot in the final bin, a significant cold spot in some earlier bin, and under
      90 % of the bins hot.
    - historical: not hot in the final bin, but hot in at least 90 % of the bins.

    ESRI's persistent hot spot does not say "including the final bin"; here it does, so that a
    location hot for 90 % of the time but not now reads as historical, as ESRI describes that
    one ("the most recent time period is not hot"). Anything else: `no_pattern`."""
    z = np.atleast_2d(z)
    sig = np.atleast_2d(sig)
    out: list[str] = []
    for k in range(z.shape[0]):
        cat = _pattern(z[k] > 0, sig[k], float(trend_z[k]), float(trend_p[k]), alpha, "hot")
        if cat is None:
            cat = _pattern(z[k] < 0, sig[k], -float(trend_z[k]), float(trend_p[k]), alpha, "cold")
        out.append(cat or "no_pattern")
    return out


def _pattern(pos: np.ndarray, sig: np.ndarray, up: float, trend_p: float, alpha: float,
             kind: str) -> str | None:
    """The hot pattern (or, with signs flipped by the caller, the cold one) or None."""
    n = pos.size
    hot = pos & sig
    cold = (~pos) & sig
    share = hot.sum() / n
    final = bool(hot[-1])
    if final:
        before = hot[:-1]
        if not before.any():
            return f"new_{kind}"
        run = n - (np.flatnonzero(~hot)[-1] + 1 if (~hot).any() else 0)
        if run >= 2 and not hot[:n - run].any() and share < 0.9:
            return f"consecutive_{kind}"
        if share >= 0.9:
            if trend_p < alpha and up > 0:
                return f"intensifying_{kind}"
            if trend_p < alpha and up < 0:
                return f"diminishing_{kind}"
            return f"persistent_{kind}"
        if not cold.any():
            return f"sporadic_{kind}"
        return f"oscillating_{kind}"
    if share >= 0.9:
        return f"historical_{kind}"
    return None


@dataclass
class Emerging:
    z: np.ndarray  # cells × bins Gi* z
    p_fdr: np.ndarray  # cells × bins
    trend: MannKendall  # of each cell's z series
    categories: list[str]
    alpha: float
    summary: dict[str, int] = field(default_factory=dict)


def emerging(grid: Grid, alpha: float = 0.05) -> Emerging:
    """Per-slice Gi* (vectorised, the same z as esda's: tests check), BH per slice, Mann-Kendall
    on each cell's z series, ESRI categories."""
    n, t = grid.counts.shape
    if n < 3:
        z = np.zeros((n, t))
    else:
        w = grid_weights(grid.cells["x"].to_numpy(), grid.cells["y"].to_numpy(), grid.shape,
                         grid.size)
        z = gi_star_z(w, grid.counts.astype(float))
    p = two_sided(z)
    p_fdr = bh_adjust(p.T).T  # per time slice
    sig = p_fdr < alpha
    trend = mann_kendall(z)
    cats = classify(z, sig, trend.z, trend.p, alpha)
    summary: dict[str, int] = {}
    for c in cats:
        summary[c] = summary.get(c, 0) + 1
    return Emerging(z, p_fdr, trend, cats, alpha, summary)


def window_day(end: dt.datetime) -> dt.date:
    """The day the study area's boundary is taken on: the window's last day (Vietnam time)."""
    return (end - dt.timedelta(microseconds=1)).astimezone(VN_TZ).date()
