"""Exports: every format read back with pyogrio and with the ogrinfo command line; Vietnamese text
intact; VN-2000 coordinates equal to pyproj's to the millimetre; .prj files that re-open in the
right place; access rules; the Shapefile's limits; jobs."""

from __future__ import annotations

import csv
import io
import re
import time
from pathlib import Path

import pyogrio
import pytest
from _io_util import ogrinfo, unzip, wait_for_job
from pyproj import Transformer

from gis.io import export as ex
from gis.io.encodings import tcvn3_encode
from layers.access import ANONYMOUS, Principal
from layers.catalogue import get_layer


@pytest.fixture(scope="module")
def places(conn) -> dict[int, tuple[str, float, float]]:
    """Tourism places (public, Vietnamese names): id -> (name, lon, lat)."""
    rows = conn.execute("SELECT id, name, ST_X(geom), ST_Y(geom) FROM tourism_places").fetchall()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def _post(client, headers=None, **params):
    return client.post("/api/exports", json=params, headers=headers or {})


def _save(r, tmp_path: Path) -> Path:
    assert r.status_code == 200, r.text
    name = r.headers["content-disposition"].split('filename="')[1].split('"')[0]
    path = tmp_path / name
    path.write_bytes(r.content)
    return path


def _check_points(df, places, srid: int, id_col: str | None = "id", name_col: str = "name") -> None:
    """Every feature is at pyproj's transform of the stored position: 1 mm, or 1e-8 degree.
    (KML readers give the placemark's id as "id": match those by name.)"""
    t = Transformer.from_crs(4326, srid, always_xy=True)
    tol = 1e-8 if srid == 4326 else 0.001
    assert len(df) == len(places)
    by_name = {p[0]: p for p in places.values()}
    keys = df[id_col] if id_col else df[name_col]
    for key, geom in zip(keys, df.geometry, strict=True):
        name, lon, lat = places[int(key)] if id_col else by_name[key]
        x, y = t.transform(lon, lat)
        assert abs(geom.x - x) < tol and abs(geom.y - y) < tol, (key, geom.x - x, geom.y - y)


@pytest.mark.parametrize("fmt,crs", [("shp", 9209), ("shp", 3405), ("gpkg", 9209), ("gpkg", 3405),
                                     ("geojson", 9209), ("geojson", 4326), ("fgb", 9209),
                                     ("csv", 9209), ("kml", 4326)])
def test_every_format_reads_back_with_pyogrio_and_ogrinfo(client, places, tmp_path, fmt, crs) -> None:
    r = _post(client, layer="tourism_places", format=fmt, crs=f"EPSG:{crs}")
    path = _save(r, tmp_path)
    assert "filename*=UTF-8''" in r.headers["content-disposition"]  # the Vietnamese title
    assert int(r.headers["x-feature-count"]) == len(places)
    name_col, id_col = "name", "id"
    if fmt == "shp":
        members = unzip(path, tmp_path / "shp")
        names = {m.name for m in members}
        assert "fields.csv" in names
        for ext in (".shp", ".shx", ".dbf", ".prj", ".cpg"):
            assert f"tourism_places_EPSG{crs}{ext}" in names
        path = tmp_path / "shp" / f"tourism_places_EPSG{crs}.shp"
        assert (tmp_path / "shp" / f"tourism_places_EPSG{crs}.cpg").read_text() == "UTF-8"
        name_col, id_col = "TEN", "ID"
    kwargs = {"GEOM_POSSIBLE_NAMES": "WKT", "KEEP_GEOM_COLUMNS": "NO"} if fmt == "csv" else {}
    df = pyogrio.read_dataframe(path, **kwargs)
    if fmt == "kml":  # the placemark name carries the name; attributes in ExtendedData
        name_col = "Name"
    assert sorted(df[name_col]) == sorted(p[0] for p in places.values())  # diacritics intact
    assert any("ư" in n or "ơ" in n or "ệ" in n for n in df[name_col])
    _check_points(df, places, crs, None if fmt == "kml" else id_col, name_col)
    if fmt in ("shp", "gpkg", "geojson", "fgb"):
        # The CRS re-opens as the EPSG code, so coordinates land in the right place.
        assert pyogrio.read_info(path)["crs"] == f"EPSG:{crs}"
    # And the other GDAL (Debian's ogrinfo 3.6) reads the same text and CRS.
    out = ogrinfo(path, "-al", "-q") if fmt != "csv" else ogrinfo(
        path, "-al", "-q", "-oo", "GEOM_POSSIBLE_NAMES=WKT")
    some = sorted(p[0] for p in places.values())[:3]
    assert all(s in out for s in some), out[:500]
    if fmt in ("shp", "gpkg", "fgb"):
        assert f'ID["EPSG",{crs}]' in ogrinfo(path, "-al", "-so")


def test_shapefile_prj_reopens_at_pyproj_position(client, conn, tmp_path) -> None:
    """A polygon layer: the shapefile's bounds, read through its .prj, equal pyproj's transform
    of the stored bounds (the 220 m trap would move them)."""
    r = _post(client, layer="admin_units", format="shp", crs="EPSG:9209", commune="09244")
    members = unzip(_save(r, tmp_path), tmp_path / "u")
    shp = next(m for m in members if m.suffix == ".shp")
    assert "D_Vietnam_2000" in shp.with_suffix(".prj").read_text()
    info = pyogrio.read_info(shp)
    ids = [int(i) for i in pyogrio.read_dataframe(shp, read_geometry=False)["ID"]]
    xs, ys = [], []
    t = Transformer.from_crs(4326, 9209, always_xy=True)
    for (wkt,) in conn.execute("SELECT ST_AsText((ST_DumpPoints(geom)).geom) FROM admin_units "
                               "WHERE id = ANY(%s)", (ids,)):
        lon, lat = (float(v) for v in wkt[6:-1].split())
        x, y = t.transform(lon, lat)
        xs.append(x)
        ys.append(y)
    bounds = info["total_bounds"]
    assert max(abs(a - b) for a, b in zip(bounds, (min(xs), min(ys), max(xs), max(ys)), strict=True)) < 0.001
    # Back to WGS 84 through the .prj: where PostGIS has the units.
    df = pyogrio.read_dataframe(shp).to_crs(4326)
    lon_min, lat_min = conn.execute("SELECT min(ST_XMin(geom)), min(ST_YMin(geom)) FROM admin_units "
                                    "WHERE id = ANY(%s)", (ids,)).fetchone()
    assert abs(df.total_bounds[0] - lon_min) < 1e-8 and abs(df.total_bounds[1] - lat_min) < 1e-8


def test_parcels_shapefile_short_names_fields_csv_and_personal_data(client, keys, tmp_path) -> None:
    params = {"layer": "parcels", "format": "shp", "crs": "EPSG:9209", "commune": "09244",
              "filter": "sheet_no = 1"}
    anon = unzip(_save(_post(client, **params), tmp_path), tmp_path / "anon")
    dbf = next(m for m in anon if m.suffix == ".dbf")
    cols = list(pyogrio.read_info(dbf.with_suffix(".shp"))["fields"])
    assert all(len(c) <= 10 for c in cols)
    assert {"MAXA", "MAXACU", "SOTO", "SOTHUA", "LOAIDAT", "DIENTICH"} <= set(cols)
    assert "CHUSUDUNG" not in cols and "SOCCCD" not in cols  # personal: absent, not empty
    mapping = list(csv.DictReader(io.StringIO((tmp_path / "anon" / "fields.csv").read_text("utf-8-sig"))))
    by_short = {m["short_name"]: m for m in mapping}
    assert by_short["SOTO"]["name"] == "sheet_no" and by_short["SOTO"]["title_vi"] == "Số hiệu tờ bản đồ"
    officer = unzip(_save(_post(client, keys["land_officer"], **params), tmp_path), tmp_path / "lo")
    cols = pyogrio.read_info(next(m for m in officer if m.suffix == ".shp"))["fields"]
    assert "CHUSUDUNG" in cols and "SOCCCD" in cols
    df = pyogrio.read_dataframe(next(m for m in officer if m.suffix == ".shp"))
    assert set(df["SOTO"]) == {1} and set(df["MAXA"]) == {"09244"}


def test_anonymous_cannot_export_incidents_and_rows_rules_apply(client, conn, keys, tmp_path) -> None:
    r = _post(client, layer="incidents", format="geojson")
    assert r.status_code == 404 and "incidents" in r.json()["detail"]
    assert _post(client, layer="no_such_layer", format="geojson").status_code == 404
    window = "2000-01-01/2100-01-01"
    bbox = "106.0,21.0,106.1,21.1"
    df = pyogrio.read_dataframe(_save(_post(client, keys["operator"], layer="incidents", format="geojson",
                                            bbox=bbox, datetime=window), tmp_path))
    expected = conn.execute(
        "SELECT count(*) FROM incidents WHERE "
        "ST_Intersects(geom, ST_MakeEnvelope(106.0, 21.0, 106.1, 21.1, 4326)) "
        "AND category <> 'security_event'").fetchone()[0]
    assert len(df) == expected > 0
    assert "security_event" not in set(df["category"])


def test_bad_requests_are_400(client) -> None:
    for params, word in [({"format": "dwg"}, "format"), ({"format": "kml", "crs": "EPSG:9209"}, "KML"),
                         ({"format": "gpkg", "encoding": "tcvn3"}, "TCVN3"),
                         ({"format": "gpkg", "fields": "nope"}, "nope"),
                         ({"format": "gpkg", "fields": 5}, "fields"),
                         ({"format": "gpkg", "fields": ["name", {"a": 1}]}, "fields"),
                         ({"format": "gpkg", "crs": "EPSG:2154"}, "crs"),
                         ({"format": "gpkg", "filter": "name =="}, "filter"),
                         ({"format": "gpkg", "commune": "00000"}, "00000"),
                         ({"format": "gpkg", "datetime": "2025-01-01"}, "time")]:
        r = _post(client, {"Accept-Language": "en"}, layer="tourism_places", **params)
        assert r.status_code == 400 and word.lower() in r.json()["detail"].lower(), (params, r.text)


def test_bad_time_and_box_on_a_layer_with_time_are_400(client, keys) -> None:
    """The same bbox/datetime rules as the OGC API (layers.query_params), whatever JSON type."""
    for params, word in [({"datetime": 12}, "datetime"), ({"datetime": ["2025-01-01"]}, "datetime"),
                         ({"datetime": "2025-01-01/2024-01-01"}, "ends before"),
                         ({"bbox": [106, 21, 200, 22]}, "out of range"), ({"bbox": {"a": 1}}, "bbox")]:
        r = _post(client, {**keys["operator"], "Accept-Language": "en"}, layer="incidents",
                  format="geojson", **params)
        assert r.status_code == 400 and word in r.json()["detail"], (params, r.text)


def test_commune_filter_current_and_pre_2025(client, conn, tmp_path) -> None:
    code = conn.execute("SELECT code FROM admin_units WHERE level = 'commune' AND valid_to IS NOT NULL "
                        "ORDER BY code LIMIT 1").fetchone()[0]
    for date in ("pre-2025", None):
        r = client.get("/api/exports", params={"layer": "admin_units", "format": "geojson", "commune": code,
                                               **({"commune-date": date} if date else {})})
        df = pyogrio.read_dataframe(_save(r, tmp_path))
        assert code in set(df["code"])


def test_tcvn3_shapefile_on_request(client, places, tmp_path) -> None:
    r = _post(client, layer="tourism_places", format="shp", crs="EPSG:9209", encoding="tcvn3")
    members = unzip(_save(r, tmp_path), tmp_path / "t")
    names = {m.name for m in members}
    assert not any(n.endswith(".cpg") for n in names) and "README-TCVN3.txt" in names
    dbf = next(m for m in members if m.suffix == ".dbf").read_bytes()
    name = next(p[0] for p in places.values() if not p[0].isascii())
    assert tcvn3_encode(name) in dbf and name.encode() not in dbf


def test_async_job_with_progress_and_download(client, keys, places, tmp_path) -> None:
    r = client.post("/api/exports", json={"layer": "tourism_places", "format": "gpkg", "mode": "async"},
                    headers=keys["operator"])
    assert r.status_code == 202, r.text
    url = r.headers["location"]
    path = url[url.index("/api/"):]
    status = wait_for_job(client.get, path, keys["operator"])
    assert status["status"] == "successful" and status["progress"] == 100, status
    assert client.get(path, headers=keys["land_officer"]).status_code == 404  # not their job
    dl = client.get(path + "/download", headers=keys["operator"])
    df = pyogrio.read_dataframe(_save(dl, tmp_path))
    assert len(df) == len(places)


def test_export_above_the_synchronous_limit_is_a_job_end_to_end(client, conn, keys, tmp_path,
                                                                monkeypatch) -> None:
    """One feature more than the synchronous limit, asked for without a mode: 202 with a job at
    Location, rows counted up while it runs, then the file with exactly the rows SQL selects.
    No layer of the sample exceeds the real limit (50 000; incidents have exactly that many), so
    the test lowers it: the route reads the limit on every request."""
    from api.routes import exports as routes

    assert client.get("/api/exports/formats").json()["asyncAbove"] == routes.ASYNC_ABOVE == 50_000
    monkeypatch.setattr(routes, "ASYNC_ABOVE", 5_000)
    limit = client.get("/api/exports/formats").json()["asyncAbove"]
    assert limit == 5_000
    ids = [r[0] for r in conn.execute("SELECT id FROM parcels ORDER BY id LIMIT %s", (limit + 1,))]
    assert len(ids) == limit + 1
    r = _post(client, keys["operator"], layer="parcels", format="fgb", crs="EPSG:9209",
              filter=f"id <= {ids[-1]}")
    assert r.status_code == 202, r.text[:500]
    url = r.headers["location"]
    assert url.endswith(f"/api/exports/jobs/{r.json()['jobID']}")
    path = url[url.index("/api/"):]
    deadline = time.monotonic() + 180
    rows_seen: list[int] = []
    while True:
        status = client.get(path, headers=keys["operator"]).json()
        rows_seen.append(status["rows"])
        assert 0 <= status["progress"] <= 100
        if status["status"] in ("successful", "failed"):
            break
        assert time.monotonic() < deadline, status
        assert client.get(path + "/download", headers=keys["operator"]).status_code in (409, 200)
        time.sleep(0.2)
    assert status["status"] == "successful" and status["progress"] == 100, status
    assert rows_seen == sorted(rows_seen) and rows_seen[-1] == limit + 1
    assert client.get(path, headers=keys["land_officer"]).status_code == 404  # not their job
    dl = client.get(path + "/download", headers=keys["operator"])
    assert dl.status_code == 200 and int(dl.headers["x-feature-count"]) == limit + 1
    df = pyogrio.read_dataframe(_save(dl, tmp_path))
    assert sorted(df["id"].astype(int)) == ids


def test_shapefile_split_by_size_and_geometry_type(conn, monkeypatch, tmp_path) -> None:
    """Past the 2 GB limit (here made tiny) the Shapefile comes in parts; mixed geometry types
    come as one shapefile per type; more than 255 fields is refused."""
    monkeypatch.setattr(ex, "SHAPEFILE_MAX_BYTES", 6_000)
    monkeypatch.setattr(ex, "BATCH_ROWS", 10)
    result = ex.export(conn, ex.ExportRequest("tourism_places", "shp", crs="EPSG:9209"), ANONYMOUS,
                       tmp_path / "parts")
    shps = [n for n in result.files if n.endswith(".shp")]
    assert len(shps) > 2 and any("parts" in w for w in result.warnings)
    members = unzip(result.path, tmp_path / "p")
    total = sum(len(pyogrio.read_dataframe(m)) for m in members if m.suffix == ".shp")
    assert total == result.rows

    from layers.model import Field, Layer

    conn.execute("CREATE TEMP TABLE io_mixed (id bigint PRIMARY KEY, name text, "
                 "geom geometry(Geometry, 4326))")
    conn.execute("INSERT INTO io_mixed VALUES (1, 'Điểm', 'SRID=4326;POINT(106.1 21.1)'), "
                 "(2, 'Đường', 'SRID=4326;LINESTRING(106.1 21.1, 106.2 21.2)')")
    fake = Layer(id="io_mixed", title_vi="Hỗn hợp", title_en="Mixed", description_vi="", description_en="",
                 domain="admin", table="io_mixed", geometry_type="Point",
                 fields=(Field("name", "str", "Tên", "Name", "TEN"),))
    monkeypatch.setattr(ex, "readable_layer", lambda layer_id, who: fake)
    try:
        result = ex.export(conn, ex.ExportRequest("io_mixed", "shp"), ANONYMOUS, tmp_path / "mixed")
        assert sorted(n for n in result.files if n.endswith(".shp")) == [
            "io_mixed_EPSG4326_line.shp", "io_mixed_EPSG4326_point.shp"]
        wide = Layer(id="io_mixed", title_vi="", title_en="", description_vi="", description_en="",
                     domain="admin", table="io_mixed", geometry_type="Point",
                     fields=tuple(Field(f"f{i}", "str", "", "", f"F{i}") for i in range(300)))
        monkeypatch.setattr(ex, "readable_layer", lambda layer_id, who: wide)
        with pytest.raises(ex.ExportError, match="255"):
            ex.plan(conn, ex.ExportRequest("io_mixed", "shp"), Principal("x", frozenset({"admin"})))
    finally:
        conn.execute("DROP TABLE io_mixed")


def test_catalogue_short_names_fit_dbase() -> None:
    from layers.catalogue import LAYERS

    for layer in LAYERS:
        short = [f.export_name for f in layer.fields]
        assert all(len(s) <= 10 for s in short) and len(set(short)) == len(short), layer.id
    assert get_layer("parcels").field("sheet_no").export_name == "SOTO"


# --- exact data: decimals, date types, fields.csv, communes by name (issue 13, item 7) ----------


def _dbf_fields(dbf: Path) -> dict[str, tuple[str, int, int]]:
    """The .dbf header's field descriptors: name -> (dBase type, width, decimal count)."""
    data = dbf.read_bytes()
    header_len = int.from_bytes(data[8:10], "little")
    out = {}
    for pos in range(32, header_len - 1, 32):
        if data[pos] == 0x0D:
            break
        name = data[pos:pos + 11].split(b"\0")[0].decode("ascii")
        out[name] = (chr(data[pos + 11]), data[pos + 16], data[pos + 17])
    return out


def _dbf_texts(dbf: Path, field: str) -> list[str]:
    """The raw text of FIELD in every record (what a dBase reader parses, padding stripped)."""
    data = dbf.read_bytes()
    count = int.from_bytes(data[4:8], "little")
    header_len = int.from_bytes(data[8:10], "little")
    record_len = int.from_bytes(data[10:12], "little")
    offset, width = 1, None
    for name, (_, w, _) in _dbf_fields(dbf).items():
        if name == field:
            width = w
            break
        offset += w
    assert width is not None, field
    return [data[header_len + i * record_len + offset:header_len + i * record_len + offset + width]
            .decode("ascii").strip() for i in range(count)]


def test_shapefile_areas_are_decimals_with_the_stored_precision(client, conn, tmp_path) -> None:
    params = {"layer": "parcels", "format": "shp", "crs": "EPSG:9209", "commune": "09244",
              "filter": "sheet_no = 1"}
    members = unzip(_save(_post(client, **params), tmp_path), tmp_path / "dec")
    dbf = next(m for m in members if m.suffix == ".dbf")
    kind, width, decimals = _dbf_fields(dbf)["DIENTICH"]
    assert kind in ("N", "F") and decimals == get_layer("parcels").field("legal_area").decimals == 1
    assert width <= 20
    texts = _dbf_texts(dbf, "DIENTICH")
    ids = [int(t) for t in _dbf_texts(dbf, "ID")]
    stored = dict(conn.execute("SELECT id, legal_area::text FROM parcels WHERE id = ANY(%s)",
                               (ids,)).fetchall())
    assert texts and all(re_decimal(t, 1) for t in texts), texts[:5]
    assert [stored[i] for i in ids] == texts  # the stored decimal, digit for digit
    # GeoPackage: a REAL field with the catalogue's precision, the same values.
    gpkg = _save(_post(client, **{**params, "format": "gpkg"}), tmp_path)
    df = pyogrio.read_dataframe(gpkg)
    assert {round(v, 1) for v in df["legal_area"]} == {float(v) for v in stored.values()}


def re_decimal(text: str, decimals: int) -> bool:
    import re

    return re.fullmatch(rf"-?\d+\.\d{{{decimals}}}", text) is not None


def test_dates_are_date_types_in_shapefile_and_geopackage(client, keys, tmp_path) -> None:
    params = {"layer": "parcels", "crs": "EPSG:9209", "commune": "09244", "filter": "sheet_no = 1"}
    members = unzip(_save(_post(client, keys["land_officer"], format="shp", **params), tmp_path),
                    tmp_path / "dates")
    fields = _dbf_fields(next(m for m in members if m.suffix == ".dbf"))
    use_until = get_layer("parcels").field("use_until").export_name.upper()
    updated = get_layer("parcels").field("updated_at").export_name.upper()
    assert fields[use_until][0] == "D"  # dBase date
    # dBase has no date-time: ISO 8601 text in UTC, and fields.csv says so.
    assert fields[updated][0] == "C"
    texts = [t for t in _dbf_texts(next(m for m in members if m.suffix == ".dbf"), updated) if t]
    assert texts and all(t.endswith("Z") and "T" in t for t in texts)
    mapping = {row["short_name"]: row for row in csv.DictReader(
        io.StringIO((tmp_path / "dates" / "fields.csv").read_text("utf-8-sig")))}
    assert "ISO 8601" in mapping[updated]["type"] and mapping[use_until]["type"] == "date"
    gpkg = _save(_post(client, keys["land_officer"], format="gpkg", **params), tmp_path)
    info = ogrinfo(gpkg, "-so", "-al")
    assert re.search(r"^use_until: Date\b", info, re.M), info
    assert re.search(r"^updated_at: DateTime\b", info, re.M), info
    assert re.search(r"^legal_area: Real\b", info, re.M), info
    info = ogrinfo(_save(client.post("/api/exports", json={"layer": "admin_units", "format": "gpkg"}),
                         tmp_path), "-so", "-al")
    assert re.search(r"^valid_from: Date\b", info, re.M), info


def test_fields_csv_is_readable_where_it_is_unzipped(client, tmp_path) -> None:
    params = {"layer": "parcels", "format": "shp", "crs": "EPSG:9209", "commune": "09244",
              "filter": "sheet_no = 1"}
    unzip(_save(_post(client, **params), tmp_path), tmp_path / "fc")
    raw = (tmp_path / "fc" / "fields.csv").read_bytes()
    # One UTF-8 byte order mark (Excel then reads the Vietnamese titles), CRLF lines, commas.
    assert raw.startswith(b"\xef\xbb\xbf") and not raw[3:].startswith(b"\xef\xbb\xbf")
    text = raw.decode("utf-8-sig")
    assert "\r\n" in text and csv.Sniffer().sniff(text.splitlines()[0]).delimiter == ","
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["short_name", "name", "title_vi", "title_en", "type", "values"]
    assert all(len(r) == 6 for r in rows)
    by_short = {r[0]: r for r in rows[1:]}
    layer = get_layer("parcels")
    for f in layer.fields:
        if f.personal:
            continue
        row = by_short[f.export_name.upper()]
        assert (row[1], row[2], row[3]) == (f.name, f.title_vi, f.title_en)
    assert by_short["DIENTICH"][2] == "Diện tích pháp lý (m²)"
    assert by_short["DIENTICH"][4] == "decimal (1 decimal)"
    # Every column of the .dbf is described.
    cols = pyogrio.read_info(tmp_path / "fc" / "parcels_09244_EPSG9209.shp")["fields"]
    assert set(cols) <= set(by_short)


def _commune(conn) -> tuple[str, str]:
    """A current commune with parcels on sheet 1 whose name no other current unit contains."""
    for code, name in conn.execute(
            "SELECT code, name FROM admin_units a WHERE level = 'commune' AND valid_to IS NULL "
            "AND EXISTS (SELECT 1 FROM parcels p WHERE p.commune_code = a.code AND p.sheet_no = 1) "
            "ORDER BY code").fetchall():
        (n,) = conn.execute("SELECT count(*) FROM admin_units WHERE valid_to IS NULL AND "
                            "geoioc_fold(name) LIKE '%%' || geoioc_fold(%s) || '%%'", (name,)).fetchone()
        if n == 1:
            return code, name
    raise AssertionError("no commune with a unique name in the sample")


def test_commune_by_name_accent_and_case_insensitive(client, conn, tmp_path) -> None:
    from gis.parcels.common import fold

    code, name = _commune(conn)
    by_code = pyogrio.read_dataframe(_save(_post(client, layer="parcels", format="geojson", commune=code,
                                                 filter="sheet_no = 1"), tmp_path))
    assert len(by_code) > 0
    bare = name.split(" ", 1)[1] if name.lower().startswith(("xã ", "phường ")) else name
    for given in (name, fold(name), bare.upper(), fold(bare)):
        r = _post(client, layer="parcels", format="geojson", commune=given, filter="sheet_no = 1")
        df = pyogrio.read_dataframe(_save(r, tmp_path))
        assert sorted(df["id"]) == sorted(by_code["id"]), given
        assert code in r.headers["content-disposition"]


def test_ambiguous_and_unknown_commune_names(client, conn) -> None:
    # Two letters that several current units share in their folded names.
    rows = conn.execute("SELECT code, name FROM admin_units WHERE valid_to IS NULL AND "
                        "geoioc_fold(name) LIKE '%%an%%' ORDER BY code").fetchall()
    assert len(rows) >= 2
    r = _post(client, layer="parcels", format="geojson", commune="an")
    assert r.status_code == 300, r.text
    body = r.json()
    assert {c["code"] for c in body["candidates"]} <= {c for c, _ in rows}
    assert len(body["candidates"]) >= 2 and all(c["name"] for c in body["candidates"])
    assert body["candidates"][0]["code"] in body["detail"]
    r = _post(client, layer="parcels", format="geojson", commune="không có xã này")
    assert r.status_code == 400 and "không có xã này" in r.json()["detail"], r.text
    r = client.get("/api/exports", params={"layer": "parcels", "format": "geojson", "commune": "an"})
    assert r.status_code == 300


def test_cli_export_commune_by_name(tmp_path, conn, db_url) -> None:
    import subprocess
    import sys

    from gis.parcels.common import fold

    code, name = _commune(conn)
    geoioc = str(Path(sys.executable).parent / "geoioc")
    env = {"GEOIOC_DATABASE_URL": db_url, "PATH": "/usr/bin:/bin", "COLUMNS": "200"}
    out = tmp_path / "by-name.geojson"
    r = subprocess.run([geoioc, "export", "parcels", "-o", str(out), "--commune", fold(name),
                        "--where", "sheet_no = 1"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    (n,) = conn.execute("SELECT count(*) FROM parcels p WHERE p.sheet_no = 1 AND ST_Intersects(p.geom, "
                        "(SELECT ST_Union(geom) FROM admin_units WHERE code = %s AND valid_to IS NULL))",
                        (code,)).fetchone()
    assert len(pyogrio.read_dataframe(out)) == n > 0
    r = subprocess.run([geoioc, "export", "parcels", "-o", str(tmp_path / "x.geojson"), "--commune", "an"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode != 0 and "Give the code" in " ".join((r.stdout + r.stderr).split())
