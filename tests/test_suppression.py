"""Issue 17: for anonymous callers every aggregate output of incidents suppresses a cell, a
commune or a group under 3 incidents and never counts a security event; signed-in staff see
exact counts; single incidents (items, points, tiles of incidents) stay hidden.

Planted in March 2019 (the sample has nothing before December 2024), Vietnam time:
  A  a cluster of 5 traffic accidents at one spot (commune 09247), 10 March 09:00
  B  a cluster of 4 environment incidents at one spot (commune 09190), 12 March 14:00
  P  one isolated fire (commune 09307), 20 March 20:00, and 2 security events at the same spot
  S  3 security events elsewhere (commune 09322)
  and, in the previous window, 1 traffic accident at A (15 February).
Every output must show A (and B where the group rules leave it) and neither P nor S; a
security officer sees 3 at P and 3 at S. The dashboard's registry gives a guest the public
panels only; the transparency figures (citizen reports, planted in June 2019: 4 at A, 1 at P)
hide the single report and what would give it back.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from collections.abc import Iterable, Iterator
from typing import Any
from zoneinfo import ZoneInfo

import mapbox_vector_tile
import pytest
import rasterio
from rasterio.warp import transform as warp

VN = ZoneInfo("Asia/Ho_Chi_Minh")
WINDOW = {"start": "2019-03-01", "end": "2019-03-31"}
A = (105.9458, 21.2417)
B = (106.0331, 21.2197)
P = (106.1750, 21.1870)
S = (106.2021, 21.1685)
CODES = {A: "09247", B: "09190", P: "09307", S: "09322"}
PLANT = [
    *[("traffic_accident", A, dt.datetime(2019, 3, 10, 9, 0, tzinfo=VN))] * 5,
    *[("environment", B, dt.datetime(2019, 3, 12, 14, 0, tzinfo=VN))] * 4,
    ("fire", P, dt.datetime(2019, 3, 20, 20, 0, tzinfo=VN)),
    *[("security_event", P, dt.datetime(2019, 3, 20, 20, 0, tzinfo=VN))] * 2,
    *[("security_event", S, dt.datetime(2019, 3, 22, 8, 0, tzinfo=VN))] * 3,
    ("traffic_accident", A, dt.datetime(2019, 2, 15, 10, 0, tzinfo=VN)),
]


@pytest.fixture(scope="module")
def planted(conn) -> Iterator[list[int]]:
    ids = [conn.execute(
        "INSERT INTO incidents (category, severity, status, source, title, reported_at,"
        " commune_code, geom) VALUES (%s, 2, 'received', 'hotline', 'suppression test', %s, %s,"
        " ST_SetSRID(ST_MakePoint(%s, %s), 4326)) RETURNING id",
        (cat, t, CODES[(lon, lat)], lon, lat)).fetchone()[0] for cat, (lon, lat), t in PLANT]
    yield ids
    conn.execute("DELETE FROM incidents WHERE id = ANY(%s)", (ids,))


def no_small(values: Iterable[Any], where: str = "") -> None:
    """Every published count is null, 0, or at least 3."""
    for v in values:
        assert v is None or v == 0 or v >= 3, (where, v)


def near(lon: float, lat: float, point: tuple[float, float], metres: float) -> bool:
    dx = (lon - point[0]) * 111_320 * math.cos(math.radians(point[1]))
    dy = (lat - point[1]) * 110_574
    return math.hypot(dx, dy) <= metres


def tile_xy(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 1 << z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def centroid(geometry: dict[str, Any]) -> tuple[float, float]:
    ring = geometry["coordinates"][0]
    return (sum(c[0] for c in ring[:-1]) / (len(ring) - 1),
            sum(c[1] for c in ring[:-1]) / (len(ring) - 1))


# --- heatmap --------------------------------------------------------------------------------------


@pytest.mark.parametrize("z", [8, 11, 15])
def test_heatmap(client, keys, planted, z) -> None:
    anon = client.get("/api/incidents/heatmap", params={**WINDOW, "z": z})
    assert anon.status_code == 200, anon.text
    body = anon.json()
    assert body["suppressed"] is True and body["min_count"] == 3
    assert body["suppression_note"]["vi"].startswith("Để bảo vệ")
    no_small((c[2] for c in body["cells"]), "heatmap")
    reach = body["cell_m"] * 1.5
    assert not [c for c in body["cells"] if near(c[1], c[0], P, reach) or near(c[1], c[0], S, reach)]
    assert any(c[2] == 5 and near(c[1], c[0], A, reach) for c in body["cells"])
    assert body["total"] == 9 == sum(c[2] for c in body["cells"])  # A + B: nothing to subtract
    staff = client.get("/api/incidents/heatmap", headers=keys["operator"],
                       params={**WINDOW, "z": z}).json()
    assert staff["total"] == 10 and "suppressed" not in staff
    assert any(c[2] == 1 for c in staff["cells"])
    sec = client.get("/api/incidents/heatmap", headers=keys["security_officer"],
                     params={**WINDOW, "z": z}).json()
    assert sec["total"] == 15


# --- statistics -----------------------------------------------------------------------------------


def test_stats(client, keys, planted) -> None:
    body = client.get("/api/incidents/stats", params=WINDOW).json()
    for w in ("current", "previous"):
        win = body[w]
        for group in ("by_category", "by_severity", "by_status"):
            no_small(win[group].values(), group)
            assert not win["by_category"].get("security_event")
        no_small(win["series"], "series")
        no_small([win["total"]], "total")
    assert body["current"]["total"] == 10  # 5 + 4 + 1, security events not counted
    # the fire is alone in its group: suppressed, and one more so 10 - published is not 1
    cats = body["current"]["by_category"]
    assert cats["fire"] is None and cats["environment"] is None and cats["traffic_accident"] == 5
    assert body["previous"]["total"] is None and body["change"] is None
    assert body["current"]["series"].count(None) >= 2
    # one commune: the single fire's commune says nothing
    one = client.get("/api/incidents/stats", params={**WINDOW, "unit": "09307"}).json()
    assert one["current"]["total"] is None and one["current"]["by_category"].get("fire") is None
    staff = client.get("/api/incidents/stats", headers=keys["operator"], params=WINDOW).json()
    assert staff["current"]["by_category"]["fire"] == 1 and staff["previous"]["total"] == 1
    assert "suppressed" not in staff
    sec = client.get("/api/incidents/stats", headers=keys["security_officer"], params=WINDOW).json()
    assert sec["current"]["total"] == 15 and sec["current"]["by_category"]["security_event"] == 5


# --- kernel density -------------------------------------------------------------------------------


def _at(ds: rasterio.DatasetReader, lonlat: tuple[float, float]) -> float:
    xs, ys = warp("EPSG:4326", ds.crs, [lonlat[0]], [lonlat[1]])
    row, col = ds.index(xs[0], ys[0])
    return float(ds.read(1)[row, col])


def _around(ds: rasterio.DatasetReader, lonlat: tuple[float, float], cells: int) -> float:
    xs, ys = warp("EPSG:4326", ds.crs, [lonlat[0]], [lonlat[1]])
    row, col = ds.index(xs[0], ys[0])
    band = ds.read(1)
    return float(band[max(row - cells, 0):row + cells + 1, max(col - cells, 0):col + cells + 1].max())


def test_density_and_geotiff(client, keys, planted) -> None:
    params = {**WINDOW, "bandwidth": 500, "cell": 100, "scale": "view"}
    body = client.get("/api/incidents/density", params=params).json()
    assert body["suppressed"] is True
    assert body["total"] == 9 and body["mass"] == pytest.approx(9, rel=0.01)
    r = client.get("/api/incidents/density.tif", params=params)
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/tiff")
    with rasterio.MemoryFile(r.content) as mem, mem.open() as ds:
        assert ds.tags()["MIN_COUNT"] == "3" and ds.tags()["INCIDENTS"] == "9"
        assert _at(ds, A) > 0
        # nothing within 1.5 km of the single fire or the security events: no hole, no ring
        assert _around(ds, P, 15) <= 0 and _around(ds, S, 15) <= 0
    staff = client.get("/api/incidents/density.tif", headers=keys["operator"], params=params)
    with rasterio.MemoryFile(staff.content) as mem, mem.open() as ds:
        assert _at(ds, P) > 0 and ds.tags()["INCIDENTS"] == "10"


# --- grid: GeoJSON and vector tiles ----------------------------------------------------------------


@pytest.mark.parametrize("shape", ["hexagon", "square"])
def test_grid_geojson(client, keys, planted, shape) -> None:
    params = {**WINDOW, "shape": shape, "size": 500}
    body = client.get("/api/incidents/grid", params=params).json()
    assert body["suppressed"] is True
    counts = [f["properties"]["count"] for f in body["features"]]
    no_small(counts, "grid")
    assert sorted(counts) == [4, 5] and body["total"] == 9
    for f in body["features"]:
        assert not near(*centroid(f["geometry"]), P, 1000)
    assert max(body["legend"]["breaks"]) >= 3
    staff = client.get("/api/incidents/grid", headers=keys["operator"], params=params).json()
    assert sorted(f["properties"]["count"] for f in staff["features"]) == [1, 4, 5]


def test_grid_tiles(client, keys, planted) -> None:
    params = {**WINDOW, "shape": "hexagon", "size": 500}

    def cells(z: int, at: tuple[float, float], headers: dict[str, str]) -> list[int]:
        x, y = tile_xy(*at, z)
        r = client.get(f"/api/incidents/grid/tiles/{z}/{x}/{y}", headers=headers, params=params)
        assert r.status_code == 200, r.text
        layer = mapbox_vector_tile.decode(r.content).get("incident_grid", {}) if r.content else {}
        return [f["properties"]["count"] for f in layer.get("features", [])]

    for z in (10, 12, 14):
        no_small(cells(z, P, {}), f"tile z{z}")
        no_small(cells(z, A, {}), f"tile z{z}")
    assert cells(14, P, {}) == [] and cells(14, S, {}) == []
    assert cells(14, A, {}) == [5]
    assert cells(14, P, keys["operator"]) == [1]
    assert cells(14, S, keys["security_officer"]) == [3]


# --- rates and change per commune ---------------------------------------------------------------


def test_rates(client, keys, planted) -> None:
    for fmt in ("json", "geojson"):
        body = client.get("/api/incidents/rates", params={**WINDOW, "format": fmt,
                                                          "measure": "count"}).json()
        rows = body["units"] if fmt == "json" else [f["properties"] for f in body["features"]]
        by_code = {r["code"]: r for r in rows}
        no_small((r["count"] for r in rows), "rates")
        single = by_code["09307"]
        assert single["count"] is None and single["suppressed"] is True
        assert single["per_km2"] is None and single["per_1000"] is None and single["class"] is None
        assert by_code["09247"]["count"] == 5 and by_code["09247"]["suppressed"] is False
        assert by_code["09322"]["count"] == 0  # three security events, not counted
        assert body["total"] == 10
        if fmt == "json":  # suppressed communes are ranked with those without a value: last
            assert rows[-1]["count"] is None or all(r["count"] is not None for r in rows)
    staff = client.get("/api/incidents/rates", headers=keys["operator"], params=WINDOW).json()
    assert {r["code"]: r["count"] for r in staff["units"]}["09307"] == 1


def test_change(client, keys, planted) -> None:
    body = client.get("/api/incidents/change", params={**WINDOW, "by": "commune"}).json()
    props = {f["properties"]["code"]: f["properties"] for f in body["features"]}
    for p in props.values():
        no_small([p["current"], p["base"]], "change")
    assert props["09247"]["current"] == 5 and props["09247"]["base"] is None
    assert props["09247"]["change"] is None and props["09247"]["suppressed"] is True
    assert props["09307"]["current"] is None and body["base_total"] is None
    grid = client.get("/api/incidents/change", params={**WINDOW, "by": "grid", "size": 500}).json()
    no_small((v for f in grid["features"] for v in (f["properties"]["current"],
                                                     f["properties"]["base"])), "change grid")
    assert sorted(f["properties"]["current"] for f in grid["features"]) == [4, 5]
    assert all(not near(*centroid(f["geometry"]), P, 1000) for f in grid["features"])
    assert grid["total"] == 9
    staff = client.get("/api/incidents/change", headers=keys["operator"],
                       params={**WINDOW, "by": "commune"}).json()
    sp = {f["properties"]["code"]: f["properties"] for f in staff["features"]}
    assert sp["09247"]["base"] == 1 and sp["09307"]["current"] == 1


# --- dashboard series, JSON and CSV -------------------------------------------------------------


def _csv_counts(content: bytes, skip: set[str]) -> list[int | None]:
    """The count columns of a chart's CSV (all but SKIP: labels, differences, percentages)."""
    reader = csv.DictReader(io.StringIO(content.decode("utf-8-sig")))
    return [None if v == "" else int(v) for row in reader for k, v in row.items() if k not in skip]


def test_dashboard_series(client, keys, planted) -> None:
    cats = client.get("/api/dashboard/series/categories", params=WINDOW).json()
    cells = [v for s in cats["series"] for v in s["counts"]]
    no_small(cells, "categories")
    assert "security_event" not in {s["category"] for s in cats["series"]}
    # the whole window's total minus the published cells is never one hidden cell: here the
    # fire is the only small cell and 10 - 5 - 4 would give it, so the table is withheld
    assert cells.count(None) != 1 and cats["total"] == 10
    assert all(v is None for v in cells)
    hw = client.get("/api/dashboard/series/hour-weekday", params=WINDOW).json()
    flat = [v for row in hw["matrix"] for v in row]
    no_small(flat, "hour-weekday")
    assert flat.count(None) != 1 and hw["matrix"][2][20] is None  # Wednesday 20:00
    assert 5 not in flat or 4 not in flat  # else 10 - 5 - 4 would give the fire away
    com = client.get("/api/dashboard/series/communes", params={**WINDOW, "top": 1000}).json()
    rows = {r["code"]: r for r in com["communes"]}
    no_small((v for r in rows.values() for v in (r["current"], r["previous"])), "communes")
    assert rows["09307"]["current"] is None and rows["09307"]["suppressed"] is True
    skip = {"categories": {"bucket_start"}, "hour-weekday": {"iso_weekday"},
            "communes": {"code", "name", "difference", "change_pct"}}
    for path, labels in skip.items():
        r = client.get(f"/api/dashboard/series/{path}",
                       params={**WINDOW, "f": "csv", **({"top": 1000} if path == "communes" else {})})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        counts = _csv_counts(r.content, labels)
        assert counts and (path != "communes" or 5 in counts)
        no_small(counts, f"csv {path}")
    staff = client.get("/api/dashboard/series/hour-weekday", headers=keys["operator"],
                       params=WINDOW).json()
    assert staff["matrix"][2][20] == 1 and staff["total"] == 10
    # the operational KPIs stay for staff; the page's registry gives a guest the public panels
    assert client.get("/api/dashboard/kpis").status_code == 404
    reg = client.get("/api/dashboard/panels").json()
    assert reg["suppressed"] is True and reg["min_count"] == 3
    guest = {p["id"] for p in reg["panels"]}
    assert guest and "kpis" not in guest and "hotspots" not in guest
    assert all(p["guest"] for p in reg["panels"])
    staff_reg = client.get("/api/dashboard/panels", headers=keys["operator"]).json()
    assert {"kpis", "hotspots"} <= {p["id"] for p in staff_reg["panels"]}
    assert "suppressed" not in staff_reg


# --- the dashboard page for a guest --------------------------------------------------------------


def test_dashboard_page_for_a_guest(client) -> None:
    """The page itself carries no count (its figures come from the routes above); a guest gets
    it, with the note on suppression in the page's words, Vietnamese first."""
    r = client.get("/dashboard")
    assert r.status_code == 200
    assert "số sự cố dưới {k}" in r.text and "không phải 0" in r.text
    assert "count under {k} is hidden" in client.get("/dashboard", params={"lang": "en"}).text


# --- transparency: citizen reports per commune ---------------------------------------------------

JUNE = {"start": "2019-06-01", "end": "2019-07-01"}


@pytest.fixture()
def june_reports(conn) -> Iterator[None]:
    """Citizen reports (open) in June 2019: 4 in A's commune, 1 in P's."""
    from gis.reports import transparency

    ids = [conn.execute(
        "INSERT INTO incidents (category, severity, status, source, title, reported_at,"
        " commune_code, geom, service_code, expected_at) SELECT s.incident_category, 2,"
        " 'received', 'citizen_app', 'suppression test', %s, %s,"
        " ST_SetSRID(ST_MakePoint(%s, %s), 4326), s.code, %s + interval '3 days'"
        " FROM service_categories s WHERE s.code = 'pothole' RETURNING id",
        (t, CODES[at], at[0], at[1], t)).fetchone()[0]
        for at, t in [*[(A, dt.datetime(2019, 6, 5, 9, tzinfo=VN))] * 4,
                      (P, dt.datetime(2019, 6, 9, 9, tzinfo=VN))]]
    transparency.forget(conn)
    yield
    conn.execute("DELETE FROM incidents WHERE id = ANY(%s)", (ids,))
    transparency.forget(conn)


def test_transparency(client, keys, june_reports) -> None:
    geo = client.get("/api/transparency/communes", params=JUNE).json()
    assert geo["suppressed"] is True and geo["min_count"] == 3
    rows = {f["properties"]["code"]: f["properties"] for f in geo["features"]}
    for r in rows.values():
        no_small((r[f] for f in ("received", "resolved", "rejected", "open", "within_sla",
                                 "due")), "transparency")
    # the single report is hidden, and A's 4 with it (the province's 5 would give it back)
    assert rows[CODES[P]]["received"] is None and rows[CODES[P]]["suppressed"] is True
    assert rows[CODES[A]]["received"] is None and rows[CODES[A]]["open"] is None
    assert client.get("/api/transparency/agencies", params=JUNE).json()[
        "province"]["received"] == 5  # the province's total stays
    ranked = client.get("/api/transparency/ranking", params={**JUNE, "by": "commune"}).json()
    assert CODES[P] not in {r["code"] for r in ranked["ranking"]}
    staff = client.get("/api/transparency/communes", params=JUNE, headers=keys["operator"]).json()
    exact = {f["properties"]["code"]: f["properties"]["received"] for f in staff["features"]}
    assert exact[CODES[P]] == 1 and exact[CODES[A]] == 4


# --- what stays hidden ------------------------------------------------------------------------------


def test_single_incidents_stay_hidden(client, planted) -> None:
    single = planted[9]
    x, y = tile_xy(*P, 14)
    for path in ("/api/incidents/points", f"/api/incidents/{single}/cameras",
                 "/ogc/collections/incidents/items", f"/ogc/collections/incidents/items/{single}",
                 f"/ogc/collections/incidents/tiles/WebMercatorQuad/14/{y}/{x}",
                 "/api/incidents/hotspots", "/api/incidents/hotspots/emerging"):
        r = client.get(path, params=WINDOW if path.startswith("/api/incidents/") else None)
        assert r.status_code == 404, (path, r.status_code)
        assert "suppression test" not in r.text


# --- the rules themselves -------------------------------------------------------------------------


def test_no_margin_gives_away_one_hidden_cell() -> None:
    """suppression.table on random sparse tables: nothing under 3 is published, and no small
    count follows from the published cells and any margin of 3 or more (row, column, table),
    however many margins are solved one after the other."""
    import random

    from gis.analysis import suppression

    rng = random.Random(17)
    withheld = 0
    for _ in range(500):
        rows, cols = rng.randint(1, 7), rng.randint(1, 24)
        m = [[rng.choice([0, 0, 0, 1, 2, 3, 4, 7]) for _ in range(cols)] for _ in range(rows)]
        out = suppression.table(m, 3)
        no_small((v for r in out for v in r), "table")
        assert all(out[i][j] in (None, m[i][j]) for i in range(rows) for j in range(cols))
        hidden = [[v is None for v in r] for r in out]
        assert not suppression.recoverable(m, hidden, 3), (m, out)
        withheld += all(v is None for r in out for v in r)
    assert withheld < 100  # the fallback (withhold the table) stays the exception
    assert suppression.group([5, 4, 1, 0], 3) == [5, None, None, 0]
    assert suppression.group([5, 1], 0) == [5, 1]  # staff: exact
