"""Village cores and the road network: trunk roads and expressways as smooth curves across the
province, district roads linking villages, and per-commune street networks.

Streets are jittered, rotated, wiggled grids (a rotation per commune, dead ends, denser in
village cores and wards) because that is what cadastral maps of the Red River delta look like at
block scale, while the roads between villages follow a spanning tree of the villages themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import minimum_spanning_tree
from scipy.spatial import Delaunay

from gis.sample.common import from_lonlat, line_parts, parallel_map, smooth_curve, stream
from gis.sample.names import STREET_NAMES
from gis.sample.province import Province

# name, class, route: district seat codes or (lon, lat) points, from outside to outside.
MAJOR_ROADS = (
    ("Quốc lộ 1A", "trunk", ((105.88, 21.075), "261", (106.02, 21.142), "256", (106.10, 21.28))),
    ("Cao tốc Hà Nội – Bắc Giang", "expressway",
     ((105.88, 21.060), (105.97, 21.100), (106.04, 21.135), (106.095, 21.17), (106.14, 21.28))),
    ("Quốc lộ 18", "trunk",
     ((105.87, 21.225), "258", (106.03, 21.205), (106.09, 21.195), "259", (106.34, 21.13))),
    ("Quốc lộ 38", "trunk", ("256", (106.05, 21.12), "262", (106.10, 20.93))),
    ("Quốc lộ 17", "trunk", ((106.04, 20.95), "262", (106.14, 21.07), "263", (106.33, 21.07))),
    ("Tỉnh lộ 295", "primary", ("258", (105.96, 21.16), "261", (105.98, 21.05), "262")),
    ("Tỉnh lộ 282", "primary", ("262", (106.15, 21.03), "264", (106.32, 21.00))),
    ("Tỉnh lộ 286", "primary", ("256", (106.01, 21.19), "258")),
    ("Tỉnh lộ 287", "primary", ("260", (106.08, 21.14), "259")),
    ("Tỉnh lộ 280", "primary", ("263", (106.21, 21.035), "264", (106.20, 20.94))),
)  # fmt: skip

# class: lanes range, speed, corridor half-width (m) used to cut blocks
CLASS_SPEC = {
    "expressway": (6, 6, 100, 16.0),
    "trunk": (4, 4, 80, 10.0),
    "primary": (2, 4, 60, 6.0),
    "secondary": (2, 2, 50, 4.0),
    "local": (1, 2, 40, 2.0),
}
CLASS_RANK = {"expressway": 0, "trunk": 1, "primary": 2, "secondary": 3, "local": 4}
# Local streets: 4 m field roads and village alleys, 6 m streets in wards. One width per commune
# lets blocks be cut by shrinking the faces between street centre lines (see landuse).
LOCAL_HALF_WIDTH = 2.0
LOCAL_HALF_WIDTH_WARD = 3.0
FRAME_MARGIN = 20.0  # more than the widest corridor's half-width


@dataclass
class Villages:
    """Village cores (thôn, khu phố): where houses, schools, temples and markets are."""

    x: NDArray[np.float64]
    y: NDArray[np.float64]
    radius: NDArray[np.float64]
    commune: NDArray[np.intp]  # old commune index
    main: NDArray[np.bool_]


@dataclass
class RoadNet:
    roads: pd.DataFrame  # name, road_class, lanes, max_speed, half_width, commune, geom (metric)
    # Per commune: its local streets clipped to a frame a little larger than the commune (not
    # to the commune itself), so that cutting blocks sees them run through the border.
    street_lines: list[NDArray[np.object_]]


def build_villages(p: Province, seed: int) -> Villages:
    """Village cores sized from population: households x lot size x a gross factor for the
    schools, offices, temples and alleys between the houses."""
    rng = stream(seed, "streets", 0)
    xs, ys, rs, cs, ms = [], [], [], [], []
    river_zone = p.river.buffer(250, quad_segs=2)
    inners = shapely.difference(shapely.buffer(p.communes["geom"].to_numpy(), -250), river_zone)
    for c in p.communes.itertuples():
        inner = inners[c.Index]
        ward = bool(c.is_ward)
        households = c.population / 3.6
        built = households * (130.0 * 2.6 if ward else 230.0 * 1.7)
        sx, sy = c.seed_x, c.seed_y
        if not inner.contains(shapely.Point(sx, sy)) and not inner.is_empty:
            # A seed face on the river bank or the border: move the core inland.
            line = shapely.shortest_line(inner, shapely.Point(sx, sy))
            sx, sy = shapely.get_coordinates(line)[0]
        pts = [(sx, sy)]
        n_extra = int(rng.integers(0, 3)) if ward else int(rng.integers(2, 5))
        if not inner.is_empty and n_extra:
            b = inner.bounds
            cand_x = rng.uniform(b[0], b[2], 200)
            cand_y = rng.uniform(b[1], b[3], 200)
            ok = shapely.contains_xy(inner, cand_x, cand_y)
            for x, y in zip(cand_x[ok], cand_y[ok], strict=True):
                if len(pts) > n_extra:
                    break
                if min(np.hypot(x - q[0], y - q[1]) for q in pts) > 1000:
                    pts.append((x, y))
        k = len(pts) - 1
        main_share = 1.0 if k == 0 else (0.7 if ward else 0.4)
        shares = [main_share] + [(1.0 - main_share) / max(k, 1)] * k
        for i, ((x, y), share) in enumerate(zip(pts, shares, strict=True)):
            xs.append(x)
            ys.append(y)
            rs.append(float(np.sqrt(share * built / np.pi)) * rng.uniform(0.9, 1.1))
            cs.append(c.Index)
            ms.append(i == 0)
    return Villages(np.array(xs), np.array(ys), np.array(rs), np.array(cs), np.array(ms))


def _route_points(route, towns: pd.DataFrame) -> NDArray[np.float64]:
    seats = dict(zip(towns["code"], zip(towns["x"], towns["y"], strict=True), strict=True))
    return np.array([seats[r] if isinstance(r, str) else from_lonlat(*r) for r in route])


def _major(p: Province, rng: np.random.Generator) -> list[tuple[str, str, shapely.LineString]]:
    out = []
    for name, cls, route in MAJOR_ROADS:
        ctrl = _route_points(route, p.towns)
        # Insert jittered midpoints so long legs bend a little, as real alignments do.
        mids = (ctrl[:-1] + ctrl[1:]) / 2
        seg = ctrl[1:] - ctrl[:-1]
        normal = np.column_stack([-seg[:, 1], seg[:, 0]]) / np.linalg.norm(seg, axis=1)[:, None]
        mids += normal * rng.normal(0, 0.04, (len(mids), 1)) * np.linalg.norm(seg, axis=1)[:, None]
        pts = np.empty((len(ctrl) + len(mids), 2))
        pts[0::2] = ctrl
        pts[1::2] = mids
        out.append((name, cls, shapely.LineString(smooth_curve(pts, step=50.0))))
    return out


def _wiggly_grid(
    poly: shapely.Geometry,
    theta: float,
    spacing: float,
    rng: np.random.Generator,
    amp: float,
    partial: float,
) -> NDArray[np.object_]:
    """Two families of roughly parallel, wiggled lines covering poly's bounding box.

    `partial` is the share of lines that start or end inside the area (dead ends, T-junctions).
    """
    c = np.asarray(poly.centroid.coords[0])
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    local = (shapely.get_coordinates(poly.envelope) - c) @ rot
    half = np.abs(local).max() * 1.42 + spacing
    t = np.arange(-half, half + 40.0, 40.0)
    coords, idx = [], []
    first = 0
    for family in (0, 1):
        sp = spacing * (1.0 if family == 0 else rng.uniform(0.8, 1.4))
        offs = np.arange(-half, half, sp)
        n = offs.size
        offs = offs + rng.uniform(-0.25, 0.25, n) * sp
        a = rng.uniform(0, amp, n)[:, None]
        lam = rng.uniform(400, 1200, n)[:, None]
        ph = rng.uniform(0, 6.3, n)[:, None]
        w = offs[:, None] + a * np.sin(2 * np.pi * t[None, :] / lam + ph)
        lohi = np.sort(rng.uniform(-half, half, (n, 2)), axis=1)
        cut = rng.random(n) < partial
        lo = np.where(cut, lohi[:, 0], -np.inf)[:, None]
        hi = np.where(cut, lohi[:, 1], np.inf)[:, None]
        keep = (t[None, :] >= lo) & (t[None, :] <= hi)
        keep &= (keep.sum(axis=1) >= 3)[:, None]
        li, ti = np.nonzero(keep)
        tt, ww = t[ti], w[li, ti]
        uv = np.column_stack([tt, ww]) if family == 0 else np.column_stack([ww, tt])
        coords.append(uv @ rot.T + c)
        idx.append(li + first)
        first += n
    idx_all = np.concatenate(idx)
    if not idx_all.size:
        return np.empty(0, dtype=object)
    # Lines cut away entirely leave gaps in the numbering; linestrings() wants it dense.
    _, dense = np.unique(idx_all, return_inverse=True)
    return shapely.linestrings(np.vstack(coords), indices=dense)


def _secondary(p: Province, v: Villages, land: shapely.Geometry, rng: np.random.Generator):
    """District roads: a spanning tree of village cores plus some short extra links."""
    xy = np.column_stack([v.x, v.y])
    tri = Delaunay(xy)
    e = np.vstack([tri.simplices[:, [0, 1]], tri.simplices[:, [1, 2]], tri.simplices[:, [0, 2]]])
    e = np.unique(np.sort(e, axis=1), axis=0)
    length = np.hypot(*(xy[e[:, 0]] - xy[e[:, 1]]).T)
    links = shapely.linestrings(np.stack([xy[e[:, 0]], xy[e[:, 1]]], axis=1))
    ok = ~shapely.intersects(links, p.river_line) & (length < 4500)
    e, length = e[ok], length[ok]
    g = csr_matrix((length, (e[:, 0], e[:, 1])), shape=(len(xy), len(xy)))
    tree = minimum_spanning_tree(g).tocoo()
    in_tree = set(zip(tree.row.tolist(), tree.col.tolist(), strict=True))
    keep = np.array([(a, b) in in_tree or (b, a) in in_tree for a, b in e])
    keep |= (length < 2200) & (rng.random(len(e)) < 0.35)
    lines = []
    for a, b in e[keep]:
        pa, pb = xy[a], xy[b]
        d = pb - pa
        n = np.array([-d[1], d[0]]) / np.linalg.norm(d)
        m1 = pa + d / 3 + n * rng.normal(0, 0.06) * np.linalg.norm(d)
        m2 = pa + 2 * d / 3 + n * rng.normal(0, 0.06) * np.linalg.norm(d)
        lines.append(shapely.LineString(smooth_curve(np.array([pa, m1, m2, pb]), step=40.0)))
    return shapely.intersection(np.array(lines, dtype=object), land)


def build_roads(p: Province, v: Villages, seed: int) -> RoadNet:
    rng = stream(seed, "roads")
    communes = p.communes["geom"].to_numpy()
    land_all = p.outline.difference(p.river)
    rows: list[tuple] = []  # name, class, commune, geom

    # Major roads, cut per commune so that traffic state can vary along them.
    for name, cls, line in _major(p, rng):
        pieces = shapely.intersection(line, communes)
        parts, ci = line_parts(pieces, min_length=20.0)
        rows += [(name, cls, int(c), g) for c, g in zip(ci, parts, strict=True)]

    sec = _secondary(p, v, land_all, rng)
    parts, _ = line_parts(sec, min_length=30.0)
    # Longer links are district roads, numbered ĐH.01.. per district (of their midpoint);
    # short ones between neighbouring villages stay unnamed.
    mid = shapely.line_interpolate_point(parts, 0.5, normalized=True)
    district = p.communes["district_code"].to_numpy()[
        shapely.STRtree(communes).query_nearest(mid, all_matches=False)[1]
    ]
    names = np.full(len(parts), None, dtype=object)
    named = np.flatnonzero(shapely.length(parts) >= 1500)
    for d in np.unique(district[named]):
        ix = named[district[named] == d]
        names[ix] = [f"Đường huyện ĐH.{k:02d}" for k in rng.permutation(len(ix)) + 1]
    ii, cc = shapely.STRtree(communes).query(parts, predicate="intersects")
    sp, si = line_parts(shapely.intersection(parts[ii], communes[cc]), min_length=30.0)
    rows += [(names[ii[s]], "secondary", int(cc[s]), g) for s, g in zip(si, sp, strict=True)]

    # Streets per commune: field roads everywhere, dense alleys in village cores; wards get
    # an urban grid with named streets.
    street_names = np.array(STREET_NAMES, dtype=object)
    lands = shapely.difference(communes, p.river)
    frames = shapely.difference(shapely.buffer(communes, FRAME_MARGIN, quad_segs=2), p.river)

    def streets(ci: int) -> tuple[list[tuple], NDArray[np.object_]]:
        c = p.communes.iloc[ci]
        r = stream(seed, "streets", 1 + ci)
        theta = r.uniform(0, np.pi / 2)
        if c.is_ward:
            lines = [_wiggly_grid(c.geom, theta, r.uniform(150, 210), r, amp=12.0, partial=0.3)]
        else:
            lines = [_wiggly_grid(c.geom, theta, r.uniform(300, 420), r, amp=25.0, partial=0.35)]
        alley = [np.zeros(len(lines[0]), dtype=bool)]
        for k in np.flatnonzero(v.commune == ci):
            disc = shapely.Point(v.x[k], v.y[k]).buffer(v.radius[k], quad_segs=6)
            g = _wiggly_grid(disc, theta + r.normal(0, 0.3), r.uniform(75, 115), r, amp=8.0,
                             partial=0.45)  # fmt: skip
            lines.append(shapely.intersection(g, disc))
            alley.append(np.ones(len(g), dtype=bool))
        ext, ei = line_parts(shapely.intersection(np.concatenate(lines), frames[ci]), 1.0)
        ext = shapely.simplify(ext, 1.0)
        g = shapely.intersection(ext, lands[ci])
        parts, pi = line_parts(g, min_length=25.0)
        # A ward's through streets carry names (one per grid line, all its pieces alike).
        is_alley_line = np.concatenate(alley)
        line_name = np.full(len(is_alley_line), None, dtype=object)
        if c.is_ward:
            through = np.flatnonzero(~is_alley_line)
            picks = street_names[r.permutation(len(street_names))]
            line_name[through] = "Đường " + np.resize(picks, len(through))
        names = line_name[ei][pi]
        hw = LOCAL_HALF_WIDTH_WARD if c.is_ward else LOCAL_HALF_WIDTH
        is_alley = is_alley_line[ei][pi]
        return [(nm, "local", ci, gg, hw, al)
                for nm, gg, al in zip(names, parts, is_alley, strict=True)], ext  # fmt: skip

    street_lines = []
    for part, ext in parallel_map(streets, range(len(communes))):
        rows += part
        street_lines.append(ext)

    df = pd.DataFrame(
        [row if len(row) == 6 else (*row, CLASS_SPEC[row[1]][3], False) for row in rows],
        columns=["name", "road_class", "commune", "geom", "half_width", "alley"],
    )
    # Densely sampled curves carry no information below a metre; fewer vertices make every
    # overlay downstream (corridors, blocks) much cheaper.
    df["geom"] = shapely.simplify(df["geom"].to_numpy(), 1.0)
    cls = df["road_class"]
    lo = cls.map({k: v[0] for k, v in CLASS_SPEC.items()}).to_numpy()
    hi = cls.map({k: v[1] for k, v in CLASS_SPEC.items()}).to_numpy()
    df["lanes"] = (lo + (rng.random(len(df)) * (hi - lo + 1)).astype(int)).astype(int)
    df["max_speed"] = cls.map({k: v[2] for k, v in CLASS_SPEC.items()}).to_numpy()
    ward = p.communes["is_ward"].to_numpy()[df["commune"].to_numpy()]
    local = (df["road_class"] == "local").to_numpy()
    df.loc[local & ward, "max_speed"] = 40
    df.loc[local & ~ward, "max_speed"] = np.where(df.loc[local & ~ward, "alley"], 20, 30)
    df.loc[(df["road_class"] == "local") & (df["lanes"] > 1) & ~ward, "lanes"] = 1
    return RoadNet(df, street_lines)


# Free-flow speed (km/h) of the main roads, which carry traffic detectors (migration 0024): what
# traffic does there when nothing holds it up, a little under the limit (an expressway's 100,
# towns on the national and provincial roads); other roads have none (their limit stands for it).
FREE_FLOW = {"expressway": 90, "trunk": 70, "primary": 55}

# Congestion by class (traffic_at is 07:00 local time, the morning rush hour).
CLASS_LOAD = {"expressway": 0.75, "trunk": 1.0, "primary": 0.7, "secondary": 0.4, "local": 0.15}


def traffic_states(rn: RoadNet, p: Province, seed: int) -> NDArray[np.object_]:
    """Traffic state per road piece: heavier on trunk roads near the city and towns."""
    rng = stream(seed, "roads", 1)
    mid = shapely.get_coordinates(
        shapely.line_interpolate_point(rn.roads["geom"].to_numpy(), 0.5, normalized=True)
    )
    t = p.towns
    d = np.hypot(mid[:, :1] - t["x"].to_numpy(), mid[:, 1:] - t["y"].to_numpy())
    near = (t["weight"].to_numpy() * np.exp(-d / 3000.0)).max(axis=1)
    load = rn.roads["road_class"].map(CLASS_LOAD).to_numpy() * (0.25 + 0.9 * near)
    score = load + rng.normal(0, 0.12, len(load))
    states = np.array(["free", "moderate", "heavy", "jammed"], dtype=object)
    return states[np.digitize(score, [0.35, 0.6, 0.85])]
