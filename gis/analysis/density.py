"""Honest incident maps: kernel density in incidents per km² on a fixed scale, counts on a grid of
hexagons or squares, rates per commune, and change between two windows.

Why this module exists next to incidents.heatmap: that heatmap counts screen-sized Web Mercator
cells and the browser rescales its colours to each view's busiest cell, so two maps cannot be
compared and the colours mean "relatively many here". Everything here is measured on the ground
in the province's VN-2000 TM-3 CRS (metres) and reported in units a leader can quote:

- kernel density estimate (KDE): incidents are counted per raster cell in PostGIS (one row per
  non-empty cell), then spread by a quartic (biweight) or Gaussian kernel of a bandwidth in
  metres as one FFT convolution in scipy. The discrete kernel is normalised to sum 1, so the
  surface's integral (sum of density × cell area) equals the number of incidents counted: the
  raster is padded by the kernel's reach and nothing spills over its edge.
- fixed scale: the colour classes are fractions of a reference maximum, not of the view's. The
  reference (REFERENCE_DAYS) is the largest density of the same filters, province-wide, over the
  365 Vietnam-time days before today, prorated to the requested window's length (a 30-day window
  is compared with 30/365 of a year's peak, so equal windows share one scale, and a month's map
  has the colours of a typical month) and rounded up to a "nice" number (1, 2, 2.5 or 5 × 10^k),
  so the legend does not twitch from one day to the next. `scale=view` uses the raster's own
  maximum; an explicit `vmax` is taken as given.
- grid counts, rates per commune and change: see density_sql (the cell arithmetic) and below.

Numbers leave as aggregates: counts per cell or unit. Each function takes the caller's row
restriction (layers.access.row_filter), so a security event an operator may not open is in no
cell, unit, class break or reference maximum.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from gis import db
from gis.analysis import aggregates, cell_months, distributed, hex_months
from gis.analysis import density_sql as q
from gis.analysis.incidents import IncidentFilter, vn_day_start, vn_today
from gis.fmt import VN_TZ
from gis.settings import get_settings
from layers.crs import WGS84, transformer

KERNELS = ("quartic", "gaussian")
SCALES = ("fixed", "view")
REFERENCE_DAYS = 365
# At most this many raster cells (about 2,000 × 2,000): beyond it the answer is tens of
# megabytes and the caller wants a coarser cell.
MAX_CELLS = 4_000_000
# Legend classes: fractions of vmax where each colour starts; below the first, transparent.
CLASS_FRACTIONS = (0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.7, 0.85)
# ColorBrewer YlOrRd, 8 classes (light = few, dark = many), one per fraction above.
RAMP = ("#ffffb2", "#fed976", "#feb24c", "#fd8d3c", "#fc4e2a", "#e31a1c", "#bd0026", "#800026")
UNIT = {"vi": "sự cố/km²", "en": "incidents/km²"}
NODATA = -1.0


def srid() -> int:
    return get_settings().province_srid


def fetch(conn: psycopg.Connection, query: sql.Composed, params: list,
          one: bool = False, binary: bool = False) -> Any:
    """Run one of density_sql's queries as db.grouping does (their estimates, a projection per
    point, passed jit_above_cost: compiling took 2.6 s for a query that runs in 60 ms).
    BINARY: results in PostgreSQL's binary format (integer arrays: a year's 77,000 raster
    cells parsed in ~50 ms instead of ~200 ms as text)."""
    with db.grouping(conn):
        cur = conn.cursor(binary=binary).execute(query, params)
        return cur.fetchone() if one else cur.fetchall()


# --- the kernel ---------------------------------------------------------------------------------


def kernel(name: str, bandwidth: float, cell: float) -> np.ndarray:
    """The discrete kernel on cells of CELL metres, normalised to sum 1 (mass conserved).

    Quartic: K(d) ∝ (1 - d²/h²)² for d < h, the kernel of ArcGIS's and QGIS's heatmap tools;
    Gaussian: σ = bandwidth, cut at 3σ. A bandwidth under half a cell is a single cell."""
    reach = bandwidth if name == "quartic" else 3 * bandwidth
    r = int(math.floor(reach / cell))
    off = np.arange(-r, r + 1, dtype=np.float64) * cell
    d2 = off[None, :] ** 2 + off[:, None] ** 2
    if name == "quartic":
        k = np.where(d2 < bandwidth ** 2, (1 - d2 / bandwidth ** 2) ** 2, 0.0)
    elif name == "gaussian":
        k = np.where(d2 <= reach ** 2, np.exp(-d2 / (2 * bandwidth ** 2)), 0.0)
    else:
        raise ValueError(f"unknown kernel {name!r}")
    total = k.sum()
    if total <= 0:  # bandwidth below half a cell: all of it in the point's cell
        return np.ones((1, 1))
    return k / total


def reach_cells(name: str, bandwidth: float, cell: float) -> int:
    return kernel(name, bandwidth, cell).shape[0] // 2


# --- the grid -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grid:
    """A raster grid in the province CRS: lower-left ORIGIN, square cells of CELL metres,
    SHAPE (rows, columns); row 0 of an array on it is the southern row (flip for a GeoTIFF)."""

    srid: int
    origin: tuple[float, float]
    cell: float
    shape: tuple[int, int]

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        ny, nx = self.shape
        x0, y0 = self.origin
        return x0, y0, x0 + nx * self.cell, y0 + ny * self.cell

    @property
    def cell_km2(self) -> float:
        return self.cell * self.cell / 1e6

    def lonlat_bounds(self, pad: float = 0.0) -> tuple[float, float, float, float]:
        x1, y1, x2, y2 = self.bounds
        a, b, c, d = transformer(self.srid, WGS84).transform_bounds(
            x1 - pad, y1 - pad, x2 + pad, y2 + pad, densify_pts=21)
        return float(a), float(b), float(c), float(d)


def snap_grid(box: tuple[float, float, float, float], cell: float, pad_cells: int,
              srid_: int) -> Grid:
    """The grid covering BOX (projected) widened by PAD_CELLS cells, its origin on a multiple of
    CELL: two requests with the same cell size share cells, whatever their view."""
    x1, y1, x2, y2 = box
    gx1 = math.floor(x1 / cell) - pad_cells
    gy1 = math.floor(y1 / cell) - pad_cells
    gx2 = math.ceil(x2 / cell) + pad_cells
    gy2 = math.ceil(y2 / cell) + pad_cells
    return Grid(srid_, (gx1 * cell, gy1 * cell), cell, (gy2 - gy1, gx2 - gx1))


class TooManyCells(ValueError):
    def __init__(self, cells: int) -> None:
        super().__init__(f"{cells:,} cells; at most {MAX_CELLS:,}: choose a larger cell size")
        self.cells = cells


def _box(conn: psycopg.Connection, query: tuple[sql.Composed, list]
         ) -> tuple[float, float, float, float] | None:
    row = conn.execute(*query).fetchone()
    if row is None or row[0] is None:
        return None
    return float(row[0]), float(row[1]), float(row[2]), float(row[3])


def province_box(conn: psycopg.Connection, srid_: int) -> tuple[float, float, float, float]:
    box = _box(conn, q.extent(srid_, vn_today()))
    if box is None:
        raise LookupError("no administrative units: load the province first")
    return box


def study_box(conn: psycopg.Connection, f: IncidentFilter, srid_: int
              ) -> tuple[float, float, float, float]:
    """What a density surface covers: the unit of F if any, else the province; cut to F's bbox."""
    box = _box(conn, q.unit_extent(srid_, f.unit.id)) if f.unit is not None else None
    box = box or province_box(conn, srid_)
    if f.bbox is not None:
        bx = transformer(WGS84, srid_).transform_bounds(*f.bbox, densify_pts=21)
        box = (max(box[0], bx[0]), max(box[1], bx[1]), min(box[2], bx[2]), min(box[3], bx[3]))
        if box[0] >= box[2] or box[1] >= box[3]:  # the view is off the province: a sliver
            box = (bx[0], bx[1], bx[0] + 1, bx[1] + 1)
    return box


# --- kernel density --------------------------------------------------------------------------------


@dataclass
class Density:
    grid: Grid
    values: np.ndarray  # incidents per km², row 0 south
    counted: int  # incidents binned on the grid
    kernel: str
    bandwidth: float

    @property
    def mass(self) -> float:
        """The integral of the surface: incidents (≈ counted)."""
        return float(self.values.sum() * self.grid.cell_km2)

    @property
    def max(self) -> float:
        return float(self.values.max()) if self.values.size else 0.0


def raster_days(conn: psycopg.Connection, f: IncidentFilter, restrict: sql.Composable | None,
                grid: Grid) -> tuple[dt.date, dt.date] | None:
    """The whole Vietnam-time days of F that counts_on reads from the pre-aggregates on GRID,
    or None when they cannot answer it exactly (then every row is read raw)."""
    base = aggregates.base_grid(conn)
    if base is None or base.srid != grid.srid or f.bbox is not None:
        return None
    on_base = all(aggregates.multiple(abs(v) or base.cell, base.cell) is not None
                  for v in (grid.cell, *grid.origin))
    if not on_base or not aggregates.filter_ok(conn, f, restrict):
        return None
    return aggregates.whole_days(f)


def square_days(conn: psycopg.Connection, f: IncidentFilter, restrict: sql.Composable | None,
                shape: str, size: float) -> tuple[dt.date, dt.date] | None:
    """Likewise for grid_counts: squares of a multiple of the base cell only."""
    base = aggregates.base_grid(conn)
    if (shape != "square" or base is None or base.srid != srid()
            or aggregates.multiple(size, base.cell) is None
            or not aggregates.filter_ok(conn, f, restrict)):
        return None
    return aggregates.whole_days(f)


def counts_on(conn: psycopg.Connection, f: IncidentFilter, restrict: sql.Composable | None,
              grid: Grid, *, use_aggregates: bool | None = None) -> np.ndarray:
    """Incidents per cell of GRID (row 0 south), counted in PostGIS. The bbox of F is not a
    condition here: a point just outside the view still spreads density into it.

    From the pre-aggregates when they can answer exactly (aggregates.py: no unit filter, the
    caller's row rule, a cell a multiple of the base cell) and are cheaper than the raw rows
    (aggregates.pays): the window's whole months from incident_cell_months (filters on the
    category only), else its whole days from incident_cell_days, the rest raw; else every row
    raw, its stored projection. USE_AGGREGATES=True reads them whenever they are exact, False
    never (tests compare the two)."""
    if (on_dask := distributed.raster_counts(conn, f, restrict, grid)) is not None:
        return on_dask  # counted on the Dask cluster (settings.dask_scheduler)
    lonlat = grid.lonlat_bounds(pad=grid.cell)
    f = replace(f, bbox=None)
    base = aggregates.base_grid(conn)
    days = raster_days(conn, f, restrict, grid) if use_aggregates is not False else None
    cut = cell_months.plan(conn, f, restrict, use_aggregates) if days is not None else None
    if base is not None and cut is not None:
        query, params = cell_months.raster_counts(
            restrict, cut, cell_months.counted(conn, f, restrict), grid.origin, grid.cell,
            grid.shape, lonlat, base.cell)
    elif base is not None and days is not None and (use_aggregates or aggregates.pays(conn)):
        query, params = q.raster_counts_agg(f, restrict, grid.origin, grid.cell, grid.shape,
                                            lonlat, base.cell, days)
    else:
        query, params = q.raster_counts(f, restrict, grid.srid, grid.origin, grid.cell,
                                        grid.shape, lonlat,
                                        stored_srid=base.srid if base else None)
    ix, iy, n = fetch(conn, query, params, one=True, binary=True) or ([], [], [])
    counts = np.zeros(grid.shape, dtype=np.float64)
    ix_, iy_ = np.asarray(ix, dtype=np.intp), np.asarray(iy, dtype=np.intp)
    inside = (ix_ >= 0) & (ix_ < grid.shape[1]) & (iy_ >= 0) & (iy_ < grid.shape[0])
    counts[iy_[inside], ix_[inside]] = np.asarray(n, dtype=np.float64)[inside]
    return counts


def fft_convolve_same(a: np.ndarray, k: np.ndarray) -> np.ndarray:
    """A convolved with K, the size of A (scipy.signal.fftconvolve's mode "same"), with numpy's
    FFT: scipy.signal took 2-4 s to import in the first density request of a process."""
    shape = (a.shape[0] + k.shape[0] - 1, a.shape[1] + k.shape[1] - 1)
    # Sizes of small primes factors keep the transform fast whatever the raster's size.
    fast = tuple(_fast_len(n) for n in shape)
    full = np.fft.irfft2(np.fft.rfft2(a, fast) * np.fft.rfft2(k, fast), fast)
    y0, x0 = (k.shape[0] - 1) // 2, (k.shape[1] - 1) // 2
    return full[y0:y0 + a.shape[0], x0:x0 + a.shape[1]]


def _fast_len(n: int) -> int:
    """The smallest 2^a 3^b 5^c at least N."""
    best = 1 << max(n - 1, 0).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


def smooth(counts: np.ndarray, k: np.ndarray, cell_km2: float) -> np.ndarray:
    """Counts spread by kernel K, in incidents per km² (FFT convolution; round-off below a
    millionth of the peak is zero)."""
    if k.shape == (1, 1):
        return counts / cell_km2
    out = fft_convolve_same(counts, k)
    peak = float(out.max()) if out.size else 0.0
    out[out < peak * 1e-9] = 0.0
    return out / cell_km2


def kde(conn: psycopg.Connection, f: IncidentFilter, restrict: sql.Composable | None, *,
        bandwidth: float, cell: float, kernel_name: str = "quartic",
        box: tuple[float, float, float, float] | None = None, min_count: int = 0) -> Density:
    """The kernel density of the incidents matching F over BOX (projected; default study_box),
    padded by the kernel's reach.

    MIN_COUNT (small-count suppression for the public): raster cells holding fewer incidents
    are emptied *before* the kernel spreads them, so the surface is the density of the
    published cells only and its mass is their sum. Blanking the smoothed surface where a cell
    is small instead would leave a ring of density around a hole that points at the incident;
    spreading only counts of 3 or more leaves no trace of an isolated one."""
    srid_ = srid()
    k = kernel(kernel_name, bandwidth, cell)
    grid = snap_grid(box or study_box(conn, f, srid_), cell, k.shape[0] // 2, srid_)
    cells = grid.shape[0] * grid.shape[1]
    if cells > MAX_CELLS:
        raise TooManyCells(cells)
    counts = counts_on(conn, f, restrict, grid)
    if min_count > 0:
        counts[(counts > 0) & (counts < min_count)] = 0.0
    return Density(grid, smooth(counts, k, grid.cell_km2), int(counts.sum()), kernel_name,
                   bandwidth)


# --- the scale --------------------------------------------------------------------------------------


def nice_ceil(v: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10^k not below V (V > 0)."""
    if v <= 0 or not math.isfinite(v):
        return 1.0
    e = math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        c = m * 10.0 ** e
        if c >= v * (1 - 1e-12):
            return float(f"{c:.12g}")
    return 10.0 ** (e + 1)


def _sig(v: float) -> float:
    """Three significant digits: what a legend prints."""
    return float(f"{v:.3g}")


@dataclass
class Scale:
    mode: str  # fixed | view | explicit
    vmax: float
    reference: dict[str, Any] = field(default_factory=dict)

    @property
    def breaks(self) -> list[float]:
        """Class lower bounds (one per colour) and vmax last."""
        return [_sig(self.vmax * p) for p in CLASS_FRACTIONS] + [_sig(self.vmax)]

    def legend(self) -> dict[str, Any]:
        return {"unit": UNIT, "scale": self.mode, "vmax": self.vmax, "breaks": self.breaks,
                "colors": list(RAMP), "reference": self.reference,
                "note": {"vi": "Màu theo mật độ tuyệt đối; ô dưới mức đầu để trống",
                         "en": "Colours by absolute density; cells below the first break are left "
                               "clear"}}


def _reference_window(today: dt.date) -> tuple[dt.datetime, dt.datetime]:
    end = vn_day_start(today)
    return end - dt.timedelta(days=REFERENCE_DAYS), end


_REFERENCE: dict[tuple, float] = {}
_REFERENCE_MAX_ENTRIES = 256


def reference_max(conn: psycopg.Connection, f: IncidentFilter, restrict: sql.Composable | None,
                  bandwidth: float, cell: float, kernel_name: str,
                  min_count: int = 0) -> tuple[float, dict[str, Any]]:
    """The peak density of F's other filters, province-wide, over the reference year (cached per
    day, filters, kernel and the caller's row restriction)."""
    today = vn_today()
    start, end = _reference_window(today)
    ref = replace(f, start=start, end=end, bbox=None, unit=None)
    restrict_text = restrict.as_string(conn) if restrict is not None else ""
    key = (today, ref.categories, ref.severities, ref.statuses, ref.sources, restrict_text,
           bandwidth, cell, kernel_name, min_count)
    if key not in _REFERENCE:
        d = kde(conn, ref, restrict, bandwidth=bandwidth, cell=cell, kernel_name=kernel_name,
                box=province_box(conn, srid()), min_count=min_count)
        if len(_REFERENCE) >= _REFERENCE_MAX_ENTRIES:
            _REFERENCE.clear()
        _REFERENCE[key] = d.max
    return _REFERENCE[key], {"start": start.isoformat(), "end": end.isoformat(),
                             "days": REFERENCE_DAYS, "max": _sig(_REFERENCE[key])}


def scale_for(conn: psycopg.Connection, f: IncidentFilter, restrict: sql.Composable | None,
              d: Density, mode: str, vmax: float | None, min_count: int = 0) -> Scale:
    if vmax is not None:
        return Scale("explicit", vmax)
    if mode == "view":
        return Scale("view", nice_ceil(d.max) if d.max > 0 else 1.0)
    peak, ref = reference_max(conn, f, restrict, d.bandwidth, d.grid.cell, d.kernel, min_count)
    ratio = f.length.total_seconds() / (REFERENCE_DAYS * 86400)
    ref["window_ratio"] = round(ratio, 6)
    return Scale("fixed", nice_ceil(peak * ratio) if peak > 0 else 1.0, ref)


def classify(values: np.ndarray, breaks: list[float]) -> np.ndarray:
    """Class index per cell: 0 = below the first break (clear), 1..n the colours."""
    return np.digitize(values, np.asarray(breaks[:-1]), right=False).astype(np.uint8)


# --- images and rasters ------------------------------------------------------------------------------


def _rasterio_crs(srid_: int) -> Any:
    from rasterio.crs import CRS

    return CRS.from_epsg(srid_)


def _transform(grid: Grid) -> Any:
    from rasterio.transform import from_origin

    x1, _, _, y2 = grid.bounds
    return from_origin(x1, y2, grid.cell, grid.cell)


@dataclass
class Overlay:
    png: bytes
    bounds: tuple[float, float, float, float]  # lon/lat west, south, east, north (of the image)


def overlay_png(d: Density, breaks: list[float], opacity: int = 190) -> Overlay:
    """The classified surface warped to Web Mercator as an RGBA PNG, for a map image overlay
    (Leaflet stretches an image linearly in Mercator; warping the class index with nearest
    neighbour keeps every pixel one of the legend's colours)."""
    from PIL import Image
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    classes = classify(d.values, breaks)[::-1]  # row 0 north
    ny, nx = classes.shape
    x1, y1, x2, y2 = d.grid.bounds
    src_crs = _rasterio_crs(d.grid.srid)
    dst_crs = _rasterio_crs(3857)
    dst_transform, width, height = calculate_default_transform(
        src_crs, dst_crs, nx, ny, left=x1, bottom=y1, right=x2, top=y2)
    out = np.zeros((height, width), dtype=np.uint8)
    reproject(classes, out, src_transform=_transform(d.grid), src_crs=src_crs,
              dst_transform=dst_transform, dst_crs=dst_crs, resampling=Resampling.nearest,
              src_nodata=None, dst_nodata=0)
    palette = np.zeros((len(RAMP) + 1, 4), dtype=np.uint8)
    for i, color in enumerate(RAMP, start=1):
        palette[i] = (int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16), opacity)
    rgba = palette[out]
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, "PNG", optimize=False, compress_level=6)
    west, north = dst_transform.c, dst_transform.f
    east, south = west + dst_transform.a * width, north + dst_transform.e * height
    lon1, lat1 = transformer(3857, WGS84).transform(west, south)
    lon2, lat2 = transformer(3857, WGS84).transform(east, north)
    return Overlay(buf.getvalue(), (float(lon1), float(lat1), float(lon2), float(lat2)))


def cog_bytes(d: Density, *, description: str = "incidents per km²",
              tags: dict[str, str] | None = None, blocksize: int = 256) -> bytes:
    """The surface as a Cloud-Optimized GeoTIFF (float32, incidents/km², the province's projected
    CRS, DEFLATE, internal overviews averaged, tiles of BLOCKSIZE), written with rasterio
    through GDAL's COG driver, which lays out the header, the overviews and the tiles in the
    order COG readers expect."""
    import rasterio
    from rasterio.shutil import copy as rio_copy

    values = d.values[::-1].astype(np.float32)  # row 0 north
    with tempfile.TemporaryDirectory(prefix="geoioc-cog-") as tmp:
        src_path, dst_path = Path(tmp, "src.tif"), Path(tmp, "density.tif")
        with rasterio.open(src_path, "w", driver="GTiff", width=values.shape[1],
                           height=values.shape[0], count=1, dtype="float32",
                           crs=_rasterio_crs(d.grid.srid), transform=_transform(d.grid),
                           nodata=NODATA) as dst:
            dst.write(values, 1)
            dst.set_band_description(1, description)
            dst.update_tags(1, UNIT="incidents/km2")
            dst.update_tags(**(tags or {}))
        rio_copy(str(src_path), str(dst_path), driver="COG", COMPRESS="DEFLATE",
                 PREDICTOR="YES", BLOCKSIZE=str(blocksize), OVERVIEWS="AUTO",
                 OVERVIEW_RESAMPLING="AVERAGE", RESAMPLING="AVERAGE")
        return dst_path.read_bytes()


# --- grid counts ------------------------------------------------------------------------------------


@dataclass
class GridCounts:
    shape: str
    size: float
    cells: list[tuple[int, int, int, str]]  # i, j, count, GeoJSON polygon text (lon/lat)

    @property
    def total(self) -> int:
        return sum(c[2] for c in self.cells)

    def counts(self) -> np.ndarray:
        return np.asarray([c[2] for c in self.cells], dtype=np.int64)


def grid_counts(conn: psycopg.Connection, f: IncidentFilter, restrict: sql.Composable | None,
                shape: str, size: float, *, use_aggregates: bool | None = None) -> GridCounts:
    """Counts per cell. Squares of a multiple of the base cell, without a bbox or unit filter,
    come from the pre-aggregates where those pay (aggregates.pays): whole months from
    incident_cell_months (filters on the category only), else whole days from
    incident_cell_days, the rest of the window raw; 500 m hexagons over a window holding a
    whole month from their monthly counts (hex_months) plus the rest of the window; the rest
    from the raw rows; USE_AGGREGATES as counts_on's."""
    if (on_dask := distributed.grid_counts(conn, f, restrict, srid(), shape, size)) is not None:
        return GridCounts(shape, size, on_dask)  # counted on the Dask cluster
    base = aggregates.base_grid(conn)
    stored = base.srid if base else None
    days = square_days(conn, f, restrict, shape, size) if use_aggregates is not False else None
    span = hex_months.months(f)
    cut = cell_months.plan(conn, f, restrict, use_aggregates) if days is not None else None
    if base is not None and cut is not None:
        query, params = cell_months.square_counts(
            restrict, cut, cell_months.counted(conn, f, restrict), srid(), size, base.cell)
    elif base is not None and days is not None and (use_aggregates
                                                    or aggregates.pays(conn)):
        query, params = q.square_counts_agg(f, restrict, srid(), size, base.cell, days)
    elif (use_aggregates is not False and span is not None
          and hex_months.usable(conn, f, restrict, shape, size, srid(), stored)):
        query, params = hex_months.grid_counts(f, restrict, srid(), span)
    else:
        query, params = q.grid_counts(f, restrict, srid(), shape, size, stored_srid=stored)
    return GridCounts(shape, size, fetch(conn, query, params))


def grid_tile(conn: psycopg.Connection, f: IncidentFilter, restrict: sql.Composable | None,
              shape: str, size: float, z: int, x: int, y: int, min_count: int = 0) -> bytes:
    from layers.tiles_sql import BUFFER, EXTENT, tile_bounds

    x1, y1, x2, y2, _ = tile_bounds(z, x, y)
    # Mercator metres per ground metre here (1 / cos latitude; 1.2 covers the whole province).
    margin = 2.5 * size * 1.2
    query, params = q.grid_tile(f, restrict, srid(), shape, size, (x1, y1, x2, y2), margin,
                                "incident_grid", EXTENT, BUFFER, min_count,
                                stored_srid=aggregates.stored_srid(conn))
    row = fetch(conn, query, params, one=True)
    return bytes(row[0]) if row and row[0] else b""


# --- class breaks -----------------------------------------------------------------------------------

METHODS = ("quantiles", "natural_breaks", "equal_interval")


def class_breaks(values: np.ndarray, method: str, k: int) -> list[float]:
    """Upper bounds of K classes of VALUES by METHOD, with mapclassify: quantiles, natural
    breaks (Fisher-Jenks, the optimal partition), equal interval. Fewer distinct values than
    classes give fewer classes."""
    import warnings

    import mapclassify

    y = np.asarray(values, dtype=np.float64)
    distinct = np.unique(y)
    if distinct.size == 0:
        return []
    k = max(1, min(k, int(distinct.size)))
    if k == 1:
        return [float(distinct[-1])]
    if method == "quantiles":
        c = mapclassify.Quantiles(y, k=k)
    elif method == "natural_breaks":
        if y.size > FJ_DIRECT_MAX:
            return fisher_jenks_weighted(y, k)
        with warnings.catch_warnings():  # "Numba not installed": FJ_DIRECT_MAX says why not
            warnings.filterwarnings("ignore", message="Numba not installed")
            c = mapclassify.FisherJenks(y, k=k)
    elif method == "equal_interval":
        c = mapclassify.EqualInterval(y, k=k)
    else:
        raise ValueError(f"unknown classification {method!r}")
    return [float(b) for b in np.unique(c.bins)]


# mapclassify's Fisher-Jenks is pure Python without numba: 0.6 s for 300 values, 6 s for 1,000.
# Past FJ_DIRECT_MAX values (grids of thousands of cells) the same optimum is found on the
# distinct values weighted by their frequency (grid counts are small integers: a few hundred
# distinct values), at most FJ_LEVELS of them (beyond, values are merged into that many levels
# of equal frequency first: then an approximation, a tiny one).
FJ_DIRECT_MAX = 300
FJ_LEVELS = 500


def fisher_jenks_weighted(y: np.ndarray, k: int) -> list[float]:
    """Fisher-Jenks (minimum within-class sum of squares) natural breaks of Y as class upper
    bounds, by dynamic programming over Y's distinct values with their frequencies. An optimal
    partition never splits equal values, so this is the optimum over Y itself."""
    v, w = np.unique(y, return_counts=True)
    if v.size > FJ_LEVELS:
        edges = np.quantile(y, np.linspace(0, 1, FJ_LEVELS + 1))
        idx = np.clip(np.searchsorted(edges, y, side="right") - 1, 0, FJ_LEVELS - 1)
        w = np.bincount(idx, minlength=FJ_LEVELS)
        keep = w > 0
        v = (np.bincount(idx, weights=y, minlength=FJ_LEVELS)[keep] / w[keep])
        w = w[keep]
        top = float(y.max())
    else:
        top = float(v[-1])
    m = v.size
    k = min(k, m)
    cw = np.concatenate([[0.0], np.cumsum(w)])
    c1 = np.concatenate([[0.0], np.cumsum(w * v)])
    c2 = np.concatenate([[0.0], np.cumsum(w * v * v)])

    def ssd(i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Within-class sum of squares of values i..j (inclusive), broadcast over I and J."""
        n = cw[j + 1] - cw[i]
        s1 = c1[j + 1] - c1[i]
        return (c2[j + 1] - c2[i]) - s1 * s1 / n

    # One matrix per class, rows = the class's first value, columns = its last: the whole
    # table of candidates at once (m <= FJ_LEVELS + 1: a few MB), not a Python loop per
    # value (40 ms for 600 distinct values, most of a grid request's time outside SQL).
    starts = np.arange(m)[:, None]
    ends = np.arange(m)[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        within = ssd(starts, ends)  # ssd(i, j) for every start i, end j (garbage when i > j)
    cost = within[0].copy()  # one class: values 0..j
    back = np.zeros((k, m), dtype=np.intp)
    for c in range(1, k):
        total = np.where((starts >= c) & (starts <= ends), cost[starts - 1] + within, np.inf)
        best = np.argmin(total, axis=0)  # the first minimum, as the loop took
        back[c] = best
        cost = total[best, np.arange(m)]
    bounds = []
    j = m - 1
    for c in range(k - 1, 0, -1):
        start = back[c, j]
        bounds.append(start - 1)
        j = start - 1
    breaks = [float(v[b]) for b in reversed(bounds)] + [top]
    return breaks


def class_of(values: np.ndarray, bins: list[float]) -> np.ndarray:
    """Class index (0-based) of each value given upper bounds BINS (last bound: the maximum)."""
    if not bins:
        return np.zeros(len(values), dtype=np.int64)
    return np.minimum(np.searchsorted(np.asarray(bins), values, side="left"), len(bins) - 1)


def ramp(n: int) -> list[str]:
    """N colours from RAMP spread light to dark."""
    if n <= 0:
        return []
    if n == 1:
        return [RAMP[4]]
    idx = np.round(np.linspace(0, len(RAMP) - 1, n)).astype(int)
    return [RAMP[i] for i in idx]


# --- rates per unit -----------------------------------------------------------------------------------

MEASURES = ("per_km2", "per_1000", "count")


@dataclass
class UnitRates:
    day: dt.date
    codes: list[str]
    names: list[str]
    population: np.ndarray
    area_km2: np.ndarray
    counts: np.ndarray
    geometry: list[str] | None = None

    @property
    def per_km2(self) -> np.ndarray:
        return np.where(self.area_km2 > 0, self.counts / np.where(self.area_km2 > 0,
                                                                 self.area_km2, 1), np.nan)

    @property
    def per_1000(self) -> np.ndarray:
        pop = self.population.astype(np.float64)
        return np.where(pop > 0, self.counts / np.where(pop > 0, pop, 1) * 1000, np.nan)

    def measure(self, name: str) -> np.ndarray:
        if name == "per_km2":
            return self.per_km2
        if name == "per_1000":
            return self.per_1000
        return self.counts.astype(np.float64)


def unit_rates(conn: psycopg.Connection, f: IncidentFilter, restrict: sql.Composable | None,
               unit_restrict: sql.Composable | None, day: dt.date,
               with_geometry: bool = False) -> UnitRates:
    query, params = q.unit_counts(f, restrict, unit_restrict, srid(), day,
                                  with_geometry=with_geometry)
    rows = fetch(conn, query, params)
    cols: list[Any] = list(zip(*rows, strict=True)) if rows else [[]] * 6
    return UnitRates(day, list(cols[0]), list(cols[1]),
                     np.asarray([p or 0 for p in cols[2]], dtype=np.int64),
                     np.asarray(cols[3], dtype=np.float64), np.asarray(cols[4], dtype=np.int64),
                     list(cols[5]) if with_geometry and rows else None)


# --- change ------------------------------------------------------------------------------------------

AGAINST = ("previous", "year")


def base_window(f: IncidentFilter, against: str) -> IncidentFilter:
    """The window F is compared with: the previous window of the same length, or the same
    window a year earlier (calendar year: 29 February falls back to the 28th)."""
    if against == "previous":
        return f.previous()
    if against == "year":
        return replace(f, start=_year_back(f.start), end=_year_back(f.end))
    raise ValueError(f"unknown comparison {against!r}")


def _year_back(t: dt.datetime) -> dt.datetime:
    local = t.astimezone(VN_TZ)
    try:
        back = local.replace(year=local.year - 1)
    except ValueError:  # 29 February
        back = local.replace(year=local.year - 1, day=28)
    return back.astimezone(dt.UTC)


@dataclass
class Change:
    current: np.ndarray
    base: np.ndarray

    @property
    def absolute(self) -> np.ndarray:
        return self.current - self.base

    @property
    def percent(self) -> np.ndarray:
        """Relative change in percent (NaN when the base window had none)."""
        b = self.base.astype(np.float64)
        return np.where(b > 0, (self.current - b) / np.where(b > 0, b, 1) * 100, np.nan)

    @property
    def direction(self) -> np.ndarray:
        return np.where(self.absolute > 0, "up", np.where(self.absolute < 0, "down", "same"))

    def p_value(self, ratio: float = 1.0) -> np.ndarray:
        """Two-sided exact test that both windows have the same Poisson rate (RATIO: current
        window length / base length): conditional on n + b, n is binomial with p = r / (1 + r).
        A cheap, standard test of two counts; NaN where both are zero."""
        from scipy.stats import binom

        n = self.current.astype(np.int64)
        total = n + self.base.astype(np.int64)
        p = ratio / (1 + ratio)
        lower = binom.cdf(n, total, p)
        upper = binom.sf(n - 1, total, p)
        out = np.minimum(1.0, 2 * np.minimum(lower, upper))
        return np.where(total > 0, out, np.nan)


def significance(p: np.ndarray) -> np.ndarray:
    """'99', '95', '90' (confidence the rates differ) or '' (not significant / no data)."""
    return np.select([p < 0.01, p < 0.05, p < 0.10], ["99", "95", "90"], default="")


@dataclass
class UnitChange:
    codes: list[str]
    names: list[str]
    change: Change
    geometry: list[str]


def unit_change(conn: psycopg.Connection, f: IncidentFilter, base: IncidentFilter,
                restrict: sql.Composable | None, unit_restrict: sql.Composable | None,
                day: dt.date) -> UnitChange:
    query, params = q.unit_change(f, base, restrict, unit_restrict, day)
    rows = fetch(conn, query, params)
    cols: list[Any] = list(zip(*rows, strict=True)) if rows else [[]] * 5
    return UnitChange(list(cols[0]), list(cols[1]),
                      Change(np.asarray(cols[2], dtype=np.int64), np.asarray(cols[3], dtype=np.int64)),
                      list(cols[4]))


@dataclass
class CellChange:
    ids: list[tuple[int, int]]
    change: Change
    geometry: list[str]


def grid_change(conn: psycopg.Connection, f: IncidentFilter, base: IncidentFilter,
                restrict: sql.Composable | None, shape: str, size: float) -> CellChange:
    query, params = q.grid_change(f, base, restrict, srid(), shape, size,
                                  stored_srid=aggregates.stored_srid(conn))
    rows = fetch(conn, query, params)
    cols: list[Any] = list(zip(*rows, strict=True)) if rows else [[]] * 5
    return CellChange(list(zip(cols[0], cols[1], strict=True)),
                      Change(np.asarray(cols[2], dtype=np.int64), np.asarray(cols[3], dtype=np.int64)),
                      list(cols[4]))
