"""Land-use planning zones: blocks between roads, each with a planned land-use code.

Blocks are what is left of a commune after cutting out the river and the road corridors (which
become DGT and SON zones), so the zones of a commune tile it exactly and parcels cut from a block
are inside exactly one zone. Codes follow how delta villages are laid out: houses around village
cores (ONT, or ODT in wards), gardens and cemeteries at their edge, rice fields (LUC) in between,
fish ponds near the river, industrial zones (SKK) along the trunk roads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from gis.sample.common import parallel_map, polygon_parts, storage_safe, stream
from gis.sample.province import Province
from gis.sample.roads import (
    FRAME_MARGIN,
    LOCAL_HALF_WIDTH,
    LOCAL_HALF_WIDTH_WARD,
    RoadNet,
    Villages,
)

PLAN_NAME = "Quy hoạch sử dụng đất đến năm 2030"
MIN_BLOCK_AREA = 150.0  # smaller leftovers between corridors are road verges (DGT)

PUBLIC_CODES = ("DGD", "DYT", "TSC", "DVH", "TON", "TIN", "DCH", "DTT")
PUBLIC_SHARES = (0.32, 0.1, 0.14, 0.1, 0.12, 0.1, 0.07, 0.05)
URBAN_CODES = ("ODT", "TMD", "DKV", "DGD", "SKC", "DYT", "TSC", "CLN")
URBAN_SHARES = (0.55, 0.13, 0.06, 0.06, 0.07, 0.03, 0.03, 0.07)


@dataclass
class LandUse:
    blocks: pd.DataFrame  # commune (old idx), code, geom (metric), area
    zones: pd.DataFrame  # commune (old idx), land_use_code, plan_name, approved_on, geom
    industrial: pd.DataFrame  # x, y, radius of industrial zones


def _industrial_sites(p: Province, rn: RoadNet, v: Villages, rng: np.random.Generator):
    """Industrial zones sit along trunk roads and expressways, away from towns and villages."""
    major = rn.roads[rn.roads["road_class"].isin(["trunk", "expressway"])]
    lines = major["geom"].to_numpy()
    lengths = shapely.length(lines)
    n_cand = 400
    pick = rng.choice(len(lines), n_cand, p=lengths / lengths.sum())
    pts = shapely.line_interpolate_point(lines[pick], rng.random(n_cand), normalized=True)
    xy = shapely.get_coordinates(pts)
    towns = p.towns[["x", "y"]].to_numpy()
    d_town = cKDTree(towns).query(xy)[0]
    vd, vi = cKDTree(np.column_stack([v.x, v.y])).query(xy)
    inside = shapely.contains_xy(p.outline.buffer(-1500), xy[:, 0], xy[:, 1])
    ok = inside & (d_town > 2500) & (vd > v.radius[vi] + 600)
    ok &= ~shapely.intersects(shapely.buffer(pts, 1200), p.river)
    sites: list[tuple[float, float, float]] = []
    for x, y in xy[ok]:
        if len(sites) == 7:
            break
        if all(np.hypot(x - sx, y - sy) > 4500 for sx, sy, _ in sites):
            sites.append((x, y, float(rng.uniform(800, 1300))))
    return pd.DataFrame(sites, columns=["x", "y", "radius"])


def _by_group(geoms: NDArray[np.object_], group: NDArray[np.intp], n: int) -> NDArray:
    """(n, k) array with the geometries of group g in row g, padded with None, so that
    shapely's reductions (union_all, polygonize_full) run per group in one call."""
    order = np.argsort(group, kind="stable")
    g = group[order]
    counts = np.bincount(g, minlength=n)
    pos = np.arange(len(g)) - np.repeat(np.cumsum(counts) - counts, counts)
    out = np.full((n, max(int(counts.max(initial=0)), 1)), None, dtype=object)
    out[g, pos] = geoms[order]
    return out


def _union_rows(a: NDArray[np.object_]) -> NDArray[np.object_]:
    return shapely.union_all(a, axis=1)


def _chunked(func, *arrays: NDArray, chunks: int = 4) -> NDArray[np.object_]:
    """Apply a vectorised shapely function in chunks on all cores (GEOS releases the GIL)."""
    n = len(arrays[0])
    if n < 8 * chunks:
        return func(*arrays)
    bounds = np.linspace(0, n, chunks + 1).astype(int)
    parts = parallel_map(
        lambda k: func(*(a[bounds[k] : bounds[k + 1]] for a in arrays)), range(chunks)
    )
    return np.concatenate(parts)


def cut_blocks(p: Province, rn: RoadNet) -> tuple[NDArray, NDArray, NDArray, NDArray]:
    """Blocks of every commune, and its DGT (road) and SON (river) areas.

    Faces between street centre lines (the commune's own streets, run through its border, and
    the bigger roads near it) are shrunk by the commune's street half-width; then the corridors
    of wider roads and of dead ends are cut out. DGT is the commune's land minus its blocks, so
    blocks, DGT and SON tile the commune exactly. All steps are array operations over all
    communes at once.
    """
    roads = rn.roads
    lines = roads["geom"].to_numpy()
    half = roads["half_width"].to_numpy()
    communes = p.communes["geom"].to_numpy()
    nc = len(communes)
    w = np.where(p.communes["is_ward"].to_numpy(), LOCAL_HALF_WIDTH_WARD, LOCAL_HALF_WIDTH)
    son = shapely.intersection(communes, p.river)
    lands = shapely.difference(communes, p.river)
    frames = shapely.buffer(communes, FRAME_MARGIN, quad_segs=2)

    # Roads other than local streets that come near each commune, clipped to its frame.
    major = np.flatnonzero((roads["road_class"] != "local").to_numpy())
    ci, ri = shapely.STRtree(lines[major]).query(frames, predicate="intersects")
    ri = major[ri]
    wide = shapely.intersection(lines[ri], frames[ci])
    street_c = np.repeat(np.arange(nc), [len(s) for s in rn.street_lines])
    linework = np.concatenate([np.concatenate(rn.street_lines), wide, shapely.get_exterior_ring(frames)])
    line_c = np.concatenate([street_c, ci, np.arange(nc)])
    noded = _chunked(_union_rows, _by_group(linework, line_c, nc))
    segs, seg_c = shapely.get_parts(noded, return_index=True)
    polys, cuts, dangles, _ = shapely.polygonize_full(_by_group(segs, seg_c, nc), axis=1)

    faces, face_c = shapely.get_parts(polys, return_index=True)
    faces = _chunked(lambda f, d: shapely.buffer(f, -d, join_style="mitre"), faces, w[face_c])
    faces, k = polygon_parts(faces)
    face_c = face_c[k]
    inside = shapely.contains_properly(lands[face_c], faces)
    edge = np.flatnonzero(~inside)
    faces[edge] = _chunked(shapely.intersection, faces[edge], lands[face_c[edge]])

    # Cutters: wider corridors and the corridors of dead ends (merged into whole lines).
    loose = shapely.line_merge(_union_rows(np.stack([cuts, dangles], axis=1)))
    loose, loose_c = shapely.get_parts(loose, return_index=True)
    cutters = np.concatenate([
        shapely.buffer(wide, half[ri], quad_segs=2),
        shapely.buffer(loose, w[loose_c], quad_segs=2),
    ])  # fmt: skip
    cutter_c = np.concatenate([ci, loose_c])
    fi, ki = shapely.STRtree(cutters).query(faces, predicate="intersects")
    same = face_c[fi] == cutter_c[ki]
    fi, ki = fi[same], ki[same]
    # One union of the cutters touching each face, then one difference per face.
    hit = np.unique(fi)
    group = np.searchsorted(hit, fi)
    knife = _chunked(_union_rows, _by_group(cutters[ki], group, len(hit)))
    faces[hit] = _chunked(shapely.difference, faces[hit], knife)

    blocks, k = polygon_parts(faces, min_area=MIN_BLOCK_AREA)
    block_c = face_c[k]
    holes = shapely.multipolygons(blocks, indices=block_c)
    if len(holes) < nc:
        holes = np.concatenate([holes, np.full(nc - len(holes), None)])
    dgt = _chunked(shapely.difference, lands, holes)
    return blocks, block_c, dgt, son


def build_landuse(p: Province, rn: RoadNet, v: Villages, seed: int) -> LandUse:
    rng = stream(seed, "zones")
    blocks, commune, dgt, son = cut_blocks(p, rn)
    nc = len(p.communes)
    zone_geoms = np.concatenate([dgt, son])
    zone_c = np.concatenate([np.arange(nc), np.arange(nc)])
    zone_code = np.repeat(["DGT", "SON"], nc)
    parts, k = polygon_parts(zone_geoms)
    parts, src = storage_safe(parts)
    k = k[src]
    zone_rows = list(zip(zone_c[k], zone_code[k], parts, strict=True))

    area = shapely.area(blocks)
    xy = shapely.get_coordinates(shapely.point_on_surface(blocks))
    code = _assign_codes(p, v, xy, area, commune, rng)
    industrial = _industrial_sites(p, rn, v, rng)
    if len(industrial):
        d = np.hypot(
            xy[:, None, 0] - industrial["x"].to_numpy(), xy[:, None, 1] - industrial["y"].to_numpy()
        )
        wobble = rng.uniform(0.75, 1.15, len(xy))[:, None]
        in_iz = (d < industrial["radius"].to_numpy() * wobble).any(axis=1)
        residential = np.isin(code, ["ONT", "ODT"])
        code = np.where(in_iz & ~residential & ~p.communes["is_ward"].to_numpy()[commune],
                        "SKK", code)  # fmt: skip

    block_df = pd.DataFrame({"commune": commune, "code": code, "geom": blocks, "area": area})
    zone_df = pd.concat(
        [
            block_df[["commune", "code", "geom"]],
            pd.DataFrame(zone_rows, columns=["commune", "code", "geom"]),
        ],
        ignore_index=True,
    ).rename(columns={"code": "land_use_code"})
    zone_df = zone_df.sort_values("commune", kind="stable").reset_index(drop=True)

    # One plan per old district, approved on a district-specific date in 2021-2022.
    district = p.communes["district_code"].to_numpy()[zone_df["commune"].to_numpy()]
    codes = p.districts["code"]
    plan = dict(zip(codes, PLAN_NAME + " – " + p.districts["name"], strict=True))
    approved = dict(zip(codes, np.datetime64("2021-03-01") + rng.integers(0, 540, len(codes)),
                        strict=True))  # fmt: skip
    zone_df["plan_name"] = pd.Series(district).map(plan).to_numpy()
    zone_df["approved_on"] = pd.Series(district).map(approved).to_numpy()
    return LandUse(block_df, zone_df, industrial)


def _assign_codes(
    p: Province,
    v: Villages,
    xy: NDArray[np.float64],
    area: NDArray[np.float64],
    commune: NDArray[np.intp],
    rng: np.random.Generator,
) -> NDArray[np.object_]:
    n = len(xy)
    # Distance to the nearest village core, in units of that core's radius.
    dist, k = cKDTree(np.column_stack([v.x, v.y])).query(xy, k=min(6, len(v.x)))
    rel = (dist / v.radius[k]).min(axis=1)
    ward = p.communes["is_ward"].to_numpy()[commune]
    d_river = shapely.distance(shapely.points(xy), shapely.simplify(p.river_line, 20.0))
    u = rng.random(n)
    code = np.full(n, "LUC", dtype=object)

    # Countryside: rice, with ponds (more near the river), gardens and a few cemeteries.
    pond_p = np.where(d_river < 1500, 0.16, 0.06)
    code[u < pond_p] = "NTS"
    code[(u >= pond_p) & (u < pond_p + 0.04)] = "CLN"

    # Village fringe: gardens, cemeteries, ponds, some new housing.
    fringe = (rel >= 1.0) & (rel < 1.45)
    f = rng.choice(["CLN", "ONT", "NTS", "LUC", "NTD"], n, p=[0.4, 0.25, 0.12, 0.15, 0.08])
    code[fringe] = f[fringe]
    code[fringe & (code == "NTD") & (area > 25000)] = "CLN"
    far_cemetery = (rel >= 1.45) & (rel < 3.0) & (area > 1500) & (area < 20000) & (u > 0.985)
    code[far_cemetery] = "NTD"

    # Village cores: housing, with schools, offices, temples and markets among them.
    core = rel < 1.0
    code[core] = "ONT"
    pub = core & (area > 1200) & (area < 20000) & (rng.random(n) < 0.11)
    code[pub] = rng.choice(PUBLIC_CODES, n, p=PUBLIC_SHARES)[pub]

    # Wards: an urban mix around the cores, then a peri-urban belt, fields at the outskirts.
    urban = ward & (rel < 1.15)
    mix = rng.choice(URBAN_CODES, n, p=URBAN_SHARES)
    code[urban] = mix[urban]
    belt = ward & (rel >= 1.15) & (rel < 1.8)
    peri = rng.choice(["ODT", "CLN", "LUC", "NTS", "TMD"], n, p=[0.3, 0.25, 0.3, 0.08, 0.07])
    code[belt] = peri[belt]
    code[ward & (code == "ONT")] = "ODT"
    return code
