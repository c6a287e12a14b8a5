"""The public-facilities layer: one catalogue definition, one migration and a sample generator,
and nothing else. Each test checks a way in or out that no code names the layer for: OGC
collections, items and tiles; the map's manifest, legend and identify; search; exports;
imports with their natural key and roles; and the access rule on the duty phone."""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path

import geopandas as gpd
import mapbox_vector_tile
import pyogrio
import pytest
from _io_util import RUN

from gis.analysis.search import fold
from layers.access import ANONYMOUS, Principal, readable_fields
from layers.catalogue import FACILITY_TYPES, get_layer

LAYER = get_layer("public_facilities")
OPERATOR = Principal("fac-operator", frozenset({"operator"}))
# Codes of this run's imported rows (the sample uses real commune codes, never 99xxx).
TEST_COMMUNE = "99990"


@pytest.fixture(scope="module", autouse=True)
def _remove_imported_rows(conn):
    yield
    conn.execute("DELETE FROM public_facilities WHERE commune_code = %s", (TEST_COMMUNE,))


@pytest.fixture(scope="module")
def facility(conn) -> dict:
    """A hospital of the sample (its name has diacritics): id, code, name, lon, lat."""
    row = conn.execute(
        "SELECT id, code, name, ST_X(geom), ST_Y(geom), phone FROM public_facilities"
        " WHERE type = 'hospital' ORDER BY code LIMIT 1").fetchone()
    assert row is not None, "the sample has hospitals"
    return dict(zip(("id", "code", "name", "lon", "lat", "phone"), row, strict=True))


def _tile(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 1 << z
    return (int((lon + 180) / 360 * n),
            int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n))


# --- the sample ---------------------------------------------------------------------------------


def test_sample_has_a_committee_a_school_a_clinic_and_police_per_commune(conn) -> None:
    communes = conn.execute("SELECT code FROM admin_units WHERE level = 'commune' AND valid_to IS NULL"
                            ).fetchall()
    per_type = dict(conn.execute(
        "SELECT type, count(DISTINCT commune_code) FROM public_facilities"
        " WHERE commune_code <> %s GROUP BY type", (TEST_COMMUNE,)).fetchall())
    for kind in ("people_committee", "school", "clinic", "police"):
        assert per_type[kind] == len(communes), kind
    assert per_type["hospital"] >= 3 and per_type["fire_station"] >= 1
    outside = conn.execute(
        "SELECT count(*) FROM public_facilities f WHERE commune_code <> %s AND NOT EXISTS ("
        " SELECT 1 FROM admin_units a WHERE a.code = f.commune_code AND a.valid_to IS NULL"
        " AND ST_Covers(a.geom, f.geom))", (TEST_COMMUNE,)).fetchone()[0]
    assert outside == 0  # each facility lies in the commune it names


# --- OGC API ------------------------------------------------------------------------------------


def test_ogc_collection_items_and_the_phone_rule(client, keys, facility) -> None:
    ids = {c["id"] for c in client.get("/ogc/collections", params={"f": "json"}).json()["collections"]}
    assert LAYER.id in ids
    url = f"/ogc/collections/{LAYER.id}/items/{facility['id']}"
    public = client.get(url, params={"f": "json"}).json()["properties"]
    assert public["name"] == facility["name"] and public["type"] == "hospital"
    assert "phone" not in public  # duty phones are for staff
    staff = client.get(url, params={"f": "json"}, headers=keys["operator"]).json()["properties"]
    assert staff["phone"] == facility["phone"]
    page = client.get(f"/ogc/collections/{LAYER.id}/items",
                      params={"f": "json", "limit": 5, "type": "school"}).json()
    assert page["features"] and {f["properties"]["type"] for f in page["features"]} == {"school"}


def test_vector_tile_carries_the_facility(client, facility) -> None:
    z = 16
    x, y = _tile(facility["lon"], facility["lat"], z)
    r = client.get(f"/ogc/collections/{LAYER.id}/tiles/WebMercatorQuad/{z}/{y}/{x}")
    assert r.status_code == 200, r.text
    features = mapbox_vector_tile.decode(r.content)[LAYER.id]["features"]
    mine = [f for f in features if f["properties"].get("code") == facility["code"]]
    assert mine and mine[0]["properties"]["type"] == "hospital"
    assert "phone" not in mine[0]["properties"] and "address" not in mine[0]["properties"]


# --- the map ------------------------------------------------------------------------------------


def test_manifest_entry_and_legend_per_type(client, keys) -> None:
    body = client.get("/api/map/layers").json()
    entry = next(e for e in body["layers"] if e["id"] == LAYER.id)
    assert entry["kind"] == "features" and entry["geometry"] == "Point" and entry["identify"]
    assert entry["source"] == f"/ogc/collections/{LAYER.id}/items"
    assert entry["label_field"] == "name"
    assert "services" in [d["id"] for d in body["domains"]]
    legend = {e["value"]: e for e in entry["legend"]}
    assert set(legend) == set(FACILITY_TYPES)
    for value, (vi, en) in FACILITY_TYPES.items():
        assert legend[value]["label"] == {"vi": vi, "en": en}
        assert legend[value]["color"] == LAYER.style.palette[value]
    assert "phone" not in {f["name"] for f in entry["fields"]}
    staff = client.get("/api/map/layers", headers=keys["operator"]).json()
    staff_entry = next(e for e in staff["layers"] if e["id"] == LAYER.id)
    assert "phone" in {f["name"] for f in staff_entry["fields"]}


def test_identify_finds_a_facility_near_a_click(client, keys, facility) -> None:
    # about 6 m north-east of the facility, at zoom 17 (the tolerance there is 12 pixels, ~13 m)
    near = {"lon": facility["lon"] + 0.00004, "lat": facility["lat"] + 0.00004, "z": 17}
    body = client.get("/api/map/identify", params=near).json()
    hit = next(f for f in body["features"] if f["layer"] == LAYER.id)
    assert hit["id"] == facility["id"] and hit["properties"]["name"] == facility["name"]
    assert "phone" not in hit["properties"]
    staff = client.get("/api/map/identify", params=near, headers=keys["operator"]).json()
    assert next(f for f in staff["features"] if f["layer"] == LAYER.id)["properties"]["phone"] \
        == facility["phone"]
    # ~60 m away at zoom 17 is not a click on it; at zoom 13 (~150 m a pixel-span) it is
    far = {"lon": facility["lon"] + 0.0006, "lat": facility["lat"], "layers": LAYER.id}
    assert client.get("/api/map/identify", params={**far, "z": 17}).json()["features"] == []
    assert client.get("/api/map/identify", params={**far, "z": 13}).json()["features"]
    # only the layer asked for, and a layer the server does not identify is a 400
    only = client.get("/api/map/identify", params={**near, "layers": LAYER.id}).json()
    assert {f["layer"] for f in only["features"]} == {LAYER.id}
    r = client.get("/api/map/identify", params={**near, "layers": "tourism_places"})
    assert r.status_code == 400 and r.json()["parameter"] == "layers"


def test_identify_finds_a_road_near_a_click(client, conn) -> None:
    rid, x, y = conn.execute("SELECT id, ST_X(p), ST_Y(p) FROM (SELECT id, ST_LineInterpolatePoint(geom,"
                             " 0.5) p FROM roads WHERE name IS NOT NULL ORDER BY id LIMIT 1) s").fetchone()
    body = client.get("/api/map/identify", params={"lon": x + 0.00003, "lat": y, "z": 17,
                                                   "layers": "roads"}).json()
    assert [f["id"] for f in body["features"]] == [rid]


# --- search -------------------------------------------------------------------------------------


def test_search_by_name_without_diacritics(client, facility) -> None:
    typed = fold(facility["name"])
    assert typed.isascii() and typed != facility["name"].lower()
    body = client.get("/api/search", params={"q": typed}).json()
    hits = [h for h in body["results"] if h["layer"] == LAYER.id]
    assert hits and hits[0]["id"] == facility["id"] and hits[0]["kind"] == "feature"
    assert hits[0]["title"]["vi"] == facility["name"]
    assert hits[0]["center"] == pytest.approx([facility["lon"], facility["lat"]], abs=1e-7)
    assert "phone" not in hits[0]["properties"]
    group = next(g for g in body["groups"] if g["layer"] == LAYER.id)
    assert group["title"]["en"] == LAYER.title_en and group["results"][0]["id"] == facility["id"]
    # by code too
    by_code = client.get("/api/search", params={"q": facility["code"].lower()}).json()["results"]
    assert facility["id"] in [h["id"] for h in by_code if h["layer"] == LAYER.id]


def test_search_keeps_to_readable_layers(client, conn) -> None:
    """Cameras (internal) are found by staff, never by anonymous callers."""
    name = conn.execute("SELECT name FROM cameras ORDER BY id LIMIT 1").fetchone()[0]
    anon = client.get("/api/search", params={"q": fold(name)}).json()
    assert "cameras" not in {h["layer"] for h in anon["results"]} and "camera" not in \
        json.dumps([g["layer"] for g in anon["groups"]])


# --- exports ------------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", ["anonymous", "operator"])
def test_exports_with_short_field_names(client, keys, tmp_path, profile) -> None:
    who = ANONYMOUS if profile == "anonymous" else OPERATOR
    fields = readable_fields(LAYER, who)
    params = {"layer": LAYER.id, "mode": "sync", "filter": "type = 'hospital'"}
    r = client.get("/api/exports", params={**params, "format": "geojson"}, headers=keys[profile])
    assert r.status_code == 200, r.text
    features = json.loads(r.content)["features"]
    assert features and {f["properties"]["type"] for f in features} == {"hospital"}
    for f in features:
        assert set(f["properties"]) - {"id"} == {x.name for x in fields}
    shp = client.get("/api/exports", params={**params, "format": "shp"}, headers=keys[profile])
    assert shp.status_code == 200, shp.text
    path = tmp_path / "facilities.zip"
    path.write_bytes(shp.content)
    names: set[str] = set()
    for layer_name, _ in pyogrio.list_layers(f"/vsizip/{path}"):
        names |= set(pyogrio.read_info(f"/vsizip/{path}", layer=layer_name)["fields"])
    assert names - {"ID", "id"} == {x.export_name for x in fields}
    assert ("DIENTHOAI" in names) == (profile == "operator")


# --- imports ------------------------------------------------------------------------------------


def _facilities(n: int = 3) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({
        "code": [f"TH-{TEST_COMMUNE}-{i + 1:02d}" for i in range(n)],
        "name": [f"Trường Mầm non Đồng Kỵ {RUN} {i}" for i in range(n)],
        "type": ["school"] * n,
        "address": ["Xã thử nghiệm"] * n,
        "capacity": [120 + i for i in range(n)],
        "phone": ["0222 3800 123"] * n,
        "commune_code": [TEST_COMMUNE] * n,
    }, geometry=gpd.points_from_xy([106.05 + 0.001 * i for i in range(n)], [21.15] * n), crs=4326)


def _shapefile(gdf: gpd.GeoDataFrame, tmp_path: Path) -> Path:
    """A Shapefile in VN-2000 under the catalogue's short names, zipped, as offices send them."""
    short = {f.name: f.export_name for f in LAYER.fields}
    d = tmp_path / "shp"
    d.mkdir(parents=True, exist_ok=True)
    gdf.to_crs(9209).rename(columns=short).to_file(d / "coso.shp", engine="pyogrio", encoding="UTF-8")
    z = tmp_path / "coso.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for p in sorted(d.iterdir()):
            zf.write(p, p.name)
    return z


def _upload(client, path: Path, headers: dict[str, str]):
    with path.open("rb") as f:
        return client.post("/api/imports", data={"layer": LAYER.id},
                           files={"file": (path.name, f)}, headers=headers)


def test_import_by_import_roles_and_reimport_is_a_no_op(client, conn, keys, tmp_path) -> None:
    assert LAYER.import_roles == ("operator",)
    z = _shapefile(_facilities(), tmp_path)
    for role in ("citizen", "land_officer", "security_officer"):
        assert _upload(client, z, keys[role]).status_code == 403, role
    assert _upload(client, z, keys["anonymous"]).status_code in (401, 403)
    r = _upload(client, z, keys["operator"])
    assert r.status_code == 200, r.text
    assert (r.json()["inserted"], r.json()["updated"], r.json()["unchanged"]) == (3, 0, 0)
    again = _upload(client, z, keys["operator"]).json()
    assert (again["inserted"], again["updated"], again["unchanged"]) == (0, 0, 3)
    rows = conn.execute("SELECT code, name, phone FROM public_facilities WHERE commune_code = %s"
                        " ORDER BY code", (TEST_COMMUNE,)).fetchall()
    assert [r[0] for r in rows] == [f"TH-{TEST_COMMUNE}-0{i}" for i in (1, 2, 3)]
    assert rows[0][1].startswith("Trường Mầm non Đồng Kỵ") and rows[0][2] == "0222 3800 123"
    # a changed name updates the row found by its code
    gdf = _facilities()
    gdf.loc[1, "name"] = f"Trường Mầm non đổi tên {RUN}"
    changed = _upload(client, _shapefile(gdf, tmp_path / "x"), keys["operator"]).json()
    assert (changed["inserted"], changed["updated"], changed["unchanged"]) == (0, 1, 2)


def test_import_checks_the_coded_type(client, keys, tmp_path) -> None:
    gdf = _facilities(1)
    gdf["code"] = [f"XX-{TEST_COMMUNE}-50"]
    gdf["type"] = ["casino"]
    path = tmp_path / "bad.geojson"
    gdf.to_file(path, driver="GeoJSON", engine="pyogrio")
    r = _upload(client, path, keys["operator"])
    assert r.status_code == 422, r.text
