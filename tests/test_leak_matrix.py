"""The leak matrix: for every role x every way out x every layer of the catalogue, exactly what
is visible. Expectations come from the catalogue's access rules (layers.access), so a new layer
or field is covered without touching this file; the data come back over HTTP and are checked
against SQL, so a route that forgets the rules fails here.
"""

from __future__ import annotations

import math
import uuid

import mapbox_vector_tile
import pytest
from psycopg import sql

from gis.auth import api_keys, users
from gis.auth.roles import ROLES
from layers.access import ANONYMOUS, Principal, can_read, readable_fields, row_filter
from layers.catalogue import LAYERS

RUN = uuid.uuid4().hex[:8]
PROFILES = ["anonymous", *ROLES]


def principal(profile: str) -> Principal:
    return ANONYMOUS if profile == "anonymous" else Principal(f"leak-{profile}", frozenset({profile}))


@pytest.fixture(scope="module")
def headers(conn) -> dict[str, dict[str, str]]:
    """One API key per role (fast: no password hashing on every request)."""
    out = {"anonymous": {}}
    for role in ROLES:
        name = f"leak{RUN}-{role.replace('_', '-')}"
        users.add_user(conn, name, "mật-khẩu-đủ-dài-1", roles=[role])
        out[role] = {"X-API-Key": api_keys.create_key(conn, name, "leak matrix", days=1).key}
    yield out
    conn.execute("DELETE FROM users WHERE username LIKE %s", (f"leak{RUN}-%",))


def expected_count(conn, layer, who: Principal) -> int:
    restrict = row_filter(layer, who)
    return conn.execute(sql.SQL("SELECT count(*) FROM {} AS t WHERE {}").format(
        sql.Identifier(layer.table), restrict if restrict is not None else sql.SQL("TRUE"))
    ).fetchone()[0]


@pytest.mark.parametrize("profile", PROFILES)
def test_collection_lists_openapi_and_html_name_only_readable_layers(client, headers, profile) -> None:
    who = principal(profile)
    h = headers[profile]
    listed = {c["id"] for c in client.get("/ogc/collections?f=json", headers=h).json()["collections"]}
    assert listed == {layer.id for layer in LAYERS if can_read(layer, who)}
    html = client.get("/ogc/collections?f=html", headers=h).text
    openapi = client.get("/ogc/openapi?f=json", headers=h).text
    for layer in LAYERS:
        visible = can_read(layer, who)
        for text in (html, openapi):
            assert (f"/collections/{layer.id}" in text) == visible, (profile, layer.id)


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer.id)
@pytest.mark.parametrize("profile", PROFILES)
def test_items_item_queryables_and_tiles(client, conn, headers, profile, layer) -> None:
    who = principal(profile)
    h = headers[profile]
    base = f"/ogc/collections/{layer.id}"
    if not can_read(layer, who):
        for path in (base, f"{base}/items", f"{base}/queryables", f"{base}/items/1",
                     f"{base}/tiles", f"{base}/tiles/WebMercatorQuad/{layer.min_zoom}/0/0"):
            r = client.get(path, headers=h)
            assert r.status_code == 404 and layer.id in r.json()["description"], (path, r.text)
        return
    fields = {f.name for f in readable_fields(layer, who)}
    # items: every visible row, exactly the readable fields (absent, not null-filled)
    body = client.get(f"{base}/items?limit=10000&skipGeometry=true", headers=h).json()
    total = expected_count(conn, layer, who)
    assert body["numberReturned"] == min(total, 10000)
    for f in body["features"][:200]:
        assert set(f["properties"]) == fields, (profile, layer.id)
    # single item
    fid = body["features"][0]["id"]
    item = client.get(f"{base}/items/{fid}", headers=h).json()
    assert set(item["properties"]) == fields
    # queryables
    q = client.get(f"{base}/queryables?f=json", headers=h).json()
    assert set(q["properties"]) - {"geometry"} == fields
    # tiles: fields carried in tiles are the readable ones marked in_tiles
    lon, lat = conn.execute(sql.SQL(
        "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface({}) AS p FROM {} WHERE id = %s) s"
    ).format(sql.Identifier(layer.geometry_column), sql.Identifier(layer.table)), (fid,)).fetchone()
    z = max(layer.min_zoom, 16)
    n = 1 << z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    r = client.get(f"{base}/tiles/WebMercatorQuad/{z}/{y}/{x}", headers=h)
    assert r.status_code == 200, r.text
    tile = mapbox_vector_tile.decode(r.content)[layer.id]["features"]
    tile_fields = {f.name for f in readable_fields(layer, who) if f.in_tiles}
    for feature in tile:
        assert set(feature["properties"]) <= tile_fields
    assert fid in {f["id"] for f in tile}


def test_security_events_only_for_security_roles(client, conn, headers) -> None:
    for profile in ("operator", "land_officer", "security_officer", "leader", "admin"):
        body = client.get("/ogc/collections/incidents/items?category=security_event&limit=10",
                          headers=headers[profile]).json()
        sees = profile in ("security_officer", "leader", "admin")
        assert (body["numberReturned"] > 0) == sees, profile
    hidden_id = conn.execute("SELECT id FROM incidents WHERE category = 'security_event' LIMIT 1"
                             ).fetchone()[0]
    r = client.get(f"/ogc/collections/incidents/items/{hidden_id}", headers=headers["operator"])
    assert r.status_code == 404


def test_sensitive_reads_are_audited(client, conn, headers) -> None:
    before = conn.execute("SELECT count(*) FROM audit_log WHERE action = 'read' AND layer = 'incidents'"
                          ).fetchone()[0]
    client.get("/ogc/collections/incidents/items?limit=1", headers=headers["security_officer"])
    client.get("/ogc/collections/incidents/items?limit=1", headers=headers["operator"])  # not sensitive
    rows = conn.execute("SELECT username, roles, path FROM audit_log WHERE action = 'read' AND "
                        "layer = 'incidents' ORDER BY id DESC LIMIT 5").fetchall()
    after = conn.execute("SELECT count(*) FROM audit_log WHERE action = 'read' AND layer = 'incidents'"
                         ).fetchone()[0]
    assert after == before + 1
    assert rows[0][0].endswith("security-officer") and rows[0][2].endswith("/incidents/items")


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer.id)
@pytest.mark.parametrize("profile", PROFILES)
def test_exports(client, conn, headers, profile, layer, tmp_path) -> None:
    """GeoJSON and Shapefile exports carry exactly the readable fields (the shapefile under the
    catalogue's short names) and exactly the visible rows."""
    import json

    import pyogrio

    who = principal(profile)
    h = headers[profile]
    lo = conn.execute(sql.SQL("SELECT min(id) FROM {}").format(sql.Identifier(layer.table))).fetchone()[0]
    params = {"layer": layer.id, "mode": "sync", "filter": f"id <= {lo + 300}"}
    r = client.get("/api/exports", params={**params, "format": "geojson"}, headers=h)
    if not can_read(layer, who):
        assert r.status_code == 404 and layer.id in r.json()["detail"]
        return
    assert r.status_code == 200, r.text
    fields = readable_fields(layer, who)
    features = json.loads(r.content)["features"]
    restrict = row_filter(layer, who)
    expected = conn.execute(sql.SQL("SELECT count(*) FROM {} AS t WHERE id <= %s AND {}").format(
        sql.Identifier(layer.table), restrict if restrict is not None else sql.SQL("TRUE")),
        (lo + 300,)).fetchone()[0]
    assert len(features) == expected
    for f in features:
        assert set(f["properties"]) - {"id"} == {f_.name for f_ in fields}
    shp = client.get("/api/exports", params={**params, "format": "shp"}, headers=h)
    assert shp.status_code == 200, shp.text
    path = tmp_path / "export.zip"
    path.write_bytes(shp.content)
    names = set()
    for layer_name, _ in pyogrio.list_layers(f"/vsizip/{path}"):
        names |= set(pyogrio.read_info(f"/vsizip/{path}", layer=layer_name)["fields"])
    assert names - {"ID", "id"} == {f_.export_name for f_ in fields}


@pytest.mark.parametrize("profile", PROFILES)
def test_export_process_offers_and_runs_only_readable_layers(client, headers, profile) -> None:
    """The OGC API - Processes way out: the process description lists exactly the readable
    layers, and executing it on any other layer is a 404 (no job is created)."""
    who = principal(profile)
    h = headers[profile]
    description = client.get("/ogc/processes/export", headers=h).json()
    readable = {layer.id for layer in LAYERS if can_read(layer, who)}
    assert set(description["inputs"]["layer"]["schema"]["enum"]) == readable
    for layer in LAYERS:
        if layer.id not in readable:
            r = client.post("/ogc/processes/export/execution", json={"inputs": {"layer": layer.id}},
                            headers=h)
            assert r.status_code == 404 and layer.id in r.json()["description"], r.text
