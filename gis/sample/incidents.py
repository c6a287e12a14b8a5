"""Incidents over the two years before as_of, with the patterns an operations centre sees.

Each incident names the commune it happened in as the commune was then: before the 2025
reform (1 July 2025, province time) the pre-2025 commune, after it the new one - the way the
operations centre recorded it, and why analytics by old boundaries have something to count.
The window reaches back at least PRE_REFORM_DAYS before the reform whatever as_of is, so the
sample always holds incidents recorded under pre-2025 communes.

Places: hotspots (towns, busy junctions, industrial zones), traffic accidents on the roads
(weighted by road class), land violations in the rice fields, and a background in proportion to
population. Times: a slow upward trend, seasons (dry-season fires, rainy-season flooding), a
weekly rhythm (public order at weekends) and a daily one (traffic peaks at 7-9 and 17-19 local
time). Statuses follow from a resolution delay, so old incidents are closed and recent ones open.
Everything is drawn in arrays, category by category.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

from gis.sample.common import midnight, random_points_in, stream
from gis.sample.landuse import LandUse
from gis.sample.province import REFORM_DATE, Province
from gis.sample.roads import RoadNet
from layers.catalogue import INCIDENT_CATEGORIES, INCIDENT_SOURCES, SEVERITIES

INCIDENTS_PER_SCALE = 50_000
DAYS = 730
PRE_REFORM_DAYS = 180
LOCAL_UTC_OFFSET_H = 7
BOUNDARY_MARGIN = 0.05  # m; see the commune join in build_incidents

SHARES = {
    "traffic_accident": 0.28, "public_order": 0.24, "fire": 0.06, "environment": 0.12,
    "land_violation": 0.09, "infrastructure": 0.15, "security_event": 0.06,
}  # fmt: skip
assert set(SHARES) == set(INCIDENT_CATEGORIES)

MODES = ("road", "junction", "town", "industry", "background", "farmland")
MIX = {
    "traffic_accident": (0.6, 0.25, 0.15, 0.0, 0.0, 0.0),
    "public_order": (0.0, 0.0, 0.45, 0.1, 0.45, 0.0),
    "fire": (0.0, 0.0, 0.15, 0.15, 0.7, 0.0),
    "environment": (0.0, 0.0, 0.05, 0.3, 0.55, 0.1),
    "land_violation": (0.0, 0.0, 0.0, 0.0, 0.4, 0.6),
    "infrastructure": (0.25, 0.0, 0.2, 0.0, 0.55, 0.0),
    "security_event": (0.0, 0.0, 0.35, 0.1, 0.55, 0.0),
}
ROAD_WEIGHT = {"expressway": 8.0, "trunk": 10.0, "primary": 5.0, "secondary": 2.0, "local": 0.4}

SEVERITY_P = {
    "traffic_accident": (0.45, 0.35, 0.15, 0.05), "public_order": (0.55, 0.33, 0.10, 0.02),
    "fire": (0.35, 0.35, 0.20, 0.10), "environment": (0.50, 0.35, 0.12, 0.03),
    "land_violation": (0.60, 0.30, 0.08, 0.02), "infrastructure": (0.55, 0.30, 0.12, 0.03),
    "security_event": (0.40, 0.35, 0.18, 0.07),
}  # fmt: skip
SOURCES = tuple(INCIDENT_SOURCES)  # hotline, citizen_app, camera, sensor, patrol, social_media
SOURCE_P = {
    "traffic_accident": (0.35, 0.12, 0.28, 0.0, 0.18, 0.07),
    "public_order": (0.40, 0.15, 0.12, 0.0, 0.25, 0.08),
    "fire": (0.60, 0.15, 0.05, 0.05, 0.10, 0.05),
    "environment": (0.25, 0.30, 0.02, 0.25, 0.08, 0.10),
    "land_violation": (0.30, 0.35, 0.0, 0.0, 0.25, 0.10),
    "infrastructure": (0.30, 0.45, 0.05, 0.0, 0.12, 0.08),
    "security_event": (0.35, 0.10, 0.20, 0.0, 0.30, 0.05),
}
# Median hours to resolve (log-normal), by category.
RESOLVE_H = {
    "traffic_accident": 3.0, "public_order": 4.0, "fire": 5.0, "environment": 48.0,
    "land_violation": 240.0, "infrastructure": 72.0, "security_event": 12.0,
}  # fmt: skip
# Weekday factors, Monday first.
WEEKDAY = {
    "traffic_accident": (1.0, 1.0, 1.0, 1.0, 1.1, 1.15, 1.05),
    "public_order": (0.85, 0.85, 0.9, 0.9, 1.05, 1.4, 1.35),
    "fire": (1, 1, 1, 1, 1, 1, 1),
    "environment": (1.05, 1.05, 1.05, 1.05, 1.0, 0.9, 0.9),
    "land_violation": (1.1, 1.1, 1.1, 1.1, 1.05, 0.8, 0.7),
    "infrastructure": (1.1, 1.1, 1.1, 1.1, 1.05, 0.8, 0.75),
    "security_event": (1.0, 1.0, 1.0, 1.0, 1.05, 1.2, 1.2),
}
# Month factors, January first (dry season fires and straw burning, rainy season floods).
MONTH = {
    "traffic_accident": (1.3, 1.2, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.15),
    "public_order": (1.25, 1.3, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.1),
    "fire": (1.6, 1.5, 1.2, 0.9, 0.8, 0.8, 0.7, 0.7, 0.8, 1.0, 1.3, 1.6),
    "environment": (1.0, 1.0, 1.0, 1.0, 1.0, 1.5, 1.1, 1.0, 1.0, 1.5, 1.1, 1.0),
    "land_violation": (0.8, 0.7, 1.0, 1.1, 1.1, 1.1, 1.0, 1.0, 1.0, 1.1, 1.1, 1.0),
    "infrastructure": (0.8, 0.8, 0.9, 1.0, 1.3, 1.4, 1.5, 1.5, 1.3, 1.0, 0.8, 0.8),
    "security_event": (1.3, 1.2, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.2),
}

TITLES = {
    "traffic_accident": ("Va chạm giao thông tại ", "Tai nạn giao thông tại ",
                         "Va chạm giữa xe máy và ô tô tại ", "Xe tải gây tai nạn tại "),
    "public_order": ("Gây rối trật tự công cộng tại ", "Tụ tập đông người gây mất trật tự tại ",
                     "Xô xát, đánh nhau tại ", "Hát karaoke gây ồn quá giờ tại ",
                     "Lấn chiếm vỉa hè, lòng đường tại "),
    "fire": ("Cháy nhà dân tại ", "Cháy xưởng sản xuất tại ", "Cháy rơm rạ, cỏ khô tại ",
             "Chập điện gây cháy tại "),
    "environment": ("Xả thải gây ô nhiễm tại ", "Rác thải tồn đọng tại ",
                    "Đốt rơm rạ gây khói bụi tại ", "Mùi hôi từ cơ sở sản xuất tại ",
                    "Cá chết bất thường tại "),
    "land_violation": ("Xây dựng trái phép trên đất nông nghiệp tại ", "Lấn chiếm đất công tại ",
                       "San lấp ruộng trái phép tại ", "Tranh chấp ranh giới thửa đất tại "),
    "infrastructure": ("Hư hỏng mặt đường tại ", "Đèn chiếu sáng không hoạt động tại ",
                       "Ngập úng cục bộ tại ", "Sự cố lưới điện tại ", "Vỡ đường ống nước tại ",
                       "Cây đổ chắn đường tại "),
    "security_event": ("Trộm cắp tài sản tại ", "Phát hiện đối tượng khả nghi tại ",
                       "Cướp giật tài sản tại ", "Mất trộm xe máy tại "),
}  # fmt: skip


def _hour_weights(cat: str) -> NDArray[np.float64]:
    h = np.arange(24, dtype=float)

    def bump(c: float, w: float) -> NDArray[np.float64]:
        d = np.minimum(np.abs(h - c), 24 - np.abs(h - c))
        return np.exp(-(d**2) / (2 * w**2))

    day = ((h >= 7) & (h <= 17)).astype(float)
    w = {
        "traffic_accident": 0.12 + 1.0 * bump(7.8, 1.0) + 1.1 * bump(17.8, 1.0) + 0.35 * day,
        "public_order": 0.1 + 0.3 * day + 1.0 * bump(21.5, 1.8),
        "fire": 0.25 + 0.6 * bump(14, 3) + 0.6 * bump(18, 1.2),
        "environment": 0.1 + 1.0 * day + 0.4 * bump(19, 1.5),
        "land_violation": 0.03 + 1.0 * day,
        "infrastructure": 0.15 + 1.0 * ((h >= 6) & (h <= 20)),
        "security_event": 0.3 + 1.0 * bump(1.5, 2.5) + 0.3 * day,
    }[cat]
    return w / w.sum()


def _hotspots(p: Province, rn: RoadNet, lu: LandUse) -> dict[str, tuple[NDArray, NDArray, NDArray]]:
    """(centres xy, sigma m, weight) for towns, busy junctions and industrial zones."""
    towns = p.towns
    town = (towns[["x", "y"]].to_numpy(), np.where(towns["weight"] >= 0.6, 900.0, 600.0),
            towns["weight"].to_numpy())  # fmt: skip
    major = rn.roads[rn.roads["road_class"].isin(["expressway", "trunk", "primary"])]
    geoms = major["geom"].to_numpy()
    names = major["name"].to_numpy()
    i, j = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    keep = (i < j) & (names[i] != names[j])
    pts = shapely.get_parts(shapely.intersection(geoms[i[keep]], geoms[j[keep]]))
    pts = pts[shapely.get_type_id(pts) == shapely.GeometryType.POINT]
    xy = np.unique(np.round(shapely.get_coordinates(pts), 0), axis=0)
    junction = (xy, np.full(len(xy), 150.0), np.ones(len(xy)))
    iz = lu.industrial
    industry = (iz[["x", "y"]].to_numpy(), iz["radius"].to_numpy() * 0.6, np.ones(len(iz)))
    return {"town": town, "junction": junction, "industry": industry}


def _gaussian_points(spots, n: int, outline, rng: np.random.Generator) -> NDArray[np.float64]:
    centre, sigma, weight = spots
    out = np.empty((n, 2))
    todo = np.arange(n)
    while todo.size:
        k = rng.choice(len(centre), todo.size, p=weight / weight.sum())
        xy = centre[k] + rng.normal(0, 1, (todo.size, 2)) * sigma[k][:, None]
        ok = shapely.contains_xy(outline, xy[:, 0], xy[:, 1])
        out[todo[ok]] = xy[ok]
        todo = todo[~ok]
    return out


def _road_points(rn: RoadNet, n: int, outline, rng: np.random.Generator):
    r = rn.roads
    geoms = r["geom"].to_numpy()
    w = shapely.length(geoms) * r["road_class"].map(ROAD_WEIGHT).to_numpy()
    k = rng.choice(len(geoms), n, p=w / w.sum())
    at = rng.random(n)
    pts = shapely.get_coordinates(shapely.line_interpolate_point(geoms[k], at, normalized=True))
    near = shapely.get_coordinates(
        shapely.line_interpolate_point(geoms[k], np.clip(at + 1e-3, 0, 1), normalized=True)
    )
    d = near - pts
    norm = np.hypot(d[:, 0], d[:, 1])
    normal = np.column_stack([-d[:, 1], d[:, 0]]) / np.where(norm > 0, norm, 1.0)[:, None]
    off = np.clip(rng.normal(0, 4.0, n), -10, 10)
    xy = pts + normal * off[:, None]
    bad = ~shapely.contains_xy(outline, xy[:, 0], xy[:, 1])
    xy[bad] = pts[bad]
    return xy, k


def build_incidents(
    p: Province, rn: RoadNet, lu: LandUse, as_of: date, seed: int, scale: float
) -> pd.DataFrame:
    rng = stream(seed, "incidents")
    n = max(100, int(round(INCIDENTS_PER_SCALE * scale)))
    cats = np.array(list(SHARES))
    cat_idx = np.sort(rng.choice(len(cats), n, p=np.array(list(SHARES.values()))))
    outline = p.outline
    shapely.prepare(outline)
    spots = _hotspots(p, rn, lu)

    # Background: faces weighted by people; farmland: rice blocks weighted by area.
    faces = p.faces
    face_w = shapely.area(faces) * p.density(p.face_xy[:, 0], p.face_xy[:, 1])
    rice = lu.blocks[lu.blocks["code"] == "LUC"]
    rice_geoms = rice["geom"].to_numpy()
    shapely.prepare(faces)
    shapely.prepare(rice_geoms)

    xy = np.empty((n, 2))
    road_name = np.full(n, None, dtype=object)
    mode = np.empty(n, dtype=np.intp)
    for c, cat in enumerate(cats):
        ix = np.flatnonzero(cat_idx == c)
        mode[ix] = rng.choice(len(MODES), ix.size, p=MIX[cat])
    for m, name in enumerate(MODES):
        ix = np.flatnonzero(mode == m)
        if not ix.size:
            continue
        if name == "road":
            xy[ix], k = _road_points(rn, ix.size, outline, rng)
            road_name[ix] = rn.roads["name"].to_numpy()[k]
        elif name in spots:
            xy[ix] = _gaussian_points(spots[name], ix.size, outline, rng)
        elif name == "background":
            f = rng.choice(len(faces), ix.size, p=face_w / face_w.sum())
            xy[ix] = random_points_in(faces, f, rng)
        else:
            a = rice["area"].to_numpy()
            b = rng.choice(len(rice_geoms), ix.size, p=a / a.sum())
            xy[ix] = random_points_in(rice_geoms, b, rng)

    start = window_start(as_of)
    reported = _times(cats, cat_idx, as_of, rng, start)
    df = pd.DataFrame({"category": cats[cat_idx], "reported_at": reported})
    df["severity"] = 0
    df["source"] = ""
    resolve_h = np.empty(n)
    for c, cat in enumerate(cats):
        ix = np.flatnonzero(cat_idx == c)
        df.loc[ix, "severity"] = rng.choice(4, ix.size, p=SEVERITY_P[cat]) + 1
        df.loc[ix, "source"] = np.asarray(SOURCES)[rng.choice(6, ix.size, p=SOURCE_P[cat])]
        resolve_h[ix] = RESOLVE_H[cat] * rng.lognormal(0, 0.9, ix.size)
    _status(df, resolve_h, as_of, rng)

    # The commune containing each point, post-2025 or pre-2025 by the report time. Stored
    # edges are straight in lon/lat, not in metres, so a boundary moves by up to a few
    # millimetres in the transform: points that close to a shared boundary of either era (road
    # pieces end on one) are moved half a metre off it first.
    new, old = p.new_communes, p.communes
    trees = [shapely.STRtree(new["geom"].to_numpy()), shapely.STRtree(old["geom"].to_numpy())]
    for angle in np.radians(np.arange(0, 360, 45) + 20):
        shared = np.unique(np.concatenate([
            np.flatnonzero(np.bincount(tree.query(shapely.points(xy), predicate="dwithin",
                                                  distance=BOUNDARY_MARGIN)[0], minlength=n) > 1)
            for tree in trees]))
        if not shared.size:
            break
        moved = xy[shared] + 0.5 * np.array([np.cos(angle), np.sin(angle)])
        ok = shapely.contains_xy(outline, moved[:, 0], moved[:, 1])
        xy[shared[ok]] = moved[ok]
    pts = shapely.points(xy)
    within = []
    for tree in trees:
        pi, ci = tree.query(pts, predicate="intersects")
        first = np.unique(pi, return_index=True)[1]
        commune = np.full(n, -1)
        commune[pi[first]] = ci[first]
        if (commune < 0).any():
            raise RuntimeError("incident outside the province")
        within.append(commune)
    before = reported < reform_instant()
    df["commune_code"] = np.where(before, old["code"].to_numpy()[within[1]],
                                  new["code"].to_numpy()[within[0]])

    place = np.where(before, old["name"].to_numpy()[within[1]],
                     new["name"].to_numpy()[within[0]]).astype(object)
    title = np.empty(n, dtype=object)
    for c, cat in enumerate(cats):
        ix = np.flatnonzero(cat_idx == c)
        prefixes = np.asarray(TITLES[cat], dtype=object)
        title[ix] = prefixes[rng.integers(0, len(prefixes), ix.size)] + place[ix]
    on_road = pd.notna(road_name) & (cat_idx == list(cats).index("traffic_accident"))
    title[on_road] = "Tai nạn giao thông trên " + road_name[on_road].astype(object)
    df["title"] = title
    src_vi = np.array([INCIDENT_SOURCES[s][0] for s in SOURCES], dtype=object)
    sev_vi = np.array([SEVERITIES[str(k)][0] for k in range(1, 5)], dtype=object)
    src_i = pd.Categorical(df["source"], categories=SOURCES).codes
    df["description"] = (
        "Tiếp nhận qua " + src_vi[src_i].astype(str) + "; mức độ "
        + np.char.lower(sev_vi[df["severity"].to_numpy() - 1].astype(str)) + "."
    )  # fmt: skip
    df["geom"] = pts
    df = df.sort_values("reported_at", kind="stable").reset_index(drop=True)
    return df[["category", "severity", "status", "source", "title", "description",
               "commune_code", "reported_at", "resolved_at", "geom"]]  # fmt: skip


def reform_instant() -> np.datetime64:
    """The start of the 2025 reform (midnight in the province) as UTC datetime64[s]."""
    return midnight(REFORM_DATE) - np.timedelta64(LOCAL_UTC_OFFSET_H, "h")


def window_start(as_of: date) -> np.datetime64:
    """The first instant of the incidents' window (UTC datetime64[s]): DAYS before as_of, or
    PRE_REFORM_DAYS before the reform if that is earlier."""
    return min(midnight(as_of) - np.timedelta64(DAYS, "D"),
               reform_instant() - np.timedelta64(PRE_REFORM_DAYS, "D"))


def _times(cats, cat_idx, as_of: date, rng: np.random.Generator, start: np.datetime64) -> NDArray:
    """Report times (datetime64[s], UTC) in [start, as_of) with the category's trend,
    season, weekday and hour-of-day weights (local time is UTC+7)."""
    end = midnight(as_of)
    n_days = int((end - start) // np.timedelta64(1, "D"))
    # Local calendar days covering the window (one more day at the end: its early hours
    # are still before midnight UTC).
    days = (start + np.timedelta64(LOCAL_UTC_OFFSET_H, "h")).astype("datetime64[D]") + np.arange(
        n_days + 1
    )
    dow = (days.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
    month = days.astype("datetime64[M]").astype(np.int64) % 12
    trend = 1.0 + 0.2 * np.arange(n_days + 1) / n_days
    out = np.empty(len(cat_idx), dtype="datetime64[s]")
    for c, cat in enumerate(cats):
        ix = np.flatnonzero(cat_idx == c)
        w = trend * np.asarray(WEEKDAY[cat])[dow] * np.asarray(MONTH[cat])[month]
        hw = _hour_weights(cat)
        todo = ix
        while todo.size:
            d = rng.choice(len(days), todo.size, p=w / w.sum())
            h = rng.choice(24, todo.size, p=hw)
            s = rng.integers(0, 3600, todo.size)
            t = (days[d].astype("datetime64[s]") + (h - LOCAL_UTC_OFFSET_H) * 3600 + s)
            ok = (t >= start) & (t < end)
            out[todo[ok]] = t[ok]
            todo = todo[~ok]
    return out


def _status(df: pd.DataFrame, resolve_h: NDArray, as_of: date, rng: np.random.Generator) -> None:
    """Resolved/closed iff the resolution time has passed; open ones by age."""
    end = midnight(as_of)
    n = len(df)
    rep = df["reported_at"].to_numpy().astype("datetime64[s]")
    res = rep + np.maximum(np.round(resolve_h * 3600), 60).astype("timedelta64[s]")
    backlog = rng.random(n) < 0.01
    done = (res < end) & ~backlog
    closed = done & (res < end - np.timedelta64(7, "D")) & (rng.random(n) < 0.9)
    age_h = (end - rep).astype(np.int64) / 3600.0
    u = rng.random(n)
    status = np.where(age_h < 2, "received", np.where(u < 0.45, "assigned", "in_progress"))
    status = np.where(done, np.where(closed, "closed", "resolved"), status).astype(object)
    df["status"] = status
    df["resolved_at"] = np.where(done, res, np.datetime64("NaT"))
