"""The map and the parcel pages as a Vietnamese land officer reads them, in a real Chromium whose
own settings are foreign: an American browser (locale en-US, time zone America/New_York) asking
for the Vietnamese pages, a Vietnamese one (vi-VN, same zone) asking for the English pages, at
1366x768 and on a phone (390x844).

- A Vietnamese page holds none of ENGLISH_MARKERS (text of every element - panels, legends,
  details, tables, error messages - and the title, placeholder, aria-label and alt attributes);
  an English page none of VIETNAMESE_MARKERS (the pages' own words: data stays as it is).
- Every time shown is Vietnam time, dd/mm/yyyy HH:mm, equal to the stored UTC value converted
  (and different from what the browser's own zone would show); a time window typed into the
  map's filter means Vietnam time.
- Numbers use the page language's separators, areas with the stored decimals.
- The map's subtitle, title and attribution follow a language switch.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
import uuid
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from chromium import TIMEOUT, idle_mark, open_layer_panel, sign_in, wait_idle
from playwright.sync_api import BrowserContext, Page

from gis import fmt

pytestmark = pytest.mark.slow  # a real Chromium: outside the fast inner loop

BROWSER_TZ = "America/New_York"
VIEWPORTS = {
    "desktop": {"viewport": {"width": 1366, "height": 768}},
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
}
# The browser's own language is the other one: the page's language must not come from it.
BROWSER_LOCALE = {"vi": "en-US", "en": "vi-VN"}
PASSWORD = "mật-khẩu-đủ-dài-1"

# English words that have no business on a Vietnamese page (whole words, any case). None of
# them is Vietnamese or occurs in the sample data shown to a land officer.
ENGLISH_MARKERS = (
    "the", "and", "of", "with", "from", "not", "found", "required", "invalid", "error", "loading",
    "search", "layers", "legend", "sign", "parcel", "parcels", "area", "status", "incident",
    "incidents", "sensor", "station", "threshold", "zoom", "window", "filters", "categories",
    "severity", "commune", "land", "use", "owner", "map", "computed", "legal", "tolerance",
    "version", "history", "changes", "current", "deleted", "open", "close", "none", "yes", "new",
    "assigned", "resolved", "closed", "online", "offline", "maintenance", "hotline", "traffic",
    "accident", "permanent", "print", "northing", "easting", "javascript", "library",
    "interactive", "unit", "units", "level", "population", "valid", "until", "updated",
    "reported", "title", "category", "distance", "share", "plan", "zone", "shared", "boundary",
    "results", "next", "previous", "page", "point", "drawn", "finish", "draw", "clear", "any",
    "key", "input", "should", "field", "expected", "value", "number", "text", "least", "most",
    "low", "medium", "high", "critical", "officer", "operator", "miles", "mi", "ft",
    # what a browser says of a failed request, and our English words for it
    "failed", "fetch", "network", "gateway", "server", "connection", "answered", "unexpected",
)
ENGLISH = re.compile(r"\b(" + "|".join(ENGLISH_MARKERS) + r")\b", re.IGNORECASE)
# The pages' own Vietnamese words (case matters: data such as land-use names holds some of the
# words in lower case).
VIETNAMESE_MARKERS = (
    "Đăng nhập", "Đăng xuất", "Lớp dữ liệu", "Chú giải", "Diện tích", "Trạng thái", "Phóng to",
    "Thu nhỏ", "Lịch sử biến động", "Phiên bản", "Kiểm tra diện tích", "Bản đồ điều hành",
    "Tra cứu thửa đất", "Mới tiếp nhận", "Khoảng thời gian", "Cập nhật", "Thửa liền kề",
    "Cán bộ địa chính", "Đơn vị hành chính", "Không tìm thấy", "không tìm thấy", "Tờ bản đồ",
    "Bộ lọc", "Mức độ", "Nền tảng GIS", "chế độ ngoại tuyến", "Trích lục", "Tìm kiếm",
)

# Everything a person can read: text of every element (also inside closed legends and hidden
# panels), the attributes read aloud or shown on hover, the document's title.
READABLE = """() => {
  const out = [document.title];
  const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT, {
    acceptNode: (n) => ["SCRIPT", "STYLE", "NOSCRIPT"].includes(n.parentElement.tagName)
      ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT });
  while (walk.nextNode()) out.push(walk.currentNode.nodeValue);
  for (const el of document.querySelectorAll("[title],[placeholder],[aria-label],[alt]")) {
    for (const a of ["title", "placeholder", "aria-label", "alt"]) {
      if (el.getAttribute(a)) out.push(el.getAttribute(a));
    }
  }
  return out.join("\\n");
}"""


def readable(page: Page) -> str:
    return unicodedata.normalize("NFC", page.evaluate(READABLE))


def assert_language(page: Page, lang: str, where: str) -> None:
    text = readable(page)
    assert page.get_attribute("html", "lang") == lang, where
    if lang == "vi":
        found = sorted({m.group(0) for m in ENGLISH.finditer(text)})
        assert not found, f"{where}: English on a Vietnamese page: {found}"
    else:
        found = sorted(w for w in VIETNAMESE_MARKERS if w in text)
        assert not found, f"{where}: Vietnamese on an English page: {found}"


def assert_links_keep(page: Page, lang: str, where: str) -> None:
    """Every link to another of our pages carries the page's language: without it, the next
    page would follow the browser's own language (here always the other one). The other
    language's own link names its language instead."""
    other = "en" if lang == "vi" else "vi"
    links = page.evaluate("""() => [...document.querySelectorAll("a[href]")].map((a) => a.href)""")
    ours = [u for u in links if urlsplit(u).netloc == urlsplit(page.url).netloc
            and "/static/" not in urlsplit(u).path]
    assert ours, where
    for u in ours:
        langs = parse_qs(urlsplit(u).query).get("lang")
        assert langs in ([lang], [other]), f"{where}: {u} loses the language"
    assert sum(parse_qs(urlsplit(u).query).get("lang") == [other] for u in ours) <= 1, where
    form_lang = page.evaluate("""() => [...document.querySelectorAll("form[method=get]")]
        .map((f) => (f.querySelector("input[name=lang]") || {}).value || null)""")
    assert all(v == lang for v in form_lang), (where, form_lang)


def browser_zone_time(value: dt.datetime) -> str:
    """What the browser's own zone would have shown: must not be what the page shows."""
    return value.astimezone(ZoneInfo(BROWSER_TZ)).strftime("%d/%m/%Y %H:%M")




def click_map(page: Page, lat: float, lon: float) -> None:
    """Centre the map on lat/lon at zoom 17 and click there (as a click on the map does)."""
    mark = idle_mark(page)
    page.evaluate(f"void GeoIOC.state.map.setView([{lat}, {lon}], 17, {{animate: false}})")
    wait_idle(page, mark)
    mark = idle_mark(page)
    page.evaluate(f"void GeoIOC.state.map.fire('click', {{latlng: L.latLng({lat}, {lon})}})")
    wait_idle(page, mark)
    page.wait_for_selector("#gi-details:not([hidden])", state="attached", timeout=TIMEOUT)


# --- fixtures -------------------------------------------------------------------------------------



@pytest.fixture(scope="module")
def officer(conn) -> Iterator[str]:
    """A land officer whose user name is no English word (it is shown in the top bar)."""
    from gis.auth import users

    name = f"cbdc{uuid.uuid4().hex[:6]}"
    users.add_user(conn, name, PASSWORD, roles=["land_officer"])
    yield name
    conn.execute("DELETE FROM users WHERE username = %s", (name,))


@pytest.fixture(scope="module")
def place(conn, client, officer) -> Iterator[dict]:
    """A parcel with incidents nearby and a camera over it, edited once by OFFICER (its history
    shows a change of legal area); a road away from the others."""
    (pid,) = conn.execute(
        "SELECT p.id FROM parcels p WHERE EXISTS (SELECT 1 FROM incidents i"
        "  WHERE i.reported_at > now() - interval '11 months' AND i.category <> 'security_event'"
        "  AND ST_DWithin(i.geom, p.geom, 0.0003))"
        " AND EXISTS (SELECT 1 FROM cameras c WHERE ST_Intersects(c.fov, p.geom))"
        # no edit by other tests: their users' names (r…-land-officer) are English words
        " AND NOT EXISTS (SELECT 1 FROM parcel_history h WHERE h.parcel_id = p.id"
        "  AND h.changed_by NOT LIKE 'cbdc%%')"
        " ORDER BY p.id LIMIT 1").fetchone()
    lon, lat = conn.execute("SELECT ST_X(g), ST_Y(g) FROM (SELECT ST_PointOnSurface(geom) g"
                            " FROM parcels WHERE id = %s) s", (pid,)).fetchone()
    road = conn.execute(
        "SELECT r.id, ST_X(r.p), ST_Y(r.p), r.traffic_at FROM (SELECT id, traffic_at,"
        "  ST_LineInterpolatePoint(geom, 0.5) AS p FROM roads WHERE traffic_at IS NOT NULL) r"
        " WHERE NOT EXISTS (SELECT 1 FROM roads o WHERE o.id <> r.id AND ST_DWithin(o.geom, r.p, 0.0008))"
        " ORDER BY r.id LIMIT 1").fetchone()
    assert road is not None, "the sample has a road away from others"
    auth = (officer, PASSWORD)
    before = client.get(f"/api/parcels/{pid}", auth=auth).json()
    legal = before["properties"]["legal_area"]
    r = client.patch(f"/api/parcels/{pid}", headers={"If-Match": str(before["version"])}, auth=auth,
                     json={"properties": {"legal_area": legal + 1234.5}, "note": "đo đạc lại"})
    assert r.status_code == 200, r.text
    yield {"id": pid, "lon": lon, "lat": lat, "legal_before": legal,
           "road": {"id": road[0], "lon": road[1], "lat": road[2], "traffic_at": road[3]}}
    now = client.get(f"/api/parcels/{pid}", auth=auth).json()
    client.patch(f"/api/parcels/{pid}", headers={"If-Match": str(now["version"])}, auth=auth,
                 json={"properties": {"legal_area": legal}, "note": "trả lại"})


@pytest.fixture(params=[(v, lang) for v in VIEWPORTS for lang in ("vi", "en")],
                ids=lambda p: f"{p[0]}-{p[1]}")
def setting(request, browser) -> Iterator[tuple[BrowserContext, str]]:
    viewport, lang = request.param
    ctx = browser.new_context(**VIEWPORTS[viewport], locale=BROWSER_LOCALE[lang],
                              timezone_id=BROWSER_TZ)
    yield ctx, lang
    ctx.close()


def sign_in_on_the_map(page: Page, base: str, lang: str, user: str) -> None:
    page.goto(f"{base}/?lang={lang}")
    page.wait_for_selector("body[data-rendered=true]", state="attached", timeout=TIMEOUT)
    sign_in(page, user)


# --- the map --------------------------------------------------------------------------------------


def test_map_speaks_the_page_language_in_vietnam_time(setting, live_server, conn, officer, place) -> None:
    ctx, lang = setting
    other = "en" if lang == "vi" else "vi"
    page = ctx.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    sign_in_on_the_map(page, live_server, lang, officer)
    assert_language(page, lang, "map")
    role = "Cán bộ địa chính" if lang == "vi" else "Land officer"
    assert page.inner_text("#gi-user").endswith(role)

    # The clock: today in Vietnam, dd/mm/yyyy HH:mm.
    now = dt.datetime.now(fmt.VN_TZ)
    clock = page.inner_text("#gi-clock")
    assert re.search(r"\d{2}/\d{2}/\d{4} \d{2}:\d{2}$", clock), clock
    assert fmt.date(now) in clock or fmt.date(now - dt.timedelta(minutes=2)) in clock, clock

    # A parcel: its legal area with the stored decimal in the page's separators.
    click_map(page, place["lat"], place["lon"])
    parcel = page.inner_text(".gi-sec-parcel")
    legal = conn.execute("SELECT legal_area FROM parcels WHERE id = %s", (place["id"],)).fetchone()[0]
    assert legal > 1000 and fmt.number(legal, lang, 1) in parcel, parcel
    commune = page.inner_text(".gi-sec-commune")
    code = conn.execute("SELECT commune_code FROM parcels WHERE id = %s", (place["id"],)).fetchone()[0]
    (population,) = conn.execute("SELECT population FROM admin_units WHERE code = %s AND valid_to"
                                 " IS NULL", (code,)).fetchone()
    assert population > 1000 and fmt.number(population, lang, 0) in commune, commune
    assert_language(page, lang, "map, a parcel clicked")

    # A road: when its traffic was updated, in Vietnam time whatever the browser's zone.
    road = place["road"]
    click_map(page, road["lat"], road["lon"])
    text = page.inner_text(".gi-sec-roads")
    assert fmt.datetime(road["traffic_at"]) in text, text
    assert browser_zone_time(road["traffic_at"]) not in text
    assert_language(page, lang, "map, a road clicked")

    # A custom window typed by the user means Vietnam days: 00:00 in Hanoi is 17:00 UTC before.
    open_layer_panel(page)
    mark = idle_mark(page)
    page.select_option("#gi-window", "custom")
    page.fill("#gi-start", "2026-01-10T00:00")
    page.fill("#gi-end", "2026-01-17T00:00")
    wait_idle(page, mark)
    stats = [parse_qs(urlsplit(u).query) for u in requests if urlsplit(u).path == "/api/incidents/stats"]
    assert stats[-1]["start"] == ["2026-01-09T17:00:00.000Z"], stats[-1]
    assert stats[-1]["end"] == ["2026-01-16T17:00:00.000Z"], stats[-1]
    assert_language(page, lang, "map, custom window")
    # A window typed wrong: every field in error marked and listed with its reason.
    said = {"vi": ("Từ", "Đến", "nhập đủ ngày và giờ", "phải sau thời điểm bắt đầu"),
            "en": ("From", "To", "give a date and a time", "must be after the start")}[lang]
    page.fill("#gi-end", "2026-01-05T00:00")
    listed = [li.inner_text() for li in page.query_selector_all("#gi-custom-error li")]
    assert listed == [f"{said[1]}: {said[3]}"], listed
    page.fill("#gi-start", "")
    page.fill("#gi-end", "")
    listed = [li.inner_text() for li in page.query_selector_all("#gi-custom-error li")]
    assert listed == [f"{said[0]}: {said[2]}", f"{said[1]}: {said[2]}"], listed
    marked = {el.get_attribute("id") for el in page.query_selector_all("#gi-custom .is-invalid")}
    assert marked == {"gi-start", "gi-end"}
    assert_language(page, lang, "map, custom window in error")

    # The status line: the pointer's position with the page's decimal separator, and a load
    # that failed said in the page's language, never the browser's ("Failed to fetch", "Bad
    # Gateway"); it follows a language switch while it is shown.
    page.evaluate("void GeoIOC.state.map.fire('mousemove', {latlng: L.latLng(21.123456, 106.054321)})")
    coords = page.inner_text("#gi-coords")
    assert coords.startswith("21,12346; 106,05432 · " if lang == "vi" else "21.12346, 106.05432 · "), coords
    failures = (
        (lambda route: route.abort("internetdisconnected"), "30",
         {"vi": "mất kết nối tới máy chủ", "en": "no connection to the server"}),
        (lambda route: route.fulfill(status=502, body="Bad Gateway", content_type="text/plain"), "90",
         {"vi": "máy chủ trả lời lỗi 502", "en": "the server answered with error 502"}),
    )
    for fail, days, said in failures:
        page.route("**/api/incidents/stats*", fail)
        mark = idle_mark(page)
        page.select_option("#gi-window", days)
        wait_idle(page, mark)
        page.unroute("**/api/incidents/stats*")
        status = page.inner_text("#gi-busy")
        assert status.endswith(said[lang]), status
        assert_language(page, lang, "map, a load failed")
    switched = page.evaluate("(() => { const l = GeoIOC.lang; GeoIOC.lang = l === 'vi' ? 'en' : 'vi';"
                             " GeoIOC.renderStatus(); const t = document.getElementById('gi-busy')"
                             ".textContent; GeoIOC.lang = l; GeoIOC.renderStatus(); return t; })()")
    assert switched.endswith(failures[-1][2][other]), switched
    mark = idle_mark(page)
    page.select_option("#gi-window", "custom")
    page.fill("#gi-start", "2026-01-10T00:00")
    page.fill("#gi-end", "2026-01-17T00:00")
    wait_idle(page, mark)
    assert page.inner_text("#gi-busy") == ""
    assert page.is_hidden("#gi-custom-error") and not page.query_selector_all("#gi-custom .is-invalid")

    # Switching language: panels, subtitle, title and attribution follow; typed times stay.
    mark = idle_mark(page)
    page.click("#gi-lang")
    wait_idle(page, mark)
    assert_language(page, other, "map after switching language")
    subtitle = {"vi": "Nền tảng GIS mở cho Trung tâm điều hành thông minh",
                "en": "open GIS platform for an Intelligent Operations Center"}
    assert page.inner_text(".gi-brand-sub") == subtitle[other]
    assert subtitle[other] in page.title()
    basemap_off = {"vi": "Không có bản đồ nền", "en": "No basemap"}
    assert basemap_off[other] in page.inner_text(".leaflet-control-attribution")
    assert basemap_off[lang] not in page.inner_text(".leaflet-control-attribution")
    assert page.input_value("#gi-start") == "2026-01-10T00:00"
    assert page.input_value("#gi-end") == "2026-01-17T00:00"
    page.close()


# --- the parcel pages -----------------------------------------------------------------------------


def test_parcel_pages_speak_the_page_language_in_vietnam_time(setting, live_server, client, officer,
                                                              place) -> None:
    ctx, lang = setting
    page = ctx.new_page()
    sign_in_on_the_map(page, live_server, lang, officer)  # the parcel pages follow by cookie
    pid = place["id"]
    body = client.get(f"/api/parcels/{pid}", auth=(officer, PASSWORD)).json()
    p = body["properties"]

    # The parcel page.
    page.goto(f"{live_server}/parcels/{pid}?lang={lang}")
    page.wait_for_selector("#parcel-map .leaflet-control-zoom-in", timeout=TIMEOUT)
    assert_language(page, lang, "parcel page")
    assert page.inner_text("#gi-user") == officer
    attrs = page.inner_text("#attributes")
    assert fmt.number(p["legal_area"], lang, 1) in attrs and p["legal_area"] > 1000
    updated = dt.datetime.fromisoformat(p["updated_at"])
    row = page.inner_text("#attributes tr[data-field=updated_at] td")
    assert row == fmt.datetime(updated) != browser_zone_time(updated), row
    area = page.inner_text("#area-check")
    assert fmt.number(body["area"]["computed_m2"], lang, 2) + " m²" in area
    # History: each version's start in Vietnam time, the change in the page's numbers.
    history = page.inner_text("#history")
    for h in body["history"]:
        assert fmt.datetime(h["valid_from"]) in history, (h, history)
    assert f"{fmt.number(place['legal_before'], lang, 1)} → " \
           f"{fmt.number(place['legal_before'] + 1234.5, lang, 1)}" in history, history
    # Incidents: Vietnam time, status names in the page's language.
    items = body["incidents"]["items"]
    assert items
    shown = [td.inner_text() for td in page.query_selector_all("#incidents tbody tr td:first-child")]
    assert shown == [fmt.datetime(i["reported_at"]) for i in items]
    statuses = {"received": ("Mới tiếp nhận", "Received"), "verified": ("Đã xác minh", "Verified"),
                "assigned": ("Đã phân công", "Assigned"),
                "in_progress": ("Đang xử lý", "In progress"), "resolved": ("Đã xử lý", "Resolved"),
                "rejected": ("Từ chối", "Rejected"), "closed": ("Đã đóng", "Closed")}
    cells = [td.inner_text() for td in page.query_selector_all("#incidents tbody tr td:nth-child(4)")]
    assert cells == [statuses[i["status"]][lang == "en"] for i in items]
    assert_links_keep(page, lang, "parcel page")
    zoom_in = page.get_attribute(".leaflet-control-zoom-in", "title")
    assert zoom_in == ("Phóng to" if lang == "vi" else "Zoom in")

    # The extract: the data version's time in Vietnam time, areas with one decimal.
    page.goto(f"{live_server}/parcels/{pid}/extract.html?lang={lang}")
    assert_language(page, lang, "extract")
    text = page.inner_text("body")
    assert f"{body['version']} ({fmt.datetime(updated)})" in text
    assert fmt.number(p["legal_area"], lang, 1) + " m²" in text

    # The search page: results' areas; a bad search explained in the page's language under
    # the form's own labels.
    sheet = p["sheet_no"]
    page.goto(f"{live_server}/parcels?lang={lang}&commune={p['commune_code']}&sheet={sheet}"
              f"&parcel={p['parcel_no']}")
    assert_language(page, lang, "search results")
    cells = page.inner_text("#results")
    assert fmt.number(p["legal_area"], lang, 1) in cells
    assert_links_keep(page, lang, "search results")
    page.goto(f"{live_server}/parcels?lang={lang}&sheet=abc")
    assert_language(page, lang, "search error")
    error = page.inner_text("#search-error").strip()
    assert error == ("Tờ bản đồ số: 'abc' không phải là số nguyên" if lang == "vi"
                     else "Map sheet: 'abc' is not a whole number"), error
    # Several fields in error: every one listed at once, each under its label, and marked.
    page.goto(f"{live_server}/parcels?lang={lang}&sheet=abc&parcel=0&land_use=1&point=x&owner=a")
    assert_language(page, lang, "search errors")
    listed = [li.inner_text() for li in page.query_selector_all("#search-error li")]
    assert listed == ([
        "Tờ bản đồ số: 'abc' không phải là số nguyên",
        "Thửa số: 0 nằm ngoài khoảng 1–99.999",
        "Loại đất: '1' không phải mã loại đất (ba chữ cái, ví dụ ONT; nhiều mã cách nhau bằng "
        "dấu phẩy)",
        "Người sử dụng đất: nhập ít nhất 3 chữ cái của tên",
        "Điểm (kinh độ, vĩ độ): cần hai số cách nhau bằng dấu phẩy, nhận được 'x'",
    ] if lang == "vi" else [
        "Map sheet: 'abc' is not a whole number",
        "Parcel number: 0 is outside 1..99999",
        "Land use: '1' is not a land-use code (three letters, e.g. ONT; several separated by commas)",
        "Land user: type at least 3 letters of the name",
        "Point (longitude, latitude): expected two numbers separated by a comma, got 'x'",
    ]), listed
    marked = {el.get_attribute("id") for el in page.query_selector_all("#parcel-search .is-invalid")}
    assert marked == {"sheet", "parcel", "land_use", "owner", "point"}, marked
    page.goto(f"{live_server}/parcels?lang={lang}&commune=khongcoxanay")
    assert_language(page, lang, "search error")
    assert ("không tìm thấy xã/phường 'khongcoxanay'" if lang == "vi"
            else "'khongcoxanay' not found") in page.inner_text("#search-error")

    # Error pages.
    r = page.goto(f"{live_server}/parcels/999999999?lang={lang}")
    assert r is not None and r.status == 404
    assert_language(page, lang, "404 page")
    assert page.inner_text("#error") == ("không tìm thấy thửa đất 999999999" if lang == "vi"
                                         else "parcel 999999999 not found")
    assert_links_keep(page, lang, "404 page")
    r = page.goto(f"{live_server}/parcels/{pid}?lang={lang}&as_of=" + "x" * 41)
    assert r is not None and r.status == 400
    assert_language(page, lang, "400 page")
    assert page.inner_text("#error") == ("as_of: tối đa 40 ký tự" if lang == "vi"
                                         else "as_of: at most 40 characters")
    page.close()
