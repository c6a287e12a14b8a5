"""The cadastral extract as a PDF (A4), drawn with reportlab from the same Extract and map
display list as the HTML, in DejaVu Sans (Vietnamese diacritics; Debian package
fonts-dejavu-core, which scripts/setup.sh installs)."""

from __future__ import annotations

import io
import threading
from functools import lru_cache
from pathlib import Path

from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from gis.parcels.extract import (
    TEXTS,
    Dot,
    Extract,
    MapDrawing,
    Shape,
    Text,
    document_lines,
    extract_number,
    issued_text,
    ring_caption,
    vertex_cells,
)
from gis.parcels.fonts import FONT_DIRS

REGULAR, BOLD = "DejaVuSans", "DejaVuSans-Bold"
_lock = threading.Lock()


class FontMissing(RuntimeError):
    pass


@lru_cache
def _fonts() -> tuple[str, str]:
    """Register DejaVu Sans once per process (reportlab's registry is global)."""
    with _lock:
        for d in FONT_DIRS:
            regular, bold = Path(d) / "DejaVuSans.ttf", Path(d) / "DejaVuSans-Bold.ttf"
            if d and regular.is_file() and bold.is_file():
                pdfmetrics.registerFont(TTFont(REGULAR, str(regular)))
                pdfmetrics.registerFont(TTFont(BOLD, str(bold)))
                # <b>/<i> in paragraphs need the family (no italic face: regular stands in).
                pdfmetrics.registerFontFamily(REGULAR, normal=REGULAR, bold=BOLD, italic=REGULAR,
                                              boldItalic=BOLD)
                return REGULAR, BOLD
    raise FontMissing("DejaVu Sans not found (install fonts-dejavu-core or set GEOIOC_FONT_DIR)")


class MapFlowable(Flowable):
    """The map display list at its paper size (mm), y flipped for PDF."""

    def __init__(self, drawing: MapDrawing) -> None:
        super().__init__()
        self.d = drawing
        self.width, self.height = drawing.width * mm, drawing.height * mm

    def wrap(self, available_width: float, available_height: float) -> tuple[float, float]:
        return self.width, self.height

    def draw(self) -> None:
        c = self.canv
        h = self.d.height

        def pt(x: float, y: float) -> tuple[float, float]:
            return x * mm, (h - y) * mm

        c.saveState()
        clip = c.beginPath()
        clip.rect(0, 0, self.width, self.height)
        c.clipPath(clip, stroke=0, fill=0)
        for it in self.d.items:
            if isinstance(it, Shape):
                path = c.beginPath()
                for ring in it.rings:
                    if not ring:
                        continue
                    path.moveTo(*pt(*ring[0]))
                    for x, y in ring[1:]:
                        path.lineTo(*pt(x, y))
                    if it.closed:
                        path.close()
                c.setStrokeColor(colors.HexColor(it.stroke))
                c.setLineWidth(it.width * mm)
                c.setDash([v * mm for v in it.dash] if it.dash else [])
                if it.fill:
                    c.setFillColor(colors.HexColor(it.fill))
                c.drawPath(path, stroke=1, fill=1 if it.fill else 0, fillMode=0)
            elif isinstance(it, Dot):
                c.setFillColor(colors.HexColor(it.fill))
                c.circle(*pt(it.x, it.y), it.r * mm, stroke=0, fill=1)
            elif isinstance(it, Text):
                self._text(it, pt)
        c.restoreState()

    def _text(self, it: Text, pt) -> None:
        c = self.canv
        font = BOLD if it.bold else REGULAR
        size = it.size * mm
        x, y = pt(it.x, it.y)
        width = pdfmetrics.stringWidth(it.text, font, size)
        dx = {"start": 0.0, "middle": -width / 2, "end": -width}[it.anchor]
        c.saveState()
        c.translate(x, y)
        if it.angle:
            c.rotate(-it.angle)
        passes = [(1, "#ffffff"), (0, it.fill)] if it.halo else [(0, it.fill)]
        for mode, color in passes:
            # The text render mode is graphics state: each pass in its own q/Q, or the fill
            # pass would inherit the halo's stroke mode.
            c.saveState()
            t = c.beginText(dx, 0)
            t.setFont(font, size)
            t.setTextRenderMode(mode)
            c.setStrokeColor(colors.HexColor(color))
            c.setFillColor(colors.HexColor(color))
            c.setLineWidth(0.5 * mm)
            t.textOut(it.text)
            c.drawText(t)
            c.restoreState()
        c.restoreState()


def render(ex: Extract, lang: str = "vi") -> bytes:
    regular, bold = _fonts()
    t = TEXTS[lang]
    base = ParagraphStyle("base", fontName=regular, fontSize=9.5, leading=12)
    small = ParagraphStyle("small", parent=base, fontSize=8, leading=10)
    center = ParagraphStyle("center", parent=base, alignment=TA_CENTER)
    center_bold = ParagraphStyle("center_bold", parent=center, fontName=bold)
    title = ParagraphStyle("title", parent=center_bold, fontSize=15, leading=19, spaceBefore=4)
    warn = ParagraphStyle("warn", parent=center_bold, fontSize=9, textColor=colors.HexColor("#b00000"))
    heading = ParagraphStyle("heading", parent=base, fontName=bold, spaceBefore=5, spaceAfter=2)

    def esc(s: str) -> str:
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    story: list[Flowable] = []
    header = Table(
        [[Paragraph(f"{t['office']}<br/>{t['number']}: {esc(extract_number(ex))}", center_bold),
          Paragraph(f"{t['nation']}<br/><u>{t['motto']}</u>", center_bold)]],
        colWidths=[72 * mm, 98 * mm])
    header.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"),
                                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                                ("RIGHTPADDING", (0, 0), (-1, -1), 0)]))
    story += [header, Paragraph(t["title"], title), Paragraph(t["synthetic"], warn), Spacer(1, 3 * mm)]
    rows = [[Paragraph(esc(label) + ":", small), Paragraph(esc(value), base)]
            for label, value in document_lines(ex, lang)]
    info = Table(rows, colWidths=[55 * mm, 115 * mm])
    info.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"),
                              ("TOPPADDING", (0, 0), (-1, -1), 0.6),
                              ("BOTTOMPADDING", (0, 0), (-1, -1), 0.6),
                              ("LEFTPADDING", (0, 0), (-1, -1), 0)]))
    story.append(info)
    if ex.area_flagged:
        story.append(Paragraph(t["area_flag"], ParagraphStyle("flag", parent=small,
                                                              textColor=colors.HexColor("#b00000"))))
    story += [Paragraph(t["map"], heading), MapFlowable(ex.drawing), Paragraph(t["table"], heading)]
    data: list[list[str]] = [[t["point"], t["x"], t["y"], t["edge"]]]
    spans = []
    for ring in ex.rings:
        caption = ring_caption(ring, ex, lang)
        if caption:
            spans.append(len(data))
            data.append([caption, "", "", ""])
        for v in ring.vertices:
            data.append(list(vertex_cells(v, lang)))
    table = Table(data, colWidths=[20 * mm, 40 * mm, 40 * mm, 30 * mm], repeatRows=1)
    style = [("FONTNAME", (0, 0), (-1, -1), regular), ("FONTNAME", (0, 0), (-1, 0), bold),
             ("FONTSIZE", (0, 0), (-1, -1), 8.5), ("ALIGN", (0, 0), (-1, -1), "RIGHT"),
             ("ALIGN", (0, 0), (0, -1), "CENTER"), ("ALIGN", (0, 0), (-1, 0), "CENTER"),
             ("GRID", (0, 0), (-1, -1), 0.4, colors.black),
             ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee")),
             ("TOPPADDING", (0, 0), (-1, -1), 1), ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5)]
    for i in spans:
        style += [("SPAN", (0, i), (-1, i)), ("ALIGN", (0, i), (-1, i), "LEFT"),
                  ("FONTNAME", (0, i), (-1, i), bold)]
    table.setStyle(TableStyle(style))
    story += [table, Paragraph(t["axes"], small), Spacer(1, 4 * mm)]
    sign = Table(
        [[Paragraph(f"<b>{t['drawer']}</b><br/>{t['sign']}", center),
          Paragraph(f"<i>{esc(issued_text(ex, lang))}</i><br/><b>{t['head']}</b><br/>{t['sign_head']}",
                    center)]],
        colWidths=[70 * mm, 100 * mm])
    story.append(sign)
    buf = io.BytesIO()
    doc = SimpleDocTemplate(
        buf, pagesize=A4, leftMargin=20 * mm, rightMargin=20 * mm, topMargin=14 * mm,
        bottomMargin=14 * mm, title=f"{t['title']} – {ex.commune['code']}/{ex.sheet_no}/{ex.parcel_no}",
        author="GeoIOC", subject=t["synthetic"], creator="GeoIOC")
    doc.build(story, onFirstPage=_footer(t, regular), onLaterPages=_footer(t, regular))
    return buf.getvalue()


def _footer(t: dict[str, str], font: str):
    def draw(canvas, doc) -> None:
        canvas.saveState()
        canvas.setFont(font, 7)
        canvas.setFillColor(colors.HexColor("#777777"))
        canvas.drawString(20 * mm, 8 * mm, f"GeoIOC – {t['synthetic']}")
        canvas.drawRightString(190 * mm, 8 * mm, str(doc.page))
        canvas.restoreState()

    return draw
