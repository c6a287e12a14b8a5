"""File formats and output CRS of exports, in one table (the API, the CLI and the tests read it)."""

from __future__ import annotations

from dataclasses import dataclass

from gis.crs import BAC_NINH_TM3, VN2000_UTM48N, WGS84
from layers.errors import BadRequest, Message


class FormatError(BadRequest, ValueError):
    """An unknown format or CRS, or a combination a format cannot hold (400 / CLI error)."""

    fallback = Message("export_invalid")


@dataclass(frozen=True)
class Format:
    key: str
    driver: str
    extension: str  # of the download (shp: .zip)
    media_type: str
    label: str
    # Text written with short (<= 10 character) field names and ISO-text date-times.
    short_names: bool = False
    datetime_as_text: bool = False
    # None: any export CRS; else the only CRS the format allows.
    fixed_srid: int | None = None
    tcvn3: bool = False


FORMATS: dict[str, Format] = {f.key: f for f in (
    Format("shp", "ESRI Shapefile", ".zip", "application/zip", "Shapefile (zip)",
           short_names=True, datetime_as_text=True, tcvn3=True),
    Format("gpkg", "GPKG", ".gpkg", "application/geopackage+sqlite3", "GeoPackage"),
    Format("geojson", "GeoJSON", ".geojson", "application/geo+json", "GeoJSON"),
    Format("fgb", "FlatGeobuf", ".fgb", "application/flatgeobuf", "FlatGeobuf"),
    Format("csv", "CSV", ".csv", "text/csv; charset=utf-8", "CSV (WKT)", datetime_as_text=True,
           tcvn3=True),
    Format("kml", "KML", ".kml", "application/vnd.google-earth.kml+xml", "KML",
           datetime_as_text=True, fixed_srid=WGS84),
)}
ALIASES = {"shapefile": "shp", "zip": "shp", "geopackage": "gpkg", "json": "geojson",
           "flatgeobuf": "fgb", "wkt": "csv"}

# Export CRS: WGS 84, VN-2000 / UTM 48N, and the province's VN-2000 TM-3 zone.
EXPORT_SRIDS: dict[int, str] = {
    WGS84: "WGS 84",
    VN2000_UTM48N: "VN-2000 / UTM zone 48N",
    BAC_NINH_TM3: "VN-2000 / TM-3 105-30",
}


def export_srids() -> dict[int, str]:
    """The fixed choices plus the configured province TM-3 zone (GEOIOC_PROVINCE_SRID)."""
    from gis.settings import get_settings

    srid = get_settings().province_srid
    if srid in EXPORT_SRIDS:
        return EXPORT_SRIDS
    from pyproj import CRS

    return {**EXPORT_SRIDS, srid: CRS.from_epsg(srid).name}


def get_format(key: str) -> Format:
    k = (key or "").strip().lower().lstrip(".")
    k = ALIASES.get(k, k)
    if k not in FORMATS:
        raise FormatError(f"unknown format {key!r}; use one of {', '.join(FORMATS)}",
                          message=Message("export_format",
                                          {"value": repr(key), "choices": ", ".join(FORMATS)}))
    return FORMATS[k]


def parse_export_crs(text: str | int | None) -> int:
    """'EPSG:9209', '9209', an OGC CRS URI, 'WGS84'/'CRS84' -> SRID among export_srids()."""
    if text is None or text == "":
        return WGS84
    t = str(text).strip()
    upper = t.upper()
    if upper in ("WGS84", "WGS 84", "CRS84", "OGC:CRS84", "EPSG:4326") or t.endswith("/CRS84"):
        return WGS84
    for prefix in ("EPSG:", "URN:OGC:DEF:CRS:EPSG::", "HTTP://WWW.OPENGIS.NET/DEF/CRS/EPSG/0/",
                   "HTTPS://WWW.OPENGIS.NET/DEF/CRS/EPSG/0/"):
        if upper.startswith(prefix):
            t = t[len(prefix):]
            break
    allowed = export_srids()
    if not t.isdigit() or int(t) not in allowed:
        choices = ", ".join(f"EPSG:{s} ({n})" for s, n in allowed.items())
        raise FormatError(f"unsupported export crs {text!r}; use {choices}",
                          message=Message("export_crs", {"value": repr(text), "choices": choices}))
    return int(t)
