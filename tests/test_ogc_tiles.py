"""Vector tiles decode to the expected features, stay small at every zoom, and are cacheable."""

from __future__ import annotations

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
    box = tile_bounds_4326(z, x, y, margin=BUFFER)
    inside = conn.execute("SELECT count(*) FROM incidents WHERE geom && "
                          "ST_MakeEnvelope(%s, %s, %s, %s, 4326)", box).fetchone()[0]
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


@pytest.mark.parametrize("layer", [*PUBLIC, get_layer("incidents")], ids=lambda layer: layer.id)
def test_every_low_zoom_tile_stays_small(conn, layer) -> None:
    """All tiles of the sample from the layer's first zoom up to z12, plus z14 over the data."""
    fields = readable_fields(layer, ANONYMOUS) or layer.fields
    zooms = [z for z in range(layer.min_zoom, 13)] or [layer.min_zoom]
    biggest = 0
    for z in zooms:
        for x, y in _tiles_over_data(conn, layer, z):
            biggest = max(biggest, len(render_tile(conn, layer, fields, z, x, y)))
    assert biggest < MAX_TILE_BYTES, f"{layer.id}: {biggest} bytes"


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
