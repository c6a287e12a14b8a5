"""Time to first full render of the command map, measured in headless Chromium.

    .venv/bin/python bench/map_render.py              # 1 cold + 5 warm runs per profile, README updated
    .venv/bin/python bench/map_render.py --runs 10 --no-readme

"First full render" is the page's own performance mark `geoioc:first-render`, set by
web/static/map/app.js when, after the layer manifest is applied, no tile, GeoJSON or API request
is pending and two animation frames have passed since the last one was drawn; it is measured from
navigation start. Each run uses a fresh browser context (empty HTTP cache). The server is started
by this script (`geoioc serve`, anonymous rate limit off); its first page load also fills its
60-second in-process tile cache, so the first run is reported apart ("cold server") from the
others ("warm server"). Profiles: an anonymous visitor (public layers) and a signed-in operator
(plus cameras off by default, incidents clustered; the session is put into sessionStorage as the
sign-in form would).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import time

import httpx
from map_server import DEFAULT_DB, serve, temp_user, write_section
from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]
VIEWPORT = {"width": 1440, "height": 900}
HEADER = ("| profile | cold server (ms) | warm p50 (ms) | warm min–max (ms) | DOMContentLoaded (ms) "
          "| requests | KB transferred | features drawn |\n" + "|---" * 8 + "|")

MEASURE = """(() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const res = performance.getEntriesByType('resource');
  return {
    first_render: performance.getEntriesByName('geoioc:first-render')[0].startTime,
    dom_content_loaded: nav.domContentLoadedEventEnd,
    requests: res.length + 1,
    bytes: res.reduce((n, e) => n + (e.transferSize || 0), nav.transferSize || 0),
    tiles: res.filter(e => e.name.includes('/tiles/WebMercatorQuad/')).length,
    drawn: GeoIOC.drawn(),
  };
})()"""


def one_run(browser, url: str, session: dict | None) -> dict:
    context = browser.new_context(viewport=VIEWPORT, locale="vi-VN")
    if session is not None:
        context.add_init_script(
            f"sessionStorage.setItem('geoioc.session', {json.dumps(json.dumps(session))});")
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    t0 = time.perf_counter()
    page.goto(url + "/")
    page.wait_for_selector("body[data-rendered=true]", state="attached", timeout=60_000)
    wall = (time.perf_counter() - t0) * 1000
    result = page.evaluate(MEASURE)
    result["wall_ms"] = wall
    result["errors"] = errors
    context.close()
    return result


def session_for(url: str, username: str, password: str) -> dict:
    r = httpx.post(url + "/api/auth/token", data={"username": username, "password": password})
    r.raise_for_status()
    body = r.json()
    return {"access_token": body["access_token"], "refresh_token": body["refresh_token"],
            "expires_at": time.time() + body["expires_in"], "user": body["user"],
            "roles": body["roles"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="warm runs per profile (default 5)")
    ap.add_argument("--database", default=DEFAULT_DB)
    ap.add_argument("--no-readme", action="store_true")
    args = ap.parse_args()
    rows = []
    with serve(args.database) as url, temp_user(args.database, "operator") as (name, password, _), \
            sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        for profile in ("anonymous", "operator"):
            runs = []
            for _ in range(args.runs + 1):
                session = session_for(url, name, password) if profile == "operator" else None
                runs.append(one_run(browser, url, session))
            for r in runs:
                if r["errors"]:
                    raise SystemExit(f"{profile}: the page had errors: {r['errors'][:5]}")
            cold, warm = runs[0], runs[1:]
            first = [r["first_render"] for r in warm]
            row = {
                "profile": profile,
                "cold": cold["first_render"],
                "p50": statistics.median(first),
                "min": min(first),
                "max": max(first),
                "dcl": statistics.median(r["dom_content_loaded"] for r in warm),
                "requests": warm[-1]["requests"],
                "tiles": warm[-1]["tiles"],
                "kb": warm[-1]["bytes"] / 1024,
                "features": sum(warm[-1]["drawn"].values()),
            }
            rows.append(row)
            print(f"{profile:10} cold {row['cold']:7.0f} ms | warm p50 {row['p50']:6.0f} ms "
                  f"(min {row['min']:.0f}, max {row['max']:.0f}) | DOMContentLoaded {row['dcl']:.0f} ms"
                  f" | {row['requests']} requests ({row['tiles']} tiles), {row['kb']:.0f} KB"
                  f" | {row['features']} features drawn")
        browser.close()
    if args.no_readme:
        return
    table = "\n".join(
        f"| {r['profile']} | {r['cold']:.0f} | **{r['p50']:.0f}** | {r['min']:.0f}–{r['max']:.0f} | "
        f"{r['dcl']:.0f} | {r['requests']} ({r['tiles']} tiles) | {r['kb']:.0f} | {r['features']:,} |"
        for r in rows)
    write_section("map-render", f"""### `bench/map_render.py`: time to first full render

Headless Chromium {_chromium_version()}, viewport {VIEWPORT['width']}×{VIEWPORT['height']}, the
default sample (`{args.database.rsplit('/', 1)[-1]}`), {platform.machine()} with {_cpus()} CPUs,
{dt.date.today().isoformat()}. Navigation start → the page's `geoioc:first-render` mark (every
initial tile, GeoJSON layer and API answer drawn). Fresh browser context (empty cache) per run;
"cold server" is the first page load after start-up (empty tile cache), p50 over {args.runs} further
loads.

{HEADER}
{table}

Nothing is embedded in the page but the public layer manifest; every feature drawn came over
the API (vector tiles for areas and lines, bbox GeoJSON for a few hundred points, incidents as
server-side clusters or points).""")


def _chromium_version() -> str:
    import subprocess

    out = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True).stdout
    return out.split()[1] if len(out.split()) > 1 else "?"


def _cpus() -> int:
    import os

    return os.cpu_count() or 0


if __name__ == "__main__":
    main()
