"""Honest incident maps under /api/incidents: kernel density in incidents per km² on a fixed
scale (JSON with a legend and a map overlay, or a Cloud-Optimized GeoTIFF), counts on a grid of
hexagons or squares (GeoJSON and vector tiles), rates per commune on current or pre-2025
boundaries with class breaks, and change against an earlier window.

Public, through the incidents layer's aggregates (layers.model.Aggregates, asked once in
incident_analytics.incidents_aggregates): a caller who may not read incidents gets every view
with small counts suppressed (gis/analysis/suppression.py): grid cells and raster cells under
the minimum are not published at all (the density is spread from the published cells only),
communes under it are null with `suppressed: true`, and totals are such that no hidden count
follows by subtraction. Signed-in staff see exact counts.

The same shared filters as the other incident views (incident_analytics.incident_filter:
window in Vietnam-time days, category, severity, status, source, bbox, administrative unit), the
same access (a caller who may not read incidents gets a 404; rows hidden from the caller are
counted nowhere, not in a cell, a unit, a class break or the reference of the fixed scale) and
the same audit of reads that include restricted rows. The computation is gis.analysis.density.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Annotated, Any, Literal

import numpy as np
import orjson
import psycopg
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from api.deps import ReadConn
from api.route_docs import GEOJSON, ok
from api.routes.incident_analytics import (
    ERRORS,
    FILTERS,
    Filter,
    IncidentAggregates,
    _iso,
    _json,
    _readable,
    _suppression,
    _window,
    boundary_day,
    only,
)
from api.security import Who
from gis import audit
from gis.analysis import density as D
from gis.analysis import incidents as analysis
from gis.analysis import suppression
from layers.access import AggregateRead, Principal, row_filter
from layers.crs import crs_uri
from layers.errors import BadRequest, NotFound

router = APIRouter(prefix="/api/incidents", tags=["incidents"])
MVT = "application/vnd.mapbox-vector-tile"
COG = "image/tiff; application=geotiff; profile=cloud-optimized"
PRIVATE = {"Cache-Control": "private, max-age=0"}

KDE_PARAMS = ("bandwidth", "cell", "kernel", "scale", "vmax")
GRID_PARAMS = ("shape", "size")
CLASS_PARAMS = ("classification", "classes")

DensityParams = Annotated[dict[str, str], Depends(only(*FILTERS, *KDE_PARAMS))]
GridParams = Annotated[dict[str, str], Depends(only(*FILTERS, *GRID_PARAMS, *CLASS_PARAMS))]
TileParams = Annotated[dict[str, str], Depends(only(*FILTERS, *GRID_PARAMS))]
RatesParams = Annotated[dict[str, str], Depends(only(*FILTERS, "measure", "format",
                                                     *CLASS_PARAMS))]
ChangeParams = Annotated[dict[str, str], Depends(only(*FILTERS, "against", "by", *GRID_PARAMS))]

Bandwidth = Annotated[float, Query(
    ge=50, le=20_000, description="kernel bandwidth in metres (the quartic kernel's radius, the "
                                  "Gaussian's standard deviation)")]
Cell = Annotated[float, Query(ge=10, le=5_000, description="raster cell size in metres "
                              f"(at most {D.MAX_CELLS:,} cells)")]
Kernel = Annotated[Literal["quartic", "gaussian"], Query(description="kernel shape")]
Scale = Annotated[Literal["fixed", "view"], Query(
    description="`fixed` (default): colour classes from the province-wide peak of the same filters "
                f"over the {D.REFERENCE_DAYS} Vietnam-time days before today, prorated to the "
                "window's length and rounded up to 1, 2, 2.5 or 5 × 10^k, so that views and "
                "windows of equal length share one legend; `view`: from this surface's own peak")]
Vmax = Annotated[float | None, Query(
    gt=0, le=1e9, description="explicit top of the scale in incidents/km² (overrides `scale`)")]
Shape = Annotated[Literal["hexagon", "square"], Query(
    description="grid cells: PostGIS ST_HexagonGrid (flat-topped, `size` = edge) or "
                "ST_SquareGrid (`size` = side), in the province's VN-2000 TM-3 CRS")]
Size = Annotated[float, Query(ge=50, le=20_000, description="cell size in metres")]
Classification = Annotated[Literal["quantiles", "natural_breaks", "equal_interval"], Query(
    description="class breaks by mapclassify: `quantiles`, `natural_breaks` (Fisher-Jenks) or "
                "`equal_interval`")]
Classes = Annotated[int, Query(ge=2, le=9, description="number of classes")]


def _problem(name: str, key: str, reason: str) -> BadRequest:
    return BadRequest.for_field(key, name, reason)


def _audit(conn: psycopg.Connection, who: Principal, layer: Any, channel: str,
           params: dict[str, str], request: Request) -> None:
    audit.record_read(conn, who, layer, channel, filter=params, request=request)


# --- kernel density --------------------------------------------------------------------------------


def _density(conn: psycopg.Connection, f: analysis.IncidentFilter, agg: AggregateRead,
             bandwidth: float, cell: float, kernel: str) -> D.Density:
    try:
        return D.kde(conn, f, agg.restrict, bandwidth=bandwidth, cell=cell, kernel_name=kernel,
                     min_count=agg.min_count)
    except D.TooManyCells as e:
        raise BadRequest.for_field("too_many_cells", "cell", str(e), cells=f"{e.cells:,}",
                                   max=f"{D.MAX_CELLS:,}") from None


def _grid_info(d: D.Density) -> dict[str, Any]:
    x1, y1, x2, y2 = d.grid.bounds
    return {"crs": crs_uri(d.grid.srid), "bounds": [x1, y1, x2, y2], "cell_m": d.grid.cell,
            "rows": d.grid.shape[0], "columns": d.grid.shape[1]}


@router.get("/density", responses={200: ok(
    "Kernel density: the surface's figures, its legend in incidents/km² and a map overlay "
    "(PNG in Web Mercator, as a data URL with its lon/lat bounds)"), **ERRORS})
def density(request: Request, who: Who, agg: IncidentAggregates, params: DensityParams, f: Filter,
            conn: ReadConn, bandwidth: Bandwidth = 500, cell: Cell = 100,
            kernel: Kernel = "quartic", scale: Scale = "fixed", vmax: Vmax = None,
            z: Annotated[str | None, Query(description="accepted and ignored (the map sends the "
                                                       "same filters to every view)",
                                           max_length=40)] = None) -> Response:
    """Kernel density estimate of the incidents matching the filters, in incidents per km²:
    counted per `cell` in the province's VN-2000 TM-3 CRS in PostGIS, spread by a `kernel` of
    `bandwidth` metres (FFT convolution; the kernel sums to 1, so the surface's integral `mass`
    equals `total`, the incidents counted). Covers the province (or `unit`), cut to `bbox` when
    given. `legend.breaks` are the lower bounds of the colours `legend.colors` (a cell below the
    first break is left clear) and `legend.vmax` their top; see `scale`."""
    d = _density(conn, f, agg, bandwidth, cell, kernel)
    s = D.scale_for(conn, f, agg.restrict, d, scale, vmax, agg.min_count)
    image = D.overlay_png(d, s.breaks)
    _audit(conn, who, agg.layer, "density", params, request)
    return _json({**_window(f), "kernel": kernel, "bandwidth_m": bandwidth,
                  "grid": _grid_info(d), "total": d.counted, "mass": round(d.mass, 3),
                  "max": round(d.max, 4), "legend": s.legend(),
                  "image": {"bounds": list(image.bounds),
                            "url": "data:image/png;base64," + base64.b64encode(image.png).decode()},
                  **_suppression(agg)})


@router.get("/density.tif", response_class=Response, responses={200: {
    "description": "The density surface as a Cloud-Optimized GeoTIFF (float32, incidents/km², "
                   "VN-2000 TM-3, nodata -1, internal overviews)",
    "content": {COG: {"schema": {"type": "string", "format": "binary"}}}}, **ERRORS})
def density_cog(request: Request, who: Who, agg: IncidentAggregates, params: DensityParams,
                f: Filter, conn: ReadConn, bandwidth: Bandwidth = 500, cell: Cell = 100,
                kernel: Kernel = "quartic", scale: Scale = "fixed", vmax: Vmax = None,
                z: Annotated[str | None, Query(description="accepted and ignored",
                                               max_length=40)] = None) -> Response:
    """The same surface as `/density`, for GIS tools: a Cloud-Optimized GeoTIFF written with
    rasterio (GDAL's COG driver: tiled, DEFLATE, overviews averaged), values in incidents per km²
    in the province's projected CRS, the legend's breaks in its metadata."""
    d = _density(conn, f, agg, bandwidth, cell, kernel)
    s = D.scale_for(conn, f, agg.restrict, d, scale, vmax, agg.min_count)
    extra = {"MIN_COUNT": str(agg.min_count)} if agg.suppressed else {}
    body = D.cog_bytes(d, tags={"WINDOW_START": _iso(f.start), "WINDOW_END": _iso(f.end),
                                "KERNEL": kernel, "BANDWIDTH_M": f"{bandwidth:g}",
                                "INCIDENTS": str(d.counted), "SCALE": s.mode,
                                "VMAX": f"{s.vmax:g}",
                                "BREAKS": ",".join(f"{b:g}" for b in s.breaks), **extra})
    _audit(conn, who, agg.layer, "density", params, request)
    day = analysis.vn_today().isoformat()
    return Response(body, media_type=COG, headers={
        **PRIVATE, "Content-Disposition": f'attachment; filename="incident-density-{day}.tif"'})


# --- grid counts ----------------------------------------------------------------------------------


def _legend_counts(values: np.ndarray, method: str, k: int) -> dict[str, Any]:
    bins = D.class_breaks(values, method, k)
    return {"unit": {"vi": "sự cố", "en": "incidents"}, "classification": method,
            "breaks": bins, "colors": D.ramp(len(bins))}


def _feature_collection(features: list[bytes], extra: dict[str, Any]) -> Response:
    head = orjson.dumps(extra)[1:-1]
    body = b'{"type":"FeatureCollection",%s,"features":[%s]}' % (head, b",".join(features))
    return Response(body, media_type=GEOJSON, headers=PRIVATE)


def _feature(geometry: str, props: dict[str, Any]) -> bytes:
    return b'{"type":"Feature","geometry":%s,"properties":%s}' % (
        geometry.encode(), orjson.dumps(props, option=orjson.OPT_SERIALIZE_NUMPY))


@router.get("/grid", response_class=Response, responses={200: ok(
    "GeoJSON FeatureCollection of the grid's non-empty cells with `count`, `class`, and the "
    "legend (`legend.breaks`: class upper bounds in incidents)", GEOJSON), **ERRORS})
def grid(request: Request, who: Who, agg: IncidentAggregates, params: GridParams, f: Filter,
         conn: ReadConn, shape: Shape = "hexagon", size: Size = 500,
         classification: Classification = "natural_breaks", classes: Classes = 5,
         z: Annotated[str | None, Query(description="accepted and ignored",
                                        max_length=40)] = None) -> Response:
    """Incidents counted per cell of a hexagon or square grid of `size` metres (PostGIS's
    ST_HexagonGrid / ST_SquareGrid cells, ids `i`, `j`): every matching incident is in exactly
    one cell, so the counts add up to `total`."""
    g = D.grid_counts(conn, f, agg.restrict, shape, size)
    # Suppressed cells are not published at all (a cell marked "1 or 2" would locate them);
    # `total` is the sum of the published cells.
    g.cells = [c for c in g.cells if not suppression.small(c[2], agg.min_count)]
    counts = g.counts()
    legend = _legend_counts(counts, classification, classes)
    cls = D.class_of(counts, legend["breaks"])
    _audit(conn, who, agg.layer, "incident-grid", params, request)
    features = [_feature(geom, {"i": i, "j": j, "count": n, "class": int(c)})
                for (i, j, n, geom), c in zip(g.cells, cls.tolist(), strict=True)]
    return _feature_collection(features, {**_window(f), "shape": shape, "size_m": size,
                                          "total": g.total, "legend": legend,
                                          **_suppression(agg)})


@router.get("/grid/tiles/{z}/{x}/{y}", response_class=Response, responses={200: {
    "description": "Mapbox Vector Tile, layer `incident_grid`: the cells touching the tile with "
                   "`i`, `j` and `count` (each cell's full count, also of its points in "
                   "neighbouring tiles)",
    "content": {MVT: {"schema": {"type": "string", "format": "binary"}}}}, **ERRORS})
def grid_tile(request: Request, who: Who, agg: IncidentAggregates, params: TileParams, f: Filter,
              conn: ReadConn, z: Annotated[int, Path(ge=0, le=20, description="zoom")],
              x: Annotated[int, Path(ge=0, le=2**20 - 1, description="tile column")],
              y: Annotated[int, Path(ge=0, le=2**20 - 1, description="tile row")],
              shape: Shape = "hexagon", size: Size = 500) -> Response:
    """The grid counts of `/grid` as vector tiles (WebMercatorQuad z/x/y), built with ST_AsMVT."""
    if x >= 1 << z or y >= 1 << z:
        raise NotFound(f"tile column {x} / row {y} do not exist at zoom {z} (0..{(1 << z) - 1})")
    body = D.grid_tile(conn, f, agg.restrict, shape, size, z, x, y, agg.min_count)
    _audit(conn, who, agg.layer, "incident-grid", {**params, "tile": f"{z}/{x}/{y}"}, request)
    return Response(body, media_type=MVT, headers=PRIVATE)


# --- rates per commune ------------------------------------------------------------------------------


def _units_restrict(who: Principal) -> Any:
    return row_filter(_readable("admin_units", who), who, alias="admin_units")


def _day(params: dict[str, str]) -> dt.date:
    return boundary_day(params.get("boundaries"), params.get("as_of"))


def _num(a: np.ndarray, digits: int) -> list[float | None]:
    return [None if not np.isfinite(v) else round(float(v), digits) for v in a]


@router.get("/rates", response_class=Response, responses={200: ok(
    "Rates per commune, ranked (JSON) or as GeoJSON polygons for a choropleth; both with the "
    "legend"), **ERRORS})
def rates(request: Request, who: Who, agg: IncidentAggregates, params: RatesParams, f: Filter,
          conn: ReadConn,
          measure: Annotated[Literal["per_1000", "per_km2", "count"], Query(
              description="what is classed and ranked: incidents per 1,000 residents "
                          "(admin_units.population), per km² (area in VN-2000 TM-3) or the "
                          "count")] = "per_1000",
          classification: Classification = "natural_breaks", classes: Classes = 5,
          format: Annotated[Literal["json", "geojson"], Query(
              description="`json`: the ranking table; `geojson`: the communes' boundaries with "
                          "the same properties")] = "json",
          z: Annotated[str | None, Query(description="accepted and ignored",
                                         max_length=40)] = None) -> Response:
    """Incidents per commune, per km² and per 1,000 residents, on the communes valid on the
    day of `boundaries` (current, or pre2025: as on 2025-06-30) or `as_of`, ranked by `measure`
    (rank 1 = highest), classed by `classification` (breaks = class upper bounds). A commune
    without population has no per-1,000 rate (null) and is ranked last; so is, for a public
    caller, a commune whose count is suppressed (`count`, rates and class null,
    `suppressed: true`), and the class breaks are those of the published values."""
    day = _day(params)
    r = D.unit_rates(conn, f, agg.restrict, _units_restrict(who), day,
                     with_geometry=format == "geojson")
    shown = suppression.group(r.counts.tolist(), agg.min_count)
    hidden = np.asarray([n is None for n in shown], dtype=bool)
    values = np.where(hidden, np.nan, r.measure(measure))
    per_km2 = _num(np.where(hidden, np.nan, r.per_km2), 3)
    per_1000 = _num(np.where(hidden, np.nan, r.per_1000), 3)
    finite = values[np.isfinite(values)]
    bins = D.class_breaks(finite, classification, classes)
    cls = D.class_of(np.nan_to_num(values, nan=-1.0), bins)
    order = np.lexsort((np.asarray(r.codes), -np.nan_to_num(values, nan=-np.inf)))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(1, len(order) + 1)
    rows = [{"rank": int(rk), "code": code, "name": name, "population": int(pop),
             "area_km2": a, "count": n, "per_km2": pk, "per_1000": pt,
             "class": int(c) if np.isfinite(v) else None,
             **({"suppressed": bool(h)} if agg.suppressed else {})}
            for rk, code, name, pop, a, n, pk, pt, c, v, h in zip(
                rank.tolist(), r.codes, r.names, r.population.tolist(), _num(r.area_km2, 3),
                shown, per_km2, per_1000, cls.tolist(), values, hidden.tolist(), strict=True)]
    legend = {"measure": measure, "unit": _MEASURE_UNITS[measure], "classification": classification,
              "breaks": [round(b, 3) for b in bins], "colors": D.ramp(len(bins))}
    _audit(conn, who, agg.layer, "incident-rates", params, request)
    meta = {**_window(f), "boundaries_day": day.isoformat(),
            "total": suppression.total(int(r.counts.sum()), agg.min_count),
            "legend": legend, **_suppression(agg)}
    if format == "geojson":
        assert r.geometry is not None
        return _feature_collection([_feature(g, row) for g, row in zip(r.geometry, rows,
                                                                        strict=True)], meta)
    return _json({**meta, "units": [rows[i] for i in order.tolist()]})


_MEASURE_UNITS = {"per_1000": {"vi": "sự cố/1.000 dân", "en": "incidents per 1,000 residents"},
                  "per_km2": {"vi": "sự cố/km²", "en": "incidents/km²"},
                  "count": {"vi": "sự cố", "en": "incidents"}}


# --- change -----------------------------------------------------------------------------------------

def _suppress_change(c: D.Change, by: str, k: int
                     ) -> tuple[list[int | None], list[int | None], list[bool]]:
    """The counts of both windows as published (None: suppressed) and which units or cells are
    published at all. Communes: each window's counts are a group (suppression.group: a commune
    with 1 or 2 is null, and one more when a single one would follow from the total). Grid
    cells: a window's count under K is null even when it is 0 (so null does not say "1 or 2
    here"), and a cell with no count of K or more in either window is left out."""
    current, base = c.current.tolist(), c.base.tolist()
    if k <= 0:
        return current, base, [True] * len(current)
    if by == "commune":
        return suppression.group(current, k), suppression.group(base, k), [True] * len(current)
    cur = [n if n >= k else None for n in current]
    old = [b if b >= k else None for b in base]
    return cur, old, [n is not None or b is not None for n, b in zip(cur, old, strict=True)]


# Diverging classes of percent change (lower bounds), blue = fewer, red = more.
CHANGE_BREAKS = (-50.0, -20.0, -5.0, 5.0, 20.0, 50.0)
CHANGE_COLORS = ("#2166ac", "#67a9cf", "#d1e5f0", "#f7f7f7", "#fddbc7", "#ef8a62", "#b2182b")


@router.get("/change", response_class=Response, responses={200: ok(
    "GeoJSON FeatureCollection of communes or grid cells with the counts of both windows, the "
    "change (absolute, percent, direction) and a Poisson test of it", GEOJSON), **ERRORS})
def change(request: Request, who: Who, agg: IncidentAggregates, params: ChangeParams, f: Filter,
           conn: ReadConn,
           against: Annotated[Literal["previous", "year"], Query(
               description="`previous`: the window of the same length just before; `year`: the "
                           "same window a year earlier (windows up to 366 days)")] = "previous",
           by: Annotated[Literal["commune", "grid"], Query(
               description="per commune (of `boundaries`/`as_of`) or per grid cell")] = "commune",
           shape: Shape = "hexagon", size: Size = 1000,
           z: Annotated[str | None, Query(description="accepted and ignored",
                                          max_length=40)] = None) -> Response:
    """Incidents in the window (`current`) against `against` (`base`), per commune or grid
    cell: `change` = current - base, `percent` (null when base is 0), `direction` up/down/same,
    `p_value` of a two-sided exact Poisson test (conditional binomial) that both windows have the
    same rate, `significance` '99'/'95'/'90' (% confidence) or ''. Cells with no incident in
    either window are left out."""
    if against == "year" and f.length > dt.timedelta(days=366):
        raise BadRequest.for_field("year_window", "against",
                                   "a window longer than a year overlaps the same window a year "
                                   "earlier; use against=previous")
    base = D.base_window(f, against)
    restrict = agg.restrict
    ratio = f.length.total_seconds() / base.length.total_seconds()
    if by == "commune":
        u = D.unit_change(conn, f, base, restrict, _units_restrict(who), _day(params))
        c, geoms = u.change, u.geometry
        keys: list[dict[str, Any]] = [{"code": code, "name": name}
                                      for code, name in zip(u.codes, u.names, strict=True)]
    else:
        g = D.grid_change(conn, f, base, restrict, shape, size)
        c, geoms = g.change, g.geometry
        keys = [{"i": i, "j": j} for i, j in g.ids]
    cur_shown, base_shown, keep = _suppress_change(c, by, agg.min_count)
    p = c.p_value(ratio)
    sig = D.significance(p)
    pct = c.percent
    cls = np.where(np.isfinite(pct), np.searchsorted(np.asarray(CHANGE_BREAKS), pct, side="right"),
                   np.where(c.current > 0, len(CHANGE_BREAKS), -1))
    features = [
        _feature(geom, {**key, "current": n, "base": b, "change": n - b, "percent": pc,
                        "direction": dr, "p_value": pv, "significance": sg, "class": int(k)}
                 if n is not None and b is not None else
                 {**key, "current": n, "base": b, "change": None, "percent": None,
                  "direction": None, "p_value": None, "significance": "", "class": None,
                  "suppressed": True})
        for geom, key, n, b, pc, dr, pv, sg, k, kept in zip(
            geoms, keys, cur_shown, base_shown, _num(pct, 1),
            c.direction.tolist(), _num(p, 4), sig.tolist(), cls.tolist(), keep, strict=True)
        if kept]
    _audit(conn, who, agg.layer, "incident-change", params, request)
    cur_total, base_total = int(c.current.sum()), int(c.base.sum())
    if by == "grid" and agg.suppressed:  # the published cells' sums: nothing to subtract
        cur_total = sum(n for n, kept in zip(cur_shown, keep, strict=True) if kept and n)
        base_total = sum(b for b, kept in zip(base_shown, keep, strict=True) if kept and b)
    meta = {**_window(f), "base": {"start": _iso(base.start), "end": _iso(base.end)},
            "against": against, "by": by,
            "total": suppression.total(cur_total, agg.min_count),
            "base_total": suppression.total(base_total, agg.min_count),
            "legend": {"unit": {"vi": "% thay đổi", "en": "% change"},
                       "breaks": list(CHANGE_BREAKS), "colors": list(CHANGE_COLORS),
                       "new_color": CHANGE_COLORS[-1]}, **_suppression(agg)}
    if by == "grid":
        meta.update(shape=shape, size_m=size)
    return _feature_collection(features, meta)
