"""Cadastral parcels: blocks cut into lots along their long axis, commune by commune.

Cadastral digitisation progresses commune by commune, so whole communes are filled (in a seeded
order that prefers communes near the city) until the target count is reached. Lots are a
jittered grid in each block's minimum rotated rectangle (rows of a code-specific depth, lots of a
code-specific frontage with slanted side lines), intersected with the block; everything is done
on flat arrays over all blocks at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

from gis.sample.common import parallel_map, polygon_parts, stream
from gis.sample.landuse import LandUse
from gis.sample.names import company_names, person_names
from gis.sample.province import Province

PARCELS_PER_SCALE = 40_000
MIN_PARCEL_AREA = 20.0

# code: (typical lot area m², row depth m); None = the whole block is one parcel.
LOT_SHAPE: dict[str, tuple[float, float] | None] = {
    "ODT": (150.0, 16.0),
    "ONT": (175.0, 20.0),
    "LUC": (1400.0, 45.0),
    "CLN": (700.0, 30.0),
    "NTS": (2600.0, 50.0),
    "SKK": (22000.0, 140.0),
    "SKC": (2500.0, 45.0),
    "TMD": (600.0, 25.0),
    "DGD": (5000.0, 60.0),
    "DYT": (4000.0, 55.0),
    "TSC": (2500.0, 45.0),
    "DVH": None,
    "TON": None,
    "TIN": None,
    "DCH": None,
    "DTT": None,
    "DKV": None,
    "NTD": None,
}
WHOLE_BLOCK_MAX = 60_000.0  # a bigger "whole block" is still split, in 15,000 m² lots
# Documented plausible area ranges (m²) per code; tests check that most parcels are inside.
AREA_RANGE = {
    "ODT": (60, 300), "ONT": (60, 300), "LUC": (500, 3000), "CLN": (150, 2500),
    "NTS": (500, 8000), "SKK": (2000, 80000), "SKC": (300, 8000), "TMD": (100, 2000),
}  # fmt: skip
RESIDENTIAL = ("ODT", "ONT")
AGRICULTURAL = ("LUC", "CLN", "NTS")
BUSINESS = ("SKK", "SKC", "TMD")
CERT_SERIES = ("BA", "BĐ", "BX", "CA", "CH", "CS", "CT", "DA", "DĐ")


@dataclass
class Parcels:
    df: pd.DataFrame  # table columns + geom (metric) + area (computed, m²)
    planted: dict[str, list[list]]
    communes: list[int]  # old communes digitised, in digitisation order


BIG_LOT = (15000.0, 120.0)  # lots of an oversized "whole block" code


def _lot_shape(codes: NDArray[np.object_]) -> tuple[NDArray, NDArray, NDArray]:
    """Typical lot area, row depth and whether the whole block is one parcel, per block."""
    c = pd.Series(codes)
    area = c.map({k: (v or BIG_LOT)[0] for k, v in LOT_SHAPE.items()}).to_numpy(dtype=float)
    depth = c.map({k: (v or BIG_LOT)[1] for k, v in LOT_SHAPE.items()}).to_numpy(dtype=float)
    whole = c.map({k: v is None for k, v in LOT_SHAPE.items()}).to_numpy(dtype=bool)
    return area, depth, whole


def digitisation_order(p: Province, lu: LandUse, seed: int) -> tuple[list[int], NDArray]:
    """Seeded commune order weighted towards the city, and a rough parcel estimate each."""
    rng = stream(seed, "parcels")
    c = p.communes
    city = p.towns.loc[0, ["x", "y"]].to_numpy(dtype=float)
    d = np.hypot(c["seed_x"] - city[0], c["seed_y"] - city[1]).to_numpy()
    key = -np.log(rng.random(len(c))) / np.exp(-d / 9000.0)
    order = [int(i) for i in np.argsort(key, kind="stable")]
    b = lu.blocks
    lot_area, _, _ = _lot_shape(b["code"].to_numpy())
    est = np.bincount(
        b["commune"], weights=np.where(b["code"].isin(list(LOT_SHAPE)), b["area"] / lot_area, 0),
        minlength=len(c),
    )  # fmt: skip
    return order, est


def cut_lots(blocks: pd.DataFrame, rng: np.random.Generator) -> tuple[NDArray, NDArray]:
    """Lots for all blocks at once; returns the lot polygons and their block index."""
    geoms = blocks["geom"].to_numpy()
    codes = blocks["code"].to_numpy()
    nb = len(blocks)
    target, depth, whole = _lot_shape(codes)
    whole = whole & (blocks["area"].to_numpy() <= WHOLE_BLOCK_MAX)

    rect = shapely.get_coordinates(shapely.oriented_envelope(geoms)).reshape(nb, 5, 2)
    p0 = rect[:, 0]
    e1 = rect[:, 1] - p0
    e2 = rect[:, 3] - p0
    l1 = np.linalg.norm(e1, axis=1)
    l2 = np.linalg.norm(e2, axis=1)
    swap = l2 > l1
    long_v = np.where(swap[:, None], e2, e1)
    short_v = np.where(swap[:, None], e1, e2)
    length = np.maximum(l1, l2)
    width = np.minimum(l1, l2)
    u_hat = long_v / np.maximum(length, 1e-9)[:, None]
    v_hat = short_v / np.maximum(width, 1e-9)[:, None]

    # Rows across the short axis, at a code-specific depth with jittered row lines.
    n_rows = np.where(whole, 1, np.maximum(1, np.floor(width / depth + 0.5))).astype(np.intp)
    row_block = np.repeat(np.arange(nb), n_rows)
    row_k = np.arange(len(row_block)) - np.repeat(np.cumsum(n_rows) - n_rows, n_rows)
    row_depth = width[row_block] / n_rows[row_block]
    jit = rng.uniform(-0.12, 0.12, len(row_block)) * row_depth
    v0 = row_k * row_depth + np.where(row_k > 0, jit, 0.0)
    last = row_k == n_rows[row_block] - 1
    v1 = np.empty_like(v0)
    v1[:-1] = v0[1:]
    v1[last] = width[row_block[last]]

    # Lots along each row: frontage = target area / depth, jittered; the last lot takes the
    # rest of the row unless that would be a sliver.
    front = np.where(whole[row_block], np.inf, target[row_block] / row_depth)
    front = np.clip(front, 4.0, None)
    row_len = length[row_block]
    n_cuts = np.where(whole[row_block], 1, np.ceil(row_len / (0.75 * front)) + 1).astype(np.intp)
    cut_row = np.repeat(np.arange(len(row_block)), n_cuts)
    cut_k = np.arange(len(cut_row)) - np.repeat(np.cumsum(n_cuts) - n_cuts, n_cuts)
    w = np.where(np.isinf(front[cut_row]), 0.0, front[cut_row] * rng.uniform(0.75, 1.3, len(cut_row)))
    w[cut_k == 0] = 0.0
    pos = np.cumsum(w)
    pos -= np.repeat(pos[np.cumsum(n_cuts) - n_cuts], n_cuts)
    keep = (cut_k == 0) | (pos < row_len[cut_row] - 0.45 * front[cut_row])
    cut_row, cut_k, pos = cut_row[keep], cut_k[keep], pos[keep]
    slant = np.where(cut_k == 0, 0.0, rng.uniform(-0.15, 0.15, len(pos)) * front[cut_row])
    slant = np.where(np.isinf(slant), 0.0, slant)
    nxt_same = np.r_[cut_row[1:] == cut_row[:-1], False]
    u_a, u_b = pos, np.where(nxt_same, np.r_[pos[1:], 0.0], row_len[cut_row])
    s_a, s_b = slant, np.where(nxt_same, np.r_[slant[1:], 0.0], 0.0)

    lot_block = row_block[cut_row]
    lv0, lv1 = v0[cut_row], v1[cut_row]
    # Whole-block lots and lots of a one-row block cover the rectangle's full width plus a
    # margin, so that the block's edge is never cut off by rounding.
    pad = 1.0
    lv0 = np.where(lv0 <= 0, -pad, lv0)
    lv1 = np.where(lv1 >= width[lot_block], width[lot_block] + pad, lv1)
    u_a = np.where(cut_k == 0, -pad, u_a)
    u_b = np.where(nxt_same, u_b, u_b + pad)
    uv = np.stack(
        [
            np.column_stack([u_a, lv0]),
            np.column_stack([u_b, lv0]),
            np.column_stack([u_b + s_b, lv1]),
            np.column_stack([u_a + s_a, lv1]),
            np.column_stack([u_a, lv0]),
        ],
        axis=1,
    )
    world = (
        p0[lot_block][:, None, :]
        + uv[..., :1] * u_hat[lot_block][:, None, :]
        + uv[..., 1:] * v_hat[lot_block][:, None, :]
    )
    quads = shapely.polygons(world)

    # Lots inside their block are kept as drawn; only the edge lots need an overlay.
    shapely.prepare(geoms)
    whole_lot = whole[lot_block]
    inside = shapely.contains_properly(geoms[lot_block], quads)
    edge = np.flatnonzero(~inside & ~whole_lot)
    chunks = np.array_split(edge, 8)
    cut = parallel_map(lambda ix: shapely.intersection(quads[ix], geoms[lot_block[ix]]), chunks)
    lots = quads.copy()
    lots[edge] = np.concatenate(cut) if len(edge) else lots[edge]
    lots[whole_lot] = geoms[lot_block[whole_lot]]
    parts, src = polygon_parts(lots, min_area=MIN_PARCEL_AREA)
    blk = lot_block[src]
    low = pd.Series(codes).map({k: v[0] for k, v in AREA_RANGE.items()}).fillna(0.0)
    low = low.to_numpy(dtype=float)[blk]
    return _merge_small(parts, blk, low)


def _merge_small(
    parts: NDArray[np.object_], blk: NDArray[np.intp], low: NDArray[np.float64]
) -> tuple[NDArray, NDArray]:
    """Merge edge pieces smaller than their code's usual minimum into the neighbouring lot of
    the same block with which they share the longest boundary, as surveyors do."""
    area = shapely.area(parts)
    small = np.flatnonzero(area < low)
    if not small.size:
        return parts, blk
    tree = shapely.STRtree(parts)
    si, cj = tree.query(parts[small], predicate="intersects")
    s = small[si]
    ok = (blk[s] == blk[cj]) & (area[cj] >= low[cj])
    s, cj = s[ok], cj[ok]
    # Shared boundary length, robust to lots that meet at T-junctions (no common vertices).
    shared = shapely.area(shapely.intersection(shapely.buffer(parts[s], 0.05, quad_segs=1),
                                               parts[cj]))  # fmt: skip
    order = np.lexsort((-shared, s))
    s, cj, shared = s[order], cj[order], shared[order]
    first = np.r_[True, s[1:] != s[:-1]] & (shared > 0.1)
    s, cj = s[first], cj[first]
    merged = parts.copy()
    drop = np.zeros(len(parts), dtype=bool)
    # A lot can take several pieces: merge in rounds, one piece per lot per round.
    rank = pd.Series(cj).groupby(cj).cumcount().to_numpy()
    for r in range(int(rank.max()) + 1 if len(rank) else 0):
        sel = rank == r
        u = shapely.union(merged[cj[sel]], parts[s[sel]])
        good = shapely.get_type_id(u) == shapely.GeometryType.POLYGON
        merged[cj[sel][good]] = u[good]
        drop[s[sel][good]] = True
    return merged[~drop], blk[~drop]


def _numbering(df: pd.DataFrame, p: Province) -> pd.DataFrame:
    """Map sheets per old commune (a grid of 0.25 km² in wards, ~0.8 km² elsewhere), numbered
    from 1 row by row from the north-west; parcels numbered from 1 in each sheet, in bands
    from north-west to south-east."""
    c = p.communes
    bounds = shapely.bounds(c["geom"].to_numpy())
    size = np.where(c["is_ward"].to_numpy(), 500.0, 900.0)
    ci = df["commune"].to_numpy()
    x, y = df["x"].to_numpy(), df["y"].to_numpy()
    col = np.floor((x - bounds[ci, 0]) / size[ci]).astype(np.int64)
    row = np.floor((bounds[ci, 3] - y) / size[ci]).astype(np.int64)
    cell = row * 1000 + col
    df = df.assign(_cell=cell)
    df["sheet_no"] = df.groupby("commune")["_cell"].rank(method="dense").astype(int)
    top = bounds[ci, 3] - row * size[ci]
    band = np.floor((top - y) / 40.0).astype(np.int64)
    df = df.assign(_band=band)
    df = df.sort_values(["commune", "sheet_no", "_band", "x"], kind="stable")
    df["parcel_no"] = df.groupby(["commune", "sheet_no"]).cumcount() + 1
    return df.drop(columns=["_cell", "_band"]).reset_index(drop=True)


def build_parcels(p: Province, lu: LandUse, seed: int, scale: float) -> Parcels:
    target = int(round(PARCELS_PER_SCALE * scale))
    rest, est = digitisation_order(p, lu, seed)
    is_ward = p.communes["is_ward"].to_numpy()
    blocks = lu.blocks[lu.blocks["code"].isin(list(LOT_SHAPE))]
    by_commune = dict(iter(blocks.groupby("commune")))
    frames: list[pd.DataFrame] = []
    done: list[int] = []
    count = 0

    def take(pick: int) -> int:
        """Digitise commune PICK: its lots, in FRAMES; how many."""
        sel = by_commune.get(pick)
        if sel is None:
            return 0
        geoms, blk = cut_lots(sel, stream(seed, "parcels", 1 + pick))
        frames.append(pd.DataFrame({"commune": pick, "zone_code": sel["code"].to_numpy()[blk],
                                    "geom": geoms}))
        done.append(pick)
        return len(geoms)

    # Fill whole communes in order until the target is reached. The first is the first rural
    # commune in the order (a sample always has rice fields and villages). Near the end, a
    # commune a few places later whose (calibrated) estimate fits the remaining gap is taken
    # instead, so the count lands close to the target.
    while rest and count < target:
        gap = target - count
        ratio = count / est[done].sum() if done else 1.0
        if not done:
            pick = next(i for i in rest if not is_ward[i])
        else:
            ahead = rest[:8]
            fits = [i for i in ahead if est[i] * ratio >= gap]
            pick = min(fits, key=lambda i: est[i]) if fits else ahead[0]
        rest.remove(pick)
        count += take(pick)
    # Parcels recorded under a pre-2025 commune: when the communes above include no merged
    # one, the first merged commune of the order that lost its code in the merger (and is not
    # among the biggest) is digitised too, so that old commune codes, the old and new codes
    # side by side and histories across the merger exist in every sample.
    merged = p.communes["merged"].to_numpy()
    lost = merged & (p.communes["code"].to_numpy() != p.communes["new_code"].to_numpy())
    if not merged[done].any():
        cands = [i for i in rest if lost[i] and i in by_commune]
        small = [i for i in cands if est[i] <= np.median(est)] or cands
        if small:
            rest.remove(small[0])
            take(small[0])
    df = pd.concat(frames, ignore_index=True).sort_values("commune", kind="stable")
    df["area"] = shapely.area(df["geom"].to_numpy())
    xy = shapely.get_coordinates(shapely.point_on_surface(df["geom"].to_numpy()))
    df["x"], df["y"] = xy[:, 0], xy[:, 1]
    df = _numbering(df, p)
    df = _attributes(df, p, seed)
    planted = _plant(df, seed, scale)
    return Parcels(df, planted, done)


def _digits(values: NDArray[np.int64], width: int) -> NDArray[np.object_]:
    """Zero-padded decimal strings, vectorised."""
    return np.strings.zfill(values.astype(np.int64).astype(str), width).astype(object)


def _attributes(df: pd.DataFrame, p: Province, seed: int) -> pd.DataFrame:
    rng = stream(seed, "parcel_attrs")
    n = len(df)
    c = p.communes
    ci = df["commune"].to_numpy()
    code = df["zone_code"].to_numpy()
    df["commune_code"] = c["new_code"].to_numpy()[ci]
    df["old_commune_code"] = np.where(c["merged"].to_numpy()[ci], c["code"].to_numpy()[ci], None)

    res = np.isin(code, RESIDENTIAL)
    agri = np.isin(code, AGRICULTURAL)
    biz = np.isin(code, BUSINESS)
    public = ~(res | agri | biz)
    garden = (code == "ONT") & (df["area"].to_numpy() > 150) & (rng.random(n) < 0.3)
    # Kept as PostgreSQL array literals: that is what COPY takes, and no per-row lists.
    df["land_use_codes"] = np.where(garden, "{ONT,CLN}", "{" + code.astype(object) + "}")

    area = df["area"].to_numpy()
    bound = np.minimum(1.9, 0.015 * area)
    noise = np.clip(rng.normal(0.0, 0.4, n), -bound, bound)
    df["legal_area"] = np.round(area + noise, 1)

    persons, male = person_names(rng, n)
    born = rng.integers(1945, 2001, n)
    century_sex = np.where(born >= 2000, 2, 0) + np.where(male, 0, 1)
    tail = rng.integers(0, 1_000_000, n)
    # Citizen ID (CCCD): province of birth (027 = Bắc Ninh), century and sex, year, serial.
    ids = 27 * 10**9 + century_sex * 10**8 + (born % 100) * 10**6 + tail
    user_id = _digits(ids, 12)
    user = persons.copy()
    user[biz] = company_names(rng, int(biz.sum()))
    old_names = c["name"].to_numpy()[ci]
    user[public] = "UBND " + old_names[public]
    user_id = np.where(res | agri, user_id, np.array(None, dtype=object))
    df["land_user"] = user
    df["land_user_id"] = user_id

    series = np.asarray(CERT_SERIES, dtype=object)[rng.integers(0, len(CERT_SERIES), n)]
    cert = series + " " + _digits(rng.integers(0, 1_000_000, n), 6)
    df["certificate_no"] = np.where(rng.random(n) < 0.08, None, cert)

    # Residential land is held permanently (no end date); farm land until the term the 2013
    # Land Law set (15 Oct 2063) or an older allocation's; leases for 30-50 years.
    until = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
    other = (np.datetime64("2043", "Y") + rng.integers(0, 30, n)).astype("datetime64[D]")
    farm = np.where(rng.random(n) < 0.85, np.datetime64("2063-10-15"), other)
    until[agri] = farm[agri]
    lease_end = (np.datetime64("2050-06", "M") + 12 * rng.integers(0, 25, n)).astype(
        "datetime64[D]"
    ) + np.timedelta64(29, "D")  # 30 June
    until[biz] = lease_end[biz]
    df["use_until"] = until

    origin = np.full(n, "allocation", dtype=object)
    r = rng.random(n)
    origin[res] = np.where(r < 0.55, "recognition", np.where(r < 0.95, "transfer", "allocation"))[
        res
    ]
    origin[agri] = np.where(r < 0.85, "allocation", np.where(r < 0.95, "transfer", "lease"))[agri]
    origin[biz] = "lease"
    df["origin"] = origin
    return df


def _plant(df: pd.DataFrame, seed: int, scale: float) -> dict[str, list[list]]:
    """The only anomalies in the sample: wrong legal areas and houses on rice land."""
    rng = stream(seed, "planted")
    n_each = max(8, int(round(10 * scale)))
    area = df["area"].to_numpy()
    code = df["zone_code"].to_numpy()

    luc = np.flatnonzero((code == "LUC") & (area >= 300) & (area <= 3000))
    if len(luc) < n_each:
        raise RuntimeError("not enough rice parcels to plant zoning conflicts")
    conflicts = np.sort(rng.choice(luc, n_each, replace=False))
    df.loc[conflicts, "land_use_codes"] = "{ONT}"
    df.loc[conflicts, "use_until"] = np.datetime64("NaT")
    df.loc[conflicts, "origin"] = "transfer"

    cand = np.setdiff1d(np.flatnonzero(area >= 200), conflicts)
    wrong = np.sort(rng.choice(cand, n_each, replace=False))
    sign = np.where(rng.random(n_each) < 0.5, -1.0, 1.0)
    frac = rng.uniform(0.09, 0.19, n_each)
    df.loc[wrong, "legal_area"] = np.round(area[wrong] * (1 + sign * frac), 1)

    def keys(ix: NDArray) -> list[list]:
        sub = df.loc[ix, ["commune_code", "old_commune_code", "sheet_no", "parcel_no"]]
        return [[a, None if pd.isna(b) else b, int(s), int(n)]
                for a, b, s, n in sub.itertuples(index=False)]  # fmt: skip

    return {"area_discrepancies": keys(wrong), "zoning_conflicts": keys(conflicts)}
