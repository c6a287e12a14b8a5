"""Harvest: from our own /ogc (the live server) into a second database gives identical data; a
re-run changes nothing; a changed source feature is updated in place, a new one added, a vanished
one counted (not deleted). The second database is GEOIOC_EMPTY_DATABASE_URL, migrated here and
emptied afterwards."""

from __future__ import annotations

import copy

import httpx
import orjson
import psycopg
import pytest

from gis import migrate
from gis.io.harvest import harvest
from layers.access import Principal

ADMIN = Principal("io-harvest", frozenset({"admin"}))
COLUMNS = "code, name, kind, parameter, unit, threshold, status, ST_AsGeoJSON(geom, 8)"


@pytest.fixture(scope="module")
def target(empty_db_url):
    migrate.upgrade("head", url=empty_db_url)
    with psycopg.connect(empty_db_url, autocommit=True) as c:
        yield c
    migrate.downgrade("base", url=empty_db_url)


@pytest.mark.slow  # GDAL-style harvest from the live server
def test_harvest_from_our_ogc_gives_identical_data(live_server, conn, target) -> None:
    report = harvest(target, f"{live_server}/ogc", "sensors", "sensors", ADMIN, page_size=7)
    assert report.ok and report.committed, report.to_json()
    source = conn.execute(f"SELECT {COLUMNS} FROM sensors ORDER BY code").fetchall()  # noqa: S608
    copied = target.execute(f"SELECT {COLUMNS} FROM sensors ORDER BY code").fetchall()  # noqa: S608
    assert copied == source and report.added == len(source) and report.pages == -(-len(source) // 7)
    prov = target.execute("SELECT count(*), count(DISTINCT source_id), min(source_url) FROM "
                          "harvest_provenance WHERE layer = 'sensors'").fetchone()
    assert prov == (len(source), len(source), f"{live_server}/ogc")
    again = harvest(target, f"{live_server}/ogc", "sensors", "sensors", ADMIN, page_size=7)
    assert (again.added, again.updated, again.unchanged) == (0, 0, len(source))
    assert target.execute("SELECT count(*) FROM audit_log WHERE action = 'harvest'").fetchone()[0] == 2


def _fake_server(features: list[dict]) -> httpx.Client:
    """An OGC API - Features server of two-feature pages with relative next links."""

    def handler(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params.get("offset", 0))
        page = features[offset:offset + 2]
        links = [{"rel": "next", "href": f"items?offset={offset + 2}"}] if offset + 2 < len(features) else []
        return httpx.Response(200, content=orjson.dumps(
            {"type": "FeatureCollection", "features": page, "links": links}))

    return httpx.Client(transport=httpx.MockTransport(handler), base_url="http://district.example")


def _place(fid: str, name: str, lon: float) -> dict:
    return {"type": "Feature", "id": fid, "geometry": {"type": "Point", "coordinates": [lon, 21.1]},
            "properties": {"name": name, "category": "pagoda", "rating": 4.5, "unknown_prop": 1}}


def test_rerun_updates_only_what_changed(target) -> None:
    url = "http://district.example/ogc"
    features = [_place("a", "Chùa Dạm", 106.10), _place("b", "Đền Đô", 106.11),
                _place("c", "Chùa Bút Tháp", 106.12)]
    first = harvest(target, url, "places", "tourism_places", ADMIN, client=_fake_server(features))
    assert (first.added, first.pages) == (3, 2) and any("unknown_prop" in w for w in first.warnings)
    changed = copy.deepcopy(features[:2])
    changed[1]["properties"]["name"] = "Đền Đô (Cổ Pháp)"
    changed.append(_place("d", "Làng tranh Đông Hồ", 106.13))
    second = harvest(target, url, "places", "tourism_places", ADMIN, client=_fake_server(changed))
    assert (second.added, second.updated, second.unchanged, second.missing_at_source) == (1, 1, 1, 1)
    names = {r[0] for r in target.execute("SELECT name FROM tourism_places")}
    # Updated in place (no duplicate), the vanished one kept.
    assert names == {"Chùa Dạm", "Đền Đô (Cổ Pháp)", "Chùa Bút Tháp", "Làng tranh Đông Hồ"}


def test_bad_source_is_a_clear_error(target) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"hello": "world"})

    client = httpx.Client(transport=httpx.MockTransport(handler))
    report = harvest(target, "http://x.example/ogc", "sensors", "sensors", ADMIN, client=client)
    assert not report.ok and "FeatureCollection" in report.error
