"""The leak matrix: for every role x every way out x every layer of the catalogue, exactly what
is visible. The expectations are written out by hand below (which profile reads which layer and
which field, and a WHERE clause per profile for the rows), from the README's access rules, not
computed by the access code the server runs: a change to those rules, or a route that forgets
them, fails here. A layer or field added to the catalogue fails here too until it is added to the
tables on purpose. Rows are compared id by id on pages smaller than the data.
"""

from __future__ import annotations

import math

import mapbox_vector_tile
import pytest
from conftest import ROLE_NAMES
from psycopg import sql

from layers.catalogue import LAYERS, get_layer

PROFILES = ["anonymous", *ROLE_NAMES]
STAFF = frozenset({"operator", "land_officer", "security_officer", "leader", "admin"})
EVERYONE = frozenset(PROFILES)

# Who reads each layer: public layers everyone, internal ones staff (not citizens).
LAYER_READERS: dict[str, frozenset[str]] = {
    "admin_units": EVERYONE,
    "land_use_zones": EVERYONE,
    "parcels": EVERYONE,
    "roads": EVERYONE,
    "tourism_places": EVERYONE,
    "public_facilities": EVERYONE,
    "sensors": EVERYONE,
    "cameras": STAFF,
    "incidents": STAFF,
    "indicators": EVERYONE,
}
# Every field of every layer (as the API names it).
FIELDS: dict[str, tuple[str, ...]] = {
    "admin_units": ("code", "name", "level", "parent_code", "population", "valid_from", "valid_to"),
    "land_use_zones": ("land_use_code", "plan_name", "approved_on", "commune_code"),
    "parcels": ("commune_code", "old_commune_code", "sheet_no", "parcel_no", "land_use_codes",
                "legal_area", "land_user", "land_user_id", "certificate_no", "use_until", "origin",
                "legal_valid_from", "decision_no", "version", "updated_at"),
    "roads": ("name", "road_class", "lanes", "max_speed", "free_flow_speed", "traffic_state",
              "speed_ratio", "traffic_at"),
    "tourism_places": ("name", "name_en", "category", "address", "rating", "visitors_per_year"),
    "public_facilities": ("code", "name", "type", "address", "capacity", "phone", "commune_code"),
    "cameras": ("code", "name", "heading", "fov_deg", "range_m", "status", "stream_url",
                "last_seen", "fps", "bitrate_kbps", "quality", "status_changed_at"),
    "sensors": ("code", "name", "kind", "parameter", "unit", "threshold", "status"),
    "incidents": ("category", "severity", "status", "source", "title", "description", "commune_code",
                  "reported_at", "resolved_at", "service_code", "agency_code", "expected_at",
                  "duplicate_of", "status_note", "updated_at", "answered_at", "answer"),
    "indicators": ("unit_code", "unit_name", "unit_level", "indicator_code", "indicator_name",
                   "indicator_name_en", "measure_unit", "indicator_domain", "period",
                   "period_start", "period_end", "value"),
}
# Fields stricter than their layer, and who reads them: land users' names and ID numbers (personal
# data) land officers and admins; duty phones staff; camera streams security officers and admins.
FIELD_READERS: dict[tuple[str, str], frozenset[str]] = {
    ("parcels", "land_user"): frozenset({"land_officer", "admin"}),
    ("parcels", "land_user_id"): frozenset({"land_officer", "admin"}),
    ("public_facilities", "phone"): STAFF,
    ("cameras", "stream_url"): frozenset({"security_officer", "admin"}),
}
# Fields vector tiles never carry (long texts, personal and restricted data).
NOT_IN_TILES: dict[str, frozenset[str]] = {
    "parcels": frozenset({"land_user", "land_user_id", "certificate_no", "use_until", "origin",
                          "legal_valid_from", "decision_no", "version", "updated_at"}),
    "public_facilities": frozenset({"address", "phone"}),
    "cameras": frozenset({"stream_url"}),
    "incidents": frozenset({"description", "status_note", "answered_at", "answer"}),
    "indicators": frozenset({"indicator_name", "indicator_name_en"}),
}
# Rows hidden from some profiles: security events inside incidents, for all but security
# officers, leaders and admins.
ROWS_SEEN: dict[tuple[str, str], str] = {
    ("incidents", "operator"): "category <> 'security_event'",
    ("incidents", "land_officer"): "category <> 'security_event'",
    # Indicators carry their own level (row_access): internal ones (the sample's CRIMINAL_CASES)
    # are staff's.
    ("indicators", "anonymous"): "access = 'public'",
    ("indicators", "citizen"): "access = 'public'",
}
# Rows compared per layer and profile: PAGES pages of PAGE features (fewer than every layer has).
PAGE, PAGES = 7, 3


def reads(profile: str, layer_id: str) -> bool:
    return profile in LAYER_READERS[layer_id]


def seen_fields(profile: str, layer_id: str) -> set[str]:
    return {f for f in FIELDS[layer_id] if profile in FIELD_READERS.get((layer_id, f), EVERYONE)}


def visible(profile: str, layer_id: str) -> sql.Composable:
    return sql.SQL(ROWS_SEEN.get((layer_id, profile), "TRUE"))  # noqa: S608 (literals above)


def test_the_tables_cover_the_catalogue() -> None:
    """A layer, field or role added to the catalogue must be added above, with who may read it."""
    from gis.auth.roles import ROLES

    assert set(ROLE_NAMES) == set(ROLES)
    assert {layer.id for layer in LAYERS} == set(LAYER_READERS) == set(FIELDS)
    for layer in LAYERS:
        assert set(layer.field_names) == set(FIELDS[layer.id]), layer.id


def _path(href: str) -> str:
    return href[href.index("/ogc/"):]


@pytest.mark.parametrize("profile", PROFILES)
def test_collection_lists_openapi_and_html_name_only_readable_layers(client, keys, profile) -> None:
    h = keys[profile]
    readable = {layer_id for layer_id in LAYER_READERS if reads(profile, layer_id)}
    listed = {c["id"] for c in client.get("/ogc/collections?f=json", headers=h).json()["collections"]}
    assert listed == readable
    html = client.get("/ogc/collections?f=html", headers=h).text
    openapi = client.get("/ogc/openapi?f=json", headers=h).text
    for layer_id in LAYER_READERS:
        for text in (html, openapi):
            assert (f"/collections/{layer_id}" in text) == (layer_id in readable), (profile, layer_id)


@pytest.mark.parametrize("layer_id", list(LAYER_READERS))
@pytest.mark.parametrize("profile", PROFILES)
def test_items_item_queryables_and_tiles(client, conn, keys, profile, layer_id) -> None:
    layer = get_layer(layer_id)
    h = keys[profile]
    base = f"/ogc/collections/{layer_id}"
    if not reads(profile, layer_id):
        for path in (base, f"{base}/items", f"{base}/queryables", f"{base}/items/1",
                     f"{base}/tiles", f"{base}/tiles/WebMercatorQuad/{layer.min_zoom}/0/0"):
            r = client.get(path, headers=h)
            assert r.status_code == 404 and layer_id in r.json()["description"], (path, r.text)
        return
    fields = seen_fields(profile, layer_id)
    # items: the first pages, followed by their next links, hold exactly the visible rows in id
    # order, each with exactly the readable fields (absent, not null-filled)
    expected = [r[0] for r in conn.execute(sql.SQL("SELECT id FROM {} WHERE {} ORDER BY id LIMIT %s").format(
        sql.Identifier(layer.table), visible(profile, layer_id)), (PAGE * PAGES,))]
    assert len(expected) == PAGE * PAGES, f"{layer_id} has fewer rows than the pages compared"
    got: list[int] = []
    path = f"{base}/items?limit={PAGE}&skipGeometry=true"
    for _ in range(PAGES):
        body = client.get(path, headers=h).json()
        assert body["numberReturned"] == len(body["features"]) == PAGE, (profile, layer_id)
        for f in body["features"]:
            assert set(f["properties"]) == fields, (profile, layer_id, f["id"])
        got += [f["id"] for f in body["features"]]
        path = _path(next(link["href"] for link in body["links"] if link["rel"] == "next"))
    assert got == expected, (profile, layer_id)
    # a page from the middle: a row leaked (or lost) anywhere before it shifts its ids
    (middle,) = conn.execute(sql.SQL("SELECT count(*) / 2 FROM {} WHERE {}").format(
        sql.Identifier(layer.table), visible(profile, layer_id))).fetchone()
    expected = [r[0] for r in conn.execute(
        sql.SQL("SELECT id FROM {} WHERE {} ORDER BY id OFFSET %s LIMIT %s").format(
            sql.Identifier(layer.table), visible(profile, layer_id)), (middle, PAGE))]
    body = client.get(f"{base}/items?limit={PAGE}&offset={middle}&skipGeometry=true", headers=h).json()
    assert [f["id"] for f in body["features"]] == expected, (profile, layer_id, middle)
    # single item
    fid = got[0]
    item = client.get(f"{base}/items/{fid}", headers=h).json()
    assert set(item["properties"]) == fields
    # queryables
    q = client.get(f"{base}/queryables?f=json", headers=h).json()
    assert set(q["properties"]) - {"geometry"} == fields
    # tiles: only readable fields that tiles carry
    lon, lat = conn.execute(sql.SQL(
        "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface({}) AS p FROM {} WHERE id = %s) s"
    ).format(sql.Identifier(layer.geometry_column), sql.Identifier(layer.table)), (fid,)).fetchone()
    z = max(layer.min_zoom, 16)
    n = 1 << z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    # a layer whose tiles are filtered (the indicators: one indicator and period) is asked for
    # the item's own values of those fields
    filters = {tf.field: item["properties"][tf.field] for tf in layer.tile_filters}
    r = client.get(f"{base}/tiles/WebMercatorQuad/{z}/{y}/{x}", headers=h, params=filters)
    assert r.status_code == 200, r.text
    tile = mapbox_vector_tile.decode(r.content)[layer_id]["features"]
    tile_fields = fields - NOT_IN_TILES.get(layer_id, frozenset())
    for feature in tile:
        assert set(feature["properties"]) <= tile_fields, (profile, layer_id)
    assert fid in {f["id"] for f in tile}


@pytest.mark.parametrize("profile", sorted(STAFF))
def test_security_events_only_for_security_roles(client, conn, keys, profile) -> None:
    """Filtered on the hidden rows themselves: every one of them, or none."""
    sees = profile in ("security_officer", "leader", "admin")
    expected = [r[0] for r in conn.execute(
        "SELECT id FROM incidents WHERE category = 'security_event' ORDER BY id LIMIT %s", (PAGE,))]
    assert len(expected) == PAGE
    body = client.get(f"/ogc/collections/incidents/items?category=security_event&limit={PAGE}"
                      "&skipGeometry=true", headers=keys[profile]).json()
    assert [f["id"] for f in body["features"]] == (expected if sees else []), profile
    r = client.get(f"/ogc/collections/incidents/items/{expected[0]}", headers=keys[profile])
    assert r.status_code == (200 if sees else 404), profile


def test_sensitive_reads_are_audited(client, conn, keys) -> None:
    before = conn.execute("SELECT count(*) FROM audit_log WHERE action = 'read' AND layer = 'incidents'"
                          ).fetchone()[0]
    client.get("/ogc/collections/incidents/items?limit=1", headers=keys["security_officer"])
    client.get("/ogc/collections/incidents/items?limit=1", headers=keys["operator"])  # not sensitive
    rows = conn.execute("SELECT username, roles, path FROM audit_log WHERE action = 'read' AND "
                        "layer = 'incidents' ORDER BY id DESC LIMIT 5").fetchall()
    after = conn.execute("SELECT count(*) FROM audit_log WHERE action = 'read' AND layer = 'incidents'"
                         ).fetchone()[0]
    assert after == before + 1
    assert rows[0][0].endswith("security-officer") and rows[0][2].endswith("/incidents/items")


@pytest.mark.parametrize("layer_id", list(LAYER_READERS))
@pytest.mark.parametrize("profile", PROFILES)
def test_exports(client, conn, keys, profile, layer_id, tmp_path) -> None:
    """GeoJSON and Shapefile exports carry exactly the readable fields (the shapefile under the
    catalogue's short names) and exactly the visible rows."""
    import json

    import pyogrio

    layer = get_layer(layer_id)
    h = keys[profile]
    lo = conn.execute(sql.SQL("SELECT min(id) FROM {}").format(sql.Identifier(layer.table))).fetchone()[0]
    params = {"layer": layer_id, "mode": "sync", "filter": f"id <= {lo + 300}"}
    r = client.get("/api/exports", params={**params, "format": "geojson"}, headers=h)
    if not reads(profile, layer_id):
        assert r.status_code == 404 and layer_id in r.json()["detail"]
        return
    assert r.status_code == 200, r.text
    fields = seen_fields(profile, layer_id)
    features = json.loads(r.content)["features"]
    expected = [row[0] for row in conn.execute(
        sql.SQL("SELECT id FROM {} WHERE id <= %s AND {} ORDER BY id").format(
            sql.Identifier(layer.table), visible(profile, layer_id)), (lo + 300,))]
    assert sorted(f["properties"]["id"] if "id" in f["properties"] else f["id"] for f in features) == expected
    for f in features:
        assert set(f["properties"]) - {"id"} == fields
    shp = client.get("/api/exports", params={**params, "format": "shp"}, headers=h)
    assert shp.status_code == 200, shp.text
    path = tmp_path / "export.zip"
    path.write_bytes(shp.content)
    names = set()
    for layer_name, _ in pyogrio.list_layers(f"/vsizip/{path}"):
        names |= set(pyogrio.read_info(f"/vsizip/{path}", layer=layer_name)["fields"])
    assert names - {"ID", "id"} == {f.export_name for f in layer.fields if f.name in fields}


@pytest.mark.parametrize("profile", PROFILES)
def test_export_process_offers_and_runs_only_readable_layers(client, keys, profile) -> None:
    """The OGC API - Processes way out: the process description lists exactly the readable
    layers, and executing it on any other layer is a 404 (no job is created)."""
    h = keys[profile]
    description = client.get("/ogc/processes/export", headers=h).json()
    readable = {layer_id for layer_id in LAYER_READERS if reads(profile, layer_id)}
    assert set(description["inputs"]["layer"]["schema"]["enum"]) == readable
    for layer_id in set(LAYER_READERS) - readable:
        r = client.post("/ogc/processes/export/execution", json={"inputs": {"layer": layer_id}}, headers=h)
        assert r.status_code == 404 and layer_id in r.json()["description"], r.text
