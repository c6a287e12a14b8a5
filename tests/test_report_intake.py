"""Citizens' reports with uploaded photos and the flood limit (issue 15), through the real app and
PostGIS: Open311's POST as multipart/form-data (field `media`) and the report page's
POST /api/reports. A photo is stored re-encoded (no EXIF GPS or device in the stored bytes) in
the same transaction as its report; a refused photo, a fourth photo or a flood stores nothing;
a sensitive report's photo is not served to anonymous callers; Open311 GET links our copy."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from test_report_photos import GPS_IFD, phone_jpeg

from api.app import create_app
from gis.settings import get_settings


def _inside(conn) -> tuple[float, float]:
    row = conn.execute("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p"
                       " FROM admin_units WHERE level = 'commune' AND valid_to IS NULL"
                       " ORDER BY code OFFSET 3 LIMIT 1) q").fetchone()
    return float(row[0]), float(row[1])


def _form(conn, **fields: str) -> dict[str, str]:
    lon, lat = _inside(conn)
    return {"service_code": "pothole", "lat": repr(lat), "long": repr(lon),
            "description": "Ổ gà trước cổng trường (kiểm thử ảnh)", **fields}


def _counts(conn) -> tuple[int, ...]:
    return conn.execute(
        "SELECT (SELECT count(*) FROM incidents), (SELECT count(*) FROM incident_requests),"
        " (SELECT count(*) FROM incident_reporters), (SELECT count(*) FROM incident_transitions),"
        " (SELECT count(*) FROM report_photos)").fetchone()


def _files(*photos: bytes, name: str = "media") -> list[tuple[str, tuple[str, bytes, str]]]:
    return [(name, (f"IMG_{i:04d}.jpg", data, "image/jpeg")) for i, data in enumerate(photos, 1)]


def _cleanup(conn, ids: list[int]) -> None:
    conn.execute("DELETE FROM incidents WHERE id = ANY(%s)", (ids,))


@pytest.fixture()
def made(conn):
    ids: list[int] = []
    yield ids
    _cleanup(conn, ids)


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_open311_multipart_photo_is_stored_reencoded_without_gps(client, conn, made, fmt) -> None:
    before = _counts(conn)
    upload = phone_jpeg(1600, 1200)
    r = client.post(f"/open311/v2/requests.{fmt}", data=_form(conn, first_name="Nguyễn Văn A"),
                    files=_files(upload, phone_jpeg(300, 200)))
    assert r.status_code == 200, r.text
    rid = int(r.json()[0]["service_request_id"]) if fmt == "json" else \
        int(r.text.split("<service_request_id>")[1].split("<")[0])
    made.append(rid)
    rows = conn.execute("SELECT position, jpeg, thumbnail, width, height, sha256 FROM report_photos"
                        " WHERE incident_id = %s ORDER BY position", (rid,)).fetchall()
    assert [row[0] for row in rows] == [1, 2]
    after = _counts(conn)
    assert after[0] == before[0] + 1 and after[4] == before[4] + 2
    jpeg, thumb = bytes(rows[0][1]), bytes(rows[0][2])
    assert jpeg != upload  # re-encoded, not the upload
    for data in (jpeg, thumb):
        image = Image.open(io.BytesIO(data))
        assert image.format == "JPEG"
        assert not image.getexif() and not image.getexif().get_ifd(GPS_IFD)
        assert b"Exif" not in data and b"PhoneMaker" not in data and b"Model X 12" not in data
    assert (rows[0][3], rows[0][4]) == Image.open(io.BytesIO(jpeg)).size == (1600, 1200)
    assert max(Image.open(io.BytesIO(thumb)).size) <= 320

    # Open311 GET links our stored copy; the link serves the stored bytes, publicly cached.
    doc = client.get(f"/open311/v2/requests/{rid}.json?extensions=true").json()[0]
    (first_id,) = conn.execute("SELECT id FROM report_photos WHERE incident_id = %s AND position = 1",
                               (rid,)).fetchone()
    assert doc["media_url"].endswith(f"/api/reports/photos/{first_id}")
    assert len(doc["extended_attributes"]["media_urls"]) == 2
    got = client.get(f"/api/reports/photos/{first_id}")
    assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg"
    assert got.content == jpeg
    assert "public" in got.headers["cache-control"] and "max-age" in got.headers["cache-control"]
    etag = got.headers["etag"]
    assert client.get(f"/api/reports/photos/{first_id}",
                      headers={"If-None-Match": etag}).status_code == 304
    small = client.get(f"/api/reports/photos/{first_id}/thumb")
    assert small.status_code == 200 and small.content == thumb


def test_media_url_alone_is_still_accepted(client, conn, made) -> None:
    r = client.post("/open311/v2/requests.json",
                    data=_form(conn, media_url="https://example.org/photo.jpg"))
    assert r.status_code == 200, r.text
    rid = int(r.json()[0]["service_request_id"])
    made.append(rid)
    doc = client.get(f"/open311/v2/requests/{rid}.json").json()[0]
    assert doc["media_url"] == "https://example.org/photo.jpg"


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_four_photos_are_refused_and_nothing_is_stored(client, conn, fmt) -> None:
    before = _counts(conn)
    r = client.post(f"/open311/v2/requests.{fmt}?lang=en", data=_form(conn),
                    files=_files(*(phone_jpeg(200, 150) for _ in range(4))))
    assert r.status_code == 400, r.text
    assert "media: at most 3 photos" in r.text
    assert _counts(conn) == before


def test_a_non_image_is_refused_and_nothing_is_stored(client, conn) -> None:
    before = _counts(conn)
    # A good photo first, then a "photo" that is a script named .jpg: the report and the good
    # photo are refused together.
    r = client.post("/open311/v2/requests.json?lang=en", data=_form(conn),
                    files=[*_files(phone_jpeg(200, 150)),
                           ("media", ("evil.jpg", b"#!/bin/sh\necho not an image\n", "image/jpeg"))])
    assert r.status_code == 400, r.text
    assert r.json() == [{"code": 400, "description": "media: not a JPEG, PNG or WebP image"}]
    assert _counts(conn) == before
    # Vietnamese by default.
    r = client.post("/open311/v2/requests.json", data=_form(conn),
                    files=[("media", ("a.png", b"GIF89a nope", "image/png"))])
    assert r.json()[0]["description"] == "media: không phải ảnh JPEG, PNG hoặc WebP"
    assert _counts(conn) == before


def test_report_page_submit_lists_every_field_in_error(client, conn) -> None:
    before = _counts(conn)
    r = client.post("/api/reports?lang=en",
                    data={"service_code": "no_such", "phone": "call me", "lat": "", "long": ""},
                    files=[("media", ("x.jpg", b"not an image", "image/jpeg"))])
    assert r.status_code == 422, r.text
    body = r.json()
    fields = {(e["field"], e.get("row")) for e in body["errors"]}
    assert {("service_code", None), ("phone", None), ("media", 1), ("lat", None)} <= fields, fields
    vi = client.post("/api/reports", data={"service_code": "no_such"}).json()
    assert any(e["reason"] == "không có lĩnh vực phản ánh mã no_such" for e in vi["errors"])
    assert _counts(conn) == before


def test_report_page_submit_stores_report_and_photo(client, conn, made) -> None:
    r = client.post("/api/reports", data=_form(conn, first_name="Trần Thị B", phone="0912 345 678"),
                    files=_files(phone_jpeg(800, 600)))
    assert r.status_code == 201, r.text
    body = r.json()
    made.append(body["id"])
    assert body["tracking_url"] == f"/report/track/{body['token']}"
    assert len(body["photos"]) == 1
    (due,) = conn.execute("SELECT expected_at FROM incidents WHERE id = %s", (body["id"],)).fetchone()
    assert due is not None and dt.datetime.fromisoformat(body["expected_at"]) == due
    track = client.get(f"/api/reports/track/{body['token']}").json()
    assert track["status"] == "received" and track["photos"][0]["url"] == body["photos"][0]
    assert track["history"][0]["to_status"] == "received"
    assert "Trần Thị B" not in str(track) and "0912" not in str(track)


def test_photo_of_a_sensitive_report_is_not_served_anonymously(client, conn, made, keys) -> None:
    r = client.post("/api/reports", data=_form(conn, service_code="illegal_construction"),
                    files=_files(phone_jpeg(400, 300)))
    assert r.status_code == 201, r.text
    body = r.json()
    made.append(body["id"])
    (pid,) = conn.execute("SELECT id FROM report_photos WHERE incident_id = %s",
                          (body["id"],)).fetchone()
    for path in (f"/api/reports/photos/{pid}", f"/api/reports/photos/{pid}/thumb"):
        anonymous = client.get(path)
        assert anonymous.status_code == 404, anonymous.text
        assert "image" not in anonymous.headers["content-type"]
    # Not linked publicly either: neither Open311 nor the tracking page names it.
    doc = client.get(f"/open311/v2/requests/{body['id']}.json?extensions=true").json()[0]
    assert doc["media_url"] is None and not doc["extended_attributes"]["media_urls"]
    assert client.get(f"/api/reports/track/{body['token']}").json()["photos"] == []
    # An operator may read the incident, and its photo, privately cached.
    seen = client.get(f"/api/reports/photos/{pid}", headers=keys["operator"])
    assert seen.status_code == 200 and seen.headers["content-type"] == "image/jpeg"
    assert "private" in seen.headers["cache-control"]
    assert client.get(f"/api/reports/photos/{pid}", headers=keys["citizen"]).status_code == 404


def test_unknown_photo_is_404(client) -> None:
    assert client.get("/api/reports/photos/987654321").status_code == 404


@pytest.fixture()
def limited() -> Any:
    """An app of its own with a flood limit of 3 reports per 10 minutes (fresh counters)."""
    settings = get_settings().model_copy(update={"report_flood_limit": 3,
                                                 "report_flood_window_seconds": 600.0})
    with TestClient(create_app(settings)) as c:
        yield c


def test_flood_is_refused_with_retry_after_and_stores_nothing(limited, conn, made) -> None:
    for _ in range(3):
        r = limited.post("/open311/v2/requests.json", data=_form(conn))
        assert r.status_code == 200, r.text
        made.append(int(r.json()[0]["service_request_id"]))
    before = _counts(conn)
    r = limited.post("/open311/v2/requests.json?lang=en", data=_form(conn),
                     files=_files(phone_jpeg(200, 150)))
    assert r.status_code == 429, r.text
    assert 1 <= int(r.headers["retry-after"]) <= 600
    assert r.json() == [{"code": 429, "description": r.json()[0]["description"]}]
    assert "too many reports" in r.json()[0]["description"]
    xml = limited.post("/open311/v2/requests.xml", data=_form(conn))
    assert xml.status_code == 429 and "<errors>" in xml.text and "Retry-After" in xml.headers
    # The report page's submit shares the same bucket: a problem document, in Vietnamese.
    page = limited.post("/api/reports", data=_form(conn))
    assert page.status_code == 429 and page.headers["retry-after"]
    assert page.json()["detail"].startswith("bạn đã gửi quá nhiều phản ánh")
    assert _counts(conn) == before
    # Other reads are not limited by it.
    assert limited.get("/open311/v2/services.json").status_code == 200


def test_a_body_too_large_is_refused_before_it_is_read(client, conn) -> None:
    from api.report_intake import MAX_BODY

    before = _counts(conn)
    big = b"\xff\xd8" + b"0" * (MAX_BODY + 10)
    r = client.post("/api/reports?lang=en", data=_form(conn), files=_files(big))
    assert r.status_code == 413, r.text
    assert r.json()["errors"][0]["field"] == "media"
    r = client.post("/open311/v2/requests.json", data=_form(conn), files=_files(big))
    assert r.status_code == 400 and r.json()[0]["description"].startswith("media: ")
    # One photo over the per-photo limit (in a body under the whole limit): refused by name.
    from gis.reports import photos

    r = client.post("/api/reports?lang=en", data=_form(conn),
                    files=_files(b"\xff\xd8" + b"0" * (photos.MAX_BYTES + 5)))
    assert r.status_code == 422, r.text
    assert r.json()["errors"] == [{"field": "media", "row": 1, "reason": "larger than 10 MB"}]
    assert _counts(conn) == before
