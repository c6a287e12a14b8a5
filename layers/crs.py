"""CRS identifiers the catalogue's collections are offered in, and the one cached transformer.

At the bottom of the package order because the SQL builders (CQL2 `filter-crs`, bbox-crs) need
them; VN-2000 specifics (datum shift, TM-3 zones missing from PostGIS) stay in gis.crs.
"""

from __future__ import annotations

from functools import lru_cache

from pyproj import CRS, Transformer

from layers.errors import BadRequest, Message

WGS84 = 4326
VN2000_GEOGRAPHIC = 4756
VN2000_UTM48N = 3405
WEB_MERCATOR = 3857
BAC_NINH_TM3 = 9209


@lru_cache
def transformer(src: int, dst: int) -> Transformer:
    """Cached: building a PROJ pipeline costs milliseconds, every request would pay it."""
    return Transformer.from_crs(src, dst, always_xy=True)


# --- OGC API CRS identifiers ----------------------------------------------------------------
CRS84_URI = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG_URI = "http://www.opengis.net/def/crs/EPSG/0/{}"
# CRS offered by every collection (OGC API - Features Part 2); storage is CRS84 (= 4326 lon/lat).
OGC_CRS_SRIDS = (4326, WEB_MERCATOR, VN2000_GEOGRAPHIC, VN2000_UTM48N, BAC_NINH_TM3)


class UnsupportedCRS(BadRequest, ValueError):
    """A CRS this server does not offer (400)."""

    fallback = Message("crs_unsupported_any")


def crs_uri(srid: int) -> str:
    return EPSG_URI.format(srid)


def supported_crs_uris() -> list[str]:
    return [CRS84_URI, *(crs_uri(s) for s in OGC_CRS_SRIDS)]


@lru_cache
def _north_first(srid: int) -> bool:
    return CRS.from_epsg(srid).axis_info[0].direction == "north"


def parse_crs_uri(uri: str) -> tuple[int, bool]:
    """Map an OGC CRS URI (or EPSG:n / CRS84 shorthand) to (srid, swap_axes).

    EPSG:4326 and EPSG:4756 are latitude-first by definition, so coordinates are swapped on the
    way out and in; CRS84 is the same datum in longitude-first order.
    """
    u = uri.strip().strip("[]")
    if u in (CRS84_URI, "CRS84", "OGC:CRS84", "urn:ogc:def:crs:OGC:1.3:CRS84"):
        return 4326, False
    code = None
    for prefix in ("http://www.opengis.net/def/crs/EPSG/0/", "https://www.opengis.net/def/crs/EPSG/0/",
                   "EPSG:", "urn:ogc:def:crs:EPSG::"):
        if u.startswith(prefix):
            code = u[len(prefix):]
            break
    if code is None or not code.isdigit() or int(code) not in OGC_CRS_SRIDS:
        raise UnsupportedCRS(f"unsupported crs {uri!r}; supported: {', '.join(supported_crs_uris())}",
                             message=Message("crs_unsupported", {
                                 "value": repr(uri), "supported": ", ".join(supported_crs_uris())}))
    srid = int(code)
    return srid, _north_first(srid)


@lru_cache
def projected_bounds(srid: int) -> tuple[float, float, float, float] | None:
    """The area of use of projected CRS SRID in its own x/y (None for a geographic CRS). Outside
    it the projection's formulas diverge (a transverse Mercator thousands of kilometres from its
    meridian), and PROJ fails or returns infinities."""
    crs = CRS.from_epsg(srid)
    area = crs.area_of_use
    if crs.is_geographic or area is None:
        return None
    x1, y1, x2, y2 = transformer(WGS84, srid).transform_bounds(
        area.west, area.south, area.east, area.north, densify_pts=21)
    return float(x1), float(y1), float(x2), float(y2)

