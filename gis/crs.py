"""VN-2000 coordinate reference systems and transforms (see shared reference vietnam-geodata.md).

Always go through EPSG codes so that PROJ picks EPSG transformation 6960 for the datum shift;
hand-written proj strings are the source of the classic 220 m (no shift) and 0.7 m (wrong
rotation signs) errors.
"""

from __future__ import annotations

from functools import lru_cache

from pyproj import CRS, Transformer

WGS84 = 4326
VN2000_GEOGRAPHIC = 4756
VN2000_UTM48N = 3405
VN2000_UTM49N = 3406
WEB_MERCATOR = 3857
# VN-2000 / TM-3 zones that PostGIS 3.3 lacks (EPSG 9205..9218), by central meridian.
VN2000_TM3_MISSING_IN_POSTGIS = range(9205, 9219)
BAC_NINH_TM3 = 9209

# Datum shift VN-2000 -> WGS84 in PROJ's position-vector convention (rotation signs flipped
# from the EPSG coordinate-frame values), exactly as PostGIS's own 5896..5899 rows carry it.
VN2000_TOWGS84 = (
    "-191.90441429,-39.30318279,-111.45032835,0.00928836,-0.01975479,0.00427372,0.252906278"
)


@lru_cache
def transformer(src: int, dst: int) -> Transformer:
    return Transformer.from_crs(src, dst, always_xy=True)


def central_meridian(epsg: int) -> float:
    """Longitude of natural origin of a Transverse Mercator CRS."""
    op = CRS.from_epsg(epsg).coordinate_operation
    for p in op.params:
        if p.name == "Longitude of natural origin":
            return float(p.value)
    raise ValueError(f"EPSG:{epsg} has no central meridian")


def vn2000_tm3_proj4(epsg: int) -> str:
    """PostGIS proj4text for a VN-2000 TM-3 zone, in the form of PostGIS's own EPSG:5897 row."""
    lon0 = central_meridian(epsg)
    return (
        f"+proj=tmerc +lat_0=0 +lon_0={lon0:g} +k=0.9999 +x_0=500000 +y_0=0 +ellps=WGS84 "
        f"+towgs84={VN2000_TOWGS84} +units=m +no_defs"
    )


def srtext(epsg: int) -> str:
    from pyproj.enums import WktVersion

    return CRS.from_epsg(epsg).to_wkt(WktVersion.WKT1_GDAL)


# --- OGC API CRS identifiers ----------------------------------------------------------------
CRS84_URI = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG_URI = "http://www.opengis.net/def/crs/EPSG/0/{}"
# CRS offered by every collection (OGC API - Features Part 2); storage is CRS84 (= 4326 lon/lat).
OGC_CRS_SRIDS = (4326, WEB_MERCATOR, VN2000_GEOGRAPHIC, VN2000_UTM48N, BAC_NINH_TM3)


class UnsupportedCRS(ValueError):
    pass


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
        raise UnsupportedCRS(f"unsupported crs {uri!r}; supported: {', '.join(supported_crs_uris())}")
    srid = int(code)
    return srid, _north_first(srid)
