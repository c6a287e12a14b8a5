"""Socio-economic indicators by administrative unit: the sample's coverage and consistency, the
import (long and yearbook-wide layouts, CSV and XLSX, refused rows, replacement, audit), the
OGC collection through the real server, /api, and an internal indicator's access.

Imports write into indicators of the test's own (TST_*), created and removed here, so the
sample's values stay as loaded for every other test."""

from __future__ import annotations

import datetime as dt
import uuid
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

import httpx
import pytest

from gis.indicators.imports import IndicatorImportOptions, import_indicators, parse_number
from layers.access import Principal

OPERATOR = Principal("test-indicators", frozenset({"operator"}))
PRE = dt.date(2024, 12, 31)  # a day of the units before the reform


@pytest.fixture(scope="module")
def tst(conn):
    """Three indicators of the test's own: a count, a percentage, an internal one."""
    run = uuid.uuid4().hex[:6].upper()
    codes = {"count": f"TST_C{run}", "pct": f"TST_P{run}", "internal": f"TST_I{run}"}
    conn.execute(
        "INSERT INTO indicators (code, name_vi, name_en, unit_vi, unit_en, domain, periodicity,"
        " source, min_value, max_value, decimals, aggregation, access) VALUES"
        " (%s, %s, 'Test count', 'cái', 'items', 'economy', 'annual', 'test', 0, NULL, 0, 'sum',"
        "  'public'),"
        " (%s, 'Tỷ lệ thử nghiệm', 'Test share', '%%', '%%', 'social', 'annual', 'test', 0, 100, 1,"
        "  'mean', 'public'),"
        " (%s, 'Chỉ tiêu nội bộ thử', 'Internal test', 'vụ', 'cases', 'safety', 'annual', 'test',"
        "  0, NULL, 0, 'sum', 'internal')",
        (codes["count"], f"Số lượng thử nghiệm {run}", codes["pct"], codes["internal"]))
    yield codes
    conn.execute("DELETE FROM indicator_values WHERE indicator_code = ANY(%s)", (list(codes.values()),))
    conn.execute("DELETE FROM indicators WHERE code = ANY(%s)", (list(codes.values()),))


@pytest.fixture(scope="module")
def communes(conn):
    """Three pre-2025 communes: (id, code, name)."""
    return conn.execute(
        "SELECT id, code, name FROM admin_units WHERE level = 'commune' AND valid_to = '2025-07-01'"
        " ORDER BY code LIMIT 3").fetchall()


def _stored(conn, code: str) -> dict[tuple[str, str], float]:
    return {(u, p): v for u, p, v in conn.execute(
        "SELECT u.code, v.period, v.value FROM indicator_values v JOIN admin_units u"
        " ON u.id = v.unit_id WHERE v.indicator_code = %s", (code,))}


def _import(conn, path: Path, **opts) -> object:
    return import_indicators(conn, path, IndicatorImportOptions(**opts), OPERATOR)


def _xlsx(path: Path, rows: list[list[object]]) -> Path:
    """A minimal workbook (one sheet, inline strings and numbers), as Excel would read it."""
    def cell(r: int, c: int, v: object) -> str:
        ref = f"{chr(65 + c)}{r}"
        if isinstance(v, int | float):
            return f'<c r="{ref}"><v>{v}</v></c>'
        return f'<c r="{ref}" t="inlineStr"><is><t>{escape(str(v))}</t></is></c>'
    body = "".join(f'<row r="{r}">' + "".join(cell(r, c, v) for c, v in enumerate(row) if v != "")
                   + "</row>" for r, row in enumerate(rows, start=1))
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types xmlns="http://schemas.'
                   'openxmlformats.org/package/2006/content-types"/>')
        z.writestr("xl/workbook.xml", f'<workbook xmlns="{main}" xmlns:r="{rel}"><sheets>'
                   '<sheet name="Bieu 1" sheetId="1" r:id="rId1"/></sheets></workbook>')
        z.writestr("xl/_rels/workbook.xml.rels", '<Relationships xmlns="http://schemas.'
                   'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" '
                   'Type="x" Target="worksheets/sheet1.xml"/></Relationships>')
        z.writestr("xl/worksheets/sheet1.xml",
                   f'<worksheet xmlns="{main}"><sheetData>{body}</sheetData></worksheet>')
    return path


# --- the sample ---------------------------------------------------------------------------------


def test_sample_has_31_indicators_for_every_commune_and_the_province_over_5_years(conn) -> None:
    n_indicators = conn.execute("SELECT count(DISTINCT indicator_code) FROM indicator_values"
                                " WHERE source_file = 'sample'").fetchone()[0]
    assert n_indicators >= 31
    # Every commune and province of both eras: each sampled indicator over >= 5 years.
    rows = conn.execute(
        "SELECT u.code, u.level, u.valid_from, count(DISTINCT v.indicator_code),"
        " min(n) FROM admin_units u"
        " LEFT JOIN LATERAL (SELECT indicator_code, count(*) OVER (PARTITION BY indicator_code) AS n"
        "   FROM indicator_values WHERE unit_id = u.id AND source_file = 'sample') v ON TRUE"
        " WHERE u.level IN ('commune', 'province') GROUP BY u.id").fetchall()
    assert len(rows) > 100
    short = [r for r in rows if r[3] < n_indicators or (r[4] or 0) < 5]
    assert not short, short[:5]


def test_sample_values_agree_with_the_gazetteer_and_add_up(conn) -> None:
    # Population of 2024 is the admin_units population of the units before the reform.
    off = conn.execute(
        "SELECT count(*) FROM indicator_values v JOIN admin_units u ON u.id = v.unit_id"
        " WHERE v.indicator_code = 'POP' AND v.period = '2024' AND u.valid_to = '2025-07-01'"
        " AND v.value <> u.population").fetchone()[0]
    assert off == 0
    # Area is the boundary's area in VN-2000 / TM-3 (within 0.5 %).
    worst = conn.execute(
        "SELECT max(abs(v.value - ST_Area(ST_Transform(u.geom, 9209)) / 1e6) / v.value)"
        " FROM indicator_values v JOIN admin_units u ON u.id = v.unit_id"
        " WHERE v.indicator_code = 'AREA' AND v.period = '2022'").fetchone()[0]
    assert worst < 0.005
    # Each province's count equals the sum over its communes, in every year and era.
    bad = conn.execute(
        "SELECT p.code, v.period, v.value, sum(cv.value) FROM admin_units p"
        " JOIN indicator_values v ON v.unit_id = p.id AND v.indicator_code = 'ENTERPRISES'"
        " JOIN admin_units c ON c.level = 'commune' AND c.valid_from = p.valid_from"
        " JOIN indicator_values cv ON cv.unit_id = c.id AND cv.indicator_code = 'ENTERPRISES'"
        "  AND cv.period = v.period WHERE p.level = 'province'"
        " GROUP BY p.code, v.period, v.value HAVING v.value <> sum(cv.value)").fetchall()
    assert not bad
    # Values stay within their indicator's range (shares within 0..100); a delta province has
    # little forest.
    assert conn.execute("SELECT count(*) FROM indicator_values v JOIN indicators i ON"
                        " i.code = v.indicator_code WHERE v.value < i.min_value"
                        " OR v.value > i.max_value").fetchone()[0] == 0
    forest = conn.execute("SELECT v.value FROM indicator_values v JOIN admin_units u ON"
                          " u.id = v.unit_id WHERE v.indicator_code = 'FOREST_COVER' AND"
                          " u.level = 'province' AND v.period = '2024'").fetchone()[0]
    assert 0 < forest < 5


# --- imports ------------------------------------------------------------------------------------


def test_numbers_as_vietnamese_tables_write_them() -> None:
    assert parse_number("12,5") == 12.5
    assert parse_number("1.234.567") == 1234567
    assert parse_number("1.234,5") == 1234.5
    assert parse_number("1,234.5") == 1234.5
    assert parse_number("98,2%") == 98.2
    assert parse_number("abc") is None


def test_long_csv_with_bom_semicolons_and_decimal_comma_round_trips(conn, tst, communes,
                                                                    tmp_path) -> None:
    lines = ["Mã ĐVHC;Chỉ tiêu;Kỳ;Giá trị"]
    expected = {}
    for k, (_, code, _name) in enumerate(communes):
        for year in (2021, 2022):
            value = 40.5 + k + (year - 2021) / 10
            lines.append(f"{code};{tst['pct']};{year};{str(value).replace('.', ',')}")
            expected[(code, str(year))] = round(value, 6)
    path = tmp_path / "long.csv"
    path.write_bytes("\r\n".join(lines).encode("utf-8-sig"))
    report = _import(conn, path)
    assert report.ok and report.committed, report
    assert report.inserted == len(expected)
    assert {k: round(v, 6) for k, v in _stored(conn, tst["pct"]).items()} == expected
    # The same file again changes nothing.
    again = _import(conn, path)
    assert again.committed and again.inserted == again.updated == 0
    assert again.unchanged == len(expected)


def test_wide_yearbook_csv_with_title_row_names_and_total(conn, tst, communes, tmp_path) -> None:
    name = conn.execute("SELECT name_vi FROM indicators WHERE code = %s", (tst["count"],)
                        ).fetchone()[0]
    from gis.indicators.periods import fold

    rows = [f"Biểu 05. {name} phân theo xã, phường,,,",
            "Đơn vị tính: cái,,,,",
            "Tên đơn vị,2021,2022,2023,Sơ bộ 2024"]
    expected = {}
    for k, (_, code, uname) in enumerate(communes):
        # Names without diacritics, without "Xã"/"Phường", in another case.
        given = fold(uname).split(" ", 1)[1].upper() if k == 0 else fold(uname)
        cells = [str(100 * (k + 1) + y) for y in range(4)]
        cells[1] = "-" if k == 2 else cells[1]  # no data
        rows.append(",".join([given, *cells]))
        for y, v in zip((2021, 2022, 2023, 2024), cells, strict=True):
            if v != "-":
                expected[(code, str(y))] = float(v)
    province = conn.execute("SELECT code FROM admin_units WHERE level = 'province'"
                            " AND valid_to = '2025-07-01'").fetchone()[0]
    rows.append("Tổng số,9000,9001,9002,9003")
    expected.update({(province, str(y)): 9000.0 + y - 2021 for y in range(2021, 2025)})
    rows.append("Nguồn: Cục Thống kê (mẫu),,,,")
    path = tmp_path / "nien-giam.csv"
    path.write_text("\n".join(rows), encoding="utf-8")
    report = _import(conn, path)
    assert report.ok and report.committed, report.rejected
    assert _stored(conn, tst["count"]) == expected


def test_xlsx_long_and_wide_round_trip(conn, tst, communes, tmp_path) -> None:
    code0, code1 = communes[0][1], communes[1][1]
    long = _xlsx(tmp_path / "long.xlsx", [
        ["unit_code", "indicator_code", "period", "value"],
        [code0, tst["internal"], 2020, 7],
        [code1, tst["internal"], "2020", "8"],
    ])
    report = _import(conn, long)
    assert report.ok and report.committed and report.format == "XLSX", report
    assert _stored(conn, tst["internal"]) == {(code0, "2020"): 7.0, (code1, "2020"): 8.0}
    wide = _xlsx(tmp_path / "wide.xlsx", [
        ["BIỂU SỐ LIỆU"],
        [f"Mã chỉ tiêu: {tst['internal']}"],
        [],
        ["Mã xã", "Năm 2020", "Năm 2021"],
        [code0, 9, 10.0],
        [code1, 11, 12],
    ])
    report = _import(conn, wide)
    assert report.ok and report.committed, report
    assert _stored(conn, tst["internal"]) == {(code0, "2020"): 9.0, (code1, "2020"): 11.0,
                                               (code0, "2021"): 10.0, (code1, "2021"): 12.0}


@pytest.fixture()
def twins(conn):
    """Two units of 1995 whose names differ only by diacritics, removed afterwards."""
    ids = [r[0] for r in conn.execute(
        "INSERT INTO admin_units (code, name, level, parent_code, valid_from, valid_to, geom)"
        " VALUES ('99990', 'Xã Thử Nghiệm', 'commune', '256', '1990-01-01', '1996-01-01', g),"
        "        ('99993', 'Xã Thủ Nghiêm', 'commune', '256', '1990-01-01', '1996-01-01', g)"
        " RETURNING id".replace(
            "g)", "ST_Multi(ST_MakeEnvelope(106.0, 21.0, 106.001, 21.001, 4326)))"))]
    yield
    conn.execute("DELETE FROM indicator_values WHERE unit_id = ANY(%s)", (ids,))
    conn.execute("DELETE FROM admin_units WHERE id = ANY(%s)", (ids,))


def test_vietnamese_name_matching_and_ambiguity(conn, tst, twins, tmp_path) -> None:
    path = tmp_path / "names.csv"
    path.write_text("Tên đơn vị,Mã chỉ tiêu,Năm,Giá trị\n"
                    f"Xã Thử Nghiệm,{tst['count']},1995,5\n"  # the exact spelling decides
                    f"thu nghiem,{tst['count']},1995,6\n", encoding="utf-8")  # fits both
    report = _import(conn, path)
    assert not report.committed
    assert [(r.row, r.reason.split(":")[0]) for r in report.rejected] == [(3, "unit_name")]
    assert "ambiguous" in report.rejected[0].reason and "99990" in report.rejected[0].reason \
        and "99993" in report.rejected[0].reason
    path.write_text("Tên đơn vị,Mã chỉ tiêu,Năm,Giá trị\n"
                    f"xa thu nghiem,{tst['count']},1995,5\n"
                    f"Thủ Nghiêm,{tst['count']},1995,6\n", encoding="utf-8")
    report = _import(conn, path)
    # "xa thu nghiem" still fits both; "Thủ Nghiêm" (no "Xã") only 99993.
    assert [r.row for r in report.rejected] == [2]
    path.write_text("Tên đơn vị,Mã chỉ tiêu,Năm,Giá trị\n"
                    f"Xã Thử Nghiệm,{tst['count']},1995,5\n"
                    f"THỦ NGHIÊM,{tst['count']},1995,6\n", encoding="utf-8")
    report = _import(conn, path)
    assert report.committed, report.rejected
    assert {k: v for k, v in _stored(conn, tst["count"]).items() if k[1] == "1995"} == {
        ("99990", "1995"): 5.0, ("99993", "1995"): 6.0}


def test_every_refused_row_is_named_and_nothing_changes(conn, tst, communes, tmp_path) -> None:
    code0, code1, code2 = (c[1] for c in communes)
    current = conn.execute("SELECT code FROM admin_units WHERE level = 'commune' AND valid_to IS"
                           " NULL AND code NOT IN (SELECT code FROM admin_units WHERE valid_to"
                           " IS NOT NULL)").fetchone()
    before = conn.execute("SELECT count(*), sum(value) FROM indicator_values").fetchone()
    lines = ["unit_code,unit_name,indicator_code,period,value",
             f"{code0},,{tst['pct']},2020,50",             # 2: good
             f"{code1},,{tst['pct']},2020,120",            # 3: percentage above 100
             f"{code2},,{tst['pct']},2020,abc",            # 4: not a number
             f"88888,,{tst['pct']},2020,5",                # 5: no such unit
             f"{code0},,NOPE,2020,5",                      # 6: no such indicator
             f"{code0},,{tst['pct']},2020-Q1,5",           # 7: not an annual period
             f"{code1},Xã Không Có,{tst['pct']},2021,5",   # 8: name and code disagree
             f"{code0},,{tst['pct']},2020,51"]             # 9: repeats row 2
    if current:
        lines.append(f"{current[0]},,{tst['pct']},2020,5")  # 10: a unit made in 2025, for 2020
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines), encoding="utf-8")
    report = _import(conn, path)
    assert not report.committed and not report.ok
    got = {r.row: r.reason for r in report.rejected}
    expected_fields = {3: "value", 4: "value", 5: "unit_code", 6: "indicator_code", 7: "period",
                       8: "unit_code", 9: "2020"}
    if current:
        expected_fields[10] = "unit_code"
    assert set(got) == set(expected_fields), got
    for row, fieldname in expected_fields.items():
        assert got[row].startswith(f"{fieldname}: "), (row, got[row])
    assert "outside 0..100" in got[3] and "not a number" in got[4]
    assert "not valid on" in got.get(10, "not valid on")
    assert "repeats row 2" in got[9]
    assert conn.execute("SELECT count(*), sum(value) FROM indicator_values").fetchone() == before
    audit = conn.execute("SELECT status, target->>'committed', (target->>'rejected_count')::int"
                         " FROM audit_log WHERE action = 'import' AND layer = 'indicators'"
                         " ORDER BY id DESC LIMIT 1").fetchone()
    assert audit == (422, "false", len(expected_fields))


def test_reimport_replaces_the_period_atomically_and_is_audited(conn, tst, communes,
                                                                tmp_path) -> None:
    code0, code1, code2 = (c[1] for c in communes)
    path = tmp_path / "first.csv"
    path.write_text("unit_code,indicator_code,period,value\n"
                    f"{code0},{tst['count']},2019,1\n{code1},{tst['count']},2019,2\n"
                    f"{code2},{tst['count']},2019,3\n", encoding="utf-8")
    assert _import(conn, path).committed
    path.write_text("unit_code,indicator_code,period,value\n"
                    f"{code0},{tst['count']},2019,1\n{code1},{tst['count']},2019,20\n",
                    encoding="utf-8")
    report = _import(conn, path)
    assert report.committed and (report.inserted, report.updated, report.unchanged) == (0, 1, 1)
    assert {k: v for k, v in _stored(conn, tst["count"]).items() if k[1] == "2019"} == {
        (code0, "2019"): 1.0, (code1, "2019"): 20.0}
    audit = conn.execute(
        "SELECT username, status, target->>'committed', (target->>'removed')::int, target->'replaced'"
        " FROM audit_log WHERE action = 'import' AND layer = 'indicators' ORDER BY id DESC LIMIT 1"
    ).fetchone()
    assert audit == (OPERATOR.user, 200, "true", 1, [[tst["count"], "2019"]])


def test_only_operators_import_and_the_layer_itself_is_read_only(conn, tmp_path) -> None:
    from gis.io.imports import ImportNotAllowed, ImportOptions, import_file

    path = tmp_path / "x.csv"
    path.write_text("unit_code,indicator_code,period,value\n", encoding="utf-8")
    with pytest.raises(ImportNotAllowed):
        import_indicators(conn, path, IndicatorImportOptions(), Principal("c", frozenset({"citizen"})))
    with pytest.raises(ImportNotAllowed):
        import_file(conn, path, ImportOptions(layer="indicators"),
                    Principal("a", frozenset({"admin"})))


# --- serving ------------------------------------------------------------------------------------


def test_ogc_items_through_the_server_carry_geometry_and_values(live_server, conn) -> None:
    expected = {r[0]: r[1:] for r in conn.execute(
        "SELECT v.id, u.code, v.value FROM indicator_values v JOIN admin_units u ON u.id = v.unit_id"
        " WHERE v.indicator_code = 'GRDP' AND v.period = '2023' AND u.level = 'commune'")}
    assert expected
    r = httpx.get(f"{live_server}/ogc/collections/indicators/items", params={
        "indicator_code": "GRDP", "period": "2023", "unit_level": "commune", "limit": 1000},
        timeout=60)
    assert r.status_code == 200
    body = r.json()
    assert body["numberReturned"] == len(expected)
    for f in body["features"]:
        assert f["geometry"]["type"] == "MultiPolygon" and f["geometry"]["coordinates"]
        p = f["properties"]
        assert (p["unit_code"], p["value"]) == (expected[f["id"]][0], pytest.approx(expected[f["id"]][1]))
        assert p["indicator_code"] == "GRDP" and p["measure_unit"] == "tỷ đồng"
    # The collection is listed with its Vietnamese title; the map does not draw it.
    coll = httpx.get(f"{live_server}/ogc/collections/indicators", timeout=30).json()
    assert coll["id"] == "indicators"
    layers = httpx.get(f"{live_server}/api/map/layers", timeout=30).json()["layers"]
    assert "indicators" not in {e["id"] for e in layers}


def test_api_series_equals_the_stored_values(client, conn) -> None:
    code, unit_id = conn.execute(
        "SELECT code, id FROM admin_units WHERE level = 'commune' AND valid_to IS NULL"
        " ORDER BY code LIMIT 1").fetchone()
    stored = conn.execute("SELECT period, value FROM indicator_values WHERE unit_id = %s AND"
                          " indicator_code = 'POVERTY_RATE' ORDER BY period", (unit_id,)).fetchall()
    r = client.get("/api/indicators/POVERTY_RATE/series", params={"unit": code})
    assert r.status_code == 200
    body = r.json()
    assert [(s["period"], s["value"]) for s in body["series"]] == [tuple(x) for x in stored]
    assert len(stored) >= 5 and body["unit"]["code"] == code
    # Compare: every commune of the period, ranked, beside the province.
    r = client.get("/api/indicators/POP/compare", params={"period": "2024"})
    body = r.json()
    n = conn.execute("SELECT count(*) FROM admin_units WHERE level = 'commune' AND valid_from <="
                     " '2024-12-31' AND (valid_to IS NULL OR valid_to > '2024-12-31')").fetchone()[0]
    assert len(body["communes"]) == n and body["communes"][0]["rank"] == 1
    assert body["province"]["value"] == sum(c["value"] for c in body["communes"])
    bad = client.get("/api/indicators/POP/values", params={"period": "2024-Q5"})
    assert bad.status_code == 400 and bad.json()["parameter"] == "period"


def test_an_internal_indicator_is_hidden_from_the_public(client, keys, live_server) -> None:
    listed = {i["code"] for i in client.get("/api/indicators").json()["indicators"]}
    assert "CRIMINAL_CASES" not in listed and "POP" in listed
    assert client.get("/api/indicators/CRIMINAL_CASES").status_code == 404
    assert client.get("/api/indicators/CRIMINAL_CASES/values",
                      params={"period": "2023"}).status_code == 404
    staff = client.get("/api/indicators/CRIMINAL_CASES/values", params={"period": "2023"},
                       headers=keys["operator"])
    assert staff.status_code == 200 and len(staff.json()["values"]) > 100
    url = f"{live_server}/ogc/collections/indicators/items"
    params = {"indicator_code": "CRIMINAL_CASES", "limit": 5}
    assert httpx.get(url, params=params, timeout=30).json()["features"] == []
    seen = httpx.get(url, params=params, headers=keys["operator"], timeout=30).json()
    assert len(seen["features"]) == 5


# --- the upload (POST /api/indicators/imports) --------------------------------------------------

UPLOAD = "/api/indicators/imports"


def test_upload_imports_and_the_values_are_then_served(client, keys, conn, tst, communes) -> None:
    rows = [(code, str(year), 10 + k + (year - 2016)) for k, (_, code, _n) in enumerate(communes)
            for year in (2016, 2017)]
    body = "Mã ĐVHC;Chỉ tiêu;Kỳ;Giá trị\n" + "\n".join(
        f"{c};{tst['count']};{y};{v}" for c, y, v in rows)
    files = {"file": ("so-lieu.csv", body.encode("utf-8-sig"), "text/csv")}
    before = _stored(conn, tst["count"])
    # A dry run checks and counts, writes nothing.
    dry = client.post(UPLOAD, files=files, data={"dry_run": "true"}, headers=keys["operator"])
    assert dry.status_code == 200, dry.text
    assert dry.json()["inserted"] == len(rows) and not dry.json()["committed"]
    assert _stored(conn, tst["count"]) == before
    r = client.post(UPLOAD, files=files, headers=keys["operator"])
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["committed"] and report["inserted"] == len(rows) and report["file"] == "so-lieu.csv"
    stored = _stored(conn, tst["count"])
    assert {k: v for k, v in stored.items() if k[1] in ("2016", "2017")} == {
        (c, y): float(v) for c, y, v in rows}
    # Served: /api values of the period equal what was uploaded.
    served = client.get(f"/api/indicators/{tst['count']}/values", params={"period": "2017"}).json()
    assert {v["unit_code"]: v["value"] for v in served["values"]} == {
        c: float(v) for c, y, v in rows if y == "2017"}
    audit = conn.execute(
        "SELECT status, target->>'committed', target->>'file', path FROM audit_log"
        " WHERE action = 'import' AND layer = 'indicators' ORDER BY id DESC LIMIT 1").fetchone()
    assert audit == (200, "true", "so-lieu.csv", UPLOAD)


def test_upload_of_a_bad_file_names_every_bad_row_and_imports_nothing(client, keys, conn, tst,
                                                                      communes) -> None:
    code0, code1, code2 = (c[1] for c in communes)
    lines = ["unit_code,indicator_code,period,value",
             f"{code0},{tst['pct']},2015,50",          # 2: good
             f"{code1},{tst['pct']},2015,120",         # 3: above 100 %
             f"{code2},{tst['pct']},2015,abc",         # 4: not a number
             f"88888,{tst['pct']},2015,5",             # 5: no such unit
             f"{code0},NOPE,2015,abc"]                 # 6: no such indicator, not a number
    before = conn.execute("SELECT count(*), sum(value) FROM indicator_values").fetchone()
    r = client.post(UPLOAD, files={"file": ("bad.csv", "\n".join(lines).encode(), "text/csv")},
                    headers={**keys["operator"], "Accept-Language": "en"})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    got = {(e["row"], e["field"]) for e in body["errors"]}
    assert got == {(3, "value"), (4, "value"), (5, "unit_code"), (6, "indicator_code"),
                   (6, "value")}, body["errors"]
    assert all(e["reason"] for e in body["errors"]) and body["rejected_count"] == 4
    assert conn.execute("SELECT count(*), sum(value) FROM indicator_values").fetchone() == before
    # In Vietnamese by default, the same rows.
    vi = client.post(UPLOAD, files={"file": ("bad.csv", "\n".join(lines).encode(), "text/csv")},
                     headers=keys["operator"]).json()
    assert {(e["row"], e["field"]) for e in vi["errors"]} == got
    assert any("không phải là số" in e["reason"] for e in vi["errors"])
    # An unreadable file names `file`; a bad form field is a 400 naming it.
    r = client.post(UPLOAD, files={"file": ("x.pdf", b"%PDF-1.4", "application/pdf")},
                    headers=keys["operator"])
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "file"
    r = client.post(UPLOAD, files={"file": ("x.csv", b"a,b\n", "text/csv")},
                    data={"layout": "diagonal", "boundaries": "yesterday"}, headers=keys["operator"])
    assert r.status_code == 400 and {e["field"] for e in r.json()["errors"]} == {"layout",
                                                                                 "boundaries"}
    assert client.post(UPLOAD, data={"dry_run": "true"}, headers=keys["operator"]).status_code == 400


def test_upload_is_refused_to_anonymous_and_unauthorised_callers(client, keys, conn, tst,
                                                                  communes) -> None:
    body = f"unit_code,indicator_code,period,value\n{communes[0][1]},{tst['count']},2014,1\n"
    files = {"file": ("x.csv", body.encode(), "text/csv")}
    assert client.post(UPLOAD, files=files).status_code == 401
    for profile in ("citizen", "land_officer", "leader"):
        assert client.post(UPLOAD, files=files, headers=keys[profile]).status_code == 403
    assert (communes[0][1], "2014") not in _stored(conn, tst["count"])
