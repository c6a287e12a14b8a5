"""The synthetic province: outline, towns, river, districts and communes before and after 2025.

Communes must tile the province exactly (no gaps, no overlaps, shared boundaries identical) and
look hand-drawn rather than gridded. So the province is first cut into a few thousand small
Voronoi faces (denser near towns), faces are grouped into districts and then communes by
multi-source shortest paths with random edge weights (each unit is contiguous and irregular),
and units are coverage unions of their faces. Every level is therefore built from the same
faces, which makes the tiling exact by construction rather than by snapping afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from gis.sample.common import from_lonlat, smooth_curve, stream
from gis.sample.names import PlaceNamer

PROVINCE_NAME = "Tỉnh Bắc Ninh (dữ liệu mẫu)"
OLD_PROVINCE_CODE = "27"
NEW_PROVINCE_CODE = "24"
OLD_VALID_FROM = date(1997, 1, 1)
REFORM_DATE = date(2025, 7, 1)
PROVINCE_AREA_M2 = 822e6

# Coarse outline of Bac Ninh (lon, lat), smoothed and roughened per seed below.
OUTLINE_LONLAT = (
    (105.90, 21.20), (105.93, 21.26), (106.00, 21.25), (106.07, 21.23), (106.13, 21.22),
    (106.20, 21.20), (106.27, 21.17), (106.31, 21.11), (106.30, 21.04), (106.26, 20.99),
    (106.20, 20.97), (106.13, 21.00), (106.06, 21.02), (106.00, 21.05), (105.95, 21.08),
    (105.91, 21.12),
)  # fmt: skip

# Pre-2025 districts: code, name, kind, seat (lon, lat) near the real seat, town weight,
# and the number of communes the real district had (the sample keeps the proportions).
DISTRICTS = (
    ("256", "Thành phố Bắc Ninh (mẫu)", "city", 106.070, 21.182, 1.0, 19),
    ("258", "Huyện Yên Phong", "rural", 105.962, 21.200, 0.35, 14),
    ("259", "Huyện Quế Võ", "rural", 106.160, 21.150, 0.35, 21),
    ("260", "Huyện Tiên Du", "rural", 106.020, 21.135, 0.35, 14),
    ("261", "Thị xã Từ Sơn", "town", 105.958, 21.118, 0.6, 12),
    ("262", "Huyện Thuận Thành", "rural", 106.085, 21.052, 0.35, 18),
    ("263", "Huyện Gia Bình", "rural", 106.200, 21.060, 0.3, 14),
    ("264", "Huyện Lương Tài", "rural", 106.225, 21.012, 0.3, 14),
)

# Sông Đuống crosses the province west to east, south of the city.
RIVER_LONLAT = (
    (105.86, 21.070), (105.95, 21.080), (106.01, 21.095), (106.07, 21.098), (106.13, 21.092),
    (106.19, 21.100), (106.25, 21.112), (106.36, 21.085),
)  # fmt: skip
RIVER_NAME = "Sông Đuống"

N_FACES = 3600
FIRST_COMMUNE_CODE = 9190  # codes step by 3, as the national list does


@dataclass
class Province:
    """Metric geometry and attributes of the synthetic province at both dates."""

    outline: shapely.Polygon
    towns: pd.DataFrame  # one row per district seat: x, y, weight, sigma
    river_line: shapely.LineString
    river: shapely.Geometry  # river polygon clipped to the province
    faces: NDArray[np.object_]
    face_xy: NDArray[np.float64]
    face_commune: NDArray[np.intp]
    districts: pd.DataFrame  # code, name, kind, population, geom
    communes: pd.DataFrame  # code, name, district_code, is_ward, population, seed_x/y, geom,
    #                         new_code (post-2025 code), merged (bool)
    new_communes: pd.DataFrame  # code, name, population, members, geom
    adjacency: NDArray[np.intp]  # (m, 2) pairs of adjacent old communes

    def density(self, x: NDArray, y: NDArray) -> NDArray:
        return population_density(self.towns, x, y)


def population_density(towns: pd.DataFrame, x: NDArray, y: NDArray) -> NDArray:
    """People per km²: rural base plus Gaussian bumps around the city and district seats."""
    x = np.asarray(x, dtype=float)[..., None]
    y = np.asarray(y, dtype=float)[..., None]
    d2 = (x - towns["x"].to_numpy()) ** 2 + (y - towns["y"].to_numpy()) ** 2
    bumps = towns["weight"].to_numpy() * 9000.0 * np.exp(-d2 / (2 * towns["sigma"].to_numpy() ** 2))
    return 1100.0 + bumps.sum(axis=-1)


def _outline(rng: np.random.Generator) -> shapely.Polygon:
    ctrl = np.array([from_lonlat(lon, lat) for lon, lat in OUTLINE_LONLAT])
    ctrl = ctrl + rng.normal(0, 900, ctrl.shape)
    closed = np.vstack([ctrl[-2:], ctrl, ctrl[:2]])
    pts = smooth_curve(closed, step=100.0)
    # Cut the spline back to one loop (the extra control points only set the tangents).
    start = np.argmin(np.linalg.norm(pts - ctrl[0], axis=1))
    end = start + np.argmin(np.linalg.norm(pts[start + 5 :] - ctrl[0], axis=1)) + 5
    pts = pts[start:end]
    # Multi-scale wiggle along the normals: real boundaries follow rivers, dykes and fields.
    seg = np.diff(np.vstack([pts, pts[:1]]), axis=0)
    s = np.concatenate([[0], np.cumsum(np.linalg.norm(seg, axis=1))])[:-1]
    perim = s[-1] + np.linalg.norm(seg[-1])
    k = np.arange(3, 90)
    amp = 700.0 * (k / 3.0) ** -1.4 * rng.uniform(0.5, 1.5, k.size)
    phase = rng.uniform(0, 2 * np.pi, k.size)
    disp = (amp * np.sin(2 * np.pi * k * s[:, None] / perim + phase)).sum(axis=1)
    tangent = np.roll(pts, -1, axis=0) - np.roll(pts, 1, axis=0)
    normal = np.column_stack([tangent[:, 1], -tangent[:, 0]])
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    poly = shapely.make_valid(shapely.Polygon(pts + normal * disp[:, None]))
    parts = shapely.get_parts(poly)
    poly = parts[np.argmax(shapely.area(parts))]
    poly = shapely.Polygon(poly.exterior)
    c = np.asarray(poly.centroid.coords[0])
    f = np.sqrt(PROVINCE_AREA_M2 / poly.area)
    poly = shapely.transform(poly, lambda xy: c + (xy - c) * f)
    return shapely.simplify(poly, 5.0)


def _towns(outline: shapely.Polygon) -> pd.DataFrame:
    inner = outline.buffer(-2500)
    c = np.asarray(outline.centroid.coords[0])
    rows = []
    for code, _name, kind, lon, lat, weight, _n in DISTRICTS:
        p = np.asarray(from_lonlat(lon, lat))
        # Pull a seat that the seeded outline left outside back towards the centre.
        for t in np.linspace(0, 1, 41):
            q = p + (c - p) * t
            if inner.contains(shapely.Point(q)):
                break
        sigma = {"city": 2600.0, "town": 1700.0}.get(kind, 1000.0)
        rows.append((code, q[0], q[1], weight, sigma))
    return pd.DataFrame(rows, columns=["code", "x", "y", "weight", "sigma"])


def _river(outline: shapely.Polygon, rng: np.random.Generator):
    ctrl = np.array([from_lonlat(lon, lat) for lon, lat in RIVER_LONLAT])
    ctrl[1:-1] += rng.normal(0, 500, (len(ctrl) - 2, 2))
    line = shapely.LineString(smooth_curve(ctrl, step=80.0))
    # Width varies between 180 and 320 m along the river.
    pts = shapely.get_coordinates(line)
    widths = 250 + 70 * np.sin(np.linspace(0, 7, len(pts)) + rng.uniform(0, 6))
    discs = shapely.buffer(shapely.points(pts), widths / 2, quad_segs=4)
    river = shapely.union_all(
        [shapely.buffer(line, 90, quad_segs=4), shapely.union_all(discs)]
    ).simplify(3.0)
    river = shapely.intersection(river, outline)
    return line, river


def _faces(outline: shapely.Polygon, towns: pd.DataFrame, rng: np.random.Generator):
    """Small Voronoi faces (denser where people live) that exactly tile the outline."""
    x0, y0, x1, y1 = outline.bounds
    pts: list[np.ndarray] = []
    dmax = population_density(towns, towns["x"], towns["y"]).max()
    while sum(len(p) for p in pts) < N_FACES:
        x = rng.uniform(x0, x1, 4000)
        y = rng.uniform(y0, y1, 4000)
        keep = shapely.contains_xy(outline, x, y)
        keep &= rng.random(4000) < np.sqrt(population_density(towns, x, y) / dmax)
        pts.append(np.column_stack([x[keep], y[keep]]))
    seeds = np.vstack(pts)[:N_FACES]
    edges = shapely.voronoi_polygons(
        shapely.multipoints(seeds), extend_to=outline.envelope.buffer(1000), only_edges=True
    )
    lines = shapely.union_all([shapely.intersection(edges, outline), outline.exterior])
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(lines)))
    faces = faces[shapely.area(faces) > 1.0]
    xy = shapely.get_coordinates(shapely.point_on_surface(faces))
    return faces, xy


def _adjacency(faces: NDArray[np.object_]) -> NDArray[np.intp]:
    """Pairs of faces sharing an edge (not just a corner), so units grown on it are contiguous."""
    tree = shapely.STRtree(faces)
    i, j = tree.query(faces, predicate="intersects")
    keep = i < j
    i, j = i[keep], j[keep]
    edge = shapely.relate_pattern(faces[i], faces[j], "****1****")
    return np.column_stack([i[edge], j[edge]])


def _grow(
    n: int,
    pairs: NDArray[np.intp],
    weights: NDArray[np.float64],
    seeds: NDArray[np.intp],
) -> NDArray[np.intp]:
    """Label every node with its nearest seed along weighted paths (multi-source Dijkstra).

    With continuous random weights there are no ties, and a node's shortest path runs through
    nodes of the same label, so every label is a contiguous set of faces.
    """
    g = csr_matrix((weights, (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, _, sources = dijkstra(
        g, directed=False, indices=seeds, min_only=True, return_predecessors=True
    )
    lookup = np.full(n, -1)
    lookup[seeds] = np.arange(len(seeds))
    return lookup[sources]


def _pick_seeds(
    cand: NDArray[np.intp],
    xy: NDArray[np.float64],
    weight: NDArray[np.float64],
    spacing: NDArray[np.float64],
    n: int,
    rng: np.random.Generator,
    first: int,
) -> list[int]:
    """n well-spread seeds among candidate faces, starting with `first` (weighted order,
    minimum spacing relaxed until n are found)."""
    order = cand[rng.choice(len(cand), size=len(cand), replace=False, p=weight / weight.sum())]
    for relax in (1.0, 0.8, 0.6, 0.4, 0.2, 0.0):
        chosen: list[int] = [first]
        for f in order[order != first]:
            if len(chosen) == n:
                break
            if chosen:
                d = np.hypot(*(xy[chosen] - xy[f]).T)
                if (d < relax * spacing[f]).any():
                    continue
            chosen.append(int(f))
        if len(chosen) == n:
            return chosen
    raise RuntimeError("could not place commune seeds")


def build_province(seed: int) -> Province:
    rng = stream(seed, "province")
    outline = _outline(rng)
    towns = _towns(outline)
    river_line, river = _river(outline, rng)
    faces, xy = _faces(outline, towns, rng)
    area = shapely.area(faces)
    dens = population_density(towns, xy[:, 0], xy[:, 1])
    pairs = _adjacency(faces)
    n = len(faces)

    # Crossing the river is expensive: units tend to stop at its banks, as real ones do.
    links = shapely.linestrings(np.stack([xy[pairs[:, 0]], xy[pairs[:, 1]]], axis=1))
    crossing = shapely.intersects(links, river_line)
    length = np.hypot(*(xy[pairs[:, 0]] - xy[pairs[:, 1]]).T)

    # Districts grow from the faces of their seats.
    rng_d = stream(seed, "districts")
    seat_faces = cKDTree(xy).query(towns[["x", "y"]].to_numpy())[1]
    w = length * rng_d.uniform(0.5, 1.6, len(pairs)) * np.where(crossing, 6.0, 1.0)
    face_district = _grow(n, pairs, w, seat_faces)

    # Communes: seeds per district in proportion to people, grown inside their district.
    rng_c = stream(seed, "communes")
    people = area / 1e6 * dens
    n_communes = np.array([d[6] for d in DISTRICTS])
    commune_seeds: list[int] = []
    seed_district: list[int] = []
    target_area = 12000.0 / dens * 1e6  # a commune has ~12,000 people
    spacing = 0.75 * np.sqrt(target_area)
    for d in range(len(DISTRICTS)):
        cand = np.flatnonzero(face_district == d)
        chosen = _pick_seeds(
            cand, xy, people[cand], spacing, n_communes[d], rng_c, int(seat_faces[d])
        )
        commune_seeds += chosen
        seed_district += [d] * len(chosen)
    same = face_district[pairs[:, 0]] == face_district[pairs[:, 1]]
    wc = length * rng_c.uniform(0.4, 1.8, len(pairs)) * np.where(crossing, 4.0, 1.0)
    face_commune = _grow(n, pairs[same], wc[same], np.asarray(commune_seeds))

    # Order communes by district, then north-west to south-east, and number them.
    seed_xy = xy[commune_seeds]
    sd = np.asarray(seed_district)
    order = np.lexsort((seed_xy[:, 0] - seed_xy[:, 1], sd))
    remap = np.empty(len(order), dtype=np.intp)
    remap[order] = np.arange(len(order))
    face_commune = remap[face_commune]
    seed_xy, sd = seed_xy[order], sd[order]
    nc = len(order)

    geoms = np.array(
        [shapely.coverage_union_all(faces[face_commune == c]) for c in range(nc)], dtype=object
    )
    pop: np.ndarray = np.bincount(face_commune, weights=people, minlength=nc)
    pop *= rng_c.lognormal(0.0, 0.12, nc)
    # Small communes were merged long before 2025: few have fewer than 5,000 people.
    low = pop < 5000
    pop[low] = 5000 + rng_c.uniform(0, 1500, int(low.sum()))
    pop = np.clip(np.round(pop, -1), 5000, 40000).astype(int)

    district_codes = np.array([d[0] for d in DISTRICTS])
    kinds = np.array([d[2] for d in DISTRICTS])
    seat_xy = towns[["x", "y"]].to_numpy()
    dist_seat = np.hypot(*(seed_xy - seat_xy[sd]).T)
    is_ward = (kinds[sd] == "city") | ((kinds[sd] == "town") & (dist_seat < 3500))

    namer = PlaceNamer(stream(seed, "names"))
    names = [("Phường " if w_ else "Xã ") + namer.take() for w_ in is_ward]
    communes = pd.DataFrame(
        {
            "code": [f"{FIRST_COMMUNE_CODE + 3 * i:05d}" for i in range(nc)],
            "name": names,
            "district_code": district_codes[sd],
            "is_ward": is_ward,
            "population": pop,
            "seed_x": seed_xy[:, 0],
            "seed_y": seed_xy[:, 1],
            "geom": geoms,
        }
    )

    cpairs = np.unique(np.sort(face_commune[pairs], axis=1), axis=0)
    cpairs = cpairs[cpairs[:, 0] != cpairs[:, 1]]

    districts = pd.DataFrame(
        {
            "code": district_codes,
            "name": [d[1] for d in DISTRICTS],
            "kind": kinds,
            "population": [int(pop[sd == d].sum()) for d in range(len(DISTRICTS))],
            "geom": [shapely.coverage_union_all(geoms[sd == d]) for d in range(len(DISTRICTS))],
        }
    )
    outline = shapely.coverage_union_all(geoms)
    river = shapely.intersection(river, outline)
    new_communes = _reform(communes, cpairs, stream(seed, "reform"), namer)
    return Province(
        outline=outline,
        towns=towns,
        river_line=river_line,
        river=river,
        faces=faces,
        face_xy=xy,
        face_commune=face_commune,
        districts=districts,
        communes=communes,
        new_communes=new_communes,
        adjacency=cpairs,
    )


def _reform(
    communes: pd.DataFrame,
    cpairs: NDArray[np.intp],
    rng: np.random.Generator,
    namer: PlaceNamer,
) -> pd.DataFrame:
    """2025 reform: about a third of the communes merge in groups of 2-3 adjacent communes of
    one district; the others continue under the same code. Fills communes.new_code/merged."""
    nc = len(communes)
    neigh: list[list[int]] = [[] for _ in range(nc)]
    for a, b in cpairs:
        neigh[a].append(int(b))
        neigh[b].append(int(a))
    district = communes["district_code"].to_numpy()
    group = np.full(nc, -1)
    n_groups = 0
    merged = 0
    for c in rng.permutation(nc):
        if merged >= nc / 3:
            break
        if group[c] >= 0:
            continue
        members = [int(c)]
        size = 2 if rng.random() < 0.6 else 3
        while len(members) < size:
            cand = sorted(
                {
                    o
                    for m in members
                    for o in neigh[m]
                    if group[o] < 0 and o not in members and district[o] == district[c]
                }
            )
            if not cand:
                break
            members.append(int(cand[rng.integers(len(cand))]))
        if len(members) < 2:
            continue
        group[members] = n_groups
        n_groups += 1
        merged += len(members)

    rows = []
    new_code = communes["code"].to_numpy().copy()
    for c in range(nc):
        g = group[c]
        if g < 0:
            rows.append((c, [c]))
        elif c == np.flatnonzero(group == g).min():
            rows.append((c, [int(m) for m in np.flatnonzero(group == g)]))
    out = []
    for first, members in rows:
        code = communes["code"].iat[first]
        new_code[members] = code
        if len(members) == 1:
            name = communes["name"].iat[first]
        else:
            ward = bool(communes["is_ward"].iloc[members].any())
            name = ("Phường " if ward else "Xã ") + namer.take()
        out.append(
            {
                "code": code,
                "name": name,
                "population": int(communes["population"].iloc[members].sum()),
                "members": members,
                "is_ward": bool(communes["is_ward"].iloc[members].any()),
                "geom": shapely.coverage_union_all(communes["geom"].to_numpy()[members]),
            }
        )
    communes["new_code"] = new_code
    communes["merged"] = group >= 0
    return pd.DataFrame(out)


def admin_rows(p: Province) -> pd.DataFrame:
    """Rows of admin_units (metric geometry) in a stable order: old province, districts,
    old communes, new province, new communes."""
    old_to = REFORM_DATE
    rows: list[tuple[Any, ...]] = [
        (OLD_PROVINCE_CODE, PROVINCE_NAME, "province", None,
         int(p.communes["population"].sum()), OLD_VALID_FROM, old_to, p.outline),
    ]  # fmt: skip
    for d in p.districts.itertuples():
        rows.append(
            (d.code, d.name, "district", OLD_PROVINCE_CODE, d.population, OLD_VALID_FROM,
             old_to, d.geom)
        )  # fmt: skip
    for c in p.communes.itertuples():
        rows.append(
            (c.code, c.name, "commune", c.district_code, c.population, OLD_VALID_FROM, old_to,
             c.geom)
        )  # fmt: skip
    rows.append(
        (NEW_PROVINCE_CODE, PROVINCE_NAME, "province", None,
         int(p.new_communes["population"].sum()), REFORM_DATE, None, p.outline)
    )  # fmt: skip
    for c in p.new_communes.itertuples():
        rows.append(
            (c.code, c.name, "commune", NEW_PROVINCE_CODE, c.population, REFORM_DATE, None,
             c.geom)
        )  # fmt: skip
    return pd.DataFrame(
        rows,
        columns=["code", "name", "level", "parent_code", "population", "valid_from", "valid_to",
                 "geom"],
    )  # fmt: skip
