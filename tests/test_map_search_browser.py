"""The map's search box in a real headless Chromium (issue 14), on a 1366×768 screen and a phone,
in Vietnamese and English: for every kind of thing (commune, pre-2025 commune, tourism place,
public facility, road, sensor station, camera, sheet/parcel, coordinates) the hits come under
the kind's name in the page's language, and clicking the hit flies the map to it and says what
it is. The API's answer is the reference (tests/test_search.py checks the API itself).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from chromium import TIMEOUT, close_layer_panel, idle_mark, open_layer_panel, set_view, sign_in, wait_idle
from playwright.sync_api import Page
from test_map_browser import map_page

from gis.analysis.search import fold

pytestmark = pytest.mark.slow  # a real Chromium: outside the fast inner loop

SCREENS = {"1366x768": {"width": 1366, "height": 768}, "phone": {"width": 390, "height": 844}}
PROVINCE = (21.18, 106.07)  # the sample province's middle (lat, lon)


@dataclass
class Kind:
    key: str  # the group's key in /api/search
    query: str  # what is typed (without diacritics)
    details: str  # text the details panel must show once the hit is chosen (vi, en alike)
    details_en: str | None = None


def _kinds(conn) -> list[Kind]:
    one = conn.execute
    commune = one("SELECT name FROM admin_units WHERE level = 'commune' AND valid_to IS NULL"
                  " AND name ~ '[^ -~]' ORDER BY code LIMIT 1").fetchone()[0]
    former = one("SELECT o.name FROM admin_units o WHERE o.level = 'commune' AND o.valid_to IS NOT NULL"
                 " AND NOT EXISTS (SELECT FROM admin_units c WHERE c.valid_to IS NULL AND c.name = o.name)"
                 " ORDER BY o.code LIMIT 1").fetchone()[0]
    place = one("SELECT name FROM tourism_places ORDER BY id LIMIT 1").fetchone()[0]
    facility = one("SELECT name FROM public_facilities WHERE type = 'school' ORDER BY code LIMIT 1"
                   ).fetchone()[0]
    road = one("SELECT name FROM roads WHERE name LIKE 'Quốc lộ %%' ORDER BY name LIMIT 1").fetchone()[0]
    sensor = one("SELECT code, name FROM sensors ORDER BY id LIMIT 1").fetchone()
    camera = one("SELECT code, name FROM cameras ORDER BY id LIMIT 1").fetchone()
    sheet, parcel, code = one("SELECT sheet_no, parcel_no, commune_code FROM parcels"
                              " WHERE old_commune_code IS NULL ORDER BY id LIMIT 1").fetchone()
    return [
        Kind("admin_units", fold(commune), commune),
        Kind("admin_units:former", fold(former), former),
        Kind("tourism_places", fold(place), place),
        Kind("public_facilities", fold(facility), facility),
        Kind("roads", fold(road), road),
        Kind("sensors", sensor[0].lower(), sensor[1]),
        Kind("cameras", camera[0].lower(), camera[1]),
        Kind("parcels", f"{sheet}/{parcel} {code}", f"Tờ {sheet} · Thửa {parcel}",
             f"Sheet {sheet} · Parcel {parcel}"),
        Kind("coordinate", "21.18, 106.07", "WGS84 21.180000, 106.070000"),
    ]



def _map_state(page: Page) -> dict:
    return page.evaluate("(() => { const m = GeoIOC.state.map; const b = m.getBounds();"
                         " return {zoom: m.getZoom(), lat: m.getCenter().lat, lon: m.getCenter().lng,"
                         " w: b.getWest(), s: b.getSouth(), e: b.getEast(), n: b.getNorth()}; })()")


@pytest.mark.parametrize("lang", ["vi", "en"])
@pytest.mark.parametrize("screen", list(SCREENS))
def test_search_every_kind_and_fly_to_it(browser, live_server, client, conn, role_keys, keys,
                                         screen, lang) -> None:
    kinds = _kinds(conn)
    context = browser.new_context(viewport=SCREENS[screen], locale="vi-VN",
                                  timezone_id="Asia/Ho_Chi_Minh",
                                  is_mobile=screen == "phone", has_touch=screen == "phone")
    try:
        with map_page(context, live_server, f"/?lang={lang}") as (page, _):
            sign_in(page, role_keys["operator"]["user"])  # cameras are for staff
            for kind in kinds:
                body = client.get("/api/search", params={"q": kind.query},
                                  headers=keys["operator"]).json()
                group = next(g for g in body["groups"] if g["key"] == kind.key)
                hit = group["results"][0]
                set_view(page, *PROVINCE, 10)
                page.fill("#gi-q", kind.query)
                selector = f'#gi-results .gi-hit-group[data-kind="{kind.key}"]'
                page.wait_for_selector(selector, timeout=TIMEOUT)
                assert page.locator("#gi-results").is_visible()
                # the kind's name in the page's language (as written: CSS shows it in capitals)
                header = page.locator(f"{selector} .gi-hit-kind").text_content() or ""
                assert header.startswith(group["title"][lang]), (kind.key, header)
                button = page.locator(f"{selector} .gi-hit").first
                assert (button.locator("b").text_content() or "") == hit["title"][lang]
                assert button.is_visible()
                mark = idle_mark(page)
                button.click()
                wait_idle(page, mark)
                page.wait_for_selector("#gi-details:not([hidden])", timeout=TIMEOUT)
                assert page.locator("#gi-results").is_hidden()
                where = _map_state(page)
                lon, lat = hit["center"]
                assert where["w"] <= lon <= where["e"] and where["s"] <= lat <= where["n"], (kind.key, where)
                spread = hit["bbox"] and (hit["bbox"][2] - hit["bbox"][0] > 1e-9)
                if spread:  # the whole of it in view, zoomed in on it from the province
                    x1, y1, x2, y2 = hit["bbox"]
                    assert where["w"] <= x1 and x2 <= where["e"] and where["s"] <= y1 and y2 <= where["n"]
                    assert where["zoom"] > 10, (kind.key, where)
                else:  # a point: in the middle, close up
                    assert where["lon"] == pytest.approx(lon, abs=1e-6), kind.key
                    assert where["lat"] == pytest.approx(lat, abs=1e-6), kind.key
                    assert where["zoom"] >= 16, (kind.key, where)
                details = page.inner_text("#gi-details")
                expected = kind.details_en if lang == "en" and kind.details_en else kind.details
                assert expected in details, (kind.key, details[:300])
                if kind.key == "cameras":  # off when the map opens, shown for the hit
                    assert page.is_checked("[data-layer-toggle=cameras]")
                if kind.key == "admin_units:former":  # the map shows the units of that time
                    assert page.locator("[data-era].active").get_attribute("data-era")
                    assert re.search(r"\d{4}-\d{2}-\d{2}", page.locator(
                        "[data-era].active").get_attribute("data-era") or "")
                    page.click("#gi-details-close")  # (over the layer panel on a phone)
                    open_layer_panel(page)
                    page.click("[data-era='']")  # back to today's units for the next kind
                    close_layer_panel(page)
    finally:
        context.close()
