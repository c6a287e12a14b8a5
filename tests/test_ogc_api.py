"""OGC API - Features behaviour: parameters, CRS, paging, bad input; against the real sample."""

from __future__ import annotations

import time

import pytest
from pyproj import Transformer

from layers.access import ANONYMOUS, readable_layers
from layers.catalogue import LAYERS

ITEMS = "/ogc/collections/{}/items"


def _ids(client, url: str) -> list[int]:
    r = client.get(url)
    assert r.status_code == 200, r.text
    return [f["id"] for f in r.json()["features"]]


def test_collections_list_only_public_layers(client) -> None:
    body = client.get("/ogc/collections?f=json").json()
    assert {c["id"] for c in body["collections"]} == {layer.id for layer in readable_layers(ANONYMOUS)}


def test_landing_conformance_queryables(client) -> None:
    assert client.get("/ogc?f=json").status_code == 200
    conf = client.get("/ogc/conformance?f=json").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in conf
    q = client.get("/ogc/collections/parcels/queryables?f=json").json()
    assert {"sheet_no", "parcel_no", "land_use_codes"} <= set(q["properties"])
    # Personal data is not even listed as queryable for anonymous users.
    assert "land_user" not in q["properties"] and "land_user_id" not in q["properties"]


def test_items_are_geojson_without_personal_data(client, conn) -> None:
    r = client.get(ITEMS.format("parcels") + "?limit=5")
    assert r.headers["content-type"].startswith("application/geo+json")
    body = r.json()
    assert body["type"] == "FeatureCollection" and body["numberReturned"] == 5
    f = body["features"][0]
    row = conn.execute("SELECT sheet_no, parcel_no, commune_code FROM parcels WHERE id = %s",
                       (f["id"],)).fetchone()
    assert (f["properties"]["sheet_no"], f["properties"]["parcel_no"],
            f["properties"]["commune_code"]) == row
    assert "land_user" not in f["properties"] and "land_user_id" not in f["properties"]
    assert f["geometry"]["type"] == "MultiPolygon"


def test_paging_links_cover_everything_once(client, conn) -> None:
    url, seen = ITEMS.format("admin_units") + "?limit=50", []
    while url:
        body = client.get(url.replace("http://127.0.0.1:8000", "")).json()
        seen += [f["id"] for f in body["features"]]
        url = next((link["href"] for link in body["links"] if link["rel"] == "next"), None)
    total = conn.execute("SELECT count(*) FROM admin_units").fetchone()[0]
    assert sorted(seen) == sorted(set(seen)) and len(seen) == total
    assert body["numberMatched"] == total


def test_number_matched_is_exact_for_small_and_big_results(client, conn) -> None:
    body = client.get(ITEMS.format("parcels") + "?limit=1&sheet_no=1").json()
    expected = conn.execute("SELECT count(*) FROM parcels WHERE sheet_no = 1").fetchone()[0]
    assert body["numberMatched"] == expected
    conn.execute("ANALYZE parcels")
    # Exact for the whole table too (GDAL reads the feature count from it); a count that is too
    # slow is left out, never estimated (tests/test_ogc_paging.py).
    big = client.get(ITEMS.format("parcels") + "?limit=1").json()
    assert big["numberMatched"] == conn.execute("SELECT count(*) FROM parcels").fetchone()[0]


def test_bbox_and_bbox_crs(client, conn) -> None:
    cx, cy = conn.execute("SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(geom) AS c FROM parcels "
                          "ORDER BY id LIMIT 1) s").fetchone()
    box = (cx - 0.005, cy - 0.005, cx + 0.005, cy + 0.005)
    ids = set(_ids(client, ITEMS.format("parcels") + "?limit=10000&bbox=" + ",".join(map(str, box))))
    expected = {r[0] for r in conn.execute(
        "SELECT id FROM parcels WHERE ST_Intersects(geom, ST_MakeEnvelope(%s, %s, %s, %s, 4326))", box)}
    assert ids == expected
    # The same box in VN-2000 / TM-3 (EPSG:9209) coordinates.
    t = Transformer.from_crs(4326, 9209, always_xy=True)
    x1, y1 = t.transform(box[0], box[1])
    x2, y2 = t.transform(box[2], box[3])
    ids9209 = set(_ids(client, ITEMS.format("parcels") + f"?limit=10000&bbox={x1},{y1},{x2},{y2}"
                       "&bbox-crs=http://www.opengis.net/def/crs/EPSG/0/9209"))
    assert expected and len(ids9209 ^ expected) <= len(expected) * 0.05  # edges curve in TM-3


def test_datetime_filter_on_time_column(client, conn) -> None:
    ids = _ids(client, ITEMS.format("admin_units") + "?limit=1000&datetime=2024-01-01")
    expected = {r[0] for r in conn.execute(
        "SELECT id FROM admin_units WHERE valid_from <= '2024-01-01' AND "
        "(valid_to IS NULL OR valid_to > '2024-01-01')")}
    assert set(ids) == expected
    after = _ids(client, ITEMS.format("admin_units") + "?limit=1000&datetime=2025-08-01/..")
    levels = {r[0] for r in conn.execute(
        "SELECT DISTINCT level FROM admin_units WHERE id = ANY(%s)", (after,))}
    assert "district" not in levels or len(after) > len(ids)


def test_property_filter_and_sortby(client, conn) -> None:
    body = client.get(ITEMS.format("roads") + "?road_class=trunk&sortby=-max_speed&limit=1000").json()
    speeds = [f["properties"]["max_speed"] for f in body["features"]]
    assert speeds == sorted(speeds, reverse=True)
    assert {f["properties"]["road_class"] for f in body["features"]} == {"trunk"}
    n = conn.execute("SELECT count(*) FROM roads WHERE road_class = 'trunk'").fetchone()[0]
    assert len(speeds) == min(n, 1000)


@pytest.mark.parametrize("crs,srid", [("http://www.opengis.net/def/crs/EPSG/0/9209", 9209),
                                      ("http://www.opengis.net/def/crs/EPSG/0/3405", 3405),
                                      ("http://www.opengis.net/def/crs/EPSG/0/3857", 3857),
                                      ("http://www.opengis.net/def/crs/EPSG/0/4326", 4326),
                                      ("http://www.opengis.net/def/crs/EPSG/0/4756", 4756)])
def test_crs_output_equals_pyproj(client, conn, crs: str, srid: int) -> None:
    fid, lon, lat = conn.execute(
        "SELECT id, ST_X(geom), ST_Y(geom) FROM tourism_places ORDER BY id LIMIT 1").fetchone()
    r = client.get(f"/ogc/collections/tourism_places/items/{fid}?crs={crs}")
    assert r.headers["content-crs"] == f"<{crs}>"
    x, y = r.json()["geometry"]["coordinates"]
    ex, ey = Transformer.from_crs(4326, srid, always_xy=True).transform(lon, lat)
    if srid in (4326, 4756):  # latitude first, as EPSG defines these CRS
        x, y = y, x
        tol = 1e-7
    else:
        tol = 0.001
    assert abs(x - ex) < tol and abs(y - ey) < tol


def test_html_views(client, conn) -> None:
    first = conn.execute("SELECT min(id) FROM admin_units").fetchone()[0]
    for path in ("/ogc?f=html", "/ogc/collections?f=html", "/ogc/collections/parcels?f=html",
                 ITEMS.format("admin_units") + "?f=html&limit=5",
                 ITEMS.format("admin_units") + f"/{first}?f=html"):
        r = client.get(path)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), path
        assert "unpkg.com" not in r.text and "cdn" not in r.text.lower(), path


BAD = [
    ("/ogc/collections/nope", 404, "nope"),
    ("/ogc/collections/incidents/items", 404, "incidents"),  # not public: indistinguishable
    ("/ogc/collections/nope/items", 404, "nope"),
    (ITEMS.format("parcels") + "/999999999", 404, "999999999"),
    (ITEMS.format("parcels") + "/abc", 404, "abc"),
    (ITEMS.format("parcels") + "?bbox=1,2,3", 400, "bbox"),
    (ITEMS.format("parcels") + "?bbox=a,b,c,d", 400, "bbox"),
    (ITEMS.format("parcels") + "?bbox=10,50,5,40", 400, "bbox"),
    (ITEMS.format("parcels") + "?bbox=1,2,3,4&bbox-crs=EPSG:2000", 400, "bbox-crs"),
    (ITEMS.format("parcels") + "?crs=EPSG:32648", 400, "crs"),
    (ITEMS.format("parcels") + "?limit=100000", 400, "limit"),
    (ITEMS.format("parcels") + "?limit=0", 400, "limit"),
    (ITEMS.format("parcels") + "?limit=ten", 400, "limit"),
    (ITEMS.format("parcels") + "?offset=-1", 400, "offset"),
    (ITEMS.format("admin_units") + "?offset=100000", 400, "offset"),
    (ITEMS.format("parcels") + "?datetime=yesterday", 400, "datetime"),
    (ITEMS.format("parcels") + "?datetime=2025-01-01/2024-01-01", 400, "datetime"),
    (ITEMS.format("land_use_zones") + "?datetime=2025-01-01", 400, "time"),
    (ITEMS.format("parcels") + "?sheet_no=abc", 400, "sheet_no"),
    (ITEMS.format("parcels") + "?land_user=x", 400, "land_user"),
    (ITEMS.format("parcels") + "?nonsense=1", 400, "nonsense"),
    (ITEMS.format("parcels") + "?sortby=land_user", 400, "sortby"),
    (ITEMS.format("parcels") + "?properties=foo", 400, "properties"),
    (ITEMS.format("parcels") + "?filter=sheet_no%20%3D", 400, "filter"),
    (ITEMS.format("parcels") + "?filter=land_user%20%3D%20%27x%27", 400, "land_user"),
    (ITEMS.format("parcels") + "?filter=x&filter-lang=cql-fancy", 400, "filter-lang"),
    (ITEMS.format("parcels") + "?filter=%7Bbad&filter-lang=cql2-json", 400, "filter"),
    (ITEMS.format("parcels") + "?f=xml", 400, "f"),
    ("/ogc/collections/parcels/tiles/WebMercatorQuad/3/0/0", 404, "zoom"),
    ("/ogc/collections/roads/tiles/WebMercatorQuad/14/99999/0", 404, "row"),
    ("/ogc/collections/roads/tiles/NoSuchTMS/14/0/0", 404, "NoSuchTMS"),
    ("/ogc/collections/roads/tiles/WebMercatorQuad/a/b/c", 400, "tileMatrix"),
]


@pytest.mark.parametrize("path,status,word", BAD, ids=[b[0].split("/ogc/")[1] for b in BAD])
def test_bad_input_gets_a_clear_4xx(client, path: str, status: int, word: str) -> None:
    r = client.get(path)
    assert r.status_code == status, r.text
    body = r.json()
    assert body["code"] and word in body["description"], body


def test_every_layer_definition_is_served(client) -> None:
    for layer in LAYERS:
        r = client.get(f"/ogc/collections/{layer.id}?f=json")
        assert r.status_code == (200 if layer in readable_layers(ANONYMOUS) else 404)


def test_cql2_filter_through_the_api_with_filter_crs(client, conn) -> None:
    """The same box as CQL2 in CRS84 (lon, lat) and in EPSG:4326 (lat, lon) selects the same."""
    cx, cy = conn.execute("SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(geom) AS c FROM parcels "
                          "ORDER BY id LIMIT 1) s").fetchone()
    lon1, lat1, lon2, lat2 = cx - 0.01, cy - 0.01, cx + 0.01, cy + 0.01
    expected = {r[0] for r in conn.execute(
        "SELECT id FROM parcels WHERE ST_Intersects(geom, ST_MakeEnvelope(%s, %s, %s, %s, 4326)) "
        "AND sheet_no <= 3", (lon1, lat1, lon2, lat2))}
    crs84 = set(_ids(client, ITEMS.format("parcels") + "?limit=10000&filter="
                     f"S_INTERSECTS(geom, BBOX({lon1},{lat1},{lon2},{lat2})) AND sheet_no <= 3"))
    latlon = set(_ids(client, ITEMS.format("parcels") + "?limit=10000&filter-crs="
                      "http://www.opengis.net/def/crs/EPSG/0/4326&filter="
                      f"S_INTERSECTS(geom, POLYGON(({lat1} {lon1}, {lat1} {lon2}, {lat2} {lon2}, "
                      f"{lat2} {lon1}, {lat1} {lon1}))) AND sheet_no <= 3"))
    assert crs84 == latlon == expected and expected
    body = client.get(ITEMS.format("parcels"), params={
        "filter-lang": "cql2-json", "limit": 10000,
        "filter": '{"op": "<=", "args": [{"property": "sheet_no"}, 3]}'}).json()
    n = conn.execute("SELECT count(*) FROM parcels WHERE sheet_no <= 3").fetchone()[0]
    assert body["numberReturned"] == min(n, 10000)


# The SQL each conformance example in api/ogc/conformance.py means, on the stored data.
CQL2_TRUTH = {
    "basic-cql2": "severity >= 3 AND NOT (status = 'closed') AND resolved_at IS NULL",
    "advanced-comparison-operators": "title LIKE '%a%' AND severity BETWEEN 2 AND 3 "
                                     "AND category IN ('fire', 'public_order')",
    "case-insensitive-comparison": "category = 'fire'",
    "accent-insensitive-comparison": "unaccent(title) LIKE '%Chay%'",
    "basic-spatial-functions": "geom && ST_MakeEnvelope(105.9, 20.9, 106.4, 21.3, 4326)",
    "spatial-functions": "ST_Within(geom, ST_MakeEnvelope(105.9, 20.9, 106.4, 21.3, 4326))",
    "temporal-functions": "reported_at > '2020-01-01T00:00:00Z'",
    "arithmetic": "severity * 2 > 5",
}


@pytest.fixture(scope="module")
def admin_key(keys):
    return keys["security_officer"]  # every incident, security events too


def test_conformance_declares_what_is_implemented(client, conn, admin_key) -> None:
    """Read-only (no Part 4), Part 3 filtering and every CQL2 class we list, each shown to work
    on the stored data; the list is the same on every request."""
    from api.ogc.conformance import ARRAY_EXAMPLE, CQL2, CQL2_EXAMPLES

    conf = client.get("/ogc/conformance?f=json").json()["conformsTo"]
    assert client.get("/ogc/conformance?f=json").json()["conformsTo"] == conf
    assert not [c for c in conf if "ogcapi-features-4" in c]
    assert {"http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
            "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
            CQL2 + "cql2-text", CQL2 + "cql2-json"} <= set(conf)
    declared = {c.removeprefix(CQL2) for c in conf if c.startswith(CQL2)}
    assert declared == {"cql2-text", "cql2-json", "array-functions", *CQL2_EXAMPLES}
    assert set(CQL2_TRUTH) == set(CQL2_EXAMPLES)
    for name, text in CQL2_EXAMPLES.items():
        expected = [r[0] for r in conn.execute(
            f"SELECT id FROM incidents WHERE {CQL2_TRUTH[name]} ORDER BY id LIMIT 200")]  # noqa: S608 (constants)
        r = client.get(ITEMS.format("incidents"), params={"filter": text, "sortby": "id", "limit": 200},
                       headers=admin_key)
        assert r.status_code == 200, (name, r.text)
        got = [f["id"] for f in r.json()["features"]]
        assert got == expected and expected, name
    layer, text = ARRAY_EXAMPLE
    r = client.get(ITEMS.format(layer), params={"filter": text, "sortby": "id", "limit": 50})
    assert r.status_code == 200, r.text
    expected = [r[0] for r in conn.execute("SELECT id FROM parcels WHERE land_use_codes && '{ONT,LUC}' "
                                           "ORDER BY id LIMIT 50")]
    assert [f["id"] for f in r.json()["features"]] == expected and expected
    html = client.get("/ogc/conformance?f=html")
    assert html.status_code == 200 and "cql2-text" in html.text and "create-replace-delete" not in html.text


def _temporal(client, collection: str, headers=None) -> list:
    r = client.get(f"/ogc/collections/{collection}?f=json", headers=headers or {})
    assert r.status_code == 200, r.text
    return r.json()["extent"]["temporal"]["interval"][0]


def test_temporal_extent_follows_edits(client, conn, keys) -> None:
    """An edit through the API moves the parcels' temporal extent at once (not after a restart):
    the extents are dated by the same hook as the tile cache. A write by another process shows
    within the bridge's EXTENT_TTL."""
    from api.ogc.router import BRIDGE

    _temporal(client, "parcels")  # computed and cached
    pid, before_max = conn.execute("SELECT (SELECT id FROM parcels ORDER BY id LIMIT 1), "
                                   "max(updated_at) FROM parcels").fetchone()
    version = client.get(f"/api/parcels/{pid}", headers=keys["land_officer"]).json()["version"]
    r = client.patch(f"/api/parcels/{pid}", headers={**keys["land_officer"], "If-Match": f'"{version}"'},
                     json={"properties": {"certificate_no": "CS 424242"}})
    assert r.status_code == 200, r.text
    (after_max,) = conn.execute("SELECT max(updated_at) FROM parcels").fetchone()
    assert after_max > before_max
    assert _instant(_temporal(client, "parcels")[1]) == after_max
    # A write the process did not see (another server, the command line): within the TTL.
    BRIDGE._temporal_at = time.monotonic()  # as if just read
    conn.execute("UPDATE parcels SET certificate_no = 'CS 424243' WHERE id = %s", (pid,))
    (latest,) = conn.execute("SELECT max(updated_at) FROM parcels").fetchone()
    assert latest > after_max
    assert _instant(_temporal(client, "parcels")[1]) == after_max  # cached, within the TTL
    BRIDGE._temporal_at -= BRIDGE.EXTENT_TTL + 1  # as if the TTL had passed
    assert _instant(_temporal(client, "parcels")[1]) == latest


def _instant(text: str):
    import datetime as dt

    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
