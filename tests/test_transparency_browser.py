"""The public transparency page in a real Chromium, Vietnamese and English, at 1366x768 and on a
phone, in a browser whose own language and time zone are the other ones: every figure of the
tables is the API's figure in the page's number format, no English word on the Vietnamese page
(tests/test_language_browser.py's markers), nothing fetched from another host, the choropleth
and the overdue map drawn, and a period picked in the form gives that period's figures.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from chromium import TIMEOUT, Watch
from playwright.sync_api import BrowserContext, Page
from test_language_browser import BROWSER_LOCALE, BROWSER_TZ, VIEWPORTS, assert_language

from gis import fmt

pytestmark = pytest.mark.slow

PERIOD = {"start": "2026-08-01", "end": "2026-12-04"}
COUNTS = ("received", "resolved", "rejected", "open", "within_sla", "due")
HOURS = ("median_hours", "p90_hours")


HIDDEN = {"vi": "ẩn", "en": "hidden"}


def shown(value: Any, key: str, lang: str, suppressed: bool = False) -> str:
    """What the page must show for VALUE of KEY (web/static/transparency/app.js); a figure the
    API suppressed for the public (null in a row marked `suppressed`) says so, never 0."""
    if value is None and suppressed:
        return HIDDEN[lang]
    if key in COUNTS:
        return fmt.number(value, lang, 0)
    if key in HOURS:
        return fmt.number(value, lang, 2)
    return "–" if value is None else fmt.number(value * 100, lang, 2) + " %"


def wait_loaded(page: Page, before: str = "") -> None:
    page.wait_for_selector(f'body[data-busy="0"]:not([data-idle="{before}"])', state="attached",
                           timeout=TIMEOUT)


def table_figures(page: Page, table: str) -> dict[str, dict[str, str]]:
    return page.evaluate("""(id) => {
      const out = {};
      for (const tr of document.querySelectorAll(`#${id} tbody tr`)) {
        const row = {};
        for (const td of tr.querySelectorAll("td[data-key]")) row[td.dataset.key] = td.textContent;
        out[tr.dataset.code] = row;
      }
      return out;
    }""", table)


def assert_figures(page: Page, table: str, rows: dict[str, dict[str, Any]], lang: str) -> None:
    on_page = table_figures(page, table)
    assert set(on_page) == set(rows), table
    for code, row in rows.items():
        for key, text in on_page[code].items():
            assert text == shown(row[key], key, lang, bool(row.get("suppressed"))), (
                table, code, key)


@pytest.fixture(params=[(v, lang) for v in VIEWPORTS for lang in ("vi", "en")],
                ids=lambda p: f"{p[0]}-{p[1]}")
def setting(request, browser) -> Iterator[tuple[BrowserContext, str, str]]:
    viewport, lang = request.param
    ctx = browser.new_context(**VIEWPORTS[viewport], locale=BROWSER_LOCALE[lang],
                              timezone_id=BROWSER_TZ)
    yield ctx, lang, viewport
    ctx.close()


def test_page_shows_the_api_figures(setting, live_server) -> None:
    ctx, lang, viewport = setting
    api = httpx.get(f"{live_server}/api/transparency/agencies", params=PERIOD).json()
    communes = httpx.get(f"{live_server}/api/transparency/communes", params=PERIOD).json()
    ranking = httpx.get(f"{live_server}/api/transparency/ranking", params=PERIOD).json()
    overdue = httpx.get(f"{live_server}/api/transparency/overdue").json()
    page = ctx.new_page()
    watch = Watch(page, live_server)
    page.goto(f"{live_server}/transparency?lang={lang}&start={PERIOD['start']}&end={PERIOD['end']}")
    wait_loaded(page)
    watch.assert_clean()
    assert_language(page, lang, "transparency")

    assert_figures(page, "tp-province", {"province": api["province"]}, lang)
    # The public's figures: small counts hidden, the page says so and marks them, not as 0.
    assert communes["suppressed"] is True and api["suppressed"] is True
    note = page.inner_text("#tp-suppressed")
    assert ("không phải 0" if lang == "vi" else "not 0") in note and "{k}" not in note
    hidden = sum(v is None for f in communes["features"] for k, v in f["properties"].items()
                 if k in COUNTS)
    assert hidden > 0 and page.locator("#tp-communes td.tp-hidden").count() >= hidden
    assert ("Số liệu bị ẩn" if lang == "vi" else "Figures hidden") in page.inner_text("#tp-legend")
    agencies = {a["code"]: a for a in api["agencies"]}
    if api["unassigned"]:
        agencies[""] = api["unassigned"]
    assert_figures(page, "tp-agencies", agencies, lang)
    assert_figures(page, "tp-communes", {f["properties"]["code"]: f["properties"]
                                         for f in communes["features"]}, lang)
    assert_figures(page, "tp-ranking", {r["code"]: r for r in ranking["ranking"]}, lang)
    ranks = page.eval_on_selector_all("#tp-ranking tbody tr td:first-child",
                                      "tds => tds.map(td => td.textContent)")
    assert ranks == [fmt.number(r["rank"], lang, 0) for r in ranking["ranking"]]
    # The period shown in Vietnamese dates; the form holds the last day, not the exclusive end.
    assert page.input_value("#tp-from") == PERIOD["start"]
    assert page.input_value("#tp-to") == "2026-12-03"
    assert "01/08/2026" in page.inner_text("#tp-period-text")
    # When the figures were computed, on Vietnam's clock (the API's ISO text is at +07:00).
    assert api["computed_at"].endswith("+07:00")
    assert api["computed_at"][11:16] in page.inner_text("#tp-computed")

    # Both maps drawn: one polygon per commune, one marker per overdue report.
    assert page.locator("#tp-choropleth path.leaflet-interactive").count() == len(
        communes["features"])
    assert page.locator("#tp-overdue path.leaflet-interactive").count() == len(overdue["features"])
    assert page.inner_text("#tp-overdue-count") == fmt.number(len(overdue["features"]), lang, 0)

    # On a phone the page fits the screen's width (wide tables scroll inside their box).
    if viewport == "phone":
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_a_period_picked_in_the_form(browser, live_server) -> None:
    ctx = browser.new_context(**VIEWPORTS["desktop"], locale="en-US", timezone_id=BROWSER_TZ)
    try:
        page = ctx.new_page()
        watch = Watch(page, live_server)
        page.goto(f"{live_server}/transparency")
        wait_loaded(page)
        before = page.get_attribute("body", "data-idle") or ""
        page.fill("#tp-from", "2026-11-01")
        page.fill("#tp-to", "2026-11-30")
        page.click("#tp-show")
        wait_loaded(page, before)
        api = httpx.get(f"{live_server}/api/transparency/agencies",
                        params={"start": "2026-11-01", "end": "2026-12-01"}).json()
        assert_figures(page, "tp-province", {"province": api["province"]}, "vi")
        assert "start=2026-11-01" in page.url and "end=2026-12-01" in page.url
        # A period that ends before it starts: the API's Vietnamese message, shown.
        before = page.get_attribute("body", "data-idle") or ""
        page.fill("#tp-to", "2026-10-01")
        page.click("#tp-show")
        wait_loaded(page, before)
        assert "phải sau ngày bắt đầu" in page.inner_text("#tp-error")
        # The usual periods: "this year" is the Vietnamese calendar year, end exclusive.
        year = dt.datetime.now(dt.timezone(dt.timedelta(hours=7))).year
        before = page.get_attribute("body", "data-idle") or ""
        page.click("#tp-presets [data-preset=year]")
        wait_loaded(page, before)
        assert f"start={year}-01-01" in page.url and f"end={year + 1}-01-01" in page.url
        assert page.input_value("#tp-to") == f"{year}-12-31"
        assert page.is_hidden("#tp-error")
        watch.errors = [e for e in watch.errors if "400" not in e]
        watch.assert_clean()
    finally:
        ctx.close()
