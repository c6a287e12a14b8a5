"""A parcel's legal history: imported from a file of dated versions (legal date, decision number),
read back through the API and the parcel page in legal order with what changed in each version,
owners only for the roles that may read them, and the outline before and after a change.

The test parcel lives in communes 99996 (before the 2025 merger) and 99997 (after it), which
the sample does not use; everything is removed at the end."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import geopandas as gpd
import psycopg
import pytest
import shapely
import shapely.affinity

from gis.io.imports import ImportOptions, import_file
from gis.settings import get_settings
from layers.access import Principal

OFFICER = Principal("history-test", frozenset({"land_officer"}))
OLD, NEW = "99996", "99997"
SHEET, NUMBER = 5, 7
# The parcel's versions, in legal order: a first certificate, a transfer with resurvey and a
# change of use, and the 2025 merger that gave its commune a new code (the parcel keeps its sheet
# and number, its key gains the new code beside the old one).
VERSIONS = [
    {"MAXA": OLD, "MAXACU": None, "LOAIDAT": "LUC", "DIENTICH": 480.0, "CHUSUDUNG": "Nguyễn Văn Sáu",
     "SOCCCD": "125000001", "HIEULUC": "12/03/2008", "SOQD": "215/QĐ-UBND", "scale": 1.1},
    {"MAXA": OLD, "MAXACU": None, "LOAIDAT": "ONT,CLN", "DIENTICH": 402.5, "CHUSUDUNG": "Trần Thị Bảy",
     "SOCCCD": "027301000007", "HIEULUC": "2017-09-20", "SOQD": "1842/QĐ-UBND", "scale": 1.0},
    {"MAXA": NEW, "MAXACU": OLD, "LOAIDAT": "ONT,CLN", "DIENTICH": 402.5, "CHUSUDUNG": "Trần Thị Bảy",
     "SOCCCD": "027301000007", "HIEULUC": "01/07/2025", "SOQD": "1658/NQ-UBTVQH15", "scale": 1.0},
]
OWNERS = ("Nguyễn Văn Sáu", "Trần Thị Bảy", "125000001", "027301000007")
LON, LAT = 106.3051, 21.1101


def _outline(scale: float) -> shapely.Polygon:
    base = shapely.box(LON, LAT, LON + 0.0002, LAT + 0.00018)
    return shapely.affinity.scale(base, scale, scale, origin=(LON, LAT))


def _file(tmp_path: Path, rows: list[dict], name: str) -> Path:
    """A Shapefile zip with the catalogue's short field names, as a land office sends it."""
    rows = [dict(r) for r in rows]
    geoms = [_outline(r.pop("scale")) for r in rows]
    gdf = gpd.GeoDataFrame([{"SOTO": SHEET, "SOTHUA": NUMBER, **r} for r in rows], geometry=geoms, crs=4326)
    d = tmp_path / name
    d.mkdir()
    gdf.to_crs(9209).to_file(d / f"{name}.shp", engine="pyogrio", encoding="UTF-8")
    z = tmp_path / f"{name}.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for p in sorted(d.iterdir()):
            zf.write(p, p.name)
    return z


def _upload(client, path: Path, headers: dict[str, str], **form) -> dict:
    with path.open("rb") as f:
        r = client.post("/api/imports", data={"layer": "parcels", **form},
                        files={"file": (path.name, f)}, headers=headers)
    assert r.status_code in (200, 422), r.text
    return r.json()


def _cleanup(conn) -> None:
    conn.execute("DELETE FROM parcels WHERE commune_code IN (%s, %s)", (OLD, NEW))
    conn.execute("DELETE FROM parcel_history WHERE commune_code IN (%s, %s)", (OLD, NEW))


@pytest.fixture(scope="module")
def imported(client, conn, keys, tmp_path_factory) -> dict:
    """The three versions imported, in shuffled file order, by a land officer: the parcel's id."""
    _cleanup(conn)
    tmp = tmp_path_factory.mktemp("history")
    path = _file(tmp, [VERSIONS[2], VERSIONS[0], VERSIONS[1]], "lich-su")
    rep = _upload(client, path, keys["land_officer"])
    assert rep["ok"] and rep["committed"], rep
    assert (rep["inserted"], rep["updated"], rep["unchanged"]) == (1, 2, 0), rep
    (pid,) = conn.execute("SELECT id FROM parcels WHERE commune_code = %s AND old_commune_code = %s"
                          " AND sheet_no = %s AND parcel_no = %s", (NEW, OLD, SHEET, NUMBER)).fetchone()
    yield {"id": pid, "file": path, "tmp": tmp}
    _cleanup(conn)


def test_versions_are_stored_in_legal_order(conn, imported) -> None:
    rows = conn.execute(
        "SELECT version, commune_code, old_commune_code, legal_valid_from::text, decision_no, land_user"
        " FROM parcel_history WHERE parcel_id = %(id)s UNION ALL SELECT version, commune_code,"
        " old_commune_code, legal_valid_from::text, decision_no, land_user FROM parcels WHERE id = %(id)s"
        " ORDER BY version", {"id": imported["id"]}).fetchall()
    assert rows == [
        (1, OLD, None, "2008-03-12", "215/QĐ-UBND", "Nguyễn Văn Sáu"),
        (2, OLD, None, "2017-09-20", "1842/QĐ-UBND", "Trần Thị Bảy"),
        (3, NEW, OLD, "2025-07-01", "1658/NQ-UBTVQH15", "Trần Thị Bảy"),
    ]


def test_api_history_lists_versions_with_dates_decisions_and_changes(client, conn, keys, role_keys,
                                                                      imported) -> None:
    pid = imported["id"]
    # The old commune code finds the parcel across the merger.
    r = client.get(f"/api/parcels/by-number/{OLD}/{SHEET}/{NUMBER}", headers=keys["land_officer"])
    assert r.status_code == 200 and r.json()["id"] == pid, r.text
    history = r.json()["history"]
    assert [h["version"] for h in history] == [1, 2, 3]
    assert [h["legal_valid_from"] for h in history] == ["2008-03-12", "2017-09-20", "2025-07-01"]
    assert [h["decision_no"] for h in history] == ["215/QĐ-UBND", "1842/QĐ-UBND", "1658/NQ-UBTVQH15"]
    assert history[-1]["current"] and not history[0]["current"]
    second = history[1]["changes"]
    assert second["legal_area"] == {"from": 480.0, "to": 402.5}
    assert second["land_use_codes"] == {"from": ["LUC"], "to": ["ONT", "CLN"]}
    assert second["land_user"] == {"from": "Nguyễn Văn Sáu", "to": "Trần Thị Bảy"}
    assert second["land_user_id"] == {"from": "125000001", "to": "027301000007"}
    # The outline before and after the resurvey, as GeoJSON: the old one is 1.1 times as wide.
    geom = second["geometry"]
    before, after = shapely.geometry.shape(geom["from"]), shapely.geometry.shape(geom["to"])
    assert before.area / after.area == pytest.approx(1.21, rel=1e-3)
    assert geom["from_area_m2"] / geom["to_area_m2"] == pytest.approx(1.21, rel=1e-3)
    assert set(history[2]["changes"]) == {"commune_code", "old_commune_code"}
    assert history[2]["changes"]["commune_code"] == {"from": OLD, "to": NEW}
    # The read of personal data is in the audit log, as every parcel read is.
    target = conn.execute(
        "SELECT target FROM audit_log WHERE action = 'read' AND layer = 'parcels' AND username = %s"
        " ORDER BY id DESC LIMIT 1", (role_keys["land_officer"]["user"],)).fetchone()[0]
    assert target["channel"] == "parcel-api" and target["ids"] == [pid]


@pytest.mark.parametrize("profile", ["anonymous", "citizen", "operator", "security_officer"])
def test_roles_that_may_not_read_owners_get_none_from_the_history(client, keys, imported, profile) -> None:
    pid = imported["id"]
    r = client.get(f"/api/parcels/{pid}", headers=keys[profile])
    assert r.status_code == 200, r.text
    text = r.text
    for owner in OWNERS:
        assert owner not in text, (profile, owner)
    history = r.json()["history"]
    assert [h["decision_no"] for h in history] == ["215/QĐ-UBND", "1842/QĐ-UBND", "1658/NQ-UBTVQH15"]
    assert all("land_user" not in h.get("changes", {}) and "land_user_id" not in h.get("changes", {})
               for h in history)
    assert {"legal_area", "land_use_codes", "geometry"} <= set(history[1]["changes"])
    page = client.get(f"/parcels/{pid}", headers=keys[profile]).text
    for owner in OWNERS:
        assert owner not in page, (profile, owner)


def _versions(page: str) -> list[str]:
    return re.findall(r'<li class="history-version[^"]*" data-version="(\d+)"', page)


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_page_shows_the_history_in_legal_order(client, keys, imported, lang) -> None:
    pid = imported["id"]
    page = client.get(f"/parcels/{pid}", params={"lang": lang}, headers=keys["land_officer"]).text
    assert _versions(page) == ["1", "2", "3"]
    start = page.index('id="history"')
    history = page[start:]
    dates = re.findall(r'class="legal-from">[^<]*<b>([^<]+)</b>', history)
    assert dates == ["12/03/2008", "20/09/2017", "01/07/2025"]
    for decision in ("215/QĐ-UBND", "1842/QĐ-UBND", "1658/NQ-UBTVQH15"):
        assert decision in history
    assert "Nguyễn Văn Sáu" in history and "Trần Thị Bảy" in history
    assert ("Có hiệu lực từ" if lang == "vi" else "Legally valid from") in history
    # One before/after drawing: the resurvey of version 2, two outlines.
    svgs = re.findall(r'<svg class="history-map".*?</svg>', history, re.S)
    assert len(svgs) == 1
    assert svgs[0].count('<path class="outline-before"') == 1
    assert svgs[0].count('<path class="outline-after"') == 1
    # The legal area before and after, with the page's decimal separator.
    before, after = (">480,0<", ">402,5<") if lang == "vi" else (">480.0<", ">402.5<")
    assert before in history and after in history


VIEWPORTS = {"desktop": {"viewport": {"width": 1366, "height": 768}},
             "phone": {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2,
                       "is_mobile": True, "has_touch": True}}



@pytest.mark.slow  # a real Chromium
@pytest.mark.parametrize("lang", ["vi", "en"])
@pytest.mark.parametrize("device", VIEWPORTS)
def test_browser_shows_the_history_on_desktop_and_phone(browser, live_server, role_keys, imported, device,
                                                        lang, tmp_path) -> None:
    """What Chromium draws: the versions in legal order with their dates and decisions, the two
    outlines of the resurvey at a visible size (the old, larger one around the new one), all
    inside the screen's width on a phone too; owners for the land officer only; nothing
    fetched from elsewhere and no error on the page."""
    import os

    shots = Path(os.environ.get("GEOIOC_SCREENSHOTS") or tmp_path)
    url = f"{live_server}/parcels/{imported['id']}?lang={lang}"
    for profile in ("land_officer", "operator"):
        _check_history_page(browser, url, device, lang, profile, role_keys[profile]["key"], shots)


def _check_history_page(browser, url: str, device: str, lang: str, profile: str, key: str,
                        shots: Path) -> None:
    from urllib.parse import urlsplit

    ctx = browser.new_context(**VIEWPORTS[device], locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh",
                              extra_http_headers={"X-API-Key": key})
    page = ctx.new_page()
    problems: list[str] = []
    hosts: set[str] = set()
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.on("request", lambda r: hosts.add(urlsplit(r.url).hostname or ""))
    try:
        page.goto(url)
        versions = page.locator("#history .history-version")
        assert versions.count() >= 3
        assert [versions.nth(i).get_attribute("data-version") for i in range(3)] == ["1", "2", "3"]
        dates = page.locator("#history .legal-from b").all_inner_texts()[:3]
        assert dates == ["12/03/2008", "20/09/2017", "01/07/2025"]
        decisions = page.locator("#history .decision b").all_inner_texts()[:3]
        assert decisions == ["215/QĐ-UBND", "1842/QĐ-UBND", "1658/NQ-UBTVQH15"]
        second = versions.nth(1)
        second.scroll_into_view_if_needed()
        svg = second.locator("svg.history-map")
        assert svg.count() == 1 and svg.is_visible()
        before = svg.locator("path.outline-before").bounding_box()
        after = svg.locator("path.outline-after").bounding_box()
        assert before and after and after["width"] > 40 and after["height"] > 40
        assert before["width"] > 1.05 * after["width"] and before["height"] > 1.05 * after["height"]
        width = page.evaluate("window.innerWidth")
        for i in range(versions.count()):
            box = versions.nth(i).bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5, (i, box, width)
        text = page.locator("#history").inner_text()
        assert ("Có hiệu lực từ" if lang == "vi" else "Legally valid from") in text
        owners_shown = [o for o in OWNERS[:2] if o in text]
        assert owners_shown == (list(OWNERS[:2]) if profile == "land_officer" else []), profile
        if profile == "land_officer":
            second.screenshot(path=str(shots / f"parcel-history-{device}-{lang}.png"))
        assert not problems, problems
        assert hosts == {"127.0.0.1"}, hosts
    finally:
        ctx.close()


def test_reimport_changes_nothing(client, conn, keys, imported) -> None:
    before = conn.execute("SELECT count(*) FROM parcel_history WHERE parcel_id = %s",
                          (imported["id"],)).fetchone()[0]
    rep = _upload(client, imported["file"], keys["land_officer"])
    assert rep["ok"] and (rep["inserted"], rep["updated"], rep["unchanged"]) == (0, 0, 3), rep
    assert conn.execute("SELECT count(*) FROM parcel_history WHERE parcel_id = %s",
                        (imported["id"],)).fetchone()[0] == before


def test_older_versions_not_recorded_are_refused_and_versions_need_distinct_dates(conn, imported) -> None:
    tmp = imported["tmp"]
    count = conn.execute("SELECT count(*) FROM parcel_history WHERE parcel_id = %s", (imported["id"],)
                         ).fetchone()[0]
    # A version dated before the one in force that the history does not hold: the history is not
    # rewritten.
    other = {**VERSIONS[1], "HIEULUC": "2010-01-01", "SOQD": "99/QĐ-UBND"}
    rep = import_file(conn, _file(tmp, [other], "cu"), ImportOptions("parcels"), OFFICER)
    assert not rep.committed and [x.row for x in rep.rejected] == [1], rep.to_json()
    assert "2010-01-01" in rep.rejected[0].reason and "2025-07-01" in rep.rejected[0].reason
    # A partial import writes the later version beside the refused one (dry run: nothing stays).
    later = {**VERSIONS[2], "HIEULUC": "2026-05-04", "SOQD": "5/QĐ-UBND"}
    rep = import_file(conn, _file(tmp, [other, later], "mot-phan"),
                      ImportOptions("parcels", partial=True, dry_run=True), OFFICER)
    assert [x.row for x in rep.rejected] == [1] and (rep.inserted, rep.updated) == (0, 1), rep.to_json()
    # ... but the same version as recorded is simply already there.
    rep = import_file(conn, _file(tmp, [VERSIONS[0]], "da-co"), ImportOptions("parcels"), OFFICER)
    assert rep.ok and (rep.inserted, rep.updated, rep.unchanged) == (0, 0, 1), rep.to_json()
    # Two versions of one parcel on the same date, or one of several without a date.
    same_day = [VERSIONS[2], {**VERSIONS[2], "DIENTICH": 410.0}]
    rep = import_file(conn, _file(tmp, same_day, "trung"), ImportOptions("parcels"), OFFICER)
    assert [x.row for x in rep.rejected] == [2] and "as row 1" in rep.rejected[0].reason
    undated = [{**VERSIONS[2], "HIEULUC": "2026-02-01"}, {**VERSIONS[2], "HIEULUC": None}]
    rep = import_file(conn, _file(tmp, undated, "khong-ngay"), ImportOptions("parcels"), OFFICER)
    assert [x.row for x in rep.rejected] == [2] and "HIEULUC" in rep.rejected[0].reason
    assert conn.execute("SELECT count(*) FROM parcel_history WHERE parcel_id = %s", (imported["id"],)
                        ).fetchone()[0] == count


def test_later_versions_follow_and_the_database_keeps_legal_order(client, conn, keys, imported) -> None:
    pid = imported["id"]
    h = keys["land_officer"]
    current = client.get(f"/api/parcels/{pid}", headers=h).json()
    # An edit may not date a version before the one it replaces (the database says so: 422).
    r = client.patch(f"/api/parcels/{pid}", headers={**h, "If-Match": str(current["version"])},
                     json={"properties": {"legal_valid_from": "2020-01-01", "decision_no": "1/QĐ-UBND"}})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "legal_valid_from", r.text
    assert "không thể thay phiên bản có hiệu lực từ" in r.json()["detail"], r.text
    r = client.patch(f"/api/parcels/{pid}?lang=en", headers={**h, "If-Match": str(current["version"])},
                     json={"properties": {"legal_valid_from": "2020-01-01", "decision_no": "1/QĐ-UBND"}})
    assert r.status_code == 422 and "legal order" in r.json()["detail"], r.text
    r = client.patch(f"/api/parcels/{pid}", headers={**h, "If-Match": str(current["version"])},
                     json={"properties": {"legal_valid_from": "2026-03-02", "decision_no": "77/QĐ-UBND",
                                          "legal_area": 400.0}, "note": "chỉnh lý biến động"})
    assert r.status_code == 200, r.text
    last = r.json()["parcel"]["history"][-1]
    assert last["version"] == 4 and last["legal_valid_from"] == "2026-03-02"
    assert last["decision_no"] == "77/QĐ-UBND" and last["changes"]["legal_area"]["to"] == 400.0
    # Whoever writes: psql too.
    with psycopg.connect(get_settings().database_url) as c, \
            pytest.raises(psycopg.errors.CheckViolation, match="legal order"):
        c.execute("UPDATE parcels SET legal_valid_from = '2024-01-01' WHERE id = %s", (pid,))


def test_an_import_without_legal_dates_works_as_before(conn, tmp_path) -> None:
    rows = [{"MAXA": NEW, "MAXACU": None, "SOTO": 9, "SOTHUA": n, "LOAIDAT": "ONT", "DIENTICH": 100.0 + n}
            for n in (1, 2)]
    gdf = gpd.GeoDataFrame(rows, geometry=[shapely.box(LON + 0.001 * n, LAT, LON + 0.001 * n + 0.0001,
                                                       LAT + 0.0001) for n in (1, 2)], crs=4326)
    path = tmp_path / "thuong.geojson"
    gdf.to_file(path, driver="GeoJSON", engine="pyogrio")
    try:
        rep = import_file(conn, path, ImportOptions("parcels"), OFFICER)
        assert rep.ok and rep.inserted == 2, rep.to_json()
        gdf.loc[0, "DIENTICH"] = 150.0
        gdf.to_file(path, driver="GeoJSON", engine="pyogrio")
        rep = import_file(conn, path, ImportOptions("parcels"), OFFICER)
        assert (rep.inserted, rep.updated, rep.unchanged) == (0, 1, 1), rep.to_json()
        rows = conn.execute("SELECT legal_valid_from, decision_no FROM parcels WHERE commune_code = %s"
                            " AND sheet_no = 9", (NEW,)).fetchall()
        assert rows == [(None, None), (None, None)]
        # Two rows of one parcel without dates are still a repeated key.
        gdf.loc[1, "SOTHUA"] = 1
        gdf.to_file(path, driver="GeoJSON", engine="pyogrio")
        rep = import_file(conn, path, ImportOptions("parcels"), OFFICER)
        assert [x.row for x in rep.rejected] == [2] and "as row 1" in rep.rejected[0].reason
    finally:
        conn.execute("DELETE FROM parcels WHERE commune_code = %s AND sheet_no = 9", (NEW,))
        conn.execute("DELETE FROM parcel_history WHERE commune_code = %s AND sheet_no = 9", (NEW,))


def test_history_json_is_what_the_page_draws(client, keys, imported) -> None:
    """The page's drawing comes from the API's outlines: same version, same shapes."""
    body = client.get(f"/api/parcels/{imported['id']}", headers=keys["operator"]).json()
    geom = body["history"][1]["changes"]["geometry"]
    assert geom["from"]["type"] == "MultiPolygon" and geom["to"]["type"] == "MultiPolygon"
    json.dumps(body)  # plain JSON throughout
