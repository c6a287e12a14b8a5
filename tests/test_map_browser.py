"""The command map in a real headless Chromium against the real server (`live_server`).

What the tests look at is what the browser drew: features counted in the loaded vector tiles
and markers (GeoIOC.drawn()), painted pixels of the tile canvases, the text of the panels. Every
test also asserts that the page logged no console error, no request failed or got an error
status, and no request left 127.0.0.1 (requests are only observed, never blocked, so an
external fetch would have gone out and been caught here).

Screenshots of the main views go to $GEOIOC_SCREENSHOTS when set (the README's come from
`GEOIOC_SCREENSHOTS=docs/screenshots`), else to a temporary folder.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from chromium import TIMEOUT, Watch, idle_mark, screen_point, set_view, sign_in, wait_idle
from playwright.sync_api import BrowserContext, Page

from gis.analysis.search import fold

pytestmark = pytest.mark.slow  # a real Chromium: outside the fast inner loop



@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    target = os.environ.get("GEOIOC_SCREENSHOTS")
    path = Path(target) if target else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def map_page(context: BrowserContext, base: str, path: str = "/") -> Iterator[tuple[Page, Watch]]:
    # Each test starts signed out: sign-in on the map also sets the page-session cookie, which
    # the module's one context would otherwise carry into the next test's tab.
    context.clear_cookies()
    page = context.new_page()
    watch = Watch(page, base)
    page.goto(base + path)
    page.wait_for_selector("body[data-rendered=true]", state="attached", timeout=TIMEOUT)
    try:
        yield page, watch
        watch.assert_clean()
    finally:
        page.close()


def drawn(page: Page) -> dict[str, int]:
    return page.evaluate("GeoIOC.drawn()")


def painted_pixels(page: Page, layer_id: str) -> int:
    """Non-transparent pixels in the canvases of a vector tile layer's pane."""
    return page.evaluate(
        f"""(() => {{
          let n = 0;
          for (const c of document.querySelectorAll('.leaflet-gi-t-{layer_id}-pane canvas')) {{
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
          }}
          return n;
        }})()""")


def number(text: str) -> int:
    return int(re.sub(r"\D", "", text))


# --- tests ----------------------------------------------------------------------------------------


def test_page_loads_offline_with_public_layers_drawn(context, live_server, conn, shots) -> None:
    with map_page(context, live_server) as (page, watch):
        assert page.get_attribute("html", "lang") == "vi"
        assert "Bản đồ điều hành" in page.inner_text("#gi-top")
        counts = drawn(page)
        assert counts["admin_units"] > 100 and counts["land_use_zones"] > 100
        assert counts["roads"] > 100
        assert counts["parcels"] == 0  # drawn from zoom 15 only
        assert counts["tourism_places"] == conn.execute("SELECT count(*) FROM tourism_places"
                                                        ).fetchone()[0]
        assert counts["sensors"] == conn.execute("SELECT count(*) FROM sensors").fetchone()[0]
        assert "incidents" not in counts and "cameras" not in counts
        assert "Thửa đất địa chính" in page.inner_text("#gi-layers")
        tiles = [u for u in watch.requests if "/tiles/WebMercatorQuad/" in u]
        assert tiles and all(u.startswith(live_server) for u in tiles)
        assert not any(u.endswith("/items?limit=10000") for u in watch.requests)
        page.screenshot(path=str(shots / "map-overview.png"))
        # English on the toggle, in place
        page.click("#gi-lang")
        assert page.get_attribute("html", "lang") == "en"
        assert "Cadastral parcels" in page.inner_text("#gi-layers")
        assert "Command map" in page.inner_text("#gi-top")


def test_toggling_a_layer_changes_what_is_drawn(context, live_server) -> None:
    with map_page(context, live_server) as (page, _):
        assert drawn(page)["land_use_zones"] > 0
        assert painted_pixels(page, "land_use_zones") > 10_000
        page.uncheck("[data-layer-toggle=land_use_zones]")
        assert drawn(page)["land_use_zones"] == 0
        assert painted_pixels(page, "land_use_zones") == 0
        before = drawn(page)["tourism_places"]
        page.uncheck("[data-layer-toggle=tourism_places]")
        assert before > 0 and drawn(page)["tourism_places"] == 0
        mark = idle_mark(page)
        page.check("[data-layer-toggle=land_use_zones]")
        wait_idle(page, mark)
        assert drawn(page)["land_use_zones"] > 0 and painted_pixels(page, "land_use_zones") > 10_000
        # the pre-2025 administrative units: a different set of boundaries
        current = drawn(page)["admin_units"]
        mark = idle_mark(page)
        page.click("[data-era='2025-06-30']")
        wait_idle(page, mark)
        assert drawn(page)["admin_units"] not in (0, current)


def test_clicking_a_parcel_shows_its_sheet_and_parcel_numbers(context, live_server, conn,
                                                              shots) -> None:
    pid, sheet, parcel, lon, lat = conn.execute(
        "SELECT id, sheet_no, parcel_no, ST_X(p), ST_Y(p) FROM (SELECT *, ST_PointOnSurface(geom) p"
        " FROM parcels ORDER BY ST_Area(geom) DESC LIMIT 1) s").fetchone()
    with map_page(context, live_server) as (page, _):
        set_view(page, lat, lon, 18)
        assert drawn(page)["parcels"] > 0
        x, y = screen_point(page, lat, lon)
        mark = idle_mark(page)
        page.mouse.click(x, y)
        page.wait_for_selector("#gi-details .gi-sec-parcel", timeout=TIMEOUT)
        wait_idle(page, mark)
        text = page.inner_text("#gi-details .gi-sec-parcel")
        assert f"Tờ {sheet} · Thửa {parcel}" in text
        assert "Người sử dụng đất" not in text  # personal data: not for anonymous visitors
        # The link keeps the page's language (the browser's own would decide otherwise).
        assert page.get_attribute(".gi-parcel-link", "href") == f"/parcels/{pid}?lang=vi"
        assert "Phường" in page.inner_text("#gi-details") or "Xã" in page.inner_text("#gi-details")
        page.screenshot(path=str(shots / "map-parcel.png"))


def test_time_window_drives_heatmap_requests_and_counts(context, live_server, conn, role_keys,
                                                        shots) -> None:
    with map_page(context, live_server) as (page, watch):
        sign_in(page, role_keys["security_officer"]["user"])
        assert drawn(page)["incidents"] > 0
        mark = idle_mark(page)
        page.check("[data-layer-toggle=incidents_heatmap]")
        page.uncheck("[data-layer-toggle=incidents]")
        wait_idle(page, mark)

        def last(path: str) -> dict[str, str]:
            url = [u for u in watch.requests if urlsplit(u).path == path][-1]
            return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}

        def sql_total(q: dict[str, str]) -> int:
            start, end = (dt.datetime.fromisoformat(q[k].replace("Z", "+00:00")) for k in ("start", "end"))
            return conn.execute("SELECT count(*) FROM incidents WHERE reported_at >= %s AND "
                                "reported_at < %s", (start, end)).fetchone()[0]

        heat_30 = last("/api/incidents/density")
        cells_30 = drawn(page)["incidents_heatmap"]
        total_30 = number(page.inner_text("#gi-total"))
        assert cells_30 > 0 and total_30 == sql_total(last("/api/incidents/stats")) > 0
        mark = idle_mark(page)
        page.select_option("#gi-window", "7")
        wait_idle(page, mark)
        heat_7 = last("/api/incidents/density")
        assert heat_7["end"] != heat_30["end"] or heat_7["start"] != heat_30["start"]
        span = (dt.datetime.fromisoformat(heat_7["end"].replace("Z", "+00:00"))
                - dt.datetime.fromisoformat(heat_7["start"].replace("Z", "+00:00")))
        assert span == dt.timedelta(days=7)
        total_7 = number(page.inner_text("#gi-total"))
        assert total_7 == sql_total(last("/api/incidents/stats")) and total_7 < total_30
        assert drawn(page)["incidents_heatmap"] < cells_30
        page.evaluate("document.getElementById('gi-panel').scrollTop = 0")
        page.screenshot(path=str(shots / "map-filters-heatmap.png"))
        # a category filter narrows the heatmap and the counts too
        mark = idle_mark(page)
        page.click("[data-filter-none=category]")
        page.click("[data-filter=category][data-value=fire]")
        wait_idle(page, mark)
        assert last("/api/incidents/density")["category"] == "fire"
        fire = number(page.inner_text("#gi-total"))
        q = last("/api/incidents/stats")
        assert fire == conn.execute(
            "SELECT count(*) FROM incidents WHERE category = 'fire' AND reported_at >= %s AND "
            "reported_at < %s", tuple(dt.datetime.fromisoformat(q[k].replace("Z", "+00:00"))
                                      for k in ("start", "end"))).fetchone()[0]


@pytest.fixture
def fresh_incident(conn) -> Iterator[tuple[int, float, float]]:
    """An incident of two hours ago where two cameras' views overlap, with no other incident of the
    last month within 25 m: the map shows the 30 days before the browser's clock, whatever the
    sample's as-of date, so the test makes the incident it clicks (and removes it afterwards)."""
    row = conn.execute(
        "SELECT ST_X(p), ST_Y(p) FROM (SELECT a.id AS a, b.id AS b,"
        " ST_PointOnSurface(ST_Intersection(a.fov, b.fov)) AS p FROM cameras a JOIN cameras b"
        " ON a.id < b.id AND ST_Intersects(a.fov, b.fov)"
        " WHERE ST_Area(ST_Intersection(a.fov, b.fov)) > 0) s"
        " WHERE NOT EXISTS (SELECT 1 FROM incidents j WHERE j.reported_at >= now() - interval '31 days'"
        "  AND ST_DWithin(j.geom::geography, s.p::geography, 25))"
        " ORDER BY a, b LIMIT 1").fetchone()
    assert row is not None, "the sample has cameras whose fields of view overlap"
    lon, lat = row
    (incident,) = conn.execute(
        "INSERT INTO incidents (category, severity, status, source, title, reported_at, geom)"
        " VALUES ('traffic_accident', 3, 'received', 'camera', 'Kiểm thử: va chạm trước camera',"
        " now() - interval '2 hours', ST_SetSRID(ST_MakePoint(%s, %s), 4326)) RETURNING id",
        (lon, lat)).fetchone()
    yield incident, lon, lat
    conn.execute("DELETE FROM incidents WHERE id = %s", (incident,))


def test_clicking_an_incident_lists_covering_cameras_nearest_first(context, live_server, conn, role_keys,
                                                                   fresh_incident, shots) -> None:
    incident, lon, lat = fresh_incident
    expected = [r[0] for r in conn.execute(
        "SELECT c.id FROM cameras c, incidents i WHERE i.id = %s AND ST_Covers(c.fov, i.geom)"
        " ORDER BY ST_Distance(c.geom::geography, i.geom::geography), c.id", (incident,))]
    assert len(expected) >= 2, expected
    with map_page(context, live_server) as (page, _):
        sign_in(page, role_keys["operator"]["user"])
        set_view(page, lat, lon, 18)
        mark = idle_mark(page)
        page.click(f'[data-incident="{incident}"]')
        page.wait_for_selector("#gi-cameras li", timeout=TIMEOUT)
        wait_idle(page, mark)
        shown = [int(v) for v in page.eval_on_selector_all(
            "#gi-cameras li", "els => els.map(e => e.dataset.camera)")]
        assert shown == expected
        assert "Sự cố" in page.inner_text("#gi-details") or "SỰ CỐ" in page.inner_text("#gi-details")
        set_view(page, lat, lon, 17)
        page.screenshot(path=str(shots / "map-incident-cameras.png"))


def test_clicking_a_commune_shows_incidents_against_the_previous_window(context, live_server, conn,
                                                                        role_keys, shots) -> None:
    code, name, lon, lat = conn.execute(
        "SELECT code, name, ST_X(p), ST_Y(p) FROM (SELECT *, ST_PointOnSurface(geom) p FROM"
        " admin_units WHERE level = 'commune' AND valid_to IS NULL ORDER BY ST_Area(geom) DESC"
        " LIMIT 1) s").fetchone()
    with map_page(context, live_server) as (page, watch):
        sign_in(page, role_keys["operator"]["user"])
        for layer in ("incidents", "tourism_places", "sensors"):  # nothing to click but the commune
            page.uncheck(f"[data-layer-toggle={layer}]")
        set_view(page, lat, lon, 13)
        mark = idle_mark(page)
        x, y = screen_point(page, lat, lon)
        page.mouse.click(x, y)
        page.wait_for_selector("#gi-commune-stats .gi-bignum", timeout=TIMEOUT)
        wait_idle(page, mark)
        assert name in page.inner_text("#gi-details .gi-sec-commune")
        url = [u for u in watch.requests if "/api/incidents/stats" in u and "commune=" in u][-1]
        q = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        start, end = (dt.datetime.fromisoformat(q[k].replace("Z", "+00:00")) for k in ("start", "end"))
        expected = conn.execute(
            "SELECT count(*) FROM incidents WHERE commune_code = %s AND category <> 'security_event'"
            " AND reported_at >= %s AND reported_at < %s", (code, start, end)).fetchone()[0]
        assert number(page.inner_text("#gi-commune-stats .gi-bignum b")) == expected
        assert page.locator("#gi-commune-stats svg.gi-spark polyline").count() == 2
        page.screenshot(path=str(shots / "map-commune-trend.png"))


def test_search_finds_a_commune_typed_without_diacritics(context, live_server, conn, shots) -> None:
    name = conn.execute("SELECT name FROM admin_units WHERE level = 'commune' AND valid_to IS NULL"
                        " AND name ~ 'Đ' AND name ~ '[ạảãàáâậầấẩẫăắằặẳẵóòọõỏôộổỗồốơờớợởỡ]'"
                        " ORDER BY name LIMIT 1").fetchone()[0]
    typed = fold(name)
    assert typed.isascii()
    with map_page(context, live_server) as (page, _):
        page.fill("#gi-q", typed)
        page.wait_for_selector("#gi-results .gi-hit", timeout=TIMEOUT)
        assert page.inner_text("#gi-results .gi-hit >> nth=0").startswith(name)
        mark = idle_mark(page)
        page.press("#gi-q", "Enter")
        page.wait_for_selector("#gi-details .gi-sec-commune", timeout=TIMEOUT)
        wait_idle(page, mark)
        assert name in page.inner_text("#gi-details .gi-sec-commune")
        # coordinates in VN-2000 (X northing, Y easting) go to the point
        mark = idle_mark(page)
        page.fill("#gi-q", "X=2342986 Y=558990")
        page.press("#gi-q", "Enter")
        page.wait_for_selector("#gi-details .gi-sec >> text=VN-2000", timeout=TIMEOUT)
        wait_idle(page, mark)
        center = page.evaluate("GeoIOC.state.map.getCenter()")
        assert abs(center["lat"] - 21.18) < 0.001 and abs(center["lng"] - 106.07) < 0.001
        page.screenshot(path=str(shots / "map-search.png"))


def test_a_new_point_layer_needs_no_script_edit(context, live_server, conn) -> None:
    """Public facilities (a catalogue entry, a migration, a sample generator) show in the layer
    panel with a legend per type, as markers, and in the details of a search or a click near
    one, identified by the server: nothing in the map's JavaScript names the layer."""
    name, lon, lat = conn.execute(
        "SELECT name, ST_X(geom), ST_Y(geom) FROM public_facilities WHERE type = 'hospital'"
        " ORDER BY code LIMIT 1").fetchone()
    for path in (Path(__file__).parents[1] / "web" / "static" / "map").glob("*.js"):
        assert "public_facilities" not in path.read_text()
    with map_page(context, live_server) as (page, watch):
        panel = page.inner_text('[data-layer="public_facilities"]')
        assert "Cơ sở công cộng" in panel and "Bệnh viện" in panel and "Trạm y tế" in panel
        assert page.is_checked("[data-layer-toggle=public_facilities]")
        set_view(page, lat, lon, 15)
        assert drawn(page)["public_facilities"] > 0
        page.fill("#gi-q", fold(name))
        page.wait_for_selector("#gi-results .gi-hit", timeout=TIMEOUT)
        assert page.inner_text("#gi-results .gi-hit >> nth=0").startswith(name)
        mark = idle_mark(page)
        page.press("#gi-q", "Enter")
        page.wait_for_selector("#gi-details .gi-sec-public_facilities", timeout=TIMEOUT)
        wait_idle(page, mark)
        assert name in page.inner_text("#gi-details .gi-sec-public_facilities")
        # a click a few pixels beside the marker asks the server, which finds it
        set_view(page, lat, lon, 17)
        page.evaluate("GeoIOC.hideDetails()")
        x, y = screen_point(page, lat, lon)
        mark = idle_mark(page)
        page.mouse.click(x + 10, y)  # beside the marker (radius 6), within the tolerance (12)
        page.wait_for_selector("#gi-details .gi-sec-public_facilities", timeout=TIMEOUT)
        wait_idle(page, mark)
        assert name in page.inner_text("#gi-details .gi-sec-public_facilities")
        asked = [u for u in watch.requests if "/api/map/identify" in u][-1]
        assert "public_facilities" in parse_qs(urlsplit(asked).query)["layers"][0]
