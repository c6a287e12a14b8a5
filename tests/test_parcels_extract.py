"""Cadastral extracts: vertex coordinates equal pyproj's EPSG:9209 values to the millimetre, edges
and area follow from them, the map scale is a standard one that fits, HTML and PDF both work
(the PDF read back as text), and personal data appear only for those who may read them."""

from __future__ import annotations

import math
import re

import pytest
import shapely
from pyproj import Transformer

from gis.parcels import extract
from gis.settings import get_settings
from layers.access import ANONYMOUS, Principal

SRID = get_settings().province_srid
# Vietnamese numbers: decimal comma; X and Y without thousands separators, edges with them.
ROW = re.compile(r'<tr><td class="point">(\d+)</td><td>(\d+,\d{3})</td><td>(\d+,\d{3})</td>'
                 r'<td>([\d.]+,\d{3})</td></tr>')
# A row of the PDF's vertex table as its text reads: point, X (northing), Y (easting), edge.
PDF_ROW = re.compile(r"^(\d+)\s+(\d{7},\d{3})\s+(\d{6},\d{3})\s+[\d.]+,\d{3}\s*$", re.M)


def vn_number(text: str) -> float:
    return float(text.replace(".", "").replace(",", "."))


@pytest.fixture(scope="module")
def picks(conn) -> list[int]:
    """A spread of parcels of every land use (shapes differ), plus the biggest one."""
    ids = [r[0] for r in conn.execute(
        "SELECT DISTINCT ON (land_use_codes[1]) id FROM parcels ORDER BY land_use_codes[1], id").fetchall()]
    ids.append(conn.execute("SELECT id FROM parcels ORDER BY ST_Area(geom) DESC LIMIT 1").fetchone()[0])
    return ids


def _pyproj_rings(conn, pid: int) -> list[list[tuple[float, float]]]:
    """Every ring's distinct vertices as (northing, easting) by pyproj from the stored lon/lat."""
    (wkb,) = conn.execute("SELECT ST_AsBinary(geom) FROM parcels WHERE id = %s", (pid,)).fetchone()
    t = Transformer.from_crs(4326, SRID, always_xy=True)
    rings = []
    for poly in shapely.get_parts(shapely.from_wkb(bytes(wkb))):
        for ring in [poly.exterior, *poly.interiors]:
            pts = []
            coords = list(ring.coords)[:-1]
            for i, (lon, lat) in enumerate(coords):
                if i and coords[i - 1] == (lon, lat):
                    continue  # stored twice in a row
                e, n = t.transform(lon, lat)
                pts.append((n, e))
            if len(pts) > 1 and coords[-1] == coords[0]:
                pts.pop()  # repeated across the ring's start (stored [A, ..., A, A])
            rings.append(pts)
    return rings


def test_html_vertex_table_equals_pyproj_to_the_millimetre(client, conn, picks) -> None:
    for pid in picks:
        r = client.get(f"/parcels/{pid}/extract.html")
        assert r.status_code == 200, r.text
        rows = [(int(a), vn_number(x), vn_number(y), vn_number(e)) for a, x, y, e in ROW.findall(r.text)]
        expected = [p for ring in _pyproj_rings(conn, pid) for p in ring]
        assert len(rows) == len(expected), pid
        assert [row[0] for row in rows] == list(range(1, len(rows) + 1))
        printed = {(f"{x:.3f}", f"{y:.3f}") for _, x, y, _ in rows}
        # Equal to pyproj's values rounded to the millimetre, X = northing, Y = easting.
        assert printed == {(f"{n:.3f}", f"{e:.3f}") for n, e in expected}, pid
        # Each edge is the distance to the next point of the ring (printed values, 3 decimals).
        ex = extract.build(conn, pid, ANONYMOUS, SRID)
        for ring in ex.rings:
            vs = ring.vertices
            for i, v in enumerate(vs):
                w = vs[(i + 1) % len(vs)]
                assert abs(v.edge - math.hypot(w.x - v.x, w.y - v.y)) < 1e-6
                assert v.next_label == w.label
        # Labelled as Vietnamese surveyors read them.
        for label in ("TRÍCH LỤC BẢN ĐỒ ĐỊA CHÍNH", "<th>Điểm</th>", "<th>X (m)</th>", "<th>Y (m)</th>",
                      "<th>Cạnh (m)</th>", "DỮ LIỆU MẪU TỔNG HỢP", "X: tọa độ Bắc, Y: tọa độ Đông",
                      f"EPSG:{SRID}", "<svg"):
            assert label in r.text, (pid, label)


def test_extract_data_equals_pyproj_and_postgis_area(conn, picks) -> None:
    for pid in picks:
        ex = extract.build(conn, pid, ANONYMOUS, SRID)
        rings = _pyproj_rings(conn, pid)
        assert len(ex.rings) == len(rings)
        for got, want in zip(ex.rings, rings, strict=True):
            pts = [(v.x, v.y) for v in got.vertices]
            assert len(pts) == len(want)
            for n, e in pts:
                assert min(math.hypot(n - wn, e - we) for wn, we in want) < 1e-6
            # Clockwise with north up (negative shoelace in easting/northing) from the NW corner.
            twice = sum(a[1] * b[0] - b[1] * a[0] for a, b in zip(pts, pts[1:] + pts[:1], strict=True))
            assert twice < 0
            west, north = min(p[1] for p in pts), max(p[0] for p in pts)
            d0 = math.hypot(pts[0][1] - west, north - pts[0][0])
            assert all(d0 <= math.hypot(e - west, north - n) + 1e-9 for n, e in pts)
        area = conn.execute("SELECT ST_Area(ST_Transform(geom, %s)) FROM parcels WHERE id = %s",
                            (SRID, pid)).fetchone()[0]
        assert abs(ex.computed_area - area) < 0.01
        # The scale is a standard one at which the parcel fits the frame with a margin.
        assert ex.drawing.scale in extract.STANDARD_SCALES
        xs = [v.y for r in ex.rings for v in r.vertices]
        ys = [v.x for r in ex.rings for v in r.vertices]
        w_mm = (max(xs) - min(xs)) * 1000 / ex.drawing.scale
        h_mm = (max(ys) - min(ys)) * 1000 / ex.drawing.scale
        assert w_mm <= extract.MAP_W_MM * extract.FILL_SHARE and h_mm <= extract.MAP_H_MM * extract.FILL_SHARE
        smaller = [s for s in extract.STANDARD_SCALES if s < ex.drawing.scale]
        if smaller:  # the largest scale that fits was chosen
            s = smaller[-1]
            assert (max(xs) - min(xs)) * 1000 / s > extract.MAP_W_MM * extract.FILL_SHARE or \
                (max(ys) - min(ys)) * 1000 / s > extract.MAP_H_MM * extract.FILL_SHARE


def test_extract_map_shows_neighbour_numbers(client, conn, picks) -> None:
    pid = picks[0]
    body = client.get(f"/api/parcels/{pid}").json()
    html = client.get(f"/parcels/{pid}/extract.html").text
    svg = html[html.index("<svg"):html.index("</svg>")]
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    for n in body["neighbours"]:
        label = str(n["parcel_no"])
        assert any(t == label or t.startswith(label + " (") for t in texts), (n, texts)
    assert any(t.startswith("Tỷ lệ 1:") for t in texts) and "B" in texts  # scale bar, north arrow


def pdf_text(data: bytes) -> str:
    """The text a reader gets out of the PDF (pypdf reads the embedded fonts' Unicode maps)."""
    import io
    import unicodedata

    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    return unicodedata.normalize("NFC", "\n".join(page.extract_text() for page in reader.pages))


def test_pdf_extract(client, conn, picks) -> None:
    for pid in picks[:5]:
        r = client.get(f"/parcels/{pid}/extract.pdf")
        assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
        assert r.content.startswith(b"%PDF-") and r.content.rstrip().endswith(b"%%EOF")
        assert b"DejaVuSans" in r.content  # the Vietnamese-capable font is embedded
        assert "trich-luc-" in r.headers["content-disposition"]
        assert "TRÍCH LỤC BẢN ĐỒ ĐỊA CHÍNH" in pdf_text(r.content)
    r = client.get(f"/parcels/{picks[0]}/extract.pdf?lang=en")
    assert r.status_code == 200 and "CADASTRAL MAP EXTRACT" in pdf_text(r.content)


def test_pdf_text_has_the_vertex_table(client, conn, picks) -> None:
    """The PDF's own text holds the vertex table: every vertex numbered in order with X (northing)
    and Y (easting) in VN-2000 as pyproj computes them from the stored geometry, to the mm."""
    for pid in picks[:4]:
        text = pdf_text(client.get(f"/parcels/{pid}/extract.pdf").content)
        expected = [p for ring in _pyproj_rings(conn, pid) for p in ring]
        rows = PDF_ROW.findall(text)
        assert [int(n) for n, _, _ in rows] == list(range(1, len(expected) + 1)), (pid, text[-1500:])
        assert {(vn_number(x), vn_number(y)) for _, x, y in rows} == {
            (round(n, 3), round(e, 3)) for n, e in expected}, pid
        assert f"EPSG:{SRID}" in text and "VN-2000" in text and "BẢNG TỌA ĐỘ" in text, pid


def test_personal_data_only_for_land_officers(client, conn, keys) -> None:
    pid, name = conn.execute("SELECT id, land_user FROM parcels WHERE land_user_id IS NOT NULL"
                             " ORDER BY id LIMIT 1").fetchone()
    for profile in ("anonymous", "citizen", "operator", "security_officer", "leader", "land_officer",
                    "admin"):
        shown = profile in ("land_officer", "admin")
        html = client.get(f"/parcels/{pid}/extract.html", headers=keys[profile])
        assert html.status_code == 200 and (name in html.text) == shown, profile
        pdf = client.get(f"/parcels/{pid}/extract.pdf", headers=keys[profile])
        assert pdf.status_code == 200
        assert (name in pdf_text(pdf.content)) == shown, profile
    ex = extract.build(conn, pid, Principal("x", frozenset({"land_officer"})), SRID)
    assert ex.properties["land_user"] == name
    assert "land_user" not in extract.build(conn, pid, ANONYMOUS, SRID).properties


def test_extract_as_of_and_english(client, conn, picks) -> None:
    pid = picks[0]
    (since,) = conn.execute("SELECT updated_at FROM parcels WHERE id = %s", (pid,)).fetchone()
    r = client.get(f"/parcels/{pid}/extract.html?lang=en&as_of=2000-01-01")
    assert r.status_code == 404 and "did not exist" in r.json()["detail"]
    r = client.get(f"/parcels/{pid}/extract.html?lang=en&as_of={since.isoformat().replace('+', '%2B')}")
    assert r.status_code == 200 and "CADASTRAL MAP EXTRACT" in r.text and "Parcel as it was at" in r.text
