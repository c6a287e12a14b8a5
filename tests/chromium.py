"""What every browser test shares: Debian's Chromium launched headless and offline-minded, and the
page's own signals of being idle (a selector, not wait_for_function: the page's CSP rightly
forbids eval). The `browser` fixture in conftest.py launches it once per module."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qs, urlsplit

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


# The map's live event stream never ends by itself: the browser aborts it when the page goes
# (a reload, another language) or the map restarts it for a new sign-in. That is no failure.
ENDLESS_STREAMS = ("/api/map/events",)


def _stream_closed(url: str, failure: str | None) -> bool:
    return failure == "net::ERR_ABORTED" and urlsplit(url).path in ENDLESS_STREAMS


class Watch:
    """Everything the page did that a clean page must not do: errors, failed or refused requests,
    and requests leaving the server (the map must work offline)."""

    def __init__(self, page: Page, base: str) -> None:
        self.host = urlsplit(base).hostname
        self.errors: list[str] = []
        self.requests: list[str] = []
        page.on("console", lambda m: self.errors.append(f"console {m.type}: {m.text}")
                if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("requestfailed", lambda r: None if _stream_closed(r.url, r.failure)
                else self.errors.append(f"failed: {r.url} {r.failure}"))
        page.on("response", lambda r: self.errors.append(f"HTTP {r.status}: {r.url}")
                if r.status >= 400 else None)

    def assert_clean(self) -> None:
        assert not self.errors, self.errors
        foreign = [u for u in self.requests
                   if urlsplit(u).scheme in ("http", "https") and urlsplit(u).hostname != self.host]
        assert not foreign, f"requests left the server: {foreign}"
        assert self.requests

    def last(self, path: str) -> dict[str, str]:
        """The query of the last request to PATH."""
        url = [u for u in self.requests if urlsplit(u).path == path][-1]
        return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def set_view(page: Page, lat: float, lon: float, zoom: float) -> None:
    before = idle_mark(page)
    page.evaluate(f"void GeoIOC.state.map.setView([{lat}, {lon}], {zoom}, {{animate: false}})")
    wait_idle(page, before)


def screen_point(page: Page, lat: float, lon: float) -> tuple[float, float]:
    """Where lat/lon is on the screen (to click there as a person would)."""
    x, y = page.evaluate(
        f"(() => {{ const m = GeoIOC.state.map; const p = m.latLngToContainerPoint([{lat}, {lon}]);"
        " const r = m.getContainer().getBoundingClientRect(); return [r.left + p.x, r.top + p.y]; })()")
    return x, y


def sign_in(page: Page, username: str) -> None:
    """Sign in from the map's top bar, as a person does, and wait for the layers to follow."""
    from conftest import PASSWORD  # the test users' password (tests/ is on sys.path under pytest)

    before = idle_mark(page)
    page.click("#gi-signin-open")
    page.fill("#gi-username", username)
    page.fill("#gi-password", PASSWORD)
    page.click("#gi-signin-form button[type=submit]")
    page.wait_for_selector("#gi-signout:not([hidden])", timeout=TIMEOUT)
    wait_idle(page, before)
