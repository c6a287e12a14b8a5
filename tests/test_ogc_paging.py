"""GIS clients get counts and pages fast: exact numberMatched, keyset `next` links, cheap offsets.

Every expectation is an independent SQL statement on the test database, never the server's own
query builders.
"""

from __future__ import annotations

import re
import subprocess
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql

from api.ogc.config import DEFAULT_ITEMS, MAX_ITEMS
from layers.catalogue import get_layer
from layers.features_sql import FeatureQuery

ITEMS = "/ogc/collections/{}/items"
Conn = psycopg.Connection[Any]


def _one(conn: Conn, query: str, params: tuple[Any, ...] = ()) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def _get(client: TestClient, url: str | None) -> dict[str, Any]:
    assert url is not None
    r = client.get(re.sub(r"^https?://[^/]+", "", url))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _next(body: dict[str, Any]) -> str | None:
    return next((link["href"] for link in body["links"] if link["rel"] == "next"), None)


def _follow(client: TestClient, url: str | None) -> tuple[list[int], list[dict[str, Any]]]:
    """Every feature id reached by following `next` from URL, and every page's body."""
    ids: list[int] = []
    pages: list[dict[str, Any]] = []
    while url:
        body = _get(client, url)
        pages.append(body)
        ids += [f["id"] for f in body["features"]]
        url = _next(body)
    return ids, pages


def _sql_ids(conn: Conn, where: str = "TRUE") -> list[int]:
    query = sql.SQL("SELECT id FROM parcels WHERE {} ORDER BY id").format(sql.SQL(where))
    return [r[0] for r in conn.execute(query)]


def test_number_matched_equals_sql_count_unfiltered_and_filtered(client: TestClient, conn: Conn) -> None:
    total = _one(conn, "SELECT count(*) FROM parcels")
    assert total > 10_000  # bigger than any page: the count is not the page's length
    for limit in (1, 5000):  # the buffered page and the streamed one
        body = _get(client, ITEMS.format("parcels") + f"?limit={limit}")
        assert body["numberMatched"] == total and body["numberReturned"] == limit
    sheet = _one(conn, "SELECT count(*) FROM parcels WHERE sheet_no = 3")
    body = _get(client, ITEMS.format("parcels") + "?limit=2&sheet_no=3")
    assert body["numberMatched"] == sheet and body["numberReturned"] == min(2, sheet)
    code = _one(conn, "SELECT commune_code FROM parcels ORDER BY id LIMIT 1")
    n = _one(conn, "SELECT count(*) FROM parcels WHERE commune_code = %s AND legal_area > 200", (code,))
    body = _get(client, ITEMS.format("parcels")
                + f"?limit=3&filter=commune_code='{code}' AND legal_area > 200")
    assert body["numberMatched"] == n
    # A keyset page still counts the whole selection, not what is left after the position.
    middle = _sql_ids(conn)[total // 2]
    body = _get(client, ITEMS.format("parcels") + f"?limit=3&after={middle}")
    assert body["numberMatched"] == total


def test_next_links_page_by_key_and_reach_every_feature_once(client: TestClient, conn: Conn) -> None:
    ids, pages = _follow(client, ITEMS.format("parcels") + "?limit=5000&skipGeometry=true")
    assert ids == _sql_ids(conn)
    for page in pages[1:]:
        query = parse_qs(urlsplit(next(x["href"] for x in page["links"] if x["rel"] == "self")).query)
        assert "after" in query and "offset" not in query
    assert all(p["numberMatched"] == len(ids) for p in pages)


def test_next_links_with_a_filter_reach_every_match_once(client: TestClient, conn: Conn) -> None:
    expected = _sql_ids(conn, "sheet_no <= 3")
    assert len(expected) > 300
    ids, pages = _follow(client, ITEMS.format("parcels") + "?limit=100&filter=sheet_no <= 3")
    assert ids == expected
    assert {p["numberMatched"] for p in pages} == {len(expected)}
    # The filter travels in every next link.
    assert all("filter" in parse_qs(urlsplit(_next(p) or "").query) for p in pages[:-1])


def test_sorted_results_page_by_offset_and_reach_every_feature_once(client: TestClient, conn: Conn) -> None:
    expected = [r[0] for r in conn.execute(
        "SELECT id FROM roads WHERE road_class = 'trunk' ORDER BY max_speed DESC NULLS LAST, id")]
    ids, pages = _follow(client, ITEMS.format("roads") + "?limit=7&road_class=trunk&sortby=-max_speed")
    assert ids == expected and len(pages) > 1
    assert "offset" in parse_qs(urlsplit(_next(pages[0]) or "").query)


def test_deep_offset_pages_equal_keyset_pages(client: TestClient, conn: Conn) -> None:
    ordered = _sql_ids(conn)
    for offset in (1, len(ordered) // 2, len(ordered) - 3):
        by_offset = [f["id"] for f in _get(client, ITEMS.format("parcels") + f"?limit=50&offset={offset}")
                     ["features"]]
        by_key = [f["id"] for f in _get(client, ITEMS.format("parcels")
                                      + f"?limit=50&after={ordered[offset - 1]}")["features"]]
        assert by_offset == by_key == ordered[offset:offset + 50]
    # Offset after a keyset position counts from that position; with sortby, offset still sorts.
    both = [f["id"] for f in _get(client, ITEMS.format("parcels") + f"?limit=5&after={ordered[9]}&offset=5")
            ["features"]]
    assert both == ordered[15:20]
    sorted_ids = [r[0] for r in conn.execute(
        "SELECT id FROM parcels ORDER BY legal_area DESC NULLS LAST, id OFFSET 1000 LIMIT 20")]
    page = _get(client, ITEMS.format("parcels") + "?limit=20&offset=1000&sortby=-legal_area")
    assert [f["id"] for f in page["features"]] == sorted_ids


def test_deep_page_features_are_complete(client: TestClient, conn: Conn) -> None:
    """The page built after skipping on ids carries the same GeoJSON as a first page would."""
    last = _sql_ids(conn)[-1]
    deep = _get(client, ITEMS.format("parcels") + f"?limit=1&offset={len(_sql_ids(conn)) - 1}")
    direct = client.get(f"/ogc/collections/parcels/items/{last}").json()
    assert deep["features"][0]["id"] == last
    assert deep["features"][0]["properties"] == direct["properties"]
    assert deep["features"][0]["geometry"] == direct["geometry"]
    assert "next" not in {link["rel"] for link in deep["links"]}


@pytest.mark.parametrize("query,name", [("after=-1", "after"), ("after=x", "after"),
                                        (f"after={2**63}", "after"),
                                        ("after=5&sortby=legal_area", "after")])
def test_bad_keyset_positions_are_400_naming_after(client: TestClient, query: str, name: str) -> None:
    r = client.get(ITEMS.format("parcels") + "?" + query)
    assert r.status_code == 400, r.text
    assert name in r.json()["description"]


def test_after_the_last_feature_is_an_empty_page(client: TestClient, conn: Conn) -> None:
    last = _sql_ids(conn)[-1]
    body = _get(client, ITEMS.format("parcels") + f"?after={last}")
    assert body["features"] == [] and body["numberReturned"] == 0
    assert _next(body) is None


def test_number_matched_is_left_out_when_the_count_is_too_slow(conn: Conn) -> None:
    """Exact or absent: a count that misses its time bound is never replaced by a guess."""
    from gis.db import connection
    from gis.features import number_matched

    q = FeatureQuery(layer=get_layer("parcels"), fields=())
    q.condition = sql.SQL("pg_sleep(0.01) IS NOT NULL")  # a filter no index helps
    with connection() as c:
        assert number_matched(c, q, timeout_ms=50) is None
        # The connection is usable afterwards, with its own timeout back.
        assert _one(c, "SHOW statement_timeout") == "1min"
        q.condition = None
        assert number_matched(c, q) == _one(conn, "SELECT count(*) FROM parcels")


def test_keyset_pages_of_a_large_layer_leave_the_count_to_the_first_page(
        client: TestClient, conn: Conn, monkeypatch: pytest.MonkeyPatch) -> None:
    """Above KEYSET_COUNT_MAX_ROWS a whole-layer read is not counted once per page: numberMatched
    is on the first page (and offset pages), not on the `after=` pages."""
    import gis.features

    monkeypatch.setattr(gis.features, "KEYSET_COUNT_MAX_ROWS", 1_000)
    total = _one(conn, "SELECT count(*) FROM parcels")
    for limit in (10, 2000):  # buffered and streamed pages
        first = _get(client, ITEMS.format("parcels") + f"?limit={limit}")
        assert first["numberMatched"] == total
        second = _get(client, _next(first))
        assert "numberMatched" not in second and second["numberReturned"] == limit
        assert _get(client, ITEMS.format("parcels") + f"?limit={limit}&offset=50")["numberMatched"] == total
    # A small layer keeps the count on every page.
    units = _one(conn, "SELECT count(*) FROM admin_units")
    assert units < 1_000
    first = _get(client, ITEMS.format("admin_units") + "?limit=5")
    assert _get(client, _next(first))["numberMatched"] == units


def test_openapi_advertises_limit_default_and_maximum(client: TestClient) -> None:
    doc = client.get("/ogc/openapi?f=json").json()
    params = doc["paths"]["/collections/parcels/items"]["get"]["parameters"]
    limit = next(p for p in params if p.get("name") == "limit")
    assert limit["schema"]["default"] == DEFAULT_ITEMS
    assert limit["schema"]["maximum"] == MAX_ITEMS


def test_html_pages_carry_counts_and_honour_after(client: TestClient, conn: Conn) -> None:
    """pygeoapi serves HTML through our provider: the same counts, the same keyset position."""
    from api.ogc.providers import PostGISFeatureProvider

    p = PostGISFeatureProvider({"name": "x", "type": "feature", "data": "parcels"})
    total = _one(conn, "SELECT count(*) FROM parcels")
    ordered = _sql_ids(conn)
    out = p.query(offset=0, limit=4, properties=[("after", str(ordered[99]))])
    assert [f["id"] for f in out["features"]] == ordered[100:104]
    assert out["numberMatched"] == total and out["numberReturned"] == 4
    out = p.query(offset=len(ordered) - 2, limit=4)
    assert [f["id"] for f in out["features"]] == ordered[-2:] and out["numberMatched"] == total
    hits = p.query(resulttype="hits", properties=[("sheet_no", "3")])
    assert hits["numberMatched"] == _one(conn, "SELECT count(*) FROM parcels WHERE sheet_no = 3")
    r = client.get(ITEMS.format("parcels") + f"?f=html&limit=3&after={ordered[99]}")
    assert r.status_code == 200
    assert all(f">{fid}<" in r.text or f"/items/{fid}" in r.text for fid in ordered[100:103])


def test_gdal_ogrinfo_summary_reports_the_feature_count(live_server: str, conn: Conn) -> None:
    total = _one(conn, "SELECT count(*) FROM parcels")
    # Without numberMatched GDAL would page through every parcel, ten at a time: the timeout
    # catches that as well as a wrong count.
    out = subprocess.run(["ogrinfo", "-ro", "-so", f"OAPIF:{live_server}/ogc", "parcels"],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    assert re.search(rf"^Feature Count: {total}$", out, re.M), out
