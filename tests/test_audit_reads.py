"""Every read of personal data is audited, whatever the way out: OGC items and single items (JSON
and HTML), tiles, identify, search, the parcel page and API, the extracts, exports (a request, a
job, the command line). For each, a land officer's read writes one row naming the way out
(`target.channel`), the layer and the feature ids or the filter, read back from audit_log; the
same request by an operator or an anonymous caller carries no personal field and writes no
personal-read row. Then the admin API over the log: paging, filters, and 401/403 for others."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from _io_util import wait_for_job

from gis import audit
from layers.access import Principal, is_sensitive_read
from layers.catalogue import get_layer

PARCELS = get_layer("parcels")
PERSONAL = [f.name for f in PARCELS.fields if f.personal]
LAND_OFFICER = Principal("lo", frozenset({"land_officer"}))


@pytest.fixture(scope="module")
def keys(role_keys):
    """The session's users per role: headers by role, and `user:<role>` -> {"name"}."""
    out: dict[str, Any] = {p: v["headers"] for p, v in role_keys.items()}
    out.update({f"user:{p}": {"name": v["user"]} for p, v in role_keys.items() if v["user"]})
    return out


@pytest.fixture(scope="module")
def parcel(conn) -> dict[str, Any]:
    """A parcel with a land user: its id, the name, a point inside and a small bbox around it."""
    row = conn.execute(
        "SELECT id, land_user, land_user_id, ST_X(p), ST_Y(p), ST_XMin(geom), ST_YMin(geom),"
        " ST_XMax(geom), ST_YMax(geom), commune_code, old_commune_code, sheet_no, parcel_no"
        " FROM (SELECT *, ST_PointOnSurface(geom) AS p FROM parcels"
        " WHERE land_user IS NOT NULL AND land_user_id IS NOT NULL ORDER BY id LIMIT 1) q").fetchone()
    pid, name, cccd, x, y, x1, y1, x2, y2, commune, old, sheet, number = row
    return {"id": pid, "name": name, "cccd": cccd, "lon": x, "lat": y,
            "bbox": f"{x1:.7f},{y1:.7f},{x2:.7f},{y2:.7f}", "commune": commune,
            "old_commune": old, "sheet": sheet, "number": number}


def _mark(conn) -> int:
    return conn.execute("SELECT coalesce(max(id), 0) FROM audit_log").fetchone()[0]


def _reads(conn, since: int, username: str | None) -> list[tuple[str, str, dict[str, Any]]]:
    """(action, layer, target) of the read and export rows of USERNAME (None: anonymous) after SINCE."""
    return conn.execute(
        "SELECT action, layer, target FROM audit_log WHERE id > %s AND username IS NOT DISTINCT FROM %s"
        " AND action IN ('read', 'export') ORDER BY id", (since, username)).fetchall()


def _user(keys, role: str) -> str:
    return keys["user:" + role]["name"]


def _no_personal(text: str, parcel: dict[str, Any]) -> None:
    """The parcel's land user and ID number are nowhere in TEXT (a body, a page, a file)."""
    assert parcel["name"] not in text and parcel["cccd"] not in text


def _check_way_out(conn, keys, parcel, channel: str, call: Callable[[dict[str, str]], str],
                   *, layer: str = "parcels", action: str = "read",
                   others: tuple[str, ...] = ("operator", "anonymous")) -> dict[str, Any]:
    """CALL(headers) makes the request and returns the body as text. The land officer's read
    leaves exactly one row of CHANNEL for the parcels layer (returned); the operator's and the
    anonymous caller's bodies carry no personal field, and they leave no such row."""
    start = _mark(conn)
    body = call(keys["land_officer"])
    rows = [r for r in _reads(conn, start, _user(keys, "land_officer")) if r[2].get("channel") == channel]
    assert len(rows) == 1, (channel, _reads(conn, start, _user(keys, "land_officer")))
    assert rows[0][0] == action and rows[0][1] == layer
    for role in others:
        start = _mark(conn)
        _no_personal(call(keys[role]), parcel)
        who = None if role == "anonymous" else _user(keys, role)
        assert [r for r in _reads(conn, start, who) if r[1] == "parcels"] == [], (channel, role)
    assert body  # the land officer got an answer
    return rows[0][2]


# --- OGC API -------------------------------------------------------------------------------------


def test_ogc_items(client, conn, keys, parcel) -> None:
    def call(h: dict[str, str]) -> str:
        r = client.get(f"/ogc/collections/parcels/items?bbox={parcel['bbox']}&limit=5", headers=h)
        assert r.status_code == 200, r.text
        return r.text

    assert parcel["name"] in call(keys["land_officer"])
    target = _check_way_out(conn, keys, parcel, "ogc-items", call)
    assert target["filter"] == {"bbox": parcel["bbox"], "limit": "5"}


def test_ogc_items_with_a_cql2_filter_and_paging(client, conn, keys, parcel) -> None:
    cql = f"sheet_no = {parcel['sheet']} AND parcel_no = {parcel['number']}"
    start = _mark(conn)
    r = client.get("/ogc/collections/parcels/items", params={"filter": cql, "limit": 1, "offset": 0},
                   headers=keys["land_officer"])
    assert r.status_code == 200, r.text
    (target,) = [t for _, _, t in _reads(conn, start, _user(keys, "land_officer"))]
    assert target == {"channel": "ogc-items", "filter": {"filter": cql, "limit": "1", "offset": "0"}}


def test_ogc_item(client, conn, keys, parcel) -> None:
    def call(h: dict[str, str]) -> str:
        r = client.get(f"/ogc/collections/parcels/items/{parcel['id']}", headers=h)
        assert r.status_code == 200, r.text
        return r.text

    assert orjson.loads(call(keys["land_officer"]))["properties"]["land_user"] == parcel["name"]
    assert _check_way_out(conn, keys, parcel, "ogc-item", call)["ids"] == [parcel["id"]]


def test_ogc_html_items_and_item(client, conn, keys, parcel) -> None:
    def items(h: dict[str, str]) -> str:
        r = client.get(f"/ogc/collections/parcels/items?f=html&bbox={parcel['bbox']}&limit=5", headers=h)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), r.text
        return r.text

    def item(h: dict[str, str]) -> str:
        r = client.get(f"/ogc/collections/parcels/items/{parcel['id']}?f=html", headers=h)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), r.text
        return r.text

    assert parcel["name"] in items(keys["land_officer"]) and parcel["name"] in item(keys["land_officer"])
    assert _check_way_out(conn, keys, parcel, "ogc-items-html", items)["filter"]["f"] == "html"
    assert _check_way_out(conn, keys, parcel, "ogc-item-html", item)["ids"] == [parcel["id"]]


def _tile_xyz(lon: float, lat: float, z: int) -> tuple[int, int]:
    import math

    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def test_tiles(client, conn, keys, parcel) -> None:
    """No personal field is in_tiles today: a parcels tile holds none, for anyone, and a land
    officer's tile read is not logged (tiles are the hottest path). Were a personal field put in
    tiles, the same helper would log tile reads."""
    assert not any(f.in_tiles for f in PARCELS.fields if f.personal)
    z = 16
    x, y = _tile_xyz(parcel["lon"], parcel["lat"], z)
    start = _mark(conn)
    for role in ("land_officer", "operator", "anonymous"):
        r = client.get(f"/ogc/collections/parcels/tiles/WebMercatorQuad/{z}/{y}/{x}?f=mvt",
                       headers=keys[role])
        assert r.status_code == 200 and r.content, (role, r.status_code)
        assert parcel["name"].encode() not in r.content and parcel["cccd"].encode() not in r.content
        assert all(name.encode() not in r.content for name in PERSONAL)
    for who in (_user(keys, "land_officer"), _user(keys, "operator"), None):
        assert [t for _, layer, t in _reads(conn, start, who) if layer == "parcels"] == []
    # The rule behind it: what a tile carries decides, through the one helper.
    tile_fields = [f for f in PARCELS.fields if f.in_tiles]
    assert not is_sensitive_read(PARCELS, LAND_OFFICER, tile_fields)
    with_names = dataclasses.replace(PARCELS, fields=tuple(
        dataclasses.replace(f, in_tiles=True) if f.personal else f for f in PARCELS.fields))
    assert is_sensitive_read(with_names, LAND_OFFICER, [f for f in with_names.fields if f.in_tiles])
    assert not is_sensitive_read(with_names, Principal("op", frozenset({"operator"})),
                                 [f for f in with_names.fields if f.in_tiles])


def test_tiles_of_restricted_rows_are_audited(client, conn, keys) -> None:
    """Tiles do go through the helper: a security officer's incidents tile (restricted rows) is
    logged with channel `tile` and the tile as its filter."""
    start = _mark(conn)
    r = client.get("/ogc/collections/incidents/tiles/WebMercatorQuad/3/3/6?f=mvt",
                   headers=keys["security_officer"])
    assert r.status_code in (200, 204)
    rows = _reads(conn, start, keys["user:security_officer"]["name"])
    assert [(a, layer, t["channel"], t["filter"]) for a, layer, t in rows] == [
        ("read", "incidents", "tile", {"tile": ["WebMercatorQuad", "3", "3", "6"]})]


# --- the map -------------------------------------------------------------------------------------


def test_identify(client, conn, keys, parcel) -> None:
    def call(h: dict[str, str]) -> str:
        r = client.get("/api/map/identify", params={"lon": parcel["lon"], "lat": parcel["lat"], "z": 18,
                                                    "layers": "parcels"}, headers=h)
        assert r.status_code == 200, r.text
        assert [f["id"] for f in r.json()["features"]] == [parcel["id"]]
        return r.text

    assert parcel["name"] in call(keys["land_officer"])
    target = _check_way_out(conn, keys, parcel, "identify", call)
    assert target["ids"] == [parcel["id"]]
    assert target["filter"]["point"] == pytest.approx([parcel["lon"], parcel["lat"]])


def test_map_search_carries_no_personal_data(client, conn, keys, parcel) -> None:
    """/api/search looks in Layer.search_fields, none of them personal, and shows parcels by
    number only: searching a land user's name finds nothing personal and logs nothing."""
    assert not any(PARCELS.field(n).personal for n in PARCELS.search_fields)
    for role in ("land_officer", "operator", "anonymous"):
        start = _mark(conn)
        r = client.get("/api/search", params={"q": parcel["name"]}, headers=keys[role])
        assert r.status_code == 200
        _no_personal(json.dumps([r.json()["results"], r.json()["groups"]], ensure_ascii=False), parcel)
        who = None if role == "anonymous" else _user(keys, role)
        assert [t for _, layer, t in _reads(conn, start, who) if layer == "parcels"] == []


# --- parcels -------------------------------------------------------------------------------------


def test_parcel_search_api(client, conn, keys, parcel) -> None:
    commune, sheet, number = parcel["commune"], parcel["sheet"], parcel["number"]

    def call(h: dict[str, str]) -> str:
        r = client.get(f"/api/parcels/search?commune={commune}&sheet={sheet}&parcel={number}&limit=50",
                       headers=h)
        assert r.status_code == 200, r.text
        return r.text

    body = orjson.loads(call(keys["land_officer"]))
    assert any(r.get("land_user") == parcel["name"] for r in body["results"])
    target = _check_way_out(conn, keys, parcel, "parcel-search", call)
    assert target["ids"] == [r["id"] for r in body["results"]] and parcel["id"] in target["ids"]
    assert target["filter"] == {"communes": [commune], "sheet": sheet, "parcel": number, "limit": 50,
                                "offset": 0}


def test_owner_search_logs_the_search_but_not_the_name(client, conn, keys, parcel) -> None:
    start = _mark(conn)
    r = client.get("/api/parcels/search", params={"owner": parcel["name"], "limit": 500},
                   headers=keys["land_officer"])
    assert r.status_code == 200
    found = [x["id"] for x in r.json()["results"]]
    assert parcel["id"] in found
    (row,) = _reads(conn, start, _user(keys, "land_officer"))
    assert row[2]["channel"] == "parcel-search" and row[2]["filter"]["owner"] is True
    assert row[2]["ids"] == found and parcel["name"] not in json.dumps(row[2], ensure_ascii=False)
    # Others may not search by name at all.
    r = client.get("/api/parcels/search", params={"owner": "x"}, headers=keys["operator"])
    assert r.status_code == 403


def test_parcel_api_and_by_number(client, conn, keys, parcel) -> None:
    def call(h: dict[str, str]) -> str:
        r = client.get(f"/api/parcels/{parcel['id']}", headers=h)
        assert r.status_code == 200, r.text
        return r.text

    assert orjson.loads(call(keys["land_officer"]))["properties"]["land_user"] == parcel["name"]
    target = _check_way_out(conn, keys, parcel, "parcel-api", call)
    assert target["ids"] == [parcel["id"]]
    # The pre-2025 code when there is one: a merged commune's code may match several parcels (300).
    commune, sheet, number = parcel["old_commune"] or parcel["commune"], parcel["sheet"], parcel["number"]

    def by_number(h: dict[str, str]) -> str:
        r = client.get(f"/api/parcels/by-number/{commune}/{sheet}/{number}", headers=h)
        assert r.status_code == 200, r.text
        return r.text

    assert _check_way_out(conn, keys, parcel, "parcel-api", by_number)["ids"] == [parcel["id"]]


def test_parcel_page(client, conn, keys, parcel) -> None:
    def call(h: dict[str, str]) -> str:
        r = client.get(f"/parcels/{parcel['id']}", headers=h)
        assert r.status_code == 200, r.text
        return r.text

    assert parcel["name"] in call(keys["land_officer"])
    assert _check_way_out(conn, keys, parcel, "parcel-page", call)["ids"] == [parcel["id"]]


def test_parcel_search_page(client, conn, keys, parcel) -> None:
    commune, sheet, number = parcel["commune"], parcel["sheet"], parcel["number"]

    def call(h: dict[str, str]) -> str:
        r = client.get(f"/parcels?commune={commune}&sheet={sheet}&parcel={number}", headers=h)
        assert r.status_code == 200, r.text
        return r.text

    assert parcel["name"] in call(keys["land_officer"])
    assert parcel["id"] in _check_way_out(conn, keys, parcel, "parcel-search-page", call)["ids"]


def test_extract_html(client, conn, keys, parcel) -> None:
    def call(h: dict[str, str]) -> str:
        r = client.get(f"/parcels/{parcel['id']}/extract.html", headers=h)
        assert r.status_code == 200, r.text
        return r.text

    assert parcel["name"] in call(keys["land_officer"])
    assert _check_way_out(conn, keys, parcel, "extract-html", call)["ids"] == [parcel["id"]]


def test_extract_pdf(client, conn, keys, parcel, monkeypatch) -> None:
    """The PDF's text is drawn with subset fonts (not searchable as bytes): what the renderer is
    given is checked instead, and it is all the PDF can show."""
    from api.routes import parcels as routes

    given: list[dict[str, Any]] = []
    render = routes.pdf.render

    def spy(ex, lang="vi"):
        given.append(dict(ex.properties))
        return render(ex, lang)

    monkeypatch.setattr(routes.pdf, "render", spy)

    def call(h: dict[str, str]) -> str:
        r = client.get(f"/parcels/{parcel['id']}/extract.pdf", headers=h)
        assert r.status_code == 200 and r.content.startswith(b"%PDF"), r.text
        return json.dumps(given[-1], ensure_ascii=False, default=str)

    assert parcel["name"] in call(keys["land_officer"])
    assert _check_way_out(conn, keys, parcel, "extract-pdf", call)["ids"] == [parcel["id"]]


# --- exports -------------------------------------------------------------------------------------


def test_export_sync(client, conn, keys, parcel) -> None:
    def call(h: dict[str, str]) -> str:
        r = client.post("/api/exports", json={"layer": "parcels", "format": "geojson",
                                              "bbox": parcel["bbox"]}, headers=h)
        assert r.status_code == 200, r.text
        return r.content.decode()

    assert parcel["name"] in call(keys["land_officer"])
    target = _check_way_out(conn, keys, parcel, "export", call, action="export")
    assert target["filter"]["bbox"] == parcel["bbox"] and target["rows"] >= 1
    assert "land_user" in target["fields"]


def test_export_job(client, conn, keys, parcel) -> None:
    def call(h: dict[str, str]) -> str:
        r = client.post("/api/exports", json={"layer": "parcels", "format": "geojson", "mode": "async",
                                              "bbox": parcel["bbox"]}, headers=h)
        assert r.status_code == 202, r.text
        url = r.headers["location"]
        path = url[url.index("/api/"):]
        status = wait_for_job(client.get, path, h)
        assert status["status"] == "successful", status
        dl = client.get(path + "/download", headers=h)
        assert dl.status_code == 200
        return dl.content.decode()

    assert parcel["name"] in call(keys["land_officer"])
    # Jobs need a signed-in caller (anonymous: 401).
    target = _check_way_out(conn, keys, parcel, "export-job", call, action="export", others=("operator",))
    assert target["filter"]["bbox"] == parcel["bbox"] and target["rows"] >= 1


def test_export_cli(conn, parcel, tmp_path) -> None:
    from typer.testing import CliRunner

    from gis.cli import app

    start = _mark(conn)
    out = tmp_path / "thua.geojson"
    r = CliRunner().invoke(app, ["export", "parcels", "-o", str(out), "--bbox", parcel["bbox"]])
    assert r.exit_code == 0, r.output
    assert parcel["name"] in out.read_text(encoding="utf-8")
    rows = conn.execute("SELECT action, layer, credential, target FROM audit_log WHERE id > %s"
                        " AND target->>'channel' = 'export-cli'", (start,)).fetchall()
    assert len(rows) == 1
    action, layer, credential, target = rows[0]
    assert (action, layer, credential) == ("export", "parcels", "cli")
    assert target["filter"]["bbox"] == parcel["bbox"] and target["output"] == str(out)


def test_public_layer_reads_write_nothing(client, conn, keys) -> None:
    """Reads that carry no personal or restricted data do not flood the log."""
    start = _mark(conn)
    for role in ("land_officer", "operator", "anonymous"):
        assert client.get("/ogc/collections/tourism_places/items?limit=5",
                          headers=keys[role]).status_code == 200
        assert client.get("/ogc/collections/admin_units/items?limit=1", headers=keys[role]).status_code == 200
    for who in (_user(keys, "land_officer"), _user(keys, "operator"), None):
        assert _reads(conn, start, who) == []


# --- the helper and the admin API ----------------------------------------------------------------


def test_record_read_helper(conn) -> None:
    name = f"helper-{time.time_ns()}"
    who = Principal(name, frozenset({"land_officer"}))
    assert audit.record_read(conn, who, PARCELS, "parcel-api", ids=["12", 13], filter={"q": "x" * 5000})
    assert not audit.record_read(conn, Principal(name, frozenset({"operator"})), PARCELS, "parcel-api",
                                 ids=[1])
    (target,) = conn.execute("SELECT target FROM audit_log WHERE username = %s", (name,)).fetchone()
    assert target["ids"] == [12, 13] and len(target["filter"]["q"]) == audit.MAX_TEXT
    with pytest.raises(ValueError, match="channel"):
        audit.record_read(conn, who, PARCELS, "no-such-way-out", ids=[1])


def test_admin_api_pages_and_filters(client, conn, keys, parcel) -> None:
    lo = _user(keys, "land_officer")
    for _ in range(3):
        assert client.get(f"/api/parcels/{parcel['id']}", headers=keys["land_officer"]).status_code == 200
    admin = keys["admin"]
    r = client.get("/api/audit", params={"user": lo, "channel": "parcel-api", "limit": 2}, headers=admin)
    assert r.status_code == 200, r.text
    page = r.json()
    assert page["numberReturned"] == 2 and page["next"]
    first = page["entries"]
    assert all(e["username"] == lo and e["target"]["channel"] == "parcel-api" and e["layer"] == "parcels"
               and e["target"]["ids"] == [parcel["id"]] and e["action"] == "read" for e in first)
    assert first[0]["id"] > first[1]["id"]
    nxt = page["next"][page["next"].index("/api/"):]
    second = client.get(nxt, headers=admin).json()["entries"]
    assert second and second[0]["id"] < first[1]["id"]
    by_offset = client.get("/api/audit", params={"user": lo, "channel": "parcel-api", "limit": 1,
                                                 "offset": 2}, headers=admin).json()["entries"]
    assert by_offset[0]["id"] == second[0]["id"]
    r = client.get("/api/audit", params={"user": lo, "layer": "parcels", "action": "read",
                                         "since": "1h", "until": "2999-01-01"}, headers=admin)
    assert r.status_code == 200 and r.json()["numberReturned"] >= 3
    assert client.get("/api/audit", params={"user": lo, "since": "2999-01-01"},
                      headers=admin).json()["entries"] == []
    # Typed, bounded parameters: 400 naming the parameter.
    for params, name in (({"limit": 0}, "limit"), ({"limit": 100_000}, "limit"),
                         ({"channel": "x"}, "channel"),
                         ({"since": "last tuesday"}, "since"), ({"before": -1}, "before"),
                         ({"layer": "Robert'); DROP"}, "layer")):
        r = client.get("/api/audit", params=params, headers=admin)
        assert r.status_code == 400 and r.json().get("parameter") == name, (params, r.text)


def test_admin_api_is_for_admins_only(client, keys) -> None:
    assert client.get("/api/audit").status_code == 401
    for role in ("operator", "land_officer"):
        assert client.get("/api/audit", headers=keys[role]).status_code == 403


def test_admin_api_is_documented(client) -> None:
    op = client.get("/openapi.json").json()["paths"]["/api/audit"]["get"]
    params = {p["name"]: p for p in op["parameters"]}
    expected = {"user", "layer", "action", "channel", "since", "until", "before", "limit", "offset"}
    assert expected <= set(params)
    assert params["limit"]["schema"]["maximum"] == audit.MAX_PAGE
    assert {"200", "400", "401", "403"} <= set(op["responses"])


def test_cli_audit_pages_by_channel(conn, keys, parcel, client) -> None:
    from typer.testing import CliRunner

    from gis.cli import app

    lo = _user(keys, "land_officer")
    for _ in range(2):
        client.get(f"/parcels/{parcel['id']}", headers=keys["land_officer"])
    runner = CliRunner()
    r = runner.invoke(app, ["audit", "--user", lo, "--channel", "parcel-page", "--limit", "1", "--json"])
    assert r.exit_code == 0, r.output
    (first,) = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert first["target"]["channel"] == "parcel-page" and first["target"]["ids"] == [parcel["id"]]
    r = runner.invoke(app, ["audit", "--user", lo, "--channel", "parcel-page", "--limit", "1",
                            "--before", str(first["id"]), "--json"])
    (second,) = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert second["id"] < first["id"]
    r = runner.invoke(app, ["audit", "--channel", "nowhere"])
    assert r.exit_code != 0


def test_nul_and_long_filters_are_logged_safely(client, conn, keys) -> None:
    """What a client sends goes into the row bounded and without NUL characters (which PostgreSQL
    text cannot hold). Over HTTP a NUL is refused before any route runs (400 naming the
    parameter, nothing read); the helper itself still strips it for other callers."""
    r = client.get("/ogc/collections/parcels/items", params={"filter": "land_user = 'a\x00b'"},
                   headers=keys["land_officer"])
    assert r.status_code == 400 and "filter" in r.json()["description"], r.text
    start = _mark(conn)
    who = Principal(_user(keys, "land_officer"), frozenset({"land_officer"}))
    audit.record_read(conn, who, PARCELS, "ogc-items",
                      filter={"filter": "land_user = 'a\x00b'" + " " * 5000})
    (row,) = _reads(conn, start, _user(keys, "land_officer"))
    cql = row[2]["filter"]["filter"]
    assert cql.startswith("land_user = 'ab'") and len(cql) <= audit.MAX_TEXT
