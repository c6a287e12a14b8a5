"""Editing parcels: only land officers; optimistic locking (of two edits of one version exactly
one gets 409); validation with 422s that say what and where; history kept by the database so
that "as of" returns the old geometry. Every parcel touched is restored afterwards."""

from __future__ import annotations

import datetime as dt
import threading

import httpx
import psycopg
import pytest
import shapely
from psycopg import sql

from gis.crs import transformer
from gis.settings import get_settings

SRID = get_settings().province_srid
COLUMNS = ("sheet_no", "parcel_no", "land_use_codes", "legal_area", "land_user", "land_user_id",
           "certificate_no", "use_until", "origin", "geom")


@pytest.fixture(scope="module")
def parcels(conn):
    """Five ordinary parcels (not planted, inside their commune, 5 stored vertices), restored
    to their original values when the module is done."""
    (planted,) = conn.execute("SELECT planted FROM sample_info").fetchone()
    bad = {(k[0], k[2], k[3]) for k in planted["area_discrepancies"] + planted["zoning_conflicts"]}
    rows = conn.execute(
        "SELECT id, commune_code, sheet_no, parcel_no FROM parcels WHERE land_use_codes = '{CLN}'"
        " AND ST_NPoints(geom) = 5 ORDER BY id LIMIT 40").fetchall()
    ids = [r[0] for r in rows if (r[1], r[2], r[3]) not in bad][:5]
    cols = sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
    select = sql.SQL("SELECT {} FROM parcels WHERE id = %s").format(cols)
    saved = {pid: conn.execute(select, (pid,)).fetchone() for pid in ids}
    yield ids
    with conn.transaction():
        conn.execute("SELECT set_config('geoioc.user', 'tests: restore', true)")
        for pid, values in saved.items():
            conn.execute(sql.SQL("UPDATE parcels SET ({}) = ROW({}) WHERE id = %s").format(
                cols, sql.SQL(", ").join(sql.Placeholder() * len(COLUMNS))), (*values, pid))


def _current(client, pid: int) -> dict:
    r = client.get(f"/api/parcels/{pid}")
    assert r.status_code == 200, r.text
    return r.json()


def _scaled(conn, pid: int, factor: float, dx: float = 0.0) -> dict:
    """The parcel scaled about its centroid (and shifted DX metres east), in VN-2000, as GeoJSON."""
    (geojson,) = conn.execute(
        "SELECT ST_AsGeoJSON(ST_Transform(ST_Translate(ST_Scale(m, ST_MakePoint(%s, %s),"
        " ST_Centroid(m)), %s, 0), 4326), 12) FROM (SELECT ST_Transform(geom, %s) AS m FROM parcels"
        " WHERE id = %s) q", (factor, factor, dx, SRID, pid)).fetchone()
    import json

    return json.loads(geojson)


# --- who may edit --------------------------------------------------------------------------------


def test_only_land_officers_edit(client, keys, parcels) -> None:
    pid = parcels[0]
    body = {"version": 1, "properties": {"certificate_no": "CS 000001"}}
    assert client.patch(f"/api/parcels/{pid}", json=body).status_code == 401
    for role in ("citizen", "operator"):
        r = client.patch(f"/api/parcels/{pid}", json=body, headers=keys[role])
        assert r.status_code == 403, r.text


def test_version_is_required_and_stale_versions_refused(client, conn, keys, parcels) -> None:
    pid = parcels[0]
    h = keys["land_officer"]
    r = client.patch(f"/api/parcels/{pid}", json={"properties": {"certificate_no": "CS 000002"}}, headers=h)
    assert r.status_code == 428 and "version" in r.json()["detail"]
    v = _current(client, pid)["version"]
    r = client.patch(f"/api/parcels/{pid}", json={"properties": {"certificate_no": "CS 000003"}},
                     headers={**h, "If-Match": f'"{v}"'})
    assert r.status_code == 200, r.text
    assert r.json()["version"] == v + 1 and r.headers["ETag"] == f'"{v + 1}"'
    # The old version again: 409 with the current one, and nothing overwritten.
    stale = {"version": v, "properties": {"certificate_no": "CS 999999"}}
    r = client.patch(f"/api/parcels/{pid}", json=stale, headers=h)
    assert r.status_code == 409 and r.json()["current_version"] == v + 1, r.text
    (cert,) = conn.execute("SELECT certificate_no FROM parcels WHERE id = %s", (pid,)).fetchone()
    assert cert == "CS 000003"
    r = client.patch(f"/api/parcels/{pid}", json={"version": v + 1, "properties": {}},
                     headers={**h, "If-Match": f'"{v}"'})
    assert r.status_code == 400  # header and body disagree


def test_two_concurrent_edits_exactly_one_409(live_server, conn, keys, parcels) -> None:
    """Two clients (two threads, the real server) send the same version at the same moment."""
    pid = parcels[1]
    h = keys["land_officer"]
    for round_ in range(5):
        v = httpx.get(f"{live_server}/api/parcels/{pid}", headers=h).json()["version"]
        barrier = threading.Barrier(2)
        results: dict[str, httpx.Response] = {}

        def send(name: str, area: float, v: int = v, barrier: threading.Barrier = barrier,
                 results: dict[str, httpx.Response] = results) -> None:
            with httpx.Client(timeout=30) as c:
                barrier.wait()
                results[name] = c.patch(f"{live_server}/api/parcels/{pid}",
                                        headers={**h, "If-Match": str(v)},
                                        json={"properties": {"legal_area": area}, "note": name})

        threads = [threading.Thread(target=send, args=(n, a)) for n, a in (("a", 1000.5 + round_),
                                                                          ("b", 2000.5 + round_))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        statuses = sorted(r.status_code for r in results.values())
        assert statuses == [200, 409], {k: r.text for k, r in results.items()}
        winner = next(k for k, r in results.items() if r.status_code == 200)
        loser = next(k for k, r in results.items() if r.status_code == 409)
        assert results[loser].json()["current_version"] == v + 1
        legal = conn.execute("SELECT legal_area, version FROM parcels WHERE id = %s", (pid,)).fetchone()
        assert float(legal[0]) == (1000.5 if winner == "a" else 2000.5) + round_ and legal[1] == v + 1


# --- history and "as of" ---------------------------------------------------------------------------


def test_as_of_returns_the_old_geometry(client, conn, keys, role_keys, parcels) -> None:
    pid = parcels[2]
    h = keys["land_officer"]
    before = _current(client, pid)
    (t_before,) = conn.execute("SELECT now()").fetchone()
    smaller = _scaled(conn, pid, 0.97)
    r = client.patch(f"/api/parcels/{pid}", headers={**h, "If-Match": str(before["version"])},
                     json={"geometry": smaller, "note": "đo đạc lại / resurvey"})
    assert r.status_code == 200, r.text
    after = r.json()["parcel"]
    assert after["version"] == before["version"] + 1
    assert after["area"]["computed_m2"] == pytest.approx(before["area"]["computed_m2"] * 0.97 ** 2, abs=0.02)
    old = client.get(f"/api/parcels/{pid}", params={"as_of": t_before.isoformat()}).json()
    assert old["geometry"] == before["geometry"] and old["version"] == before["version"]
    assert old["state"] == "superseded" and old["valid_to"] == after["updated_at"]
    now = client.get(f"/api/parcels/{pid}", params={"as_of": dt.datetime.now(dt.UTC).isoformat()}).json()
    assert now["geometry"] == after["geometry"]
    assert shapely.equals_exact(shapely.geometry.shape(now["geometry"]),
                                shapely.geometry.shape(smaller), 1e-9)
    # A date before the parcel was recorded: 404 saying so.
    r = client.get(f"/api/parcels/{pid}?as_of=2001-01-01", headers={"Accept-Language": "en"})
    assert r.status_code == 404 and "did not exist" in r.json()["detail"]
    r = client.get(f"/api/parcels/{pid}?as_of=2001-01-01")  # Vietnamese, in Vietnam time
    assert r.status_code == 404 and "chưa có tại thời điểm 01/01/2001 23:59" in r.json()["detail"]
    # History: who, why, what.
    last = after["history"][-1]
    assert last["current"] and "geometry" in last["changes"]
    anonymous_view = _current(client, pid)["history"][-1]
    assert "changed_by" not in anonymous_view  # staff names are internal
    officer_view = client.get(f"/api/parcels/{pid}", headers=h).json()["history"][-1]
    assert officer_view["changed_by"] == role_keys["land_officer"]["user"]
    assert officer_view["change_note"] == "đo đạc lại / resurvey"
    # The page offers the old version and shows it.
    page = client.get(f"/parcels/{pid}?as_of={t_before.isoformat().replace('+', '%2B')}").text
    assert 'id="as-of-note"' in page
    # The write is in the audit log, with the versions.
    target = conn.execute(
        "SELECT target FROM audit_log WHERE action = 'write' AND layer = 'parcels' AND username = %s"
        " ORDER BY id DESC LIMIT 1", (role_keys["land_officer"]["user"],)).fetchone()[0]
    assert target["id"] == pid and target["changed"] == ["geometry"]


def test_attribute_edit_and_history_diff(client, conn, keys, parcels) -> None:
    pid = parcels[3]
    h = keys["land_officer"]
    v = _current(client, pid)["version"]
    r = client.patch(f"/api/parcels/{pid}", headers={**h, "If-Match": str(v)}, json={"properties": {
        "land_use_codes": ["ont", "CLN"], "legal_area": 123.45, "land_user": "  Trần   Thị Bích ",
        "land_user_id": "027301001234", "use_until": None, "origin": "transfer"}})
    assert r.status_code == 200, r.text
    p = r.json()["parcel"]["properties"]
    assert p["land_use_codes"] == ["ONT", "CLN"] and p["legal_area"] == 123.5
    assert p["land_user"] == "Trần Thị Bích"
    changes = r.json()["parcel"]["history"][-1]["changes"]
    assert changes["land_use_codes"]["to"] == ["ONT", "CLN"] and changes["legal_area"]["to"] == 123.5
    # Warns (does not refuse) when the legal area no longer matches the geometry.
    # In the user's language (Vietnamese by default, the area with its separators).
    assert r.json()["warnings"] and r.json()["warnings"][0].startswith("diện tích pháp lý 123,5 m²")
    # Anonymous readers see the change of public fields but not of personal ones.
    anon = _current(client, pid)["history"][-1]["changes"]
    assert "land_use_codes" in anon and "land_user" not in anon and "land_user_id" not in anon
    again = client.patch(f"/api/parcels/{pid}", json={"properties": {"legal_area": 123.45}},
                         headers={**h, "If-Match": str(r.json()["version"]), "Accept-Language": "en"})
    assert again.status_code == 200, again.text
    assert again.json()["warnings"][0].startswith("legal area 123.5 m² differs from the computed area")


def test_history_is_kept_by_the_database_whoever_writes(conn, parcels) -> None:
    pid = parcels[4]
    with psycopg.connect(get_settings().database_url) as c:
        c.execute("SELECT set_config('geoioc.user', 'psql-user', true)")
        (v,) = c.execute("SELECT version FROM parcels WHERE id = %s", (pid,)).fetchone()
        c.execute("UPDATE parcels SET certificate_no = 'CH 123456' WHERE id = %s", (pid,))
        row = c.execute("SELECT version, changed_by, operation FROM parcel_history WHERE parcel_id = %s"
                        " ORDER BY history_id DESC LIMIT 1", (pid,)).fetchone()
        assert row == (v, "psql-user", "UPDATE")
        assert c.execute("SELECT version FROM parcels WHERE id = %s", (pid,)).fetchone()[0] == v + 1
        c.execute("DELETE FROM parcels WHERE id = %s", (pid,))
        assert c.execute("SELECT operation FROM parcel_history WHERE parcel_id = %s"
                         " ORDER BY history_id DESC LIMIT 1", (pid,)).fetchone()[0] == "DELETE"
        c.rollback()
        # The application's role may read the history but not write it.
        if c.execute("SELECT pg_has_role(current_user, 'geoioc_app', 'MEMBER')").fetchone()[0]:
            c.execute("SET ROLE geoioc_app")
            c.execute("SELECT count(*) FROM parcel_history").fetchone()
            for stmt in ("INSERT INTO parcel_history (parcel_id) VALUES (1)", "DELETE FROM parcel_history",
                         "UPDATE parcel_history SET changed_by = 'x'"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    c.execute(stmt)
                c.rollback()
                c.execute("SET ROLE geoioc_app")


# --- validation --------------------------------------------------------------------------------


def _patch(client, keys, pid: int, body: dict, lang: str = "vi") -> httpx.Response:
    v = _current(client, pid)["version"]
    return client.patch(f"/api/parcels/{pid}", json={"version": v, **body},
                        headers={**keys["land_officer"], "Accept-Language": lang})


def test_invalid_geometry_is_422_with_reason_and_coordinate(client, conn, keys, parcels) -> None:
    pid = parcels[0]
    ring = _scaled(conn, pid, 0.9)["coordinates"][0][0]
    a, b, c, d = ring[:4]
    bow = [a, c, b, d, a]  # crossing edges a-c and b-d
    r = _patch(client, keys, pid, {"geometry": {"type": "Polygon", "coordinates": [bow]}}, "en")
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["code"] == "InvalidGeometry" and "Self-intersection" in body["detail"]
    vi = _patch(client, keys, pid, {"geometry": {"type": "Polygon", "coordinates": [bow]}}).json()
    assert vi["detail"].startswith("geometry: hình thể không hợp lệ: tự cắt nhau tại kinh độ ")
    loc = body["problems"][0]["location"]
    # The crossing is where a-c meets b-d.
    cross = shapely.LineString([a, c]).intersection(shapely.LineString([b, d]))
    assert abs(loc["lon"] - cross.x) < 1e-6 and abs(loc["lat"] - cross.y) < 1e-6
    e, n = transformer(4326, SRID).transform(loc["lon"], loc["lat"])
    assert abs(loc["x_northing"] - n) < 0.01 and abs(loc["y_easting"] - e) < 0.01
    assert f"X = {loc['x_northing']:.3f}" in body["detail"]


@pytest.mark.parametrize("geometry, words", [
    ({"type": "Point", "coordinates": [106, 21]}, "Point"),
    ({"type": "Polygon", "coordinates": [[[106, 21], [106.001, 21], [106.001, 21.001]]]}, "positions"),
    ({"type": "Polygon", "coordinates": [[[106, 21], [106.001, 21], [106.001, 21.001], [106, 21.001]]]},
     "not closed"),
    ({"type": "Polygon", "coordinates": [[[106, 21], [106.001, "x"], [106.001, 21.001], [106, 21]]]},
     "non-numeric"),
    ({"type": "Polygon", "coordinates": [[[560000, 2339000], [560010, 2339000], [560010, 2339010],
                                          [560000, 2339000]]]}, "longitude"),
    ({"type": "Polygon", "coordinates": [[[106, 21], [106.001, 21], [106.002, 21], [106, 21]]]},
     "Self-intersection"),
])
def test_malformed_geometry_is_422(client, keys, parcels, geometry, words) -> None:
    r = _patch(client, keys, parcels[0], {"geometry": geometry}, "en")
    assert r.status_code == 422, r.text
    assert words in r.json()["detail"], r.text


def test_overlap_with_a_neighbour_is_422_naming_it(client, conn, keys, parcels) -> None:
    pid = parcels[0]
    neighbours = _current(client, pid)["neighbours"]
    assert neighbours
    r = _patch(client, keys, pid, {"geometry": _scaled(conn, pid, 1.25)}, "en")
    assert r.status_code == 422, r.text
    body = r.json()
    vi = _patch(client, keys, pid, {"geometry": _scaled(conn, pid, 1.25)}).json()
    assert all(e["reason"].startswith("chồng lấn thửa ") for e in vi["errors"]), vi
    overlaps = [p for p in body["problems"] if p["reason"] == "overlap"]
    assert overlaps and all(p["area_m2"] > 0.5 for p in overlaps)
    named = {p["neighbour"]["id"] for p in overlaps}
    assert named & {n["id"] for n in neighbours}
    first = overlaps[0]["neighbour"]
    assert f"sheet {first['sheet_no']} parcel {first['parcel_no']}" in body["detail"]
    # A sliver below the tolerance is accepted: 1.0005 grows the parcel by < 0.5 m².
    area = _current(client, pid)["area"]["computed_m2"]
    if area * (1.0005 ** 2 - 1) < 0.4:
        assert _patch(client, keys, pid, {"geometry": _scaled(conn, pid, 1.0005)}).status_code == 200


def test_outside_commune_is_422(client, conn, keys, parcels) -> None:
    pid = parcels[0]
    r = _patch(client, keys, pid, {"geometry": _scaled(conn, pid, 1.0, dx=80_000)}, "en")
    assert r.status_code == 422, r.text
    assert any(p["reason"] == "outside commune" for p in r.json()["problems"])
    assert "outside current commune" in r.json()["detail"]
    vi = _patch(client, keys, pid, {"geometry": _scaled(conn, pid, 1.0, dx=80_000)}).json()
    assert "nằm ngoài xã/phường" in vi["detail"] and "hiện hành" in vi["detail"], vi


def test_vn2000_geometry_accepted(client, conn, keys, parcels) -> None:
    pid = parcels[0]
    (geojson,) = conn.execute(
        "SELECT ST_AsGeoJSON(ST_Scale(m, ST_MakePoint(0.99, 0.99), ST_Centroid(m)), 4) FROM"
        " (SELECT ST_Transform(geom, %s) m FROM parcels WHERE id = %s) q", (SRID, pid)).fetchone()
    import json

    r = _patch(client, keys, pid, {"geometry": json.loads(geojson), "crs": f"EPSG:{SRID}"})
    assert r.status_code == 200, r.text
    assert r.json()["parcel"]["area"]["computed_m2"] == pytest.approx(
        shapely.geometry.shape(json.loads(geojson)).area, abs=0.01)


@pytest.mark.parametrize("properties, status, words", [
    ({"land_use_codes": ["BHK"]}, 422, "retired"),
    ({"land_use_codes": ["XYZ"]}, 422, "unknown"),
    ({"land_use_codes": []}, 422, "1 to 4"),
    ({"land_use_codes": ["ONT", "ONT"]}, 422, "repeated"),
    ({"legal_area": -5}, 422, "legal_area"),
    ({"legal_area": "big"}, 422, "legal_area"),
    ({"land_user_id": "12345"}, 422, "CCCD"),
    ({"origin": "stolen"}, 422, "origin"),
    ({"use_until": "31/12/2050"}, 422, "use_until"),
    ({"commune_code": "09999"}, 422, "cannot be edited"),
    ({"version": 7}, 422, "cannot be edited"),
    ({"colour": "red"}, 422, "unknown field"),
    ({"sheet_no": 0}, 422, "sheet_no"),
])
def test_bad_attribute_values_are_422(client, keys, parcels, properties, status, words) -> None:
    r = _patch(client, keys, parcels[0], {"properties": properties}, lang="en")
    assert r.status_code == status, r.text
    assert words in r.json()["detail"], r.text


def test_every_bad_attribute_is_listed_at_once_in_the_users_language(client, keys, parcels) -> None:
    """One 422 names every field in error with its reason: in Vietnamese by default, in English
    on request, the same fields either way."""
    bad = {"legal_area": -5, "land_user_id": "12345", "land_use_codes": ["XYZ"], "origin": "stolen",
           "use_until": "31/12/2050", "commune_code": "09999", "colour": "red", "sheet_no": 0}
    vi = _patch(client, keys, parcels[0], {"properties": bad})
    en = _patch(client, keys, parcels[0], {"properties": bad}, lang="en")
    assert vi.status_code == en.status_code == 422, vi.text
    for body in (vi.json(), en.json()):
        assert [e["field"] for e in body["errors"]] == list(bad), body
        assert all(e["reason"] for e in body["errors"]) and all(f in body["detail"] for f in bad)
    reasons = {e["field"]: e["reason"] for e in vi.json()["errors"]}
    assert reasons["legal_area"] == "phải là diện tích dương tính bằng m²"
    assert reasons["land_user_id"] == "phải là số CCCD 12 chữ số hoặc số CMND 9 chữ số"
    assert reasons["land_use_codes"] == "mã loại đất không tồn tại: XYZ"
    assert reasons["sheet_no"] == "phải là số nguyên từ 1 đến 9.999"
    assert reasons["colour"].startswith("không có trường này")
    english = {e["field"]: e["reason"] for e in en.json()["errors"]}
    assert english["legal_area"] == "expected a positive area in m², got -5"
    assert english["sheet_no"].startswith("expected a whole number from 1 to 9999")
    assert "positive area" not in vi.text and "phải là" not in en.text


def test_renumbering_onto_an_existing_key_is_422(client, conn, keys, parcels) -> None:
    pid = parcels[0]
    other = conn.execute(
        "SELECT b.id, b.sheet_no, b.parcel_no FROM parcels a JOIN parcels b"
        " ON b.commune_code = a.commune_code"
        " AND b.old_commune_code IS NOT DISTINCT FROM a.old_commune_code AND b.id <> a.id WHERE a.id = %s"
        " LIMIT 1", (pid,)).fetchone()
    r = _patch(client, keys, pid, {"properties": {"sheet_no": other[1], "parcel_no": other[2]}})
    assert r.status_code == 422 and str(other[0]) in r.json()["detail"], r.text


def test_bad_requests(client, keys, parcels) -> None:
    h = keys["land_officer"]
    r = client.patch("/api/parcels/99999999", json={"version": 1, "properties": {"origin": "lease"}},
                     headers=h)
    assert r.status_code == 404 and "99999999" in r.json()["detail"]
    r = client.patch(f"/api/parcels/{parcels[0]}", content=b"{",
                     headers={**h, "Content-Type": "application/json"})
    assert r.status_code == 400
    r = client.patch(f"/api/parcels/{parcels[0]}", json={"version": 1}, headers=h)
    assert r.status_code == 422 and "không có gì để thay đổi" in r.json()["detail"]
    r = client.patch(f"/api/parcels/{parcels[0]}", json={"version": "one", "properties": {}}, headers=h)
    assert r.status_code == 422
    r = client.patch(f"/api/parcels/{parcels[0]}", json={"version": 1, "bogus": 1}, headers=h)
    assert r.status_code == 422 and "bogus" in r.json()["detail"]
    r = client.patch(f"/api/parcels/{parcels[0]}", json={"properties": {"origin": "lease"}},
                     headers={**h, "If-Match": "abc"})
    assert r.status_code == 400
