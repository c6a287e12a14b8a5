"""The honest heatmap in the browser: the density overlay shows a legend in incidents/km² whose
numbers stay the same when the map is panned and zoomed (a fixed scale), and the commune
choropleth shows its classes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from chromium import TIMEOUT, Watch, idle_mark, set_view, sign_in, wait_idle
from playwright.sync_api import BrowserContext, Page

pytestmark = pytest.mark.slow


@contextmanager
def map_page(context: BrowserContext, base: str) -> Iterator[tuple[Page, Watch]]:
    context.clear_cookies()
    page = context.new_page()
    watch = Watch(page, base)
    page.goto(base + "/")
    page.wait_for_selector("body[data-rendered=true]", state="attached", timeout=TIMEOUT)
    try:
        yield page, watch
        watch.assert_clean()
    finally:
        page.close()


def legend(page: Page, layer: str) -> str:
    return page.inner_text(f'.gi-map-legend[data-legend-for="{layer}"]')


def test_density_legend_is_in_incidents_per_km2_and_fixed_when_panning(context, live_server,
                                                                        role_keys) -> None:
    with map_page(context, live_server) as (page, _):
        sign_in(page, role_keys["operator"]["user"])
        mark = idle_mark(page)
        page.check("[data-layer-toggle=incidents_heatmap]")
        page.uncheck("[data-layer-toggle=incidents]")
        wait_idle(page, mark)
        page.wait_for_selector('.gi-map-legend[data-legend-for="incidents_heatmap"] li',
                               timeout=TIMEOUT)
        first = legend(page, "incidents_heatmap")
        assert "sự cố/km²" in first and "Thang cố định" in first
        assert first.count("≥") == 8
        assert page.locator("img.gi-density").count() == 1
        assert page.evaluate("GeoIOC.drawn()")["incidents_heatmap"] > 0
        centre = page.evaluate("[GeoIOC.state.map.getCenter().lat, GeoIOC.state.map.getCenter().lng]")
        for dlat, dlon, zoom in ((0.05, 0.08, 12), (-0.06, -0.05, 13), (0.0, 0.0, 10)):
            set_view(page, centre[0] + dlat, centre[1] + dlon, zoom)
            assert legend(page, "incidents_heatmap") == first
        # the choropleth of rates per commune: polygons and a legend of its classes
        mark = idle_mark(page)
        page.check("[data-layer-toggle=incident_rates]")
        wait_idle(page, mark)
        page.wait_for_selector('.gi-map-legend[data-legend-for="incident_rates"] li', timeout=TIMEOUT)
        assert "1.000 dân" in legend(page, "incident_rates")
        assert page.evaluate("GeoIOC.drawn()")["incident_rates"] > 50


def test_public_density_says_small_counts_are_hidden(context, live_server) -> None:
    """A visitor who is not signed in sees the incidents' density and rates, not the incidents:
    the legends say, in Vietnamese, that counts under 3 are hidden."""
    with map_page(context, live_server) as (page, _):
        assert page.locator("[data-layer-toggle=incidents]").count() == 0
        mark = idle_mark(page)
        page.check("[data-layer-toggle=incidents_heatmap]")
        wait_idle(page, mark)
        page.wait_for_selector('.gi-map-legend[data-legend-for="incidents_heatmap"] li',
                               timeout=TIMEOUT)
        text = legend(page, "incidents_heatmap")
        assert "sự cố/km²" in text and "dưới 3 sự cố được ẩn" in text
        assert page.locator("img.gi-density").count() == 1
        mark = idle_mark(page)
        page.check("[data-layer-toggle=incident_rates]")
        wait_idle(page, mark)
        page.wait_for_selector('.gi-map-legend[data-legend-for="incident_rates"] li', timeout=TIMEOUT)
        assert "dưới 3 sự cố được ẩn" in legend(page, "incident_rates")
        assert page.evaluate("GeoIOC.drawn()")["incident_rates"] > 50
