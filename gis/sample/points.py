"""Point layers: cameras at road junctions and tourism places in villages and towns."""

from __future__ import annotations

import unicodedata

import numpy as np
import pandas as pd
import shapely

from gis.sample.common import sector, stream
from gis.sample.names import PlaceNamer
from gis.sample.province import PROVINCE_NAME, Province
from gis.sample.roads import RoadNet, Villages

CAMERAS_PER_SCALE = 300
JUNCTION_WEIGHT = {"expressway": 6.0, "trunk": 6.0, "primary": 3.0, "secondary": 1.5,
                   "local": 0.4}  # fmt: skip

# category: count, Vietnamese prefix, English suffix, rating range, median visitors per year
TOURISM = {
    "pagoda": (12, "Chùa", "Pagoda", (4.0, 5.0), 40_000),
    "temple": (10, "Đền", "Temple", (3.8, 4.9), 15_000),
    "festival": (6, "Lễ hội", "Festival", (4.0, 5.0), 150_000),
    "craft_village": (8, "Làng nghề", "craft village", (3.5, 4.8), 25_000),
    "museum": (3, "Bảo tàng", "Museum", (3.5, 4.7), 30_000),
    "park": (5, "Công viên", "Park", (3.5, 4.6), 90_000),
    "hotel": (9, "Khách sạn", "Hotel", (3.0, 4.8), 12_000),
    "restaurant": (9, "Nhà hàng", "Restaurant", (3.0, 4.9), 20_000),
}
CRAFTS = (
    ("gốm", "pottery"), ("tranh dân gian", "folk painting"), ("đúc đồng", "bronze casting"),
    ("mây tre đan", "bamboo weaving"), ("giấy dó", "dó paper"), ("gỗ mỹ nghệ", "wood carving"),
    ("rèn", "blacksmith"), ("dệt", "weaving"),
)  # fmt: skip


def ascii_name(s: str) -> str:
    """Vietnamese name without diacritics, as English-language signs and maps write them."""
    s = s.replace("Đ", "D").replace("đ", "d")
    return "".join(ch for ch in unicodedata.normalize("NFD", s) if not unicodedata.combining(ch))


def _junctions(rn: RoadNet) -> pd.DataFrame:
    """Road crossings (not the joints between consecutive pieces of one road)."""
    r = rn.roads
    geoms = r["geom"].to_numpy()
    tree = shapely.STRtree(geoms)
    i, j = tree.query(geoms, predicate="intersects")
    keep = i < j
    i, j = i[keep], j[keep]
    names = r["name"].fillna("").to_numpy()
    same = (names[i] == names[j]) & (names[i] != "")
    i, j = i[~same], j[~same]
    pts, src = shapely.get_parts(shapely.intersection(geoms[i], geoms[j]), return_index=True)
    is_pt = shapely.get_type_id(pts) == shapely.GeometryType.POINT
    pts, src = pts[is_pt], src[is_pt]
    a, b = i[src], j[src]
    cls = r["road_class"].to_numpy()
    w = np.array([JUNCTION_WEIGHT[c] for c in cls[a]]) + np.array(
        [JUNCTION_WEIGHT[c] for c in cls[b]]
    )
    # The more important road gives the camera its name and heading.
    rank = {"expressway": 0, "trunk": 1, "primary": 2, "secondary": 3, "local": 4}
    ra = np.array([rank[c] for c in cls[a]])
    rb = np.array([rank[c] for c in cls[b]])
    main = np.where(ra <= rb, a, b)
    xy = shapely.get_coordinates(pts)
    df = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "w": w, "road": main})
    # One candidate per junction: crossings closer than 25 m are the same junction.
    key = np.round(xy / 25.0).astype(np.int64)
    df["key"] = key[:, 0] * 10_000_000 + key[:, 1]
    return df.sort_values(["key", "w"], ascending=[True, False]).drop_duplicates("key")


def build_cameras(p: Province, rn: RoadNet, seed: int, scale: float) -> pd.DataFrame:
    rng = stream(seed, "cameras")
    n = max(10, int(round(CAMERAS_PER_SCALE * np.sqrt(scale))))
    j = _junctions(rn).reset_index(drop=True)
    towns = p.towns
    d = np.hypot(j["x"].to_numpy()[:, None] - towns["x"].to_numpy(),
                 j["y"].to_numpy()[:, None] - towns["y"].to_numpy())  # fmt: skip
    near = (towns["weight"].to_numpy() * np.exp(-d / 2500.0)).max(axis=1)
    w = j["w"].to_numpy() * (0.3 + 3.0 * near)
    pick = rng.choice(len(j), size=min(n, len(j)), replace=False, p=w / w.sum())
    j = j.iloc[np.sort(pick)].reset_index(drop=True)
    x, y = j["x"].to_numpy(), j["y"].to_numpy()

    # Look along the main road, one way or the other, give or take a little.
    roads = rn.roads["geom"].to_numpy()[j["road"].to_numpy()]
    at = shapely.line_locate_point(roads, shapely.points(x, y))
    ahead = shapely.get_coordinates(shapely.line_interpolate_point(roads, at + 5.0))
    behind = shapely.get_coordinates(shapely.line_interpolate_point(roads, at - 5.0))
    bearing = np.degrees(np.arctan2(ahead[:, 0] - behind[:, 0], ahead[:, 1] - behind[:, 1]))
    bearing += np.where(rng.random(len(j)) < 0.5, 0.0, 180.0) + rng.normal(0, 12, len(j))
    heading = np.mod(np.round(bearing), 360).astype(int)
    fov = rng.integers(40, 121, len(j))
    rng_m = rng.integers(50, 201, len(j))
    status = rng.choice(["online", "offline", "maintenance"], len(j), p=[0.88, 0.07, 0.05])

    commune = _commune_of(p, x, y)
    road_name = rn.roads["name"].to_numpy()[j["road"].to_numpy()]
    place = p.communes["name"].to_numpy()[commune]
    label = np.where(pd.isna(road_name), "Nút giao", road_name)
    order = np.lexsort((x, -np.round(y, -2)))  # numbered north-west to south-east
    df = pd.DataFrame(
        {
            "name": [f"Camera {a} – {b}" for a, b in zip(label, place, strict=True)],
            "heading": heading,
            "fov_deg": fov,
            "range_m": rng_m,
            "status": status,
            "fov": sector(x, y, heading.astype(float), fov.astype(float), rng_m.astype(float)),
            "geom": shapely.points(x, y),
        }
    ).iloc[order].reset_index(drop=True)
    df.insert(0, "code", [f"CAM-{k:04d}" for k in range(1, len(df) + 1)])
    df.insert(6, "stream_url", [f"rtsp://cam.example.invalid/live/{c}" for c in df["code"]])
    return df


def _commune_of(p: Province, x, y) -> np.ndarray:
    """Old commune index containing each point (nearest for points exactly on a boundary)."""
    geoms = p.communes["geom"].to_numpy()
    tree = shapely.STRtree(geoms)
    pts = shapely.points(x, y)
    out = tree.query_nearest(pts, all_matches=False)[1]
    return out


def build_tourism(p: Province, v: Villages, seed: int) -> pd.DataFrame:
    rng = stream(seed, "tourism")
    namer = PlaceNamer(stream(seed, "tourism", 1))
    for name in p.communes["name"]:
        namer.reserve(name.split(" ", 1)[1])
    ward = p.communes["is_ward"].to_numpy()[v.commune]
    rows = []
    for cat, (count, vi_prefix, en, (r0, r1), visitors) in TOURISM.items():
        urban_cat = cat in ("museum", "park", "hotel", "restaurant")
        cand = np.flatnonzero(ward & v.main) if urban_cat else np.flatnonzero(~ward)
        cores = rng.choice(cand, count, replace=len(cand) < count)
        ang = rng.uniform(0, 2 * np.pi, count)
        dist = v.radius[cores] * np.sqrt(rng.uniform(0.05, 0.8, count))
        xs = v.x[cores] + dist * np.cos(ang)
        ys = v.y[cores] + dist * np.sin(ang)
        for k in range(count):
            place = namer.take()
            if cat == "craft_village":
                craft_vi, craft_en = CRAFTS[int(rng.integers(len(CRAFTS)))]
                name = f"{vi_prefix} {craft_vi} {place}"
                name_en = f"{ascii_name(place)} {craft_en} village"
            elif cat == "temple" and rng.random() < 0.4:
                name, name_en = f"Đình làng {place}", f"{ascii_name(place)} Communal House"
            else:
                name, name_en = f"{vi_prefix} {place}", f"{ascii_name(place)} {en}"
            rows.append(
                {
                    "name": name,
                    "name_en": name_en,
                    "category": cat,
                    "rating": round(float(rng.uniform(r0, r1)), 1),
                    "visitors_per_year": int(round(visitors * rng.lognormal(0, 0.6), -2)),
                    "x": xs[k],
                    "y": ys[k],
                }
            )
    df = pd.DataFrame(rows)
    c = _commune_of(p, df["x"], df["y"])
    new_names = dict(zip(p.new_communes["code"], p.new_communes["name"], strict=True))
    df["address"] = [
        f"{new_names[code]}, {PROVINCE_NAME}" for code in p.communes["new_code"].to_numpy()[c]
    ]
    df["geom"] = shapely.points(df["x"], df["y"])
    return df[["name", "name_en", "category", "address", "rating", "visitors_per_year", "geom"]]
