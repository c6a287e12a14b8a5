"""Shared helpers of the sample generator: random streams, metric geometry utilities, CRS.

Everything is generated in EPSG:9209 (VN-2000 / TM-3 105-30, Bac Ninh's cadastral CRS) so that
sizes, widths and areas are plain metres; only the finished tables are moved to EPSG:4326.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import numpy as np
import shapely
from numpy.typing import NDArray

from gis.crs import BAC_NINH_TM3, WGS84, transformer

METRIC_SRID = BAC_NINH_TM3
STORAGE_SRID = WGS84

# One fixed stream id per generation step: a step's numbers do not depend on which other steps
# ran before it, so changing e.g. the incident model never moves a commune boundary.
STREAMS = {
    "province": 1,
    "districts": 2,
    "communes": 3,
    "reform": 4,
    "names": 5,
    "roads": 6,
    "streets": 7,
    "zones": 8,
    "parcels": 9,
    "parcel_attrs": 10,
    "planted": 11,
    "cameras": 12,
    "sensors": 13,
    "observations": 14,
    "tourism": 15,
    "incidents": 16,
    "facilities": 17,
    "parcel_history": 18,
    "reports": 19,
    "indicators": 20,
}


def stream(seed: int, name: str, *sub: int) -> np.random.Generator:
    """Independent generator for one step (and optionally one sub-item, e.g. a commune)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(STREAMS[name], *sub)))


def midnight(as_of: date) -> np.datetime64:
    """as_of's midnight in UTC (naive datetime64[s] meaning UTC): the sample's "now"."""
    return np.datetime64(as_of.isoformat(), "s")


def to_lonlat(xy: NDArray[np.float64]) -> NDArray[np.float64]:
    """(n, 2) EPSG:9209 metres -> (n, 2) lon/lat, vectorised (used by shapely.transform)."""
    lon, lat = transformer(METRIC_SRID, STORAGE_SRID).transform(xy[:, 0], xy[:, 1])
    return np.column_stack([lon, lat])


def from_lonlat(lon: float, lat: float) -> tuple[float, float]:
    x, y = transformer(STORAGE_SRID, METRIC_SRID).transform(lon, lat)
    return float(x), float(y)


def storage_safe(polys: NDArray[np.object_]) -> tuple[NDArray[np.object_], NDArray[np.intp]]:
    """Polygons that stay valid in EPSG:4326, with the index of the input each came from.

    Overlays can leave a vertex nanometres from an edge, or a hair-thin sliver; the transform's
    rounding then makes the ring cross itself. Only those polygons are snap-rounded to a
    millimetre grid (every vertex then lies at least half a millimetre from other edges); a
    polygon may come out in several parts, and slivers that collapse are dropped.
    """
    polys = np.asarray(polys, dtype=object)
    bad = ~shapely.is_valid(shapely.transform(polys, to_lonlat))
    if not bad.any():
        return polys, np.arange(len(polys))
    parts, idx = polygon_parts(shapely.set_precision(polys[bad], 0.001), min_area=0.01)
    good = np.flatnonzero(~bad)
    src = np.concatenate([good, np.flatnonzero(bad)[idx]])
    order = np.argsort(src, kind="stable")
    return np.concatenate([polys[good], parts])[order], src[order]


def to_storage(geoms: NDArray[np.object_]) -> NDArray[np.object_]:
    """Transform an array of metric geometries to EPSG:4326 in one call.

    Polygons that rounding would make invalid are snap-rounded first (see storage_safe); the
    check guards against any other surprise (the database would reject the row).
    """
    geoms = np.asarray(geoms, dtype=object)
    out = shapely.transform(geoms, to_lonlat)
    bad = np.flatnonzero(~shapely.is_valid(out))
    if bad.size:
        fixed = shapely.set_precision(geoms[bad], 0.001)
        multi = shapely.get_type_id(geoms[bad]) == shapely.GeometryType.MULTIPOLYGON
        if multi.any():
            fixed[multi] = as_multipolygons(fixed[multi])
        out[bad] = shapely.transform(fixed, to_lonlat)
        same_type = shapely.get_type_id(out[bad]) == shapely.get_type_id(geoms[bad])
        if not same_type.all():
            raise ValueError("snap rounding changed a geometry type")
    bad = ~shapely.is_valid(out) | shapely.is_empty(out)
    if bad.any():
        raise ValueError(f"{int(bad.sum())} geometries invalid after transform to EPSG:4326")
    return out


def as_multipolygons(geoms: NDArray[np.object_]) -> NDArray[np.object_]:
    """Wrap every Polygon/MultiPolygon as a MultiPolygon (the type of the table columns)."""
    geoms = np.asarray(geoms, dtype=object)
    parts, idx = shapely.get_parts(geoms, return_index=True)
    keep = (shapely.get_type_id(parts) == shapely.GeometryType.POLYGON) & ~shapely.is_empty(parts)
    out = shapely.multipolygons(parts[keep], indices=idx[keep])
    if len(out) != len(geoms) or shapely.is_empty(out).any():
        raise ValueError("a geometry without polygon parts cannot become a MultiPolygon")
    return out


def polygon_parts(geoms: NDArray[np.object_], min_area: float = 0.0) -> tuple[NDArray, NDArray]:
    """Explode to Polygons (dropping lines/points from overlay collections and tiny pieces).

    Returns the parts and the index of the input each came from.
    """
    parts, idx = shapely.get_parts(np.asarray(geoms, dtype=object), return_index=True)
    # GeometryCollections (possible from overlays) are flattened one level further.
    coll = shapely.get_type_id(parts) == shapely.GeometryType.GEOMETRYCOLLECTION
    if coll.any():
        sub, sidx = shapely.get_parts(parts[coll], return_index=True)
        parts = np.concatenate([parts[~coll], sub])
        idx = np.concatenate([idx[~coll], idx[coll][sidx]])
        order = np.argsort(idx, kind="stable")
        parts, idx = parts[order], idx[order]
    keep = (shapely.get_type_id(parts) == shapely.GeometryType.POLYGON) & ~shapely.is_empty(parts)
    if min_area > 0:
        keep &= shapely.area(parts) >= min_area
    return parts[keep], idx[keep]


def line_parts(geoms: NDArray[np.object_], min_length: float = 0.0) -> tuple[NDArray, NDArray]:
    """Explode to LineStrings (roads are stored as single LineStrings)."""
    parts, idx = shapely.get_parts(np.asarray(geoms, dtype=object), return_index=True)
    coll = shapely.get_type_id(parts) == shapely.GeometryType.GEOMETRYCOLLECTION
    if coll.any():
        sub, sidx = shapely.get_parts(parts[coll], return_index=True)
        parts = np.concatenate([parts[~coll], sub])
        idx = np.concatenate([idx[~coll], idx[coll][sidx]])
        order = np.argsort(idx, kind="stable")
        parts, idx = parts[order], idx[order]
    multi = shapely.get_type_id(parts) == shapely.GeometryType.MULTILINESTRING
    if multi.any():
        sub, sidx = shapely.get_parts(parts[multi], return_index=True)
        parts = np.concatenate([parts[~multi], sub])
        idx = np.concatenate([idx[~multi], idx[multi][sidx]])
        order = np.argsort(idx, kind="stable")
        parts, idx = parts[order], idx[order]
    keep = (shapely.get_type_id(parts) == shapely.GeometryType.LINESTRING) & ~shapely.is_empty(parts)
    keep &= shapely.length(parts) > min_length
    return parts[keep], idx[keep]


def smooth_curve(points: NDArray[np.float64], step: float = 60.0) -> NDArray[np.float64]:
    """Centripetal-free (uniform) Catmull-Rom spline through control points, sampled ~`step` m.

    Real trunk roads and rivers bend smoothly; a spline through a few jittered control points
    gives that look without a hand-drawn dataset.
    """
    p = np.asarray(points, dtype=float)
    p = np.vstack([2 * p[0] - p[1], p, 2 * p[-1] - p[-2]])
    out = []
    for i in range(1, len(p) - 2):
        p0, p1, p2, p3 = p[i - 1], p[i], p[i + 1], p[i + 2]
        n = max(2, int(np.ceil(np.linalg.norm(p2 - p1) / step)))
        t = np.linspace(0.0, 1.0, n, endpoint=False)[:, None]
        t2, t3 = t * t, t * t * t
        seg = 0.5 * (
            2 * p1
            + (-p0 + p2) * t
            + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t2
            + (-p0 + 3 * p1 - 3 * p2 + p3) * t3
        )
        out.append(seg)
    out.append(p[-2][None, :])
    return np.vstack(out)


def random_points_in(
    polys: NDArray[np.object_],
    which: NDArray[np.intp],
    rng: np.random.Generator,
) -> NDArray[np.float64]:
    """Uniform random point inside polys[which[i]] for every i, by vectorised rejection."""
    which = np.asarray(which)
    bounds = shapely.bounds(polys)
    out = np.empty((len(which), 2))
    todo = np.arange(len(which))
    while todo.size:
        b = bounds[which[todo]]
        x = b[:, 0] + rng.random(todo.size) * (b[:, 2] - b[:, 0])
        y = b[:, 1] + rng.random(todo.size) * (b[:, 3] - b[:, 1])
        ok = shapely.contains_xy(polys[which[todo]], x, y)
        out[todo[ok], 0] = x[ok]
        out[todo[ok], 1] = y[ok]
        todo = todo[~ok]
    return out


def sector(
    x: NDArray, y: NDArray, heading_deg: NDArray, fov_deg: NDArray, radius: NDArray, n: int = 12
) -> NDArray[np.object_]:
    """Camera field-of-view sectors (apex + arc), vectorised; heading clockwise from north."""
    frac = np.linspace(-0.5, 0.5, n)[None, :]
    ang = np.radians(heading_deg[:, None] + frac * fov_deg[:, None])
    ax = x[:, None] + radius[:, None] * np.sin(ang)
    ay = y[:, None] + radius[:, None] * np.cos(ang)
    ring = np.concatenate(
        [
            np.stack([x, y], axis=1)[:, None, :],
            np.stack([ax, ay], axis=2),
            np.stack([x, y], axis=1)[:, None, :],
        ],
        axis=1,
    )
    return shapely.polygons(ring)


def parallel_map(func, items) -> list:
    """Map over items with a thread pool, results in input order.

    Shapely releases the GIL inside GEOS, so per-commune overlays run on all cores; the result
    does not depend on scheduling because every item uses only its own inputs and stream.
    """
    items = list(items)
    workers = min(len(items), os.cpu_count() or 1)
    if workers <= 1:
        return [func(i) for i in items]
    with ThreadPoolExecutor(workers) as ex:
        return list(ex.map(func, items))
