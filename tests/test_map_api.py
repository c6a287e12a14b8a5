"""The command map's API (/, /api/map/*, /api/incidents/*, /api/search): every figure checked
against SQL on the same database, every endpoint checked against the access rules."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import folium
import pytest
from psycopg import sql
from pyproj import Transformer

from gis.analysis.search import fold, parse_coordinate, parse_parcel
from layers.access import Principal, readable_fields, readable_layers, row_filter
from layers.catalogue import get_layer
from web import map_page

ROLES = ("citizen", "operator", "land_officer", "security_officer")
INCIDENTS = get_layer("incidents")
STATIC = Path(__file__).resolve().parents[1] / "web" / "static"


def who(role: str) -> Principal:
    return Principal() if role == "anonymous" else Principal(f"map-{role}", frozenset({role}))


def sql_count(conn, role: str, start: dt.datetime, end: dt.datetime, where: str = "TRUE",
              params: tuple = ()) -> int:
    restrict = row_filter(INCIDENTS, who(role))
    q = sql.SQL("SELECT count(*) FROM incidents AS t WHERE t.reported_at >= %s AND "
                "t.reported_at < %s AND {} AND {}").format(
        sql.SQL(where), restrict if restrict is not None else sql.SQL("TRUE"))  # noqa: S608
    return conn.execute(q, (start, end, *params)).fetchone()[0]


def iso(t: dt.datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


@pytest.fixture(scope="module")
def latest(conn) -> dt.datetime:
    """The end of the sample's incident record (the sample is generated "as of" a date)."""
    return conn.execute("SELECT date_trunc('day', max(reported_at)) + interval '1 day' FROM incidents"
                        ).fetchone()[0]


# --- the page ------------------------------------------------------------------------------------


def test_page_is_vietnamese_first_and_fetches_nothing_external(client) -> None:
    from test_offline_assets import external_fetches  # tests/ is on sys.path under pytest

    vi = client.get("/")
    en = client.get("/?lang=en", headers={"Accept-Language": "vi"})
    assert vi.status_code == 200 and '<html lang="vi"' in vi.text and "Bản đồ điều hành" in vi.text
    assert '<html lang="en"' in en.text and "Command map" in en.text
    # the browser's language does not switch the operations centre's map to English
    assert '<html lang="vi"' in client.get("/", headers={"Accept-Language": "en-US"}).text
    for page in (vi.text, en.text):
        assert not external_fetches(page), external_fetches(page)
        refs = re.findall(r'(?:src|href)="/ogc/static/([^"?#]+)"', page)
        assert len(refs) >= 10
        for ref in refs:
            assert (STATIC / ref).is_file(), ref
        # the page inlines the anonymous manifest only: internal layers are not named, but for
        # the paths of the incidents' public counts (small ones hidden) and their entries
        # (whose English words say "incidents": the layer's id is what must not appear)
        public = re.sub(r'"derived_from":\s*"incidents"', "", page)
        assert '"incidents"' not in public and "/ogc/collections/incidents" not in public
        assert "cameras" not in page
        assert "leaflet.js" in page and "Leaflet.VectorGrid.bundled.min.js" in page


def test_folium_assets_point_at_vendored_copies() -> None:
    from folium.plugins import HeatMap, MarkerCluster, VectorGridProtobuf

    for cls in (folium.Map, HeatMap, MarkerCluster, VectorGridProtobuf):
        for _, url in map_page.localize(list(cls.default_js) + list(cls.default_css)):
            assert url.startswith("/ogc/static/vendor/")
            assert (STATIC / url.removeprefix("/ogc/static/")).is_file(), url
    with pytest.raises(map_page.AssetNotVendored):
        map_page.localize([("font_from_cdn", "https://cdn.example.com/font.css")])


# --- the manifest --------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["anonymous", *ROLES])
def test_manifest_lists_exactly_the_readable_layers_and_fields(client, keys, role) -> None:
    body = client.get("/api/map/layers", headers=keys[role]).json()
    # Layers the map leaves out (map_kind "none": the indicators' table of values) are not listed.
    readable = {layer.id: layer for layer in readable_layers(who(role)) if layer.map_kind != "none"}
    ids = [e["id"] for e in body["layers"]]
    # Who may not read incidents still sees their public counts (small ones hidden, the note
    # saying so): the density and the commune choropleths, not the hot spots.
    public = {"incidents_heatmap", "incident_rates", "incident_change", "incident_grid",
              "incident_change_grid"}
    expected = set(readable) | (public | {"incident_hotspots", "incident_emerging"}
                                if "incidents" in readable else public)
    assert set(ids) == expected
    for entry in body["layers"]:
        if "incidents" not in readable and entry.get("derived_from") == "incidents":
            assert entry["suppression"]["min_count"] == 3
            assert "dưới 3 sự cố" in entry["suppression"]["note"]["vi"]
            assert "dưới 3 sự cố" in entry["description"]["vi"]
        else:
            assert "suppression" not in entry
    for entry in body["layers"]:
        if entry["id"] in readable:
            fields = {f.name for f in readable_fields(readable[entry["id"]], who(role))}
            assert {f["name"] for f in entry["fields"]} == fields
    # Nothing names a hidden layer but the public counts' own entries (their API paths).
    text = str([e for e in body["layers"] if "suppression" not in e])
    for layer_id in {"incidents", "cameras"} - set(readable):
        assert layer_id not in text
    if "incidents" in readable:
        categories = {c["value"] for c in next(e for e in body["layers"]
                                               if e["id"] == "incidents")["filters"]["category"]}
        assert ("security_event" in categories) == (role == "security_officer")


def test_manifest_styles_and_legends_come_from_the_catalogue(client, conn) -> None:
    body = client.get("/api/map/layers").json()
    zones = next(e for e in body["layers"] if e["id"] == "land_use_zones")
    colors = dict(conn.execute("SELECT code, color FROM land_use_codes").fetchall())
    in_use = {r[0] for r in conn.execute("SELECT DISTINCT land_use_code FROM land_use_zones")}
    assert {e["value"] for e in zones["legend"]} == in_use
    for e in zones["legend"]:
        assert e["color"] == colors[e["value"]] and e["label"]["vi"].startswith(e["value"])
    roads = next(e for e in body["layers"] if e["id"] == "roads")
    assert roads["style"]["palette"] == dict(get_layer("roads").style.palette)
    assert roads["source"] == "/ogc/collections/roads/tiles/WebMercatorQuad/{z}/{y}/{x}"
    parcels = next(e for e in body["layers"] if e["id"] == "parcels")
    assert parcels["min_zoom"] == 15
    admin = next(e for e in body["layers"] if e["id"] == "admin_units")
    assert [era["as_of"] for era in admin["eras"]] == [None, "2025-06-30"]
    assert [d["id"] for d in body["domains"]][:2] == ["admin", "land"]


def test_grid_overlays_are_listed_with_the_api_colours(client, keys) -> None:
    """Grid counts and change per cell are map overlays of the incidents' aggregates (for the
    public too, small counts hidden), drawn with the colours the API's legends use."""
    from api.routes.incident_density import CHANGE_COLORS
    from gis.analysis.density import RAMP
    from web.manifest import CHANGE_RAMP, HEATMAP_RAMP

    assert CHANGE_RAMP == tuple(CHANGE_COLORS) and HEATMAP_RAMP == tuple(RAMP)
    for role in ("anonymous", "operator"):
        layers = {e["id"]: e for e in client.get("/api/map/layers", headers=keys[role]).json()["layers"]}
        grid, change = layers["incident_grid"], layers["incident_change_grid"]
        assert grid["source"] == "/api/incidents/grid" and grid["kind"] == "choropleth"
        assert change["source"] == "/api/incidents/change" and change["params"]["by"] == "grid"
        assert grid["legend"][0]["gradient"] == list(HEATMAP_RAMP)
        assert change["legend"][0]["gradient"] == list(CHANGE_COLORS)
        assert grid["title"]["vi"].startswith("Số sự cố theo ô lưới")
        assert ("suppression" in grid) == (role == "anonymous")
        for entry in (grid, change):  # the overlays' own parameters are valid API calls
            r = client.get(entry["source"], headers=keys[role], params=entry["params"])
            assert r.status_code == 200, r.text
            assert r.json()["features"], entry["id"]


# --- access --------------------------------------------------------------------------------------


# The heatmap and the statistics are public aggregates with small counts suppressed
# (tests/test_suppression.py); single incidents are not.
@pytest.mark.parametrize("path", ["/api/incidents/points", "/api/incidents/1/cameras",
                                  "/api/map/cameras"])
@pytest.mark.parametrize("role", ["anonymous", "citizen"])
def test_internal_views_are_404_for_those_who_may_not_read(client, keys, path, role) -> None:
    r = client.get(path, headers=keys[role])
    assert r.status_code == 404
    # problem+json's `instance` echoes the path the client sent; nothing else may name the layer
    text = str({k: v for k, v in r.json().items() if k != "instance"})
    assert "incident" not in text and "camera" not in text


# --- heatmap ------------------------------------------------------------------------------------

CASES = [
    ({}, "TRUE", ()),
    ({"category": "traffic_accident,fire"}, "t.category = ANY(%s)", (["traffic_accident", "fire"],)),
    ({"severity": "3,4", "status": "received,assigned,in_progress"},
     "t.severity = ANY(%s) AND t.status = ANY(%s)", ([3, 4], ["received", "assigned", "in_progress"])),
    ({"bbox": "106.0,21.1,106.15,21.2"},
     "t.geom && ST_MakeEnvelope(106.0, 21.1, 106.15, 21.2, 4326)", ()),
]


@pytest.mark.parametrize("days", [7, 90])
@pytest.mark.parametrize("params, where, args", CASES)
@pytest.mark.parametrize("role", ["operator", "security_officer"])
def test_heatmap_cells_sum_to_the_sql_count(client, conn, keys, latest, role, days, params, where,
                                            args) -> None:
    start = latest - dt.timedelta(days=days)
    r = client.get("/api/incidents/heatmap", headers=keys[role],
                   params={"start": iso(start), "end": iso(latest), "z": 12, **params})
    assert r.status_code == 200, r.text
    body = r.json()
    expected = sql_count(conn, role, start, latest, where, args)
    assert expected > 0
    assert sum(w for _, _, w in body["cells"]) == body["total"] == expected
    assert body["max"] == max(w for _, _, w in body["cells"])
    assert len(body["cells"]) <= expected
    for lat, lon, _ in body["cells"]:
        assert 20.5 < lat < 21.7 and 105.5 < lon < 106.7


def test_heatmap_is_cells_not_points_at_province_zoom(client, conn, keys, latest) -> None:
    start = latest - dt.timedelta(days=365)
    body = client.get("/api/incidents/heatmap", headers=keys["operator"],
                      params={"start": iso(start), "end": iso(latest), "z": 10}).json()
    assert body["total"] == sql_count(conn, "operator", start, latest) > 10_000
    assert len(body["cells"]) < body["total"] / 5
    assert 1000 < body["cell_m"] < 1300  # 8 screen pixels at zoom 10


def test_operator_heatmap_leaves_out_security_events(client, conn, keys, latest) -> None:
    start = latest - dt.timedelta(days=365)
    params = {"start": iso(start), "end": iso(latest), "z": 11}
    op = client.get("/api/incidents/heatmap", headers=keys["operator"], params=params).json()
    sec = client.get("/api/incidents/heatmap", headers=keys["security_officer"], params=params).json()
    events = sql_count(conn, "security_officer", start, latest, "t.category = 'security_event'")
    assert events > 0
    assert sec["total"] - op["total"] == events
    only = {**params, "category": "security_event"}
    assert client.get("/api/incidents/heatmap", headers=keys["operator"], params=only).json()["total"] == 0
    assert client.get("/api/incidents/heatmap", headers=keys["security_officer"],
                      params=only).json()["total"] == events
    stats = client.get("/api/incidents/stats", headers=keys["operator"], params=params).json()
    assert "security_event" not in stats["current"]["by_category"]


def test_heatmap_reads_with_restricted_rows_are_audited(client, conn, keys, latest) -> None:
    def count() -> int:
        return conn.execute("SELECT count(*) FROM audit_log WHERE action = 'read' AND layer = "
                            "'incidents' AND path = '/api/incidents/heatmap'").fetchone()[0]

    before = count()
    client.get("/api/incidents/heatmap", headers=keys["operator"])
    assert count() == before
    client.get("/api/incidents/heatmap", headers=keys["security_officer"])
    assert count() == before + 1


# --- clustered points ----------------------------------------------------------------------------


def test_points_or_server_clusters_match_sql(client, conn, keys, latest) -> None:
    small = {"start": iso(latest - dt.timedelta(days=7)), "end": iso(latest), "z": 14,
             "bbox": "106.0,21.1,106.15,21.2"}
    body = client.get("/api/incidents/points", headers=keys["operator"], params=small).json()
    expected = sql_count(conn, "operator", latest - dt.timedelta(days=7), latest,
                         "t.geom && ST_MakeEnvelope(106.0, 21.1, 106.15, 21.2, 4326)")
    assert body["mode"] == "points" and len(body["points"]) == body["total"] == expected
    ids = [p[0] for p in body["points"]]
    rows = dict((r[0], r[1:]) for r in conn.execute(
        "SELECT id, category, severity, status FROM incidents WHERE id = ANY(%s)", (ids,)))
    for pid, _, _, category, severity, status in body["points"]:
        assert rows[pid] == (category, severity, status)
    big = {"start": iso(latest - dt.timedelta(days=720)), "end": iso(latest), "z": 10}
    body = client.get("/api/incidents/points", headers=keys["security_officer"], params=big).json()
    expected = sql_count(conn, "security_officer", latest - dt.timedelta(days=720), latest)
    assert body["mode"] == "clusters" and expected > 4000
    assert sum(c[2] for c in body["clusters"]) == body["total"] == expected
    assert len(body["clusters"]) < 500


# --- stats ---------------------------------------------------------------------------------------


def test_stats_against_sql_with_previous_window(client, conn, keys, latest) -> None:
    start = latest - dt.timedelta(days=30)
    prev = start - dt.timedelta(days=30)
    params = {"start": iso(start), "end": iso(latest), "severity": "2,3,4"}
    body = client.get("/api/incidents/stats", headers=keys["operator"], params=params).json()
    restrict = "t.category <> 'security_event' AND t.severity = ANY(%s)"

    def by_category(a: dt.datetime, b: dt.datetime) -> dict[str, int]:
        return dict(conn.execute(
            "SELECT category, count(*) FROM incidents AS t WHERE reported_at >= %s AND "  # noqa: S608
            f"reported_at < %s AND {restrict} GROUP BY 1", (a, b, [2, 3, 4])).fetchall())

    assert body["current"]["by_category"] == by_category(start, latest)
    assert body["previous"]["by_category"] == by_category(prev, start)
    cur, old = body["current"]["total"], body["previous"]["total"]
    assert cur == sum(by_category(start, latest).values()) and old > 0
    assert body["change"] == pytest.approx((cur - old) / old, abs=1e-4)
    assert sum(body["current"]["series"]) == cur and sum(body["previous"]["series"]) == old
    assert body["bucket_seconds"] == 86400
    # Calendar days, Vietnam time (as the dashboard's): the window starts at 07:00 in Vietnam,
    # so it touches 31 days, the first and last partial.
    vn = "(reported_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date"
    per_day = dict(conn.execute(
        f"SELECT {vn}, count(*) FROM incidents AS t WHERE reported_at >= %s AND "  # noqa: S608
        f"reported_at < %s AND {restrict} GROUP BY 1", (start, latest, [2, 3, 4])).fetchall())
    first = start.astimezone(dt.timezone(dt.timedelta(hours=7))).date()
    days = [first + dt.timedelta(days=i) for i in range(31)]
    assert body["current"]["series"] == [per_day.get(d, 0) for d in days]
    assert body["current"]["series_start"] == iso(dt.datetime.combine(
        first, dt.time(), dt.timezone(dt.timedelta(hours=7))).astimezone(dt.UTC))
    assert sum(body["current"]["by_severity"].values()) == cur
    assert set(body["current"]["by_severity"]) <= {"2", "3", "4"}


def test_stats_for_a_commune_current_and_before_the_reform(client, conn, keys, latest) -> None:
    start = latest - dt.timedelta(days=90)
    # A commune whose code names a unit both now and before the 2025 merge (the merge kept it).
    code = conn.execute(
        "SELECT commune_code FROM incidents WHERE commune_code IN (SELECT a.code FROM admin_units a"
        " JOIN admin_units b ON b.code = a.code AND b.level = 'commune' AND b.valid_to = '2025-07-01'"
        " WHERE a.level = 'commune' AND a.valid_to IS NULL) GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
    ).fetchone()[0]
    params = {"start": iso(start), "end": iso(latest), "commune": code}
    body = client.get("/api/incidents/stats", headers=keys["security_officer"], params=params).json()
    assert body["area"]["code"] == code and body["area"]["valid_to"] is None
    spatial = sql_count(conn, "security_officer", start, latest,
                        "ST_Covers((SELECT geom FROM admin_units WHERE code = %s AND valid_to IS NULL"
                        " AND level = 'commune'), t.geom)", (code,))
    by_code = sql_count(conn, "security_officer", start, latest, "t.commune_code = %s", (code,))
    assert body["current"]["total"] == spatial == by_code > 0
    # the same code before the 2025 merge is a smaller unit: counted inside its own boundary
    old = client.get("/api/incidents/stats", headers=keys["security_officer"],
                     params={**params, "as_of": "2025-06-30"})
    assert old.status_code == 200, old.text
    expected = sql_count(conn, "security_officer", start, latest,
                         "ST_Covers((SELECT geom FROM admin_units WHERE code = %s AND "
                         "valid_to = '2025-07-01' AND level = 'commune'), t.geom)", (code,))
    assert old.json()["current"]["total"] == expected
    assert old.json()["area"]["valid_to"] == "2025-07-01"
    missing = client.get("/api/incidents/stats", headers=keys["operator"],
                         params={**params, "commune": "99999"})
    assert missing.status_code == 404


@pytest.mark.parametrize("params", [
    {"start": "2026-02-01", "end": "2026-01-01"},
    {"category": "alien_landing"},
    {"severity": "9"},
    {"bbox": "1,2,3"},
    {"z": "99"},
    {"start": "yesterday"},
    {"colour": "red"},
])
def test_bad_filters_are_400_naming_the_parameter(client, keys, params) -> None:
    r = client.get("/api/incidents/heatmap", headers=keys["operator"], params=params)
    assert r.status_code == 400
    assert next(iter(params)) in r.json()["detail"]


# --- cameras covering an incident ----------------------------------------------------------------


def test_cameras_covering_an_incident_nearest_first(client, conn, keys) -> None:
    incident = conn.execute(
        "SELECT i.id FROM incidents i JOIN cameras c ON ST_Covers(c.fov, i.geom)"
        " WHERE i.category <> 'security_event' GROUP BY i.id HAVING count(*) >= 2 ORDER BY i.id"
        " LIMIT 1").fetchone()[0]
    expected = conn.execute(
        "SELECT c.id, ST_Distance(c.geom::geography, i.geom::geography) FROM cameras c, incidents i"
        " WHERE i.id = %s AND ST_Covers(c.fov, i.geom) ORDER BY 2, c.id", (incident,)).fetchall()
    for role, streams in (("operator", False), ("security_officer", True)):
        body = client.get(f"/api/incidents/{incident}/cameras", headers=keys[role]).json()
        assert [f["id"] for f in body["features"]] == [r[0] for r in expected]
        for f, (_, d) in zip(body["features"], expected, strict=True):
            assert f["properties"]["distance_m"] == pytest.approx(d, abs=0.1)
            assert f["fov"]["type"] == "Polygon" and f["geometry"]["type"] == "Point"
            assert ("stream_url" in f["properties"]) == streams
    distances = [f["properties"]["distance_m"] for f in body["features"]]
    assert distances == sorted(distances)
    hidden = conn.execute("SELECT id FROM incidents WHERE category = 'security_event' LIMIT 1"
                          ).fetchone()[0]
    assert client.get(f"/api/incidents/{hidden}/cameras", headers=keys["operator"]).status_code == 404
    assert client.get(f"/api/incidents/{hidden}/cameras",
                      headers=keys["security_officer"]).status_code == 200
    assert client.get("/api/incidents/999999999/cameras",
                      headers=keys["operator"]).status_code == 404


# --- search --------------------------------------------------------------------------------------


def _commune_with(conn, pattern: str) -> str:
    return conn.execute("SELECT name FROM admin_units WHERE level = 'commune' AND valid_to IS NULL"
                        " AND name ~ %s ORDER BY name LIMIT 1", (pattern,)).fetchone()[0]


def test_search_finds_communes_without_diacritics(client, conn) -> None:
    name = _commune_with(conn, "[ạảãàáâậầấẩẫăắằặẳẵóòọõỏôộổỗồốơờớợởỡéèẻẹẽêếềệểễúùủũụưựữửừứíìỉĩị]")
    typed = fold(name)
    assert typed != name.lower() and typed.isascii()
    hits = client.get("/api/search", params={"q": typed}).json()["results"]
    assert hits[0]["title"]["vi"] == name and hits[0]["kind"] == "admin_unit"
    assert hits[0]["properties"]["current"] is True and len(hits[0]["bbox"]) == 4
    # without the unit type, and in capitals
    bare = re.sub(r"^(xa|phuong) ", "", typed).upper()
    assert name in [h["title"]["vi"] for h in client.get("/api/search", params={"q": bare}).json()["results"]]


def test_search_folds_d_with_stroke(client, conn) -> None:
    name = _commune_with(conn, "Đ")
    typed = fold(name)
    assert "đ" not in typed and "d" in typed
    titles = [h["title"]["vi"] for h in client.get("/api/search", params={"q": typed}).json()["results"]]
    assert name in titles
    # and typed with đ it still matches a name written with Đ
    assert name in [h["title"]["vi"] for h in
                    client.get("/api/search", params={"q": name.lower()}).json()["results"]]


def test_search_sheet_and_parcel_numbers(client, conn) -> None:
    sheet, parcel = conn.execute("SELECT sheet_no, parcel_no FROM parcels GROUP BY 1, 2 "
                                 "HAVING count(*) >= 2 ORDER BY 1, 2 LIMIT 1").fetchone()
    expected = {r[0] for r in conn.execute(
        "SELECT id FROM parcels WHERE sheet_no = %s AND parcel_no = %s", (sheet, parcel))}
    for q in (f"{sheet}/{parcel}", f"tờ {sheet} thửa {parcel}", f"{sheet} / {parcel}"):
        body = client.get("/api/search", params={"q": q}).json()
        assert body["understood_as"] == "parcel"
        assert {h["id"] for h in body["results"]} == expected, q
    pid, commune = conn.execute("SELECT id, commune_code FROM parcels WHERE sheet_no = %s AND "
                                "parcel_no = %s ORDER BY id LIMIT 1", (sheet, parcel)).fetchone()
    name = conn.execute("SELECT name FROM admin_units WHERE code = %s AND valid_to IS NULL",
                        (commune,)).fetchone()[0]
    for suffix in (commune, fold(name), name):
        hits = client.get("/api/search", params={"q": f"{sheet}/{parcel} {suffix}"}).json()["results"]
        assert pid in {h["id"] for h in hits} and len(hits) < len(expected) + 1, suffix
        assert all(h["properties"]["commune_code"] == commune or
                   h["properties"]["old_commune_code"] == commune for h in hits)
    assert parse_parcel("12/345") == parse_parcel("Tờ 12, thửa 345")


def test_search_coordinates_wgs84_and_vn2000(client, conn) -> None:
    body = client.get("/api/search", params={"q": "21.18, 106.07"}).json()
    hit = body["results"][0]
    assert body["understood_as"] == "coordinate" and hit["center"] == [106.07, 21.18]
    assert client.get("/api/search", params={"q": "106.07 21.18"}).json()["results"][0]["center"] \
        == [106.07, 21.18]
    to_wgs84 = Transformer.from_crs(9209, 4326, always_xy=True)
    lon, lat = to_wgs84.transform(558990, 2342986)
    for q in ("X=2342986 Y=558990", "x: 2342986, y: 558990", "2342986 558990", "558990, 2342986",
              "Y=558990 X=2342986"):
        hit = client.get("/api/search", params={"q": q}).json()["results"][0]
        assert hit["properties"]["crs"] == "vn2000", q
        assert hit["center"][0] == pytest.approx(lon, abs=1e-9)
        assert hit["center"][1] == pytest.approx(lat, abs=1e-9)
        assert hit["properties"]["northing"] == 2342986 and hit["properties"]["easting"] == 558990
    # the commune that contains the point is named
    code = conn.execute("SELECT code FROM admin_units WHERE level = 'commune' AND valid_to IS NULL "
                        "AND ST_Covers(geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326))", (lon, lat)
                        ).fetchone()
    assert hit["properties"]["commune_code"] == (code[0] if code else None)
    assert parse_coordinate("5000000 9000000", 9209) is None  # not in Vietnam


def test_search_nonsense_and_empty(client) -> None:
    assert client.get("/api/search", params={"q": "zzzzqqq"}).json()["results"] == []
    assert client.get("/api/search", params={"q": "  "}).status_code == 400


# --- identify, sensors, labels -------------------------------------------------------------------


def test_identify_returns_the_parcel_zone_and_commune_under_a_point(client, conn, keys) -> None:
    pid, sheet, parcel, x, y = conn.execute(
        "SELECT id, sheet_no, parcel_no, ST_X(p), ST_Y(p) FROM (SELECT *, ST_PointOnSurface(geom) p"
        " FROM parcels WHERE land_user IS NOT NULL ORDER BY id LIMIT 1) s").fetchone()
    params = {"lon": x, "lat": y, "z": 17}
    body = client.get("/api/map/identify", params=params).json()
    layers = {f["layer"]: f for f in body["features"]}
    assert layers["parcels"]["id"] == pid
    assert layers["parcels"]["properties"]["sheet_no"] == sheet
    assert layers["parcels"]["properties"]["parcel_no"] == parcel
    assert "land_user" not in layers["parcels"]["properties"]
    assert layers["admin_units"]["properties"]["level"] == "commune"
    assert layers["admin_units"]["properties"]["valid_to"] is None
    officer = client.get("/api/map/identify", params=params, headers=keys["land_officer"]).json()
    assert "land_user" in next(f for f in officer["features"] if f["layer"] == "parcels")["properties"]
    # parcels are drawn from zoom 15: a click at zoom 12 does not pick one
    low = client.get("/api/map/identify", params={**params, "z": 12}).json()
    assert "parcels" not in {f["layer"] for f in low["features"]}
    old = client.get("/api/map/identify", params={**params, "as_of": "2025-06-30"}).json()
    unit = next(f for f in old["features"] if f["layer"] == "admin_units")
    assert unit["properties"]["valid_to"] == "2025-07-01"
    assert client.get("/api/map/identify", params={**params, "layers": "incidents"}).status_code == 404


def test_sensors_coloured_by_latest_value(client, conn) -> None:
    body = client.get("/api/map/sensors").json()
    latest = {r[0]: r[1:] for r in conn.execute(
        "SELECT s.id, o.result, s.threshold FROM sensors s LEFT JOIN LATERAL (SELECT o.result"
        " FROM observations o JOIN datastreams d ON d.id = o.datastream_id"
        " JOIN observed_properties p ON p.id = d.observed_property_id"
        " WHERE d.thing_id = s.id AND p.code = s.parameter"
        " ORDER BY o.phenomenon_time DESC LIMIT 1) o ON TRUE")}
    assert len(body["features"]) == len(latest)
    for f in body["features"]:
        value, threshold = latest[f["id"]]
        p = f["properties"]
        assert p["latest_value"] == pytest.approx(value)
        state = "none" if value is None else "over" if value > threshold else \
            "warn" if value >= 0.8 * threshold else "ok"
        assert p["state"] == state


def test_commune_labels_of_each_era(client, conn) -> None:
    now = client.get("/api/map/labels").json()["labels"]
    before = client.get("/api/map/labels", params={"as_of": "2025-06-30"}).json()["labels"]
    n_now, n_before = conn.execute(
        "SELECT count(*) FILTER (WHERE valid_to IS NULL), count(*) FILTER (WHERE valid_to IS NOT NULL)"
        " FROM admin_units WHERE level = 'commune'").fetchone()
    assert (len(now), len(before)) == (n_now, n_before)


def test_basemap_only_when_configured() -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from gis.settings import Settings

    url = "http://tiles.example.internal/{z}/{x}/{y}.png"
    with TestClient(create_app(Settings(basemap_url=url))) as c:
        page = c.get("/").text
        csp = c.get("/").headers["content-security-policy"]
    assert url in page and "L.tileLayer" in page
    assert "http://tiles.example.internal" in csp
    with TestClient(create_app(Settings(basemap_url=""))) as c:
        assert "L.tileLayer" not in c.get("/").text
