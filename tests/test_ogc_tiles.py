"""Vector tiles decode to the expected features, stay small at every zoom, and are cacheable."""

from __future__ import annotations

import datetime as dt
import math

import mapbox_vector_tile
import pytest
from psycopg import sql

from gis.tiles import render_tile
from layers.access import ANONYMOUS, readable_fields, readable_layers
from layers.catalogue import get_layer
from layers.tiles_sql import BUFFER, EXTENT

PUBLIC = readable_layers(ANONYMOUS)
MAX_TILE_BYTES = 500 * 1024
TILE = "/ogc/collections/{}/tiles/WebMercatorQuad/{}/{}/{}"


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 1 << z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def tile_bounds_4326(z: int, x: int, y: int, margin: float = 0) -> tuple[float, ...]:
    n = 1 << z

    def lon(px: float) -> float:
        return px / n * 360 - 180

    def lat(py: float) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * py / n))))

    m = margin / EXTENT
    return lon(x - m), lat(y + 1 + m), lon(x + 1 + m), lat(y - m)


def _decode(data: bytes) -> dict:
    return mapbox_vector_tile.decode(data) if data else {}


def test_point_tile_has_exactly_the_points_inside(client, conn) -> None:
    lon, lat = conn.execute("SELECT ST_X(geom), ST_Y(geom) FROM tourism_places ORDER BY id LIMIT 1"
                            ).fetchone()
    z = 12
    x, y = tile_of(lon, lat, z)
    r = client.get(TILE.format("tourism_places", z, y, x))
    assert r.status_code == 200 and r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    layer = _decode(r.content)["tourism_places"]
    names = sorted(f["properties"]["name"] for f in layer["features"])
    box = tile_bounds_4326(z, x, y, margin=BUFFER)
    expected = sorted(r[0] for r in conn.execute(
        "SELECT name FROM tourism_places WHERE geom && ST_MakeEnvelope(%s, %s, %s, %s, 4326)", box))
    assert names == expected and names


def test_polygon_tile_features_and_hidden_fields(client, conn) -> None:
    lon, lat = conn.execute("SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_PointOnSurface(geom) AS c "
                            "FROM parcels ORDER BY id LIMIT 1) s").fetchone()
    z = 16
    x, y = tile_of(lon, lat, z)
    data = client.get(TILE.format("parcels", z, y, x)).content
    features = _decode(data)["parcels"]["features"]
    first_id = conn.execute("SELECT id FROM parcels ORDER BY id LIMIT 1").fetchone()[0]
    assert first_id in {f["id"] for f in features}
    props = features[0]["properties"]
    assert {"sheet_no", "parcel_no", "land_use_codes"} <= set(props)
    assert "land_user" not in props and "land_user_id" not in props  # absent, not null-filled


def test_low_zoom_points_are_aggregated_with_exact_counts(conn) -> None:
    """Dense point layers (incidents) become counted grid cells at low zoom."""
    incidents = get_layer("incidents")
    lon, lat = conn.execute("SELECT ST_X(ST_Centroid(ST_Collect(geom))), "
                            "ST_Y(ST_Centroid(ST_Collect(geom))) FROM incidents").fetchone()
    z = 9
    x, y = tile_of(lon, lat, z)
    data = render_tile(conn, incidents, readable_fields(incidents, ANONYMOUS), z, x, y)
    cells = _decode(data)["incidents"]["features"]
    assert all("count" in f["properties"] for f in cells)
    # Every point in the tile and its buffer, on the lower edges and not the upper ones (the
    # cells' rule), in Web Mercator: exact, where a `&&` on lon/lat compares float4 boxes.
    lon1, lat1, lon2, lat2 = tile_bounds_4326(z, x, y, margin=BUFFER)
    inside = conn.execute(
        "SELECT count(*) FROM (SELECT ST_Transform(geom, 3857) AS p FROM incidents) s"
        " WHERE ST_X(p) >= ST_X(ST_Transform(ST_Point(%s, 0, 4326), 3857))"
        " AND ST_X(p) < ST_X(ST_Transform(ST_Point(%s, 0, 4326), 3857))"
        " AND ST_Y(p) >= ST_Y(ST_Transform(ST_Point(0, %s, 4326), 3857))"
        " AND ST_Y(p) < ST_Y(ST_Transform(ST_Point(0, %s, 4326), 3857))",
        [lon1, lon2, lat1, lat2]).fetchone()[0]
    assert sum(f["properties"]["count"] for f in cells) == inside > 3000
    assert len(data) < MAX_TILE_BYTES


def _tiles_over_data(conn, layer, z: int) -> list[tuple[int, int]]:
    xmin, ymin, xmax, ymax = conn.execute(sql.SQL(
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent({}) AS e "
        "FROM {}) s").format(sql.Identifier(layer.geometry_column), sql.Identifier(layer.table))
    ).fetchone()
    x1, y1 = tile_of(xmin, ymax, z)
    x2, y2 = tile_of(xmax, ymin, z)
    return [(x, y) for x in range(x1, x2 + 1) for y in range(y1, y2 + 1)]


# The layers the map draws, and the indicators' values (map_kind "none": every unit once per
# indicator and period in its table), whose tiles hold one indicator and period (its tile
# filters' defaults here: the population of the latest period).
DRAWN = [layer for layer in PUBLIC if layer.map_kind != "none"]


@pytest.mark.parametrize("layer", [*DRAWN, get_layer("incidents"), get_layer("indicators")],
                         ids=lambda layer: layer.id)
def test_every_low_zoom_tile_stays_small(conn, layer) -> None:
    """All tiles of the sample from the layer's first zoom up to z12, plus z14 over the data."""
    fields = readable_fields(layer, ANONYMOUS) or layer.fields
    zooms = [z for z in range(layer.min_zoom, 13)] or [layer.min_zoom]
    biggest = 0
    for z in zooms:
        for x, y in _tiles_over_data(conn, layer, z):
            biggest = max(biggest, len(render_tile(conn, layer, fields, z, x, y)))
    assert biggest < MAX_TILE_BYTES, f"{layer.id}: {biggest} bytes"


def _indicator_tile(client, conn, params: dict[str, str], code: str, period: str
                    ) -> tuple[dict[int, dict], set[int]]:
    """The z10 indicators tile over the province's centre asked with PARAMS (its features by
    id), and the ids of the public values of CODE and PERIOD that SQL puts in it."""
    lon, lat = conn.execute("SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_PointOnSurface(geom) AS c"
                            " FROM admin_units WHERE level = 'province' LIMIT 1) s").fetchone()
    z = 10
    x, y = tile_of(lon, lat, z)
    r = client.get(TILE.format("indicators", z, y, x), params=params)
    assert r.status_code == 200, r.text
    features = {f["id"]: f for f in _decode(r.content)["indicators"]["features"]}
    box = tile_bounds_4326(z, x, y, margin=BUFFER)
    expected = {row[0] for row in conn.execute(
        "SELECT id FROM indicator_features WHERE indicator_code = %s AND period = %s"
        " AND access = 'public' AND geom && ST_MakeEnvelope(%s, %s, %s, %s, 4326)",
        (code, period, *box))}
    return features, expected


def _latest(conn, code: str, before: str = "9999") -> str:
    return conn.execute("SELECT period FROM indicator_values WHERE indicator_code = %s"
                        " AND period < %s ORDER BY period_start DESC LIMIT 1",
                        (code, before)).fetchone()[0]


def test_indicator_tiles_hold_one_indicator_and_period(client, conn) -> None:
    """A tile of the indicators carries the values of the indicator and period asked (the
    population of its latest period when none is asked), each unit once, with the stored value."""
    latest = _latest(conn, "POVERTY_RATE")
    earlier = _latest(conn, "POVERTY_RATE", before=latest)
    features, expected = _indicator_tile(
        client, conn, {"indicator_code": "POVERTY_RATE", "period": earlier}, "POVERTY_RATE", earlier)
    assert set(features) == expected and len(expected) > 10
    values = dict(conn.execute("SELECT id, value FROM indicator_values WHERE id = ANY(%s)",
                               (list(expected),)).fetchall())
    for fid, f in features.items():
        p = f["properties"]
        assert (p["indicator_code"], p["period"]) == ("POVERTY_RATE", earlier)
        assert p["value"] == pytest.approx(values[fid])
    # Only the indicator given: its latest period.
    features, expected = _indicator_tile(client, conn, {"indicator_code": "POVERTY_RATE"},
                                         "POVERTY_RATE", latest)
    assert set(features) == expected and expected
    # Nothing asked: the population of its latest period.
    features, expected = _indicator_tile(client, conn, {}, "POP", _latest(conn, "POP"))
    assert set(features) == expected and expected
    # Only a period: the population of that period.
    features, expected = _indicator_tile(client, conn, {"period": earlier}, "POP", earlier)
    assert set(features) == expected and expected
    # An internal indicator has no rows for the public, whatever is asked.
    lon, lat = 106.1, 21.1
    x, y = tile_of(lon, lat, 10)
    r = client.get(TILE.format("indicators", 10, y, x), params={"indicator_code": "CRIMINAL_CASES"})
    assert r.status_code == 204
    # A value longer than any code or period is a 400 naming the parameter.
    r = client.get(TILE.format("indicators", 10, y, x), params={"period": "9" * 200})
    assert r.status_code == 400 and "period" in r.text


def test_tiles_carry_etag_and_cache_control(client, conn) -> None:
    lon, lat = conn.execute("SELECT ST_X(ST_StartPoint(geom)), ST_Y(ST_StartPoint(geom)) FROM roads "
                            "WHERE road_class = 'trunk' LIMIT 1").fetchone()
    x, y = tile_of(lon, lat, 14)
    r = client.get(TILE.format("roads", 14, y, x))
    assert r.status_code == 200 and r.headers["etag"]
    assert "max-age" in r.headers["cache-control"]
    again = client.get(TILE.format("roads", 14, y, x), headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304


def test_tile_metadata_from_catalogue(client) -> None:
    meta = client.get("/ogc/collections/parcels/tiles?f=json").json()
    assert any("WebMercatorQuad" in link["href"] for link in meta["links"] + [
        lk for ts in meta.get("tilesets", []) for lk in ts.get("links", [])])


def _ids_in_tile(client, headers: dict, z: int, x: int, y: int, when: str | None) -> set[int]:
    params = {"datetime": when} if when else {}
    r = client.get(TILE.format("incidents", z, y, x), params=params, headers=headers)
    assert r.status_code in (200, 204), r.text
    return {f["id"] for f in _decode(r.content).get("incidents", {}).get("features", [])}


def test_incident_tiles_follow_the_datetime_window(client, conn, keys) -> None:
    """OGC API - Tiles `datetime`: a tile holds only the incidents of that window (the same rows
    /items gives for it), so a map showing a week does not draw every incident ever recorded."""
    headers = keys["operator"]
    (end,) = conn.execute("SELECT max(reported_at) FROM incidents").fetchone()
    start = end - dt.timedelta(days=30)
    lon, lat = conn.execute(
        "SELECT ST_X(geom), ST_Y(geom) FROM incidents WHERE reported_at >= %s ORDER BY id LIMIT 1",
        (start,)).fetchone()
    z = 15
    x, y = tile_of(lon, lat, z)
    when = f"{start.isoformat()}/{end.isoformat()}"
    windowed = _ids_in_tile(client, headers, z, x, y, when)
    everything = _ids_in_tile(client, headers, z, x, y, None)
    box = tile_bounds_4326(z, x, y, margin=BUFFER)
    expected = {r[0] for r in conn.execute(
        "SELECT id FROM incidents WHERE geom && ST_MakeEnvelope(%s, %s, %s, %s, 4326)"
        " AND reported_at >= %s AND reported_at <= %s AND category <> 'security_event'",
        (*box, start, end))}
    assert windowed == expected and windowed
    assert windowed < everything  # the same tile without datetime carries older incidents too
    # An open start, and the cache keeps windows apart: up to the window's start, the rest.
    before = _ids_in_tile(client, headers, z, x, y, f"../{start.isoformat()}")
    assert before == {r[0] for r in conn.execute(
        "SELECT id FROM incidents WHERE geom && ST_MakeEnvelope(%s, %s, %s, %s, 4326)"
        " AND reported_at <= %s AND category <> 'security_event'", (*box, start))}
    assert before and before | windowed == everything


def test_tile_datetime_errors_name_the_parameter(client, keys) -> None:
    r = client.get(TILE.format("incidents", 12, 1000, 3000), params={"datetime": "yesterday"},
                   headers=keys["operator"])
    assert r.status_code == 400 and "datetime" in r.text
    r = client.get(TILE.format("tourism_places", 12, 1000, 3000), params={"datetime": "2025-01-01"})
    assert r.status_code == 400 and "datetime" in r.text
