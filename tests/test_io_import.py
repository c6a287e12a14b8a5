"""Imports: Shapefile (zip), GeoPackage, GeoJSON and CSV in; bad files give clear errors and
import nothing; re-imports change nothing; the caller's rights apply. Test rows carry codes and
names of their own and are removed afterwards."""

from __future__ import annotations

import random
import subprocess
import sys
import zipfile
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from _io_util import RUN
from pyproj import Transformer

from gis.io.encodings import tcvn3_encode_as_latin1
from gis.io.imports import ImportOptions, import_file
from layers.access import Principal

ADMIN = Principal("io-test", frozenset({"admin"}))
# Sensor codes of this run: WAT-9xxxxx, unlikely to clash with the sample's.
BASE = 900000 + random.Random(RUN).randrange(0, 90000)
NAMES = ["Trạm quan trắc nước sông Đuống", "Trạm Phường Đình Bảng", "Trạm Xã Hoà Long",
         "Trạm cầu Hồ - Thuận Thành", "Trạm Quế Võ"]


@pytest.fixture(autouse=True)
def cleanup(conn):
    yield
    conn.execute("DELETE FROM sensors WHERE code LIKE 'WAT-9%%' AND code >= %s AND code < %s",
                 (f"WAT-{BASE}", f"WAT-{BASE + 1000}"))
    conn.execute("DELETE FROM tourism_places WHERE name LIKE %s", (f"%{RUN}%",))
    conn.execute("DELETE FROM parcels WHERE commune_code = '99998'")
    conn.execute("DELETE FROM parcel_history WHERE commune_code = '99998'")


def _sensors(n: int = 5, offset: int = 0) -> gpd.GeoDataFrame:
    lon = [106.05 + 0.01 * i for i in range(n)]
    lat = [21.10 + 0.005 * i for i in range(n)]
    return gpd.GeoDataFrame({
        "code": [f"WAT-{BASE + offset + i}" for i in range(n)],
        "name": [NAMES[i % len(NAMES)] for i in range(n)],
        "kind": ["water"] * n, "parameter": ["ph"] * n, "unit": ["pH"] * n,
        "threshold": [8.5] * n, "status": ["online"] * n,
    }, geometry=gpd.points_from_xy(lon, lat), crs=4326)


def _count(conn) -> int:
    return conn.execute("SELECT count(*) FROM sensors WHERE code >= %s AND code < %s",
                        (f"WAT-{BASE}", f"WAT-{BASE + 1000}")).fetchone()[0]


def _shapefile_zip(gdf: gpd.GeoDataFrame, tmp_path: Path, name: str = "tram", short: bool = True,
                   crs: int | str = 9209, skip: tuple[str, ...] = (), prj: str | None = None) -> Path:
    out = gdf.to_crs(crs)
    if short:
        out = out.rename(columns={"code": "MATRAM", "name": "TEN", "kind": "LOAI", "parameter": "THONGSO",
                                  "unit": "DONVI", "threshold": "NGUONG", "status": "TRANGTHAI"})
    d = tmp_path / f"shp-{name}"
    d.mkdir(exist_ok=True)
    out.to_file(d / f"{name}.shp", engine="pyogrio", encoding="UTF-8")
    if prj is not None:
        (d / f"{name}.prj").write_text(prj)
    z = tmp_path / f"{name}.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for p in sorted(d.iterdir()):
            if p.suffix.lower() not in skip:
                zf.write(p, p.name)
    return z


def _upload(client, path: Path, headers, **form):
    with path.open("rb") as f:
        return client.post("/api/imports", data=form, files={"file": (path.name, f)}, headers=headers)


def test_shapefile_zip_in_vn2000_imports_and_reimport_is_idempotent(client, conn, keys, tmp_path) -> None:
    gdf = _sensors()
    z = _shapefile_zip(gdf, tmp_path)
    r = _upload(client, z, keys["operator"], layer="sensors")
    assert r.status_code == 200, r.text
    rep = r.json()
    assert (rep["inserted"], rep["updated"], rep["unchanged"], rep["source_crs"]) == (5, 0, 0, "EPSG:9209")
    rows = conn.execute("SELECT code, name, ST_X(geom), ST_Y(geom) FROM sensors WHERE code = ANY(%s) "
                        "ORDER BY code", (list(gdf.code),)).fetchall()
    for (_code, name, x, y), (_, src) in zip(rows, gdf.sort_values("code").iterrows(), strict=True):
        assert name == src["name"]  # Vietnamese intact
        assert abs(x - src.geometry.x) < 1e-8 and abs(y - src.geometry.y) < 1e-8  # VN-2000 and back
    again = _upload(client, z, keys["operator"], layer="sensors").json()
    assert (again["inserted"], again["updated"], again["unchanged"]) == (0, 0, 5)
    assert _count(conn) == 5
    gdf.loc[2, "name"] = "Trạm đổi tên"
    z2 = _shapefile_zip(gdf, tmp_path, "tram2")
    changed = _upload(client, z2, keys["operator"], layer="sensors").json()
    assert (changed["inserted"], changed["updated"], changed["unchanged"]) == (0, 1, 4)
    audit = conn.execute("SELECT target FROM audit_log WHERE action = 'import' AND layer = 'sensors' "
                         "ORDER BY id DESC LIMIT 1").fetchone()[0]
    assert audit["updated"] == 1 and audit["file"] == "tram2.zip"


@pytest.mark.parametrize("kind", ["geojson", "gpkg", "csv-wkt", "csv-lonlat"])
def test_other_formats(conn, tmp_path, kind) -> None:
    gdf = _sensors(3)
    if kind == "geojson":
        path = tmp_path / "s.geojson"
        gdf.to_file(path, driver="GeoJSON", engine="pyogrio")
        crs = None
    elif kind == "gpkg":
        path = tmp_path / "s.gpkg"
        gdf.to_crs(3405).to_file(path, driver="GPKG", engine="pyogrio", layer="tram")
        crs = None
    elif kind == "csv-wkt":
        path = tmp_path / "s.csv"
        df = pd.DataFrame(gdf.drop(columns="geometry"))
        df.insert(0, "WKT", gdf.to_crs(9209).geometry.to_wkt())
        df["threshold"] = ["8,5"] * 3  # Vietnamese decimal comma
        df.to_csv(path, index=False, encoding="utf-8-sig")
        crs = "EPSG:9209"
    else:
        path = tmp_path / "s.csv"
        df = pd.DataFrame(gdf.drop(columns="geometry"))
        df["kinh_do"], df["vi_do"] = gdf.geometry.x, gdf.geometry.y
        df.to_csv(path, index=False)
        crs = "EPSG:4326"
    rep = import_file(conn, path, ImportOptions("sensors", crs=crs), ADMIN)
    assert rep.ok and rep.inserted == 3, rep.to_json()
    x, y, threshold = conn.execute("SELECT ST_X(geom), ST_Y(geom), threshold FROM sensors WHERE code = %s",
                                   (gdf.code[0],)).fetchone()
    assert abs(x - gdf.geometry[0].x) < 1e-8 and abs(y - gdf.geometry[0].y) < 1e-8 and threshold == 8.5
    assert import_file(conn, path, ImportOptions("sensors", crs=crs), ADMIN).unchanged == 3


def _bad(conn, path: Path, words: list[str], **opts) -> None:
    rep = import_file(conn, path, ImportOptions("sensors", **opts), ADMIN)
    text = (rep.error or "") + " ".join(f"row {x.row}: {x.reason}" for x in rep.rejected)
    assert not rep.ok and not rep.committed, rep.to_json()
    for w in words:
        assert w.lower() in text.lower(), (w, text)
    assert _count(conn) == 0  # nothing imported


def test_bad_files_give_clear_errors_and_import_nothing(conn, tmp_path) -> None:
    gdf = _sensors()
    good = _shapefile_zip(gdf, tmp_path)
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    _bad(conn, truncated, ["zip", "truncated"])
    _bad(conn, _shapefile_zip(gdf, tmp_path, "noshx", skip=(".shx",)), [".shx", "noshx.shx"])
    _bad(conn, _shapefile_zip(gdf, tmp_path, "noprj", skip=(".prj",)), ["no CRS", "--crs"])
    _bad(conn, _shapefile_zip(gdf, tmp_path, "junkprj", prj="GEOGCS[nonsense"), ["unknown CRS"])
    # The 220 m trap: VN-2000 written by old software from a proj string without the shift.
    trap = ('PROJCS["unknown",GEOGCS["GCS_unknown",DATUM["D_Unknown_based_on_WGS_84_ellipsoid",'
            'SPHEROID["WGS_1984",6378137.0,298.257223563]],PRIMEM["Greenwich",0.0],'
            'UNIT["Degree",0.0174532925199433]],PROJECTION["Transverse_Mercator"],'
            'PARAMETER["False_Easting",500000.0],PARAMETER["False_Northing",0.0],'
            'PARAMETER["Central_Meridian",105.5],PARAMETER["Scale_Factor",0.9999],'
            'PARAMETER["Latitude_Of_Origin",0.0],UNIT["Meter",1.0]]')
    trapped = _shapefile_zip(gdf, tmp_path, "trap", prj=trap)
    _bad(conn, trapped, ["220 m", "EPSG:9209"])
    # ... which --crs confirms:
    rep = import_file(conn, trapped, ImportOptions("sensors", crs="EPSG:9209"), ADMIN)
    assert rep.ok and rep.inserted == 5 and any("--crs" in w for w in rep.warnings)
    conn.execute("DELETE FROM sensors WHERE code = ANY(%s)", (list(gdf.code),))
    # Mixed geometry types: the line is refused with its row number.
    mixed = gdf.copy()
    mixed.loc[3, "geometry"] = shapely.LineString([(106.0, 21.0), (106.1, 21.1)])
    path = tmp_path / "mixed.geojson"
    mixed.to_file(path, driver="GeoJSON", engine="pyogrio")
    _bad(conn, path, ["row 4", "LineString where layer sensors holds Points"])
    # Wrong attribute types and coded values, each with its row.
    wrong = pd.DataFrame(gdf.drop(columns="geometry"))
    wrong["WKT"] = gdf.geometry.to_wkt()
    wrong["threshold"] = wrong["threshold"].astype(object)
    wrong.loc[1, "threshold"] = "cao"
    wrong.loc[4, "status"] = "hỏng"
    path = tmp_path / "wrong.csv"
    wrong.to_csv(path, index=False)
    _bad(conn, path, ["row 2", "threshold: 'cao' is not a number", "row 5", "'hỏng' is not one of"],
         crs="EPSG:4326")
    # The database's own rules (code format), found row by row.
    rule = gdf.copy()
    rule.loc[2, "code"] = "SONG-1"
    path = tmp_path / "rule.geojson"
    rule.to_file(path, driver="GeoJSON", engine="pyogrio")
    _bad(conn, path, ["row 3", "sensors_code_check"])


def _tcvn3_shapefile(tmp_path: Path, names: list[str], name: str) -> Path:
    """A .dbf as pre-Unicode software wrote it: TCVN3 bytes, no .cpg."""
    gdf = _sensors(len(names))
    gdf["name"] = [tcvn3_encode_as_latin1(n) for n in names]
    d = tmp_path / f"tcvn-{name}"
    d.mkdir()
    gdf.to_crs(9209).to_file(d / f"{name}.shp", engine="pyogrio", encoding="ISO-8859-1")
    (d / f"{name}.cpg").unlink(missing_ok=True)
    z = tmp_path / f"{name}.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for p in d.iterdir():
            zf.write(p, p.name)
    return z


def test_tcvn3_dbf_detected_and_converted_or_refused(conn, tmp_path) -> None:
    # Plenty of Vietnamese text: certain, converted, with a warning.
    z = _tcvn3_shapefile(tmp_path, NAMES, "nhieu")
    rep = import_file(conn, z, ImportOptions("sensors"), ADMIN)
    assert rep.ok and rep.encoding == "tcvn3" and any("TCVN3" in w for w in rep.warnings), rep.to_json()
    stored = {r[0] for r in conn.execute("SELECT name FROM sensors WHERE code >= %s AND code < %s",
                                         (f"WAT-{BASE}", f"WAT-{BASE + 1000}"))}
    assert set(NAMES) <= stored
    conn.execute("DELETE FROM sensors WHERE code >= %s AND code < %s", (f"WAT-{BASE}", f"WAT-{BASE + 1000}"))
    # Too little text to be sure: refused with the hint, nothing imported ...
    few = _tcvn3_shapefile(tmp_path, ["Hải"], "it")
    _bad(conn, few, ["TCVN3", "--from-encoding tcvn3"])
    # ... and imported when the user says so.
    rep = import_file(conn, few, ImportOptions("sensors", from_encoding="tcvn3"), ADMIN)
    assert rep.ok and conn.execute("SELECT name FROM sensors WHERE code = %s",
                                   (f"WAT-{BASE}",)).fetchone()[0] == "Hải"


def test_exported_parcels_reimport_unchanged_without_new_versions(client, conn, keys, tmp_path) -> None:
    r = client.post("/api/exports", json={"layer": "parcels", "format": "shp", "crs": "EPSG:9209",
                                          "commune": "09244", "filter": "sheet_no = 2"},
                    headers=keys["land_officer"])
    assert r.status_code == 200
    z = tmp_path / "thua.zip"
    z.write_bytes(r.content)
    before = conn.execute("SELECT sum(version), (SELECT count(*) FROM parcel_history) FROM parcels "
                          "WHERE commune_code = '09244' AND sheet_no = 2").fetchone()
    rep = _upload(client, z, keys["land_officer"], layer="parcels").json()
    assert rep["ok"] and rep["inserted"] == rep["updated"] == 0 and rep["unchanged"] == rep["rows"] > 0, rep
    after = conn.execute("SELECT sum(version), (SELECT count(*) FROM parcel_history) FROM parcels "
                         "WHERE commune_code = '09244' AND sheet_no = 2").fetchone()
    assert before == after


def _parcels(tmp_path: Path, rows: list[dict], name: str) -> Path:
    rows = [dict(r) for r in rows]
    gdf = gpd.GeoDataFrame(rows, geometry=[r.pop("geometry") for r in rows], crs=4326)
    path = tmp_path / f"{name}.geojson"
    gdf.to_file(path, driver="GeoJSON", engine="pyogrio")
    return path


def _square(x: float, y: float, d: float = 0.0002) -> shapely.Polygon:
    return shapely.box(x, y, x + d, y + d)


def test_parcels_geometry_repair_and_database_rules(conn, tmp_path) -> None:
    bowtie = shapely.Polygon([(106.05, 21.05), (106.0502, 21.0502), (106.0502, 21.05), (106.05, 21.0502)])
    rows = [
        {"MAXA": "99998", "SOTO": 1, "SOTHUA": 1, "LOAIDAT": "ONT,CLN", "DIENTICH": 250.5,
         "NGUONGOC": "Công nhận quyền sử dụng đất", "geometry": _square(106.05, 21.05)},
        {"MAXA": "99998", "SOTO": 1, "SOTHUA": 2, "LOAIDAT": "LUC", "DIENTICH": 300.0,
         "geometry": bowtie},
    ]
    path = _parcels(tmp_path, rows, "thua")
    rep = import_file(conn, path, ImportOptions("parcels"), ADMIN)
    assert not rep.ok and [x.row for x in rep.rejected] == [2]
    assert "Self-intersection" in rep.rejected[0].reason
    rep = import_file(conn, path, ImportOptions("parcels", repair=True), ADMIN)
    assert rep.ok and rep.inserted == 2 and rep.repaired == 1, rep.to_json()
    origin, codes, valid = conn.execute(
        "SELECT origin, land_use_codes, ST_IsValid(geom) FROM parcels WHERE commune_code = '99998' "
        "AND parcel_no = 1").fetchone()
    assert origin == "recognition" and codes == ["ONT", "CLN"] and valid  # label -> code
    # Rules only the database knows: an unknown land-use code, a negative area. All or nothing.
    bad = [{"MAXA": "99998", "SOTO": 2, "SOTHUA": n, "LOAIDAT": code, "DIENTICH": area,
            "geometry": _square(106.06 + n * 0.001, 21.05)}
           for n, code, area in [(1, "ONT", 100.0), (2, "XYZ", 100.0), (3, "ONT", -5.0)]]
    rep = import_file(conn, _parcels(tmp_path, bad, "bad"), ImportOptions("parcels"), ADMIN)
    assert [x.row for x in rep.rejected] == [2, 3], rep.to_json()
    assert "XYZ" in rep.rejected[0].reason and "legal_area" in rep.rejected[1].reason
    assert conn.execute("SELECT count(*) FROM parcels WHERE commune_code = '99998' AND sheet_no = 2"
                        ).fetchone()[0] == 0
    # partial: the good row goes in, the others are reported.
    rep = import_file(conn, _parcels(tmp_path, bad, "bad2"), ImportOptions("parcels", partial=True), ADMIN)
    assert rep.committed and rep.inserted == 1 and rep.rejected_count == 2


def test_rights(client, keys, tmp_path) -> None:
    z = _shapefile_zip(_sensors(), tmp_path)
    assert _upload(client, z, {}, layer="sensors").status_code == 401
    assert _upload(client, z, keys["citizen"], layer="sensors").status_code == 403
    assert _upload(client, z, keys["operator"], layer="parcels").status_code == 403
    assert _upload(client, z, keys["citizen"], layer="incidents").status_code == 404
    # An operator may not plant the security events that are hidden from them.
    events = gpd.GeoDataFrame({
        "category": ["security_event", "fire"], "severity": [2, 2], "status": ["received", "received"],
        "source": ["hotline", "hotline"], "title": [f"Kiểm thử {RUN}"] * 2,
        "reported_at": ["2026-01-02T03:04:05Z"] * 2},
        geometry=gpd.points_from_xy([106.1, 106.1], [21.1, 21.1]), crs=4326)
    path = tmp_path / "events.geojson"
    events.to_file(path, driver="GeoJSON", engine="pyogrio")
    r = _upload(client, path, keys["operator"], layer="incidents", dry_run="true")
    assert r.status_code == 422 and r.json()["rejected"][0]["row"] == 1
    assert "security_officer" in r.json()["rejected"][0]["reason"]
    r = _upload(client, path, keys["security_officer"], layer="incidents", dry_run="true")
    assert r.status_code == 403  # security officers do not import incidents


def test_upload_errors_are_422_not_500(client, keys, tmp_path) -> None:
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"PK\x03\x04 not really a zip")
    r = _upload(client, junk, keys["operator"], layer="sensors")
    assert r.status_code == 422 and r.json()["error"] == ("junk.zip: không đọc được tệp zip (bị hỏng "
                                                          "hoặc không đầy đủ?)")
    text = tmp_path / "notes.docx"
    text.write_bytes(b"hello")
    r = _upload(client, text, {**keys["operator"], "Accept-Language": "en"}, layer="sensors")
    assert r.status_code == 422 and "unsupported" in r.json()["error"]


def test_cli_import_exit_codes(tmp_path, db_url) -> None:
    geoioc = str(Path(sys.executable).parent / "geoioc")
    env = {"GEOIOC_DATABASE_URL": db_url, "PATH": "/usr/bin:/bin", "COLUMNS": "200"}
    gdf = _sensors(2)
    gdf.loc[1, "geometry"] = shapely.Point(0, 0)  # far outside Vietnam
    path = tmp_path / "cli.geojson"
    gdf.to_file(path, driver="GeoJSON", engine="pyogrio")
    r = subprocess.run([geoioc, "import", str(path), "--layer", "sensors"], capture_output=True, text=True,
                       env=env, timeout=120)
    assert r.returncode == 3 and "outside Vietnam" in " ".join(r.stdout.split()), r.stdout + r.stderr
    missing = tmp_path / "none.zip"
    r = subprocess.run([geoioc, "import", str(missing), "--layer", "sensors"], capture_output=True,
                       text=True, env=env, timeout=120)
    assert r.returncode == 2 and "no such file" in " ".join(r.stderr.split())


def test_transform_reference() -> None:
    """The tests' VN-2000 positions come from pyproj through EPSG codes (transformation 6960)."""
    x, y = Transformer.from_crs(4326, 9209, always_xy=True).transform(106.07, 21.18)
    assert abs(x - 558990.566) < 0.01 and abs(y - 2342986.871) < 0.01


@pytest.mark.parametrize("crs", ["EPSG:4326", "EPSG:9209"])
def test_point_fast_path_agrees_with_shapely(monkeypatch, crs) -> None:
    """Files of 2D points are checked from their WKB bytes in numpy (no geometry objects); the
    outcome must be the one shapely's general path gives: same rows refused for the same
    reasons, same coordinates."""
    import numpy as np

    from gis.io import sourcecrs
    from gis.io.imports import geometry
    from layers.catalogue import get_layer

    to_file = Transformer.from_crs(4326, crs, always_xy=True)
    lon = [106.07, 106.1, 120.0, 105.9, 106.2]
    lat = [21.18, 21.0, 21.1, 21.05, float("nan")]
    x, y = to_file.transform(lon, lat)
    geoms = [*shapely.points(x, y), shapely.Point()]  # outside Vietnam, half NaN, empty
    wkb = np.array(shapely.to_wkb(geoms), dtype=object)
    assert geometry._wkb_points(wkb) is not None
    src = sourcecrs.resolve(None, crs)
    layer = get_layer("incidents")
    fast_errors: dict[int, list[str]] = {}
    fast = geometry.check_geometries(layer, wkb, src, False, fast_errors)
    monkeypatch.setattr(geometry, "_wkb_points", lambda _: None)
    slow_errors: dict[int, list[str]] = {}
    slow = geometry.check_geometries(layer, wkb, src, False, slow_errors)
    assert fast_errors == slow_errors
    assert sorted(fast_errors) == [2, 4, 5]
    assert "outside Vietnam" in fast_errors[2][0] and "empty" in fast_errors[5][0]
    assert [w is None for w in fast[0]] == [w is None for w in slow[0]]
    for a, b, lo, la in zip(fast[0][:2], slow[0][:2], lon, lat, strict=False):
        pa_, pb = shapely.from_wkb(a), shapely.from_wkb(b)
        assert pa_.equals_exact(pb, 1e-12)
        assert abs(pa_.x - lo) < 1e-8 and abs(pa_.y - la) < 1e-8
    assert not fast[1].any() and fast[2] == {}
    # Anything else (a 3D point, a missing geometry) goes the general way.
    assert geometry._wkb_points(np.array([shapely.to_wkb(shapely.Point(1, 2, 3))], dtype=object)) is None
    assert geometry._wkb_points(np.array([None, wkb[0]], dtype=object)) is None


def test_imported_features_show_in_tiles_at_once(client, conn, keys, tmp_path) -> None:
    """The tile cache forgets a layer when an import writes to it (no minute-old map)."""
    import mapbox_vector_tile
    from test_ogc_tiles import TILE, tile_of

    gdf = _sensors(1, offset=500)
    lon, lat = gdf.geometry.iloc[0].x, gdf.geometry.iloc[0].y
    x, y = tile_of(lon, lat, 15)
    url = TILE.format("sensors", 15, y, x)

    def codes() -> set[str]:
        r = client.get(url, headers=keys["operator"])
        assert r.status_code in (200, 204), r.text
        layer = mapbox_vector_tile.decode(r.content).get("sensors", {}) if r.content else {}
        features = layer.get("features", [])
        return {f["properties"]["code"] for f in features}

    assert gdf.code[0] not in codes()  # now cached without it
    path = tmp_path / "one.geojson"
    gdf.to_file(path, driver="GeoJSON", engine="pyogrio")
    r = _upload(client, path, keys["operator"], layer="sensors")
    assert r.status_code == 200 and r.json()["inserted"] == 1, r.text
    assert gdf.code[0] in codes()


def test_rejections_name_the_file_and_its_own_row_in_a_multi_file_zip(conn, tmp_path) -> None:
    """A zip of several shapefiles (as exports split by geometry type) is one import; a rejected
    row is numbered within its own file."""
    first, second = _sensors(3), _sensors(4, offset=10)
    second.loc[1, "kind"] = "volcano"
    d = tmp_path / "multi"
    d.mkdir()
    first.to_file(d / "a.shp", engine="pyogrio", encoding="UTF-8")
    second.to_file(d / "b.shp", engine="pyogrio", encoding="UTF-8")
    z = tmp_path / "multi.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for p in sorted(d.iterdir()):
            zf.write(p, p.name)
    rep = import_file(conn, z, ImportOptions("sensors"), ADMIN)
    assert not rep.committed and rep.rows == 7
    assert [(r.file, r.row) for r in rep.rejected] == [("multi.zip:b.shp", 2)]
    assert "volcano" in rep.rejected[0].reason
    assert _count(conn) == 0


def test_a_key_repeated_within_the_file_is_refused_naming_the_first_row(conn, tmp_path) -> None:
    """Two rows for one parcel (the empty pre-2025 commune counting as equal, as in the table's
    UNIQUE NULLS NOT DISTINCT) or one sensor code: every repeat is refused, naming its first."""
    rows = [{"MAXA": "99998", "SOTO": 3, "SOTHUA": n, "LOAIDAT": "ONT", "DIENTICH": 100.0,
             "geometry": _square(106.07 + i * 0.001, 21.05)} for i, n in enumerate([1, 2, 1, 3, 2, 1])]
    rep = import_file(conn, _parcels(tmp_path, rows, "repeat"), ImportOptions("parcels"), ADMIN)
    assert not rep.committed
    assert [(x.row, x.reason) for x in rep.rejected] == [
        (3, "same commune_code/old_commune_code/sheet_no/parcel_no 99998//3/1 as row 1"),
        (5, "same commune_code/old_commune_code/sheet_no/parcel_no 99998//3/2 as row 2"),
        (6, "same commune_code/old_commune_code/sheet_no/parcel_no 99998//3/1 as row 1")]
    gdf = _sensors(4)
    gdf.loc[3, "code"] = gdf.loc[1, "code"]
    gdf.loc[2, "kind"] = "volcano"  # a row refused for another reason is no first occurrence
    gdf.loc[0, "code"] = gdf.loc[2, "code"]
    path = tmp_path / "sensors.geojson"
    gdf.to_file(path, driver="GeoJSON", engine="pyogrio")
    rep = import_file(conn, path, ImportOptions("sensors"), ADMIN)
    assert [x.row for x in rep.rejected] == [3, 4]
    assert "volcano" in rep.rejected[0].reason and rep.rejected[1].reason.endswith("as row 2")
    assert _count(conn) == 0


def test_partial_import_keeps_going_past_the_diagnosis_limit(conn, tmp_path, monkeypatch) -> None:
    """A partial import whose file has more database-refused rows than one search looks for
    (MAX_DIAGNOSED) writes the good rows and reports every refused one: it used to end in the
    database's error (a 500 over the API)."""
    from gis.io.imports import write

    monkeypatch.setattr(write, "MAX_DIAGNOSED", 1)
    gdf = _sensors(6, offset=700)
    for i in (1, 3, 4):
        gdf.loc[i, "code"] = f"SONG-{i}"  # refused by the table's CHECK, not by the file checks
    path = tmp_path / "many-refused.geojson"
    gdf.to_file(path, driver="GeoJSON", engine="pyogrio")
    rep = import_file(conn, path, ImportOptions("sensors", partial=True), ADMIN)
    try:
        assert rep.ok and rep.committed, rep.to_json()
        assert rep.inserted == 3 and rep.rejected_count == 3
        assert sorted(r.row for r in rep.rejected) == [2, 4, 5]
        assert all("sensors_code_check" in r.reason for r in rep.rejected)
        stored = {r[0] for r in conn.execute("SELECT code FROM sensors WHERE code = ANY(%s)",
                                             (list(gdf.code),))}
        assert stored == {gdf.code[i] for i in (0, 2, 5)}
    finally:
        conn.execute("DELETE FROM sensors WHERE code = ANY(%s)", (list(gdf.code),))
