"""A real SensorThings client, frost-sta-client (Fraunhofer IOSB's Python client of FROST-Server),
against `geoioc serve` over HTTP: listing with $filter/$orderby/$top/$expand and following
@iot.nextLink to the end, $count, entities by id and through their navigation, creating
Observations one by one and as a data array (what it reads back: the Location header, the
selfLinks), and what an anonymous client cannot see. Every figure is checked against the
database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import frost_sta_client as frost
import pytest
import requests

pytestmark = pytest.mark.slow
SECRET = "Luồng hạn chế kiểm thử frost"


@pytest.fixture(scope="module")
def sta(live_server: str) -> str:
    return live_server + "/sta/v1.1"


@pytest.fixture(scope="module")
def datastreams(conn) -> Iterator[dict[str, int]]:
    """A public datastream to write to (thing 4) and a restricted one (thing 4, security
    officers) with one observation; removed at the end."""
    def add(prop: str, name: str, access: str, roles: list[str]) -> int:
        return int(conn.execute(
            "INSERT INTO datastreams (thing_id, sensor_model_id, observed_property_id, name,"
            " unit_of_measurement, access, roles) SELECT 4, m.id, p.id, %s, p.default_unit, %s, %s"
            " FROM observed_properties p, sensor_models m WHERE p.code = %s"
            " AND m.code = 'station-air' RETURNING id", (name, access, roles, prop)).fetchone()[0])

    conn.execute("DELETE FROM datastreams WHERE name IN (%s, 'Ghi kiểm thử frost')", (SECRET,))
    out = {"write": add("traffic_speed", "Ghi kiểm thử frost", "public", []),
           "secret": add("rainfall", SECRET, "restricted", ["security_officer"])}
    conn.execute("INSERT INTO observations (datastream_id, phenomenon_time, result,"
                 " feature_of_interest_id) SELECT %s, '2026-11-25T00:00Z', 3.5,"
                 " feature_of_interest_id FROM thing_locations WHERE thing_id = 4 LIMIT 1",
                 (out["secret"],))
    conn.execute("SELECT observation_rollups_rebuild(%s)", (out["secret"],))
    yield out
    conn.execute("DELETE FROM datastreams WHERE id = ANY(%s)", (list(out.values()),))


def test_list_filter_expand_and_page_to_the_end(sta, conn) -> None:
    service = frost.SensorThingsService(sta)
    want = [r[0] for r in conn.execute(
        "SELECT id FROM sensors WHERE kind = 'water' ORDER BY name, id")]
    things = (service.things().query().filter("properties/kind eq 'water'").orderby("name", "ASC")
              .top(4).expand("Datastreams($top=1;$expand=ObservedProperty),Locations").count().list())
    assert things.count == len(want) and things.next_link  # a first page of 4
    got = [t.id for t in things]  # iterating follows @iot.nextLink
    assert got == want
    first = things.get(0)
    location = first.locations.get(0).location
    assert dict(location)["type"] == "Point" and len(dict(location)["coordinates"]) == 2
    ds = first.datastreams.get(0)
    code = conn.execute("SELECT p.code FROM datastreams d JOIN observed_properties p"
                        " ON p.id = d.observed_property_id WHERE d.id = %s", (ds.id,)).fetchone()[0]
    assert ds.observed_property.properties["code"] == code


def test_entities_by_id_and_navigation(sta, conn) -> None:
    service = frost.SensorThingsService(sta)
    ds = service.datastreams().find(1)
    name, unit = conn.execute("SELECT name, unit_of_measurement FROM datastreams WHERE id = 1"
                              ).fetchone()
    assert ds.name == name and ds.unit_of_measurement.symbol == unit["symbol"]
    obs = ds.get_observations().query().orderby("phenomenonTime", "DESC").top(24).list()
    rows = conn.execute("SELECT result FROM observations WHERE datastream_id = 1"
                        " ORDER BY phenomenon_time DESC LIMIT 24").fetchall()
    assert [o.result for o in obs.entities] == [r[0] for r in rows]
    thing = service.things().find(ds.thing.id if ds.thing else 1)
    assert [d.id for d in thing.get_datastreams().query().list()] == [r[0] for r in conn.execute(
        "SELECT id FROM datastreams WHERE thing_id = %s AND access = 'public' ORDER BY id",
        (thing.id,))]
    n = conn.execute("SELECT count(*) FROM features_of_interest").fetchone()[0]
    assert service.features_of_interest().query().count().top(1).list().count == n


def test_create_observations(sta, conn, role_keys, datastreams) -> None:
    op = role_keys["operator"]
    # HTTP Basic with the API key as the password (requests sends Basic credentials in Latin-1;
    # the test users' passwords are Vietnamese).
    service = frost.SensorThingsService(sta, auth_handler=frost.AuthHandler(op["user"], op["key"]))
    ds = service.datastreams().find(datastreams["write"])
    t = dt.datetime(2026, 11, 22, 7, 30, tzinfo=dt.UTC)
    o = frost.Observation(result=42.5, phenomenon_time=t, datastream=ds)
    service.create(o)
    assert isinstance(o.id, int)
    stored = conn.execute("SELECT result, phenomenon_time FROM observations WHERE datastream_id = %s",
                          (datastreams["write"],)).fetchall()
    assert [tuple(r) for r in stored] == [(42.5, t)]
    dav = frost.DataArrayValue()
    dav.datastream = ds
    dav.components = {frost.DataArrayValue.Property.PHENOMENON_TIME,
                      frost.DataArrayValue.Property.RESULT}
    for i in range(1, 6):
        dav.add_observation(frost.Observation(phenomenon_time=t + dt.timedelta(minutes=i),
                                              result=40.0 + i, datastream=ds))
    dad = frost.DataArrayDocument()
    dad.add_data_array_value(dav)
    created = service.observations().create(dad)
    assert len(created) == 5 and all("Observations(" in c.self_link for c in created)
    n, total = conn.execute("SELECT count(*), sum(result) FROM observations WHERE datastream_id = %s",
                            (datastreams["write"],)).fetchone()
    assert (n, total) == (6, 42.5 + sum(40.0 + i for i in range(1, 6)))
    latest = conn.execute("SELECT observations, result FROM datastream_latest WHERE datastream_id = %s",
                          (datastreams["write"],)).fetchone()
    assert tuple(latest) == (6, 45.0)
    # an anonymous client may not create
    anonymous = frost.SensorThingsService(sta)
    with pytest.raises(requests.HTTPError) as e:
        anonymous.create(frost.Observation(result=1, phenomenon_time=t, datastream=ds))
    assert e.value.response.status_code == 401


def test_what_an_anonymous_client_cannot_see(sta, role_keys, datastreams) -> None:
    anonymous = frost.SensorThingsService(sta)
    secret = datastreams["secret"]
    with pytest.raises(requests.HTTPError) as e:
        anonymous.datastreams().find(secret)
    assert e.value.response.status_code == 404
    names = [d.name for d in anonymous.datastreams().query().top(1000).list()]
    assert SECRET not in names
    thing = anonymous.things().query().filter(f"Datastreams/name eq '{SECRET}'").list()
    assert thing.entities == []
    expanded = anonymous.things().query().filter("id eq 4").expand("Datastreams").list()
    assert SECRET not in [d.name for d in expanded.get(0).datastreams]
    so = role_keys["security_officer"]
    officer = frost.SensorThingsService(sta, auth_handler=frost.AuthHandler(so["user"], so["key"]))
    assert officer.datastreams().find(secret).name == SECRET
    obs: Any = officer.datastreams().find(secret).get_observations().query().list()
    assert [o.result for o in obs] == [3.5]
