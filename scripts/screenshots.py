"""Screenshots for the README (docs/screenshots/*.png), from the sample province, in Vietnamese
and English: the map as a visitor opens it, the map of an operator at zoom 17 with a parcel
identified, a parcel's page and its cadastral extract.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots]

It starts `geoioc serve` on a free port against GEOIOC_DATABASE_URL (the database `make run`
prepared: migrated, sample loaded; nothing in it is changed but one throw-away user, removed at
the end), drives Debian's Chromium (/usr/bin/chromium) headless at 1366x768 with the page clock
set to 10:00 (Vietnam) on the sample's as-of day, and writes 256-colour PNGs (a few hundred
KB each). The same sample (seed, as-of day) gives the same pictures, up to the anti-aliasing of
a few translucent edges; what still follows the real clock is the server's: a station's reading
turns stale 24 hours after the sample's day, and the extract carries the day it is issued.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))  # map_server: `geoioc serve` on a free port, as the benches run it

import psycopg  # noqa: E402
from map_server import serve  # noqa: E402
from PIL import Image  # noqa: E402
from playwright.sync_api import Page, sync_playwright  # noqa: E402

from gis.auth import users  # noqa: E402
from gis.settings import get_settings  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync", "--hide-scrollbars",
        "--font-render-hinting=none"]
VIEWPORT = {"width": 1366, "height": 768}
TIMEOUT = 30_000
VIETNAM = dt.timezone(dt.timedelta(hours=7))
# Every layer, and no personal data (land users are for land officers): fit for a README.
ROLES = ["security_officer"]


@contextmanager
def temporary_user(conn: psycopg.Connection) -> Iterator[tuple[str, str]]:
    name = "screenshots"  # shown in the top bar: the same name every time
    password = secrets.token_urlsafe(18)
    conn.execute("DELETE FROM users WHERE username = %s", (name,))
    users.add_user(conn, name, password, roles=ROLES)
    try:
        yield name, password
    finally:
        conn.execute("DELETE FROM users WHERE username = %s", (name,))


def save(png: bytes, path: Path) -> None:
    """A 256-colour PNG: the map's flat colours survive, the file is a third of the size."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        path, optimize=True)
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    print(f"{shown}: {path.stat().st_size // 1024} KB")


def wait_idle(page: Page, before: str) -> None:
    page.wait_for_selector(f'body[data-busy="0"]:not([data-idle="{before}"])', state="attached",
                           timeout=TIMEOUT)


def settle(page: Page) -> None:
    page.evaluate("document.fonts.ready")
    page.wait_for_timeout(1200)


def set_view(page: Page, lat: float, lon: float, zoom: float) -> None:
    before = page.get_attribute("body", "data-idle") or ""
    page.evaluate(f"void GeoIOC.state.map.setView([{lat}, {lon}], {zoom}, {{animate: false}})")
    wait_idle(page, before)


def picks(conn: psycopg.Connection) -> dict[str, object]:
    """What the pictures show, chosen from the data the same way every time."""
    (as_of,) = conn.execute("SELECT as_of FROM sample_info").fetchone() or (None,)
    if as_of is None:
        raise SystemExit("no sample in this database: `make run` (or `geoioc sample load`) first")
    # A town plot of the usual size, in the densest part of the province (parcels, facilities,
    # incidents and cameras around it).
    parcel, lon, lat = conn.execute(
        "SELECT id, ST_X(p), ST_Y(p) FROM (SELECT id, legal_area, land_use_codes,"
        " ST_PointOnSurface(geom) AS p FROM parcels) q ORDER BY 'ODT' <> ALL(land_use_codes),"
        " (SELECT count(*) FROM public_facilities f WHERE ST_DWithin(f.geom::geography, q.p::geography,"
        " 400)) DESC, abs(legal_area - 150), id LIMIT 1").fetchone()
    return {"as_of": as_of, "parcel": parcel, "point": (lon, lat)}


def shoot(base: str, out: Path, chosen: dict[str, object], user: tuple[str, str]) -> None:
    as_of: dt.date = chosen["as_of"]  # type: ignore[assignment]
    clock = dt.datetime.combine(as_of, dt.time(10), VIETNAM)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            for lang in ("vi", "en"):
                context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1,
                                              locale="vi-VN" if lang == "vi" else "en-GB",
                                              timezone_id="Asia/Ho_Chi_Minh")
                page = context.new_page()
                page.clock.set_system_time(clock)
                # The map as a visitor opens it.
                page.goto(f"{base}/?lang={lang}")
                page.wait_for_selector("body[data-rendered=true]", state="attached", timeout=TIMEOUT)
                settle(page)
                save(page.screenshot(animations="disabled"), out / f"map-overview-{lang}.png")
                # An operator at zoom 17: names, clusters, counts in view, a parcel identified.
                before = page.get_attribute("body", "data-idle") or ""
                page.click("#gi-signin-open")
                page.fill("#gi-username", user[0])
                page.fill("#gi-password", user[1])
                page.click("#gi-signin-form button[type=submit]")
                page.wait_for_selector("#gi-signout:not([hidden])", timeout=TIMEOUT)
                wait_idle(page, before)
                lon, lat = chosen["point"]  # type: ignore[misc]
                page.check("[data-layer-toggle=cameras]")
                set_view(page, lat, lon, 17)
                x, y = page.evaluate(
                    f"(() => {{ const m = GeoIOC.state.map; const p = m.latLngToContainerPoint([{lat},"
                    f" {lon}]); const r = m.getContainer().getBoundingClientRect();"
                    " return [r.left + p.x, r.top + p.y]; })()")
                before = page.get_attribute("body", "data-idle") or ""
                page.mouse.click(x, y)
                page.wait_for_selector("#gi-details .gi-sec", timeout=TIMEOUT)
                wait_idle(page, before)
                page.evaluate("document.getElementById('gi-panel').scrollTop ="
                              " document.querySelector('[data-layer=land_use_zones]').offsetTop - 60")
                page.mouse.move(VIEWPORT["width"] - 400, 300)
                settle(page)
                save(page.screenshot(animations="disabled"), out / f"map-operator-{lang}.png")
                context.close()
                # A parcel's page and its extract, as a visitor sees them (no personal data); the
                # extract at 1.5 pixels per CSS pixel, for its small map lettering.
                context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1.5,
                                              locale="vi-VN" if lang == "vi" else "en-GB",
                                              timezone_id="Asia/Ho_Chi_Minh")
                page = context.new_page()
                page.clock.set_system_time(clock)
                page.goto(f"{base}/parcels/{chosen['parcel']}?lang={lang}")
                page.wait_for_load_state("networkidle")
                settle(page)
                save(page.screenshot(scale="css", animations="disabled"), out / f"parcel-{lang}.png")
                page.goto(f"{base}/parcels/{chosen['parcel']}/extract.html?lang={lang}")
                page.wait_for_load_state("networkidle")
                settle(page)
                body = page.locator("body").bounding_box()
                svg = page.locator("svg.extract-map").bounding_box()
                assert body and svg
                clip = {"x": max(0, body["x"] - 16), "y": 0, "width": body["width"] + 32,
                        "height": svg["y"] + svg["height"] + 6}
                save(page.screenshot(clip=clip, full_page=True, animations="disabled"),
                     out / f"extract-{lang}.png")
                context.close()
        finally:
            browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots",
                        help="folder for the PNGs (default docs/screenshots)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    db_url = get_settings().database_url
    with psycopg.connect(db_url, autocommit=True) as conn:
        chosen = picks(conn)
        print(f"sample of {chosen['as_of']}, browser clock set to 10:00 (Vietnam) that day")
        with temporary_user(conn) as user, serve(db_url) as base:
            shoot(base, args.out.resolve(), chosen, user)


if __name__ == "__main__":
    main()
