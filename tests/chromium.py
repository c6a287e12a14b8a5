"""What every browser test shares: Debian's Chromium launched headless and offline-minded, and the
page's own signals of being idle (a selector, not wait_for_function: the page's CSP rightly
forbids eval). The `browser` fixture in conftest.py launches it once per module."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]
TIMEOUT = 20_000


@contextmanager
def launched() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def idle_mark(page: Page) -> str:
    return page.get_attribute("body", "data-idle") or ""


def wait_idle(page: Page, before: str) -> None:
    """Until the page went idle again after BEFORE: no tile, API call or drawing pending."""
    page.wait_for_selector(f'body[data-busy="0"]:not([data-idle="{before}"])', state="attached",
                           timeout=TIMEOUT)


def open_layer_panel(page: Page) -> None:
    """On a phone the layer panel (layers, time window, filters, eras) opens over the map from its
    button in the top bar; on a wider screen it is always open and there is no button."""
    toggle = page.locator("#gi-panel-toggle")
    if toggle.is_visible() and toggle.get_attribute("aria-expanded") != "true":
        toggle.click()
        page.wait_for_selector("#gi-panel:not(.gi-closed)", state="attached", timeout=TIMEOUT)


def close_layer_panel(page: Page) -> None:
    """A phone's layer panel covers the map: close it before clicking on the map."""
    toggle = page.locator("#gi-panel-toggle")
    if toggle.is_visible() and toggle.get_attribute("aria-expanded") == "true":
        toggle.click()
