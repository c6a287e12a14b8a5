"""OGC SensorThings API v1.1 at /sta/v1.1, on the sample province (migration 0020's tables).

What the OGC conformance tests (ets-sta10/11: Capability 1 "sensing core" and 3 "filtering")
ask of a server, asked here of ours with the data checked against the database: the service
root, every entity set with its control information (@iot.id, @iot.selfLink, navigation links)
and mandatory properties, single entities, 404 for a missing one, properties and $value,
resource paths two levels deep with their $ref; the query options ($top, $skip, @iot.nextLink,
$count, $orderby, $select, $expand with options, $filter with comparisons, logic, arithmetic and
the string, date, math and geospatial functions); 400s naming the option and the position; the
data-array extension and POST of Observations through the ingest's write path (rollups and
latest kept, nothing stored twice); restricted datastreams hidden from anonymous callers by
every path; the statement timeout.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from itertools import product
from typing import Any

import psycopg
import pytest
from psycopg import sql

from gis.sta import odata, service
from gis.sta.queries import observation_id, observation_key
from layers.access import ADMIN, Principal, _allowed, access_condition
from layers.model import Access

ROOT = "/sta/v1.1"
ENTITY_SETS = ("Things", "Locations", "HistoricalLocations", "Datastreams", "Sensors",
               "ObservedProperties", "Observations", "FeaturesOfInterest")
# Mandatory properties and navigation properties of each entity (STA 1.1, section 8).
PROPERTIES = {
    "Things": ("name", "description"),
    "Locations": ("name", "description", "encodingType", "location"),
    "HistoricalLocations": ("time",),
    "Datastreams": ("name", "description", "unitOfMeasurement", "observationType"),
    "Sensors": ("name", "description", "encodingType", "metadata"),
    "ObservedProperties": ("name", "definition", "description"),
    "Observations": ("phenomenonTime", "result", "resultTime"),
    "FeaturesOfInterest": ("name", "description", "encodingType", "feature"),
}
RELATIONS = {
    "Things": ("Datastreams", "HistoricalLocations", "Locations"),
    "Locations": ("HistoricalLocations", "Things"),
    "HistoricalLocations": ("Thing", "Locations"),
    "Datastreams": ("Thing", "Sensor", "ObservedProperty", "Observations"),
    "Sensors": ("Datastreams",),
    "ObservedProperties": ("Datastreams",),
    "Observations": ("Datastream", "FeatureOfInterest"),
    "FeaturesOfInterest": ("Observations",),
}
SINGULAR_TO_SET = {"Thing": "Things", "Datastream": "Datastreams", "Sensor": "Sensors",
                   "ObservedProperty": "ObservedProperties", "FeatureOfInterest": "FeaturesOfInterest"}
SECRET_NAME = "Luồng hạn chế kiểm thử STA"
INTERNAL_NAME = "Luồng nội bộ kiểm thử STA"


def get(client, path: str, headers: dict[str, str] | None = None, **params: Any) -> Any:
    r = client.get(ROOT + path, params=params, headers=headers or {})
    assert r.status_code == 200, (path, params, r.status_code, r.text[:500])
    return r.json()


# --- fixtures: a restricted and an internal datastream, a datastream to write to ------------------


@pytest.fixture(scope="module")
def streams(conn) -> Iterator[dict[str, int]]:
    """Thing 1 gets a restricted datastream (security officers; observed property rainfall) and
    an internal one (any staff; water_level), each with three observations; thing 2 a public one
    (traffic_flow) to write to. Removed at the end (their observations with them)."""
    def add(thing: int, prop: str, name: str, access: str, roles: list[str]) -> int:
        row = conn.execute(
            "INSERT INTO datastreams (thing_id, sensor_model_id, observed_property_id, name,"
            " description, unit_of_measurement, access, roles) SELECT %s, m.id, p.id, %s,"
            " 'kiểm thử', p.default_unit, %s, %s FROM observed_properties p, sensor_models m"
            " WHERE p.code = %s AND m.code = 'station-air' RETURNING id",
            (thing, name, access, roles, prop)).fetchone()
        return int(row[0])

    conn.execute("DELETE FROM datastreams WHERE name IN (%s, %s) OR name LIKE 'Ghi kiểm thử STA%%'",
                 (SECRET_NAME, INTERNAL_NAME))
    out = {"secret": add(1, "rainfall", SECRET_NAME, "restricted", ["security_officer"]),
           "internal": add(1, "water_level", INTERNAL_NAME, "internal", []),
           "write": add(2, "traffic_flow", "Ghi kiểm thử STA", "public", [])}
    for key in ("secret", "internal"):
        conn.execute(
            "INSERT INTO observations (datastream_id, phenomenon_time, result, result_time,"
            " feature_of_interest_id) SELECT %s, t, 12.5 + extract(hour FROM t), t,"
            " (SELECT feature_of_interest_id FROM thing_locations WHERE thing_id = 1 LIMIT 1)"
            " FROM generate_series(timestamptz '2026-11-20 01:00Z', timestamptz '2026-11-20 03:00Z',"
            " interval '1 hour') AS t", (out[key],))
        conn.execute("SELECT observation_rollups_rebuild(%s)", (out[key],))
    yield out
    conn.execute("DELETE FROM datastreams WHERE id = ANY(%s)", (list(out.values()),))


# --- the OData parser ------------------------------------------------------------------------------


def test_parser_reads_the_grammar() -> None:
    e = odata.parse_filter("substringof('it''s', name) and not (result le -1.5e1 or "
                           "phenomenonTime lt 2026-12-01T07:00:00+07:00) and id in (1, 2)")
    assert isinstance(e, odata.Binary) and e.op == "and"
    lits = []

    def walk(x: Any) -> None:
        if isinstance(x, odata.Lit):
            lits.append((x.kind, x.value))
        for child in getattr(x, "args", ()) + getattr(x, "items", ()):
            walk(child)
        for attr in ("left", "right", "operand"):
            if hasattr(x, attr):
                walk(getattr(x, attr))

    walk(e)
    assert ("string", "it's") in lits and ("float", -15.0) in lits
    assert ("datetime", dt.datetime(2026, 12, 1, tzinfo=dt.UTC)) in lits
    expand = odata.parse_expand("Datastreams($filter=name eq 'a,b(c)';$top=2;$expand=Observations("
                                "$orderby=phenomenonTime desc;$top=1)),Locations,Datastreams/Sensor")
    assert [x.nav for x in expand] == ["Datastreams", "Locations"]
    ds = expand[0].options
    assert ds.top == 2 and [x.nav for x in ds.expand] == ["Observations", "Sensor"]
    assert ds.expand[0].options.top == 1 and ds.expand[0].options.orderby[0].desc


@pytest.mark.parametrize(("text", "position"), [
    ("name eq", 8), ("name eq 'x", 9), ("(name eq 'a'", 13), ("name eq 'a')", 12),
    ("name eq 'a' name", 13), ("name eq #", 9), ("length(name gt 3", 17),
    ("phenomenonTime gt 2026-13-01T00:00:00Z", 19), ("name eq duration'X'", 9),
])
def test_syntax_errors_name_the_option_and_the_position(client, text: str, position: int) -> None:
    for lang, word in (("en", "position"), ("vi", "vị trí")):
        r = client.get(ROOT + "/Things", params={"$filter": text, "lang": lang})
        assert r.status_code == 400, r.text
        body = r.json()
        assert body["parameter"] == "$filter"
        assert f"{word} {position}" in body["detail"], body["detail"]


@pytest.mark.parametrize(("params", "option", "words"), [
    ({"$filter": "nosuch eq 1"}, "$filter", "nosuch"),
    ({"$filter": "Datastreams eq 1"}, "$filter", "Datastreams"),
    ({"$filter": "frobnicate(name)"}, "$filter", "frobnicate"),
    ({"$filter": "length(name, 2) eq 1"}, "$filter", "length"),
    ({"$filter": "name gt 5"}, "$filter", "string"),
    ({"$filter": "geo.intersects(Locations/location, geography'POINT(1 2')"}, "$filter", "WKT"),
    ({"$orderby": "Locations/location"}, "$orderby", "geometry"),
    ({"$orderby": "Datastreams/name"}, "$orderby", "several"),
    ({"$orderby": "name sideways"}, "$orderby", "sideways"),
    ({"$select": "name,nosuch"}, "$select", "nosuch"),
    ({"$expand": "Nowhere"}, "$expand", "Nowhere"),
    ({"$expand": "Datastreams($top=x)"}, "$expand/Datastreams/$top", "x"),
    ({"$expand": "Datastreams($filter=nope eq 1)"}, "$expand/Datastreams/$filter", "nope"),
    ({"$top": "-1"}, "$top", "-1"), ({"$skip": "abc"}, "$skip", "abc"),
    ({"$count": "maybe"}, "$count", "maybe"), ({"$foo": "1"}, "$foo", "$foo"),
    ({"$orderby": "0" * 5000}, "$orderby", "no property"),
    ({"$resultFormat": "dataArray"}, "$resultFormat", "CreateObservations"),
    ({"$filter": "name eq " + "9" * 5000}, "$filter", "finite"),
])
def test_bad_options_are_400_naming_the_option(client, params, option, words) -> None:
    r = client.get(ROOT + "/Things", params={**params, "lang": "en"})
    assert r.status_code == 400, r.text
    assert r.json()["parameter"] == option
    assert words in r.json()["detail"], r.json()["detail"]
    vi = client.get(ROOT + "/Things", params=params).json()["detail"]
    assert vi != r.json()["detail"]  # worded in Vietnamese by default
    assert client.get(ROOT + "/Locations", params={"$orderby": "location"}).status_code == 400


def test_observation_ids_round_trip() -> None:
    t = dt.datetime(2026, 11, 20, 1, 2, 3, 456000, tzinfo=dt.UTC)
    assert observation_key(observation_id(12345, t)) == (12345, t)
    assert observation_key(2**63 - 1) == (2**21 - 1, observation_key(2**63 - 1)[1])  # type: ignore[index]


# --- access: the catalogue's guard, for rows --------------------------------------------------------


def test_access_condition_is_the_catalogue_guard(conn) -> None:
    """For every access level, row roles and principal, the SQL condition says what _allowed
    says."""
    principals = [Principal(), Principal("c", frozenset({"citizen"})),
                  Principal("o", frozenset({"operator"})),
                  Principal("s", frozenset({"security_officer"})),
                  Principal("l", frozenset({"leader", "operator"})),
                  Principal("a", frozenset({ADMIN}))]
    role_sets = [[], ["security_officer"], ["security_officer", "leader"], ["land_officer"]]
    for who, access, roles in product(principals, Access, role_sets):
        if access is Access.RESTRICTED and not roles:
            continue
        cond = access_condition(who, sql.SQL("x.access"), sql.SQL("x.roles"))
        query = sql.SQL("SELECT {} FROM (SELECT %s::text AS access, %s::text[] AS roles) x").format(
            cond if cond is not None else sql.SQL("true"))
        got = conn.execute(query, (access.value, roles)).fetchone()[0]
        assert got == _allowed(access, tuple(roles), who), (who, access, roles)


# --- sensing core ----------------------------------------------------------------------------------


def test_service_root(client) -> None:
    root = get(client, "")
    names = {e["name"]: e["url"] for e in root["value"]}
    assert set(names) == set(ENTITY_SETS)
    for name, url in names.items():
        assert url.endswith(f"{ROOT}/{name}")
    conformance = root["serverSettings"]["conformance"]
    assert "http://www.opengis.net/spec/iot_sensing/1.1/req/request-data" in conformance
    assert service.MQTT_CREATE in conformance
    assert root["serverSettings"][service.MQTT_CREATE]["endpoints"][0].startswith("mqtt://")
    doc = service.root_document("http://x", "mqtts://ingest:s3cret@broker.example:8883")
    assert doc["serverSettings"][service.MQTT_CREATE] == {"endpoints": ["mqtts://broker.example:8883"]}


@pytest.mark.parametrize("entity_set", ENTITY_SETS)
def test_entity_sets_entities_properties_and_404(client, conn, entity_set: str) -> None:
    page = get(client, f"/{entity_set}", **{"$top": "2", "$count": "true"})
    assert len(page["value"]) == 2
    assert ("@iot.nextLink" in page) == (page["@iot.count"] > 2)
    for e in page["value"]:
        assert isinstance(e["@iot.id"], int)
        assert e["@iot.selfLink"].endswith(f"{ROOT}/{entity_set}({e['@iot.id']})")
        for prop in PROPERTIES[entity_set]:
            assert prop in e, (entity_set, prop)
        for rel in RELATIONS[entity_set]:
            assert e[f"{rel}@iot.navigationLink"].endswith(f"/{entity_set}({e['@iot.id']})/{rel}")
    first = page["value"][0]
    one = get(client, f"/{entity_set}({first['@iot.id']})")
    assert one == first
    for prop in PROPERTIES[entity_set]:
        assert get(client, f"/{entity_set}({first['@iot.id']})/{prop}") == {prop: first[prop]}
        r = client.get(f"{ROOT}/{entity_set}({first['@iot.id']})/{prop}/$value")
        assert r.status_code == 200
        value = first[prop]
        if isinstance(value, dict):
            assert r.json() == value
        else:
            assert r.text == (value if isinstance(value, str) else json.dumps(value))
    for missing in (2**63 - 1, 0):
        r = client.get(f"{ROOT}/{entity_set}({missing})")
        assert r.status_code == 404, r.text
    assert client.get(f"{ROOT}/{entity_set}(1)/nosuch").status_code == 404


def test_entities_match_the_database(client, conn) -> None:
    thing = get(client, "/Things(3)")
    code, name, lon, lat = conn.execute(
        "SELECT code, name, ST_X(geom), ST_Y(geom) FROM sensors WHERE id = 3").fetchone()
    assert thing["name"] == name and thing["properties"]["code"] == code
    loc = get(client, "/Things(3)/Locations")["value"]
    assert len(loc) == 1 and loc[0]["location"]["coordinates"] == pytest.approx([lon, lat], abs=1e-8)
    ds = get(client, "/Things(3)/Datastreams")["value"]
    assert ds and all(d["name"] for d in ds)
    d = ds[0]
    first, last, n = conn.execute(
        "SELECT min(phenomenon_time), max(phenomenon_time), count(*) FROM observations"
        " WHERE datastream_id = %s", (d["@iot.id"],)).fetchone()
    start, _, end = d["phenomenonTime"].partition("/")
    assert dt.datetime.fromisoformat(start) == first and dt.datetime.fromisoformat(end) == last
    obs = get(client, f"/Datastreams({d['@iot.id']})/Observations",
              **{"$count": "true", "$top": "3", "$orderby": "phenomenonTime desc"})
    assert obs["@iot.count"] == n
    rows = conn.execute(
        "SELECT phenomenon_time, result FROM observations WHERE datastream_id = %s"
        " ORDER BY phenomenon_time DESC LIMIT 3", (d["@iot.id"],)).fetchall()
    assert [(dt.datetime.fromisoformat(o["phenomenonTime"]), o["result"]) for o in obs["value"]] \
        == [(t, r) for t, r in rows]
    o = obs["value"][0]
    assert get(client, f"/Observations({o['@iot.id']})")["result"] == o["result"]
    assert get(client, f"/Observations({o['@iot.id']})/Datastream")["@iot.id"] == d["@iot.id"]
    foi = get(client, f"/Observations({o['@iot.id']})/FeatureOfInterest")
    assert foi["feature"]["type"] == "Point"


def _walk_paths(client, parts: list[str], depth: int) -> int:
    """ets-sta's checkResourcePaths: every relation to DEPTH levels answers 200, non-empty, and
    its $ref holds selfLinks only."""
    path = "/" + "/".join(parts)
    body = get(client, path)
    plural = "value" in body
    first = body["value"][0] if plural else body
    assert first, path
    ref = get(client, path + "/$ref")
    for item in ref["value"] if plural else [ref]:
        assert list(item) == ["@iot.selfLink"], (path, item)
    if len(parts) >= depth:
        return 1
    head = parts[-1]
    head = head.split("(")[0]
    here = parts[:-1] + [f"{head}({first['@iot.id']})"] if plural else parts
    entity_set = head if head in RELATIONS else SINGULAR_TO_SET[head]
    return 1 + sum(_walk_paths(client, [*here, rel], depth) for rel in RELATIONS[entity_set])


def test_resource_paths_two_levels_deep(client) -> None:
    assert sum(_walk_paths(client, [name], 2) for name in ENTITY_SETS) == 8 + sum(
        len(r) for r in RELATIONS.values())


# --- query options ---------------------------------------------------------------------------------


def test_top_skip_and_next_links_page_through_everything(client, conn) -> None:
    n = conn.execute("SELECT count(*) FROM thing_locations").fetchone()[0]
    seen: list[int] = []
    url: str | None = f"{ROOT}/Locations?$top=7&$count=true"
    while url:
        r = client.get(url)
        assert r.status_code == 200
        body = r.json()
        assert body["@iot.count"] == n
        seen += [e["@iot.id"] for e in body["value"]]
        url = body.get("@iot.nextLink")
        assert len(body["value"]) == 7 or url is None
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == n
    skipped = get(client, "/Locations", **{"$skip": "3", "$top": "2"})["value"]
    assert [e["@iot.id"] for e in skipped] == seen[3:5]
    zero = get(client, "/Things", **{"$top": "0", "$count": "true",
                                     "$expand": "Datastreams($top=0;$count=true)"})
    assert zero["value"] == [] and zero["@iot.count"] > 0 and "@iot.nextLink" not in zero
    one = get(client, "/Things(1)", **{"$expand": "Datastreams($top=0;$count=true)"})
    assert one["Datastreams"] == [] and one["Datastreams@iot.count"] >= 1
    assert "Datastreams@iot.nextLink" not in one


def test_top_default_and_maximum(client, conn) -> None:
    page = get(client, "/Observations")
    assert len(page["value"]) == odata.DEFAULT_TOP and "$top=100&$skip=100" in page["@iot.nextLink"]
    big = get(client, "/Observations", **{"$top": "20000", "$select": "id"})
    assert len(big["value"]) == odata.MAX_TOP
    assert "$skip=10000" in big["@iot.nextLink"]


def test_count_rules(client, conn, streams) -> None:
    total = conn.execute("SELECT count(*) FROM observations o JOIN datastreams d"
                         " ON d.id = o.datastream_id WHERE d.access = 'public'").fetchone()[0]
    assert get(client, "/Observations", **{"$count": "true", "$top": "1"})["@iot.count"] == total
    n = conn.execute("SELECT count(*) FROM observations WHERE datastream_id = 1 AND result > 40"
                     ).fetchone()[0]
    body = get(client, "/Datastreams(1)/Observations", **{"$count": "true", "$top": "1",
                                                        "$filter": "result gt 40"})
    assert body["@iot.count"] == n
    assert "@iot.count" not in get(client, "/Things", **{"$top": "1"})


def test_orderby_and_select(client, conn) -> None:
    # Every Thing: stations (named as their sensors rows) and road segments (migration 0024).
    rows = conn.execute(
        "SELECT t.id, CASE WHEN t.sensor_id IS NOT NULL THEN s.name ELSE geoioc_road_label(r) END"
        " AS name FROM things t LEFT JOIN sensors s ON s.id = t.sensor_id"
        " LEFT JOIN roads r ON r.id = t.road_id ORDER BY name DESC, id DESC LIMIT 5").fetchall()
    body = get(client, "/Things", **{"$orderby": "name desc", "$top": "5", "$select": "id,name"})
    assert [(e["@iot.id"], e["name"]) for e in body["value"]] == [tuple(r) for r in rows]
    assert all(set(e) == {"@iot.id", "name"} for e in body["value"])
    ds = get(client, "/Datastreams", **{"$select": "name,Thing", "$top": "1"})["value"][0]
    assert set(ds) == {"name", "Thing@iot.navigationLink"}
    by_result = get(client, "/Datastreams(1)/Observations",
                    **{"$orderby": "result desc,phenomenonTime", "$top": "3"})["value"]
    top3 = conn.execute("SELECT result FROM observations WHERE datastream_id = 1"
                        " ORDER BY result DESC, phenomenon_time LIMIT 3").fetchall()
    assert [o["result"] for o in by_result] == [r[0] for r in top3]


def test_expand_nested_with_options(client, conn) -> None:
    body = get(client, "/Things(1)", **{
        "$select": "name",
        "$expand": "Datastreams($filter=ObservedProperty/properties/code eq 'pm25';"
                   "$expand=Observations($orderby=phenomenonTime desc;$top=2;$count=true;"
                   "$select=result,phenomenonTime),ObservedProperty($select=name)),Locations"})
    assert set(body) >= {"name", "Datastreams", "Locations"}
    (ds,) = body["Datastreams"]
    assert ds["ObservedProperty"] == {"name": "Bụi PM2.5"}
    latest = conn.execute("SELECT phenomenon_time, result FROM observations WHERE datastream_id ="
                          " %s ORDER BY phenomenon_time DESC LIMIT 2", (ds["@iot.id"],)).fetchall()
    assert [(dt.datetime.fromisoformat(o["phenomenonTime"]), o["result"])
            for o in ds["Observations"]] == [tuple(r) for r in latest]
    assert ds["Observations@iot.count"] > 2
    assert "$skip=2" in ds["Observations@iot.nextLink"]
    nxt = client.get(ds["Observations@iot.nextLink"]).json()
    assert len(nxt["value"]) == 2 and nxt["value"][0]["phenomenonTime"] < latest[1][0].isoformat()
    # to-one expansions and the path form
    obs = get(client, "/Observations", **{"$top": "1", "$expand": "Datastream/Thing,FeatureOfInterest"})
    o = obs["value"][0]
    assert o["Datastream"]["Thing"]["@iot.id"] > 0 and o["FeatureOfInterest"]["feature"]


FILTERS = [
    # (entity set, $filter, SQL over the table `t` giving the ids expected)
    ("Things", "name eq 'Trạm quan trắc không khí Phường Yên Đình – PM2.5'",
     "SELECT id FROM sensors WHERE name = 'Trạm quan trắc không khí Phường Yên Đình – PM2.5'"),
    ("Things", "substringof('nước', name) and properties/kind eq 'water'",
     "SELECT id FROM sensors WHERE strpos(name, 'nước') > 0 AND kind = 'water'"),
    ("Things", "startswith(properties/code, 'AIR-00') or endswith(name, 'COD')",
     "SELECT id FROM sensors WHERE code LIKE 'AIR-00%' OR name LIKE '%COD'"),
    ("Things", "length(name) gt 45 and indexof(name, 'Trạm') eq 0",
     "SELECT id FROM sensors WHERE char_length(name) > 45 AND strpos(name, 'Trạm') = 1"),
    ("Things", "tolower(substring(properties/code, 0, 3)) eq 'wat' and toupper(trim(concat(' ', "
     "properties/kind))) eq 'WATER'", "SELECT id FROM sensors WHERE code LIKE 'WAT%'"),
    ("Things", "properties/threshold div 2 ge 25 and properties/threshold mod 7 ne 0 and "
     "not (properties/threshold sub 1 lt 10)",
     "SELECT id FROM sensors WHERE threshold / 2 >= 25 AND mod(threshold::numeric, 7) <> 0"
     " AND NOT threshold - 1 < 10"),
    ("Things", "Datastreams/Observations/result gt 200",
     "SELECT DISTINCT d.thing_id FROM observations o JOIN datastreams d ON d.id = o.datastream_id"
     " WHERE o.result > 200 AND d.access = 'public'"),
    ("Datastreams", "Thing/properties/kind eq 'air' and ObservedProperty/name eq 'Bụi PM10'",
     "SELECT d.id FROM datastreams d JOIN sensors s ON s.id = d.thing_id JOIN observed_properties p"
     " ON p.id = d.observed_property_id WHERE s.kind = 'air' AND p.name_vi = 'Bụi PM10'"
     " AND d.access = 'public'"),
    ("Datastreams", "phenomenonTime eq 2026-11-10T00:00:00Z and resultTime gt 2026-11-01T00:00:00Z",
     "SELECT d.id FROM datastreams d JOIN datastream_latest l ON l.datastream_id = d.id"
     " WHERE l.phenomenon_time_start <= '2026-11-10Z' AND l.phenomenon_time_end >= '2026-11-10Z'"
     " AND l.result_time_start > '2026-11-01Z' AND d.access = 'public'"),
    ("Observations", "Datastream/id eq 2 and round(result) ge 60 and hour(phenomenonTime) eq 8",
     "SELECT sta_observation_id(datastream_id, phenomenon_time) FROM observations WHERE"
     " datastream_id = 2 AND round(result) >= 60 AND extract(hour FROM phenomenon_time) = 8"),
    ("Observations", "Datastream/id eq 1 and phenomenonTime ge 2026-11-30T00:00:00Z and "
     "phenomenonTime lt 2026-11-30T06:00:00.000Z and floor(result) le ceiling(result)",
     "SELECT sta_observation_id(datastream_id, phenomenon_time) FROM observations WHERE"
     " datastream_id = 1 AND phenomenon_time >= '2026-11-30Z' AND phenomenon_time < '2026-11-30 06:00Z'"),
    ("Observations", "Datastream/id eq 3 and day(phenomenonTime) eq 15 and month(phenomenonTime) eq 11 "
     "and year(phenomenonTime) eq 2026 and minute(phenomenonTime) eq 0 and second(phenomenonTime) eq 0"
     " and date(phenomenonTime) eq 2026-11-15 and time(phenomenonTime) ge 12:00:00",
     "SELECT sta_observation_id(datastream_id, phenomenon_time) FROM observations WHERE"
     " datastream_id = 3 AND phenomenon_time >= '2026-11-15 12:00Z' AND phenomenon_time < '2026-11-16Z'"),
    ("Observations", "Datastream/id eq 1 and phenomenonTime gt now() sub duration'P3D' "
     "and phenomenonTime gt mindatetime() and phenomenonTime lt maxdatetime()",
     "SELECT sta_observation_id(datastream_id, phenomenon_time) FROM observations WHERE"
     " datastream_id = 1 AND phenomenon_time > now() - interval '3 days'"),
    ("Observations", "Datastream/id in (1, 2) and (result add 1) mul 2 gt 200",
     "SELECT sta_observation_id(datastream_id, phenomenon_time) FROM observations WHERE"
     " datastream_id IN (1, 2) AND (result + 1) * 2 > 200"),
    ("Locations", "geo.distance(location, geography'POINT(106.07 21.18)') lt 6000",
     "SELECT id FROM thing_locations WHERE ST_DWithin(geom::geography,"
     " 'SRID=4326;POINT(106.07 21.18)'::geography, 6000, true)"),
    ("Locations", "st_within(location, geography'POLYGON((106 21.1, 106.15 21.1, 106.15 21.25,"
     " 106 21.25, 106 21.1))') and not st_disjoint(location, geometry'POLYGON((106 21.1, 106.15 21.1,"
     " 106.15 21.25, 106 21.1))')",
     "SELECT id FROM thing_locations WHERE ST_Within(geom, ST_MakeEnvelope(106, 21.1, 106.15, 21.25,"
     " 4326)) AND ST_Intersects(geom, 'SRID=4326;POLYGON((106 21.1, 106.15 21.1, 106.15 21.25,"
     " 106 21.1))'::geometry)"),
    ("Locations", "st_intersects(location, geography'POLYGON((106 21.1, 106.15 21.1, 106.15 21.25,"
     " 106 21.25, 106 21.1))') and st_relate(location, geography'POLYGON((106 21.1, 106.15 21.1,"
     " 106.15 21.25, 106 21.25, 106 21.1))', 'T*F**F***') and geo.intersects(location, "
     "geography'POLYGON((106 21.1, 106.15 21.1, 106.15 21.25, 106 21.25, 106 21.1))') and "
     "not st_equals(location, geography'POINT(0 0)') and not st_touches(location, "
     "geography'POINT(0 0)') and not st_overlaps(location, geography'POINT(0 0)') and "
     "not st_crosses(location, geography'LINESTRING(0 0, 1 1)') and not st_contains(location, "
     "geography'POINT(0 0)') and geo.length(geography'LINESTRING(106 21, 106 21.01)') gt 1000",
     "SELECT id FROM thing_locations WHERE ST_Within(geom, ST_MakeEnvelope(106, 21.1, 106.15, 21.25,"
     " 4326))"),
    ("FeaturesOfInterest", "Observations/Datastream/id eq 1",
     "SELECT DISTINCT feature_of_interest_id FROM observations WHERE datastream_id = 1"),
    ("ObservedProperties", "Datastreams/Thing/properties/kind eq 'water' and "
     "substringof('QCVN', description) and properties/code ne null",
     "SELECT DISTINCT p.id FROM observed_properties p JOIN datastreams d ON d.observed_property_id"
     " = p.id JOIN sensors s ON s.id = d.thing_id WHERE s.kind = 'water' AND d.access = 'public'"
     " AND strpos(p.description, 'QCVN') > 0"),
    ("Sensors", "Datastreams/Observations/resultTime eq null", "SELECT id FROM sensor_models WHERE false"),
    ("HistoricalLocations", "Thing/properties/code eq 'WAT-001' and time le now()",
     "SELECT l.id FROM thing_locations l JOIN sensors s ON s.id = l.thing_id WHERE s.code = 'WAT-001'"),
]


@pytest.mark.parametrize(("entity_set", "expr", "expected"), FILTERS,
                         ids=[f"{e}:{f[:40]}" for e, f, _ in FILTERS])
def test_filters_select_what_the_database_says(client, conn, streams, entity_set, expr,
                                               expected) -> None:
    want = sorted(r[0] for r in conn.execute(expected))
    got: list[int] = []
    r = client.get(f"{ROOT}/{entity_set}", params={"$filter": expr, "$top": "1000", "$select": "id"})
    while True:
        assert r.status_code == 200, r.text
        body = r.json()
        got += [e["@iot.id"] for e in body["value"]]
        url = body.get("@iot.nextLink")
        if not url:
            break
        r = client.get(url)
    assert sorted(got) == want
    if entity_set != "Sensors":
        assert want, "the filter should match something in the sample"


# --- access ----------------------------------------------------------------------------------------


def _reaches(client, headers: dict[str, str], ds_id: int, name: str, obs_id: int) -> list[str]:
    """The ways that showed the datastream (or its observations) to the caller."""
    shown = []

    def check(label: str, path: str, **params: Any) -> None:
        r = client.get(ROOT + path, params=params, headers=headers)
        if r.status_code == 200 and (name in r.text or f"Datastreams({ds_id})" in r.text
                                     or f"Observations({obs_id})" in r.text
                                     or label == "filter-name" and r.json()["value"]):
            shown.append(label)

    check("list", "/Datastreams", **{"$top": "1000"})
    check("entity", f"/Datastreams({ds_id})")
    check("property", f"/Datastreams({ds_id})/name")
    check("observations", f"/Datastreams({ds_id})/Observations")
    check("observation", f"/Observations({obs_id})")
    check("observation-datastream", f"/Observations({obs_id})/Datastream")
    check("filter-obs", "/Observations", **{"$filter": f"Datastream/id eq {ds_id}"})
    check("filter-name", "/Things", **{"$filter": f"Datastreams/name eq '{name}'"})
    check("thing-nav", "/Things(1)/Datastreams")
    check("expand", "/Things(1)", **{"$expand": "Datastreams($expand=Observations)"})
    check("expand-list", "/Things", **{"$expand": "Datastreams", "$top": "1000"})
    check("sensor-nav", "/Sensors", **{"$expand": "Datastreams($top=1000)"})
    check("property-nav", "/ObservedProperties", **{"$expand": "Datastreams"})
    check("foi", "/FeaturesOfInterest", **{"$expand": f"Observations($filter=Datastream/id eq {ds_id})"})
    check("ref", "/Things(1)/Datastreams/$ref")
    check("count", "/Observations", **{"$filter": f"Datastream/id eq {ds_id}", "$count": "true"})
    return shown


def test_restricted_and_internal_datastreams(client, keys, streams, conn) -> None:
    secret, internal = streams["secret"], streams["internal"]
    t = conn.execute("SELECT min(phenomenon_time) FROM observations WHERE datastream_id = %s",
                     (secret,)).fetchone()[0]
    secret_obs = observation_id(secret, t)
    internal_obs = observation_id(internal, t)
    for who in ("anonymous", "citizen", "operator", "land_officer", "leader"):
        assert _reaches(client, keys[who], secret, SECRET_NAME, secret_obs) == [], who
    for who in ("anonymous", "citizen"):
        assert _reaches(client, keys[who], internal, INTERNAL_NAME, internal_obs) == [], who
    everything = {"list", "entity", "property", "observations", "observation",
                  "observation-datastream", "filter-obs", "filter-name", "thing-nav", "expand",
                  "expand-list", "sensor-nav", "property-nav", "foi", "ref", "count"}
    for who in ("security_officer", "admin"):
        assert set(_reaches(client, keys[who], secret, SECRET_NAME, secret_obs)) == everything, who
    for who in ("operator", "land_officer", "leader"):
        assert set(_reaches(client, keys[who], internal, INTERNAL_NAME, internal_obs)) == everything
    # counts leave them out too
    public = get(client, "/Datastreams", **{"$count": "true", "$top": "1"})["@iot.count"]
    staff = get(client, "/Datastreams", keys["security_officer"], **{"$count": "true", "$top": "1"})
    assert staff["@iot.count"] == public + 2
    # a security officer's read of datastreams is in the audit log
    before = conn.execute("SELECT count(*) FROM audit_log WHERE target->>'channel' = 'sta'").fetchone()[0]
    get(client, f"/Datastreams({secret})", keys["security_officer"])
    after = conn.execute("SELECT count(*) FROM audit_log WHERE target->>'channel' = 'sta'").fetchone()[0]
    assert after == before + 1


# --- creating observations -------------------------------------------------------------------------


def _rollups_match(conn, ds: int) -> None:
    hourly = conn.execute("SELECT bucket, n, sum, min, max FROM observation_hourly"
                          " WHERE datastream_id = %s ORDER BY bucket", (ds,)).fetchall()
    raw = conn.execute("SELECT date_trunc('hour', phenomenon_time, 'UTC'), count(*), sum(result),"
                       " min(result), max(result) FROM observations WHERE datastream_id = %s"
                       " AND result IS NOT NULL GROUP BY 1 ORDER BY 1", (ds,)).fetchall()
    assert [tuple(r) for r in hourly] == [tuple(r) for r in raw]
    latest = conn.execute("SELECT observations, phenomenon_time FROM datastream_latest"
                          " WHERE datastream_id = %s", (ds,)).fetchone()
    n, last = conn.execute("SELECT count(*), max(phenomenon_time) FROM observations"
                           " WHERE datastream_id = %s", (ds,)).fetchone()
    assert tuple(latest) == (n, last)


def test_create_observations(client, keys, streams, conn) -> None:
    ds = streams["write"]
    body = {"phenomenonTime": "2026-11-21T08:00:00+07:00", "result": 640,
            "resultTime": "2026-11-21T01:00:05Z", "parameters": {"lane": 2}}
    assert client.post(f"{ROOT}/Datastreams({ds})/Observations", json=body).status_code == 401
    assert client.post(f"{ROOT}/Datastreams({ds})/Observations", json=body,
                       headers=keys["citizen"]).status_code == 403
    r = client.post(f"{ROOT}/Datastreams({ds})/Observations", json=body, headers=keys["operator"])
    assert r.status_code == 201, r.text
    created = r.json()
    assert r.headers["location"] == created["@iot.selfLink"]
    assert created["phenomenonTime"] == "2026-11-21T01:00:00.000Z" and created["result"] == 640
    assert created["parameters"] == {"lane": 2}
    assert get(client, f"/Observations({created['@iot.id']})/Datastream")["@iot.id"] == ds
    # the same again: stored once (200), the rollups counted it once
    again = client.post(f"{ROOT}/Observations", json={**body, "Datastream": {"@iot.id": ds}},
                        headers=keys["operator"])
    assert again.status_code == 200 and again.json()["@iot.id"] == created["@iot.id"]
    _rollups_match(conn, ds)
    # a month without a partition yet (back-filled), an inline feature of interest, text result
    r = client.post(f"{ROOT}/Observations", headers=keys["operator"], json={
        "Datastream": {"@iot.id": ds}, "phenomenonTime": "2025-01-15T00:00:00Z/2025-01-15T01:00:00Z",
        "result": "ùn ứ", "FeatureOfInterest": {
            "name": "Nút giao kiểm thử", "description": "", "encodingType": "application/geo+json",
            "feature": {"type": "Point", "coordinates": [106.07, 21.18]}}})
    assert r.status_code == 201, r.text
    o = r.json()
    assert o["result"] == "ùn ứ" and o["phenomenonTime"].endswith("/2025-01-15T01:00:00.000Z")
    foi = get(client, f"/Observations({o['@iot.id']})/FeatureOfInterest")
    assert foi["name"] == "Nút giao kiểm thử"
    # refusals: 422 naming the reason; an unknown or hidden datastream: 404
    bad = client.post(f"{ROOT}/Datastreams({ds})/Observations", headers=keys["operator"],
                      json={"phenomenonTime": "yesterday", "result": 1})
    assert bad.status_code == 422 and "ISO 8601" in client.post(
        f"{ROOT}/Datastreams({ds})/Observations?lang=en", headers=keys["operator"],
        json={"phenomenonTime": "yesterday", "result": 1}).json()["detail"]
    assert client.post(f"{ROOT}/Datastreams({streams['secret']})/Observations",
                       headers=keys["operator"], json={"result": 1}).status_code == 404
    assert client.post(f"{ROOT}/Observations", headers=keys["operator"],
                       json={"result": 1}).status_code == 400
    assert client.post(f"{ROOT}/Things", headers=keys["operator"], json={}).status_code == 405
    assert client.delete(f"{ROOT}/Things(1)", headers=keys["admin"]).status_code == 405
    # the data array extension: one refused row is "error", the others are stored
    arrays = [{"Datastream": {"@iot.id": ds}, "components": ["phenomenonTime", "result"],
               "dataArray@iot.count": 3,
               "dataArray": [["2026-11-21T02:00:00Z", 700], ["2026-11-21T03:00:00Z", 710],
                             ["not a time", 1]]},
              {"Datastream": {"@iot.id": streams["secret"]}, "components": ["result"],
               "dataArray": [[5]]}]
    r = client.post(f"{ROOT}/CreateObservations", json=arrays, headers=keys["operator"])
    assert r.status_code == 201, r.text
    links = r.json()
    assert links[2:] == ["error", "error"] and all("Observations(" in x for x in links[:2])
    assert [client.get(x).json()["result"] for x in links[:2]] == [700, 710]
    _rollups_match(conn, ds)
    audit_rows = conn.execute("SELECT count(*) FROM audit_log WHERE action = 'write'"
                              " AND target->>'channel' = 'sta'").fetchone()[0]
    assert audit_rows >= 4


# --- runaway queries ------------------------------------------------------------------------------


def test_a_runaway_query_is_stopped_with_a_clear_error(db_url) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from gis.settings import get_settings

    app = create_app(get_settings().model_copy(update={"sta_statement_timeout_ms": 200}))
    with TestClient(app) as c:
        # every observation against every observation of its datastream: minutes of work
        r = c.get(ROOT + "/Observations", params={
            "$filter": "Datastream/Observations/result gt result mul 100", "$count": "true",
            "lang": "en"})
        assert r.status_code == 503, r.text
        assert r.headers["retry-after"] and "too long" in r.json()["detail"]
        assert c.get(ROOT + "/Things(1)").status_code == 200  # the connection is fine after it


def test_the_sample_has_what_the_tests_use(conn) -> None:
    assert conn.execute("SELECT count(*) FROM datastreams WHERE access = 'public'").fetchone()[0] >= 40
    assert isinstance(conn, psycopg.Connection)


# --- the MQTT extension: what is created over HTTP reaches subscribers ------------------------------


def test_created_observations_are_announced_on_mqtt(streams, keys) -> None:
    """Needs the broker (`make test` starts it, GEOIOC_MQTT_URL): a subscriber to the STA topic
    receives the observations POSTed over HTTP, marked as the server's own (the ingest workers
    skip those), under a topic prefix of this test's own."""
    import threading
    import urllib.parse
    import uuid

    import paho.mqtt.client as mqtt
    from fastapi.testclient import TestClient
    from paho.mqtt.enums import CallbackAPIVersion

    from api.app import create_app
    from gis.settings import get_settings
    from gis.sta import announce

    prefix = f"test-sta-{uuid.uuid4().hex[:8]}/"
    settings = get_settings().model_copy(update={"mqtt_topic_prefix": prefix})
    ds = streams["write"]
    received: list[tuple[str, Any, Any]] = []
    subscribed, three = threading.Event(), threading.Event()

    def on_message(client, userdata, msg) -> None:
        props = getattr(msg.properties, "UserProperty", None)
        received.append((msg.topic, json.loads(msg.payload), props))
        if len(received) >= 3:
            three.set()

    sub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    sub.on_message = on_message
    sub.on_subscribe = lambda *a: subscribed.set()
    url = urllib.parse.urlsplit(settings.mqtt_url)
    sub.connect(url.hostname or "127.0.0.1", url.port or 1883)
    sub.loop_start()
    try:
        sub.subscribe(announce.topic(settings, ds), qos=1)
        assert subscribed.wait(10)
        with TestClient(create_app(settings)) as c:
            r = c.post(f"{ROOT}/Datastreams({ds})/Observations", headers=keys["operator"],
                       json={"phenomenonTime": "2026-11-23T05:00:00Z", "result": 800.5})
            assert r.status_code == 201
            r = c.post(f"{ROOT}/CreateObservations", headers=keys["operator"], json=[
                {"Datastream": {"@iot.id": ds}, "components": ["phenomenonTime", "result"],
                 "dataArray": [["2026-11-23T06:00:00Z", 801], ["2026-11-23T07:00:00Z", "kẹt"]]}])
            assert r.status_code == 201
        assert three.wait(10), received
    finally:
        sub.loop_stop()
        sub.disconnect()
    assert {t for t, _, _ in received} == {f"{prefix}v1.1/Datastreams({ds})/Observations"}
    assert sorted((o["phenomenonTime"], o["result"]) for _, o, _ in received) == [
        ("2026-11-23T05:00:00.000Z", 800.5), ("2026-11-23T06:00:00.000Z", 801),
        ("2026-11-23T07:00:00.000Z", "kẹt")]
    assert all(list(announce.ORIGIN_PROPERTY) in [list(p) for p in props or []]
               for _, _, props in received)


def test_observations_of_a_feature_of_interest_come_by_its_index(client, conn) -> None:
    """FeaturesOfInterest(id)/Observations pages in the observations' id order (datastream,
    time) read through observations_foi_idx (migration 0041): without it, at 100,000,000
    observations the planner walked the primary key testing each row's feature and ran into the
    statement timeout."""
    foi, n = conn.execute(
        "SELECT o.feature_of_interest_id, count(*) FROM observations o JOIN datastreams d"
        " ON d.id = o.datastream_id WHERE d.access = 'public' GROUP BY 1 ORDER BY 2 DESC"
        " LIMIT 1").fetchone()
    expected = [r[0] for r in conn.execute(
        "SELECT sta_observation_id(o.datastream_id, o.phenomenon_time) FROM observations o"
        " JOIN datastreams d ON d.id = o.datastream_id WHERE d.access = 'public'"
        " AND o.feature_of_interest_id = %s ORDER BY o.datastream_id, o.phenomenon_time LIMIT 5",
        (foi,))]
    body = get(client, f"/FeaturesOfInterest({foi})/Observations", **{"$top": "5"})
    assert [o["@iot.id"] for o in body["value"]] == expected and n > 5
    with conn.transaction():
        conn.execute("SET LOCAL enable_seqscan = off")
        conn.execute("SET LOCAL enable_bitmapscan = off")
        plan = "\n".join(r[0] for r in conn.execute(
            "EXPLAIN SELECT datastream_id, phenomenon_time FROM observations"
            " WHERE feature_of_interest_id = %s ORDER BY datastream_id, phenomenon_time LIMIT 11",
            (foi,)))
    assert "_foi_idx" in plan or "feature_of_interest_id_datastream_id" in plan, plan
