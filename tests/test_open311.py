"""Open311 GeoReport v2 at /open311/v2: the specification's example documents exchanged with our
server (tests/open311_spec/, copied from the spec), in XML and JSON; the spec's errors; bad input
that stores nothing; no reporter identity for an anonymous caller by any way out.

The spec's services (001, 002, 003, 006, DMV66) and requests (638344, 638349, token 12345) are
written into the database as the spec describes them, and what the server answers must be the
spec's document: same elements, same values (times compared as instants: the examples are in
-08:00, we answer in +07:00).
"""

from __future__ import annotations

import math
import uuid
from typing import Any
from urllib.parse import parse_qsl

import mapbox_vector_tile
import orjson
import pytest
from open311_helpers import from_json, from_xml, norm, shape, spec
from psycopg.types.json import Jsonb

SPEC_CODES = ["001", "002", "003", "006", "DMV66"]
SPEC_IDS = [638344, 638349]
CANS = "Garbage or recycling cans that have been left out for more than 24 hours after collection. " \
       "Violators will be cited."
PLATE = "Metal construction plate covering the street or sidewalk has been moved."
CURB = "Sidewalk curb or ramp has problems such as cracking, missing pieces, holes, and/or chipped curb."
ATTR = {"variable": True, "datatype": "string", "required": False, "order": 1,
        "description_vi": "x", "description_en": "x"}


def _service(code: str, name: str, description: str, group: str,
             attributes: list[dict[str, Any]]) -> dict[str, Any]:
    return {"code": code, "name_vi": name, "name_en": name, "description_vi": description,
            "description_en": description, "group_vi": group, "group_en": group,
            "keywords": ["lorem", "ipsum", "dolor"], "incident_category": "infrastructure",
            "severity": 2, "agency_code": None, "sla_hours": 24, "sensitive": False,
            "attributes": Jsonb(attributes)}


@pytest.fixture(scope="module")
def spec_data(conn):
    """The spec's services and requests in the database, removed afterwards."""
    services = [
        _service("001", "Cans left out 24x7", CANS, "sanitation",
                 [{**ATTR, "code": "WHISPAWN"}, {**ATTR, "code": "WHISDORN", "order": 2}]),
        _service("002", "Construction plate shifted", PLATE, "street", [{**ATTR, "code": "X"}]),
        _service("003", "Curb or curb ramp defect", CURB, "street", [{**ATTR, "code": "X"}]),
        _service("006", "Sidewalk and Curb Issues", "", "street", []),
        _service("DMV66", "DMV", "", "dmv", [{
            "variable": True, "code": "WHISHETN", "datatype": "singlevaluelist", "required": True,
            "order": 1, "description_vi": "What is the ticket/tag/DL number?",
            "description_en": "What is the ticket/tag/DL number?",
            "values": [{"key": "123", "name_vi": "Ford", "name_en": "Ford"},
                       {"key": "124", "name_vi": "Chrysler", "name_en": "Chrysler"}]}]),
    ]
    _cleanup(conn)
    with conn.transaction():
        for s in services:
            conn.execute(
                "INSERT INTO service_categories (code, name_vi, name_en, description_vi,"
                " description_en, group_vi, group_en, keywords, incident_category, severity,"
                " agency_code, sla_hours, sensitive, attributes) VALUES (%(code)s, %(name_vi)s,"
                " %(name_en)s, %(description_vi)s, %(description_en)s, %(group_vi)s, %(group_en)s,"
                " %(keywords)s, %(incident_category)s, %(severity)s, %(agency_code)s,"
                " %(sla_hours)s, %(sensitive)s, %(attributes)s)", s)
        for rid, status, note, requested, expected, token in (
                (638344, "closed", "Duplicate request.", "2010-04-14T06:37:38-08:00",
                 "2010-04-15T06:37:38-08:00", "12345"),
                (638349, "received", None, "2010-04-19T06:37:38-08:00",
                 "2010-04-19T06:37:38-08:00", None)):
            conn.execute(
                "INSERT INTO incidents (id, category, severity, status, source, title, reported_at,"
                " resolved_at, geom, service_code, expected_at, status_note, updated_at)"
                " OVERRIDING SYSTEM VALUE VALUES"
                " (%s, 'infrastructure', 2, %s, 'citizen_app', 'Sidewalk and Curb Issues', %s,"
                " CASE WHEN %s = 'closed' THEN %s::timestamptz END,"
                " ST_SetSRID(ST_MakePoint(-122.4651145, 37.762221815), 4326), '006', %s, %s, %s)",
                (rid, status, requested, status, requested, expected, note, requested))
            conn.execute(
                "INSERT INTO incident_requests (incident_id, token, address, address_id, zipcode,"
                " media_url) VALUES (%s, %s, '8TH AVE and JUDAH ST', '545483', '94122',"
                " 'http://city.gov.s3.amazonaws.com/requests/media/' || %s || '.jpg')",
                (rid, token or f"spec{rid}", str(rid)))
    yield
    _cleanup(conn)


def _cleanup(conn) -> None:
    with conn.transaction():
        conn.execute("DELETE FROM incidents WHERE service_code = ANY(%s) OR id = ANY(%s)",
                     (SPEC_CODES, SPEC_IDS))
        conn.execute("DELETE FROM service_categories WHERE code = ANY(%s)", (SPEC_CODES,))


def _doc(response, fmt: str) -> Any:
    assert response.headers["content-type"] == (
        "text/xml; charset=utf-8" if fmt == "xml" else "application/json; charset=utf-8"), \
        response.headers["content-type"]
    if fmt == "xml":
        assert response.content.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
        return from_xml(response.content)
    return response.json()


def _spec_doc(name: str, fmt: str) -> Any:
    return from_xml(spec(f"{name}.xml")) if fmt == "xml" else from_json(spec(f"{name}.json"))


# --- the spec's examples, both formats -----------------------------------------------------------


@pytest.mark.parametrize("fmt", ["xml", "json"])
def test_service_list_example(client, spec_data, fmt: str) -> None:
    r = client.get(f"/open311/v2/services.{fmt}?jurisdiction_id=bacninh.gov.vn&lang=en")
    assert r.status_code == 200, r.text
    ours, theirs = _doc(r, fmt), _spec_doc("services", fmt)
    if fmt == "xml":
        assert ours[0] == theirs[0] == "services"
        ours, theirs = ours[1], theirs[1]
    by_code = {s["service_code"]: s for s in ours}
    # The spec's three services, exactly; the province's own categories besides them.
    assert [norm(by_code[c]) for c in ("001", "002", "003")] == norm(theirs)
    assert {"pothole", "flooding"} <= set(by_code)


@pytest.mark.parametrize("fmt", ["xml", "json"])
def test_service_definition_example(client, spec_data, fmt: str) -> None:
    r = client.get(f"/open311/v2/services/DMV66.{fmt}?jurisdiction_id=bacninh.gov.vn")
    assert r.status_code == 200, r.text
    assert norm(_doc(r, fmt)) == norm(_spec_doc("service_definition", fmt))


@pytest.mark.parametrize("fmt", ["xml", "json"])
def test_requests_example(client, spec_data, fmt: str) -> None:
    r = client.get(f"/open311/v2/requests.{fmt}?start_date=2010-04-01T00:00:00Z"
                   "&end_date=2010-04-30T00:00:00Z&service_code=006&jurisdiction_id=bacninh.gov.vn")
    assert r.status_code == 200, r.text
    assert norm(_doc(r, fmt)) == norm(_spec_doc("requests", fmt))
    # service_request_id overrides the other arguments (here: a window that holds neither).
    r = client.get(f"/open311/v2/requests.{fmt}?service_request_id=638344,638349"
                   "&start_date=2020-01-01T00:00:00Z&status=closed")
    assert norm(_doc(r, fmt)) == norm(_spec_doc("requests", fmt))


@pytest.mark.parametrize("fmt", ["xml", "json"])
def test_request_example(client, spec_data, fmt: str) -> None:
    r = client.get(f"/open311/v2/requests/638344.{fmt}?jurisdiction_id=bacninh.gov.vn")
    assert r.status_code == 200, r.text
    assert norm(_doc(r, fmt)) == norm(_spec_doc("request", fmt))


@pytest.mark.parametrize("fmt", ["xml", "json"])
def test_token_example(client, spec_data, fmt: str) -> None:
    r = client.get(f"/open311/v2/tokens/12345.{fmt}?jurisdiction_id=bacninh.gov.vn")
    assert r.status_code == 200, r.text
    assert norm(_doc(r, fmt)) == norm(_spec_doc("token", fmt))


@pytest.mark.parametrize("fmt", ["xml", "json"])
def test_discovery_has_the_examples_shape(client, fmt: str) -> None:
    r = client.get(f"/open311/v2/discovery.{fmt}")
    assert r.status_code == 200, r.text
    ours, theirs = _doc(r, fmt), _spec_doc("discovery", fmt)
    assert shape(ours) == shape(theirs)
    endpoints = ours[1]["endpoints"] if fmt == "xml" else ours["endpoints"]
    assert endpoints[0]["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoints[0]["url"].endswith("/open311/v2")


def _spec_post_body() -> list[tuple[str, str]]:
    return parse_qsl(spec("post_request.http").split("\n\n", 1)[1].strip(), keep_blank_values=True)


def _inside(conn) -> tuple[float, float]:
    row = conn.execute("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p"
                       " FROM admin_units WHERE level = 'commune' AND valid_to IS NULL"
                       " ORDER BY code LIMIT 1) q").fetchone()
    return float(row[0]), float(row[1])


def _count(conn) -> tuple[int, int, int]:
    return conn.execute("SELECT (SELECT count(*) FROM incidents), (SELECT count(*) FROM"
                        " incident_reporters), (SELECT count(*) FROM incident_transitions)").fetchone()


@pytest.mark.parametrize("fmt", ["xml", "json"])
def test_post_request_example(client, conn, spec_data, fmt: str) -> None:
    """The spec's POST, as sent: its jurisdiction is not ours (404) and San Francisco is not in
    the province (400); with our jurisdiction and a point of the province, the same body is
    accepted and the answer has the example's shape."""
    body = _spec_post_body()
    before = _count(conn)
    r = client.post(f"/open311/v2/requests.{fmt}", data=dict(body))
    assert r.status_code == 404
    errors = _doc(r, fmt)
    assert shape(errors) == shape(from_xml(spec("errors.xml.http")) if fmt == "xml"
                                  else from_json(spec("errors.json.http")))
    no_jurisdiction = [(k, v) for k, v in body if k != "jurisdiction_id"]
    r = client.post(f"/open311/v2/requests.{fmt}", data=dict(no_jurisdiction))
    assert r.status_code == 400
    assert "lat" in str(_doc(r, fmt))
    assert _count(conn) == before

    lon, lat = _inside(conn)
    ours = [(k, {"jurisdiction_id": "bacninh.gov.vn", "lat": repr(lat), "long": repr(lon)}.get(k, v))
            for k, v in body]
    r = client.post(f"/open311/v2/requests.{fmt}", data=dict(ours))
    assert r.status_code == 200, r.text
    doc, example = _doc(r, fmt), _spec_doc("post_response", fmt)
    assert shape(doc) == shape(example)
    item = doc[1][0] if fmt == "xml" else doc[0]
    assert item["account_id"] is None
    assert item["service_notice"]
    rid = int(item["service_request_id"])
    stored = conn.execute(
        "SELECT i.service_code, i.description, q.address, q.media_url, q.attributes, r.first_name,"
        " r.last_name, r.email, r.phone, r.device_id, r.account_id, i.status, i.expected_at"
        " FROM incidents i JOIN incident_reporters r ON r.incident_id = i.id"
        " JOIN incident_requests q ON q.incident_id = i.id WHERE i.id = %s",
        (rid,)).fetchone()
    assert stored[:11] == ("001", "A large sinkhole is destroying the street", "1234 5th street",
                           "http://farm3.static.flickr.com/2002/2212426634_5ed477a060.jpg",
                           {"WHISPAWN": "123456", "WHISDORN": "COISL001"}, "john", "smith",
                           "smit333@sfgov.edu", "111111111", "tt222111", "123456")
    assert stored[11] == "received" and stored[12] is not None
    # What the citizen reads back: the request, never who sent it.
    r = client.get(f"/open311/v2/requests/{rid}.{fmt}")
    text = r.text
    for secret in ("john", "smith", "smit333", "111111111", "tt222111"):
        assert secret not in text


# --- errors and bad input: the spec's error list, nothing stored --------------------------------


def _form(conn, **fields: str) -> dict[str, str]:
    lon, lat = _inside(conn)
    return {"service_code": "pothole", "lat": repr(lat), "long": repr(lon),
            "description": "Kiểm thử", **fields}


@pytest.mark.parametrize("fmt", ["xml", "json"])
@pytest.mark.parametrize("case", ["no_location", "outside", "unknown_service", "missing_required",
                                  "bad_list_value", "lat_only", "bad_number", "no_service",
                                  "unknown_address", "bad_email"])
def test_bad_reports_store_nothing(client, conn, fmt: str, case: str) -> None:
    base = _form(conn)
    body = {
        "no_location": {k: v for k, v in base.items() if k not in ("lat", "long")},
        "outside": {**base, "lat": "10.78", "long": "106.70"},  # Ho Chi Minh City
        "unknown_service": {**base, "service_code": "no_such_service"},
        "missing_required": {**base, "service_code": "flooding"},  # depth_cm is required
        "bad_list_value": {**base, "attribute[size]": "gigantic"},
        "lat_only": {k: v for k, v in base.items() if k != "long"},
        "bad_number": {**base, "service_code": "flooding", "attribute[depth_cm]": "deep"},
        "no_service": {k: v for k, v in base.items() if k != "service_code"},
        "unknown_address": {**{k: v for k, v in base.items() if k not in ("lat", "long")},
                            "address_string": "zzqx khong co noi nay"},
        "bad_email": {**base, "email": "not-an-address"},
    }[case]
    field = {"no_location": "lat", "outside": "lat", "unknown_service": "service_code",
             "missing_required": "attribute[depth_cm]", "bad_list_value": "attribute[size]",
             "lat_only": "long", "bad_number": "attribute[depth_cm]", "no_service": "service_code",
             "unknown_address": "address_string", "bad_email": "email"}[case]
    before = _count(conn)
    r = client.post(f"/open311/v2/requests.{fmt}?lang=en", data=body)
    assert r.status_code == 400, r.text
    doc = _doc(r, fmt)
    errors = doc[1] if fmt == "xml" else doc
    assert doc[0] == "errors" if fmt == "xml" else True
    assert all(set(e) == {"code", "description"} for e in errors)
    assert all(str(e["code"]) == "400" for e in errors)
    assert any(e["description"].startswith(f"{field}:") for e in errors), errors
    assert _count(conn) == before


def test_errors_are_vietnamese_by_default(client, conn) -> None:
    r = client.post("/open311/v2/requests.json", data=_form(conn, service_code="khong_co"))
    assert r.status_code == 400
    assert r.json()[0]["description"] == "service_code: không có lĩnh vực phản ánh mã khong_co"


def test_not_found_and_bad_parameters(client) -> None:
    assert client.get("/open311/v2/services/no_such.xml").status_code == 404
    r = client.get("/open311/v2/requests/999999999999.json")
    assert r.status_code == 404 and r.json()[0]["code"] == 404
    r = client.get("/open311/v2/tokens/nothere.xml")
    assert r.status_code == 404 and b"<errors><error><code>404</code>" in r.content
    r = client.get("/open311/v2/services.json?jurisdiction_id=sfgov.org")
    assert r.status_code == 404
    r = client.get("/open311/v2/requests.json?start_date=2026-01-01T00:00:00Z"
                   "&end_date=2026-06-01T00:00:00Z")
    assert r.status_code == 400 and "90" in r.json()[0]["description"]
    r = client.get("/open311/v2/requests.json?status=pending")
    assert r.status_code == 400
    r = client.get("/open311/v2/requests.json?start_date=yesterday")
    assert r.status_code == 400 and r.json()[0]["description"].startswith("start_date")
    assert client.get("/open311/v2/services.csv").status_code == 400


def test_requests_defaults_window_status_and_service(client, conn) -> None:
    """Without dates: the last 90 days; status and service_code filter; the cap holds."""
    r = client.get("/open311/v2/requests.json")
    assert r.status_code == 200
    items = r.json()
    assert 0 < len(items) <= 1000
    ids = [i["service_request_id"] for i in items]
    expected = [row[0] for row in conn.execute(
        "SELECT id FROM incidents WHERE service_code IS NOT NULL AND category <> 'security_event'"
        " AND reported_at >= now() - interval '90 days' AND reported_at <= now()"
        " ORDER BY reported_at, id LIMIT 1000")]
    # Requests made during this test run may be newer than the query above's now(): compare
    # the ones both saw.
    assert [i for i in ids if i in set(expected)] == expected
    closed = client.get("/open311/v2/requests.json?status=closed&service_code=pothole").json()
    assert closed and all(i["status"] == "closed" and i["service_code"] == "pothole"
                          for i in closed)
    opened = client.get("/open311/v2/requests.json?status=open").json()
    assert opened and all(i["status"] == "open" for i in opened)


# --- no reporter identity to an anonymous caller, by any way out ---------------------------------


def test_no_reporter_identity_for_anonymous(client, conn, keys) -> None:
    marker = f"Bí Mật {uuid.uuid4().hex[:8]}"
    phone = "0912" + uuid.uuid4().hex[:6].translate(str.maketrans("abcdef", "123456"))
    body = _form(conn, first_name=marker, last_name=marker, phone=phone,
                 email=f"{marker.split()[-1]}@example.vn", device_id=marker)
    r = client.post("/open311/v2/requests.json", data=body)
    assert r.status_code == 200, r.text
    rid = r.json()[0]["service_request_id"]
    try:
        _no_identity_anywhere(client, conn, keys, rid, body, marker, phone)
    finally:
        conn.execute("DELETE FROM incidents WHERE id = %s", (rid,))


def _no_identity_anywhere(client, conn, keys, rid: int, body: dict[str, str], marker: str,
                          phone: str) -> None:
    token = conn.execute("SELECT token FROM incident_requests WHERE incident_id = %s",
                         (rid,)).fetchone()[0]
    lon, lat = float(body["long"]), float(body["lat"])
    secrets = (marker, marker.split()[-1], phone)
    ways = [
        f"/open311/v2/requests/{rid}.json", f"/open311/v2/requests/{rid}.xml",
        f"/open311/v2/requests/{rid}.json?extensions=true",
        f"/open311/v2/requests.json?service_request_id={rid}", "/open311/v2/requests.xml",
        f"/open311/v2/tokens/{token}.json",
        "/ogc/collections/incidents/items?limit=50", f"/ogc/collections/incidents/items/{rid}",
        f"/api/search?q={marker.split()[-1]}", f"/api/search?q={phone}",
        f"/api/incidents/{rid}/report", f"/api/incidents/{rid}/timeline",
        f"/api/map/identify?lon={lon}&lat={lat}&z=18&layers=incidents",
    ]
    for path in ways:
        r = client.get(path)
        assert r.status_code in (200, 401, 404), (path, r.status_code)
        # The search answer repeats the query it was given: look at what it found.
        text = orjson.dumps({k: v for k, v in r.json().items() if k != "query"}).decode() \
            if path.startswith("/api/search") else r.text
        for secret in secrets:
            assert secret not in text, (path, secret)
    # Vector tiles of the incidents layer: refused to anonymous, and no reporter field for staff.
    z = 16
    x = int((lon + 180) / 360 * 2**z)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * 2**z)
    r = client.get(f"/ogc/collections/incidents/tiles/WebMercatorQuad/{z}/{y}/{x}")
    assert r.status_code in (401, 404)
    r = client.get(f"/ogc/collections/incidents/tiles/WebMercatorQuad/{z}/{y}/{x}",
                   headers=keys["operator"])
    assert r.status_code in (200, 204)
    if r.status_code == 200 and r.content:
        tile = mapbox_vector_tile.decode(r.content)
        assert not any(secret in orjson.dumps(tile, default=str).decode() for secret in secrets)
    # Staff ways out carry no reporter either (it is no field of the incidents layer).
    for path in (f"/ogc/collections/incidents/items/{rid}", f"/ogc/collections/incidents/items"
                 f"?bbox={lon - 0.001},{lat - 0.001},{lon + 0.001},{lat + 0.001}"):
        r = client.get(path, headers=keys["admin"])
        assert r.status_code == 200, (path, r.status_code)
        assert str(rid) in r.text, path
        for secret in secrets:
            assert secret not in r.text, (path, secret)
    # The same report for staff: the operator reads the reporter (audited), the land officer not.
    r = client.get(f"/api/incidents/{rid}/report", headers=keys["operator"])
    assert r.status_code == 200 and r.json()["reporter"]["phone"] == phone
    audited = conn.execute("SELECT count(*) FROM audit_log WHERE target->>'channel' = 'report-api'"
                           " AND target->'ids' @> %s::jsonb", (orjson.dumps([rid]).decode(),)
                           ).fetchone()[0]
    assert audited == 1
    r = client.get(f"/api/incidents/{rid}/report", headers=keys["land_officer"])
    assert r.status_code == 200 and "reporter" not in r.json()
    assert phone not in r.text


def test_location_by_address_or_address_id(client, conn) -> None:
    """address_string is looked up like the map's search box (a commune's name without
    diacritics, a place's name, coordinates as typed); address_id is a gazetteer code."""
    code, name = conn.execute("SELECT code, name FROM admin_units WHERE level = 'commune'"
                              " AND valid_to IS NULL ORDER BY code DESC LIMIT 1").fetchone()
    from gis.parcels.common import fold

    made: list[int] = []
    try:
        for extra in ({"address_string": fold(name)}, {"address_id": code},
                      {"address_string": "x", "address_id": code}):
            body = {k: v for k, v in _form(conn).items() if k not in ("lat", "long")}
            r = client.post("/open311/v2/requests.json", data={**body, **extra})
            assert r.status_code == 200, (extra, r.text)
            made.append(r.json()[0]["service_request_id"])
            assert conn.execute("SELECT commune_code FROM incidents WHERE id = %s",
                                (made[-1],)).fetchone()[0] == code, extra
        lon, lat = _inside(conn)
        body = {k: v for k, v in _form(conn).items() if k not in ("lat", "long")}
        r = client.post("/open311/v2/requests.xml",
                        data={**body, "address_string": f"{lat:.6f}, {lon:.6f}"})
        assert r.status_code == 200, r.text
        made.append(int(from_xml(r.content)[1][0]["service_request_id"]))
        got = conn.execute("SELECT ST_X(geom), ST_Y(geom) FROM incidents WHERE id = %s",
                           (made[-1],)).fetchone()
        assert abs(got[0] - lon) < 1e-6 and abs(got[1] - lat) < 1e-6
        r = client.post("/open311/v2/requests.json", data={**body, "address_id": "99999"})
        assert r.status_code == 400 and r.json()[0]["description"].startswith("address_id:")
    finally:
        conn.execute("DELETE FROM incidents WHERE id = ANY(%s)", (made,))


def test_jurisdiction_by_province_code(client, conn) -> None:
    province = conn.execute("SELECT code FROM admin_units WHERE level = 'province'"
                            " AND valid_to IS NULL").fetchone()[0]
    assert client.get(f"/open311/v2/services.json?jurisdiction_id={province}").status_code == 200
    assert client.get("/open311/v2/services.json?jurisdiction_id=").status_code == 200


def test_control_characters_are_refused(client, conn) -> None:
    before = _count(conn)
    r = client.post("/open311/v2/requests.xml", data=_form(conn, description="a\x01b"))
    assert r.status_code == 400 and b"<description>description:" in r.content
    assert _count(conn) == before
