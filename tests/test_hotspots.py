"""Hot spots (Gi*) and emerging hot spots: the statistics against esda, scipy and formulas written
out, the categories on handcrafted series, and the API on synthetic incidents inserted in a
seeded cluster in a year the sample does not cover (2031), with the access rules."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
from psycopg import sql
from scipy import stats

from gis.analysis import hotspot_queries as hq
from gis.analysis import hotspots as hs

YEAR = 2031
HOT = "/api/incidents/hotspots"
EMERGING = "/api/incidents/hotspots/emerging"
TAG = "hotspot-test"


# --- statistics ---------------------------------------------------------------------------------


def _lattice(nx: int, ny: int, size: float = 100.0) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = np.meshgrid(np.arange(nx) * size, np.arange(ny) * size)
    return xs.ravel().astype(float), ys.ravel().astype(float)


def _gi_formula(y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Getis & Ord (1995) Gi*, binary weights with self, written out with loops."""
    n = len(y)
    xbar = y.sum() / n
    s = np.sqrt((y ** 2).sum() / n - xbar ** 2)
    z = np.empty(n)
    for i in range(n):
        wi = w[i].sum()
        num = (w[i] * y).sum() - xbar * wi
        den = s * np.sqrt((n * (w[i] ** 2).sum() - wi ** 2) / (n - 1))
        z[i] = num / den
    return z


def test_gi_star_z_equals_esda_and_the_formula() -> None:
    x, y = _lattice(15, 12)
    rng = np.random.default_rng(7)
    counts = rng.poisson(3, x.size).astype(float)
    counts[40:44] += 25
    g = hs.grid_graph(x, y, "square", 100.0)
    w = hs.graph_matrix(g, x.size)
    esda_z = hs.gi_star(counts, g, 0).Zs
    formula = _gi_formula(counts, w.toarray())
    np.testing.assert_allclose(esda_z, formula, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(hs.gi_star_z(w, counts), formula, rtol=1e-10, atol=1e-10)
    # several slices at once, as the cube uses it
    cube = np.stack([counts, counts[::-1], np.zeros_like(counts)], axis=1)
    z = hs.gi_star_z(w, cube)
    np.testing.assert_allclose(z[:, 1], _gi_formula(counts[::-1], w.toarray()), atol=1e-10)
    assert np.all(z[:, 2] == 0)  # a slice without incidents has no variance: no finding
    assert esda_z[41] > 3 and abs(esda_z[170]) < 2


def test_distance_band_is_queen_contiguity_of_the_grid() -> None:
    import geopandas as gpd
    from libpysal.graph import Graph
    from shapely.geometry import Polygon

    for shape in ("square", "hexagon"):
        s = 100.0
        if shape == "square":
            x, y = _lattice(6, 5, s)
            polys = [Polygon([(a - s / 2, b - s / 2), (a + s / 2, b - s / 2), (a + s / 2, b + s / 2),
                              (a - s / 2, b + s / 2)]) for a, b in zip(x, y, strict=True)]
        else:  # PostGIS's flat-topped layout
            h = s * np.sqrt(3)
            ii, jj = np.meshgrid(np.arange(6), np.arange(5))
            x = (1.5 * s * ii).ravel().astype(float)
            y = (h * jj + np.where(ii % 2 == 1, h / 2, 0)).ravel().astype(float)
            ang = np.radians(np.arange(0, 360, 60))
            polys = [Polygon(list(zip(np.round(a + s * np.cos(ang), 6), np.round(b + s * np.sin(ang), 6),
                                          strict=True)))
                     for a, b in zip(x, y, strict=True)]
        queen = Graph.build_contiguity(gpd.GeoSeries(polys), rook=False)
        band = hs.graph_matrix(hs.grid_graph(x, y, shape, s), len(x)).toarray()
        expected = hs.graph_matrix(queen.assign_self_weight(1.0), len(x)).toarray()
        assert (band == expected).all(), shape
        inner = band.sum(axis=1).max()
        assert inner == (9 if shape == "square" else 7)


def test_bh_adjusted_p_is_at_least_p_and_monotone() -> None:
    rng = np.random.default_rng(3)
    p = np.concatenate([rng.uniform(0, 1, 500), rng.uniform(0, 1e-4, 20)])
    adj = hs.bh_adjust(p)
    assert np.all(adj >= p - 1e-15) and np.all(adj <= 1)
    order = np.argsort(p)
    assert np.all(np.diff(adj[order]) >= -1e-15)  # monotone in p
    # the textbook definition, written out
    n = p.size
    ranked = np.sort(p)
    expected = np.array([min(1.0, min(ranked[j] * n / (j + 1) for j in range(k, n)))
                         for k in range(n)])
    np.testing.assert_allclose(adj[order], expected, rtol=1e-12)
    # esda's own FDR threshold agrees on which are significant
    import esda

    assert (adj < 0.05).sum() == (p <= esda.fdr(p, 0.05)).sum()
    # per row of a matrix
    two = hs.bh_adjust(np.stack([p, p[::-1]]))
    np.testing.assert_allclose(two[1], adj[::-1])


def test_permutation_rule_lets_the_strictest_class_be_reached() -> None:
    for n in (3, 50, 150):
        perms = hs.permutations_for(n)
        assert (perms + 1) % 1000 == 0
        assert hs.smallest_p(perms) <= hs.STRICTEST_ALPHA / n / 2  # half the BH rank-1 threshold
        assert hs.p_value_method(n, None) == perms
        assert n * perms <= hs.MAX_PERMUTATION_WORK
    # 999 permutations could not: their smallest p is above 0.01 / n for n > 20
    assert hs.smallest_p(999) > hs.STRICTEST_ALPHA / 21
    for n in (151, 5_000, 60_000):
        assert hs.p_value_method(n, None) == 0 and hs.smallest_p(0) == 0
    assert hs.p_value_method(5_000, 999) == 999


def test_mann_kendall_against_scipy_and_known_values() -> None:
    rng = np.random.default_rng(11)
    series = rng.normal(size=(30, 24)) + np.linspace(0, 2, 24) * rng.integers(-1, 2, (30, 1))
    mk = hs.mann_kendall(series)
    t = np.arange(24)
    for k in range(30):
        tau = stats.kendalltau(t, series[k]).statistic
        assert mk.tau[k] == pytest.approx(tau, abs=1e-12)  # no ties: tau_b = tau_a = S / pairs
    # Known values: 1..10 strictly increasing: S = 45, Var = 10·9·25/18 = 125, z = 44/√125.
    one = hs.mann_kendall(np.arange(1, 11))
    assert one.s[0] == 45 and one.z[0] == pytest.approx(44 / np.sqrt(125))
    assert one.p[0] == pytest.approx(2 * stats.norm.sf(44 / np.sqrt(125)))
    # Ties: [1, 2, 2, 3]: S = 5 - 0 = 5 (pairs 1<2,1<2,1<3,2<3,2<3; 2=2 is 0);
    # Var = (4·3·13 - 2·1·9) / 18 = 138 / 18; z = 4 / √(138/18).
    tied = hs.mann_kendall(np.array([1.0, 2, 2, 3]))
    assert tied.s[0] == 5 and tied.z[0] == pytest.approx(4 / np.sqrt(138 / 18))
    flat = hs.mann_kendall(np.zeros(12))
    assert flat.z[0] == 0 and flat.p[0] == 1


def _series(pattern: str) -> tuple[np.ndarray, np.ndarray]:
    """H hot, C cold, . not significant -> (z, sig)."""
    z = np.array([3.0 if c == "H" else -3.0 if c == "C" else 0.5 for c in pattern])
    return z, np.array([c in "HC" for c in pattern])


CATEGORY_CASES = [
    ("..........H", 0.0, 1.0, "new_hot"),
    ("C.........H", 0.0, 1.0, "new_hot"),  # never hot before (a cold past is allowed)
    (".......HHHH", 2.0, 0.04, "consecutive_hot"),
    ("HHHHHHHHHHH", 3.0, 0.001, "intensifying_hot"),
    ("HHHHHHHHHHH", 0.5, 0.6, "persistent_hot"),
    ("HHHHH.HHHHH", -3.0, 0.001, "diminishing_hot"),
    ("..H..H...HH", 0.0, 1.0, "sporadic_hot"),
    ("H.H......HH", 0.0, 1.0, "sporadic_hot"),  # final run, but hot before it
    ("C.H..C....H", 0.0, 1.0, "oscillating_hot"),
    ("HHHHHHHHHH.", -1.0, 0.3, "historical_hot"),
    ("..........C", 0.0, 1.0, "new_cold"),
    ("........CCC", 0.0, 1.0, "consecutive_cold"),
    ("CCCCCCCCCCC", -3.0, 0.001, "intensifying_cold"),
    ("CCCCCCCCCCC", 0.2, 0.8, "persistent_cold"),
    ("CCCCCCCCCCC", 3.0, 0.001, "diminishing_cold"),
    ("..C.C.....C", 0.0, 1.0, "sporadic_cold"),
    ("H...H..C..C", 0.0, 1.0, "oscillating_cold"),
    ("CCCCCCCCCC.", 0.0, 1.0, "historical_cold"),
    ("...........", 0.0, 1.0, "no_pattern"),
    ("H..H.......", 0.0, 1.0, "no_pattern"),
]


@pytest.mark.parametrize("pattern, trend_z, trend_p, expected", CATEGORY_CASES)
def test_emerging_categories_on_handcrafted_series(pattern, trend_z, trend_p, expected) -> None:
    z, sig = _series(pattern)
    assert hs.classify(z[None], sig[None], np.array([trend_z]), np.array([trend_p])) == [expected]


def test_every_category_is_covered() -> None:
    covered = {c for *_, c in CATEGORY_CASES}
    for name in hs.CATEGORIES:
        assert {f"{name}_hot", f"{name}_cold"} <= covered


def test_monthly_and_weekly_bins_are_vietnam_calendar() -> None:
    # 17:00 UTC on 31 Jan is already 1 Feb in Vietnam (UTC+7)
    b = hq.bins_for("monthly", dt.datetime(2031, 1, 31, 17, tzinfo=dt.UTC),
                    dt.datetime(2031, 4, 1, tzinfo=dt.UTC))
    assert b.starts == (dt.date(2031, 2, 1), dt.date(2031, 3, 1), dt.date(2031, 4, 1))
    w = hq.bins_for("weekly", dt.datetime(2031, 1, 1, tzinfo=dt.UTC),
                    dt.datetime(2031, 1, 15, tzinfo=dt.UTC))
    assert w.starts[0] == dt.date(2030, 12, 30) and all(d.weekday() == 0 for d in w.starts)


# --- the grid in PostGIS ------------------------------------------------------------------------


@pytest.mark.parametrize("shape, size", [("hexagon", 700), ("square", 600), ("hexagon", 333)])
def test_every_incident_is_counted_in_the_cell_that_covers_it(conn, shape, size) -> None:
    """The arithmetic assignment (hotspot_queries) against ST_Covers on PostGIS's own cells."""
    q = sql.SQL(
        "WITH p AS MATERIALIZED (SELECT ST_Transform(geom, 9209) AS g FROM incidents ORDER BY id"
        " LIMIT 3000), c AS (SELECT p.g, q.i, q.j FROM (SELECT g, ST_X(g) AS x, ST_Y(g) AS y FROM p) p"
        " CROSS JOIN LATERAL ({cell}) q)"
        " SELECT count(*), count(*) FILTER (WHERE ST_Covers((SELECT g.geom FROM {grid}(%s, c.g) g"
        " WHERE g.i = c.i AND g.j = c.j), c.g)) FROM c"
    ).format(cell=hq._cell_of(shape), grid=sql.Identifier(hq.SHAPES[shape].lower()))
    rows = conn.execute(q, [size, size]).fetchone()
    assert rows[0] == 3000 and rows[1] == 3000


# --- the API on synthetic incidents -------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic(conn):
    """In 2031: a uniform background every month over the province (seeded), a traffic cluster
    around the province's point on surface all year plus a burst in December, and a cluster of
    security events elsewhere (only a security officer may count it)."""
    conn.execute("DELETE FROM incidents WHERE title = %s", [TAG])
    province = conn.execute("SELECT id FROM admin_units WHERE level = 'province' AND valid_to IS NULL"
                            ).fetchone()[0]
    insert = (
        "INSERT INTO incidents (category, severity, status, source, title, reported_at, geom)"
        " SELECT %s, 2, 'received', 'hotline', %s,"
        " make_timestamptz(%s, %s, 1 + (d.path[1] %% 27), 3, 0, 0, 'UTC'), d.geom"
        " FROM ST_Dump(ST_GeneratePoints(%s, %s, %s)) d")
    centre = conn.execute(
        "SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM admin_units"
        " WHERE id = %s", [province]).fetchone()
    cluster = conn.execute("SELECT ST_Buffer(ST_Transform(ST_SetSRID(ST_MakePoint(%s, %s), 4326),"
                           " 9209), 1500)", centre).fetchone()[0]
    for month in range(1, 13):
        g = conn.execute("SELECT geom FROM admin_units WHERE id = %s", [province]).fetchone()[0]
        conn.execute(insert, ["traffic_accident", TAG, YEAR, month, g, 300, month])
        small = conn.execute("SELECT ST_Transform(%s::geometry, 4326)", [cluster]).fetchone()[0]
        conn.execute(insert, ["traffic_accident", TAG, YEAR, month, small, 60, 100 + month])
    conn.execute(insert, ["traffic_accident", TAG, YEAR, 12,
                          conn.execute("SELECT ST_Transform(ST_Translate(%s::geometry, 12000, 0), 4326)",
                                       [cluster]).fetchone()[0], 120, 999])
    security = conn.execute("SELECT ST_Transform(ST_Translate(%s::geometry, -9000, 4000), 4326)",
                            [cluster]).fetchone()[0]
    conn.execute(insert, ["security_event", TAG, YEAR, 6, security, 400, 77])
    conn.commit()
    spots = conn.execute("SELECT ST_Collect(ARRAY[%s::geometry, ST_Translate(%s::geometry, 12000, 0),"
                         " ST_Translate(%s::geometry, -9000, 4000)])", [cluster] * 3).fetchone()[0]
    yield {"centre": centre, "cluster": cluster, "province": province, "spots": spots}
    conn.execute("DELETE FROM incidents WHERE title = %s", [TAG])
    conn.commit()


def _get(client, keys, role, path, **params):
    base = {"start": f"{YEAR - 1}-12-31T17:00:00Z", "end": f"{YEAR}-12-31T17:00:00Z"}
    r = client.get(path, headers=keys[role], params={**base, **params})
    return r


def _cells_near(conn, body, geom, srid=9209, within=0.0):
    """ids 'i,j' of the body's cells within WITHIN metres of GEOM (projected)."""
    ids = []
    for f in body["features"]:
        p = f["properties"]
        hit = conn.execute(
            "SELECT ST_DWithin(ST_Transform(ST_SetSRID(ST_GeomFromGeoJSON(%s), 4326), %s),"
            " %s::geometry, %s)", [json.dumps(f["geometry"]), srid, geom, within]
        ).fetchone()[0]
        if hit:
            ids.append(f"{p['i']},{p['j']}")
    return set(ids)


@pytest.mark.parametrize("cell_m, method", [(1800, "permutation"), (800, "analytic")])
def test_cluster_cells_are_hot_at_99_and_the_rest_is_not(client, conn, keys, synthetic, cell_m,
                                                         method) -> None:
    r = _get(client, keys, "operator", HOT, cell_m=cell_m, end=f"{YEAR}-11-30T17:00:00Z")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["p_value"] == method
    if method == "permutation":
        assert body["cells"] <= hs.AUTO_PERMUTATION_MAX_CELLS
        assert body["permutations"] == hs.permutations_for(body["cells"])
        assert body["smallest_p"] <= 0.01 / body["cells"] / 2 * 1.001
    else:
        assert body["cells"] > hs.AUTO_PERMUTATION_MAX_CELLS and body["permutations"] == 0
    props = {f"{f['properties']['i']},{f['properties']['j']}": f["properties"]
             for f in body["features"]}
    # counts: every synthetic traffic incident of Jan-Nov (security events hidden from operators)
    assert body["total"] == sum(p["count"] for p in props.values()) == 11 * 360
    assert min(p["count"] for p in props.values()) == 0  # empty cells are in the grid
    for p in props.values():
        assert p["p_fdr"] >= p["p"] - 1e-12
        assert p["class"] == hs.CLASS_NAMES[p["gi_bin"]]
    core = _cells_near(conn, body, conn.execute("SELECT ST_Centroid(%s::geometry)",
                                                [synthetic["cluster"]]).fetchone()[0])
    assert core and all(props[c]["class"] == "hot_99" for c in core)
    far = set(props) - _cells_near(conn, body, synthetic["cluster"], within=4 * cell_m)
    assert len(far) > len(props) / 2
    hot_far = [c for c in far if props[c]["gi_bin"] > 0]
    assert not hot_far
    assert sum(props[c]["gi_bin"] == 0 for c in far) >= 0.95 * len(far)


def test_a_uniform_year_has_no_hot_spot(client, keys, synthetic, conn) -> None:
    """A commune far from every cluster holds only the uniform background: nothing there is
    significant."""
    code = conn.execute(
        "SELECT u.code FROM admin_units u WHERE u.level = 'commune' AND u.valid_to IS NULL"
        " AND NOT ST_DWithin(ST_Transform(u.geom, 9209), %s::geometry, 5000)"
        " ORDER BY ST_Area(u.geom) DESC LIMIT 1", [synthetic["spots"]]).fetchone()[0]
    r = _get(client, keys, "operator", HOT, cell_m=300, commune=code, end=f"{YEAR}-11-30T17:00:00Z")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["area"]["code"] == code and body["total"] > 20
    assert body["summary"]["not_significant"] == body["cells"]


def test_security_events_are_left_out_for_an_operator(client, keys, synthetic) -> None:
    op = _get(client, keys, "operator", HOT, cell_m=1500, category="traffic_accident,security_event")
    sec = _get(client, keys, "security_officer", HOT, cell_m=1500,
               category="traffic_accident,security_event")
    assert op.status_code == sec.status_code == 200
    assert sec.json()["total"] - op.json()["total"] == 400
    only_sec = _get(client, keys, "security_officer", HOT, cell_m=1500, category="security_event")
    only_op = _get(client, keys, "operator", HOT, cell_m=1500, category="security_event")
    hot = ("hot_99", "hot_95", "hot_90")
    assert sum(only_sec.json()["summary"][c] for c in hot) > 0 and only_sec.json()["total"] == 400
    assert only_op.json()["total"] == 0
    assert only_op.json()["summary"]["not_significant"] == only_op.json()["cells"]


def test_a_cell_says_why_it_is_classed(client, keys, synthetic) -> None:
    body = _get(client, keys, "operator", HOT, cell_m=1500).json()
    top = max(body["features"], key=lambda f: f["properties"]["z"])["properties"]
    one = _get(client, keys, "operator", HOT, cell_m=1500, cell=f"{top['i']},{top['j']}").json()
    assert len(one["features"]) == 1
    p = one["features"][0]["properties"]
    assert p["z"] == top["z"] and p["class"] == top["class"] == "hot_99"
    assert p["why"]["vi"].startswith("Điểm nóng với độ tin cậy 99 %")
    assert p["why"]["en"].startswith("Hot spot at 99 % confidence")
    assert f"z = {top['z']:.2f}" in p["why"]["vi"] and "FDR" in p["why"]["en"]
    assert "Mann-Kendall" in p["why"]["vi"] and len(p["series"]) == 12
    # a December burst: that cell's monthly counts rise
    missing = _get(client, keys, "operator", HOT, cell_m=1500, cell="99999,99999")
    assert missing.status_code == 404


def test_emerging_finds_the_december_burst_as_new(client, conn, keys, synthetic) -> None:
    r = _get(client, keys, "operator", EMERGING, cell_m=1500)
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["bins"]) == 12 and body["bins"][0] == f"{YEAR}-01-01"
    props = {f"{f['properties']['i']},{f['properties']['j']}": f["properties"]
             for f in body["features"]}
    burst = conn.execute("SELECT ST_Centroid(ST_Translate(%s::geometry, 12000, 0))",
                         [synthetic["cluster"]]).fetchone()[0]
    core = _cells_near(conn, body, burst)
    assert core and all(props[c]["category"] == "new_hot" for c in core)
    steady = _cells_near(conn, body, conn.execute("SELECT ST_Centroid(%s::geometry)",
                                                  [synthetic["cluster"]]).fetchone()[0])
    assert all(props[c]["category"] in ("persistent_hot", "intensifying_hot", "diminishing_hot")
               for c in steady)
    for p in props.values():
        assert len(p["series"]) == len(p["z_series"]) == 12
    assert sum(body["summary"].values()) == body["cells"]
    c = next(iter(core))
    one = _get(client, keys, "operator", EMERGING, cell_m=1500, cell=c).json()
    why = one["features"][0]["properties"]["why"]
    assert why["vi"].startswith("Điểm nóng mới") and "Mann-Kendall" in why["en"]


@pytest.mark.parametrize("path, params, field, text_vi", [
    (HOT, {"cell_m": "60"}, "cell_m", "vượt quá tối đa"),
    (HOT, {"cell_m": "10"}, "cell_m", None),
    (HOT, {"shape": "triangle"}, "shape", None),
    (HOT, {"permutations": "5"}, "permutations", "phải là 'auto'"),
    (HOT, {"permutations": "many"}, "permutations", None),
    (HOT, {"cell_m": "300", "permutations": "99999"}, "permutations", "số ô × số hoán vị"),
    (HOT, {"cell": "a,b"}, "cell", None),
    (HOT, {"bin": "daily"}, "bin", None),
    (HOT, {"colour": "red"}, "colour", None),
    (EMERGING, {"start": f"{YEAR}-10-01"}, "bin", "cần ít nhất 10 kỳ"),
    (EMERGING, {"alpha": "0.5"}, "alpha", None),
    (HOT, {"commune": "00000"}, None, "không tìm thấy đơn vị hành chính"),
])
def test_bad_parameters_are_4xx_naming_the_field(client, keys, synthetic, path, params, field,
                                                 text_vi) -> None:
    r = _get(client, keys, "operator", path, **params)
    assert r.status_code in (400, 404), r.text
    text = r.text
    if field:
        assert r.status_code == 400 and field in text
    if text_vi:
        assert text_vi in r.json()["detail"] + str(r.json().get("problems", "")), text


@pytest.mark.parametrize("path", [HOT, EMERGING])
@pytest.mark.parametrize("role", ["anonymous", "citizen"])
def test_404_for_those_who_may_not_read_incidents(client, keys, path, role) -> None:
    r = client.get(path, headers=keys[role], params={"cell_m": "bad"})
    assert r.status_code == 404
    assert "incident" not in str({k: v for k, v in r.json().items() if k != "instance"})


def test_reads_with_restricted_rows_are_audited(client, conn, keys, role_keys, synthetic) -> None:
    before = conn.execute("SELECT coalesce(max(id), 0) FROM audit_log").fetchone()[0]
    assert _get(client, keys, "security_officer", HOT, cell_m=2500).status_code == 200
    assert _get(client, keys, "security_officer", EMERGING, cell_m=2500).status_code == 200
    rows = conn.execute("SELECT target->>'channel' FROM audit_log WHERE id > %s AND username = %s",
                        [before, role_keys["security_officer"]["user"]]).fetchall()
    assert {"hotspots", "emerging-hotspots"} <= {r[0] for r in rows}


def test_permutation_p_counts_ties_on_both_sides() -> None:
    """A cell whose neighbourhood is all zeros ties with nearly every permutation: p = 1, not
    the smallest p there is (esda's p_sim folds ties into "larger" and calls it extreme)."""
    x, y = _lattice(10, 10)
    g = hs.grid_graph(x, y, "square", 100.0)
    w = hs.graph_matrix(g, x.size)
    counts = np.zeros(x.size)
    counts[[44, 45, 54, 55]] = 30  # a cluster in the middle
    counts[[0, 99, 9]] = 1
    p = hs.permutation_p(counts, w, 1999)
    # The cluster is among the most extreme: a permutation drawing its three other cells among
    # a corner cell's 8 neighbours (chance 336 / 941,094, so 0.7 times in 1,999 on average)
    # ties with it, so p is the floor 2 / 2000 or a step or two above it.
    assert p[44] <= 6 / 2000 and p[55] <= 6 / 2000
    zero_corner = 90  # all zero around it
    assert p[zero_corner] == 1.0
    assert np.all((p >= 2 / 2000) & (p <= 1))
    # the same seed gives the same answer
    np.testing.assert_array_equal(p, hs.permutation_p(counts, w, 1999))


@pytest.mark.parametrize("shape", ["square", "hexagon"])
def test_kdtree_weights_equal_libpysal_and_give_esda_z(shape: str) -> None:
    """The request path's weights (a k-d tree straight into a sparse matrix) are libpysal's
    distance-band graph cell for cell, and Gi* on them is esda's G_Local on that graph."""
    s = 100.0
    if shape == "square":
        x, y = _lattice(23, 17, s)
    else:  # PostGIS's flat-topped layout
        h = s * np.sqrt(3)
        ii, jj = np.meshgrid(np.arange(23), np.arange(17))
        x = (1.5 * s * ii).ravel().astype(float)
        y = (h * jj + np.where(ii % 2 == 1, h / 2, 0)).ravel().astype(float)
    # cells of an irregular study area: drop some, shuffle the order
    rng = np.random.default_rng(11)
    keep = rng.permutation(x.size)[: int(x.size * 0.8)]
    x, y = x[keep], y[keep]
    g = hs.grid_graph(x, y, shape, s)
    w = hs.grid_weights(x, y, shape, s)
    assert (w != hs.graph_matrix(g, x.size)).nnz == 0
    assert w.diagonal().tolist() == [1.0] * x.size
    counts = rng.poisson(2, x.size).astype(float)
    counts[:6] += 20
    np.testing.assert_allclose(hs.gi_star_z(w, counts), hs.gi_star(counts, g, 0).Zs,
                               rtol=1e-10, atol=1e-10)


def test_permutation_p_equals_the_per_cell_loop() -> None:
    """The vectorised conditional permutation (prefix sums, binary search, the self-draws
    corrected) gives exactly what a loop over every cell and permutation gives on the same draws:
    each cell's neighbours are the first k drawn cells that are not itself."""
    x, y = _lattice(9, 8)
    rng = np.random.default_rng(5)
    counts = rng.poisson(1.5, x.size).astype(float)
    counts[30:33] += 9
    w = hs.grid_weights(x, y, "square", 100.0)
    w = w.tolil()
    w[0, 1] = w[1, 0] = 0  # an irregular neighbourhood: k varies more than at the edges
    w = w.tocsr()
    w.eliminate_zeros()
    perms = 499
    got = hs.permutation_p(counts, w, perms, seed=21, chunk=200)
    n = x.size
    k = np.diff(w.indptr) - 1
    obs = w @ counts
    draws_rng = np.random.default_rng(21)
    ge, le = np.zeros(n), np.zeros(n)
    done = 0
    while done < perms:
        c = min(200, perms - done)
        draws = hs._draws(draws_rng, c, n, int(k.max()) + 1)
        for p in range(c):
            for i in range(n):
                others = [d for d in draws[p] if d != i][: k[i]]
                s = counts[others].sum() + counts[i]
                ge[i] += s >= obs[i] - 1e-9
                le[i] += s <= obs[i] + 1e-9
        done += c
    expected = np.minimum(1.0, 2 * np.minimum(ge + 1, le + 1) / (perms + 1))
    np.testing.assert_array_equal(got, expected)
    assert got[31] <= 0.02 and np.median(got) > 0.2


def test_draws_are_distinct_and_uniform() -> None:
    rng = np.random.default_rng(0)
    d = hs._draws(rng, 20_000, 50, 5)
    assert all(len(set(row)) == 5 for row in d[:2000])
    freq = np.bincount(d.ravel(), minlength=50) / d.size
    assert np.abs(freq - 1 / 50).max() < 0.003
    small = hs._draws(rng, 1000, 6, 3)  # the permutation path
    assert all(len(set(row)) == 3 for row in small) and small.max() < 6


# --- emerging categories through the database: a growing cluster, a one-off, a recurring one ---

EMERGING_YEAR = 2032
EMERGING_TAG = "hotspot-test-emerging"


@pytest.fixture(scope="module")
def planted(conn):
    """In 2032, inside the largest current commune: a uniform background (about one incident per
    200 m hexagon and month, seeded), and three planted clusters of 300 m radius at least 1.5 km
    apart: one growing every month (8 + 8·m incidents in month m = 0..11), a one-off (60 in
    December only) and a recurring one (40 in April, August and December)."""
    conn.execute("DELETE FROM incidents WHERE title = %s", [EMERGING_TAG])
    code, unit = conn.execute(
        "SELECT code, ST_Transform(geom, 9209) FROM admin_units WHERE level = 'commune'"
        " AND valid_to IS NULL ORDER BY ST_Area(geom) DESC, code LIMIT 1").fetchone()
    candidates = conn.execute(
        "SELECT ST_X(d.geom), ST_Y(d.geom) FROM ST_Dump(ST_GeneratePoints(ST_Buffer(%s::geometry,"
        " -700), 300, 5)) d ORDER BY d.path[1]", [unit]).fetchall()
    centres: list[tuple[float, float]] = []
    for x, y in candidates:  # three far enough apart that their neighbourhoods do not meet
        if all((x - a) ** 2 + (y - b) ** 2 >= 1500 ** 2 for a, b in centres):
            centres.append((x, y))
        if len(centres) == 3:
            break
    assert len(centres) == 3
    insert = (
        "INSERT INTO incidents (category, severity, status, source, title, reported_at, geom)"
        " SELECT 'traffic_accident', 2, 'received', 'hotline', %s,"
        " make_timestamptz(%s, %s, 1 + (d.path[1] %% 27), 3, 0, 0, 'UTC'),"
        " ST_Transform(d.geom, 4326) FROM ST_Dump(ST_GeneratePoints(%s::geometry, %s, %s)) d")
    cells = conn.execute("SELECT ST_Area(%s::geometry) / %s", [unit, hq.cell_area_m2("hexagon", 200)]
                         ).fetchone()[0]
    discs = [conn.execute("SELECT ST_Buffer(ST_SetSRID(ST_MakePoint(%s, %s), 9209), 300)", c
                          ).fetchone()[0] for c in centres]
    growing, one_off, recurring = discs
    for month in range(1, 13):
        conn.execute(insert, [EMERGING_TAG, EMERGING_YEAR, month, unit, round(cells), 200 + month])
        conn.execute(insert, [EMERGING_TAG, EMERGING_YEAR, month, growing, 8 * month, 300 + month])
        if month in (4, 8, 12):
            conn.execute(insert, [EMERGING_TAG, EMERGING_YEAR, month, recurring, 40, 400 + month])
    conn.execute(insert, [EMERGING_TAG, EMERGING_YEAR, 12, one_off, 60, 500])
    conn.commit()
    centre_points = [conn.execute("SELECT ST_SetSRID(ST_MakePoint(%s, %s), 9209)", c).fetchone()[0]
                     for c in centres]
    yield {"code": code, "growing": centre_points[0], "one_off": centre_points[1],
           "recurring": centre_points[2]}
    conn.execute("DELETE FROM incidents WHERE title = %s", [EMERGING_TAG])
    conn.commit()


def test_planted_growing_one_off_and_recurring_clusters_are_classed(client, conn, keys,
                                                                   planted) -> None:
    """The incidents go through the database and the API (the cube counted in PostGIS, Gi* per
    monthly slice, Mann-Kendall, the categories): the growing cluster is intensifying, the
    one-off new, the recurring one sporadic; the background shows no hot pattern."""
    r = client.get(EMERGING, headers=keys["operator"], params={
        "start": f"{EMERGING_YEAR - 1}-12-31T17:00:00Z", "end": f"{EMERGING_YEAR}-12-31T17:00:00Z",
        "commune": planted["code"], "cell_m": 200, "bin": "monthly"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["area"]["code"] == planted["code"] and len(body["bins"]) == 12
    props = {f"{f['properties']['i']},{f['properties']['j']}": f["properties"]
             for f in body["features"]}
    categories = {}
    for name in ("growing", "one_off", "recurring"):
        core = _cells_near(conn, body, planted[name])
        assert len(core) == 1, name  # the cell holding the cluster's centre
        categories[name] = props[core.pop()]
    growing = categories["growing"]
    assert growing["category"] == "intensifying_hot", growing
    assert growing["hot_bins"] >= 11 and growing["trend_z"] > 0 and growing["trend_p"] < 0.05
    assert growing["series"][-1] > 3 * growing["series"][0]
    one_off = categories["one_off"]
    assert one_off["category"] in ("new_hot", "sporadic_hot"), one_off
    assert one_off["hot_bins"] == 1 and one_off["series"][-1] > 3 * max(one_off["series"][:-1])
    recurring = categories["recurring"]
    assert recurring["category"] == "sporadic_hot", recurring
    assert recurring["hot_bins"] >= 3 and recurring["cold_bins"] == 0
    # away from the clusters (2 cells and more): no hot pattern of growth or persistence
    near = set()
    for name in ("growing", "one_off", "recurring"):
        near |= _cells_near(conn, body, planted[name], within=900)
    rest = [props[c]["category"] for c in set(props) - near]
    assert rest and not [c for c in rest if c.split("_")[0] in
                         ("intensifying", "persistent", "consecutive", "new")], rest
    # the same cell asked alone says why, in Vietnamese first
    cell = next(c for c, p in props.items() if p is growing)
    one = client.get(EMERGING, headers=keys["operator"], params={
        "start": f"{EMERGING_YEAR - 1}-12-31T17:00:00Z", "end": f"{EMERGING_YEAR}-12-31T17:00:00Z",
        "commune": planted["code"], "cell_m": 200, "cell": cell}).json()
    assert one["features"][0]["properties"]["why"]["vi"].startswith("Điểm nóng gia tăng")
