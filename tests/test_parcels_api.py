"""Parcel search and the parcel file over HTTP, checked against SQL on the sample; the planted
anomalies; access to personal fields and to other layers' sections; bad input."""

from __future__ import annotations

import json
import re

import psycopg
import pytest
from parcels_helpers import keyset

from gis.parcels import checks
from gis.parcels.common import fold
from gis.settings import get_settings
from layers.access import ANONYMOUS, Principal, can_read, readable_fields
from layers.catalogue import get_layer

SRID = get_settings().province_srid


@pytest.fixture(scope="module")
def sample_ids(conn) -> list[int]:
    """A fixed spread of parcels: every 997th, plus the planted ones."""
    return [r[0] for r in conn.execute(
        "SELECT id FROM (SELECT id, row_number() OVER (ORDER BY id) AS k FROM parcels) q"
        " WHERE k % 997 = 1 ORDER BY id LIMIT 40").fetchall()]


def _ids(body: dict) -> list[int]:
    return [r["id"] for r in body["results"]]


def _all_pages(client, url: str, headers=None) -> list[int]:
    ids: list[int] = []
    offset = 0
    while True:
        r = client.get(f"{url}&limit=500&offset={offset}", headers=headers or {})
        assert r.status_code == 200, r.text
        body = r.json()
        ids += _ids(body)
        if not body["more"]:
            return ids
        offset += 500


# --- search correctness ------------------------------------------------------------------------


def test_search_by_number_matches_sql(client, conn, sample_ids) -> None:
    rows = conn.execute("SELECT id, commune_code, old_commune_code, sheet_no, parcel_no FROM parcels"
                        " WHERE id = ANY(%s)", (sample_ids,)).fetchall()
    assert len(rows) >= 30
    for pid, commune, old, sheet, number in rows:
        for code in {commune, old} - {None}:
            expected = {r[0] for r in conn.execute(
                "SELECT id FROM parcels WHERE (commune_code = %s OR old_commune_code = %s)"
                " AND sheet_no = %s AND parcel_no = %s", (code, code, sheet, number)).fetchall()}
            r = client.get(f"/api/parcels/search?commune={code}&sheet={sheet}&parcel={number}")
            assert r.status_code == 200, r.text
            assert set(_ids(r.json())) == expected and pid in expected
            res = r.json()["results"][0]
            assert (res["sheet_no"], res["parcel_no"]) == (sheet, number)
            r = client.get(f"/api/parcels/by-number/{code}/{sheet}/{number}")
            assert r.status_code == 200 and r.json()["id"] == pid, r.text


def test_search_by_sheet_and_commune_name_matches_sql(client, conn) -> None:
    code, name, sheet = conn.execute(
        "SELECT p.commune_code, a.name, p.sheet_no FROM parcels p JOIN admin_units a"
        " ON a.code = p.commune_code AND a.valid_to IS NULL AND a.level = 'commune'"
        " GROUP BY 1, 2, 3 ORDER BY count(*) LIMIT 1").fetchone()
    expected = [r[0] for r in conn.execute(
        "SELECT id FROM parcels WHERE commune_code = %s AND sheet_no = %s"
        " ORDER BY parcel_no, old_commune_code NULLS FIRST, id", (code, sheet)).fetchall()]
    # The name without diacritics finds the commune.
    got = _all_pages(client, f"/api/parcels/search?commune={fold(name)}&sheet={sheet}")
    assert got == expected


def test_search_by_land_use_matches_sql(client, conn) -> None:
    code, commune = conn.execute(
        "SELECT c, commune_code FROM (SELECT unnest(land_use_codes) c, commune_code FROM parcels) q"
        " GROUP BY 1, 2 HAVING count(*) BETWEEN 20 AND 1500 ORDER BY count(*) DESC LIMIT 1").fetchone()
    expected = {r[0] for r in conn.execute(
        "SELECT id FROM parcels WHERE %s = ANY(land_use_codes) AND commune_code = %s",
        (code, commune)).fetchall()}
    got = _all_pages(client, f"/api/parcels/search?land_use={code.lower()}&commune={commune}")
    assert len(got) == len(set(got)) and set(got) == expected
    # Several codes: parcels having any of them.
    expected2 = {r[0] for r in conn.execute(
        "SELECT id FROM parcels WHERE land_use_codes && '{TON,TIN}'").fetchall()}
    assert set(_all_pages(client, "/api/parcels/search?land_use=TON,TIN")) == expected2


def test_search_by_point_matches_sql(client, conn, sample_ids) -> None:
    points = conn.execute(
        "SELECT id, ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM parcels"
        " WHERE id = ANY(%s)", (sample_ids,)).fetchall()
    for pid, lon, lat in points:
        expected = {r[0] for r in conn.execute(
            "SELECT id FROM parcels WHERE ST_Intersects(geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326))",
            (lon, lat)).fetchall()}
        r = client.get(f"/api/parcels/search?point={lon!r},{lat!r}")
        assert r.status_code == 200 and set(_ids(r.json())) == expected and pid in expected


def test_search_by_vn2000_point(client, conn) -> None:
    pid, e, n = conn.execute(
        "SELECT id, ST_X(g), ST_Y(g) FROM (SELECT id, ST_Transform(ST_PointOnSurface(geom), %s) g"
        " FROM parcels ORDER BY id LIMIT 1) q", (SRID,)).fetchone()
    r = client.get(f"/api/parcels/search?xy={n:.3f},{e:.3f}")  # X = northing first
    assert r.status_code == 200 and _ids(r.json()) == [pid]


def test_search_by_polygon_matches_sql(client, conn, sample_ids) -> None:
    for pid in sample_ids[:6]:
        (poly,) = conn.execute(
            "SELECT ST_AsGeoJSON(ST_Transform(ST_Buffer(ST_Transform(ST_Centroid(geom), %s), 40, 3), 4326))"
            " FROM parcels WHERE id = %s", (SRID, pid)).fetchone()
        for relation, pred in (("intersects", "ST_Intersects"), ("within", "ST_CoveredBy")):
            expected = {r[0] for r in conn.execute(
                f"SELECT id FROM parcels WHERE {pred}(geom, ST_GeomFromGeoJSON(%s))",  # noqa: S608
                (poly,)).fetchall()}
            r = client.post("/api/parcels/search",
                            json={"geometry": json.loads(poly), "relation": relation, "limit": 500})
            assert r.status_code == 200, r.text
            assert set(_ids(r.json())) == expected, (pid, relation)
            assert relation == "within" or pid in expected


def test_search_polygon_in_vn2000_and_combined_filters(client, conn) -> None:
    pid, code, coords = conn.execute(
        "SELECT id, land_use_codes[1], ST_AsGeoJSON(ST_Transform(ST_Buffer(ST_Transform("
        "ST_PointOnSurface(geom), %s), 25), %s)) FROM parcels ORDER BY id DESC LIMIT 1",
        (SRID, SRID)).fetchone()
    r = client.post("/api/parcels/search", json={"geometry": json.loads(coords), "crs": f"EPSG:{SRID}",
                                                 "land_use": code, "limit": 500})
    assert r.status_code == 200, r.text
    got = r.json()["results"]
    assert pid in [x["id"] for x in got] and all(code in x["land_use_codes"] for x in got)


# --- owner search and personal fields -----------------------------------------------------------


def test_owner_search_refused_without_the_right(client, keys) -> None:
    r = client.get("/api/parcels/search?owner=nguyen")
    assert r.status_code == 401 and "WWW-Authenticate" in r.headers
    for role in ("citizen", "operator", "security_officer", "leader"):
        if "land_user" in {f.name for f in readable_fields(get_layer("parcels"),
                                                           Principal("x", frozenset({role})))}:
            continue
        r = client.get("/api/parcels/search?owner=nguyen", headers=keys[role])
        assert r.status_code == 403, (role, r.text)
        square = [[[106, 21], [106.01, 21], [106.01, 21.01], [106, 21]]]
        r = client.post("/api/parcels/search", headers=keys[role], json={
            "owner": "nguyen", "geometry": {"type": "Polygon", "coordinates": square}})
        assert r.status_code == 403, (role, r.text)


def test_owner_search_accent_and_case_insensitive(client, conn, keys, role_keys) -> None:
    import unicodedata

    (since,) = conn.execute("SELECT coalesce(max(id), 0) FROM audit_log").fetchone()
    pid, name = conn.execute(
        "SELECT id, land_user FROM parcels WHERE land_user ~ '[ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽềểễệ]'"
        " AND land_user_id IS NOT NULL ORDER BY id LIMIT 1").fetchone()
    words = fold(name).split()
    expected = {r[0] for r in conn.execute(
        "SELECT id FROM parcels WHERE geoioc_fold(land_user) LIKE ALL(%s)",
        ([f"%{w}%" for w in words],)).fetchall()}
    for query in (fold(name).upper(), name.lower(), unicodedata.normalize("NFD", name)):
        for role in ("land_officer", "admin"):
            got = _all_pages(client, f"/api/parcels/search?owner={query}", keys[role])
            assert set(got) == expected and pid in got, (role, query)
    # The exact name comes first, with the name shown to land officers.
    r = client.get(f"/api/parcels/search?owner={name}&limit=5", headers=keys["land_officer"])
    first = r.json()["results"][0]
    assert first["land_user"] == name
    n = conn.execute("SELECT count(*) FROM audit_log WHERE id > %s AND username = %s AND action = 'read'"
                     " AND layer = 'parcels' AND path = '/api/parcels/search'",
                     (since, role_keys["land_officer"]["user"])).fetchone()[0]
    assert n >= 4  # this test's searches as the land officer (the user is shared by the suite)


@pytest.mark.parametrize("profile", ["anonymous", "citizen", "operator", "land_officer",
                                     "security_officer", "admin"])
def test_parcel_file_fields_and_sections_follow_access_rules(client, conn, keys, profile) -> None:
    who = ANONYMOUS if profile == "anonymous" else Principal("x", frozenset({profile}))
    pid = conn.execute("SELECT id FROM parcels WHERE land_user_id IS NOT NULL ORDER BY id LIMIT 1"
                       ).fetchone()[0]
    body = client.get(f"/api/parcels/{pid}", headers=keys[profile]).json()
    assert set(body["properties"]) == {f.name for f in readable_fields(get_layer("parcels"), who)}
    for layer_id in ("incidents", "cameras"):
        assert (layer_id in body) == can_read(get_layer(layer_id), who), (profile, layer_id)
    search = client.get("/api/parcels/search?land_use=LUC&limit=3", headers=keys[profile]).json()
    assert all(("land_user" in r) == ("land_user" in body["properties"]) for r in search["results"])
    page = client.get(f"/parcels/{pid}", headers=keys[profile]).text
    name = conn.execute("SELECT land_user FROM parcels WHERE id = %s", (pid,)).fetchone()[0]
    assert (name in page) == ("land_user" in body["properties"])
    assert ('id="incidents-title"' in page) == ("incidents" in body)


def _near(conn, category: str) -> tuple[int, int] | None:
    return conn.execute(
        "SELECT p.id, i.id FROM incidents i JOIN parcels p ON ST_DWithin(ST_Transform(p.geom, %s),"
        " ST_Transform(i.geom, %s), 50) AND p.geom && ST_Expand(i.geom, 0.001)"
        " WHERE i.reported_at > now() - interval '12 months' AND i.category = %s"
        " ORDER BY i.id LIMIT 1", (SRID, SRID, category)).fetchone()


def test_incidents_section_matches_sql_and_hides_security_events(client, conn, keys, role_keys) -> None:
    (since,) = conn.execute("SELECT coalesce(max(id), 0) FROM audit_log").fetchone()
    hit = _near(conn, "security_event")
    assert hit is not None, "the sample has security events near parcels"
    pid, incident = hit
    expected_all = {r[0] for r in conn.execute(
        "SELECT i.id FROM incidents i, parcels p WHERE p.id = %s AND i.reported_at > now() - interval"
        " '12 months' AND i.reported_at <= now() AND ST_DWithin(ST_Transform(i.geom, %s),"
        " ST_Transform(p.geom, %s), 50)", (pid, SRID, SRID)).fetchall()}
    security = {r[0] for r in conn.execute(
        "SELECT id FROM incidents WHERE id = ANY(%s) AND category = 'security_event'",
        (list(expected_all),)).fetchall()}
    seen = {i["id"] for i in client.get(f"/api/parcels/{pid}", headers=keys["security_officer"]
                                        ).json()["incidents"]["items"]}
    assert seen == expected_all and incident in seen
    op = client.get(f"/api/parcels/{pid}", headers=keys["operator"]).json()["incidents"]
    assert {i["id"] for i in op["items"]} == expected_all - security
    assert all(i["category"] != "security_event" for i in op["items"])
    # The security officer's read of restricted rows is audited.
    n = conn.execute("SELECT count(*) FROM audit_log WHERE id > %s AND username = %s"
                     " AND layer = 'incidents'", (since, role_keys["security_officer"]["user"])).fetchone()[0]
    assert n >= 1


def test_cameras_section_matches_sql(client, conn, keys) -> None:
    row = conn.execute(
        "SELECT p.id FROM cameras c JOIN parcels p ON p.geom && c.fov AND ST_Intersects(p.geom, c.fov)"
        " AND ST_Area(ST_Intersection(p.geom, c.fov)) > 1e-10 ORDER BY p.id LIMIT 1").fetchone()
    assert row is not None
    pid = row[0]
    expected = {r[0] for r in conn.execute(
        "SELECT c.id FROM cameras c, parcels p WHERE p.id = %s AND ST_Intersects(c.fov, p.geom)"
        " AND ST_Area(ST_Intersection(c.fov, p.geom)) > 0", (pid,)).fetchall()}
    op = client.get(f"/api/parcels/{pid}", headers=keys["operator"]).json()["cameras"]
    assert {c["id"] for c in op["items"]} == expected
    assert all("stream_url" not in c for c in op["items"])
    sec = client.get(f"/api/parcels/{pid}", headers=keys["security_officer"]).json()["cameras"]
    assert all("stream_url" in c for c in sec["items"])
    assert all(0 < c["share"] <= 1 for c in sec["items"])


# --- the parcel file ---------------------------------------------------------------------------


def test_area_land_use_zones_and_neighbours(client, conn, sample_ids) -> None:
    for pid in sample_ids[:10]:
        body = client.get(f"/api/parcels/{pid}").json()
        legal, computed = conn.execute(
            "SELECT legal_area, ST_Area(ST_Transform(geom, %s)) FROM parcels WHERE id = %s",
            (SRID, pid)).fetchone()
        assert body["area"]["legal_m2"] == float(legal)
        assert abs(body["area"]["computed_m2"] - computed) < 0.01
        assert [u["code"] for u in body["land_use"]] == body["properties"]["land_use_codes"]
        assert all(u["name_vi"] and u["name_en"] for u in body["land_use"])
        # Zones tile the communes: their shares of a parcel add up to 1.
        assert abs(sum(z["share"] for z in body["zones"]) - 1) < 0.001
        # Neighbours share a boundary, and are mutual.
        for n in body["neighbours"]:
            d = conn.execute("SELECT ST_Distance(ST_Transform(a.geom, %s), ST_Transform(b.geom, %s))"
                             " FROM parcels a, parcels b WHERE a.id = %s AND b.id = %s",
                             (SRID, SRID, pid, n["id"])).fetchone()[0]
            assert d < 0.01 and n["shared_boundary_m"] > 0.4
            back = client.get(f"/api/parcels/{n['id']}").json()["neighbours"]
            assert pid in {b["id"] for b in back}


def test_planted_anomalies_all_found_and_nothing_else(client, conn, keys, sample_ids) -> None:
    (planted,) = conn.execute("SELECT planted FROM sample_info").fetchone()
    area = checks.all_area_discrepancies(conn, SRID)
    assert keyset((r["commune_code"], r["old_commune_code"], r["sheet_no"], r["parcel_no"]) for r in area) \
        == keyset(planted["area_discrepancies"])
    conflicts = checks.all_zoning_conflicts(conn, SRID)
    ids = list({c.parcel_id for c in conflicts})
    rows = conn.execute("SELECT commune_code, old_commune_code, sheet_no, parcel_no FROM parcels"
                        " WHERE id = ANY(%s)", (ids,)).fetchall()
    assert keyset(rows) == keyset(planted["zoning_conflicts"])
    assert len(ids) == len(planted["zoning_conflicts"])
    assert all(c.zone_code == "LUC" and c.parcel_code == "ONT" for c in conflicts)
    # The same checks on the parcel file and in the officer's work list.
    for key in planted["area_discrepancies"][:3] + planted["zoning_conflicts"][:3]:
        commune, old, sheet, number = key
        body = client.get(f"/api/parcels/by-number/{old or commune}/{sheet}/{number}").json()
        flag = "area_discrepancy" if key in planted["area_discrepancies"] else "zoning_conflict"
        assert flag in body["flags"], (key, body["flags"])
        if flag == "zoning_conflict":
            assert body["zoning_conflicts"][0]["zone_code"] == "LUC"
            assert body["zoning_conflicts"][0]["reason"]["vi"]
    planted_keys = {f"{k[0]}/{k[2]}/{k[3]}" for k in
                    planted["area_discrepancies"] + planted["zoning_conflicts"]}
    for pid in sample_ids:
        clean = client.get(f"/api/parcels/{pid}").json()
        assert clean["flags"] == [] or clean["key"] in planted_keys
    assert client.get("/api/parcels/anomalies", headers=keys["operator"]).status_code == 403
    commune = planted["zoning_conflicts"][0][0]
    r = client.get(f"/api/parcels/anomalies?commune={commune}", headers=keys["land_officer"])
    assert r.status_code == 200, r.text
    work = r.json()
    assert {(c["sheet_no"], c["parcel_no"]) for c in work["zoning_conflicts"]} == \
        {(k[2], k[3]) for k in planted["zoning_conflicts"] if k[0] == commune}
    assert {(a["sheet_no"], a["parcel_no"]) for a in work["area_discrepancies"]} == \
        {(k[2], k[3]) for k in planted["area_discrepancies"] if k[0] == commune}


def test_search_by_old_commune_code_and_ambiguity(conn) -> None:
    """Two old communes of one merged commune (the sample digitises only one of a group):
    simulated inside a rolled-back transaction."""
    from gis.parcels import search as s

    with psycopg.connect(get_settings().database_url) as c:
        a, b = c.execute(
            "SELECT id, commune_code, sheet_no, parcel_no FROM parcels WHERE old_commune_code IS NULL"
            " ORDER BY id LIMIT 2").fetchall()
        free = c.execute("SELECT max(parcel_no) + 1 FROM parcels WHERE commune_code = %s", (a[1],)
                         ).fetchone()[0]
        # a: old commune 99001, b: old commune 99002, same new commune, same sheet/parcel.
        c.execute("UPDATE parcels SET old_commune_code = '99001', sheet_no = 77, parcel_no = %s"
                  " WHERE id = %s", (free, a[0]))
        c.execute("UPDATE parcels SET old_commune_code = '99002', commune_code = %s, sheet_no = 77,"
                  " parcel_no = %s WHERE id = %s", (a[1], free, b[0]))
        assert s.find_by_number(c, "99001", 77, free) == a[0]
        assert s.find_by_number(c, "99002", 77, free) == b[0]
        with pytest.raises(s.Ambiguous) as e:
            s.find_by_number(c, a[1], 77, free)
        assert {x["id"] for x in e.value.details["candidates"]} == {a[0], b[0]}
        got, _ = s.search(c, s.Criteria(communes=["99002"], sheet=77), ("land_use_codes",))
        assert [r["id"] for r in got] == [b[0]]
        got, _ = s.search(c, s.Criteria(communes=[a[1]], sheet=77, parcel=free), ())
        assert {r["id"] for r in got} == {a[0], b[0]}
        c.rollback()


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize("url, status, words", [
    ("/api/parcels/by-number/27001/12/345", 404, "27001/12/345"),
    ("/api/parcels/99999999", 404, "99999999"),
    ("/api/parcels/abc", 404, "abc"),
    ("/api/parcels/by-number/2700/12/345", 400, "2700"),
    ("/api/parcels/by-number/27001/x/345", 400, "sheet"),
    ("/api/parcels/search", 400, "criterion"),
    ("/api/parcels/search?sheet=abc", 400, "sheet"),
    ("/api/parcels/search?sheet=0", 400, "sheet"),
    ("/api/parcels/search?point=106", 400, "point"),
    ("/api/parcels/search?point=500,21", 400, "point"),
    ("/api/parcels/search?xy=1,2", 400, "xy"),
    ("/api/parcels/search?land_use=rice", 400, "land_use"),
    ("/api/parcels/search?commune=zzzzzz", 404, "zzzzzz"),
    ("/api/parcels/search?commune=09244&limit=0", 400, "limit"),
    ("/api/parcels/1?as_of=yesterday", 400, "as_of"),
    ("/parcels/99999999/extract.pdf", 404, "99999999"),
    ("/parcels/99999999/extract.html", 404, "99999999"),
])
def test_bad_input_is_a_4xx_naming_the_problem(client, url, status, words) -> None:
    r = client.get(url)
    assert r.status_code == status, r.text
    assert words in r.json()["detail"]


def test_bad_polygon_search_is_422(client) -> None:
    bow = {"type": "Polygon", "coordinates": [[[106.0, 21.0], [106.001, 21.001], [106.001, 21.0],
                                               [106.0, 21.001], [106.0, 21.0]]]}
    r = client.post("/api/parcels/search", json={"geometry": bow}, headers={"Accept-Language": "en"})
    assert r.status_code == 422 and "Self-intersection" in r.json()["detail"]
    loc = r.json()["problems"][0]["location"]
    assert abs(loc["lon"] - 106.0005) < 1e-6 and abs(loc["lat"] - 21.0005) < 1e-6
    assert "x_northing" in loc and "y_easting" in loc
    open_ring = [[[106, 21], [106.1, 21], [106, 21.1]]]
    for body, status in (({"geometry": {"type": "Point", "coordinates": [106, 21]}}, 422),
                         ({"geometry": {"type": "Polygon", "coordinates": open_ring}}, 422),
                         ({"geometry": "x"}, 422), ({}, 400), ({"geometry": bow, "zz": 1}, 400)):
        r = client.post("/api/parcels/search", json=body)
        assert r.status_code == status, (body, r.text)
    r = client.post("/api/parcels/search", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    big = {"type": "Polygon", "coordinates": [[[105.9, 21.0], [106.3, 21.0], [106.3, 21.3], [105.9, 21.0]]]}
    r = client.post("/api/parcels/search", json={"geometry": big})
    assert r.status_code == 422 and "km²" in r.json()["detail"]


# --- pages ---------------------------------------------------------------------------------------


def test_pages_render_in_vietnamese_and_english(client, conn) -> None:
    pid, code, sheet, number = conn.execute(
        "SELECT id, commune_code, sheet_no, parcel_no FROM parcels ORDER BY id LIMIT 1").fetchone()
    r = client.get(f"/parcels?commune={code}&sheet={sheet}&parcel={number}")
    assert r.status_code == 200 and "Tra cứu thửa đất" in r.text and f'data-id="{pid}"' in r.text
    r = client.get(f"/parcels?commune={code}&sheet={sheet}&parcel={number}&lang=en")
    assert "Parcel search" in r.text and f'href="/parcels/{pid}?lang=en"' in r.text
    page = client.get(f"/parcels/{pid}").text
    assert f"/parcels/{pid}/extract.pdf" in page and f"/parcels/{pid}/extract.html" in page
    assert "Thửa liền kề" in page and "Lịch sử biến động" in page
    assert "Adjacent parcels" in client.get(f"/parcels/{pid}?lang=en").text
    assert client.get("/parcels/99999999").status_code == 404
    assert "99999999" in client.get("/parcels/99999999").text
    # Every asset comes from this server.
    for text in (page, r.text):
        assert not re.search(r'(src|href)="(https?:)?//', text)
    anon = client.get("/parcels?owner=nguyen")
    assert anon.status_code == 401 and "Basic" in anon.headers.get("WWW-Authenticate", "")


def test_pages_sign_in_with_basic_and_no_open_redirect(client, conn, role_keys) -> None:
    name, PASSWORD = role_keys["land_officer"]["user"], role_keys["land_officer"]["password"]
    r = client.get("/parcels/sign-in?next=/parcels/1", auth=(name, PASSWORD), follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/parcels/1"
    for bad in ("//evil.example/x", "https://evil.example/", "javascript:alert(1)"):
        r = client.get("/parcels/sign-in", params={"next": bad}, auth=(name, PASSWORD),
                       follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/parcels", bad
    r = client.get("/parcels/sign-in", follow_redirects=False)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Basic")
    page = client.get("/parcels?owner=nguyen&limit=5", auth=(name, PASSWORD))
    assert page.status_code == 200 and name in page.text and 'id="results"' in page.text


def test_cli_check_lists_the_planted_anomalies(conn) -> None:
    from typer.testing import CliRunner

    from gis.cli import app

    (planted,) = conn.execute("SELECT planted FROM sample_info").fetchone()
    commune = planted["zoning_conflicts"][0][0]
    result = CliRunner().invoke(app, ["parcels", "check", "--commune", commune, "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert {(c["key"][2], c["key"][3]) for c in out["zoning_conflicts"]} == \
        {(k[2], k[3]) for k in planted["zoning_conflicts"] if k[0] == commune}
    assert {(a["sheet_no"], a["parcel_no"]) for a in out["area_discrepancies"]} == \
        {(k[2], k[3]) for k in planted["area_discrepancies"] if k[0] == commune}
