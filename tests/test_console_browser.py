"""The operator console in real Chromium: an operator signs in on the map, opens the console, sees
the open reports by deadline (overdue flagged), a report POSTed through Open311 meanwhile appears
without a reload (server-sent events fed by PostgreSQL NOTIFY), and moving one report with a note
shows the move in its timeline; in Vietnamese (no English words) and English, at 1366×768 and on
a phone.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from chromium import TIMEOUT, Watch, idle_mark, set_view, sign_in, wait_idle
from playwright.sync_api import Browser, Page, expect
from test_language_browser import ENGLISH, VIETNAMESE_MARKERS, readable

from gis.reports.queries import OPEN_STATUSES

pytestmark = pytest.mark.slow
TITLE = "Kiểm thử bàn điều hành trên bản đồ"
DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def operator(conn) -> Iterator[str]:
    """An operator whose user name holds no English word (it is shown in the timeline)."""
    from conftest import PASSWORD

    from gis.auth import users

    name = "dieuhanh" + uuid.uuid4().hex[:6]
    users.add_user(conn, name, PASSWORD, roles=["operator"])
    yield name
    conn.execute("DELETE FROM users WHERE username = %s", (name,))


@pytest.fixture(scope="module")
def place(conn) -> Iterator[tuple[float, float]]:
    lon, lat = conn.execute(
        "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM admin_units"
        " WHERE level = 'commune' AND valid_to IS NULL ORDER BY code OFFSET 3 LIMIT 1) q").fetchone()
    # An overdue report at the head of the queue (the earliest deadline of all).
    conn.execute(
        "INSERT INTO incidents (category, severity, status, source, title, description,"
        " commune_code, reported_at, geom, service_code, expected_at, updated_at)"
        " SELECT s.incident_category, 2, 'received', 'citizen_app', %s, %s, NULL,"
        " now() - interval '400 days', ST_SetSRID(ST_MakePoint(%s, %s), 4326), s.code,"
        " now() - interval '399 days', now() FROM service_categories s WHERE s.code = 'pothole'",
        (TITLE, TITLE, lon, lat))
    yield float(lon), float(lat)
    conn.execute("DELETE FROM incidents WHERE title = %s OR description LIKE %s",
                 (TITLE, TITLE + "%"))


def _open_console(browser: Browser, base: str, user: str, lang: str,
                  viewport: dict[str, int]) -> tuple[Any, Page, Watch]:
    ctx = browser.new_context(viewport=viewport, locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh")
    page = ctx.new_page()
    watch = Watch(page, base)
    page.goto(f"{base}/?lang={lang}")
    page.wait_for_selector("body[data-rendered=true]", state="attached", timeout=TIMEOUT)
    sign_in(page, user)
    page.click("#gi-console-open")
    page.wait_for_selector("body[data-console-live='1']", state="attached", timeout=TIMEOUT)
    page.wait_for_selector("#gi-console-list .gi-q-item", timeout=TIMEOUT)
    return ctx, page, watch


def _queue_ids(page: Page) -> list[int]:
    return [int(x) for x in page.eval_on_selector_all(
        "#gi-console-list .gi-q-item", "els => els.map(e => e.dataset.report)")]


def _post_report(base: str, lon: float, lat: float, words: str) -> int:
    r = httpx.post(f"{base}/open311/v2/requests.json", timeout=10, data={
        "service_code": "pothole", "lat": repr(lat + 0.0005), "long": repr(lon + 0.0005),
        "description": f"{TITLE} {words}"})
    assert r.status_code == 200, r.text
    return int(r.json()[0]["service_request_id"])


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_operator_console_live_queue_and_a_move_with_a_note(
        browser, live_server, conn, operator, place, lang: str) -> None:
    lon, lat = place
    ctx, page, watch = _open_console(browser, live_server, operator, lang, DESKTOP)
    try:
        # The queue is the open reports by deadline, as the database orders them.
        expected = [r[0] for r in conn.execute(
            "SELECT id FROM incidents WHERE status = ANY(%s) AND category <> 'security_event'"
            " ORDER BY expected_at NULLS LAST, id LIMIT 200", (list(OPEN_STATUSES),))]
        assert _queue_ids(page) == expected
        head = page.locator("#gi-console-list .gi-q-item").first
        assert "gi-overdue" in (head.get_attribute("class") or "")
        due = conn.execute("SELECT expected_at FROM incidents WHERE id = %s",
                           (expected[0],)).fetchone()[0]
        vn = due.astimezone(dt.timezone(dt.timedelta(hours=7))).strftime("%d/%m/%Y %H:%M")
        assert vn in head.inner_text()
        assert ("quá hạn 399 ngày" if lang == "vi" else "overdue by 399 d") in head.inner_text()

        # A report made by someone else arrives without a reload.
        rid = _post_report(live_server, lon, lat, "mới " + lang)
        row = page.locator(f'#gi-console-list [data-report="{rid}"]')
        row.wait_for(timeout=TIMEOUT)
        notice = "Có phản ánh mới" if lang == "vi" else "New report"
        assert notice in page.inner_text("#gi-console-notice")

        # Open it: the map flies there, the detail shows its timeline; move it with a note.
        row.locator("[data-open]").click()
        page.wait_for_selector(f'#gi-report-actions[data-report="{rid}"]', timeout=TIMEOUT)
        timeline = page.locator("#gi-details .gi-timeline")
        assert ("Tiếp nhận phản ánh" if lang == "vi" else "Report received") in timeline.inner_text()
        note = f"Đã kiểm tra hiện trường {lang}"
        page.fill("#gi-move-note", note)
        page.click('#gi-report-actions [data-move="verified"]')
        page.wait_for_selector(f'#gi-details .gi-tl-note:text("{note}")', timeout=TIMEOUT)
        stored = conn.execute("SELECT to_status, note, actor FROM incident_transitions"
                              " WHERE incident_id = %s AND kind = 'status' AND from_status = 'received'",
                              (rid,)).fetchone()
        assert stored == ("verified", note, operator)
        words = timeline.inner_text()
        assert ("Mới tiếp nhận → Đã xác minh" if lang == "vi" else "Received → Verified") in words
        center = page.evaluate("(() => { const c = GeoIOC.state.map.getCenter(); return [c.lat, c.lng]; })()")
        assert abs(center[0] - (lat + 0.0005)) < 0.01 and abs(center[1] - (lon + 0.0005)) < 0.01

        text = readable(page)
        if lang == "vi":
            found = sorted({m.group(0) for m in ENGLISH.finditer(text)})
            assert not found, f"English on the Vietnamese console: {found}"
        else:
            found = sorted(w for w in VIETNAMESE_MARKERS if w in text)
            assert not found, f"Vietnamese on the English console: {found}"
        watch.assert_clean()
    finally:
        ctx.close()


def test_console_on_a_phone(browser, live_server, conn, operator, place) -> None:
    ctx, page, watch = _open_console(browser, live_server, operator, "vi", PHONE)
    try:
        box = page.locator("#gi-console").bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
        first = page.locator("#gi-console-list .gi-q-item [data-open]").first
        first.click()
        page.wait_for_selector("#gi-report-actions", timeout=TIMEOUT)
        assert page.locator("#gi-details").is_visible()
        # The report covers the lower half; closed, the filters and bulk tools are back.
        page.click("#gi-details-close")
        # Bulk: select two, and the bulk buttons come alive.
        checks = page.locator("#gi-console-list .gi-q-check")
        checks.nth(0).check()
        checks.nth(1).check()
        assert "2" in page.inner_text("#gi-bulk-n")
        assert page.locator('#gi-bulk [data-bulk="move"]').is_enabled()
        watch.assert_clean()
    finally:
        ctx.close()


def test_incident_detail_on_the_map_shows_the_timeline(browser, live_server, client, conn, keys,
                                                       operator, place) -> None:
    """The map's incident detail (not only the console) shows the stored moves with notes."""
    lon, lat = place
    rid = _post_report(live_server, lon - 0.004, lat - 0.004, "dòng thời gian")
    note = "Chuyển đơn vị giao thông kiểm tra"
    r = client.post(f"/api/incidents/{rid}/transitions", headers=keys["operator"],
                    json={"status": "verified", "note": note})
    assert r.status_code == 200, r.text
    ctx = browser.new_context(viewport=DESKTOP, locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh")
    page = ctx.new_page()
    try:
        page.goto(f"{live_server}/?lang=vi")
        page.wait_for_selector("body[data-rendered=true]", state="attached", timeout=TIMEOUT)
        sign_in(page, operator)
        set_view(page, lat - 0.004 + 0.0005, lon - 0.004 + 0.0005, 18)
        page.click(f'[data-incident="{rid}"]')
        page.wait_for_selector("#gi-incident-timeline .gi-timeline", timeout=TIMEOUT)
        text = page.inner_text("#gi-incident-timeline")
        assert "Tiếp nhận phản ánh" in text and note in text
        assert "Mới tiếp nhận → Đã xác minh" in text
    finally:
        ctx.close()


def _post_at(base: str, lon: float, lat: float, words: str) -> int:
    r = httpx.post(f"{base}/open311/v2/requests.json", timeout=10, data={
        "service_code": "pothole", "lat": repr(lat), "long": repr(lon),
        "description": f"{TITLE} {words}"})
    assert r.status_code == 200, r.text
    return int(r.json()[0]["service_request_id"])


UNLINK = {"vi": {"button": "Không trùng lặp: bỏ liên kết", "event": "Bỏ đánh dấu trùng lặp",
                 "dup": "trùng với #"},
          "en": {"button": "Not a duplicate: unlink", "event": "Not a duplicate",
                 "dup": "duplicate of #"}}


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_operator_unlinks_a_likely_duplicate(browser, live_server, conn, operator, place,
                                             lang: str) -> None:
    """A report linked on arrival as a likely duplicate: its detail in the console offers the
    unlink; with a note it is stored (duplicate_of NULL, the unlink and its note in the
    transitions) and the detail and the queue row show the report on its own again."""
    lon, lat = place
    spot = (lon + 0.003 + (0.002 if lang == "en" else 0.0), lat - 0.003)
    first = _post_at(live_server, *spot, "gốc " + lang)
    dup = _post_at(live_server, spot[0] + 0.0001, spot[1], "trùng " + lang)
    # Its original: the first report (or what a run stopped short left open there before it).
    original = conn.execute("SELECT COALESCE(duplicate_of, id) FROM incidents WHERE id = %s",
                            (first,)).fetchone()[0]
    assert conn.execute("SELECT duplicate_of FROM incidents WHERE id = %s",
                        (dup,)).fetchone()[0] == original
    w = UNLINK[lang]
    ctx, page, watch = _open_console(browser, live_server, operator, lang, DESKTOP)
    try:
        page.fill("#gi-console-filters [name=q]", str(dup))
        row = page.locator(f'#gi-console-list [data-report="{dup}"]')
        row.wait_for(timeout=TIMEOUT)
        assert f"{w['dup']}{original}" in row.inner_text()
        row.locator("[data-open]").click()
        button = page.locator(f'#gi-report-actions [data-unlink="{original}"]')
        button.wait_for(timeout=TIMEOUT)
        assert button.inner_text() == w["button"]
        note = f"Hai ổ gà khác nhau, cách nhau vài mét {lang}"
        page.fill("#gi-move-note", note)
        button.click()
        page.wait_for_selector(f'#gi-details .gi-tl-note:text("{note}")', timeout=TIMEOUT)
        # Stored: the link gone, the operator's decision with its note.
        assert conn.execute("SELECT duplicate_of FROM incidents WHERE id = %s",
                            (dup,)).fetchone()[0] is None
        last = conn.execute("SELECT kind, actor, note FROM incident_transitions"
                            " WHERE incident_id = %s ORDER BY at DESC, id DESC LIMIT 1",
                            (dup,)).fetchone()
        assert last == ("unlink", operator, note)
        # Refreshed: no link, no button; the timeline says it; the queue row follows.
        assert page.locator("#gi-report-actions [data-unlink]").count() == 0
        assert w["event"] in page.inner_text("#gi-details .gi-timeline")
        expect(row).not_to_contain_text(f"#{original}", timeout=TIMEOUT)
        text = readable(page)
        if lang == "vi":
            found = sorted({m.group(0) for m in ENGLISH.finditer(text)})
            assert not found, f"English on the Vietnamese console: {found}"
        else:
            found = sorted(w for w in VIETNAMESE_MARKERS if w in text)
            assert not found, f"Vietnamese on the English console: {found}"
        watch.assert_clean()
    finally:
        ctx.close()


@pytest.fixture(scope="module")
def land_officer(conn) -> Iterator[str]:
    """A user of a role without the console (nor its event stream)."""
    from conftest import PASSWORD

    from gis.auth import users

    name = "canbo" + uuid.uuid4().hex[:6]
    users.add_user(conn, name, PASSWORD, roles=["land_officer"])
    yield name
    conn.execute("DELETE FROM users WHERE username = %s", (name,))


EVENTS = "/api/reports/events"


def _stream_ends_on_sign_out(page: Page) -> None:
    """Sign out with the console listening: the browser aborts the stream's request (the
    connection to the server is dropped), the console and the report it showed are closed,
    and no new request follows (the stream's retry comes after 3 s)."""
    assert page.get_attribute("body", "data-console-live") == "1"
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if EVENTS in r.url else None)
    with page.expect_event("requestfailed", predicate=lambda r: EVENTS in r.url,
                           timeout=TIMEOUT) as failed:
        page.click("#gi-signout")
    assert failed.value.failure == "net::ERR_ABORTED"
    assert page.evaluate("GeoIOC.consoleState.stream === null && !GeoIOC.consoleState.open")
    assert page.get_attribute("body", "data-console-live") is None
    assert page.locator("#gi-console").is_hidden()
    assert page.locator("#gi-report-actions").count() == 0
    page.wait_for_timeout(4000)
    assert asked == []


def test_sign_out_ends_the_event_stream(browser, live_server, operator, land_officer) -> None:
    ctx, page, watch = _open_console(browser, live_server, operator, "vi", DESKTOP)
    try:
        # A report open (the map flies there: its loads end before signing out).
        before = idle_mark(page)
        page.locator("#gi-console-list .gi-q-item [data-open]").first.click()
        page.wait_for_selector("#gi-report-actions", timeout=TIMEOUT)
        wait_idle(page, before)
        _stream_ends_on_sign_out(page)
        page.wait_for_selector("#gi-signin-open:not([hidden])", timeout=TIMEOUT)
        # A user of another role signs in on the same page: no console, no stream opened.
        asked: list[str] = []
        page.on("request", lambda r: asked.append(r.url) if EVENTS in r.url else None)
        # Each sign-out below waits until the map has loaded what the sign-in asked for: a tile
        # still on its way when the sign-out revokes its token is refused (401), a race of the
        # test's clicks, not what it checks.
        before = idle_mark(page)
        sign_in(page, land_officer)
        assert page.locator("#gi-console-open").is_hidden()
        page.wait_for_timeout(4000)
        wait_idle(page, before)
        assert asked == []
        page.click("#gi-signout")
        page.wait_for_selector("#gi-signin-open:not([hidden])", timeout=TIMEOUT)

        # Again, when the map cannot read its layers after signing out (the network is gone):
        # the stream still ends at once, not only once the anonymous map has loaded.
        before = idle_mark(page)
        sign_in(page, operator)
        page.click("#gi-console-open")
        page.wait_for_selector("body[data-console-live='1']", state="attached", timeout=TIMEOUT)
        wait_idle(page, before)
        page.route("**/api/map/layers*", lambda route: route.abort())
        _stream_ends_on_sign_out(page)
        page.unroute("**/api/map/layers*")
        # Meant: the layers refused on purpose (the console's "Failed to load resource" of it)
        # and the stream's request aborted.
        watch.errors = [e for e in watch.errors if "/api/map/layers" not in e and EVENTS not in e
                        and "net::ERR_FAILED" not in e]
        watch.assert_clean()
    finally:
        ctx.close()
