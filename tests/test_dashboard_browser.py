"""The leaders' dashboard in a real Chromium: signed in through its form, the KPI cards show the
API's numbers in Vietnamese format, every available chart is a non-empty canvas, a chart
downloads as a PNG and as CSV, nothing is fetched from another host, and the wall mode rotates
its panels.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from chromium import TIMEOUT, Watch
from playwright.sync_api import Page

from gis import fmt

pytestmark = pytest.mark.slow


def sign_in(page: Page, who: dict) -> None:
    """From the public view (what a visitor sees first), through the sign-in button and form."""
    page.wait_for_selector('body[data-view="public"]', state="attached", timeout=TIMEOUT)
    page.click("#db-signin-open")
    page.wait_for_selector("#db-signin:not([hidden])", timeout=TIMEOUT)
    page.fill("#db-username", who["user"])
    page.fill("#db-password", who["password"])
    page.click("#db-signin-submit")
    page.wait_for_selector('body[data-view="staff"]', state="attached", timeout=TIMEOUT)
    # Every panel loaded (the time of the update is written after the last) and nothing pending.
    page.wait_for_selector("#db-updated:not(:empty)", state="attached", timeout=TIMEOUT)
    page.wait_for_selector('body[data-busy="0"]', state="attached", timeout=TIMEOUT)


def inked(page: Page, panel: str) -> int:
    """Pixels of the panel's (first) canvas that are not white."""
    return int(page.evaluate("""(id) => {
      const c = document.querySelector(`#db-chart-${id} canvas`);
      if (!c || !c.width) return 0;
      const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) if (d[i + 3] && (d[i] < 200 || d[i + 1] < 200)) n++;
      return n;
    }""", panel))


def check_analytics(page: Page, base: str, who: dict) -> None:
    """The indicator trend, the choropleth, the KDE and the hot spots show the API's numbers."""
    h = who["headers"]
    bodies = page.evaluate("""() => {
      const b = GeoIOC.dashboard.bodies;
      return {trend: b["indicator-trends"].series.map((r) => r.value),
              code: b["indicator-trends"].indicator.code, unit: b["indicator-trends"].unit.code,
              rates: b.choropleth.legend, kde: b.heatmap.legend, hot: b.hotspots.summary};
    }""")
    trend = httpx.get(f"{base}/api/indicators/{bodies['code']}/series",
                      params={"unit": bodies["unit"]}, headers=h).json()
    assert bodies["trend"] == [r["value"] for r in trend["series"]]
    assert bodies["unit"] == httpx.get(f"{base}/api/dashboard/panels", headers=h).json()[
        "province"]["code"]
    # the choropleth: Leaflet drew on its canvas, the legend names the method and the unit and
    # carries the API's breaks (Vietnamese number format)
    assert page.locator("#db-chart-choropleth .leaflet-container canvas").count() >= 1
    legend = page.inner_text("#db-chart-choropleth .db-legend")
    assert "Ngắt tự nhiên (Jenks)" in legend and "sự cố/1.000 dân" in legend
    assert page.locator("#db-chart-choropleth .db-legend li").count() == len(bodies["rates"]["breaks"])
    top = bodies["rates"]["breaks"][-1]
    assert fmt.number(top, "vi", 0 if top >= 100 else 1 if top >= 10 else 2) in legend
    # the KDE: its image, its legend in incidents/km² on the fixed scale
    assert page.locator("#db-chart-heatmap img.db-density").count() == 1
    legend = page.inner_text("#db-chart-heatmap .db-legend")
    assert "sự cố/km²" in legend and "Thang cố định" in legend
    assert page.locator("#db-chart-heatmap .db-legend li").count() == len(bodies["kde"]["colors"])
    # the hot spots: the classes hot first, with the API's number of cells in each
    legend = page.inner_text("#db-chart-hotspots .db-legend")
    assert legend.index("Điểm nóng, tin cậy 99 %") < legend.index("Không có ý nghĩa thống kê")
    assert f"Điểm nóng, tin cậy 99 % ({fmt.number(bodies['hot']['hot_99'], 'vi', 0)} ô)" in legend
    assert page.locator("#db-chart-hotspots .leaflet-container canvas").count() >= 1
    # the maps download as PNG (map and legend painted together) and their tables as CSV
    with page.expect_download() as dl:
        page.click('button.db-png[data-panel="hotspots"]')
    path = dl.value.path()
    assert path is not None and Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with page.expect_download() as dl:
        page.click('button.db-csv[data-panel="choropleth"]')
    text = Path(dl.value.path()).read_text(encoding="utf-8-sig")
    assert text.startswith("rank,code,name,population,area_km2,count,per_km2,per_1000,class")
    rows = text.strip().splitlines()[1:]
    assert sum(int(r.split(",")[5]) for r in rows) == page.evaluate(
        "GeoIOC.dashboard.bodies.choropleth.total")
    with page.expect_download() as dl:
        page.click('button.db-csv[data-panel="indicator-trends"]')
    text = Path(dl.value.path()).read_text(encoding="utf-8-sig")
    assert [float(r.split(",")[-1]) for r in text.strip().splitlines()[1:]] == bodies["trend"]


def test_dashboard_renders_the_api_figures(browser, live_server, role_keys) -> None:
    leader = role_keys["leader"]
    ctx = browser.new_context(viewport={"width": 1366, "height": 900}, accept_downloads=True,
                              locale="en-US", timezone_id="America/New_York")
    page = ctx.new_page()
    watch = Watch(page, live_server)
    page.goto(f"{live_server}/dashboard")
    sign_in(page, leader)
    k = httpx.get(f"{live_server}/api/dashboard/kpis", headers=leader["headers"]).json()

    def card(kpi: str, key: str) -> str:
        return page.text_content(f'#db-kpis [data-kpi="{kpi}"] [data-value="{key}"]') or ""

    assert card("incidents", "current") == fmt.number(k["incidents"]["current"], "vi", 0)
    assert card("incidents", "previous") == fmt.number(k["incidents"]["previous"], "vi", 0)
    assert card("incidents", "year_ago") == fmt.number(k["incidents"]["year_ago"], "vi", 0)
    assert card("open", "open") == fmt.number(k["reports"]["open"], "vi", 0)
    assert card("overdue", "overdue") == fmt.number(k["reports"]["overdue"], "vi", 0)
    assert card("alerts", "alerts") == fmt.number(k["alerts"]["open"], "vi", 0)
    # Every available chart drew something: a canvas with pixels other than white.
    for panel in ("by-category", "hour-weekday", "communes"):
        assert inked(page, panel) > 200, panel
    # The analytics panels: shown, their charts inked, their maps drawn with the API's legends.
    for shown in ("indicator-trends", "indicator-communes", "choropleth", "heatmap", "hotspots"):
        assert page.locator(f'section[data-panel="{shown}"]').is_visible(), shown
    for panel in ("indicator-trends", "indicator-communes"):
        assert inked(page, panel) > 200, panel
    check_analytics(page, live_server, leader)
    with page.expect_download() as dl:
        page.click('button.db-png[data-panel="hour-weekday"]')
    path = dl.value.path()
    assert dl.value.suggested_filename == "dashboard-hour-weekday.png"
    assert path is not None and Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with page.expect_download() as dl:
        page.click('button.db-csv[data-panel="communes"]')
    text = Path(dl.value.path()).read_text(encoding="utf-8-sig")
    assert text.startswith("code,name,current,previous")
    watch.assert_clean()

    # The wall mode: one panel at a time, the next after `rotate` seconds.
    wall = ctx.new_page()
    wall.goto(f"{live_server}/dashboard?wall=1&rotate=5")
    wall.wait_for_selector("body[data-panel]", state="attached", timeout=TIMEOUT)
    first = wall.get_attribute("body", "data-panel")
    assert wall.locator(f'section[data-panel="{first}"]').is_visible()
    wall.wait_for_selector(f'body[data-panel]:not([data-panel="{first}"])', state="attached",
                           timeout=TIMEOUT)
    second = wall.get_attribute("body", "data-panel")
    assert second != first
    assert wall.locator(f'section[data-panel="{second}"]').is_visible()
    assert wall.locator(f'section[data-panel="{first}"]').is_hidden()
    ctx.close()


def test_dashboard_for_a_guest(browser, live_server, role_keys) -> None:
    """A visitor who does not sign in sees the public panels only (no KPI cards: open and
    overdue reports, alerts; no hot spots; no briefing), every chart non-empty, a note saying
    small counts are hidden (not zeros), and each hidden count counted under its chart as the
    API left it out. Signing in then brings the staff's panels."""
    ctx = browser.new_context(viewport={"width": 1366, "height": 900}, locale="vi-VN",
                              timezone_id="Asia/Ho_Chi_Minh")
    page = ctx.new_page()
    watch = Watch(page, live_server)
    page.goto(f"{live_server}/dashboard")
    page.wait_for_selector('body[data-view="public"]', state="attached", timeout=TIMEOUT)
    page.wait_for_selector('body[data-busy="0"]', state="attached", timeout=TIMEOUT)
    note = page.locator("#db-guest-note")
    assert note.is_visible()
    text = note.inner_text()
    assert "dưới 3" in text and "không phải 0" in text and "{k}" not in text
    # no restricted panel, no sign-in form in the way, no briefing (its overdue list)
    for restricted in ("kpis", "hotspots"):
        assert page.locator(f'section[data-panel="{restricted}"]').is_hidden(), restricted
    assert page.locator("#db-kpis").is_hidden() and page.locator("#db-briefing").is_hidden()
    assert page.locator("#db-signin").is_hidden() and page.locator("#db-signin-open").is_visible()
    assert "Phản ánh quá hạn" not in page.inner_text("main")
    shown = page.eval_on_selector_all(
        ".db-panel:not([hidden])", "els => els.map((e) => e.dataset.panel)")
    assert set(shown) == {"by-category", "hour-weekday", "communes", "indicator-trends",
                          "indicator-communes", "choropleth", "heatmap"}
    for panel in ("by-category", "hour-weekday", "communes", "indicator-trends",
                  "indicator-communes"):
        assert inked(page, panel) > 200, panel
    assert page.locator("#db-chart-choropleth .leaflet-container canvas").count() >= 1
    assert page.locator("#db-chart-heatmap img.db-density").count() == 1
    # the figures are the public's (suppressed) and each hidden count is said under its chart
    bodies = page.evaluate("""() => {
      const b = GeoIOC.dashboard.bodies;
      return {cat: b["by-category"], hw: b["hour-weekday"], rates: b.choropleth};
    }""")
    assert bodies["cat"]["suppressed"] is True and bodies["rates"]["suppressed"] is True
    nulls = sum(v is None for s in bodies["cat"]["series"] for v in s["counts"])
    assert page.get_attribute("#db-hidden-by-category", "data-hidden") == str(nulls)
    if nulls:
        assert "không phải 0" in page.inner_text("#db-hidden-by-category")
    for v in (v for s in bodies["cat"]["series"] for v in s["counts"]):
        assert v is None or v == 0 or v >= 3
    hw_nulls = sum(v is None for r in bodies["hw"]["matrix"] for v in r)
    assert page.get_attribute("#db-hidden-hour-weekday", "data-hidden") == str(hw_nulls)
    legend = page.inner_text("#db-chart-choropleth .db-legend")
    assert "Ẩn (số nhỏ)" in legend
    watch.assert_clean()
    # signing in brings the staff's view: the KPI cards and the hot spots, no note
    sign_in(page, role_keys["leader"])
    assert page.locator("#db-kpis").is_visible()
    assert page.locator('section[data-panel="hotspots"]').is_visible()
    assert page.locator("#db-guest-note").is_hidden()
    assert page.evaluate("GeoIOC.dashboard.bodies['by-category'].suppressed") is None
    ctx.close()
