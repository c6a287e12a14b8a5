"""The cadastral extract's map: no label sits under the scale bar or the north arrow.

Three views of the same thing: the display list both documents draw (over many parcels), the
HTML extract as Chromium lays it out (label boxes measured by the browser, at 1366x768 and on a
phone, in Vietnamese and English), and the PDF as a reader finds its text (each text run's
position and font read back with pypdf). The parcels the browser and PDF tests open are the ones
where it matters: a neighbour large enough to carry its number lies under the scale bar.
"""

from __future__ import annotations

import io
import math

import pytest
import shapely
from chromium import launched

from gis.parcels import extract
from gis.parcels.fonts import ASCENT, DESCENT, text_width
from gis.settings import get_settings
from layers.access import ANONYMOUS

SRID = get_settings().province_srid
VIEWPORTS = {"desktop": {"width": 1366, "height": 768}, "phone": {"width": 390, "height": 844}}
FURNITURE = ("scalebar", "north")
MM = 72 / 25.4  # PDF points per millimetre


def furniture_boxes(drawing: extract.MapDrawing) -> dict[str, extract.Box]:
    return {role: extract._union([extract.item_box(it) for it in drawing.items if it.role == role])
            for role in FURNITURE}


def crowded(conn, limit: int) -> list[int]:
    """Parcels whose extract frame has a neighbour big enough for its number under the scale
    bar (where a label placed at the neighbour's centre would be hidden)."""
    out = []
    for (pid,) in conn.execute("SELECT id FROM parcels ORDER BY id LIMIT 60"):
        drawing = extract.build(conn, pid, ANONYMOUS, SRID).drawing
        zone = shapely.box(*furniture_boxes(drawing)["scalebar"])
        for it in drawing.items:
            if isinstance(it, extract.Shape) and it.role == "neighbour":
                polys = [shapely.Polygon(r) for r in it.rings if len(r) >= 4]
                if any(p.is_valid and p.intersection(zone).area > 20 for p in polys):
                    out.append(pid)
                    break
        if len(out) == limit:
            break
    assert len(out) == limit, "the sample has parcels with neighbours under the scale bar"
    return out


@pytest.fixture(scope="module")
def parcels(conn) -> list[int]:
    return crowded(conn, 3)


def test_display_list_keeps_labels_clear_of_scale_bar_and_north_arrow(conn) -> None:
    ids = [r[0] for r in conn.execute(
        "(SELECT id FROM parcels ORDER BY id LIMIT 120) UNION"
        " (SELECT DISTINCT ON (land_use_codes[1]) id FROM parcels ORDER BY land_use_codes[1], id)")]
    moved = 0
    for pid in ids:
        for lang in ("vi", "en"):
            d = extract.build(conn, pid, ANONYMOUS, SRID, lang=lang).drawing
            zones = furniture_boxes(d)
            for it in d.items:
                if isinstance(it, extract.Text) and it.role not in FURNITURE:
                    for role, zone in zones.items():
                        assert not extract.overlaps(extract.text_box(it), zone), (pid, lang, it, role)
            labels = [it for it in d.items if isinstance(it, extract.Text) and it.role == "vertex"]
            vertices = [it for it in d.items if isinstance(it, extract.Dot)]
            assert len(labels) == len(vertices)  # every vertex keeps its number
            moved += sum(1 for it in d.items if isinstance(it, extract.Text) and it.role == "neighbour"
                         and it.y > d.height - 12)
    assert moved > 0  # some numbers did go below the scale bar's top: the frame's corner is used


def _union(rects: list[dict]) -> tuple[float, float, float, float]:
    return (min(r["x"] for r in rects), min(r["y"] for r in rects),
            max(r["x"] + r["width"] for r in rects), max(r["y"] + r["height"] for r in rects))


@pytest.mark.slow
@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
@pytest.mark.parametrize("lang", ["vi", "en"])
def test_html_extract_labels_do_not_overlap_scale_bar(live_server, parcels, viewport, lang) -> None:
    with launched() as browser:
        page = browser.new_page(viewport=VIEWPORTS[viewport])
        try:
            for pid in parcels:
                page.goto(f"{live_server}/parcels/{pid}/extract.html?lang={lang}")
                boxes = page.eval_on_selector(
                    "svg.extract-map",
                    """svg => {
                      const r = (e) => { const b = e.getBoundingClientRect();
                        return {x: b.x, y: b.y, width: b.width, height: b.height, text: e.textContent,
                                cls: e.getAttribute('class') || ''}; };
                      return {svg: r(svg), all: [...svg.querySelectorAll('text, path, circle')].map(r)};
                    }""")
                svg = boxes["svg"]
                assert svg["x"] >= 0 and svg["x"] + svg["width"] <= VIEWPORTS[viewport]["width"] + 0.5
                items = boxes["all"]
                bar = _union([b for b in items if b["cls"] == "scalebar"])
                north = _union([b for b in items if b["cls"] == "north"])
                assert any(b["text"].startswith("Tỷ lệ 1:" if lang == "vi" else "Scale 1:") for b in items)
                labels = [b for b in items if b["text"] and b["cls"] not in FURNITURE]
                assert len(labels) > 10
                for b in labels:
                    box = (b["x"], b["y"], b["x"] + b["width"], b["y"] + b["height"])
                    for name, zone in (("scale bar", bar), ("north arrow", north)):
                        assert not extract.overlaps(box, zone), (pid, b, name, zone)
        finally:
            browser.close()


def _runs(data: bytes) -> list[tuple[str, list[float], float, bool]]:
    """Every text run of the PDF's first page: text, text-to-page matrix, size, bold."""
    from pypdf import PdfReader

    runs: list[tuple[str, list[float], float, bool]] = []

    def mult(m: list[float], n: list[float]) -> list[float]:
        a, b, c, d, e, f = m
        aa, bb, cc, dd, ee, ff = n
        return [a * aa + b * cc, a * bb + b * dd, c * aa + d * cc, c * bb + d * dd,
                e * aa + f * cc + ee, e * bb + f * dd + ff]

    def visit(text, cm, tm, font, size) -> None:
        if text.strip() and font:
            runs.append((text.strip(), mult(tm, cm), size, "Bold" in font.get("/BaseFont", "")))

    PdfReader(io.BytesIO(data)).pages[0].extract_text(visitor_text=visit)
    return runs


def _run_box(text: str, m: list[float], size: float, bold: bool) -> tuple[float, float, float, float]:
    w = text_width(text, size, bold)
    pad = extract.HALO_MM / 2 * MM
    corners = [(-pad, -DESCENT * size - pad), (w + pad, -DESCENT * size - pad),
               (w + pad, ASCENT * size + pad), (-pad, ASCENT * size + pad)]
    a, b, c, d, e, f = m
    xs = [a * x + c * y + e for x, y in corners]
    ys = [b * x + d * y + f for x, y in corners]
    return min(xs), min(ys), max(xs), max(ys)


def _check_pdf(drawing: extract.MapDrawing, data: bytes) -> int:
    """Assert no text run of the PDF's map overlaps the scale bar or north arrow; the number of
    runs checked."""
    runs = _runs(data)
    # Where the map lies on the page: the scale bar's label is where the display list says.
    label = next(it for it in drawing.items if isinstance(it, extract.Text) and it.role == "scalebar"
                 and it.anchor == "start")
    _, m, _, _ = next(r for r in runs if r[0] == label.text)
    ox, oy = m[4] - label.x * MM, m[5] - (drawing.height - label.y) * MM

    def page_box(box: extract.Box) -> tuple[float, float, float, float]:
        return (ox + box[0] * MM, oy + (drawing.height - box[3]) * MM,
                ox + box[2] * MM, oy + (drawing.height - box[1]) * MM)

    zones = {role: page_box(b) for role, b in furniture_boxes(drawing).items()}
    own = [(it.text, page_box(extract.text_box(it))) for it in drawing.items
           if isinstance(it, extract.Text) and it.role in FURNITURE]
    inside = [r for r in runs if ox <= r[1][4] <= ox + drawing.width * MM
              and oy <= r[1][5] <= oy + drawing.height * MM]
    checked = 0
    for text, matrix, size, bold in inside:
        box = _run_box(text, matrix, size, bold)
        if any(text == t and math.dist(box[:2], b[:2]) < 3 for t, b in own):
            continue  # the scale bar's and arrow's own text
        checked += 1
        for role, zone in zones.items():
            assert not extract.overlaps(box, zone), (text, box, role, zone)
    return checked


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_pdf_extract_labels_do_not_overlap_scale_bar(client, conn, parcels, lang) -> None:
    for pid in parcels:
        drawing = extract.build(conn, pid, ANONYMOUS, SRID, lang=lang).drawing
        assert _check_pdf(drawing, client.get(f"/parcels/{pid}/extract.pdf?lang={lang}").content) > 10
