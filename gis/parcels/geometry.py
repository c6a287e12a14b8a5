"""GeoJSON polygons from clients: checked to the point where a 422 can say what is wrong and
where (ring not closed, self-intersection at a coordinate), never a 500 from PostGIS.

Structure is checked in Python first (types, numbers, ring closure, lon/lat ranges), validity
by PostGIS's ST_IsValidDetail (the same GEOS rules as the table's CHECK constraint), with the
location given in lon/lat and in the province's VN-2000 X/Y.
"""

from __future__ import annotations

import json
import math
from typing import Any

import psycopg

from gis.parcels.common import describe_location, location
from gis.parcels.errors import InvalidGeometry
from gis.rows import one, scalar

MAX_VERTICES = 20_000


def _position(p: Any, where: str) -> tuple[float, float]:
    if not isinstance(p, list | tuple) or len(p) < 2 or len(p) > 3:
        raise InvalidGeometry(f"geometry: {where} is not a position [x, y]")
    try:
        x, y = float(p[0]), float(p[1])
    except (TypeError, ValueError):
        raise InvalidGeometry(f"geometry: {where} has a non-numeric coordinate {p!r}") from None
    if isinstance(p[0], bool) or isinstance(p[1], bool) or not (math.isfinite(x) and math.isfinite(y)):
        raise InvalidGeometry(f"geometry: {where} has a non-numeric coordinate {p!r}")
    return x, y


def _check_structure(geom: Any, srid: int) -> list[list[list[tuple[float, float]]]]:
    """Polygons as lists of rings of (x, y); raises InvalidGeometry naming the first problem."""
    if isinstance(geom, dict) and geom.get("type") == "Feature":
        geom = geom.get("geometry")
    if not isinstance(geom, dict):
        raise InvalidGeometry("geometry: expected a GeoJSON Polygon or MultiPolygon object")
    kind = geom.get("type")
    coords = geom.get("coordinates")
    if kind not in ("Polygon", "MultiPolygon"):
        raise InvalidGeometry(f"geometry: type {kind!r} is not a Polygon or MultiPolygon")
    if not isinstance(coords, list) or not coords:
        raise InvalidGeometry(f"geometry: {kind} without coordinates")
    polygons = [coords] if kind == "Polygon" else coords
    out = []
    count = 0
    for i, poly in enumerate(polygons, 1):
        if not isinstance(poly, list) or not poly:
            raise InvalidGeometry(f"geometry: polygon {i} has no rings")
        rings = []
        for j, ring in enumerate(poly, 1):
            name = f"polygon {i} " + ("outer ring" if j == 1 else f"hole {j - 1}")
            if not isinstance(ring, list):
                raise InvalidGeometry(f"geometry: {name} is not a list of positions")
            pts = [_position(p, f"{name} position {k}") for k, p in enumerate(ring, 1)]
            count += len(pts)
            if count > MAX_VERTICES:
                raise InvalidGeometry(f"geometry: more than {MAX_VERTICES} vertices")
            if len(pts) < 4:
                raise InvalidGeometry(f"geometry: {name} has {len(pts)} positions; a ring needs "
                                      "at least 4 (3 corners and the first repeated at the end)")
            if pts[0] != pts[-1]:
                raise InvalidGeometry(
                    f"geometry: {name} is not closed: it starts at {list(pts[0])} and ends at "
                    f"{list(pts[-1])} (repeat the first position at the end)")
            if srid == 4326:
                bad = next((p for p in pts if not (-180 <= p[0] <= 180 and -90 <= p[1] <= 90)), None)
                if bad is not None:
                    raise InvalidGeometry(
                        f"geometry: {name} position {list(bad)} is not longitude, latitude "
                        "(for VN-2000 coordinates give \"crs\")")
            rings.append(pts)
        out.append(rings)
    return out


def polygon_from_geojson(conn: psycopg.Connection, geom: Any, *, srid: int = 4326,
                         province_srid: int = 9209) -> bytes:
    """The polygon as EPSG:4326 MultiPolygon WKB, valid, or InvalidGeometry.

    SRID is the CRS of the coordinates (4326 lon/lat, or the province's VN-2000 TM-3 with
    x = easting, y = northing as GeoJSON orders them)."""
    polygons = _check_structure(geom, srid)
    multi = {"type": "MultiPolygon",
             "coordinates": [[[list(p) for p in ring] for ring in rings] for rings in polygons]}
    row = one(conn.execute(
        "WITH g AS (SELECT ST_SetSRID(ST_GeomFromGeoJSON(%(j)s), %(srid)s) AS g),"
        " d AS (SELECT (ST_IsValidDetail(g)).* FROM g)"
        " SELECT d.valid, d.reason, ST_X(ST_Transform(ST_SetSRID(d.location, %(srid)s), 4326)),"
        "  ST_Y(ST_Transform(ST_SetSRID(d.location, %(srid)s), 4326)),"
        "  CASE WHEN d.valid THEN ST_AsBinary(ST_Multi(ST_Transform(g.g, 4326))) END,"
        "  CASE WHEN d.valid THEN ST_Area(ST_Transform(g.g, %(p)s)) END"
        " FROM g, d",
        {"j": json.dumps(multi), "srid": srid, "p": province_srid},
    ))
    valid, reason, lon, lat, wkb, area = row
    if not valid:
        problem: dict[str, Any] = {"reason": reason}
        text = f"geometry is invalid: {reason}"
        if lon is not None and lat is not None:
            problem["location"] = location(lon, lat, province_srid)
            text += " at " + describe_location(problem["location"])
        raise InvalidGeometry(text, located=[problem])
    if not area or area <= 0:
        raise InvalidGeometry("geometry: the polygon has no area")
    # Re-check after the transform: a valid VN-2000 polygon could in theory collapse a spike.
    ok = scalar(conn.execute("SELECT geoioc_geom_ok(ST_GeomFromWKB(%s, 4326))", (wkb,)))
    if not ok:
        raise InvalidGeometry("geometry becomes invalid when transformed to lon/lat; "
                              "remove near-duplicate vertices")
    return bytes(wkb)
