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

from gis.geos import reason_entry
from gis.parcels.common import describe_location, location, location_entry
from gis.parcels.errors import InvalidGeometry
from gis.rows import one, scalar
from layers.errors import Message

MAX_VERTICES = 20_000

def _bad(english: str, key: str, **args: Any) -> InvalidGeometry:
    """InvalidGeometry with its English text and its catalogue entry KEY (ARGS fill it)."""
    return InvalidGeometry(f"geometry: {english}", message=Message(key, args or None))


def _ring(i: int, j: int) -> tuple[str, Message]:
    """Polygon I's ring J (1: the outer ring, then its holes) in English and as an entry."""
    if j == 1:
        return f"polygon {i} outer ring", Message("ring_outer", {"i": i})
    return f"polygon {i} hole {j - 1}", Message("ring_hole", {"i": i, "j": j - 1})


def _position(p: Any, where: str, ring: Message, k: int) -> tuple[float, float]:
    if not isinstance(p, list | tuple) or len(p) < 2 or len(p) > 3:
        raise _bad(f"{where} is not a position [x, y]", "geometry_position", ring=ring, k=str(k))
    try:
        x, y = float(p[0]), float(p[1])
    except (TypeError, ValueError):
        raise _bad(f"{where} has a non-numeric coordinate {p!r}", "geometry_coordinate",
                   ring=ring, k=str(k)) from None
    if isinstance(p[0], bool) or isinstance(p[1], bool) or not (math.isfinite(x) and math.isfinite(y)):
        raise _bad(f"{where} has a non-numeric coordinate {p!r}", "geometry_coordinate",
                   ring=ring, k=str(k))
    return x, y


def _check_structure(geom: Any, srid: int) -> list[list[list[tuple[float, float]]]]:
    """Polygons as lists of rings of (x, y); raises InvalidGeometry naming the first problem."""
    if isinstance(geom, dict) and geom.get("type") == "Feature":
        geom = geom.get("geometry")
    if not isinstance(geom, dict):
        raise _bad("expected a GeoJSON Polygon or MultiPolygon object", "geometry_object")
    kind = geom.get("type")
    coords = geom.get("coordinates")
    if kind not in ("Polygon", "MultiPolygon"):
        raise _bad(f"type {kind!r} is not a Polygon or MultiPolygon", "geometry_type", kind=repr(kind))
    if not isinstance(coords, list) or not coords:
        raise _bad(f"{kind} without coordinates", "geometry_no_coordinates")
    polygons = [coords] if kind == "Polygon" else coords
    out = []
    count = 0
    for i, poly in enumerate(polygons, 1):
        if not isinstance(poly, list) or not poly:
            raise _bad(f"polygon {i} has no rings", "geometry_no_rings", i=str(i))
        rings = []
        for j, ring in enumerate(poly, 1):
            name, entry = _ring(i, j)
            if not isinstance(ring, list):
                raise _bad(f"{name} is not a list of positions", "geometry_ring_list", ring=entry)
            pts = [_position(p, f"{name} position {k}", entry, k) for k, p in enumerate(ring, 1)]
            count += len(pts)
            if count > MAX_VERTICES:
                raise _bad(f"more than {MAX_VERTICES} vertices", "geometry_vertices", n=MAX_VERTICES)
            if len(pts) < 4:
                raise _bad(f"{name} has {len(pts)} positions; a ring needs at least 4 (3 corners "
                           "and the first repeated at the end)", "geometry_ring_short",
                           ring=entry, n=len(pts))
            if pts[0] != pts[-1]:
                raise _bad(f"{name} is not closed: it starts at {list(pts[0])} and ends at "
                           f"{list(pts[-1])} (repeat the first position at the end)",
                           "geometry_ring_open", ring=entry)
            if srid == 4326:
                bad = next((p for p in pts if not (-180 <= p[0] <= 180 and -90 <= p[1] <= 90)), None)
                if bad is not None:
                    raise _bad(f"{name} position {list(bad)} is not longitude, latitude (for "
                               "VN-2000 coordinates give \"crs\")", "geometry_not_lon_lat",
                               ring=entry)
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
        why = reason_entry(reason)
        problem["entry"] = Message("geometry_geos", {"reason": why})
        if lon is not None and lat is not None:
            problem["location"] = location(lon, lat, province_srid)
            text += " at " + describe_location(problem["location"])
            problem["entry"] = Message("geometry_geos_at", {
                "reason": why, "where": location_entry(problem["location"])})
        raise InvalidGeometry(text, located=[problem])
    if not area or area <= 0:
        raise _bad("the polygon has no area", "geometry_no_area")
    # Re-check after the transform: a valid VN-2000 polygon could in theory collapse a spike.
    ok = scalar(conn.execute("SELECT geoioc_geom_ok(ST_GeomFromWKB(%s, 4326))", (wkb,)))
    if not ok:
        raise InvalidGeometry("geometry becomes invalid when transformed to lon/lat; "
                              "remove near-duplicate vertices",
                              message=Message("geometry_transform"))
    return bytes(wkb)
