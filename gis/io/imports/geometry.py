"""Validating an import's geometries: type, emptiness, reprojection to EPSG:4326, extent and
validity, on whole arrays.

The catalogue fixes each layer's geometry type; a file's geometries are checked against it
with shapely's vectorised functions (no per-row Python), and a file of 2D points is checked
straight from its WKB bytes in numpy, because building a million shapely points costs more than
the rest of the check. A geometry that lands outside Vietnam after reprojection is refused as a
wrong CRS rather than stored somewhere in the sea. Invalid geometries are not refused here:
whether one is acceptable (unchanged from what is stored, or repaired on request) is the
database's call (gis.io.imports.repair).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import shapely
from pyproj import Transformer

from gis.geos import reason_entry
from gis.io.imports.report import Reason
from gis.io.sourcecrs import SourceCRS
from layers.model import Layer

# Vietnam's extent with the offshore islands: a point outside after reprojection means the
# file's CRS is wrong.
VIETNAM_EXTENT = (101.0, 6.0, 118.0, 24.0)

WKB = npt.NDArray[np.object_]  # bytes, or None for a row without geometry
Flags = npt.NDArray[np.bool_]
Coords = npt.NDArray[np.float64]

_TYPE_IDS = {"Point": 0, "LineString": 1, "Polygon": 3, "MultiPolygon": 6}
_TYPE_NAMES = {0: "Point", 1: "LineString", 2: "LinearRing", 3: "Polygon", 4: "MultiPoint",
               5: "MultiLineString", 6: "MultiPolygon", 7: "GeometryCollection"}


# A 2D little-endian WKB point, as GDAL hands points out: byte order, type, x, y.
_WKB_POINT = np.dtype({"names": ["order", "type", "x", "y"], "formats": ["u1", "<u4", "<f8", "<f8"],
                       "offsets": [0, 1, 5, 13], "itemsize": 21})


def _to_wgs84(src: SourceCRS) -> Callable[[Coords], Coords]:
    """(n, 2) coordinates in the file's CRS -> longitude, latitude."""
    # GDAL hands out x = easting / longitude whatever the CRS's axis order: always_xy.
    tr = Transformer.from_crs(src.crs, 4326, always_xy=True)

    def project(xy: Coords) -> Coords:
        x, y = tr.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    return project


def _outside_vietnam(bounds: Coords, ok: Flags, src: SourceCRS, errors: dict[int, list[str]]) -> Flags:
    """Rows (among OK) whose bounds (n, 4) in WGS84 leave Vietnam: a wrong CRS, said per row."""
    minx, miny, maxx, maxy = VIETNAM_EXTENT
    with np.errstate(invalid="ignore"):
        outside = ok & ~((bounds[:, 0] >= minx) & (bounds[:, 2] <= maxx)
                         & (bounds[:, 1] >= miny) & (bounds[:, 3] <= maxy))
    for i in np.flatnonzero(outside):
        x, y = bounds[i, 0], bounds[i, 1]
        where = "not finite" if not (math.isfinite(x) and math.isfinite(y)) else f"lon {x:.5f}, lat {y:.5f}"
        errors.setdefault(int(i), []).append(Reason(
            f"outside Vietnam after reprojection from {src.label} ({where}): wrong CRS?",
            "import_outside_vietnam", crs=src.label))
    return outside


def invalid_reason(why: str) -> Reason:
    """A row refused for its invalid geometry (GEOS's WHY), with its catalogue entry."""
    return Reason(f"invalid geometry ({why}); re-run with repair to fix it with ST_MakeValid",
                  "import_invalid_geometry", reason=reason_entry(why))


def _wkb_points(wkb: WKB) -> Coords | None:
    """The (n, 2) coordinates when every row is a 2D little-endian WKB point, else None (then
    shapely reads them). A million points are checked from their bytes in numpy, without
    building a million geometries (shapely.from_wkb alone took 0.9 s of a 12 s import)."""
    if not len(wkb):
        return None
    try:
        if (np.fromiter(map(len, wkb), np.int64, len(wkb)) != _WKB_POINT.itemsize).any():
            return None
    except TypeError:  # a missing geometry (None)
        return None
    rec = np.frombuffer(b"".join(wkb), _WKB_POINT)
    if (rec["order"] != 1).any() or (rec["type"] != 1).any():
        return None
    return np.column_stack([rec["x"], rec["y"]])


def _check_points(xy: Coords, wkb: WKB, src: SourceCRS,
                  errors: dict[int, list[str]]) -> tuple[WKB, Flags, dict[int, str]]:
    """check_geometries for a file of 2D points (_wkb_points): a finite point is valid."""
    n = len(xy)
    empty = np.isnan(xy[:, 0]) & np.isnan(xy[:, 1])  # WKB writes an empty point as NaN, NaN
    for i in np.flatnonzero(empty):
        errors.setdefault(int(i), []).append(Reason("empty geometry", "import_empty_geometry"))
    ok = ~empty
    out = wkb.copy()
    if not src.is_wgs84 and ok.any():
        xy = xy.copy()
        xy[ok] = _to_wgs84(src)(xy[ok])
        rec = np.zeros(n, _WKB_POINT)
        rec["order"], rec["type"], rec["x"], rec["y"] = 1, 1, xy[:, 0], xy[:, 1]
        raw = rec.tobytes()
        size = _WKB_POINT.itemsize
        out[:] = [raw[k:k + size] for k in range(0, n * size, size)]
    ok &= ~_outside_vietnam(np.column_stack([xy, xy]), ok, src, errors)
    out[~ok] = None
    return out, np.zeros(n, dtype=bool), {}


def check_geometries(layer: Layer, wkb: WKB, src: SourceCRS, repair: bool,
                     errors: dict[int, list[str]]) -> tuple[WKB, Flags, dict[int, str]]:
    """(WKB in EPSG:4326, repair flags, invalid geometries). Type, emptiness, reprojection and
    extent are checked on whole arrays; rows that fail get their reason in ERRORS. Invalid
    geometries are returned apart: one within a millimetre of the stored geometry of the same
    feature is no change (a round trip through VN-2000 can make a valid polygon's near-touching
    vertices cross by 1e-10 degree), which only the database can tell."""
    xy = _wkb_points(wkb) if layer.geometry_type == "Point" else None
    if xy is not None:
        return _check_points(xy, wkb, src, errors)
    geoms: npt.NDArray[np.object_] = shapely.from_wkb(wkb, on_invalid="ignore")
    n = len(geoms)
    missing = shapely.is_missing(geoms)
    empty = ~missing & shapely.is_empty(geoms)
    for i in np.flatnonzero(missing):
        errors.setdefault(int(i), []).append(
            Reason("no geometry", "import_no_row_geometry") if wkb[i] is None
            else Reason("unreadable geometry", "import_unreadable_geometry"))
    for i in np.flatnonzero(empty):
        errors.setdefault(int(i), []).append(Reason("empty geometry", "import_empty_geometry"))
    ok = ~(missing | empty)
    geoms = geoms.copy()
    geoms[~ok] = None
    # Rows whose geometry differs from the file's WKB (the others pass their bytes on as read).
    modified = np.zeros(n, dtype=bool)
    if shapely.has_z(geoms[ok]).any():
        geoms[ok] = shapely.force_2d(geoms[ok])
        modified[ok] = True
    types = np.full(n, -1)
    types[ok] = shapely.get_type_id(geoms[ok])
    parts = np.ones(n, dtype=int)
    parts[ok] = shapely.get_num_geometries(geoms[ok])
    want = _TYPE_IDS[layer.geometry_type]
    if layer.geometry_type == "MultiPolygon":
        fits = (types == 3) | (types == 6)
    else:  # a single-part Multi* is taken as its part (in SQL)
        fits = (types == want) | ((types == want + 3) & (parts == 1))
    for i in np.flatnonzero(ok & ~fits):
        what = _TYPE_NAMES.get(int(types[i]), "geometry")
        if types[i] == want + 3:
            what = f"{what} of {parts[i]} parts"
        errors.setdefault(int(i), []).append(Reason(
            f"{what} where layer {layer.id} holds {layer.geometry_type}s", "import_geometry_type",
            what=_TYPE_NAMES.get(int(types[i]), "geometry"), layer=layer.id,
            type=layer.geometry_type))
    ok &= fits
    single = ok & (types == want + 3)
    if single.any():  # a one-part MultiPoint/MultiLineString/MultiPolygon: its part
        geoms[single] = shapely.get_geometry(geoms[single], 0)
        modified |= single
    if not src.is_wgs84 and ok.any():
        geoms[ok] = shapely.transform(geoms[ok], _to_wgs84(src))
        modified[ok] = True
    bounds = np.full((n, 4), np.nan)
    bounds[ok] = shapely.bounds(geoms[ok])
    ok &= ~_outside_vietnam(bounds, ok, src, errors)
    flags = np.zeros(n, dtype=bool)
    invalid: dict[int, str] = {}
    if ok.any() and layer.geometry_type != "Point":  # a finite point is valid
        valid = np.zeros(n, dtype=bool)
        valid[ok] = shapely.is_valid(geoms[ok])
        for i in np.flatnonzero(ok & ~valid):
            flags[i] = repair
            invalid[int(i)] = invalid_reason(shapely.is_valid_reason(geoms[i]))
    out = np.empty(n, dtype=object)
    redo = ok & modified
    out[redo] = shapely.to_wkb(geoms[redo])
    same = ok & ~modified
    out[same] = wkb[same]  # the file's own bytes: no re-encoding
    return out, flags, invalid
