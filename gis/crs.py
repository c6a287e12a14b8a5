"""VN-2000 coordinate reference systems and transforms (see shared reference vietnam-geodata.md).

Always go through EPSG codes so that PROJ picks EPSG transformation 6960 for the datum shift;
hand-written proj strings are the source of the classic 220 m (no shift) and 0.7 m (wrong
rotation signs) errors.
"""

from __future__ import annotations

from pyproj import CRS

from layers.crs import (  # noqa: F401  (re-exported: the domain's one CRS module)
    BAC_NINH_TM3,
    CRS84_URI,
    OGC_CRS_SRIDS,
    VN2000_GEOGRAPHIC,
    VN2000_UTM48N,
    WEB_MERCATOR,
    WGS84,
    UnsupportedCRS,
    crs_uri,
    parse_crs_uri,
    supported_crs_uris,
    transformer,
)

VN2000_UTM49N = 3406
# VN-2000 / TM-3 zones that PostGIS 3.3 lacks (EPSG 9205..9218), by central meridian.
VN2000_TM3_MISSING_IN_POSTGIS = range(9205, 9219)

# Datum shift VN-2000 -> WGS84 in PROJ's position-vector convention (rotation signs flipped
# from the EPSG coordinate-frame values), exactly as PostGIS's own 5896..5899 rows carry it.
VN2000_TOWGS84 = (
    "-191.90441429,-39.30318279,-111.45032835,0.00928836,-0.01975479,0.00427372,0.252906278"
)


def central_meridian(epsg: int) -> float:
    """Longitude of natural origin of a Transverse Mercator CRS."""
    op = CRS.from_epsg(epsg).coordinate_operation
    if op is None:
        raise ValueError(f"EPSG:{epsg} is not a projected CRS")
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
