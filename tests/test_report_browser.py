"""The citizens' pages in a real Chromium (issue 15): a citizen on a desktop (1366x768) and on a
phone (390x844), in Vietnamese and in English, whose browser's own language and time zone are
the other ones, reports a flood with a photo: chooses the category, places the pin (a click on
the map on the desktop, the device's location on the phone), answers the category's question,
attaches photos (one of them not an image), sends; sees the server's refusals beside their
fields in the page's language; fixes them, sends again, gets a tracking code; opens the
tracking page and sees the status and the history in Vietnam time. Nothing leaves the server."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from chromium import TIMEOUT, Watch
from playwright.sync_api import BrowserContext, Page
from test_language_browser import BROWSER_LOCALE, BROWSER_TZ, VIEWPORTS, assert_language
from test_report_photos import phone_jpeg

pytestmark = pytest.mark.slow  # a real Chromium

VN = ZoneInfo("Asia/Ho_Chi_Minh")
WORDS = {
    "vi": {"required": "bắt buộc", "not_image": "không phải ảnh JPEG, PNG hoặc WebP",
           "received": "Mới tiếp nhận", "citizen": "Người dân", "submit": "Gửi phản ánh"},
    "en": {"required": "required", "not_image": "not a JPEG, PNG or WebP image",
           "received": "Received", "citizen": "Citizen", "submit": "Send report"},
}


@pytest.fixture(scope="module")
def spot(conn) -> tuple[float, float]:
    """A point well inside a commune of the province (lat, lon)."""
    row = conn.execute("SELECT ST_Y(p), ST_X(p) FROM (SELECT ST_PointOnSurface(geom) AS p"
                       " FROM admin_units WHERE level = 'commune' AND valid_to IS NULL"
                       " ORDER BY code OFFSET 5 LIMIT 1) q").fetchone()
    return float(row[0]), float(row[1])


@pytest.fixture(params=[(v, lang) for v in VIEWPORTS for lang in ("vi", "en")],
                ids=lambda p: f"{p[0]}-{p[1]}")
def setting(request, browser, spot) -> Iterator[tuple[BrowserContext, str, str]]:
    viewport, lang = request.param
    ctx = browser.new_context(**VIEWPORTS[viewport], locale=BROWSER_LOCALE[lang],
                              timezone_id=BROWSER_TZ, permissions=["geolocation"],
                              geolocation={"latitude": spot[0], "longitude": spot[1]})
    yield ctx, lang, viewport
    ctx.close()


def _place_pin(page: Page, viewport: str, spot: tuple[float, float]) -> None:
    if viewport == "phone":
        page.click("#use-location")
    else:
        page.evaluate(f"void GeoIOCReport.map.setView([{spot[0]}, {spot[1]}], 16, {{animate: false}})")
        box = page.locator("#report-map").bounding_box()
        assert box is not None
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_selector("#report-map .leaflet-marker-icon", timeout=TIMEOUT)


def test_citizen_reports_with_a_photo_and_tracks_it(setting, live_server, conn, spot) -> None:
    ctx, lang, viewport = setting
    w = WORDS[lang]
    page = ctx.new_page()
    watch = Watch(page, live_server)
    page.goto(f"{live_server}/report?lang={lang}")
    page.wait_for_selector("#report-map .leaflet-tile-container, #report-map canvas",
                           state="attached", timeout=TIMEOUT)
    assert_language(page, lang, "report form")
    assert page.inner_text("#report-submit") == w["submit"]

    page.select_option("#service_code", "flooding")
    page.wait_for_selector("#attr-depth_cm", timeout=TIMEOUT)
    _place_pin(page, viewport, spot)
    lat, lon = float(page.input_value("#lat")), float(page.input_value("#long"))
    assert abs(lat - spot[0]) < 0.001 and abs(lon - spot[1]) < 0.001
    page.fill("#description", "Nước ngập sâu trước chợ sau mưa lớn")
    page.set_input_files("#media", files=[
        {"name": "anh-ngap.jpg", "mimeType": "image/jpeg", "buffer": phone_jpeg(1024, 768)},
        {"name": "tep-hong.jpg", "mimeType": "image/jpeg", "buffer": b"day khong phai anh"}])
    page.wait_for_selector("#previews figure:nth-child(2) img", timeout=TIMEOUT)
    page.fill("#first_name", "Lê Thị Hoa")
    page.fill("#phone", "0987 654 321")

    # The depth (required by this category) is missing and the second file is no image: the
    # server refuses both, each shown beside its field in the page's language.
    before = conn.execute("SELECT count(*) FROM incidents").fetchone()[0]
    page.click("#report-submit")
    page.wait_for_selector('[data-error-for="media"].rp-shown', timeout=TIMEOUT)
    media_error = page.inner_text('[data-error-for="media"]')
    assert w["not_image"] in media_error and "2" in media_error, media_error
    assert w["required"] in page.inner_text('[data-error-for="attribute[depth_cm]"]')
    assert page.is_visible("#report-errors")
    assert_language(page, lang, "report form with errors")
    assert conn.execute("SELECT count(*) FROM incidents").fetchone()[0] == before

    # Fixed: the bad file removed, the depth given.
    page.click("#previews figure:nth-child(2) .rp-remove")
    assert page.locator("#previews figure").count() == 1
    page.fill("#attr-depth_cm", "40")
    page.click("#report-submit")
    page.wait_for_selector("#report-done:not([hidden])", timeout=TIMEOUT)
    code = page.inner_text("#report-code").strip()
    assert code
    assert_language(page, lang, "report sent")
    row = conn.execute(
        "SELECT i.id, i.reported_at, i.service_code, p.first_name, p.phone,"
        " (SELECT count(*) FROM report_photos f WHERE f.incident_id = i.id),"
        " (SELECT f.jpeg FROM report_photos f WHERE f.incident_id = i.id)"
        " FROM incident_requests r JOIN incidents i ON i.id = r.incident_id"
        " LEFT JOIN incident_reporters p ON p.incident_id = i.id WHERE r.token = %s",
        (code,)).fetchone()
    assert row is not None
    incident_id, reported_at, service, name, phone, n_photos, jpeg = row
    try:
        assert (service, name, phone, n_photos) == ("flooding", "Lê Thị Hoa", "0987 654 321", 1)
        assert b"Exif" not in bytes(jpeg)

        # The tracking page: status, and the history in Vietnam time (not the browser's zone).
        page.click("#report-track-link")
        page.wait_for_selector("#track-status", timeout=TIMEOUT)
        assert page.url.endswith(f"/report/track/{code}" + ("?lang=en" if lang == "en" else ""))
        assert page.inner_text("#track-status") == w["received"]
        first = page.locator("#track-history tbody tr").first.inner_text()
        local = reported_at.astimezone(VN).strftime("%d/%m/%Y %H:%M")
        assert local in first and w["received"] in first and w["citizen"] in first, first
        assert local in page.inner_text("#track-reported")
        assert page.locator("#track-photos img").count() == 1
        assert "Lê Thị Hoa" not in page.content() and "0987" not in page.content()
        assert_language(page, lang, "tracking page")
        page.wait_for_function("document.querySelector('#track-photos img').naturalWidth > 0",
                               timeout=TIMEOUT)
    finally:
        conn.execute("DELETE FROM incidents WHERE id = %s", (incident_id,))
    # The one refusal was meant (422 of the first submit); nothing else failed or left.
    watch.errors = [e for e in watch.errors if "/api/reports" not in e and "422" not in e]
    watch.assert_clean()


def test_tracking_by_code_form(browser, live_server, conn) -> None:
    """The code form leads to the tracking page; an unknown code says so, in Vietnamese."""
    (token,) = conn.execute("SELECT r.token FROM incident_requests r JOIN incidents i"
                            " ON i.id = r.incident_id WHERE i.duplicate_of IS NOT NULL"
                            " ORDER BY i.id LIMIT 1").fetchone()
    ctx = browser.new_context(**VIEWPORTS["phone"], locale="en-US", timezone_id=BROWSER_TZ)
    page = ctx.new_page()
    page.goto(f"{live_server}/report/track")
    page.fill("#code", token)
    page.click("#track-form button[type=submit]")
    page.wait_for_selector("#track-status", timeout=TIMEOUT)
    assert page.is_visible("#track-duplicate")  # a duplicate shows its original's status
    assert page.inner_text("#track-original-status") == page.inner_text("#track-status")
    assert_language(page, "vi", "tracking a duplicate")
    page.fill("#code", "khongcoma")
    page.click("#track-form button[type=submit]")
    page.wait_for_selector("#track-error", timeout=TIMEOUT)
    assert "Không tìm thấy" in page.inner_text("#track-error")
    assert_language(page, "vi", "unknown code")
    ctx.close()


REOPEN = {
    "vi": {"assigned": "Đã phân công", "reopened": "Mở lại phản ánh", "citizen": "Người dân",
           "button": "Mở lại phản ánh", "done": "Đã mở lại phản ánh",
           "expired": "Không mở lại được phản ánh: không thể mở lại: phản ánh đã được xử lý"
                      " hơn 7 ngày"},
    "en": {"assigned": "Assigned", "reopened": "Reopened", "citizen": "Citizen",
           "button": "Reopen", "done": "The report was reopened",
           # In English the detail as raised (api/messages.detail).
           "expired": "The report could not be reopened: cannot move an incident from resolved"
                      " to assigned: resolved more than 7 days ago"},
}


def _resolved_report(conn, spot: tuple[float, float], east: float, answer: str) -> Any:
    """A pothole report near SPOT (EAST degrees apart: not a duplicate of another), verified
    (routed to an agency) and resolved with ANSWER."""
    from gis.reports import intake, workflow

    created = intake.create(conn, intake.NewReport(
        service_code="pothole", lat=repr(spot[0] + 0.002), lon=repr(spot[1] + east),
        description="Ổ gà sâu giữa đường làng"), province_srid=9209)
    assert created.duplicate_of is None
    workflow.transition(conn, created.id, "verified", actor="dieuhanh01")
    workflow.transition(conn, created.id, "resolved", actor="dieuhanh01", note=answer)
    return created


@pytest.mark.parametrize("lang,viewport", [("vi", "phone"), ("en", "desktop")])
def test_citizen_reopens_a_resolved_report(browser, live_server, conn, spot, lang: str,
                                           viewport: str) -> None:
    """The tracking page of a resolved report offers the reopen button, with the window's end
    in Vietnam time; reopening with a note moves the report back to its agency (in the
    database) and the page shows the new status and history; once the window has passed the
    server's 409 is shown in the page's language and nothing moves."""
    w = REOPEN[lang]
    suffix = "?lang=en" if lang == "en" else ""
    ok = _resolved_report(conn, spot, 0.0, "Đã vá ổ gà")
    late = _resolved_report(conn, spot, 0.003, "Đã vá ổ gà")
    ctx = browser.new_context(**VIEWPORTS[viewport], locale=BROWSER_LOCALE[lang],
                              timezone_id=BROWSER_TZ)
    page = ctx.new_page()
    watch = Watch(page, live_server)
    try:
        page.goto(f"{live_server}/report/track/{ok.token}{suffix}")
        page.wait_for_selector("#track-reopen", timeout=TIMEOUT)
        resolved_at, agency = conn.execute("SELECT resolved_at, agency_code FROM incidents"
                                           " WHERE id = %s", (ok.id,)).fetchone()
        until = (resolved_at + dt.timedelta(days=7)).astimezone(VN).strftime("%d/%m/%Y %H:%M")
        assert until in page.inner_text("#track-reopen-until")
        assert page.inner_text("#reopen-submit") == w["button"]
        assert_language(page, lang, "tracking page with the reopen button")

        note = "Ổ gà lại xuất hiện sau trận mưa"
        page.fill("#reopen-note", note)
        page.click("#reopen-submit")
        page.wait_for_selector("#track-reopened:not([hidden])", timeout=TIMEOUT)
        assert w["done"] in page.inner_text("#track-reopened")
        # Stored: back to the same agency, the citizen's move with its note.
        status, now_agency = conn.execute("SELECT status, agency_code FROM incidents WHERE id = %s",
                                          (ok.id,)).fetchone()
        assert (status, now_agency) == ("assigned", agency)
        last = conn.execute("SELECT from_status, to_status, actor, note FROM incident_transitions"
                            " WHERE incident_id = %s ORDER BY at DESC, id DESC LIMIT 1",
                            (ok.id,)).fetchone()
        assert last == ("resolved", "assigned", "citizen", note)
        # Shown without a reload: the new status, the move in the history, no button any more.
        assert page.get_attribute("#track-report", "data-status") == "assigned"
        assert page.inner_text("#track-status") == w["assigned"]
        assert page.inner_text("#track-answer") == "Đã vá ổ gà"  # the agency's, not the note
        row = page.locator("#track-history tbody tr").last.inner_text()
        assert w["reopened"] in row and w["citizen"] in row and note in row, row
        assert page.locator("#track-reopen").count() == 0
        assert_language(page, lang, "tracking page after reopening")

        # The window passes while the page is open: the server refuses, the page says why.
        page.goto(f"{live_server}/report/track/{late.token}{suffix}")
        page.wait_for_selector("#track-reopen", timeout=TIMEOUT)
        conn.execute("UPDATE incidents SET resolved_at = now() - interval '8 days',"
                     " reported_at = now() - interval '9 days' WHERE id = %s", (late.id,))
        page.click("#reopen-submit")
        page.wait_for_selector("#reopen-error:not([hidden])", timeout=TIMEOUT)
        assert page.inner_text("#reopen-error") == w["expired"]
        assert page.locator("#reopen-submit").is_disabled()
        assert conn.execute("SELECT status FROM incidents WHERE id = %s",
                            (late.id,)).fetchone()[0] == "resolved"
        assert_language(page, lang, "tracking page, reopening refused")
        # Read again, the page no longer offers it.
        page.reload()
        page.wait_for_selector("#track-status", timeout=TIMEOUT)
        assert page.locator("#track-reopen").count() == 0
    finally:
        ctx.close()
        conn.execute("DELETE FROM incidents WHERE id = ANY(%s)", ([ok.id, late.id],))
    # The one refusal was meant (the 409 of the late report); nothing else failed or left.
    watch.errors = [e for e in watch.errors if "/reopen" not in e and "409" not in e]
    watch.assert_clean()


def test_map_links_to_the_report_page(browser, live_server) -> None:
    ctx = browser.new_context(**VIEWPORTS["desktop"])
    page = ctx.new_page()
    page.goto(f"{live_server}/?lang=en")
    page.wait_for_selector("#gi-report-link", timeout=TIMEOUT)
    assert page.inner_text("#gi-report-link .gi-long") == "Report a problem"
    page.click("#gi-lang")  # the map switches language in place; the link follows
    assert page.get_attribute("#gi-report-link", "href") == "/report"
    page.click("#gi-report-link")
    page.wait_for_selector("#report-form", timeout=TIMEOUT)
    assert page.get_attribute("html", "lang") == "vi"
    ctx.close()
