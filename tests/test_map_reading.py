"""The map as an operator reads it, in a real headless Chromium against the real server, at
1366x768 and on a phone, in Vietnamese and English: a click on a road identifies the road; the
detail panel names what codes stand for (an incident's commune, a zone's land-use type, a
camera's and a station's status); the custom date range fits the screen; every layer drawn has
a legend that lists the colours it is drawn in; the layer list counts what the database holds
in view; names on the map thin out by priority and point symbols cluster instead of piling up.

Like tests/test_map_browser.py, every page must log no console error and no failed request, and
no request may leave the server.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qs, urlsplit

import pytest
from chromium import TIMEOUT, Watch, idle_mark, screen_point, set_view, sign_in, wait_idle
from playwright.sync_api import Browser, Page
from test_map_counts import sql_count

pytestmark = pytest.mark.slow  # a real Chromium: outside the fast inner loop

SCREENS = {
    "desktop": {"viewport": {"width": 1366, "height": 768}},
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
              "device_scale_factor": 2},
}
# The dense heart of the sample province (facilities, incidents, cameras, parcels).
CENTRE = (21.18, 106.07)


@contextmanager
def map_page(browser: Browser, base: str, screen: str, lang: str,
             user: str | None = None) -> Iterator[tuple[Page, Watch]]:
    context = browser.new_context(**SCREENS[screen], locale="vi-VN" if lang == "vi" else "en-GB",
                                  timezone_id="Asia/Ho_Chi_Minh")
    page = context.new_page()
    watch = Watch(page, base)
    page.goto(f"{base}/?lang={lang}")
    page.wait_for_selector("body[data-rendered=true]", state="attached", timeout=TIMEOUT)
    try:
        if user:
            sign_in(page, user)
        yield page, watch
        watch.assert_clean()
    finally:
        context.close()


def open_panel(page: Page, screen: str) -> None:
    """On a phone the layer panel opens from its button; on a desktop it is always there."""
    if screen == "phone" and page.is_hidden("#gi-panel"):
        page.click("#gi-panel-toggle")
    page.wait_for_selector("#gi-panel", state="visible")


def close_panel(page: Page, screen: str) -> None:
    if screen == "phone" and page.is_visible("#gi-panel"):
        page.click("#gi-panel-toggle")


def toggle(page: Page, screen: str, layer: str, on: bool) -> None:
    open_panel(page, screen)
    box = page.locator(f"[data-layer-toggle={layer}]")
    if box.is_checked() != on:
        mark = idle_mark(page)
        box.click()
        wait_idle(page, mark)
    close_panel(page, screen)


def click_at(page: Page, lat: float, lon: float, dx: float = 0, dy: float = 0) -> None:
    x, y = screen_point(page, lat, lon)
    page.mouse.click(x + dx, y + dy)


def details(page: Page, selector: str) -> str:
    page.wait_for_selector(f"#gi-details {selector}", timeout=TIMEOUT)
    return page.inner_text(f"#gi-details {selector}")


BOTH = [("desktop", "vi"), ("desktop", "en"), ("phone", "vi"), ("phone", "en")]


# --- identify ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lone_road(conn) -> tuple[str, str, float, float]:
    """A provincial road's name, class, and a point on it with no facility, tourism place or
    station within 60 m (the click is about the road, nothing else)."""
    row = conn.execute(
        "SELECT name, road_class, ST_X(p), ST_Y(p) FROM (SELECT name, road_class, id,"
        " ST_LineInterpolatePoint(geom, 0.5) AS p FROM roads WHERE road_class IN ('primary', 'trunk')"
        " AND ST_NumGeometries(geom) = 1) r WHERE NOT EXISTS (SELECT 1 FROM (SELECT geom FROM"
        " public_facilities UNION ALL SELECT geom FROM tourism_places UNION ALL SELECT geom FROM sensors) o"
        " WHERE ST_DWithin(o.geom::geography, r.p::geography, 60))"
        " AND NOT EXISTS (SELECT 1 FROM roads o WHERE o.id <> r.id AND ST_DWithin(o.geom::geography,"
        " r.p::geography, 40)) ORDER BY id LIMIT 1").fetchone()
    assert row is not None
    return row


@pytest.mark.parametrize(("screen", "lang"), BOTH)
def test_a_click_near_a_road_identifies_it(browser, live_server, lone_road, screen, lang) -> None:
    from layers.catalogue import ROAD_CLASSES

    name, road_class, lon, lat = lone_road
    with map_page(browser, live_server, screen, lang) as (page, watch):
        set_view(page, lat, lon, 16)
        mark = idle_mark(page)
        click_at(page, lat, lon, dx=4)  # a few pixels beside the line
        text = details(page, ".gi-sec-roads")
        wait_idle(page, mark)
        assert name in text
        assert ROAD_CLASSES[road_class][0 if lang == "vi" else 1] in text
        assert not re.search(rf"\b{road_class}\b", text)  # the class in words, not its code
        # the road is the first thing the panel says (topmost layer first), and it is highlighted
        first = page.get_attribute("#gi-details .gi-sec >> nth=0", "class")
        assert "gi-sec-roads" in first
        layers = parse_qs(urlsplit([u for u in watch.requests if "/api/map/identify" in u][-1]).query)
        assert "roads" in layers["layers"][0]
        box = page.locator("#gi-details").bounding_box()
        size = SCREENS[screen]["viewport"]
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= size["width"]


@pytest.fixture
def incident_in_commune(conn) -> Iterator[tuple[int, str, str, float, float]]:
    """A new incident (two hours old) at a point inside a current commune with no other incident
    of the last month within 40 m; removed afterwards."""
    code, name, lon, lat = conn.execute(
        "SELECT code, name, ST_X(p), ST_Y(p) FROM (SELECT code, name, ST_PointOnSurface(geom) AS p"
        " FROM admin_units WHERE level = 'commune' AND valid_to IS NULL ORDER BY code) u"
        " WHERE NOT EXISTS (SELECT 1 FROM incidents j WHERE j.reported_at >= now() - interval '40 days'"
        " AND ST_DWithin(j.geom::geography, u.p::geography, 40)) LIMIT 1").fetchone()
    (incident,) = conn.execute(
        "INSERT INTO incidents (category, severity, status, source, title, commune_code, reported_at, geom)"
        " VALUES ('infrastructure', 2, 'received', 'hotline', 'Kiểm thử: đèn tín hiệu hỏng', %s,"
        " now() - interval '2 hours', ST_SetSRID(ST_MakePoint(%s, %s), 4326)) RETURNING id",
        (code, lon, lat)).fetchone()
    yield incident, code, name, lon, lat
    conn.execute("DELETE FROM incidents WHERE id = %s", (incident,))


def lone_point(conn, table: str, where: str = "TRUE") -> tuple[int, str, str, float, float]:
    """A feature of TABLE with no other point of the point layers within 60 m."""
    row = conn.execute(
        f"SELECT id, code, status, ST_X(geom), ST_Y(geom) FROM {table} t WHERE {where} AND NOT EXISTS"  # noqa: S608
        " (SELECT 1 FROM (SELECT 'public_facilities' AS tab, id, geom FROM public_facilities UNION ALL"
        " SELECT 'tourism_places', id, geom FROM tourism_places UNION ALL SELECT 'sensors', id, geom"
        " FROM sensors UNION ALL SELECT 'cameras', id, geom FROM cameras) o"
        f" WHERE (o.tab, o.id) <> ('{table}', t.id) AND ST_DWithin(o.geom::geography, t.geom::geography, 60))"
        " AND NOT EXISTS (SELECT 1 FROM incidents j WHERE j.reported_at >= now() - interval '40 days'"
        " AND ST_DWithin(j.geom::geography, t.geom::geography, 60)) ORDER BY id LIMIT 1").fetchone()
    assert row is not None, table
    return row


@pytest.mark.parametrize(("screen", "lang"), [("desktop", "vi"), ("desktop", "en"), ("phone", "vi")])
def test_the_panel_names_what_codes_stand_for(browser, live_server, conn, role_keys,
                                              incident_in_commune, screen, lang) -> None:
    from layers.catalogue import STATUS_VALUES

    i = 0 if lang == "vi" else 1
    incident, code, commune, lon, lat = incident_in_commune
    with map_page(browser, live_server, screen, lang, role_keys["operator"]["user"]) as (page, _):
        # an incident: its commune by name, with the code beside it
        set_view(page, lat, lon, 18)
        mark = idle_mark(page)
        page.click(f'[data-incident="{incident}"]')
        text = details(page, ".gi-sec-incident")
        wait_idle(page, mark)
        assert f"{commune} ({code})" in text
        # a planning zone: its land-use type's name beside its code
        zcode, zname_vi, zname_en, zlon, zlat = conn.execute(
            "SELECT z.land_use_code, l.name_vi, l.name_en, ST_X(p), ST_Y(p) FROM (SELECT land_use_code,"
            " ST_PointOnSurface(geom) AS p FROM land_use_zones ORDER BY ST_Area(geom) DESC LIMIT 1) z"
            " JOIN land_use_codes l ON l.code = z.land_use_code").fetchone()
        page.evaluate("GeoIOC.hideDetails()")
        # the incidents off: a cluster of the sample's last weeks may be drawn over that point
        # (the sample's dates follow the day it is loaded, so some days one is)
        toggle(page, screen, "incidents", False)
        set_view(page, zlat, zlon, 14)
        mark = idle_mark(page)
        click_at(page, zlat, zlon)
        text = details(page, ".gi-sec-zone")
        wait_idle(page, mark)
        assert f"{zcode} – {zname_vi if lang == 'vi' else zname_en}" in text
        # a camera and a station: their status in words
        toggle(page, screen, "cameras", True)
        for table, kind in (("cameras", "cameras"), ("sensors", "sensors")):
            fid, fcode, status, plon, plat = lone_point(conn, table)
            page.evaluate("GeoIOC.hideDetails()")
            set_view(page, plat, plon, 17)
            click_at(page, plat, plon)  # drawn from what the map loaded: no request
            text = details(page, f".gi-sec-{kind}")
            assert fcode in text
            badge = page.inner_text(f"#gi-details .gi-sec-{kind} .gi-status-badge")
            assert STATUS_VALUES[status][i] in badge
            assert not re.search(rf"\b{status}\b", text), text  # "online", "offline": never shown
            if table == "sensors":  # the reading against its threshold, as the legend words it
                legend = page.eval_on_selector_all(
                    '[data-layer="sensors"] .gi-legend li[data-legend-value]',
                    "els => els.map(e => e.textContent.trim())")
                assert any(word and word in text for word in legend)


# --- the custom date range ---------------------------------------------------------------------


@pytest.mark.parametrize(("screen", "lang"), BOTH)
def test_custom_date_range_fits_the_screen(browser, live_server, role_keys, screen, lang) -> None:
    size = SCREENS[screen]["viewport"]
    with map_page(browser, live_server, screen, lang, role_keys["operator"]["user"]) as (page, watch):
        open_panel(page, screen)
        mark = idle_mark(page)
        page.select_option("#gi-window", "custom")
        page.wait_for_selector("#gi-custom:not([hidden])")
        panel = page.locator("#gi-panel").bounding_box()
        assert panel and panel["x"] >= 0 and panel["x"] + panel["width"] <= size["width"]
        for selector in ("#gi-start", "#gi-end", "#gi-custom label >> nth=0", "#gi-custom label >> nth=1"):
            page.locator(selector).scroll_into_view_if_needed()
            box = page.locator(selector).bounding_box()
            assert box, selector
            assert box["x"] >= 0 and box["y"] >= 0, (selector, box)
            assert box["x"] + box["width"] <= size["width"], (selector, box, size)
            assert box["y"] + box["height"] <= size["height"], (selector, box, size)
            assert box["x"] >= panel["x"] and box["x"] + box["width"] <= panel["x"] + panel["width"] + 0.5
        # and it works: a week in May drives the counts
        page.fill("#gi-start", "2026-05-01T00:00")
        page.fill("#gi-end", "2026-05-08T00:00")
        page.dispatch_event("#gi-end", "change")
        wait_idle(page, mark)
        q = watch.last("/api/incidents/stats")
        start = dt.datetime.fromisoformat(q["start"].replace("Z", "+00:00"))
        end = dt.datetime.fromisoformat(q["end"].replace("Z", "+00:00"))
        assert end - start == dt.timedelta(days=7)
        assert start == dt.datetime(2026, 4, 30, 17, 0, tzinfo=dt.UTC)  # 00:00 in Vietnam


# --- legend --------------------------------------------------------------------------------------


def legend_colors(page: Page, layer: str) -> set[str]:
    return {c.lower() for colors in page.eval_on_selector_all(
        f'[data-layer="{layer}"] .gi-legend li[data-legend-value]', "els => els.map(e => e.dataset.color)")
        for c in colors.split()}


@pytest.mark.parametrize(("screen", "lang"), [("desktop", "vi"), ("phone", "en")])
def test_every_layer_drawn_has_a_legend_of_its_colours(browser, live_server, conn, role_keys, screen,
                                                      lang) -> None:
    # the parcel nearest the centre: parcels are drawn from zoom 15
    plat, plon = conn.execute(
        "SELECT ST_Y(c), ST_X(c) FROM (SELECT ST_PointOnSurface(geom) AS c FROM parcels ORDER BY"
        " geom <-> ST_SetSRID(ST_MakePoint(%s, %s), 4326) LIMIT 1) s", (CENTRE[1], CENTRE[0])).fetchone()
    with map_page(browser, live_server, screen, lang, role_keys["security_officer"]["user"]) as (page, _):
        for layer in ("cameras", "incidents_heatmap"):
            toggle(page, screen, layer, True)
        seen: set[str] = set()
        for lat, lon, zoom in ((CENTRE[0], CENTRE[1], 12), (plat, plon, 15.5)):
            set_view(page, lat, lon, zoom)
            drawn = page.evaluate("GeoIOC.drawn()")
            colors = page.evaluate("GeoIOC.drawnColors()")
            for layer, n in drawn.items():
                if not n:
                    continue
                seen.add(layer)
                entries = legend_colors(page, layer)
                assert entries, f"{layer} is drawn but has no legend"
                missing = {c.lower() for c in colors[layer]} - entries
                assert not missing, (layer, missing, entries)
        # every layer of the catalogue the officer reads was drawn at one of the two views
        assert {"admin_units", "land_use_zones", "parcels", "roads", "public_facilities",
                "tourism_places", "sensors", "cameras", "incidents", "incidents_heatmap"} <= seen
        # the stations' legend says what their symbols say: the states, and stale readings
        open_panel(page, screen)
        legend = page.inner_text('[data-layer="sensors"] .gi-legend')
        assert ("24" in legend) and ("Vượt ngưỡng" in legend if lang == "vi" else "Limit breached" in legend)


# --- counts in view --------------------------------------------------------------------------------


def shown_counts(page: Page) -> dict[str, str]:
    return dict(page.eval_on_selector_all(
        "[data-count]", "els => els.map(e => [e.dataset.count, e.textContent])"))


def test_layer_list_counts_are_the_database_counts_in_view(browser, live_server, conn, role_keys) -> None:
    tables = {layer: (layer, "TRUE") for layer in (
        "land_use_zones", "parcels", "roads", "public_facilities", "tourism_places", "sensors")}
    tables["admin_units"] = ("admin_units", "t.valid_to IS NULL")
    with map_page(browser, live_server, "desktop", "vi", role_keys["operator"]["user"]) as (page, watch):
        for zoom in (12, 15.5):
            set_view(page, CENTRE[0], CENTRE[1], zoom)
            bbox = page.evaluate("GeoIOC.countsBBox")
            assert watch.last("/api/map/counts")["bbox"] == bbox
            shown = shown_counts(page)
            drawn = page.evaluate("GeoIOC.drawn()")
            differs = 0
            for layer, (table, extra) in tables.items():
                if layer == "parcels" and zoom < 15:
                    assert shown[layer] == ""  # not drawn below zoom 15: not counted
                    continue
                expected = sql_count(conn, table, bbox, extra)
                assert int(re.sub(r"\D", "", shown[layer]) or 0) == expected, (layer, zoom, shown[layer])
                differs += drawn[layer] != expected
            assert differs  # what tiles and markers hold is not what is in view
            # incidents: the filtered count in view (security events hidden from an operator)
            q = watch.last("/api/incidents/stats")
            assert q["bbox"] == bbox
            start, end = (dt.datetime.fromisoformat(q[k].replace("Z", "+00:00")) for k in ("start", "end"))
            expected = sql_count(conn, "incidents", bbox, "t.category <> 'security_event' AND"
                                 f" t.reported_at >= '{start.isoformat()}'"
                                 f" AND t.reported_at < '{end.isoformat()}'")
            assert int(re.sub(r"\D", "", shown["incidents"]) or 0) == expected
        # a layer switched off shows no count
        toggle(page, "desktop", "roads", False)
        assert shown_counts(page)["roads"] == ""


# --- names and symbols at zoom 15 to 17 --------------------------------------------------------------


def overlap(a: dict, b: dict, slack: float = 1.5) -> bool:
    """Whether two screen boxes overlap by more than SLACK pixels (a name's box is placed at a
    point rounded to whole pixels)."""
    return a["x1"] + slack < b["x2"] and b["x1"] + slack < a["x2"] and \
        a["y1"] + slack < b["y2"] and b["y1"] + slack < a["y2"]


@pytest.mark.parametrize(("screen", "lang"), [("desktop", "vi"), ("phone", "en")])
def test_names_thin_out_by_priority_and_points_cluster(browser, live_server, role_keys, screen,
                                                       lang) -> None:
    with map_page(browser, live_server, screen, lang, role_keys["security_officer"]["user"]) as (page, _):
        toggle(page, screen, "cameras", True)
        placed_names = 0
        for zoom in (15, 16, 17):
            set_view(page, CENTRE[0], CENTRE[1], zoom)
            layout = page.evaluate(
                """(() => { const L = GeoIOC.labelLayout;
                    const strip = (l) => ({text: l.text, priority: l.priority, box: l.box,
                                           tried: l.tried || null});
                    return {placed: L.placed.map(strip), dropped: L.dropped.map(strip),
                            obstacles: L.obstacles, size: L.size}; })()""")
            frame = page.evaluate("(() => { const r = GeoIOC.state.map.getContainer()"
                                  ".getBoundingClientRect(); return {x: r.left, y: r.top}; })()")
            # what the browser drew: one box per placed name, none overlapping another
            drawn = [{"x1": r["x"] - frame["x"], "y1": r["y"] - frame["y"],
                      "x2": r["x"] - frame["x"] + r["width"], "y2": r["y"] - frame["y"] + r["height"],
                      "text": r["text"]}
                     for r in page.eval_on_selector_all(
                         ".gi-maplabel span", "els => els.map(e => { const b = e.getBoundingClientRect();"
                         " return {x: b.x, y: b.y, width: b.width, height: b.height,"
                         " text: e.textContent}; })")]
            assert sorted(d["text"] for d in drawn) == sorted(p["text"] for p in layout["placed"])
            placed_names += len(drawn)
            for i, a in enumerate(drawn):
                for b in drawn[i + 1:]:
                    assert not overlap(a, b), (zoom, a, b)
            # no name over a point symbol or cluster, nor under a panel
            symbols = [b for boxes in page.evaluate("GeoIOC.symbolBoxes()").values() for b in boxes]
            for a in drawn:
                for s in symbols + [o for o in layout["obstacles"] if o.get("panel")]:
                    assert not overlap(a, s), (zoom, a, s)
            # a name left out had no room: each place it could go meets a name placed before it
            # (of higher or equal priority), a symbol, or the edge of the map
            for d in layout["dropped"]:
                for box in d["tried"]:
                    blocked = (box["x1"] < 0 or box["y1"] < 0 or box["x2"] > layout["size"]["x"]
                               or box["y2"] > layout["size"]["y"]
                               or any(overlap(box, o, 0) for o in layout["obstacles"])
                               or any(overlap(box, p["box"], 0) and p["priority"] >= d["priority"]
                                      for p in layout["placed"]))
                    assert blocked, (zoom, d["text"], box)
            # point symbols of one layer never pile up: clusters take the place of overlapping ones
            for layer, boxes in page.evaluate("GeoIOC.symbolBoxes()").items():
                singles = [b for b in boxes if not b["cluster"]]
                for i, a in enumerate(singles):
                    for b in singles[i + 1:]:
                        assert not overlap(a, b, 1), (zoom, layer, a, b)
        assert placed_names > 0
