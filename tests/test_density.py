"""Honest incident maps (/api/incidents/density, density.tif, grid, grid tiles, rates, change) and
the shared filters they use (source, administrative unit on either boundary set, Vietnam-time
days): every figure checked against independent SQL on the same database, and against the
access rules (security events never counted for an operator)."""

from __future__ import annotations

import datetime as dt
import io
from zoneinfo import ZoneInfo

import mapbox_vector_tile
import numpy as np
import pytest
import rasterio
from psycopg import sql

from gis.analysis import density as D
from gis.analysis.incidents import IncidentFilter
from layers.access import Principal, row_filter
from layers.catalogue import get_layer

INCIDENTS = get_layer("incidents")
VN = ZoneInfo("Asia/Ho_Chi_Minh")
YEAR = {"start": "2026-01-01", "end": "2026-06-30"}  # Vietnam-time days
H1_START = dt.datetime(2026, 1, 1, tzinfo=VN)
H1_END = dt.datetime(2026, 7, 1, tzinfo=VN)


def who(role: str) -> Principal:
    return Principal(f"density-{role}", frozenset({role}))


def sql_count(conn, role: str, start: dt.datetime, end: dt.datetime, where: str = "TRUE",
              params: tuple = ()) -> int:
    restrict = row_filter(INCIDENTS, who(role))
    q = sql.SQL("SELECT count(*) FROM incidents AS t WHERE t.reported_at >= %s AND "
                "t.reported_at < %s AND {} AND {}").format(
        sql.SQL(where), restrict if restrict is not None else sql.SQL("TRUE"))  # noqa: S608
    return conn.execute(q, (start, end, *params)).fetchone()[0]


# --- kernel density ------------------------------------------------------------------------------


def test_kde_mass_is_the_incident_count(client, conn, keys) -> None:
    n = sql_count(conn, "operator", H1_START, H1_END)
    assert n > 1000
    for kernel, bandwidth, cell in (("quartic", 500, 100), ("gaussian", 300, 50),
                                    ("quartic", 1500, 250)):
        body = client.get("/api/incidents/density", headers=keys["operator"], params={
            **YEAR, "kernel": kernel, "bandwidth": bandwidth, "cell": cell}).json()
        assert body["total"] == n
        # the integral of the surface (density x cell area) is the count, well within 1 %
        assert body["mass"] == pytest.approx(n, rel=1e-6), (kernel, bandwidth)
        assert body["grid"]["crs"].endswith("/9209") and body["grid"]["cell_m"] == cell
        assert body["legend"]["unit"]["en"] == "incidents/km²"
        assert len(body["legend"]["colors"]) == len(body["legend"]["breaks"]) - 1
        assert body["image"]["url"].startswith("data:image/png;base64,")


def test_kde_surface_matches_a_direct_sum_of_kernels(conn) -> None:
    """The FFT convolution equals the kernel summed point by point (on a small window)."""
    f = IncidentFilter(dt.datetime(2026, 3, 1, tzinfo=VN), dt.datetime(2026, 3, 8, tzinfo=VN))
    d = D.kde(conn, f, None, bandwidth=400, cell=100)
    counts = D.counts_on(conn, f, None, d.grid)
    k = D.kernel("quartic", 400, 100)
    r = k.shape[0] // 2
    direct = np.zeros_like(counts)
    for iy, ix in zip(*np.nonzero(counts), strict=True):
        direct[iy - r:iy + r + 1, ix - r:ix + r + 1] += counts[iy, ix] * k
    assert np.allclose(d.values, direct / d.grid.cell_km2, atol=1e-6)


def test_fixed_scale_is_the_same_across_views_and_windows(client, keys) -> None:
    a = client.get("/api/incidents/density", headers=keys["operator"],
                   params={"start": "2026-03-01", "end": "2026-03-30"}).json()
    b = client.get("/api/incidents/density", headers=keys["operator"],
                   params={"start": "2026-05-01", "end": "2026-05-30",
                           "bbox": "106.0,21.05,106.1,21.15"}).json()
    assert a["legend"]["scale"] == b["legend"]["scale"] == "fixed"
    assert a["legend"]["breaks"] == b["legend"]["breaks"] and a["legend"]["vmax"] > 0
    assert a["max"] != b["max"]  # different surfaces, one scale
    # the reference is documented in the answer: a year's province-wide peak, prorated
    ref = a["legend"]["reference"]
    assert ref["days"] == 365 and ref["window_ratio"] == pytest.approx(30 / 365, rel=1e-4)
    assert a["legend"]["vmax"] >= ref["max"] * ref["window_ratio"]
    # a view scale follows the surface, an explicit vmax is taken as given
    view = client.get("/api/incidents/density", headers=keys["operator"],
                      params={"start": "2026-03-01", "end": "2026-03-30", "scale": "view"}).json()
    assert view["legend"]["vmax"] >= view["max"] and view["legend"]["scale"] == "view"
    given = client.get("/api/incidents/density", headers=keys["operator"],
                       params={"start": "2026-03-01", "end": "2026-03-30", "vmax": 7}).json()
    assert given["legend"]["vmax"] == 7 and given["legend"]["breaks"][-1] == 7


def test_density_cog_opens_with_rasterio(client, keys) -> None:
    r = client.get("/api/incidents/density.tif", headers=keys["operator"],
                   params={**YEAR, "cell": 50, "bandwidth": 400})
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/tiff")
    assert "attachment" in r.headers["content-disposition"]
    meta = client.get("/api/incidents/density", headers=keys["operator"],
                      params={**YEAR, "cell": 50, "bandwidth": 400}).json()
    with rasterio.MemoryFile(r.content) as mem, mem.open() as ds:
        assert ds.crs.to_epsg() == 9209
        x1, y1, x2, y2 = meta["grid"]["bounds"]
        assert ds.transform.a == 50 and ds.transform.e == -50
        assert ds.transform.c == pytest.approx(x1) and ds.transform.f == pytest.approx(y2)
        assert (ds.height, ds.width) == (meta["grid"]["rows"], meta["grid"]["columns"])
        assert ds.nodata == -1
        assert ds.overviews(1), "internal overviews"
        assert ds.profile["tiled"] and ds.block_shapes[0] == (256, 256)
        assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        values = ds.read(1)
        assert values.sum() * 0.05 * 0.05 == pytest.approx(meta["total"], rel=1e-4)
        assert ds.tags()["SCALE"] == "fixed"
        assert [float(b) for b in ds.tags()["BREAKS"].split(",")] == meta["legend"]["breaks"]


def test_too_many_cells_is_a_400_naming_cell(client, keys) -> None:
    r = client.get("/api/incidents/density", headers=keys["operator"],
                   params={**YEAR, "cell": 10, "bandwidth": 50})
    assert r.status_code == 400 and r.json()["parameter"] == "cell"
    r = client.get("/api/incidents/density", headers=keys["operator"],
                   params={**YEAR, "kernel": "epanechnikov"})
    assert r.status_code == 400 and "kernel" in r.text


# --- grid counts ---------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["hexagon", "square"])
def test_grid_counts_add_up_and_match_postgis_cells(client, conn, keys, shape) -> None:
    body = client.get("/api/incidents/grid", headers=keys["operator"],
                      params={**YEAR, "shape": shape, "size": 700}).json()
    n = sql_count(conn, "operator", H1_START, H1_END)
    assert body["total"] == n == sum(f["properties"]["count"] for f in body["features"])
    # independent SQL: PostGIS's own grid over the province, points by ST_Intersects, per cell
    # (a point on an edge would count twice there; compare the cells with their counts)
    fn = "ST_HexagonGrid" if shape == "hexagon" else "ST_SquareGrid"
    rows = conn.execute(sql.SQL(
        "SELECT g.i, g.j, count(*) FROM (SELECT ST_Transform(geom, 9209) AS p FROM incidents t"
        " WHERE reported_at >= %s AND reported_at < %s AND category <> 'security_event') a"
        " CROSS JOIN LATERAL {}(700, a.p) g WHERE ST_Intersects(g.geom, a.p) GROUP BY 1, 2").format(
        sql.Identifier(fn.lower())), (H1_START, H1_END)).fetchall()
    expected = {(i, j): c for i, j, c in rows}
    got = {(f["properties"]["i"], f["properties"]["j"]): f["properties"]["count"]
           for f in body["features"]}
    assert set(got) == set(expected)
    diff = sum(abs(got[k] - expected[k]) for k in got)
    assert diff <= sum(expected.values()) - n  # only points on shared edges differ
    legend = body["legend"]
    assert legend["unit"]["en"] == "incidents" and legend["breaks"][-1] == max(got.values())


@pytest.mark.parametrize("size", [50.0, 181.0, 500.0, 777.7, 2500.0])
def test_three_floors_find_the_nearest_hexagon_centre(size) -> None:
    """The grid's hexagon rule (dask_tasks.hexagon_cells, as density_sql.cell_key computes it)
    against the definition: the nearest of the 4 x 4 centres around each point, by distance."""
    from gis.analysis.dask_tasks import hexagon_cells

    rng = np.random.default_rng(int(size))
    x = 400_000 + rng.random(300_000) * 300_000
    y = 2_000_000 + rng.random(300_000) * 600_000
    w, h = 1.5 * size, 3 ** 0.5 * size
    i0 = np.floor(x / w).astype(np.int64)
    best_d = np.full(x.shape, np.inf)
    best_i = np.zeros_like(i0)
    best_j = np.zeros_like(i0)
    for di in (-1, 0, 1, 2):
        i = i0 + di
        odd = i & 1
        for dj in (-1, 0, 1, 2):
            j = np.floor((y - h / 2 * odd) / h).astype(np.int64) + dj
            d = (x - w * i) ** 2 + (y - h * j - h / 2 * odd) ** 2
            nearer = d < best_d
            best_d = np.where(nearer, d, best_d)
            best_i, best_j = np.where(nearer, i, best_i), np.where(nearer, j, best_j)
    got_i, got_j = hexagon_cells(x, y, size)
    assert np.array_equal(got_i, best_i) and np.array_equal(got_j, best_j)


def test_grid_tiles_decode_with_counts(client, keys) -> None:
    params = {**YEAR, "shape": "hexagon", "size": 700}
    geo = client.get("/api/incidents/grid", headers=keys["operator"], params=params).json()
    counts = {(f["properties"]["i"], f["properties"]["j"]): f["properties"]["count"]
              for f in geo["features"]}
    seen: dict[tuple[int, int], int] = {}
    # every z10 tile over the cells
    lons = [c[0] for f in geo["features"] for c in f["geometry"]["coordinates"][0]]
    lats = [c[1] for f in geo["features"] for c in f["geometry"]["coordinates"][0]]
    xs = range(_tile_x(min(lons), 10), _tile_x(max(lons), 10) + 1)
    ys = range(_tile_y(max(lats), 10), _tile_y(min(lats), 10) + 1)
    assert len(xs) * len(ys) > 1  # cells cut by tile edges are checked too
    for x, y in ((x, y) for x in xs for y in ys):
        r = client.get(f"/api/incidents/grid/tiles/10/{x}/{y}", headers=keys["operator"],
                       params=params)
        assert r.status_code == 200 and r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
        if not r.content:
            continue
        layer = mapbox_vector_tile.decode(r.content)["incident_grid"]
        for feat in layer["features"]:
            p = feat["properties"]
            seen[(p["i"], p["j"])] = p["count"]
            assert feat["geometry"]["type"] == "Polygon"
    assert seen, "no cell in the tiles"
    # each cell carries its full count, also where a tile edge cuts it
    assert all(counts[k] == v for k, v in seen.items())
    assert set(seen) == set(counts)
    r = client.get("/api/incidents/grid/tiles/3/9/0", headers=keys["operator"], params=params)
    assert r.status_code == 404


def _tile_x(lon: float, z: int) -> int:
    return int((lon + 180) / 360 * (1 << z))


def _tile_y(lat: float, z: int) -> int:
    import math

    r = math.radians(lat)
    return int((1 - math.log(math.tan(r) + 1 / math.cos(r)) / math.pi) / 2 * (1 << z))


# --- rates per commune ---------------------------------------------------------------------------


def _independent_rates(conn, day: dt.date) -> dict[str, tuple[int, float, int]]:
    rows = conn.execute(
        "SELECT u.code, (SELECT count(*) FROM incidents t WHERE ST_Covers(u.geom, t.geom)"
        "  AND t.reported_at >= %s AND t.reported_at < %s AND t.category <> 'security_event'),"
        " ST_Area(ST_Transform(u.geom, 9209)) / 1e6, u.population FROM admin_units u"
        " WHERE u.level = 'commune' AND u.valid_from <= %s AND (u.valid_to IS NULL OR u.valid_to > %s)",
        (H1_START, H1_END, day, day)).fetchall()
    return {code: (n, area, pop) for code, n, area, pop in rows}


@pytest.mark.parametrize("boundaries,day", [("current", None), ("pre2025", dt.date(2025, 6, 30))])
def test_rates_equal_independent_sql(client, conn, keys, boundaries, day) -> None:
    body = client.get("/api/incidents/rates", headers=keys["operator"], params={
        **YEAR, "boundaries": boundaries, "measure": "per_km2",
        "classification": "natural_breaks", "classes": 5}).json()
    expected = _independent_rates(conn, day or dt.date.today())
    units = body["units"]
    assert {u["code"] for u in units} == set(expected)
    for u in units:
        n, area, pop = expected[u["code"]]
        assert u["count"] == n and u["area_km2"] == pytest.approx(area, abs=1e-3)
        assert u["per_km2"] == pytest.approx(n / area, abs=1e-3)
        assert u["per_1000"] == pytest.approx(n / pop * 1000, abs=1e-3)
    # ranked by the measure, highest first
    values = [u["per_km2"] for u in units]
    assert values == sorted(values, reverse=True) and [u["rank"] for u in units] == list(
        range(1, len(units) + 1))
    # breaks by mapclassify's Fisher-Jenks on the same values
    import mapclassify

    fj = mapclassify.FisherJenks(np.array([n / a for n, a, _ in expected.values()]), k=5)
    assert body["legend"]["breaks"] == pytest.approx([round(b, 3) for b in fj.bins], abs=1e-3)
    assert body["legend"]["classification"] == "natural_breaks"
    q = client.get("/api/incidents/rates", headers=keys["operator"], params={
        **YEAR, "boundaries": boundaries, "classification": "quantiles", "classes": 4}).json()
    qb = mapclassify.Quantiles(np.array([n / p * 1000 for n, _, p in expected.values()]), k=4)
    assert q["legend"]["breaks"] == pytest.approx([round(b, 3) for b in qb.bins], abs=1e-3)


_WINDOWS = {"30 days": (dt.datetime(2026, 11, 1, tzinfo=VN), dt.datetime(2026, 12, 1, tzinfo=VN)),
            "a year": (dt.datetime(2025, 12, 1, tzinfo=VN), dt.datetime(2026, 12, 1, tzinfo=VN)),
            "all": (dt.datetime(2000, 1, 1, tzinfo=VN), dt.datetime(2100, 1, 1, tzinfo=VN))}


@pytest.mark.parametrize("window", list(_WINDOWS))
@pytest.mark.parametrize("day", [dt.date(2026, 12, 4), dt.date(2025, 6, 30)])
def test_unit_counts_grid_equals_st_covers_per_unit(conn, window, day) -> None:
    """unit_counts bins points on a lon/lat grid and tests only those in cells a boundary
    crosses: on short and long windows, on either boundary set, with filters, and on grids from
    coarse (most points tested) to fine (most points in cells inside one unit), every unit's
    count is that of an independent ST_Covers count, planted points on a vertex two units share
    (counted in both), on grid lines and off every unit included."""
    from gis.analysis import density_sql as q

    start, end = _WINDOWS[window]
    restrict = row_filter(INCIDENTS, who("operator"))
    with conn.transaction(force_rollback=True):
        shared = conn.execute(
            "SELECT p.geom, a.code, b.code FROM admin_units a JOIN admin_units b"
            " ON a.id < b.id AND a.geom && b.geom AND b.level = 'commune' AND b.valid_from <= %s"
            " AND (b.valid_to IS NULL OR b.valid_to > %s), LATERAL ST_DumpPoints(a.geom) p"
            " WHERE a.level = 'commune' AND a.valid_from <= %s AND (a.valid_to IS NULL"
            " OR a.valid_to > %s) AND ST_Covers(b.geom, p.geom) LIMIT 1",
            (day, day, day, day)).fetchone()
        assert shared is not None
        inside = conn.execute(
            "SELECT ST_PointOnSurface(geom) FROM admin_units WHERE code = %s AND valid_from <= %s"
            " AND (valid_to IS NULL OR valid_to > %s)", (shared[1], day, day)).fetchone()[0]
        # ~20 m outside the outermost units, in a cell that meets a unit: not counted anywhere
        outside = conn.execute(
            "SELECT q FROM (SELECT ST_Translate(p.geom, 2e-4 * sign(ST_X(p.geom) - ST_X(c)),"
            "  2e-4 * sign(ST_Y(p.geom) - ST_Y(c))) AS q FROM (SELECT ST_Union(geom) AS a,"
            "  ST_Centroid(ST_Union(geom)) AS c FROM admin_units WHERE level = 'commune'"
            "  AND valid_from <= %s AND (valid_to IS NULL OR valid_to > %s)) s,"
            "  LATERAL ST_DumpPoints(ST_ExteriorRing(ST_GeometryN(s.a, 1))) p) o"
            " WHERE NOT EXISTS (SELECT 1 FROM admin_units u WHERE ST_Covers(u.geom, o.q))"
            " LIMIT 1", (day, day)).fetchone()[0]
        at = start + (end - start) / 2 if window != "all" else dt.datetime(2026, 6, 1, tzinfo=VN)
        conn.execute(
            "INSERT INTO incidents (category, severity, status, source, title, reported_at, geom)"
            " SELECT 'fire', 2, 'received', 'hotline', 'grid test', %s, g FROM unnest(ARRAY["
            "  %s::geometry, %s::geometry, %s::geometry,"
            "  ST_SetSRID(ST_MakePoint(round(ST_X(%s::geometry) / 0.005) * 0.005, ST_Y(%s::geometry)), 4326),"
            "  ST_SetSRID(ST_MakePoint(round(ST_X(%s::geometry) / 0.0025) * 0.0025,"
            "   round(ST_Y(%s::geometry) / 0.0025) * 0.0025), 4326),"
            "  %s::geometry, ST_SetSRID(ST_MakePoint(100.0, 10.0), 4326)]) g",
            (at, shared[0], shared[0], inside, inside, inside, inside, inside, outside))
        for category in (None, "fire"):
            f = IncidentFilter(start, end, categories=(category,) if category else ())
            box = (105.9, 20.9, 106.2, 21.2) if category else None
            if box:
                f = IncidentFilter(start, end, categories=("fire",), bbox=box)
            expected = dict(conn.execute(sql.SQL(
                "SELECT u.code, (SELECT count(*) FROM incidents t WHERE ST_Covers(u.geom, t.geom)"
                "  AND t.reported_at >= %s AND t.reported_at < %s AND {} AND {} AND {})"
                " FROM admin_units u WHERE u.level = 'commune' AND u.valid_from <= %s"
                " AND (u.valid_to IS NULL OR u.valid_to > %s)").format(
                    restrict, sql.SQL("t.category = 'fire'" if category else "TRUE"),
                    sql.SQL("t.geom && ST_MakeEnvelope(105.9, 20.9, 106.2, 21.2, 4326)"
                            if box else "TRUE")),
                (start, end, day, day)).fetchall())
            assert expected[shared[1]] > 0 and expected[shared[2]] > 0
            for cell in (None, 0.02, 0.001):
                query, params = q.unit_counts(f, restrict, None, D.srid(), day, cell=cell)
                got = {r[0]: r[4] for r in D.fetch(conn, query, params)}
                assert got == expected, (window, category, cell)
        # the default path, as the API calls it
        r = D.unit_rates(conn, IncidentFilter(start, end), restrict, None, day)
        assert dict(zip(r.codes, r.counts.tolist(), strict=True))[shared[2]] >= 1


def test_pre2025_and_current_boundaries_give_different_units(client, keys) -> None:
    cur = client.get("/api/incidents/rates", headers=keys["operator"], params=YEAR).json()
    old = client.get("/api/incidents/rates", headers=keys["operator"],
                     params={**YEAR, "boundaries": "pre2025"}).json()
    assert old["boundaries_day"] == "2025-06-30"
    cur_codes = {u["code"] for u in cur["units"]}
    old_codes = {u["code"] for u in old["units"]}
    assert cur_codes != old_codes and len(old_codes) > len(cur_codes)
    # the same incidents, distributed over other units
    assert sum(u["count"] for u in cur["units"]) == sum(u["count"] for u in old["units"])
    geo = client.get("/api/incidents/rates", headers=keys["operator"],
                     params={**YEAR, "boundaries": "pre2025", "format": "geojson"}).json()
    assert geo["type"] == "FeatureCollection" and len(geo["features"]) == len(old_codes)
    assert geo["features"][0]["geometry"]["type"] == "MultiPolygon"
    assert {"rank", "per_km2", "per_1000", "class"} <= set(geo["features"][0]["properties"])


def test_unit_filter_on_either_boundary_set(client, conn, keys) -> None:
    old_code, new_code = conn.execute(
        "SELECT o.code, n.code FROM admin_units o JOIN admin_units n ON n.level = 'commune'"
        " AND n.valid_to IS NULL AND ST_Covers(n.geom, ST_PointOnSurface(o.geom))"
        " WHERE o.level = 'commune' AND o.valid_to = '2025-07-01'"
        " AND o.code NOT IN (SELECT code FROM admin_units WHERE valid_to IS NULL) LIMIT 1").fetchone()
    for code, boundaries, day in ((old_code, "pre2025", "2025-06-30"), (new_code, "current", None)):
        geom_day = day or dt.date.today().isoformat()
        expected = conn.execute(
            "SELECT count(*) FROM incidents t, admin_units u WHERE u.code = %s AND u.valid_from <= %s"
            " AND (u.valid_to IS NULL OR u.valid_to > %s) AND ST_Covers(u.geom, t.geom)"
            " AND t.reported_at >= %s AND t.reported_at < %s AND t.category <> 'security_event'",
            (code, geom_day, geom_day, H1_START, H1_END)).fetchone()[0]
        assert expected > 0
        grid = client.get("/api/incidents/grid", headers=keys["operator"],
                          params={**YEAR, "unit": code, "boundaries": boundaries}).json()
        assert grid["total"] == expected
        stats = client.get("/api/incidents/stats", headers=keys["operator"],
                           params={**YEAR, "unit": code, "boundaries": boundaries}).json()
        assert stats["current"]["total"] == expected and stats["area"]["code"] == code
    # an old commune does not exist on current boundaries: a 404 naming it
    r = client.get("/api/incidents/grid", headers=keys["operator"], params={**YEAR, "unit": old_code})
    assert r.status_code == 404 and old_code in r.text
    r = client.get("/api/incidents/grid", headers=keys["operator"],
                   params={**YEAR, "unit": old_code, "boundaries": "pre2025", "as_of": "2025-01-01"})
    assert r.status_code == 400 and r.json()["parameter"] == "as_of"


def test_source_filter(client, conn, keys) -> None:
    n = sql_count(conn, "operator", H1_START, H1_END, "t.source = ANY(%s)", (["hotline", "camera"],))
    body = client.get("/api/incidents/grid", headers=keys["operator"],
                      params={**YEAR, "source": "hotline,camera"}).json()
    assert body["total"] == n
    r = client.get("/api/incidents/grid", headers=keys["operator"], params={**YEAR, "source": "fax"})
    assert r.status_code == 400 and r.json()["parameter"] == "source"


# --- change --------------------------------------------------------------------------------------


@pytest.mark.parametrize("against", ["previous", "year"])
def test_change_per_commune_equals_sql_counts_of_both_windows(client, conn, keys, against) -> None:
    params = {"start": "2026-04-01", "end": "2026-04-30", "against": against}
    body = client.get("/api/incidents/change", headers=keys["operator"], params=params).json()
    start, end = dt.datetime(2026, 4, 1, tzinfo=VN), dt.datetime(2026, 5, 1, tzinfo=VN)
    if against == "previous":
        b_start, b_end = start - (end - start), start
    else:
        b_start, b_end = dt.datetime(2025, 4, 1, tzinfo=VN), dt.datetime(2025, 5, 1, tzinfo=VN)
    assert body["base"]["start"] == b_start.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    cur = _independent_counts(conn, start, end)
    base = _independent_counts(conn, b_start, b_end)
    assert len(body["features"]) == len(cur)
    for feat in body["features"]:
        p = feat["properties"]
        assert (p["current"], p["base"]) == (cur[p["code"]], base[p["code"]])
        assert p["change"] == p["current"] - p["base"]
        assert p["direction"] == ("up" if p["change"] > 0 else "down" if p["change"] < 0 else "same")
        if p["base"]:
            assert p["percent"] == pytest.approx(100 * p["change"] / p["base"], abs=0.06)
        else:
            assert p["percent"] is None
    assert body["total"] == sum(cur.values()) and body["base_total"] == sum(base.values())
    # the significance is a two-sided conditional binomial test
    from scipy.stats import binomtest

    ratio = (end - start) / (b_end - b_start)
    for feat in body["features"][:20]:
        p = feat["properties"]
        if p["current"] + p["base"]:
            expect = binomtest(p["current"], p["current"] + p["base"], ratio / (1 + ratio)).pvalue
            assert p["p_value"] == pytest.approx(expect, abs=2e-3)


def _independent_counts(conn, start: dt.datetime, end: dt.datetime) -> dict[str, int]:
    return dict(conn.execute(
        "SELECT u.code, (SELECT count(*) FROM incidents t WHERE ST_Covers(u.geom, t.geom)"
        " AND t.reported_at >= %s AND t.reported_at < %s AND t.category <> 'security_event')"
        " FROM admin_units u WHERE u.level = 'commune' AND u.valid_to IS NULL",
        (start, end)).fetchall())


def test_change_per_grid_cell_adds_up_to_both_windows(client, conn, keys) -> None:
    body = client.get("/api/incidents/change", headers=keys["operator"], params={
        "start": "2026-04-01", "end": "2026-04-30", "by": "grid", "size": 1500}).json()
    start, end = dt.datetime(2026, 4, 1, tzinfo=VN), dt.datetime(2026, 5, 1, tzinfo=VN)
    assert sum(f["properties"]["current"] for f in body["features"]) == sql_count(
        conn, "operator", start, end)
    assert sum(f["properties"]["base"] for f in body["features"]) == sql_count(
        conn, "operator", start - (end - start), start)
    assert all(f["properties"]["current"] + f["properties"]["base"] > 0 for f in body["features"])
    r = client.get("/api/incidents/change", headers=keys["operator"], params={
        "start": "2024-12-01", "end": "2026-04-30", "against": "year"})
    assert r.status_code == 400 and r.json()["parameter"] == "against"


# --- access --------------------------------------------------------------------------------------


def test_security_events_never_counted_for_an_operator(client, conn, keys) -> None:
    events = sql_count(conn, "security_officer", H1_START, H1_END, "t.category = 'security_event'")
    assert events > 0
    only = {**YEAR, "category": "security_event"}
    for path, total in (("/api/incidents/grid", lambda b: b["total"]),
                        ("/api/incidents/density", lambda b: b["total"]),
                        ("/api/incidents/rates", lambda b: b["total"]),
                        ("/api/incidents/change", lambda b: b["total"])):
        op = client.get(path, headers=keys["operator"], params=only).json()
        sec = client.get(path, headers=keys["security_officer"], params=only).json()
        assert total(op) == 0, path
        assert total(sec) == events if path != "/api/incidents/change" else total(sec) > 0, path
    tile = client.get(f"/api/incidents/grid/tiles/8/{_tile_x(106.07, 8)}/{_tile_y(21.1, 8)}",
                      headers=keys["operator"], params=only).content
    assert not tile or not mapbox_vector_tile.decode(tile).get("incident_grid", {}).get("features")
    tile = client.get(f"/api/incidents/grid/tiles/8/{_tile_x(106.07, 8)}/{_tile_y(21.1, 8)}",
                      headers=keys["security_officer"], params=only).content
    feats = mapbox_vector_tile.decode(tile)["incident_grid"]["features"]
    assert sum(f["properties"]["count"] for f in feats) == events
    # the fixed scale's reference is the operator's own: no trace of the events in it
    op = client.get("/api/incidents/density", headers=keys["operator"], params=only).json()
    assert op["legend"]["reference"]["max"] == 0
    # anonymous callers see the grid's aggregates only: no security event, no cell under 3
    # (tests/test_suppression.py checks every output)
    anon = client.get("/api/incidents/grid", params=only).json()
    assert anon["suppressed"] is True and anon["total"] == 0 and not anon["features"]


def test_reads_with_restricted_rows_are_audited(client, conn, keys) -> None:
    def count(path: str) -> int:
        return conn.execute("SELECT count(*) FROM audit_log WHERE action = 'read' AND layer = "
                            "'incidents' AND path = %s", (path,)).fetchone()[0]

    for path in ("/api/incidents/grid", "/api/incidents/rates", "/api/incidents/change",
                 "/api/incidents/density"):
        before = count(path)
        client.get(path, headers=keys["operator"], params=YEAR)
        assert count(path) == before, path
        client.get(path, headers=keys["security_officer"], params=YEAR)
        assert count(path) == before + 1, path


# --- Vietnam-time days ---------------------------------------------------------------------------


def test_dates_are_vietnam_days(client, conn, keys) -> None:
    """A day in a filter runs from 00:00 to 24:00 in Vietnam: an incident at 23:30 and one at
    00:30 (17:30 UTC the day before) on 15 March 2020 count on that day, one at 00:10 on the
    16th does not."""
    times = [dt.datetime(2020, 3, 15, 23, 30, tzinfo=VN), dt.datetime(2020, 3, 15, 0, 30, tzinfo=VN),
             dt.datetime(2020, 3, 16, 0, 10, tzinfo=VN), dt.datetime(2020, 3, 14, 23, 50, tzinfo=VN)]
    ids = [conn.execute(
        "INSERT INTO incidents (category, severity, status, source, title, reported_at, geom)"
        " VALUES ('fire', 2, 'received', 'hotline', 'Vietnam-day test', %s,"
        " ST_SetSRID(ST_MakePoint(106.07, 21.18), 4326)) RETURNING id", (t,)).fetchone()[0]
        for t in times]
    try:
        day = {"start": "2020-03-15", "end": "2020-03-15"}
        for path in ("/api/incidents/grid", "/api/incidents/heatmap"):
            body = client.get(path, headers=keys["operator"], params=day).json()
            assert body["total"] == 2, path
            assert body["start"] == "2020-03-14T17:00:00Z" and body["end"] == "2020-03-15T17:00:00Z"
        stats = client.get("/api/incidents/stats", headers=keys["operator"], params=day).json()
        assert stats["current"]["total"] == 2
    finally:
        conn.execute("DELETE FROM incidents WHERE id = ANY(%s)", (ids,))


def test_openapi_documents_the_new_views(client) -> None:
    spec = client.get("/openapi.json").json()
    for path in ("/api/incidents/density", "/api/incidents/density.tif", "/api/incidents/grid",
                 "/api/incidents/grid/tiles/{z}/{x}/{y}", "/api/incidents/rates",
                 "/api/incidents/change"):
        params = {p["name"]: p for p in spec["paths"][path]["get"]["parameters"]}
        assert {"start", "end", "category", "source", "unit", "boundaries", "as_of"} <= set(params)
        assert "Vietnam time" in params["start"]["description"]
        assert all(p.get("description") for p in params.values()), path
    params = {p["name"]: p for p in spec["paths"]["/api/incidents/density"]["get"]["parameters"]}
    assert params["bandwidth"]["schema"]["minimum"] == 50
    assert "fixed" in params["scale"]["description"]


def test_png_overlay_uses_only_legend_colours(client, keys) -> None:
    import base64

    from PIL import Image

    body = client.get("/api/incidents/density", headers=keys["operator"], params=YEAR).json()
    png = base64.b64decode(body["image"]["url"].split(",", 1)[1])
    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))
    colours = {tuple(int(v) for v in px[:3]) for px in img.reshape(-1, 4) if px[3]}
    legend = {tuple(int(c[i:i + 2], 16) for i in (1, 3, 5)) for c in body["legend"]["colors"]}
    assert colours and colours <= legend
    w, s, e, n = body["image"]["bounds"]
    assert 105.5 < w < e < 106.8 and 20.8 < s < n < 21.5


def test_weighted_fisher_jenks_is_mapclassify_s_optimum() -> None:
    import mapclassify

    rng = np.random.default_rng(7)
    for n, lam in ((150, 6), (300, 15), (280, 3)):
        y = rng.poisson(lam, n).astype(float)
        assert D.fisher_jenks_weighted(y, 5) == list(mapclassify.FisherJenks(y, k=5).bins)


@pytest.mark.parametrize(("shape", "kshape"), [((617, 803), (11, 11)), ((40, 33), (21, 21)),
                                               ((5, 900), (3, 7)), ((97, 101), (13, 1))])
def test_the_numpy_convolution_is_scipys(shape, kshape) -> None:
    # The KDE convolves with numpy's FFT (scipy.signal cost seconds to import in a request);
    # the reference is scipy's own fftconvolve, mode "same", odd and even sizes.
    from scipy.signal import fftconvolve

    rng = np.random.default_rng(7)
    a = rng.poisson(0.4, shape).astype(float)
    k = rng.random(kshape)
    got = D.fft_convolve_same(a, k)
    assert got.shape == a.shape
    assert np.allclose(got, fftconvolve(a, k, mode="same"), rtol=0, atol=1e-12)
