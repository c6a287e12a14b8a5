"""A 400/422 lists every field in error at once, each with its reason, in the user's language
(`?lang=`, Accept-Language, Vietnamese by default): for every way out - problem details under
/api, the OGC exception document under /ogc, the error page and the search form of the pages.
The catalogue behind it is api/messages.py."""

from __future__ import annotations

import re

import pytest

EN = {"Accept-Language": "en"}


def test_parameters_in_error_are_all_listed_in_vietnamese_by_default(client) -> None:
    url = "/api/map/identify?lon=abc&lat=999.5&z=x"
    vi, en = client.get(url), client.get(url, headers=EN)
    assert vi.status_code == en.status_code == 400
    for r in (vi, en):
        assert r.headers["content-type"].startswith("application/problem+json")
        assert [e["field"] for e in r.json()["errors"]] == ["lon", "lat", "z"]
    assert {e["field"]: e["reason"] for e in vi.json()["errors"]} == {
        "lon": "phải là số", "lat": "không được lớn hơn 90", "z": "phải là số"}
    assert vi.json()["detail"] == "lon: phải là số; lat: không được lớn hơn 90; z: phải là số"
    assert {e["field"]: e["reason"] for e in en.json()["errors"]} == {
        "lon": "expected a number", "lat": "must be at most 90", "z": "expected a number"}
    assert client.get(url + "&lang=en").json()["errors"][0]["reason"] == "expected a number"


def test_a_body_in_error_is_a_422_listing_every_member(client, conn, keys) -> None:
    (pid, version) = conn.execute("SELECT id, version FROM parcels ORDER BY id LIMIT 1").fetchone()
    body = {"version": version, "type": 5, "id": [1], "crs": [4326], "note": "x" * 3,
            "geometry": {"type": "Polygon", "coordinates": [[[106, 21], [106.001, 21], [106, 21.001],
                                                             [106, 21]]]}}
    h = keys["land_officer"]
    vi = client.patch(f"/api/parcels/{pid}", json=body, headers=h)
    en = client.patch(f"/api/parcels/{pid}", json=body, headers={**h, **EN})
    assert vi.status_code == en.status_code == 422, vi.text
    assert [e["field"] for e in vi.json()["errors"]] == ["type", "id", "crs"]
    assert [e["field"] for e in en.json()["errors"]] == ["type", "id", "crs"]
    assert {e["field"]: e["reason"] for e in vi.json()["errors"]} == {
        "type": "phải là chuỗi ký tự",
        "id": "phải là số nguyên hoặc phải là chuỗi ký tự",
        "crs": "phải là chuỗi ký tự hoặc phải là số nguyên"}
    assert {e["field"]: e["reason"] for e in en.json()["errors"]} == {
        "type": "expected text", "id": "expected a whole number or expected text",
        "crs": "expected text or expected a whole number"}
    # No English left in the Vietnamese body, no Vietnamese in the English one.
    assert not re.search(r"\b(must|should|input|expected|or|text)\b", vi.json()["detail"]), vi.text
    assert "phải" not in en.text
    # The checks of our own come out the same way.
    r = client.post("/api/parcels/search", json={"geometry": body["geometry"], "relation": "inside"},
                    headers=h)
    assert r.status_code == 400
    assert r.json()["detail"] == "relation: phải là một trong các giá trị: 'intersects' hoặc 'within'"


def test_unknown_members_and_ogc_parameters(client) -> None:
    r = client.post("/api/exports", json={"layer": "roads", "format": "geojson", "fields": 5})
    assert r.status_code == 400
    assert r.json()["errors"] == [{"field": "fields",
                                   "reason": "phải là chuỗi ký tự hoặc phải là danh sách"}]
    r = client.get("/ogc/collections/roads/items?limit=100000")
    assert r.status_code == 400
    assert r.json()["description"] == "limit: không được lớn hơn 10.000"
    r = client.get("/ogc/collections/roads/items?limit=100000", headers=EN)
    assert r.json()["description"] == "limit: must be at most 10,000"


@pytest.mark.parametrize("lang, texts", [
    ("vi", ["Tờ bản đồ số: &#39;abc&#39; không phải là số nguyên",
            "Thửa số: 0 nằm ngoài khoảng 1–99.999",
            "Loại đất: &#39;1&#39; không phải mã loại đất (ba chữ cái, ví dụ ONT; nhiều mã cách "
            "nhau bằng dấu phẩy)",
            "Điểm (kinh độ, vĩ độ): cần hai số cách nhau bằng dấu phẩy, nhận được &#39;x&#39;",
            "Vùng vẽ: không phải GeoJSON"]),
    ("en", ["Map sheet: &#39;abc&#39; is not a whole number",
            "Parcel number: 0 is outside 1..99999",
            "Land use: &#39;1&#39; is not a land-use code (three letters, e.g. ONT; several "
            "separated by commas)",
            "Point (longitude, latitude): expected two numbers separated by a comma, got &#39;x&#39;",
            "Drawn area: not GeoJSON"]),
])
def test_the_search_form_lists_every_field_in_error_under_its_own_labels(client, lang, texts) -> None:
    r = client.get(f"/parcels?sheet=abc&lang={lang}")
    assert r.status_code == 400
    assert re.findall(r'<li class="problem" data-field="(\w*)">([^<]*)</li>', r.text) == [
        ("sheet", texts[0])]
    r = client.get(f"/parcels?sheet=abc&parcel=0&land_use=1&point=x&polygon=%7B&lang={lang}")
    assert r.status_code == 400
    listed = re.findall(r'<li class="problem" data-field="(\w*)">([^<]*)</li>', r.text)
    assert listed == list(zip(["sheet", "parcel", "land_use", "point", "polygon"], texts, strict=True))
    assert len(re.findall(r'class="form-[a-z]+ form-[a-z]+-sm is-invalid"', r.text)) == 4


def test_the_api_search_lists_every_criterion_in_error(client) -> None:
    """The query model's own checks (types, bounds) all at once; then the criteria's checks
    (commune, land use, point) all at once, in the request's language."""
    r = client.get("/api/parcels/search?sheet=abc&parcel=0&limit=0")
    assert r.status_code == 400
    assert [e["field"] for e in r.json()["errors"]] == ["sheet", "parcel", "limit"]
    url = "/api/parcels/search?commune=x&land_use=1&point=x"
    vi, en = client.get(url), client.get(url, headers=EN)
    assert vi.status_code == en.status_code == 400
    assert {e["field"]: e["reason"] for e in vi.json()["errors"]} == {
        "commune": "nhập mã xã 5 chữ số hoặc tên xã/phường",
        "land_use": "'1' không phải mã loại đất (ba chữ cái, ví dụ ONT; nhiều mã cách nhau bằng dấu phẩy)",
        "point": "cần hai số cách nhau bằng dấu phẩy, nhận được 'x'"}
    assert [e["field"] for e in en.json()["errors"]] == ["commune", "land_use", "point"]
    assert "not a land-use code" in en.json()["detail"] and "phải" not in en.text


def test_the_error_page_is_in_the_users_language(client) -> None:
    html = {"Accept": "text/html"}
    vi = client.get("/parcels/999999999", headers=html)
    assert vi.status_code == 404 and '<html lang="vi"' in vi.text
    assert "404 – Không tìm thấy" in vi.text and "không tìm thấy thửa đất 999999999" in vi.text
    assert "not found" not in vi.text
    en = client.get("/parcels/999999999?lang=en", headers=html)
    assert en.status_code == 404 and "parcel 999999999 not found" in en.text
    # A parameter in error: the reason in Vietnamese, the time of a missing version in
    # Vietnam time.
    r = client.get("/parcels/1?as_of=" + "x" * 41, headers=html)
    assert r.status_code == 400 and "as_of: tối đa 40 ký tự" in r.text
    r = client.get("/parcels/1?as_of=1999-12-31", headers=html)
    assert r.status_code == 404 and "chưa có tại thời điểm 31/12/1999 23:59" in r.text


# --- every kind of error a person meets, in both languages ---------------------------------------

# English words that must not be in a Vietnamese error body (the field names, codes, the
# technical `type` and values quoted from the request aside): tests/test_language_browser.py's
# markers, and the words our English errors are made of.
def _english_in(body: dict) -> list[str]:
    from test_language_browser import ENGLISH

    said = " ".join(str(body.get(k, "")) for k in ("title", "detail", "description"))
    said += " " + " ".join(e["reason"] for e in body.get("errors", []))
    # Not words but names: values quoted back, the parameters in error, lists of property or
    # parameter names, CRS names (EPSG's), GeoJSON types.
    said = re.sub(r"'[^']*'|\"[^\"]*\"", " ", said)
    for field in {e["field"] for e in body.get("errors", []) if e.get("field")}:
        said = re.sub(rf"(^|[\s;]){re.escape(field)}:", " ", said)
    said = re.sub(r"(được|tham số):[^)]*", " ", said)
    said = re.sub(r"\b[Aa]n (ninh|toàn)\b", " ", said)  # Vietnamese words, not "an"
    said = re.sub(r"EPSG:\d+ \([^)]*\)|\b(Multi)?Polygon\b|[\w-]+=[\w-]+", " ", said)
    extra = r"\b(is|are|an?|at|on|in|or|to|for|give|use|unknown|unsupported|syntax|property|" \
            r"geometry|polygon|ring|outer|hole|positions?|closed|format|encoding|filter|" \
            r"interval|unexpected|near|position|lies|outside|overlaps|must|expected)\b"
    found = [m.group(0) for m in ENGLISH.finditer(said)]
    found += [m.group(0) for m in re.finditer(extra, said, re.IGNORECASE)]
    return sorted(set(found))


SQUARE_OPEN = {"type": "Polygon", "coordinates": [[[106, 21], [106.001, 21], [106.001, 21.001],
                                                  [106, 21.001]]]}
BOWTIE = {"type": "Polygon", "coordinates": [[[106.06, 21.17], [106.061, 21.171], [106.061, 21.17],
                                              [106.06, 21.171], [106.06, 21.17]]]}

# (request, status, a part of the Vietnamese reason, a part of the English one)
KINDS = {
    "geometry: a ring not closed": (
        ("post", "/api/parcels/search", {"json": {"geometry": SQUARE_OPEN}}), 422,
        "vòng ngoài của đa giác 1 không khép kín", "polygon 1 outer ring is not closed"),
    "geometry: self-intersection, located": (
        ("post", "/api/parcels/search", {"json": {"geometry": BOWTIE}}), 422,
        "hình thể không hợp lệ: tự cắt nhau tại kinh độ 106,0605", "Self-intersection"),
    "geometry: not a polygon": (
        ("post", "/api/parcels/search", {"json": {"geometry": {"type": "Point",
                                                               "coordinates": [106, 21]}}}), 422,
        "kiểu 'Point' không phải Polygon hoặc MultiPolygon", "is not a Polygon or MultiPolygon"),
    "geometry: unknown crs": (
        ("post", "/api/parcels/search", {"json": {"geometry": SQUARE_OPEN, "crs": "EPSG:1"}}), 422,
        "hệ tọa độ 'EPSG:1' không được hỗ trợ", "is not supported"),
    "cql2: syntax": (
        ("get", "/ogc/collections/roads/items?filter=name%20%3D%3D%20%27x%27", {}), 400,
        "lỗi cú pháp", "syntax error"),
    "cql2: unknown property": (
        ("get", "/ogc/collections/roads/items?filter=khongco%20%3D%201", {}), 400,
        "không có thuộc tính 'khongco'", "unknown property 'khongco'"),
    "cql2: anything else": (
        ("get", "/ogc/collections/roads/items?filter=name%20LIKE%205", {}), 400,
        "bộ lọc CQL2 không hợp lệ", "LIKE pattern must be a string literal"),
    "cql2: in an export": (
        ("get", "/api/exports?layer=roads&format=geojson&filter=khongco%3D1", {}), 400,
        "không có thuộc tính 'khongco'", "unknown property 'khongco'"),
    "export: format": (
        ("get", "/api/exports?layer=roads&format=xyz", {}), 400,
        "định dạng 'xyz' không được hỗ trợ", "unknown format 'xyz'"),
    "export: crs": (
        ("get", "/api/exports?layer=roads&format=geojson&crs=EPSG:1", {}), 400,
        "hệ tọa độ xuất 'EPSG:1' không được hỗ trợ", "unsupported export crs 'EPSG:1'"),
    "export: field": (
        ("get", "/api/exports?layer=roads&format=geojson&fields=khongco", {}), 400,
        "không có trường 'khongco'", "has no field 'khongco'"),
    "export: bbox": (
        ("get", "/api/exports?layer=roads&format=geojson&bbox=1,2,3", {}), 400,
        "cần 4 hoặc 6 số hữu hạn", "expected 4 or 6 finite numbers"),
    "export: encoding": (
        ("get", "/api/exports?layer=roads&format=geojson&encoding=latin1", {}), 400,
        "bảng mã 'latin1' không được hỗ trợ", "is not supported; use utf-8 or tcvn3"),
    "export: commune": (
        ("get", "/api/exports?layer=roads&format=geojson&commune=99999", {}), 400,
        "không có đơn vị hành chính '99999' vào ngày", "no administrative unit '99999'"),
    "export: unknown parameter": (
        ("get", "/api/exports?layer=roads&khongco=1", {}), 400,
        "không có tham số này", "unknown parameter"),
}


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_of_error_in_both_languages(client, kind) -> None:
    (method, url, kwargs), status, vi_part, en_part = KINDS[kind]
    vi = getattr(client, method)(url, **kwargs)
    en = getattr(client, method)(url, **kwargs, headers=EN)
    _said_in_both(vi, en, url, status, vi_part, en_part)


def _said_in_both(vi, en, url: str, status: int, vi_part: str, en_part: str) -> None:
    """VI says VI_PART with no English marker, EN says EN_PART with no Vietnamese; the same
    status, and the problem+json title in each language."""
    assert vi.status_code == en.status_code == status, vi.text
    vb, eb = vi.json(), en.json()
    vi_text = " ".join([str(vb.get("detail", "")), str(vb.get("description", "")),
                        *(e["reason"] for e in vb.get("errors", []))])
    en_text = " ".join([str(eb.get("detail", "")), str(eb.get("description", "")),
                        *(e["reason"] for e in eb.get("errors", []))])
    assert vi_part in vi_text, vi_text
    assert en_part in en_text, en_text
    assert not _english_in(vb), (_english_in(vb), vb)
    assert not re.search(r"[ạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹđ]", en_text), en_text
    assert vb.get("code") == eb.get("code")
    if url.startswith("/api/"):  # problem+json: the title too
        from api.messages import MESSAGES

        assert vb["title"] == MESSAGES[f"status_{status}"][0]
        assert eb["title"] not in (MESSAGES[f"status_{status}"][0], None)


def test_problem_titles_are_in_the_users_language(client) -> None:
    for url, vi_title, en_title in (("/api/parcels/999999999", "Không tìm thấy", "Not found"),
                                    ("/api/map/identify?lon=x", "Yêu cầu không hợp lệ", "Bad request")):
        vi, en = client.get(url), client.get(url, headers=EN)
        assert vi.json()["title"] == vi_title and en.json()["title"] == en_title
    r = client.delete("/api/map/identify")
    assert r.status_code == 405 and r.json()["title"] == "Phương thức không được hỗ trợ"
    # Routing's own errors: the status's words instead of Starlette's English phrase.
    assert r.json()["detail"] == "Phương thức không được hỗ trợ"
    assert client.delete("/api/map/identify", headers=EN).json()["detail"] == "Method Not Allowed"
    assert client.get("/api/khongco").json()["detail"] == "Không tìm thấy"
    assert client.get("/ogc/khongco").json()["description"] == "Không tìm thấy"


def test_a_located_geometry_problem_keeps_its_place_in_the_body(client) -> None:
    r = client.post("/api/parcels/search", json={"geometry": BOWTIE})
    body = r.json()
    assert body["code"] == "InvalidGeometry"
    assert body["problems"][0]["reason"].startswith("Self-intersection")
    assert set(body["problems"][0]["location"]) >= {"lon", "lat", "x_northing", "y_easting"}
    assert "entry" not in body["problems"][0]


def test_an_import_refused_says_why_in_the_users_language(client, keys, tmp_path) -> None:
    """The file's error and every refused row's reason (api/routes/imports.py words the
    importer's entries): Vietnamese by default, English on request; nothing is written."""
    import json

    features = [{"type": "Feature",
                 "geometry": {"type": "Point", "coordinates": [106.05 + i / 100, 21.1]},
                 "properties": {"code": f"WAT-97{i:03d}", "name": "Trạm thử", "kind": kind,
                                "parameter": "ph", "unit": "pH", "threshold": threshold,
                                "status": "online", "ghichu": "x"}}
                for i, (kind, threshold) in enumerate([("water", 8.5), ("nuiluaxyz", 8.5),
                                                       ("water", "cao"), ("water", 7.0)])]
    features[3]["properties"]["code"] = features[0]["properties"]["code"]
    features.append({"type": "Feature", "geometry": None, "properties": {
        **features[0]["properties"], "code": "WAT-97999"}})
    path = tmp_path / "tram.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    h = keys["operator"]

    def upload(headers: dict[str, str]):
        with path.open("rb") as f:
            return client.post("/api/imports", data={"layer": "sensors"},
                               files={"file": (path.name, f)}, headers=headers)

    vi, en = upload(h), upload({**h, **EN})
    assert vi.status_code == en.status_code == 422
    assert [r["row"] for r in vi.json()["rejected"]] == [2, 3, 4, 5]
    reasons_vi = [r["reason"] for r in vi.json()["rejected"]]
    reasons_en = [r["reason"] for r in en.json()["rejected"]]
    assert "không thuộc các giá trị" in reasons_vi[0] and "is not one of" in reasons_en[0]
    assert reasons_vi[1] == "threshold: 'cao' không phải là số"
    assert reasons_en[1] == "threshold: 'cao' is not a number"
    assert reasons_vi[2] == "trùng code WAT-97000 với dòng 1"
    assert reasons_vi[3] == "không có hình học" and reasons_en[3] == "no geometry"
    # Warnings too.
    assert "các cột không có trong lớp sensors, bỏ qua: ghichu" in vi.json()["warnings"], vi.json()
    assert "columns not in layer sensors, ignored: ghichu" in en.json()["warnings"], en.json()
    body = {"errors": [{"field": r.partition(":")[0], "reason": r} for r in reasons_vi]}
    assert not _english_in(body), _english_in(body)

    junk = tmp_path / "hong.zip"
    junk.write_bytes(b"PK\x03\x04 not a zip")
    for headers, said in ((h, "hong.zip: không đọc được tệp zip (bị hỏng hoặc không đầy đủ?)"),
                          ({**h, **EN}, "hong.zip: not a readable zip file (damaged or truncated?)")):
        with junk.open("rb") as f:
            r = client.post("/api/imports", data={"layer": "sensors"}, files={"file": (junk.name, f)},
                            headers=headers)
        assert r.status_code == 422 and r.json()["error"].startswith(said), r.json()["error"]


def test_a_polygon_search_lists_every_member_in_error(client) -> None:
    """The body's members (types, bounds, choices) at once; then the criteria, the CRS and the
    polygon at once, in the request's language."""
    ring = {"type": "Polygon", "coordinates": [[[106, 21], [106.001, 21], [106, 21.001]]]}
    r = client.post("/api/parcels/search", json={"geometry": ring, "sheet": "abc", "relation": "inside",
                                                 "limit": 0})
    assert r.status_code == 400
    assert {e["field"]: e["reason"] for e in r.json()["errors"]} == {
        "sheet": "phải là số nguyên", "relation": "phải là một trong các giá trị: 'intersects' hoặc "
        "'within'", "limit": "phải từ 1 trở lên"}
    r = client.post("/api/parcels/search", json={"geometry": ring, "land_use": "1", "crs": "EPSG:1"})
    assert [e["field"] for e in r.json()["errors"]] == ["land_use", "crs"]
    vi = client.post("/api/parcels/search", json={"geometry": ring, "land_use": "1"})
    en = client.post("/api/parcels/search", json={"geometry": ring, "land_use": "1"}, headers=EN)
    assert [e["field"] for e in vi.json()["errors"]] == ["land_use", "geometry"]
    assert [e["reason"] for e in vi.json()["errors"]] == [
        "'1' không phải mã loại đất (ba chữ cái, ví dụ ONT; nhiều mã cách nhau bằng dấu phẩy)",
        "vòng ngoài của đa giác 1 chỉ có 3 điểm; một vòng cần ít nhất 4 (3 đỉnh và điểm đầu lặp "
        "lại ở cuối)"]
    assert "polygon 1 outer ring has 3 positions" in en.json()["errors"][1]["reason"]


def test_ogc_item_parameters_in_error_are_all_listed(client) -> None:
    url = "/ogc/collections/roads/items?sortby=khongco&khongco=1&properties=zz&lanes=abc&datetime=2025-13-01"
    vi, en = client.get(url), client.get(url, headers=EN)
    assert vi.status_code == en.status_code == 400
    fields = ["datetime", "properties", "sortby", "khongco", "lanes"]
    assert [e["field"] for e in vi.json()["errors"]] == [e["field"] for e in en.json()["errors"]] == fields
    reasons = {e["field"]: e["reason"] for e in vi.json()["errors"]}
    assert reasons["lanes"] == "phải là số nguyên"
    assert reasons["khongco"].startswith("không có tham số này")
    assert reasons["sortby"].startswith("không có thuộc tính 'khongco'")
    assert not _english_in(vi.json()), _english_in(vi.json())
    assert "'abc' is not a valid int" in en.json()["description"]


# --- editing a parcel (what the land officer meets on the parcel page) ----------------------------

def _edit_kinds(conn) -> dict[str, tuple[dict, dict, int, str, str]]:
    """(body, headers, status, a part of the Vietnamese reason, a part of the English one)."""
    (pid, version, sheet, number, other) = conn.execute(
        "SELECT a.id, a.version, b.sheet_no, b.parcel_no, b.id FROM parcels a JOIN parcels b"
        " ON b.commune_code = a.commune_code AND b.old_commune_code IS NOT DISTINCT FROM"
        " a.old_commune_code AND b.id <> a.id ORDER BY a.id LIMIT 1").fetchone()
    change = {"properties": {"certificate_no": "CS 000001"}}
    return {"pid": pid, "kinds": {
        "no version": (change, {}, 428, "cần gửi kèm phiên bản đã sửa", "send the version you edited"),
        "If-Match malformed": (change, {"If-Match": "abc"}, 400,
                               "If-Match: 'abc' không phải số phiên bản của thửa đất",
                               "If-Match: 'abc' is not a parcel version"),
        "version malformed": ({**change, "version": 0}, {}, 422,
                              "version: 0 không phải số phiên bản", "version: 0 is not a version"),
        "versions disagree": ({**change, "version": version + 1}, {"If-Match": f'"{version}"'}, 400,
                              f"If-Match ghi phiên bản {version} nhưng nội dung gửi ghi phiên bản "
                              f"{version + 1}", "but the body says"),
        "nothing to change": ({"version": version}, {}, 422, "không có gì để thay đổi",
                              "nothing to change"),
        "note too long": ({**change, "version": version, "note": "x" * 501}, {}, 422,
                          "note: tối đa 500 ký tự", "note: longer than 500 characters"),
        "version conflict": ({**change, "version": version + 7}, {}, 409,
                             f"bạn sửa phiên bản {version + 7}, phiên bản hiện tại là {version} "
                             "(lưu lúc ", "was changed by someone else"),
        "sheet and parcel taken": ({"version": version, "properties": {"sheet_no": sheet,
                                                                       "parcel_no": number}}, {}, 422,
                                   f"tờ {sheet} thửa {number} đã là thửa đất mã {other} của xã/phường",
                                   f"sheet {sheet} parcel {number} is already parcel {other}"),
        "body not an object": ([1], {}, 400, "nội dung gửi phải là một đối tượng JSON",
                               "body: expected an object"),
        "body not JSON": (b"{", {"Content-Type": "application/json"}, 400,
                          "nội dung gửi không phải JSON hợp lệ", "body is not JSON"),
    }}


EDIT_KINDS = ["no version", "If-Match malformed", "version malformed", "versions disagree",
              "nothing to change", "note too long", "version conflict", "sheet and parcel taken",
              "body not an object", "body not JSON"]


@pytest.mark.parametrize("kind", EDIT_KINDS)
def test_each_parcel_edit_error_in_both_languages(client, conn, keys, kind) -> None:
    """Nothing is written: every one is refused before (or rolled back with) the update."""
    found = _edit_kinds(conn)
    body, headers, status, vi_part, en_part = found["kinds"][kind]
    url = f"/api/parcels/{found['pid']}"
    h = {**keys["land_officer"], **headers}
    send = {"content": body} if isinstance(body, bytes) else {"json": body}
    before = conn.execute("SELECT version FROM parcels WHERE id = %s", (found["pid"],)).fetchone()
    vi = client.patch(url, **send, headers=h)
    en = client.patch(url, **send, headers={**h, **EN})
    _said_in_both(vi, en, url, status, vi_part, en_part)
    assert conn.execute("SELECT version FROM parcels WHERE id = %s", (found["pid"],)).fetchone() == before


# --- signing in and access (what the map's and the pages' sign-in meet) ---------------------------

AUTH_KINDS = {
    "wrong password": (("post", "/api/auth/token", {"data": {"username": "khong-co-ai-14",
                                                             "password": "sai-mat-khau"}}), None, 401,
                       "sai tên đăng nhập hoặc mật khẩu", "wrong username or password"),
    "sign-in required": (("get", "/api/auth/users", {}), None, 401, "cần đăng nhập", "sign-in required"),
    "a role lacking": (("get", "/api/auth/users", {}), "citizen", 403,
                       "chức năng này dành cho: Quản trị hệ thống", "requires role admin"),
    "invalid API key": (("get", "/api/auth/me", {}), {"X-API-Key": "gioc_nonsense"}, 401,
                        "khóa API không hợp lệ", "API key"),
    "malformed token": (("get", "/api/auth/me", {}), {"Authorization": "Bearer abc.def"}, 401,
                        "mã truy cập không hợp lệ; hãy đăng nhập lại", "malformed token"),
    "malformed Basic": (("get", "/api/auth/me", {}), {"Authorization": "Basic !!!"}, 401,
                        "thông tin đăng nhập không đúng định dạng", "malformed Basic credentials"),
    "refresh without a token": (("post", "/api/auth/refresh", {"json": {}}), None, 400,
                                "cần gửi refresh_token", "refresh_token is required"),
    "owner search signed out": (("get", "/api/parcels/search?owner=Nguyen", {}), None, 401,
                                "hãy đăng nhập với vai trò cán bộ địa chính",
                                "sign in as a land officer"),
}


@pytest.mark.parametrize("kind", AUTH_KINDS)
def test_each_sign_in_and_access_error_in_both_languages(client, keys, kind) -> None:
    (method, url, kwargs), who, status, vi_part, en_part = AUTH_KINDS[kind]
    h = keys[who] if isinstance(who, str) else (who or {})
    vi = getattr(client, method)(url, **kwargs, headers=h)
    en = getattr(client, method)(url, **kwargs, headers={**h, **EN})
    _said_in_both(vi, en, url, status, vi_part, en_part)


def test_a_locked_out_sign_in_says_when_to_retry_in_both_languages(conn) -> None:
    """Too many wrong passwords: 429 with Retry-After, the wait in the user's language."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from gis.auth.users import add_user
    from gis.settings import get_settings

    settings = get_settings().model_copy(update={"signin_max_failures_per_user": 2})
    name = f"khoa-{__import__('secrets').token_hex(4)}"
    add_user(conn, name, "Mat-khau-dung-123", roles=["operator"])
    c = TestClient(create_app(settings))
    try:
        for _ in range(2):
            c.post("/api/auth/token", data={"username": name, "password": f"sai-{_}"})
        vi = c.post("/api/auth/token", data={"username": name, "password": "Mat-khau-dung-123"})
        en = c.post("/api/auth/token", data={"username": name, "password": "Mat-khau-dung-123"},
                    headers=EN)
        _said_in_both(vi, en, "/api/auth/token", 429, "đăng nhập sai quá nhiều lần; thử lại sau",
                      "too many failed sign-ins; retry in")
        assert int(vi.headers["retry-after"]) >= 1
        assert f"thử lại sau {vi.headers['retry-after']} giây" in vi.json()["detail"]
    finally:
        conn.execute("DELETE FROM users WHERE username = %s", (name,))


# --- the map's and the analytics' parameters, NUL characters, load ------------------------------

MAP_KINDS = {
    "analytics: dates and codes, all at once": (
        "/api/incidents/stats?start=hom-qua&severity=9&status=xong&category=lua", 400,
        "start: 'hom-qua' không phải ngày (YYYY-MM-DD) hoặc ngày giờ ISO",
        "start: 'hom-qua' is not an ISO date or date-time"),
    "analytics: a code unknown, the codes explained": (
        "/api/incidents/stats?status=xong", 400, "không có giá trị 'xong'; các giá trị: 'received' (",
        "unknown value 'xong'; expected one of received"),
    "analytics: window backwards": (
        "/api/incidents/stats?start=2026-02-01&end=2026-01-01", 400,
        "khoảng thời gian phải bắt đầu trước khi kết thúc", "the window must start before it ends"),
    "analytics: an instant no Vietnam-time year can hold": (
        "/api/incidents/heatmap?start=9998-01-01&end=9999-12-31T20:00:00Z", 400,
        "end: '9999-12-31T20:00:00Z' nằm ngoài khoảng 2–9998",
        "end: '9999-12-31T20:00:00Z' is outside 2..9998"),
    "analytics: the day after the last date": (
        "/api/incidents/stats?start=9999-01-01&end=9999-12-31", 400, "nằm ngoài khoảng 2–9998",
        "is outside 2..9998"),
    "analytics: window too long": (
        "/api/incidents/stats?start=2000-01-01&end=2026-01-01", 400,
        "khoảng thời gian dài tối đa mười năm", "at most ten years long"),
    "analytics: unknown parameter": (
        "/api/incidents/stats?khongco=1", 400, "khongco: không có tham số này", "unknown parameter"),
    "analytics: bbox": ("/api/incidents/stats?bbox=1,2", 400, "cần 4 hoặc 6 số hữu hạn",
                        "expected 4 or 6 finite numbers"),
    "analytics: area not found": ("/api/incidents/stats?commune=99999", 404,
                                  "không tìm thấy đơn vị hành chính '99999' vào ngày ",
                                  "administrative unit '99999' not found on"),
    "analytics: as_of": ("/api/incidents/stats?commune=99999&as_of=x", 400,
                         "as_of: phải là ngày dạng YYYY-MM-DD", "as_of: 'x' is not a date"),
    "map: identify a layer that is not": ("/api/map/identify?lon=106&lat=21&layers=incidents", 400,
                                          "không tra cứu được bằng cách nhấn trên bản đồ",
                                          "is not identified by the server"),
    "map: counts without a bbox": ("/api/map/counts?layers=roads", 400,
                                   "bbox: bắt buộc (vùng đang xem để đếm)", "bbox: required"),
    "map: counts of too many layers": ("/api/map/counts?bbox=106,21,106.1,21.1&layers=" + ",".join(
        f"l{i}" for i in range(40)), 400, "cần từ 1 đến ", "layer ids"),
    "map: a layer not there": ("/api/map/counts?bbox=106,21,106.1,21.1&layers=khongco", 404,
                               "Không tìm thấy", "not found"),
    "map search: nothing typed": ("/api/search?q=%20", 400,
                                  "q: nhập tên địa danh, số tờ/số thửa hoặc tọa độ",
                                  "q: type a place name"),
    "parcel anomalies: several communes": ("/api/parcels/anomalies?commune=Xuy%C3%AAn", 400,
                                           "'Xuyên' khớp với ", "communes; give its code"),
    "NUL in a parameter": ("/api/map/identify?lon=106&lat=21&layers=ro%00ads", 400,
                           "layers: chứa ký tự NUL (U+0000), không lưu được",
                           "layers: NUL characters are not allowed"),
}


@pytest.mark.parametrize("kind", MAP_KINDS)
def test_each_map_and_analytics_error_in_both_languages(client, keys, kind) -> None:
    url, status, vi_part, en_part = MAP_KINDS[kind]
    h = keys["land_officer" if "/parcels/" in url else "operator"]
    vi, en = client.get(url, headers=h), client.get(url, headers={**h, **EN})
    _said_in_both(vi, en, url, status, vi_part, en_part)


def test_analytics_filters_in_error_are_all_listed(client, keys) -> None:
    r = client.get("/api/incidents/stats?start=hom-qua&severity=9&status=xong&bbox=1",
                   headers=keys["operator"])
    assert r.status_code == 400
    assert [e["field"] for e in r.json()["errors"]] == ["start", "severity", "status", "bbox"]


def test_the_rate_limit_says_when_to_retry_in_both_languages() -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from gis.settings import get_settings

    settings = get_settings().model_copy(update={"rate_limit_anonymous_per_second": 0.01,
                                                 "rate_limit_anonymous_burst": 1})
    c = TestClient(create_app(settings))
    assert c.get("/healthz").status_code == 200
    vi, en = c.get("/api/map/counts"), c.get("/api/map/counts", headers=EN)
    _said_in_both(vi, en, "/api/map/counts", 429, "quá nhiều yêu cầu; hãy thử lại sau ",
                  "rate limit exceeded; sign in for a higher limit")
    assert f"thử lại sau {vi.headers['retry-after']} giây" in vi.json()["detail"]
    ogc = c.get("/ogc/collections")
    assert ogc.status_code == 429 and ogc.json()["description"].startswith("quá nhiều yêu cầu")


# --- an export job's status ------------------------------------------------------------------------

def test_an_export_jobs_message_in_both_languages(client, keys) -> None:
    """A finished job says how many features in the user's language; each message the runner
    writes has its catalogue entry, an export's own failure reads as "the export failed"."""
    import time

    from gis.io import jobs
    from gis.io.export import ExportRequest

    h = keys["operator"]
    r = client.post("/api/exports", json={"layer": "roads", "format": "geojson", "mode": "async"},
                    headers=h)
    assert r.status_code == 202, r.text
    path = r.headers["location"][r.headers["location"].index("/api/"):]
    deadline = time.monotonic() + 60
    while (vi := client.get(path, headers=h).json())["status"] not in ("successful", "failed"):
        assert time.monotonic() < deadline, vi
        time.sleep(0.1)
    en = client.get(path, headers={**h, **EN}).json()
    assert vi["status"] == "successful", vi
    rows = int(en["message"].split()[0])
    assert en["message"] == f"{rows} features"
    assert vi["message"] == f"{rows:,} đối tượng".replace(",", ".")
    job_id = path.rsplit("/", 1)[1]
    ogc = client.get(f"/ogc/jobs/{job_id}", headers=h).json()
    assert ogc["message"] == vi["message"]

    from api.messages import job_message

    job = jobs.ExportJob("x", "u", ExportRequest(layer="roads", format="geojson"), jobs.Path("/tmp"))
    for status, message, vi_text in (
            ("failed", "internal error: RuntimeError", "lỗi hệ thống (RuntimeError); hãy báo quản trị viên"),
            ("accepted", "run again after an interruption (attempt 2)",
             "chạy lại sau khi bị gián đoạn (lần 2)"),
            ("failed", f"stopped {jobs.MAX_ATTEMPTS} times with its server process; not run again",
             f"đã dừng {jobs.MAX_ATTEMPTS} lần cùng tiến trình máy chủ; không chạy lại nữa"),
            ("failed", "user an-b no longer exists or is disabled: not run again",
             "người dùng an-b không còn tồn tại hoặc đã bị vô hiệu hóa; không chạy lại"),
            ("failed", "layer 'x' not found", "xuất dữ liệu không thành công (chi tiết kỹ thuật bằng "
             "tiếng Anh với lang=en)")):
        job.status, job.message = status, message
        assert job_message(job, "vi") == vi_text and job_message(job, "en") == message

    # The file of a job that failed, or is not finished, or is not there.
    from api import messages
    from api.routes.exports import stream_result
    from layers.errors import GeoIOCError

    for status, vi_text in (("failed", "công việc xuất x không thành công: không có tệp kết quả"),
                            ("running", "công việc xuất x chưa xong; hãy thử lại khi đã hoàn tất")):
        job.status = status
        with pytest.raises(GeoIOCError) as e:
            stream_result(job)
        assert messages.detail(e.value, "vi") == vi_text
        assert messages.detail(e.value, "en").startswith(f"export job x is {status}")
    r = client.get("/api/exports/jobs/khongco", headers=h)
    assert r.status_code == 404 and r.json()["detail"] == "không tìm thấy công việc xuất 'khongco'"
