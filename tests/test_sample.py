"""The synthetic sample province, checked in SQL on the loaded database (the default sample is
already loaded by `make test`; these tests only read it) plus generator determinism."""

from __future__ import annotations

import datetime as dt
import unicodedata
from datetime import date

import pytest

from gis.sample import SampleExistsError, generate, load_sample
from gis.sample.incidents import window_start
from gis.sample.parcels import AREA_RANGE

PERIODS = {"pre-2025": ("27", "2020-01-01"), "post-2025": ("24", "2026-01-01")}


@pytest.fixture(scope="module")
def info(conn):
    row = conn.execute("SELECT seed, scale, as_of, data_hash, planted FROM sample_info").fetchone()
    assert row is not None, "sample_info is empty: the sample is not loaded"
    return dict(zip(("seed", "scale", "as_of", "data_hash", "planted"), row, strict=True))


def keyset(rows) -> set[tuple]:
    return {tuple(r) for r in rows}


@pytest.mark.parametrize("period", PERIODS)
def test_communes_tile_the_province(conn, period):
    province, day = PERIODS[period]
    row = conn.execute(
        """
        WITH c AS (
            SELECT code, geom FROM admin_units
             WHERE level = 'commune' AND valid_from <= %(d)s AND coalesce(valid_to, 'infinity') > %(d)s
        ), p AS (SELECT geom FROM admin_units WHERE code = %(p)s AND level = 'province')
        SELECT (SELECT count(*) FROM c),
               (SELECT ST_Area(ST_Transform(geom, 9209)) FROM p),
               (SELECT sum(ST_Area(ST_Transform(geom, 9209))) FROM c),
               ST_Area(ST_Transform(ST_SymDifference(
                   (SELECT geom FROM p), (SELECT ST_Union(geom) FROM c)), 9209)),
               (SELECT coalesce(sum(ST_Area(ST_Transform(ST_Intersection(a.geom, b.geom), 9209))), 0)
                  FROM c a JOIN c b ON a.code < b.code AND ST_Intersects(a.geom, b.geom))
        """,
        {"p": province, "d": day},
    ).fetchone()
    n, province_area, communes_area, symdiff, overlaps = row
    assert n >= 80
    assert 700e6 < province_area < 900e6  # about Bac Ninh's 822 km²
    assert abs(communes_area - province_area) / province_area < 1e-4
    assert symdiff / province_area < 1e-6
    assert overlaps < 1.0  # m², over the whole province


def test_admin_hierarchy_and_reform(conn):
    rows = conn.execute(
        "SELECT level, parent_code, count(*), min(population), max(population) FROM admin_units "
        "WHERE valid_to = '2025-07-01' GROUP BY level, parent_code ORDER BY level, parent_code"
    ).fetchall()
    districts = [r for r in rows if r[0] == "district"]
    assert len(districts) == 1 and districts[0][1:3] == ("27", 8)
    communes = [r for r in rows if r[0] == "commune"]
    assert len(communes) == 8 and 110 <= sum(r[2] for r in communes) <= 135
    assert min(r[3] for r in communes) >= 5000 and max(r[4] for r in communes) <= 40000
    # Districts tile the old province too.
    gap = conn.execute(
        "SELECT ST_Area(ST_Transform(ST_SymDifference("
        "(SELECT geom FROM admin_units WHERE code = '27'), "
        "(SELECT ST_Union(geom) FROM admin_units WHERE level = 'district')), 9209))"
    ).fetchone()[0]
    assert gap < 1000.0  # m²
    # Post-2025: two levels, about a third of the old communes merged, old rows kept.
    new = conn.execute(
        "SELECT count(*), count(DISTINCT parent_code), min(parent_code) FROM admin_units "
        "WHERE valid_to IS NULL AND level = 'commune'"
    ).fetchone()
    old = sum(r[2] for r in communes)
    assert new[1] == 1 and new[2] == "24"
    assert 0.6 * old < new[0] < 0.9 * old
    assert conn.execute(
        "SELECT count(*) FROM admin_units WHERE valid_to IS NULL AND level = 'district'"
    ).fetchone()[0] == 0
    # Every merged unit's population is the sum of its members (members = old communes whose
    # parcels carry old_commune_code, or simply: sums over both periods agree).
    pops = conn.execute(
        "SELECT sum(population) FILTER (WHERE valid_to IS NULL), "
        "sum(population) FILTER (WHERE valid_to IS NOT NULL) FROM admin_units "
        "WHERE level = 'commune'"
    ).fetchone()
    assert pops[0] == pops[1]


def test_names_are_vietnamese_unique_and_nfc(conn):
    names = [r[0] for r in conn.execute(
        "SELECT name FROM admin_units WHERE level = 'commune' AND valid_to IS NULL"
    )]  # fmt: skip
    assert len(names) == len(set(names))
    assert all(unicodedata.is_normalized("NFC", n) for n in names)
    assert all(n.startswith(("Xã ", "Phường ")) for n in names)
    assert any("Đ" in n or "đ" in n for n in names)
    assert any(ch in "".join(names) for ch in "ạảãàáậẩẫầấệểễềếọỏõòóộổỗồốợởỡờớụủũùúựửữừứịỉĩìí")
    prov = conn.execute("SELECT name FROM admin_units WHERE code = '27'").fetchone()[0]
    assert "dữ liệu mẫu" in prov


SPATIAL = {
    "admin_units": ("geom", "ST_MultiPolygon"),
    "parcels": ("geom", "ST_MultiPolygon"),
    "land_use_zones": ("geom", "ST_MultiPolygon"),
    "roads": ("geom", "ST_LineString"),
    "tourism_places": ("geom", "ST_Point"),
    "cameras": ("fov", "ST_Polygon"),
    "sensors": ("geom", "ST_Point"),
    "incidents": ("geom", "ST_Point"),
}


@pytest.mark.parametrize("table", SPATIAL)
def test_geometries_valid_and_typed(conn, table):
    col, typ = SPATIAL[table]
    bad = conn.execute(
        f"SELECT count(*) FROM {table} WHERE NOT ST_IsValid({col}) OR ST_IsEmpty({col}) "  # noqa: S608
        f"OR ST_GeometryType({col}) <> %s OR ST_SRID({col}) <> 4326",
        (typ,),
    ).fetchone()[0]
    assert bad == 0


def test_province_position(conn):
    xmin, ymin, xmax, ymax = conn.execute(
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
        "(SELECT ST_Extent(geom) AS e FROM admin_units WHERE code = '24') s"
    ).fetchone()
    assert 105.88 <= xmin and xmax <= 106.36 and 20.94 <= ymin and ymax <= 21.31


def test_zones_cover_each_commune(conn):
    worst = conn.execute(
        """
        WITH z AS (SELECT commune_code, sum(ST_Area(ST_Transform(geom, 9209))) AS a
                     FROM land_use_zones GROUP BY commune_code)
        SELECT max(abs(z.a - ST_Area(ST_Transform(c.geom, 9209))) / ST_Area(ST_Transform(c.geom, 9209)))
          FROM z JOIN admin_units c ON c.code = z.commune_code AND c.valid_to IS NULL
        """
    ).fetchone()[0]
    assert worst < 1e-3
    codes = dict(conn.execute(
        "SELECT land_use_code, sum(ST_Area(ST_Transform(geom, 9209))) FROM land_use_zones "
        "GROUP BY 1"
    ).fetchall())  # fmt: skip
    total = sum(codes.values())
    assert codes["LUC"] / total > 0.4  # rice fields are the majority use
    assert {"ONT", "ODT", "DGT", "SON", "SKK", "NTD", "CLN", "NTS"} <= set(codes)


def test_parcels_inside_their_communes(conn):
    outside_new, outside_old = conn.execute(
        """
        WITH c AS (
            SELECT code, valid_to IS NULL AS current,
                   ST_Buffer(ST_Transform(geom, 9209), 0.05) AS g
              FROM admin_units WHERE level = 'commune'
        ), p AS (SELECT commune_code, coalesce(old_commune_code, commune_code) AS old_code,
                        ST_Transform(geom, 9209) AS g FROM parcels)
        SELECT (SELECT count(*) FROM p JOIN c ON c.current AND c.code = p.commune_code
                 WHERE NOT ST_Within(p.g, c.g)),
               (SELECT count(*) FROM p JOIN c ON NOT c.current AND c.code = p.old_code
                 WHERE NOT ST_Within(p.g, c.g))
        """
    ).fetchone()
    assert outside_new == 0 and outside_old == 0
    # Every parcel's commune codes exist (the joins above would silently drop unknown codes).
    unknown = conn.execute(
        "SELECT count(*) FROM parcels p WHERE NOT EXISTS (SELECT 1 FROM admin_units a "
        "WHERE a.code = p.commune_code AND a.valid_to IS NULL AND a.level = 'commune')"
    ).fetchone()[0]
    assert unknown == 0


def test_parcel_numbering_and_attributes(conn):
    row = conn.execute(
        """
        SELECT count(*), max(sheet_no), max(parcel_no),
               count(*) FILTER (WHERE land_user_id !~ '^027[0-3][0-9]{8}$'
                                  AND land_user_id IS NOT NULL),
               count(*) FILTER (WHERE land_use_codes && '{ODT,ONT}' AND use_until IS NOT NULL),
               count(*) FILTER (WHERE land_use_codes = '{LUC}' AND use_until IS NULL),
               count(*) FILTER (WHERE certificate_no !~ '^[A-ZĐ]{2} [0-9]{6}$'),
               count(*) FILTER (WHERE land_use_codes = '{ONT,CLN}'),
               count(DISTINCT commune_code), count(old_commune_code)
          FROM parcels
        """
    ).fetchone()
    n, max_sheet, max_no, bad_id, res_term, rice_no_term, bad_cert, garden, communes, merged = row
    assert max_sheet < 200 and max_no < 20000
    assert bad_id == 0 and res_term == 0 and rice_no_term == 0 and bad_cert == 0
    assert garden > 0 and communes >= 1
    # Parcel numbers run 1..n within each sheet.
    gaps = conn.execute(
        "SELECT count(*) FROM (SELECT commune_code, old_commune_code, sheet_no, "
        "max(parcel_no) AS m, count(*) AS k FROM parcels GROUP BY 1, 2, 3) s WHERE m <> k"
    ).fetchone()[0]
    assert gaps == 0


def test_parcel_sizes_by_land_use(conn):
    rows = conn.execute(
        "SELECT land_use_codes[1], ST_Area(ST_Transform(geom, 9209)) FROM parcels"
    ).fetchall()
    by_code: dict[str, list[float]] = {}
    for code, area in rows:
        by_code.setdefault(code, []).append(area)
    # Residential 60-300 m², rice 500-3,000 m² (AREA_RANGE has the others); edge lots of odd
    # blocks and the planted houses-on-rice-land are the documented exceptions (< 5 %).
    checked = 0
    for code, (lo, hi) in AREA_RANGE.items():
        areas = by_code.get(code, [])
        if len(areas) < 50:
            continue
        inside = sum(lo <= a <= hi for a in areas) / len(areas)
        assert inside >= 0.95, (code, inside)
        checked += 1
    assert checked >= 4
    assert AREA_RANGE["ONT"] == (60, 300) and AREA_RANGE["LUC"] == (500, 3000)


def test_legal_area_close_except_planted(conn, info):
    found = keyset(conn.execute(
        """
        SELECT commune_code, old_commune_code, sheet_no, parcel_no FROM parcels
         WHERE abs(legal_area - ST_Area(ST_Transform(geom, 9209))) > greatest(0.05 * legal_area, 10)
        """
    ))  # fmt: skip
    planted = keyset(info["planted"]["area_discrepancies"])
    assert len(planted) >= 8
    assert found == planted
    # Everything else agrees to within 2 m² and 2 %.
    worse = conn.execute(
        "SELECT count(*) FROM parcels WHERE abs(legal_area - ST_Area(ST_Transform(geom, 9209))) "
        ">= least(2.0, 0.02 * legal_area)"
    ).fetchone()[0]
    assert worse == len(planted)


def test_zoning_conflicts_are_exactly_the_planted_ones(conn, info):
    found = keyset(conn.execute(
        """
        SELECT p.commune_code, p.old_commune_code, p.sheet_no, p.parcel_no
          FROM parcels p JOIN land_use_zones z
            ON z.land_use_code = 'LUC' AND ST_Intersects(z.geom, ST_PointOnSurface(p.geom))
         WHERE 'ONT' = ANY (p.land_use_codes)
        """
    ))  # fmt: skip
    planted = keyset(info["planted"]["zoning_conflicts"])
    assert len(planted) >= 8
    assert found == planted
    # And no parcel sits in a zone of another use than its first code, apart from those.
    other = conn.execute(
        """
        SELECT count(*) FROM parcels p JOIN land_use_zones z
            ON ST_Intersects(z.geom, ST_PointOnSurface(p.geom))
         WHERE z.land_use_code <> p.land_use_codes[1]
        """
    ).fetchone()[0]
    assert other == len(planted)


def test_counts_near_targets(conn, info):
    scale = info["scale"]
    counts = dict(conn.execute(
        "SELECT 'parcels', count(*) FROM parcels UNION ALL SELECT 'incidents', count(*) "
        "FROM incidents UNION ALL SELECT 'cameras', count(*) FROM cameras UNION ALL "
        "SELECT 'sensors', count(*) FROM sensors UNION ALL SELECT 'tourism', count(*) "
        "FROM tourism_places UNION ALL SELECT 'roads', count(*) FROM roads"
    ).fetchall())  # fmt: skip
    assert 40_000 * scale <= counts["parcels"] <= 40_000 * scale * 1.5 + 20_000
    assert abs(counts["incidents"] - 50_000 * scale) <= max(100, 0.01 * 50_000 * scale)
    assert abs(counts["cameras"] - 300 * scale**0.5) <= 0.1 * 300 * scale**0.5 + 10
    assert counts["sensors"] == 50 and 50 <= counts["tourism"] <= 70
    assert counts["roads"] > 1000


def test_roads_and_traffic(conn, info):
    rows = dict(conn.execute(
        "SELECT road_class, avg((traffic_state IN ('heavy', 'jammed'))::int) FROM roads "
        "GROUP BY 1"
    ).fetchall())  # fmt: skip
    assert set(rows) == {"expressway", "trunk", "primary", "secondary", "local"}
    assert rows["trunk"] > rows["local"]
    names = {r[0] for r in conn.execute("SELECT DISTINCT name FROM roads WHERE road_class = 'trunk'")}
    assert "Quốc lộ 1A" in names
    late = conn.execute(
        "SELECT count(*) FROM roads WHERE traffic_at >= %s::date OR traffic_at < %s::date - 1",
        (info["as_of"], info["as_of"]),
    ).fetchone()[0]
    assert late == 0


def test_cameras(conn):
    row = conn.execute(
        """
        SELECT count(*) FILTER (WHERE NOT ST_Intersects(fov, geom)),
               max(abs(ST_Area(ST_Transform(fov, 9209)) / (pi() * range_m ^ 2 * fov_deg / 360) - 1)),
               avg((status = 'online')::int),
               count(*) FILTER (WHERE stream_url NOT LIKE 'rtsp://cam.example.invalid/%%')
          FROM cameras
        """
    ).fetchone()
    assert row[0] == 0 and row[1] < 0.05 and row[2] > 0.75 and row[3] == 0
    # Most cameras watch a road: they stand within a few metres of one.
    far = conn.execute(
        "SELECT count(*) FROM cameras c WHERE NOT EXISTS (SELECT 1 FROM roads r "
        "WHERE r.geom && ST_Expand(c.geom, 0.001) "
        "AND ST_DWithin(ST_Transform(r.geom, 9209), ST_Transform(c.geom, 9209), 5))"
    ).fetchone()[0]
    assert far == 0


def test_sensor_observations(conn, info):
    row = conn.execute(
        """
        SELECT count(DISTINCT d.thing_id), min(o.result), min(o.phenomenon_time),
               max(o.phenomenon_time),
               count(*) FILTER (WHERE s.parameter = 'pm25' AND o.result > s.threshold),
               count(DISTINCT s.id) FILTER (WHERE s.parameter = 'pm25' AND o.result > s.threshold)
          FROM observations o JOIN datastreams d ON d.id = o.datastream_id
          JOIN sensors s ON s.id = d.thing_id
        """
    ).fetchone()
    n, vmin, tmin, tmax, above, sensors_above = row
    as_of = info["as_of"]
    assert n == 50 and vmin >= 0
    assert tmax.date() < as_of and (as_of - tmin.date()).days == 30
    assert above > 0 and sensors_above >= 2
    kinds = dict(conn.execute("SELECT kind, count(*) FROM sensors GROUP BY kind").fetchall())
    assert kinds == {"air": 30, "water": 20}


def test_incidents_patterns(conn, info):
    as_of = info["as_of"]
    row = conn.execute(
        """
        SELECT count(*) FILTER (WHERE reported_at >= %(d)s::date),
               count(*) FILTER (WHERE reported_at < %(start)s),
               count(*) FILTER (WHERE status IN ('resolved', 'closed')
                                  AND reported_at < %(d)s::date - 60)::float
                 / nullif(count(*) FILTER (WHERE reported_at < %(d)s::date - 60), 0),
               count(*) FILTER (WHERE status IN ('received', 'verified', 'assigned', 'in_progress')
                                  AND reported_at >= %(d)s::date - 1)::float
                 / nullif(count(*) FILTER (WHERE reported_at >= %(d)s::date - 1), 0),
               avg((severity <= 2)::int)
          FROM incidents
        """,
        {"d": as_of, "start": window_start(as_of).item().replace(tzinfo=dt.UTC)},
    ).fetchone()
    future, too_old, old_done, recent_open, mild = row
    assert future == 0 and too_old == 0
    assert old_done > 0.95 and recent_open > 0.3 and mild > 0.7
    # Traffic peaks at 7-9 and 17-19 local time; public order rises at weekends.
    hours = dict(conn.execute(
        "SELECT extract(hour FROM reported_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::int, count(*) "
        "FROM incidents WHERE category = 'traffic_accident' GROUP BY 1"
    ).fetchall())  # fmt: skip
    assert hours[8] > 3 * hours[3] and hours[18] > 3 * hours[3]
    dow = dict(conn.execute(
        "SELECT extract(isodow FROM reported_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::int, count(*) "
        "FROM incidents WHERE category = 'public_order' GROUP BY 1"
    ).fetchall())  # fmt: skip
    assert dow[6] > 1.2 * dow[2]
    # Each incident lies in the commune it names, as the commune was when it was reported
    # (pre-2025 communes before the reform); rows are in time order (BRIN).
    wrong = conn.execute(
        "SELECT count(*) FROM incidents i WHERE NOT EXISTS (SELECT 1 FROM admin_units a "
        "WHERE a.code = i.commune_code AND a.level = 'commune' "
        "AND a.valid_from <= (i.reported_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date "
        "AND (a.valid_to IS NULL OR a.valid_to > (i.reported_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date) "
        "AND ST_Intersects(a.geom, i.geom))"
    ).fetchone()[0]
    assert wrong == 0
    # The generated ones, that is: the citizen reports (a service code) are played through the
    # workflow after them, in their own time order (gis/sample/reports.py).
    unordered = conn.execute(
        "SELECT count(*) FROM (SELECT reported_at < lag(reported_at) OVER (ORDER BY id) AS back "
        "FROM incidents WHERE service_code IS NULL) s WHERE back"
    ).fetchone()[0]
    assert unordered == 0


def test_tourism_places(conn):
    cats = dict(conn.execute(
        "SELECT category, count(*) FROM tourism_places GROUP BY 1"
    ).fetchall())  # fmt: skip
    assert len(cats) == 8
    bad = conn.execute(
        "SELECT count(*) FROM tourism_places WHERE rating NOT BETWEEN 3 AND 5 OR name_en IS NULL "
        "OR NOT EXISTS (SELECT 1 FROM admin_units a WHERE a.code = '24' "
        "AND ST_Intersects(a.geom, tourism_places.geom))"
    ).fetchone()[0]
    assert bad == 0


@pytest.mark.slow  # generates the province twice
def test_generation_is_deterministic():
    as_of = date(2026, 1, 1)
    a = generate(seed=7, scale=0.05, as_of=as_of)
    b = generate(seed=7, scale=0.05, as_of=as_of)
    c = generate(seed=8, scale=0.05, as_of=as_of)
    assert a.data_hash() == b.data_hash()
    assert a.data_hash() != c.data_hash()
    assert len(a.tables["parcels"]) >= 2000 and len(a.planted["zoning_conflicts"]) >= 8


def test_load_refuses_to_overwrite(db_url):
    with pytest.raises(SampleExistsError, match="replace=True"):
        load_sample(db_url, progress=False)
