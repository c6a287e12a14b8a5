"""The hot-spot layers of the command map in a real Chromium: the Gi* overlay with its legend
(hot and cold at 99/95/90 % and not significant, Vietnamese first, each with the API's number of
cells), a click on a hot cell explaining its class with the API's z, p and FDR-adjusted p (in
English under lang=en), and the emerging hot spots with their categories; nothing fetched from
another host."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from chromium import TIMEOUT, Watch, idle_mark, screen_point, sign_in, wait_idle
from playwright.sync_api import BrowserContext, Page

from gis import fmt

pytestmark = pytest.mark.slow


@contextmanager
def map_page(context: BrowserContext, url: str, base: str) -> Iterator[Page]:
    context.clear_cookies()
    page = context.new_page()
    watch = Watch(page, base)
    page.goto(url)
    page.wait_for_selector("body[data-rendered=true]", state="attached", timeout=TIMEOUT)
    try:
        yield page
        watch.assert_clean()
    finally:
        page.close()


def show(page: Page, layer: str) -> None:
    mark = idle_mark(page)
    page.check(f"[data-layer-toggle={layer}]")
    wait_idle(page, mark)
    page.wait_for_selector(f'.gi-map-legend[data-legend-for="{layer}"] li', timeout=TIMEOUT)


def hot_cell(page: Page) -> dict:
    """The centre of the hot cell at 99 % with the most incidents, and its properties."""
    return page.evaluate("""() => {
      const h = GeoIOC.state.handles.incident_hotspots;
      let best = null;
      h.layer.eachLayer((l) => {
        const p = l.feature.properties;
        if (p.class === "hot_99" && (!best || p.count > best.p.count)) best = {l, p};
      });
      const c = best.l.getBounds().getCenter();
      return {lat: c.lat, lon: c.lng, i: best.p.i, j: best.p.j, z: best.p.z};
    }""")


def test_hot_spot_overlay_and_why_a_cell_is_classed(context, live_server, role_keys) -> None:
    leader = role_keys["leader"]
    with map_page(context, live_server + "/", live_server) as page:
        sign_in(page, leader["user"])
        page.uncheck("[data-layer-toggle=incidents]")
        show(page, "incident_hotspots")
        body = page.evaluate("GeoIOC.state.handles.incident_hotspots.body")
        api = httpx.get(f"{live_server}/api/incidents/hotspots", headers=leader["headers"],
                        params={"start": body["start"], "end": body["end"], "cell_m": "1000"}).json()
        assert body["summary"] == api["summary"] and api["summary"]["hot_99"] > 0
        text = page.inner_text('.gi-map-legend[data-legend-for="incident_hotspots"]')
        order = ["Điểm nóng, tin cậy 99 %", "Điểm nóng, tin cậy 95 %", "Điểm nóng, tin cậy 90 %",
                 "Không có ý nghĩa thống kê", "Điểm lạnh, tin cậy 90 %", "Điểm lạnh, tin cậy 95 %",
                 "Điểm lạnh, tin cậy 99 %"]
        assert [text.index(t) for t in order] == sorted(text.index(t) for t in order)
        for k, t in zip(("hot_99", "not_significant"), (order[0], order[3]), strict=True):
            assert f"{t} ({fmt.number(api['summary'][k], 'vi', 0)})" in text
        assert "FDR" in text
        assert page.evaluate("GeoIOC.drawn()")["incident_hotspots"] == api["cells"]
        # a click on the hottest cell: why it is classed, the API's own numbers
        cell = hot_cell(page)
        x, y = screen_point(page, cell["lat"], cell["lon"])
        page.mouse.click(x, y)
        page.wait_for_selector(f'.gi-hot-why[data-cell="{cell["i"]},{cell["j"]}"]', timeout=TIMEOUT)
        why = httpx.get(f"{live_server}/api/incidents/hotspots", headers=leader["headers"],
                        params={"start": body["start"], "end": body["end"], "cell_m": "1000",
                                "cell": f"{cell['i']},{cell['j']}"}).json()["features"][0]["properties"]
        popup = page.inner_text(".gi-hot-why")
        assert "Điểm nóng, tin cậy 99 %" in popup and why["why"]["vi"] in popup
        assert f"z = {fmt.number(why['z'], 'vi', 2)}" in popup and str(why["p_fdr"]) in popup
        assert "p sau hiệu chỉnh FDR" in popup and "Mann-Kendall" in popup
        # the emerging hot spots: categories with a legend, in the same group of layers
        page.keyboard.press("Escape")
        show(page, "incident_emerging")
        em = page.evaluate("GeoIOC.state.handles.incident_emerging.body")
        text = page.inner_text('.gi-map-legend[data-legend-for="incident_emerging"]')
        present = {k: n for k, n in em["summary"].items() if n and k != "no_pattern"}
        assert present, em["summary"]
        for k, n in present.items():
            f = next(f for f in em["features"] if f["properties"]["category"] == k)
            assert f"{f['properties']['title']['vi']} ({fmt.number(n, 'vi', 0)})" in text
        same_group = page.evaluate("""() => {
          const box = (id) => document.querySelector(`[data-layer-toggle=${id}]`)
            .closest("details, fieldset, section, .gi-domain");
          return box("incident_hotspots") === box("incident_rates")
            && box("incident_emerging") === box("incidents_heatmap");
        }""")
        assert same_group

    # English under lang=en
    with map_page(context, live_server + "/?lang=en", live_server) as page:
        sign_in(page, leader["user"])
        page.uncheck("[data-layer-toggle=incidents]")
        show(page, "incident_hotspots")
        assert "Hot spot, 99 % confidence" in page.inner_text(
            '.gi-map-legend[data-legend-for="incident_hotspots"]')
        cell = hot_cell(page)
        x, y = screen_point(page, cell["lat"], cell["lon"])
        page.mouse.click(x, y)
        page.wait_for_selector(".gi-hot-why", timeout=TIMEOUT)
        popup = page.inner_text(".gi-hot-why")
        assert "Hot spot at 99 % confidence" in popup and "FDR-adjusted p" in popup
