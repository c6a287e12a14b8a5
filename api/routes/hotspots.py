"""Significant hot and cold spots of incidents under /api/incidents/hotspots: Getis-Ord Gi* on a
hexagon or square grid, and emerging hot spots over a space-time cube (gis/analysis/hotspots.py
says how and why).

The filters are the other incident views' (IncidentFilter: window, category, severity, status,
bbox), plus the study area (`commune`, `as_of`; default the province), the grid (`shape`,
`cell_m`) and the test (`permutations`, `bin`, `alpha`). Access is the incidents layer's: a
caller who may not read it gets a 404 before any parameter is looked at; rows hidden from the
caller (security events for an operator) are not counted; reads that include restricted rows are
audited. Grids are bounded (MAX_CELLS cells, MAX_CUBE_BINS cells × bins): a larger one is a 400
naming `cell_m` with the cell count, not a long wait.

Not public (issue 17's suppression of small counts): the other incident aggregates are readable
by everyone with cells under 3 incidents suppressed (layers.model.Aggregates), but these views
stay the layer's own (a 404 for the public). A Gi* z-score is a weighted sum of a cell's and its
neighbours' counts, and a cell's explanation states its count: computing Gi* on suppressed
counts would publish statistics of a different map (every sparse area emptied) and dressing
the real ones would let a few neighbouring z-scores be solved for the counts under them.
Refusing is the one answer that cannot locate an incident.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import numpy as np
import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from api.deps import ReadConn, SettingsDep
from api.route_docs import GEOJSON, ok, problems
from api.routes.incident_analytics import FILTERS, Filter, IncidentsLayer, _readable, only
from api.security import Who
from gis import audit, fmt
from gis.analysis import hotspot_queries as hq
from gis.analysis import hotspots as hs
from layers.access import Principal, row_filter
from layers.errors import BadRequest, Message, NotFound

router = APIRouter(prefix="/api/incidents", tags=["incidents"])
OWN = ("commune", "as_of", "shape", "cell_m", "permutations", "bin", "cell")
HotParams = Annotated[dict[str, str], Depends(only(*FILTERS, *OWN))]
EmergingParams = Annotated[dict[str, str], Depends(only(*FILTERS, *OWN, "alpha"))]
ERRORS = problems(400, 401, 404, 429, 503)

RULE = (f"`auto` (default): analytic p-values (normal approximation of Gi*, no floor) above "
        f"{hs.AUTO_PERMUTATION_MAX_CELLS} cells; below, conditional permutations with "
        f"P + 1 = 400 × cells (rounded up to a thousand), so that the smallest achievable "
        f"two-sided p, 2/(P+1), is half of 0.01/cells, the Benjamini-Hochberg threshold of the "
        f"most extreme cell at 99 %. 999 permutations (p ≥ 0.001) could not reach 99 % over more "
        f"than ten cells. `analytic` (or 0): always the normal approximation. A number "
        f"{hs.MIN_PERMUTATIONS}..{hs.MAX_PERMUTATIONS}: that many permutations (cells × "
        f"permutations at most {hs.MAX_PERMUTATION_WORK:,}).")

Shape = Annotated[Literal["hexagon", "square"], Query(
    description="cell shape: PostGIS ST_HexagonGrid or ST_SquareGrid in the province's VN-2000 "
                "TM-3 CRS")]
CellM = Annotated[float, Query(
    ge=50, le=20_000, description="cell size in metres: the hexagon's edge (= circumradius) or the "
    f"square's side. At most {hs.MAX_CELLS:,} cells in the study area", examples=[500])]
Permutations = Annotated[str, Query(
    pattern=r"^(auto|analytic|[0-9]{1,6})$", max_length=8, description=RULE, examples=["auto"])]
Bin = Annotated[Literal["weekly", "monthly"], Query(
    description="calendar bins in Vietnam time (weeks from Monday): the cube's time slices and "
                "each cell's count trend")]
Commune = Annotated[str | None, Query(
    description="code of the administrative unit to analyse (default: the province)",
    examples=["09244"], max_length=20)]
AsOf = Annotated[str | None, Query(
    description="YYYY-MM-DD: the unit as it was that day (e.g. before the 2025 reform); default "
                "the window's last day", examples=["2025-06-30"], max_length=10)]
Cell = Annotated[str | None, Query(
    description="`i,j`: only that cell, with `why` (Vietnamese and English) explaining its class",
    examples=["12,-3"], max_length=30, pattern=r"^-?[0-9]{1,7},-?[0-9]{1,7}$")]


def _permutations(raw: str) -> int | None:
    if raw == "auto":
        return None
    if raw == "analytic":
        return 0
    n = int(raw)
    if n != 0 and not hs.MIN_PERMUTATIONS <= n <= hs.MAX_PERMUTATIONS:
        raise BadRequest.for_field("permutations_value", "permutations",
                                   f"{n} permutations: expected 'auto', 'analytic', 0 or "
                                   f"{hs.MIN_PERMUTATIONS}..{hs.MAX_PERMUTATIONS}",
                                   min=str(hs.MIN_PERMUTATIONS), max=str(hs.MAX_PERMUTATIONS))
    return n


def _cell(raw: str | None) -> tuple[int, int] | None:
    if raw is None:
        return None
    a, b = raw.split(",")
    return int(a), int(b)


def _grid(conn: ReadConn, who: Principal, layer: Any, f: Any, srid: int, commune: str | None,
          as_of: str | None, shape: str, cell_m: float, bin_kind: str) -> hs.Grid:
    units = _readable("admin_units", who)
    try:
        day = dt.date.fromisoformat(as_of) if as_of else hs.window_day(f.end)
    except ValueError:
        raise BadRequest.for_field("date", "as_of", f"{as_of!r} is not a date (YYYY-MM-DD)") from None
    area = hq.study_area(conn, srid, commune, day, row_filter(units, who, alias="admin_units"))
    if area is None:
        raise NotFound(f"administrative unit {commune!r} not found on {day.isoformat()}",
                       message=Message("unit_not_found", {"code": repr(commune), "day": fmt.date(day)}))
    try:
        return hs.load_grid(conn, f, row_filter(layer, who), srid, area, shape, cell_m, bin_kind)
    except hs.TooManyCells as e:
        raise BadRequest.for_field("grid_too_large", "cell_m",
                                   f"the grid would have about {e.cells} cells, over the maximum "
                                   f"{e.maximum}; choose larger cells or a smaller area",
                                   cells=f"{e.cells:,}".replace(",", "."),
                                   max=f"{e.maximum:,}".replace(",", ".")) from None


def _r(v: float, digits: int = 4) -> float:
    return float(round(float(v), digits))


def _p(v: float) -> float:
    """p-values keep three significant digits, however small."""
    v = float(v)
    return float(f"{v:.3g}") if v > 0 else 0.0


def _fmt_p(v: float) -> str:
    return f"{v:.2g}" if v >= 0.001 else f"{v:.1e}"


TREND_WORDS = {"up": ("tăng", "increasing"), "down": ("giảm", "decreasing"),
               "none": ("không có xu hướng rõ rệt", "no significant trend")}
BIN_WORDS = {"weekly": ("theo tuần", "weekly"), "monthly": ("theo tháng", "monthly")}


def trend_word(z: float, p: float, alpha: float = 0.05) -> str:
    if p < alpha and z > 0:
        return "up"
    if p < alpha and z < 0:
        return "down"
    return "none"


def why_hot(gi_bin: int, z: float, p: float, p_fdr: float, count: int, trend_z: float,
            trend_p: float, bin_kind: str, permutations: int) -> dict[str, str]:
    """Why a cell has its class, in Vietnamese and English."""
    how_vi = (f"{permutations} hoán vị" if permutations else "xấp xỉ chuẩn")
    how_en = (f"{permutations} permutations" if permutations else "normal approximation")
    t = trend_word(trend_z, trend_p)
    tvi, ten = TREND_WORDS[t]
    bvi, ben = BIN_WORDS[bin_kind]
    stat_vi = (f"z = {z:.2f} (Gi*), p = {_fmt_p(p)} ({how_vi}), p sau hiệu chỉnh FDR "
               f"(Benjamini-Hochberg) = {_fmt_p(p_fdr)}")
    stat_en = (f"z = {z:.2f} (Gi*), p = {_fmt_p(p)} ({how_en}), FDR-adjusted p "
               f"(Benjamini-Hochberg) = {_fmt_p(p_fdr)}")
    if gi_bin:
        level = {3: (99, 0.01), 2: (95, 0.05), 1: (90, 0.10)}[abs(gi_bin)]
        kind_vi, kind_en = ("Điểm nóng", "Hot spot") if gi_bin > 0 else ("Điểm lạnh", "Cold spot")
        head_vi = f"{kind_vi} với độ tin cậy {level[0]} %: {stat_vi} < {level[1]}."
        head_en = f"{kind_en} at {level[0]} % confidence: {stat_en} < {level[1]}."
    else:
        head_vi = f"Không có ý nghĩa thống kê: {stat_vi} ≥ 0.1."
        head_en = f"Not significant: {stat_en} ≥ 0.1."
    tail_vi = (f" {count} sự cố trong ô; xu hướng {bvi}: {tvi} (Mann-Kendall z = {trend_z:.2f}, "
               f"p = {_fmt_p(trend_p)}).")
    tail_en = (f" {count} incidents in the cell; {ben} trend: {ten} (Mann-Kendall z = "
               f"{trend_z:.2f}, p = {_fmt_p(trend_p)}).")
    return {"vi": head_vi + tail_vi, "en": head_en + tail_en}


CATEGORY_WORDS = hs.CATEGORY_WORDS


def category_title(cat: str) -> dict[str, str]:
    if cat == "no_pattern":
        return {"vi": "Không phát hiện mẫu hình", "en": "No pattern detected"}
    name, kind = cat.rsplit("_", 1)
    vi, en = CATEGORY_WORDS[name]
    return {"vi": f"Điểm {'nóng' if kind == 'hot' else 'lạnh'} {vi}",
            "en": f"{en.capitalize()} {kind} spot"}


def why_emerging(cat: str, hot_bins: int, cold_bins: int, bins: int, last: str, trend_z: float,
                 trend_p: float, bin_kind: str) -> dict[str, str]:
    title = category_title(cat)
    t = trend_word(trend_z, trend_p)
    tvi, ten = TREND_WORDS[t]
    bvi, ben = BIN_WORDS[bin_kind]
    last_vi = {"hot": "điểm nóng", "cold": "điểm lạnh", "none": "không có ý nghĩa"}[last]
    last_en = {"hot": "a hot spot", "cold": "a cold spot", "none": "not significant"}[last]
    return {
        "vi": f"{title['vi']}: {hot_bins}/{bins} kỳ {bvi} là điểm nóng, {cold_bins} kỳ là điểm "
              f"lạnh; kỳ cuối: {last_vi}; cường độ cụm (z của Gi*) {tvi} (Mann-Kendall "
              f"z = {trend_z:.2f}, p = {_fmt_p(trend_p)}).",
        "en": f"{title['en']}: {hot_bins} of {bins} {ben} bins hot, {cold_bins} cold; final bin: "
              f"{last_en}; clustering intensity (Gi* z) {ten} (Mann-Kendall z = {trend_z:.2f}, "
              f"p = {_fmt_p(trend_p)}).",
    }


def _geometries(grid: hs.Grid) -> list[str]:
    return grid.geojson


def _collection(features: list[bytes], meta: dict[str, Any]) -> Response:
    head = orjson.dumps({"type": "FeatureCollection", **meta})[:-1]
    body = head + b',"features":[' + b",".join(features) + b"]}"
    return Response(body, media_type=GEOJSON, headers={"Cache-Control": "private, max-age=0"})


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _meta(grid: hs.Grid, f: Any) -> dict[str, Any]:
    return {"start": _iso(f.start), "end": _iso(f.end),
            "area": {"code": grid.area.code, "name": grid.area.name, "level": grid.area.level},
            "shape": grid.shape, "cell_m": grid.size,
            "cell_km2": _r(hq.cell_area_m2(grid.shape, grid.size) / 1e6, 6),
            "cells": grid.n, "total": int(grid.counts.sum()), "bin": grid.bins.kind,
            "bins": [d.isoformat() for d in grid.bins.starts]}


def _pick(grid: hs.Grid, cell: tuple[int, int] | None) -> np.ndarray:
    if cell is None:
        return np.arange(grid.n)
    hit = np.flatnonzero((grid.cells["i"].to_numpy() == cell[0]) &
                         (grid.cells["j"].to_numpy() == cell[1]))
    if hit.size == 0:
        raise NotFound(f"cell {cell[0]},{cell[1]} is not in the grid",
                       message=Message("cell_not_found", {"cell": f"{cell[0]},{cell[1]}"}))
    return hit


HOT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "GeoJSON FeatureCollection of grid cells (EPSG:4326 polygons). Each feature's "
    "`properties`: `i`, `j` (the cell's grid index), `count` (incidents), `z` (Gi* z-score), `p` "
    "(two-sided p-value), `p_fdr` (Benjamini-Hochberg adjusted), `gi_bin` (+3/+2/+1 hot at "
    "99/95/90 %, -3/-2/-1 cold, 0 not significant), `class` (hot_99 ... cold_99, "
    "not_significant), `trend` (up|down|none: Mann-Kendall on the cell's counts per bin), "
    "`trend_z`, `trend_p`; with `cell=i,j` also `why` {vi, en}. Top level: `start`, `end`, "
    "`area`, `shape`, `cell_m`, `cell_km2`, `cells`, `total`, `bin`, `bins`, `p_value` "
    "(`analytic` or `permutation`), `permutations`, `smallest_p`, `summary` (cells per class)",
    "required": ["type", "features", "summary"],
    "properties": {"type": {"const": "FeatureCollection"},
                   "features": {"type": "array", "items": {"type": "object"}},
                   "summary": {"type": "object"}},
}

EMERGING_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "GeoJSON FeatureCollection of grid cells. Each feature's `properties`: `i`, "
    "`j`, `count`, `category` (new_hot, consecutive_hot, intensifying_hot, persistent_hot, "
    "diminishing_hot, sporadic_hot, oscillating_hot, historical_hot, the same with _cold, or "
    "no_pattern), `title` {vi, en}, `trend_z`, `trend_p` (Mann-Kendall on the cell's Gi* z series), "
    "`hot_bins`, `cold_bins`, `series` (counts per bin), `z_series` (Gi* z per bin), "
    "`p_fdr_series`; with `cell=i,j` also `why` {vi, en}. Top level as the hot spots' plus `alpha` "
    "and `summary` (cells per category)",
    "required": ["type", "features", "summary"],
    "properties": {"type": {"const": "FeatureCollection"},
                   "features": {"type": "array", "items": {"type": "object"}},
                   "summary": {"type": "object"}},
}


@router.get("/hotspots", response_class=Response, responses={
    200: ok("Grid cells with Gi* z, p, FDR-adjusted p and class", GEOJSON, HOT_SCHEMA), **ERRORS})
def hotspots(request: Request, who: Who, layer: IncidentsLayer, params: HotParams, f: Filter,
             conn: ReadConn, settings: SettingsDep, shape: Shape = "hexagon", cell_m: CellM = 500,
             permutations: Permutations = "auto", bin: Bin = "monthly",
             commune: Commune = None, as_of: AsOf = None, cell: Cell = None) -> Response:
    """Significant hot and cold spots (Getis-Ord Gi*) of the incidents matching the filters, on a
    grid over the province or one unit (`commune`), every cell included (empty ones too).
    p-values are two-sided and corrected for the false discovery rate (Benjamini-Hochberg); a
    cell is a hot or cold spot at 99, 95 or 90 % confidence when its adjusted p is below 0.01,
    0.05 or 0.10. The p-value method follows `permutations` (see the parameter). Neighbours:
    cells sharing an edge or a corner, and the cell itself."""
    perms = _permutations(permutations)
    picked = _cell(cell)
    grid = _grid(conn, who, layer, f, settings.province_srid, commune, as_of, shape, cell_m, bin)
    try:
        h = hs.hot_spots(grid, perms)
    except hs.TooMuchWork as e:
        raise BadRequest.for_field("permutations_too_costly", "permutations",
                                   f"cells × permutations = {e.work} is over "
                                   f"{hs.MAX_PERMUTATION_WORK}; use fewer permutations or 'auto'",
                                   max=f"{hs.MAX_PERMUTATION_WORK:,}".replace(",", ".")) from None
    audit.record_read(conn, who, layer, "hotspots", filter=params, request=request)
    rows = _pick(grid, picked)
    geoms = _geometries(grid)
    ii, jj = grid.cells["i"].to_numpy(), grid.cells["j"].to_numpy()
    totals = grid.totals
    features = []
    for k in rows:
        props: dict[str, Any] = {
            "i": int(ii[k]), "j": int(jj[k]), "count": int(totals[k]), "z": _r(h.z[k]),
            "p": _p(h.p[k]), "p_fdr": _p(h.p_fdr[k]), "gi_bin": int(h.gi_bin[k]),
            "class": hs.CLASS_NAMES[int(h.gi_bin[k])],
            "trend": trend_word(h.trend.z[k], h.trend.p[k]), "trend_z": _r(h.trend.z[k], 3),
            "trend_p": _p(h.trend.p[k])}
        if picked is not None:
            props["series"] = [int(v) for v in grid.counts[k]]
            props["why"] = why_hot(int(h.gi_bin[k]), float(h.z[k]), float(h.p[k]),
                                   float(h.p_fdr[k]), int(totals[k]), float(h.trend.z[k]),
                                   float(h.trend.p[k]), grid.bins.kind, h.permutations)
        features.append(b'{"type":"Feature","id":"%d,%d","geometry":%s,"properties":%s}' % (
            ii[k], jj[k], geoms[k].encode(), orjson.dumps(props)))
    meta = {**_meta(grid, f), "p_value": "permutation" if h.permutations else "analytic",
            "permutations": h.permutations, "smallest_p": _p(hs.smallest_p(h.permutations)),
            "summary": h.summary}
    return _collection(features, meta)


@router.get("/hotspots/emerging", response_class=Response, responses={
    200: ok("Grid cells with their emerging hot-spot category", GEOJSON, EMERGING_SCHEMA),
    **ERRORS})
def emerging(request: Request, who: Who, layer: IncidentsLayer, params: EmergingParams,
             f: Filter, conn: ReadConn, settings: SettingsDep, shape: Shape = "hexagon",
             cell_m: CellM = 1000, bin: Bin = "monthly",
             alpha: Annotated[float, Query(
                 ge=0.001, le=0.2, description="significance of a hot or cold bin (FDR-adjusted "
                 "p per time slice) and of the Mann-Kendall trend")] = 0.05,
             permutations: Annotated[str | None, Query(
                 description="accepted and ignored (the map sends the hot-spot parameters to both "
                             "views): the cube always uses analytic p-values", max_length=8)] = None,
             commune: Commune = None, as_of: AsOf = None, cell: Cell = None) -> Response:
    """Emerging hot spots: incidents counted per cell and calendar bin (a space-time cube, Vietnam
    time), Gi* per time slice (spatial neighbours: cells sharing an edge or a corner), bins
    significant when their FDR-adjusted p (per slice) is below `alpha`, the Mann-Kendall trend of
    each cell's Gi* z series, and the categories of the desktop tools' Emerging Hot Spot Analysis
    (new, consecutive, intensifying, persistent, diminishing, sporadic, oscillating, historical;
    hot and cold). At least ten bins are needed (a longer window, or weekly bins)."""
    picked = _cell(cell)
    bins = hq.bins_for(bin, f.start, f.end)
    if bins.count < hs.MIN_BINS:
        raise BadRequest.for_field("too_few_bins", "bin",
                                   f"the window holds {bins.count} {bin} bins; emerging hot spots "
                                   f"need at least {hs.MIN_BINS} (a longer window or weekly bins)",
                                   n=str(bins.count), min=str(hs.MIN_BINS))
    grid = _grid(conn, who, layer, f, settings.province_srid, commune, as_of, shape, cell_m, bin)
    if grid.n * grid.bins.count > hs.MAX_CUBE_BINS:
        raise BadRequest.for_field("cube_too_large", "cell_m",
                                   f"{grid.n} cells × {grid.bins.count} bins is over "
                                   f"{hs.MAX_CUBE_BINS}; choose larger cells, monthly bins or a "
                                   f"shorter window",
                                   max=f"{hs.MAX_CUBE_BINS:,}".replace(",", "."))
    e = hs.emerging(grid, alpha)
    audit.record_read(conn, who, layer, "emerging-hotspots", filter=params, request=request)
    rows = _pick(grid, picked)
    geoms = _geometries(grid)
    ii, jj = grid.cells["i"].to_numpy(), grid.cells["j"].to_numpy()
    totals = grid.totals
    sig = e.p_fdr < alpha
    hot = (sig & (e.z > 0)).sum(axis=1)
    cold = (sig & (e.z < 0)).sum(axis=1)
    features = []
    for k in rows:
        props: dict[str, Any] = {
            "i": int(ii[k]), "j": int(jj[k]), "count": int(totals[k]), "category": e.categories[k],
            "title": category_title(e.categories[k]),
            "trend_z": _r(e.trend.z[k], 3), "trend_p": _p(e.trend.p[k]),
            "hot_bins": int(hot[k]), "cold_bins": int(cold[k]),
            "series": [int(v) for v in grid.counts[k]],
            "z_series": [_r(v, 3) for v in e.z[k]], "p_fdr_series": [_p(v) for v in e.p_fdr[k]]}
        if picked is not None:
            last = "hot" if sig[k, -1] and e.z[k, -1] > 0 else (
                "cold" if sig[k, -1] and e.z[k, -1] < 0 else "none")
            props["why"] = why_emerging(e.categories[k], int(hot[k]), int(cold[k]),
                                        grid.bins.count, last, float(e.trend.z[k]),
                                        float(e.trend.p[k]), grid.bins.kind)
        features.append(b'{"type":"Feature","id":"%d,%d","geometry":%s,"properties":%s}' % (
            ii[k], jj[k], geoms[k].encode(), orjson.dumps(props)))
    meta = {**_meta(grid, f), "alpha": alpha, "p_value": "analytic", "summary": e.summary}
    return _collection(features, meta)

