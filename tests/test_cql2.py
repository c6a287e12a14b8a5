"""CQL2 filters select exactly what an independently hand-written WHERE clause selects.

Every case is written three times (cql2-text, cql2-json, SQL) and run against the sample
province; values that depend on the generated data (extent, time quartiles, codes, names) are
read from the database first and substituted into `$placeholders`, so the table holds for any
seed. The hand-written SQL must select a proper, non-empty subset, or the case proves nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta, timezone
from string import Template

import psycopg
import pytest
import shapely
from psycopg import sql

from gis.crs import transformer
from layers.catalogue import get_layer
from layers.cql2 import FilterError, filter_to_sql, parse_filter


@dataclass(frozen=True)
class Case:
    id: str
    layer: str
    text: str
    json: str
    sql: str
    # The hand-written SQL may select nothing or everything (e.g. an exact-match geometry).
    trivial_ok: bool = False


C = Case
CASES = [
    # --- comparisons, BETWEEN, IN, IS NULL, arithmetic: parcels -----------------------------
    C("eq-int", "parcels", "sheet_no = 3",
      '{"op": "=", "args": [{"property": "sheet_no"}, 3]}',
      "sheet_no = 3"),
    C("ne-lt-and", "parcels", "sheet_no <> 3 AND parcel_no < 50",
      '{"op": "and", "args": [{"op": "<>", "args": [{"property": "sheet_no"}, 3]},'
      ' {"op": "<", "args": [{"property": "parcel_no"}, 50]}]}',
      "sheet_no != 3 AND parcel_no < 50"),
    C("ge-float", "parcels", "legal_area >= 500.5",
      '{"op": ">=", "args": [{"property": "legal_area"}, 500.5]}',
      "legal_area >= 500.5"),
    C("between", "parcels", "legal_area BETWEEN 100 AND 300",
      '{"op": "between", "args": [{"property": "legal_area"}, 100, 300]}',
      "legal_area >= 100 AND legal_area <= 300"),
    C("not-between", "parcels", "sheet_no NOT BETWEEN 2 AND 5",
      '{"op": "not", "args": [{"op": "between", "args": [{"property": "sheet_no"}, 2, 5]}]}',
      "sheet_no < 2 OR sheet_no > 5"),
    C("in", "parcels", "commune_code = '$commune' AND sheet_no IN (1, 2, 3)",
      '{"op": "and", "args": [{"op": "=", "args": [{"property": "commune_code"}, "$commune"]},'
      ' {"op": "in", "args": [{"property": "sheet_no"}, [1, 2, 3]]}]}',
      "commune_code = '$commune' AND sheet_no = ANY('{1,2,3}')"),
    C("not-in-null", "parcels", "origin NOT IN ('lease', 'transfer')",
      '{"op": "not", "args": [{"op": "in", "args": [{"property": "origin"},'
      ' ["lease", "transfer"]]}]}',
      "origin IS NOT NULL AND origin <> 'lease' AND origin <> 'transfer'"),
    C("is-null", "parcels", "use_until IS NULL",
      '{"op": "isNull", "args": [{"property": "use_until"}]}',
      "use_until IS NULL"),
    C("not-null-or", "parcels", "use_until IS NOT NULL OR version > 1",
      '{"op": "or", "args": [{"op": "not", "args": [{"op": "isNull", "args":'
      ' [{"property": "use_until"}]}]}, {"op": ">", "args": [{"property": "version"}, 1]}]}',
      "use_until IS NOT NULL OR version > 1"),
    C("numeric-strings", "parcels", "sheet_no = '3' AND parcel_no <= '20'",
      '{"op": "and", "args": [{"op": "=", "args": [{"property": "sheet_no"}, "3"]},'
      ' {"op": "<=", "args": [{"property": "parcel_no"}, "20"]}]}',
      "sheet_no = 3 AND parcel_no <= 20"),
    C("arithmetic", "parcels", "legal_area / 10 > sheet_no * 5 + 1",
      '{"op": ">", "args": [{"op": "/", "args": [{"property": "legal_area"}, 10]},'
      ' {"op": "+", "args": [{"op": "*", "args": [{"property": "sheet_no"}, 5]}, 1]}]}',
      "legal_area > (sheet_no * 5 + 1) * 10"),
    C("id", "parcels", "id < $parcel_id",
      '{"op": "<", "args": [{"property": "id"}, $parcel_id]}',
      "id < $parcel_id"),
    # --- arrays: parcels.land_use_codes -----------------------------------------------------
    C("a-contains", "parcels", "A_CONTAINS(land_use_codes, ('$luc1'))",
      '{"op": "a_contains", "args": [{"property": "land_use_codes"}, ["$luc1"]]}',
      "'$luc1' = ANY(land_use_codes)"),
    C("a-overlaps", "parcels", "A_OVERLAPS(land_use_codes, ('$luc1', '$luc2'))",
      '{"op": "a_overlaps", "args": [{"property": "land_use_codes"}, ["$luc1", "$luc2"]]}',
      "'$luc1' = ANY(land_use_codes) OR '$luc2' = ANY(land_use_codes)"),
    C("a-containedby", "parcels", "A_CONTAINEDBY(land_use_codes, ('$luc1', '$luc2'))",
      '{"op": "a_containedby", "args": [{"property": "land_use_codes"},'
      ' ["$luc1", "$luc2"]]}',
      "NOT EXISTS (SELECT 1 FROM unnest(land_use_codes) c WHERE c NOT IN ('$luc1', '$luc2'))"),
    C("a-equals", "parcels", "A_EQUALS(land_use_codes, ('$luc1'))",
      '{"op": "a_equals", "args": [{"property": "land_use_codes"}, ["$luc1"]]}',
      "cardinality(land_use_codes) = 1 AND land_use_codes[1] = '$luc1'"),
    C("s-intersects-polygon", "parcels", "S_INTERSECTS(geom, $box_wkt)",
      '{"op": "s_intersects", "args": [{"property": "geom"}, $box_geojson]}',
      "ST_Intersects(geom, ST_GeomFromText('$box_wkt', 4326))"),
    # --- strings, LIKE, CASEI/ACCENTI, NOT: incidents ---------------------------------------
    C("eq-str", "incidents", "category = 'fire'",
      '{"op": "=", "args": [{"property": "category"}, "fire"]}',
      "category = 'fire'"),
    C("in-and-ge", "incidents", "category IN ('fire', 'traffic_accident') AND severity >= 3",
      '{"op": "and", "args": [{"op": "in", "args": [{"property": "category"},'
      ' ["fire", "traffic_accident"]]}, {"op": ">=", "args": [{"property": "severity"}, 3]}]}',
      "(category = 'fire' OR category = 'traffic_accident') AND severity IN (3, 4)"),
    C("not-group", "incidents", "NOT (category = 'fire' OR severity < 2)",
      '{"op": "not", "args": [{"op": "or", "args": [{"op": "=", "args":'
      ' [{"property": "category"}, "fire"]}, {"op": "<", "args": [{"property": "severity"}, 2]}]}]}',
      "category <> 'fire' AND severity >= 2"),
    C("like", "incidents", "title LIKE 'Tai nạn giao thông trên%'",
      '{"op": "like", "args": [{"property": "title"}, "Tai nạn giao thông trên%"]}',
      "starts_with(title, 'Tai nạn giao thông trên')"),
    C("casei-like", "incidents", "CASEI(title) LIKE CASEI('%TAI NẠN GIAO%')",
      '{"op": "like", "args": [{"op": "casei", "args": [{"property": "title"}]},'
      ' {"op": "casei", "args": ["%TAI NẠN GIAO%"]}]}',
      "title ILIKE '%tai nạn giao%'"),
    C("accenti-like", "incidents", "ACCENTI(CASEI(title)) LIKE ACCENTI(CASEI('%TAI NAN GIAO%'))",
      '{"op": "like", "args": [{"op": "accenti", "args": [{"op": "casei", "args":'
      ' [{"property": "title"}]}]}, {"op": "accenti", "args": [{"op": "casei",'
      ' "args": ["%TAI NAN GIAO%"]}]}]}',
      "title ILIKE '%tai nạn giao%'"),
    C("arithmetic-add", "incidents", "severity + 1 = 4",
      '{"op": "=", "args": [{"op": "+", "args": [{"property": "severity"}, 1]}, 4]}',
      "severity = 3"),
    C("null-and", "incidents", "resolved_at IS NULL AND severity > 2",
      '{"op": "and", "args": [{"op": "isNull", "args": [{"property": "resolved_at"}]},'
      ' {"op": ">", "args": [{"property": "severity"}, 2]}]}',
      "resolved_at IS NULL AND severity > 2"),
    # --- temporal: incidents.reported_at ----------------------------------------------------
    C("t-after", "incidents", "T_AFTER(reported_at, TIMESTAMP('$t_mid'))",
      '{"op": "t_after", "args": [{"property": "reported_at"}, {"timestamp": "$t_mid"}]}',
      "reported_at > '$t_mid'::timestamptz"),
    C("t-before-date", "incidents", "T_BEFORE(reported_at, DATE('$d_mid'))",
      '{"op": "t_before", "args": [{"property": "reported_at"}, {"date": "$d_mid"}]}',
      "reported_at < '$d_mid 00:00:00+00'::timestamptz"),
    C("t-during", "incidents", "T_DURING(reported_at, INTERVAL('$t_q1', '$t_q3'))",
      '{"op": "t_during", "args": [{"property": "reported_at"},'
      ' {"interval": ["$t_q1", "$t_q3"]}]}',
      "reported_at > '$t_q1'::timestamptz AND reported_at < '$t_q3'::timestamptz"),
    C("t-intersects-open", "incidents", "T_INTERSECTS(reported_at, INTERVAL('$d_q3', '..'))",
      '{"op": "t_intersects", "args": [{"property": "reported_at"},'
      ' {"interval": ["$d_q3", ".."]}]}',
      "reported_at >= '$d_q3 00:00:00+00'::timestamptz"),
    C("t-intersects-closed", "incidents", "T_INTERSECTS(reported_at, INTERVAL('$t_q1', '$t_q3'))",
      '{"op": "t_intersects", "args": [{"property": "reported_at"},'
      ' {"interval": ["$t_q1", "$t_q3"]}]}',
      "reported_at BETWEEN '$t_q1'::timestamptz AND '$t_q3'::timestamptz"),
    C("t-disjoint", "incidents", "T_DISJOINT(reported_at, INTERVAL('$t_q1', '$t_q3'))",
      '{"op": "t_disjoint", "args": [{"property": "reported_at"},'
      ' {"interval": ["$t_q1", "$t_q3"]}]}',
      "reported_at NOT BETWEEN '$t_q1'::timestamptz AND '$t_q3'::timestamptz"),
    C("t-equals", "incidents", "T_EQUALS(reported_at, TIMESTAMP('$t_exact'))",
      '{"op": "t_equals", "args": [{"property": "reported_at"}, {"timestamp": "$t_exact"}]}',
      "reported_at = '$t_exact'::timestamptz"),
    C("t-infix-dialect", "incidents",
      "reported_at T_AFTER TIMESTAMP('$t_q3') AND severity = 4",
      '{"op": "and", "args": [{"op": "t_after", "args": [{"property": "reported_at"},'
      ' {"timestamp": "$t_q3"}]}, {"op": "=", "args": [{"property": "severity"}, 4]}]}',
      "reported_at > '$t_q3'::timestamptz AND severity = 4"),
    C("datetime-compare", "incidents",
      "reported_at >= TIMESTAMP('$t_q1') AND reported_at < TIMESTAMP('$t_mid')",
      '{"op": "and", "args": [{"op": ">=", "args": [{"property": "reported_at"},'
      ' {"timestamp": "$t_q1"}]}, {"op": "<", "args": [{"property": "reported_at"},'
      ' {"timestamp": "$t_mid"}]}]}',
      "reported_at >= '$t_q1'::timestamptz AND reported_at < '$t_mid'::timestamptz"),
    # --- spatial: incidents -----------------------------------------------------------------
    C("s-intersects-bbox", "incidents",
      "S_INTERSECTS(geom, BBOX($minx, $miny, $midx, $midy))",
      '{"op": "s_intersects", "args": [{"property": "geom"},'
      ' {"bbox": [$minx, $miny, $midx, $midy]}]}',
      "ST_X(geom) BETWEEN $minx AND $midx AND ST_Y(geom) BETWEEN $miny AND $midy"),
    C("s-within", "incidents", "S_WITHIN(geometry, $box_wkt)",
      '{"op": "s_within", "args": [{"property": "geometry"}, $box_geojson]}',
      "ST_Within(geom, ST_GeomFromText('$box_wkt', 4326))"),
    C("s-disjoint", "incidents", "S_DISJOINT(geom, BBOX($minx, $miny, $midx, $midy))",
      '{"op": "s_disjoint", "args": [{"property": "geom"},'
      ' {"bbox": [$minx, $miny, $midx, $midy]}]}',
      "NOT (ST_X(geom) BETWEEN $minx AND $midx AND ST_Y(geom) BETWEEN $miny AND $midy)"),
    C("bbox-predicate", "incidents", "BBOX(geom, $minx, $miny, $midx, $midy) AND severity = 1",
      '{"op": "and", "args": [{"op": "s_intersects", "args": [{"property": "geom"},'
      ' {"bbox": [$minx, $miny, $midx, $midy]}]},'
      ' {"op": "=", "args": [{"property": "severity"}, 1]}]}',
      # Exact for points (&& compares float4-rounded boxes and admits points just outside).
      "ST_X(geom) BETWEEN $minx AND $midx AND ST_Y(geom) BETWEEN $miny AND $midy AND severity = 1"),
    # --- admin units: diacritics, open validity, temporal intervals of properties -----------
    C("level-current", "admin_units", "level = 'commune' AND valid_to IS NULL",
      '{"op": "and", "args": [{"op": "=", "args": [{"property": "level"}, "commune"]},'
      ' {"op": "isNull", "args": [{"property": "valid_to"}]}]}',
      "level = 'commune' AND valid_to IS NULL"),
    C("casei-eq", "admin_units", "CASEI(name) = CASEI('$name_upper')",
      '{"op": "=", "args": [{"op": "casei", "args": [{"property": "name"}]},'
      ' {"op": "casei", "args": ["$name_upper"]}]}',
      "name = '$name'"),
    C("like-diacritics", "admin_units", "name LIKE '%$syllable%'",
      '{"op": "like", "args": [{"property": "name"}, "%$syllable%"]}',
      "strpos(name, '$syllable') > 0"),
    C("accenti-casei", "admin_units",
      "ACCENTI(CASEI(name)) LIKE ACCENTI(CASEI('%$syllable_upper%'))",
      '{"op": "like", "args": [{"op": "accenti", "args": [{"op": "casei", "args":'
      ' [{"property": "name"}]}]}, {"op": "accenti", "args": [{"op": "casei",'
      ' "args": ["%$syllable_upper%"]}]}]}',
      "strpos(unaccent(lower(name)), '$syllable_plain') > 0"),
    C("t-intersects-props", "admin_units",
      "T_INTERSECTS(INTERVAL(valid_from, valid_to), DATE('$before_reform'))",
      '{"op": "t_intersects", "args": [{"interval": [{"property": "valid_from"},'
      ' {"property": "valid_to"}]}, {"date": "$before_reform"}]}',
      "valid_from <= '$before_reform' AND (valid_to IS NULL OR valid_to >= '$before_reform')"),
    C("t-during-open", "admin_units",
      "T_DURING(INTERVAL(valid_from, valid_to), INTERVAL('1900-01-01', '..'))",
      '{"op": "t_during", "args": [{"interval": [{"property": "valid_from"},'
      ' {"property": "valid_to"}]}, {"interval": ["1900-01-01", ".."]}]}',
      "valid_to IS NOT NULL"),
    C("t-intersects-closed-ends", "admin_units",
      "level = 'commune' AND T_INTERSECTS(INTERVAL(valid_from, valid_to), INTERVAL('$reform', '..'))",
      '{"op": "and", "args": [{"op": "=", "args": [{"property": "level"}, "commune"]},'
      ' {"op": "t_intersects", "args": [{"interval": [{"property": "valid_from"},'
      ' {"property": "valid_to"}]}, {"interval": ["$reform", ".."]}]}]}',
      "level = 'commune' AND (valid_to IS NULL OR valid_to >= '$reform')"),
    C("t-meets", "admin_units", "T_MEETS(INTERVAL(valid_from, valid_to), DATE('$reform'))",
      '{"op": "t_meets", "args": [{"interval": [{"property": "valid_from"},'
      ' {"property": "valid_to"}]}, {"date": "$reform"}]}',
      "valid_to = '$reform'"),
    C("t-metby", "admin_units", "T_METBY(INTERVAL(valid_from, valid_to), DATE('$reform'))",
      '{"op": "t_metby", "args": [{"interval": [{"property": "valid_from"},'
      ' {"property": "valid_to"}]}, {"date": "$reform"}]}',
      "valid_from = '$reform'"),
    C("population", "admin_units", "population > $population AND level <> 'province'",
      '{"op": "and", "args": [{"op": ">", "args": [{"property": "population"}, $population]},'
      ' {"op": "<>", "args": [{"property": "level"}, "province"]}]}',
      "population > $population AND level IN ('district', 'commune')"),
    C("s-contains-point", "admin_units", "S_CONTAINS(geom, POINT($px $py))",
      '{"op": "s_contains", "args": [{"property": "geom"},'
      ' {"type": "Point", "coordinates": [$px, $py]}]}',
      "ST_Contains(geom, ST_SetSRID(ST_MakePoint($px, $py), 4326))"),
    # --- roads, sensors, zones, places, cameras -----------------------------------------------
    C("road-class", "roads", "road_class IN ('trunk', 'primary') OR lanes >= 4",
      '{"op": "or", "args": [{"op": "in", "args": [{"property": "road_class"},'
      ' ["trunk", "primary"]]}, {"op": ">=", "args": [{"property": "lanes"}, 4]}]}',
      "road_class IN ('trunk', 'primary') OR lanes > 3"),
    C("road-unnamed", "roads", "name IS NULL AND max_speed <= 50",
      '{"op": "and", "args": [{"op": "isNull", "args": [{"property": "name"}]},'
      ' {"op": "<=", "args": [{"property": "max_speed"}, 50]}]}',
      "name IS NULL AND max_speed <= 50"),
    C("s-crosses", "roads", "S_CROSSES(geom, LINESTRING($minx $midy, $maxx $midy))",
      '{"op": "s_crosses", "args": [{"property": "geom"},'
      ' {"type": "LineString", "coordinates": [[$minx, $midy], [$maxx, $midy]]}]}',
      "ST_Crosses(geom, ST_SetSRID(ST_MakeLine(ST_MakePoint($minx, $midy),"
      " ST_MakePoint($maxx, $midy)), 4326))"),
    C("s-touches", "roads", "S_TOUCHES(geom, POINT($rx $ry))",
      '{"op": "s_touches", "args": [{"property": "geom"},'
      ' {"type": "Point", "coordinates": [$rx, $ry]}]}',
      "(ST_StartPoint(geom) = ST_SetSRID(ST_MakePoint($rx, $ry), 4326)"
      " OR ST_EndPoint(geom) = ST_SetSRID(ST_MakePoint($rx, $ry), 4326))"
      " AND NOT ST_IsClosed(geom)"),
    C("sensor-kind", "sensors", "kind = 'air' AND status <> 'offline'",
      '{"op": "and", "args": [{"op": "=", "args": [{"property": "kind"}, "air"]},'
      ' {"op": "<>", "args": [{"property": "status"}, "offline"]}]}',
      "parameter IN ('pm25', 'pm10', 'no2') AND status IN ('online', 'maintenance')"),
    C("s-equals", "sensors", "S_EQUALS(geom, POINT($sx $sy))",
      '{"op": "s_equals", "args": [{"property": "geom"},'
      ' {"type": "Point", "coordinates": [$sx, $sy]}]}',
      "ST_X(geom) = $sx AND ST_Y(geom) = $sy"),
    C("s-overlaps", "land_use_zones", "S_OVERLAPS(geom, $box_wkt)",
      '{"op": "s_overlaps", "args": [{"property": "geom"}, $box_geojson]}',
      "ST_Intersects(geom, ST_GeomFromText('$box_wkt', 4326))"
      " AND NOT ST_Within(geom, ST_GeomFromText('$box_wkt', 4326))"
      " AND NOT ST_Within(ST_GeomFromText('$box_wkt', 4326), geom)"
      " AND ST_Dimension(ST_Intersection(geom, ST_GeomFromText('$box_wkt', 4326))) = 2"),
    C("places", "tourism_places", "rating >= 4.0 AND category IN ('pagoda', 'temple')",
      '{"op": "and", "args": [{"op": ">=", "args": [{"property": "rating"}, 4.0]},'
      ' {"op": "in", "args": [{"property": "category"}, ["pagoda", "temple"]]}]}',
      "rating >= 4 AND category IN ('pagoda', 'temple')"),
    C("cameras", "cameras", "status = 'online' AND range_m > 100",
      '{"op": "and", "args": [{"op": "=", "args": [{"property": "status"}, "online"]},'
      ' {"op": ">", "args": [{"property": "range_m"}, 100]}]}',
      "status = 'online' AND range_m > 100"),
]


@pytest.fixture(scope="module")
def anchors(conn: psycopg.Connection) -> dict[str, str]:
    """Values from the loaded sample, so that the cases select something for any seed."""
    counts = conn.execute(
        "SELECT (SELECT count(*) FROM parcels), (SELECT count(*) FROM incidents),"
        " (SELECT count(*) FROM admin_units), (SELECT count(*) FROM roads),"
        " (SELECT count(*) FROM sensors)").fetchone()
    assert counts is not None and min(counts) > 0, (
        "the sample province is not loaded (geoioc sample load); counts: " + repr(counts))
    a: dict[str, str] = {}
    minx, miny, maxx, maxy = conn.execute(
        "SELECT min(ST_X(geom)), min(ST_Y(geom)), max(ST_X(geom)), max(ST_Y(geom))"
        " FROM incidents").fetchone()
    midx, midy = (minx + maxx) / 2, (miny + maxy) / 2
    # The south-west quarter, its west edge moved onto an incident: boundary cases count
    # (S_WITHIN excludes that incident, S_INTERSECTS and BBOX include it).
    minx, = conn.execute(
        "SELECT ST_X(geom) FROM incidents WHERE ST_X(geom) < %s AND ST_Y(geom) > %s"
        " AND ST_Y(geom) < %s ORDER BY id LIMIT 1", (midx, miny, midy)).fetchone()
    a.update(minx=repr(minx), miny=repr(miny), maxx=repr(maxx), maxy=repr(maxy),
             midx=repr(midx), midy=repr(midy))
    box = shapely.Polygon([(minx, miny), (midx, miny), (midx, midy), (minx, midy)])
    a["box_wkt"] = box.wkt
    a["box_geojson"] = shapely.to_geojson(box)
    # Exact values of some incidents, so that open and closed interval ends make a difference.
    q1, mid, q3, exact = conn.execute(
        "SELECT percentile_disc(0.25) WITHIN GROUP (ORDER BY reported_at),"
        " percentile_disc(0.5) WITHIN GROUP (ORDER BY reported_at),"
        " percentile_disc(0.75) WITHIN GROUP (ORDER BY reported_at),"
        " (SELECT reported_at FROM incidents ORDER BY id LIMIT 1) FROM incidents").fetchone()
    for key, value in (("t_q1", q1), ("t_mid", mid), ("t_q3", q3), ("t_exact", exact)):
        # In Vietnam's local time: the filter must honour the offset.
        a[key] = value.astimezone(timezone(timedelta(hours=7))).isoformat()
    a["d_mid"] = mid.date().isoformat()
    a["d_q3"] = q3.date().isoformat()
    a["commune"], = conn.execute(
        "SELECT commune_code FROM parcels GROUP BY 1 ORDER BY count(*) DESC LIMIT 1").fetchone()
    codes = [r[0] for r in conn.execute(
        "SELECT c FROM parcels, unnest(land_use_codes) c GROUP BY c ORDER BY count(*) DESC"
        " LIMIT 2")]
    a["luc1"], a["luc2"] = codes
    a["parcel_id"] = str(conn.execute(
        "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY id) FROM parcels").fetchone()[0])
    reform = conn.execute(
        "SELECT valid_to FROM admin_units WHERE valid_to IS NOT NULL GROUP BY 1"
        " ORDER BY count(*) DESC LIMIT 1").fetchone()[0]
    a["reform"] = reform.isoformat()
    a["before_reform"] = (reform - timedelta(days=1)).isoformat()
    a["population"] = str(conn.execute(
        "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY population) FROM admin_units"
        " WHERE level = 'commune'").fetchone()[0])
    names = [r[0] for r in conn.execute("SELECT name FROM admin_units ORDER BY id")]
    a["name"] = names[len(names) // 2]
    a["name_upper"] = a["name"].upper()
    # A syllable with diacritics that some (not all) names contain.
    syllables: dict[str, int] = {}
    for name in names:
        for s in set(name.split()):
            if not s.isascii():
                syllables[s] = syllables.get(s, 0) + 1
    a["syllable"] = max((s for s in syllables if syllables[s] < len(names)), key=syllables.get)
    a["syllable_upper"] = a["syllable"].upper()
    a["syllable_plain"] = conn.execute("SELECT unaccent(lower(%s))", (a["syllable"],)).fetchone()[0]
    a["px"], a["py"] = map(repr, conn.execute(
        "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM admin_units"
        " WHERE level = 'commune' ORDER BY id LIMIT 1) s").fetchone())
    a["rx"], a["ry"] = map(repr, conn.execute(
        "SELECT ST_X(ST_EndPoint(geom)), ST_Y(ST_EndPoint(geom)) FROM roads ORDER BY id LIMIT 1"
    ).fetchone())
    a["sx"], a["sy"] = map(repr, conn.execute(
        "SELECT ST_X(geom), ST_Y(geom) FROM sensors ORDER BY id LIMIT 1").fetchone())
    return a


def _ids(conn: psycopg.Connection, table: str, where: sql.Composable) -> set[int]:
    query = sql.SQL("SELECT id FROM {} WHERE {}").format(sql.Identifier(table), where)
    return {r[0] for r in conn.execute(query)}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_filter_selects_what_hand_written_sql_selects(conn, anchors, case: Case) -> None:
    layer = get_layer(case.layer)
    text = Template(case.text).substitute(anchors)
    document = Template(case.json).substitute(anchors)
    expected = _ids(conn, layer.table, sql.SQL(Template(case.sql).substitute(anchors)))
    total = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
        sql.Identifier(layer.table))).fetchone()[0]
    if not case.trivial_ok:
        assert 0 < len(expected) < total, f"hand-written SQL selects {len(expected)} of {total}"

    from_text = filter_to_sql(parse_filter(text), layer)
    from_json = filter_to_sql(parse_filter(document, "cql2-json"), layer)
    assert _ids(conn, layer.table, from_text) == expected, from_text.as_string(conn)
    assert _ids(conn, layer.table, from_json) == expected, from_json.as_string(conn)
    # JSON may arrive decoded, too.
    from_dict = filter_to_sql(parse_filter(json.loads(document), "cql2-json"), layer)
    assert from_dict.as_string(conn) == from_json.as_string(conn)


def test_filter_crs_and_table_alias(conn, anchors) -> None:
    """Literals in a projected filter CRS are transformed in SQL; an alias qualifies columns."""
    layer = get_layer("incidents")
    to_utm = transformer(4326, 3405)
    box = shapely.box(float(anchors["minx"]), float(anchors["miny"]),
                      float(anchors["midx"]), float(anchors["midy"]))
    utm = shapely.transform(box, lambda xy: list(zip(*to_utm.transform(*xy.T), strict=True)))
    node = parse_filter(f"S_INTERSECTS(geom, {utm.wkt}) AND severity >= 2")
    where = filter_to_sql(node, layer, filter_srid=3405, table_alias="i")
    # Without the alias, "id" and "geom" would be ambiguous in this join.
    query = sql.SQL("SELECT i.id FROM incidents i JOIN admin_units a"
                    " ON a.code = i.commune_code AND a.valid_to IS NULL WHERE {}").format(where)
    got = {r[0] for r in conn.execute(query)}
    expected = {r[0] for r in conn.execute(
        "SELECT i.id FROM incidents i JOIN admin_units a"
        " ON a.code = i.commune_code AND a.valid_to IS NULL"
        " WHERE ST_Intersects(i.geom, ST_Transform(ST_GeomFromText(%s, 3405), 4326))"
        " AND i.severity >= 2", (utm.wkt,))}
    assert got == expected and len(expected) > 0


def test_sql_composes_with_the_callers_placeholders(conn) -> None:
    """psycopg reads '%' in a query run with parameters as a placeholder: we emit none."""
    where = filter_to_sql(parse_filter("title LIKE '%s%' OR description LIKE '%100%%'"),
                          get_layer("incidents"))
    assert "%" not in where.as_string(conn)
    got = conn.execute(sql.SQL("SELECT count(*) FROM incidents WHERE {} AND severity >= %s")
                       .format(where), [2]).fetchone()[0]
    expected = conn.execute(
        "SELECT count(*) FROM incidents WHERE (title LIKE '%%s%%'"
        " OR description LIKE '%%100%%%%') AND severity >= %s", [2]).fetchone()[0]
    assert got == expected > 0


# --- errors: each is a FilterError whose message says what is wrong --------------------------


def _error(filter_text: str | dict, layer_id: str = "parcels", lang: str | None = None,
           **kwargs) -> str:
    language = lang or ("cql2-json" if isinstance(filter_text, dict) else "cql2-text")
    with pytest.raises(FilterError) as info:
        filter_to_sql(parse_filter(filter_text, language), get_layer(layer_id), **kwargs)
    return str(info.value)


def test_unknown_property_lists_queryables() -> None:
    for message in (_error("sheet_nr = 1"),
                    _error({"op": "=", "args": [{"property": "sheet_nr"}, 1]})):
        assert "unknown property 'sheet_nr'" in message
        assert "queryable properties:" in message and "sheet_no" in message


def test_property_outside_allowed_is_unknown() -> None:
    visible = [f.name for f in get_layer("parcels").fields if not f.personal]
    message = _error("land_user LIKE 'Nguyễn%'", allowed=visible)
    assert "unknown property 'land_user'" in message
    assert "land_user" not in message.split("queryable properties:")[1]
    # The same filter is fine for a caller who may see the field.
    filter_to_sql(parse_filter("land_user LIKE 'Nguyễn%'"), get_layer("parcels"))


def test_syntax_errors_give_the_position() -> None:
    message = _error("sheet_no = 5 ANDD parcel_no = 1")
    assert "syntax error" in message and "position 14" in message
    assert "end of filter" in _error("sheet_no = ")
    assert "unterminated string" in _error("category = 'fire", "incidents")
    assert "invalid JSON at line 1" in _error('{"op": "=", "args": [', lang="cql2-json")
    assert "syntax error" in _error("NOT (sheet_no = 1 AND (parcel_no = 2)")


def test_type_mismatches() -> None:
    assert "property 'sheet_no' is int, got 'abc'" in _error("sheet_no = 'abc'")
    assert "property 'sheet_no' is int, got 'abc'" in _error(
        {"op": "=", "args": [{"property": "sheet_no"}, "abc"]})
    assert "property 'reported_at' is a date/time, got 'yesterday'" in _error(
        "reported_at > 'yesterday'", "incidents")
    assert "property 'category' is str" in _error("S_INTERSECTS(category, POINT(1 2))",
                                                  "incidents")
    assert "property 'land_use_codes' is str[]" in _error("land_use_codes = 'ONT'")
    assert "LIKE needs a string; property 'sheet_no' is int" in _error("sheet_no LIKE '1%'")
    assert "T_AFTER needs a date/datetime property" in _error(
        "T_AFTER(category, TIMESTAMP('2024-01-01T00:00:00Z'))", "incidents")
    assert "A_CONTAINS needs an array property" in _error("A_CONTAINS(origin, ('x'))")
    assert "invalid timestamp" in _error(
        {"op": "t_after", "args": [{"property": "reported_at"}, {"timestamp": "tomorrow"}]},
        "incidents")


def test_unsupported_constructs_are_named() -> None:
    assert "unsupported function FOO()" in _error("foo(sheet_no) = 1")
    assert "unsupported operator 's_dwithin'" in _error(
        {"op": "s_dwithin", "args": [{"property": "geom"}, {"type": "Point",
                                                            "coordinates": [1, 2]}, 5]})
    assert "unsupported filter language" in _error("sheet_no = 1", lang="cql2-xml")
    assert "ends with the escape character" in _error("category LIKE 'fire\\'", "incidents")
    assert "invalid geometry literal" in _error(
        "S_INTERSECTS(geom, POLYGON((0 0, 1 1, 1 0, 0 1, 0 0)))", "incidents")
    assert "unsupported filter CRS" in _error("sheet_no = 1", filter_srid=2154)


# Valid CQL2 that looks hostile: accepted, selecting exactly what the hand-written SQL selects
# (most select nothing, which is the right answer: a rejection here would be wrong).
HOSTILE_VALID = [
    ("sheet_no = 99999999999999999999999999999999", "FALSE"),
    ("sheet_no * 1e300 * 1e300 > 1", "sheet_no > 0"),
    ("sheet_no / 0 = 1", "FALSE"),  # division by zero is NULL (documented in layers/cql2.py)
    ("legal_area / (sheet_no - sheet_no) > 1", "FALSE"),
    ("commune_code = 'x''; DROP TABLE parcels; --'", "commune_code = 'x''; DROP TABLE parcels; --'"),
    ("commune_code LIKE '\\\\'", "commune_code = '\\'"),  # an escaped backslash: the string "\"
    ("commune_code LIKE '%\\%%'", "strpos(commune_code, '%') > 0"),  # an escaped percent sign
    ("T_INTERSECTS(updated_at, INTERVAL('..', '..'))", "updated_at IS NOT NULL"),
    ("NOT (NOT (NOT (sheet_no = 1)))", "NOT (sheet_no = 1)"),
    ("sheet_no = 1 " + "OR sheet_no = 2 " * 500, "sheet_no IN (1, 2)"),
    ("(" * 200 + "sheet_no = 1" + ")" * 200, "sheet_no = 1"),
    ("INCLUDE", "TRUE"),
    # an interval ending before it starts holds no instant; a point far off the province meets nothing
    ("updated_at T_DURING INTERVAL('2024-01-01', '2023-01-01')", "FALSE"),
    ("S_INTERSECTS(geom, POINT(1e308 1e308))", "FALSE"),
]
# Not valid CQL2 (or not for this layer): a FilterError naming the problem, never a database error.
HOSTILE_INVALID = [
    ("sheet_no = '1e100000'", "property 'sheet_no' is int"),
    ("\"sheet_no; DROP TABLE parcels\" = 1", "unknown property"),
    ("use_until > DATE('2024-02-30')", "day is out of range"),
    ("S_INTERSECTS(geom, BBOX(1, 2, 0, 3))", "min <= max"),
    ("S_INTERSECTS(geom, SRID=9999;POINT(1 2))", "unsupported geometry CRS"),
    ("S_INTERSECTS(geom, SRID=3405;POINT(1e30 1e30))", "outside the area of EPSG:3405"),
    ("RELATE(geom, POINT(1 2), 'XYZ')", "DE-9IM"),
    ("A_CONTAINS(land_use_codes, ('a\u0000b'))", "NUL"),
    ("version IN ()", "syntax error"),
    ("CASEI(sheet_no) = '1'", "CASEI() needs a string"),
    ("-sheet_no > 1", "unary minus"),  # CQL2 text has a minus sign on numbers only
]


@pytest.mark.parametrize("text,expected_sql", HOSTILE_VALID, ids=range(len(HOSTILE_VALID)))
def test_hostile_looking_valid_filters_are_accepted_and_exact(conn, text: str, expected_sql: str) -> None:
    layer = get_layer("parcels")
    where = filter_to_sql(parse_filter(text), layer)
    assert _ids(conn, "parcels", where) == _ids(conn, "parcels", sql.SQL(expected_sql))
    assert conn.execute("SELECT to_regclass('parcels')").fetchone()[0] is not None


@pytest.mark.parametrize("text,words", HOSTILE_INVALID, ids=range(len(HOSTILE_INVALID)))
def test_bad_input_is_a_filter_error_never_a_database_error(conn, text: str, words: str) -> None:
    with pytest.raises(FilterError) as e:
        filter_to_sql(parse_filter(text), get_layer("parcels"))
    assert words in str(e.value)
