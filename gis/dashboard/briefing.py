"""The weekly briefing: one A4 PDF in Vietnamese for the province or one commune, from the
dashboard's own figures (gis/analysis/dashboard.py): the week's KPIs, a chart of the last
twelve weeks by category, incidents by hour and day of week, the largest changes per commune
and per category against the previous week, the open reports past their deadline, a small
map of the week's incidents, and the unit's socio-economic indicators that changed most between
their two latest periods (gis.indicators.service.top_changes: relative change, direction, unit
of measure and both periods, the Vietnamese name first and the English one beneath it).

Drawn with reportlab alone (its graphics for the charts, plain vectors for the map: commune
outlines and points from their coordinates, no basemap tiles, so it works offline and prints
sharp), in DejaVu Sans for the diacritics (gis/parcels/pdf.py registers it).

Personal data: the overdue list carries the report's number, category, commune, agency, status
and dates; never the reporter, the title or the description (a briefing is printed and passed
around).

Made on demand (GET /api/dashboard/briefing.pdf, for the caller's view) and by the schedule
(gis/dashboard/jobs.py: Mondays 07:00 Vietnam time, the province's previous week, for
the leaders' view: security events included). Scheduled ones are files under
.geoioc/briefings/ (as exports are under .geoioc/exports/), each with a JSON note of what it is
and for which view; a caller who may not see every row is not shown a briefing made for the
whole view.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.shapes import Circle, Drawing, Polygon, PolyLine, Rect, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import (
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from gis import dashboard as board
from gis import fmt
from gis.analysis import dashboard as dash
from gis.analysis import dashboard_queries as q
from gis.analysis.incidents import INCIDENTS, IncidentFilter
from gis.indicators import periods as indicator_periods
from gis.indicators import service as indicator_service
from gis.parcels.pdf import _fonts
from layers.access import Principal, row_filter
from layers.catalogue import INCIDENT_CATEGORIES, INCIDENT_COLORS, INCIDENT_STATUSES
from layers.model import Layer

TITLE = "BẢN TIN TUẦN"
TREND_WEEKS = 12
OVERDUE_ROWS = 25
INDICATOR_ROWS = 10  # the indicators that changed most between their two latest periods
MAP_POINTS = 5000
HOTSPOT_WEEKS = 4  # the hot-spot map reads the four weeks up to the briefing's week's end
HOTSPOT_CELL_M = 1000  # as on the dashboard
NAME_PATTERN = r"^ban-tin-(tinh|[0-9]{5})-[0-9]{4}-W[0-9]{2}\.pdf$"
_NAME = re.compile(NAME_PATTERN)
# The view a scheduled briefing is made for: the leaders' (every row of the incidents layer).
SCHEDULE_PRINCIPAL = Principal("system:briefing", frozenset({"leader"}))
WEEKDAYS = ("T2", "T3", "T4", "T5", "T6", "T7", "CN")


def last_whole_week(now: dt.datetime) -> dt.date:
    """The Monday of the last week that is over (Vietnam time)."""
    return dash.week_of(dash.vn_today(now)) - dash.WEEK


def sunday_after(monday: dt.date) -> dt.date:
    """The day after the week of MONDAY: indicator periods begun before it are the briefing's."""
    return monday + dash.WEEK


def file_name(code: str | None, monday: dt.date) -> str:
    return f"ban-tin-{code or 'tinh'}-{dash.week_label(monday)}.pdf"


# --- the figures -------------------------------------------------------------------------------


def figures(conn: psycopg.Connection, who: Principal, monday: dt.date, code: str | None,
            now: dt.datetime) -> dict[str, Any]:
    """Everything the briefing prints, for WHO's view."""
    restrict = row_filter(INCIDENTS, who)
    weeks = dash.Weeks.of(monday, now)
    week_f = IncidentFilter(*weeks.current)
    scope = dash.Scope(week_f, commune=code)
    trend_start = dash.vn_midnight(monday - dash.WEEK * (TREND_WEEKS - 1))
    trend = dash.Scope(IncidentFilter(trend_start, weeks.current[1]), commune=code)
    prev_scope = dash.Scope(IncidentFilter(*weeks.previous), commune=code)
    unit_name = dash.commune_name(conn, code) if code else dash.province(conn)[1]
    this_cats = dash.by_category(conn, scope, restrict)
    prev_cats = dash.by_category(conn, prev_scope, restrict)
    cat_changes = _category_changes(this_cats, prev_cats)
    cond, params = scope.cond(restrict)
    points = conn.execute(q.POINTS.format(cond=cond), [*params, MAP_POINTS]).fetchall()
    outlines = [json.loads(r[0]) for r in conn.execute(q.OUTLINES, {"code": code})]
    province_maps = {} if code else {"rates": _rates(conn, who, week_f, restrict),
                                     "hotspots": _hotspots(conn, who, weeks, restrict)}
    return {
        **province_maps,
        "unit": {"code": code, "name": unit_name or ""},
        "kpis": board.kpis(conn, scope, restrict, monday, now, who),
        "trend": dash.by_category(conn, trend, restrict),
        "hours": dash.hour_weekday(conn, scope, restrict),
        "communes": None if code else dash.communes(conn, scope, restrict, top=10,
                                                    order="change"),
        "categories": cat_changes,
        "overdue": dash.overdue(conn, scope, restrict, now, limit=OVERDUE_ROWS),
        "indicators": indicator_service.top_changes(
            conn, who, code, dash.vn_today(now), sunday_after(monday), limit=INDICATOR_ROWS),
        "points": points, "outlines": outlines, "now": now, "weeks": weeks,
    }


def _rates(conn: psycopg.Connection, who: Principal, f: IncidentFilter,
            restrict: Any) -> dict[str, Any]:
    """The week's incidents per 1,000 residents per current commune, classed by natural breaks
    (gis.analysis.density: the same numbers as /api/incidents/rates)."""
    import numpy as np

    from gis.analysis import density as D
    from layers.catalogue import get_layer

    units = row_filter(get_layer("admin_units"), who, alias="admin_units")
    r = D.unit_rates(conn, f, restrict, units, dash.vn_today(f.end - dt.timedelta(seconds=1)),
                     with_geometry=True)
    values = r.per_1000
    bins = D.class_breaks(values[np.isfinite(values)], "natural_breaks", 5)
    cls = D.class_of(np.nan_to_num(values, nan=-1.0), bins)
    return {"geometry": [json.loads(g) for g in r.geometry or []],
            "classes": [int(c) if np.isfinite(v) else -1 for c, v in zip(cls, values, strict=True)],
            "breaks": [round(b, 3) for b in bins], "colors": D.ramp(len(bins)),
            "total": int(r.counts.sum())}


def _hotspots(conn: psycopg.Connection, who: Principal, weeks: dash.Weeks,
              restrict: Any) -> dict[str, Any] | None:
    """Gi* hot and cold spots of the HOTSPOT_WEEKS weeks up to the week's end on 1 km hexagons
    over the province (gis.analysis.hotspots, as /api/incidents/hotspots); None when the grid
    cannot be made (no province the caller may read)."""
    import shapely

    from gis.analysis import hotspot_queries as hq
    from gis.analysis import hotspots as hs
    from gis.settings import get_settings
    from layers.catalogue import get_layer

    srid = get_settings().province_srid
    end = weeks.current[1]
    f = IncidentFilter(end - dash.WEEK * HOTSPOT_WEEKS, end)
    units = row_filter(get_layer("admin_units"), who, alias="admin_units")
    area = hq.study_area(conn, srid, None, hs.window_day(f.end), units)
    if area is None:
        return None
    grid = hs.load_grid(conn, f, restrict, srid, area, "hexagon", HOTSPOT_CELL_M, "weekly")
    h = hs.hot_spots(grid, None)
    geoms = [json.loads(g) for g in shapely.to_geojson(grid.cells.geometry.to_numpy())]
    return {"geometry": geoms, "classes": [hs.CLASS_NAMES[int(b)] for b in h.gi_bin],
            "summary": h.summary, "start": f.start, "end": f.end,
            "colors": hs.CLASS_COLORS, "titles": hs.CLASS_TITLES}


def _category_changes(cur: dict[str, Any], prev: dict[str, Any]) -> list[dict[str, Any]]:
    before = {s["category"]: sum(s["counts"]) for s in prev["series"]}
    now = {s["category"]: sum(s["counts"]) for s in cur["series"]}
    rows = [{"category": c, "current": now.get(c, 0), "previous": before.get(c, 0)}
            for c in INCIDENT_CATEGORIES if c in now or c in before]
    for r in rows:
        r["difference"] = r["current"] - r["previous"]
        r["change"] = dash.change(r["current"], r["previous"])
    rows.sort(key=lambda r: (-abs(r["difference"]), r["category"]))
    return rows


# --- the document ------------------------------------------------------------------------------


def build(conn: psycopg.Connection, who: Principal, monday: dt.date, code: str | None, *,
          now: dt.datetime | None = None) -> bytes:
    """The briefing of the week starting MONDAY for the commune CODE (None: the province), as
    WHO may see it."""
    return render(figures(conn, who, monday, code, now or dt.datetime.now(dt.UTC)))


def _styles() -> dict[str, ParagraphStyle]:
    regular, bold = _fonts()
    return {
        "title": ParagraphStyle("title", fontName=bold, fontSize=16, leading=20, spaceAfter=2),
        "sub": ParagraphStyle("sub", fontName=regular, fontSize=10, leading=13,
                              textColor=colors.HexColor("#444444")),
        "h": ParagraphStyle("h", fontName=bold, fontSize=11.5, leading=15, spaceBefore=8,
                            spaceAfter=4),
        "p": ParagraphStyle("p", fontName=regular, fontSize=8.5, leading=11),
        "cell": ParagraphStyle("cell", fontName=regular, fontSize=8, leading=10),
        "small": ParagraphStyle("small", fontName=regular, fontSize=7, leading=9,
                                textColor=colors.HexColor("#555555")),
    }


def _n(value: Any, decimals: int = 0) -> str:
    return fmt.number(value, "vi", decimals) if value is not None else "–"


def _pct(value: float | None) -> str:
    if value is None:
        return "–"
    return ("+" if value > 0 else "") + fmt.number(value, "vi", 1) + " %"


def _table(rows: Sequence[Sequence[Any]], widths: Sequence[float], header: bool = True,
           align_right_from: int = 1) -> Table:
    regular, bold = _fonts()
    t = Table([list(r) for r in rows], colWidths=list(widths), repeatRows=1 if header else 0)
    style = [("FONTNAME", (0, 0), (-1, -1), regular), ("FONTSIZE", (0, 0), (-1, -1), 8),
             ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#bbbbbb")),
             ("ALIGN", (align_right_from, 0), (-1, -1), "RIGHT"),
             ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
             ("TOPPADDING", (0, 0), (-1, -1), 2), ("BOTTOMPADDING", (0, 0), (-1, -1), 2)]
    if header:
        style += [("FONTNAME", (0, 0), (-1, 0), bold),
                  ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef7"))]
    t.setStyle(TableStyle(style))
    return t


def _kpi_table(k: dict[str, Any]) -> Table:
    inc, rep, proc, al = k["incidents"], k["reports"], k["processing"], k["alerts"]
    rows = [
        ["Chỉ số", "Tuần này", "Tuần trước", "Cùng kỳ năm trước", "So tuần trước",
         "So cùng kỳ"],
        ["Số sự cố, vụ việc", _n(inc["current"]), _n(inc["previous"]), _n(inc["year_ago"]),
         _pct(inc["change_vs_previous"]), _pct(inc["change_vs_year_ago"])],
        ["Phản ánh đang xử lý (hiện tại)", _n(rep["open"]), "", "", "", ""],
        ["Phản ánh quá hạn (hiện tại)", _n(rep["overdue"]), "", "", "", ""],
        ["Thời gian xử lý trung vị (giờ)", _n(proc["median_hours"], 2),
         _n(proc["previous_median_hours"], 2), "", _pct(proc["change_vs_previous"]), ""],
        ["Phản ánh tiếp nhận / đã trả lời", f"{_n(proc['received'])} / {_n(proc['answered'])}",
         "", "", "", ""],
        ["Cảnh báo cảm biến đang mở (hiện tại)", _n(al["open"]) if al else "–", "", "", "", ""],
    ]
    return _table(rows, [62 * mm, 22 * mm, 22 * mm, 28 * mm, 22 * mm, 22 * mm])


def _color(category: str) -> colors.Color:
    return colors.HexColor(INCIDENT_COLORS.get(category, "#888888"))


def _trend_chart(trend: dict[str, Any], width: float, height: float) -> Drawing:
    """Stacked bars: incidents per week (x: the week's Monday, dd/mm) and category (y: count)."""
    regular, _ = _fonts()
    d = Drawing(width, height)
    chart = VerticalBarChart()
    chart.x, chart.y, chart.width, chart.height = 38, 42, width - 160, height - 62
    series = trend["series"] or [{"category": "none", "counts": [0] * len(trend["buckets"])}]
    chart.data = [tuple(s["counts"]) for s in series]
    chart.categoryAxis.style = "stacked"
    chart.categoryAxis.categoryNames = [f"{b[8:10]}/{b[5:7]}" for b in trend["buckets"]]
    chart.categoryAxis.labels.fontName = regular
    chart.categoryAxis.labels.fontSize = 6.5
    chart.categoryAxis.labels.angle = 0
    chart.valueAxis.labels.fontName = regular
    chart.valueAxis.labels.fontSize = 7
    chart.valueAxis.valueMin = 0
    chart.valueAxis.labelTextFormat = lambda v: fmt.number(v, "vi", 0)
    chart.bars.strokeWidth = 0
    for i, s in enumerate(series):
        chart.bars[i].fillColor = _color(s["category"])
    d.add(chart)
    d.add(String(4, height - 12, "Số sự cố", fontName=regular, fontSize=7))
    d.add(String(chart.x + chart.width / 2, 22, "Tuần (ngày thứ Hai, giờ Việt Nam)",
                 fontName=regular, fontSize=7, textAnchor="middle"))
    legend = Legend()
    legend.x, legend.y = width - 112, height - 20
    legend.fontName, legend.fontSize = regular, 7
    legend.alignment = "right"
    legend.columnMaximum = 10
    legend.deltay = 10
    legend.colorNamePairs = [(_color(s["category"]), INCIDENT_CATEGORIES.get(
        s["category"], (s["category"],))[0]) for s in trend["series"]]
    d.add(legend)
    return d


def _hours_chart(hours: dict[str, Any], width: float, height: float) -> Drawing:
    """A matrix: day of week (rows, Monday on top) by hour (columns), shade = count."""
    regular, _ = _fonts()
    d = Drawing(width, height)
    left, bottom, top = 24, 26, 14
    cw, ch = (width - left - 70) / 24, (height - bottom - top) / 7
    peak = hours["max"] or 1
    for r, row in enumerate(hours["matrix"]):
        y = height - top - (r + 1) * ch
        d.add(String(left - 3, y + ch / 2 - 2.5, WEEKDAYS[r], fontName=regular, fontSize=6.5,
                     textAnchor="end"))
        for h, n in enumerate(row):
            shade = n / peak
            fill = colors.Color(1 - 0.1 * shade, 1 - 0.75 * shade, 1 - 0.9 * shade)
            d.add(Rect(left + h * cw, y, cw, ch, fillColor=fill, strokeColor=colors.white,
                       strokeWidth=0.3))
    for h in range(0, 24, 3):
        d.add(String(left + (h + 0.5) * cw, bottom - 9, f"{h}h", fontName=regular, fontSize=6.5,
                     textAnchor="middle"))
    d.add(String(left + 12 * cw, 4, "Giờ trong ngày (giờ Việt Nam)", fontName=regular,
                 fontSize=7, textAnchor="middle"))
    # The scale: white = 0, darkest = the busiest hour.
    x0 = width - 60
    for i in range(5):
        shade = i / 4
        d.add(Rect(x0, bottom + i * 12, 10, 12, strokeWidth=0,
                   fillColor=colors.Color(1 - 0.1 * shade, 1 - 0.75 * shade, 1 - 0.9 * shade)))
    d.add(String(x0 + 13, bottom, "0", fontName=regular, fontSize=6.5))
    d.add(String(x0 + 13, bottom + 52, _n(peak) + " sự cố", fontName=regular, fontSize=6.5))
    return d


def _map(outlines: list[dict[str, Any]], points: Sequence[Sequence[Any]], width: float,
         height: float) -> Drawing:
    """Commune outlines and the week's incidents, in an equirectangular projection scaled by the
    cosine of the middle latitude (true shape at this size), north up."""
    d = Drawing(width, height)
    xs: list[float] = []
    ys: list[float] = []
    rings = []
    for g in outlines:
        polys = g["coordinates"] if g["type"] == "MultiPolygon" else [g["coordinates"]]
        for poly in polys:
            for ring in poly[:1]:
                rings.append(ring)
                xs.extend(p[0] for p in ring)
                ys.extend(p[1] for p in ring)
    if not xs:
        xs, ys = [p[0] for p in points] or [0.0], [p[1] for p in points] or [0.0]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    kx = math.cos(math.radians((y0 + y1) / 2))
    scale = min(width / max((x1 - x0) * kx, 1e-6), height / max(y1 - y0, 1e-6))
    ox = (width - (x1 - x0) * kx * scale) / 2
    oy = (height - (y1 - y0) * scale) / 2

    def pt(lon: float, lat: float) -> tuple[float, float]:
        return ox + (lon - x0) * kx * scale, oy + (lat - y0) * scale

    for ring in rings:
        flat = [c for p in ring for c in pt(p[0], p[1])]
        d.add(PolyLine(flat, strokeColor=colors.HexColor("#888888"), strokeWidth=0.4))
    for lon, lat, category in points:
        x, y = pt(lon, lat)
        d.add(Circle(x, y, 1.1, fillColor=_color(category), strokeWidth=0))
    regular, _ = _fonts()
    # North arrow and a scale of 5 km.
    d.add(String(width - 8, height - 10, "B", fontName=regular, fontSize=8, textAnchor="middle"))
    d.add(PolyLine([width - 8, height - 24, width - 8, height - 13], strokeWidth=0.8))
    km5 = 5 / 111.32 * scale
    d.add(PolyLine([6, 6, 6 + km5, 6], strokeWidth=1.2))
    d.add(String(6 + km5 / 2, 9, "5 km", fontName=regular, fontSize=6.5, textAnchor="middle"))
    return d


def _filled_map(geoms: list[dict[str, Any]], fills: list[str | None], width: float,
                height: float, legend: list[tuple[str, str]], outline: str = "#666666"
                ) -> Drawing:
    """Polygons filled by FILLS (None: not filled), as _map projects them, and a LEGEND of
    (colour, label) rows at the right."""
    legend_w = 62 * mm
    d = Drawing(width, height)
    map_w = width - legend_w
    rings: list[tuple[list[list[float]], str | None]] = []
    xs: list[float] = []
    ys: list[float] = []
    for g, fill in zip(geoms, fills, strict=True):
        polys = g["coordinates"] if g["type"] == "MultiPolygon" else [g["coordinates"]]
        for poly in polys:
            rings.append((poly[0], fill))
            xs.extend(p[0] for p in poly[0])
            ys.extend(p[1] for p in poly[0])
    if not xs:
        return d
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    kx = math.cos(math.radians((y0 + y1) / 2))
    scale = min(map_w / max((x1 - x0) * kx, 1e-6), height / max(y1 - y0, 1e-6))
    ox = (map_w - (x1 - x0) * kx * scale) / 2
    oy = (height - (y1 - y0) * scale) / 2
    for ring, fill in rings:
        flat = [c for p in ring for c in (ox + (p[0] - x0) * kx * scale, oy + (p[1] - y0) * scale)]
        d.add(Polygon(flat, fillColor=colors.HexColor(fill) if fill else None,
                      strokeColor=colors.HexColor(outline), strokeWidth=0.25))
    regular, _ = _fonts()
    lx = map_w + 4 * mm
    for i, (color, label) in enumerate(legend):
        y = height - 8 - i * 11
        d.add(Rect(lx, y - 2, 9, 7, fillColor=colors.HexColor(color),
                   strokeColor=colors.HexColor("#888888"), strokeWidth=0.3))
        d.add(String(lx + 12, y, label, fontName=regular, fontSize=7))
    km5 = 5 / 111.32 * scale
    d.add(PolyLine([6, 6, 6 + km5, 6], strokeWidth=1.2))
    d.add(String(6 + km5 / 2, 9, "5 km", fontName=regular, fontSize=6.5, textAnchor="middle"))
    return d


def _rates_map(r: dict[str, Any], width: float, height: float) -> Drawing:
    fills = [r["colors"][min(c, len(r["colors"]) - 1)] if c >= 0 else None for c in r["classes"]]
    b = r["breaks"]
    legend = [("#ffffff", "Sự cố/1.000 dân (ngắt tự nhiên, Jenks)")] + [
        (c, ("≤ " if i == 0 else f"{_n(b[i - 1], 2)} – ") + _n(b[i], 2))
        for i, c in enumerate(r["colors"])]
    return _filled_map(r["geometry"], fills, width, height, legend)


def _hotspot_map(h: dict[str, Any], width: float, height: float) -> Drawing:
    fills = [None if k == "not_significant" else h["colors"][k] for k in h["classes"]]
    legend = [(c, f"{h['titles'][k][0]} ({_n(h['summary'][k])} ô)")
              for k, c in h["colors"].items()]
    return _filled_map(h["geometry"], fills, width, height, legend, outline="#bbbbbb")


def render(f: dict[str, Any]) -> bytes:
    """The PDF of FIGURES (see figures())."""
    st = _styles()
    k, weeks = f["kpis"], f["weeks"]
    monday = weeks.monday
    sunday = monday + dt.timedelta(days=6)
    unit = f["unit"]["name"] or ("Toàn tỉnh" if not f["unit"]["code"] else f["unit"]["code"])
    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=A4, leftMargin=14 * mm, rightMargin=14 * mm,
                            topMargin=12 * mm, bottomMargin=12 * mm,
                            title=f"{TITLE} – {unit} – {dash.week_label(monday)}",
                            author="GeoIOC", subject="Bản tin tuần")
    width = A4[0] - 28 * mm
    story: list[Any] = [
        Paragraph(f"{TITLE}: {_esc(unit)}", st["title"]),
        Paragraph(f"Tuần {monday.isocalendar()[1]} ({dash.week_label(monday)}): từ thứ Hai "
                  f"{fmt.date(monday)} đến Chủ nhật {fmt.date(sunday)}"
                  + (" – tuần chưa kết thúc, số liệu đến " + fmt.datetime(f["now"])
                     if k["partial"] else "")
                  + f". Lập lúc {fmt.datetime(f['now'])} (giờ Việt Nam).", st["sub"]),
        Spacer(1, 4),
        Paragraph("1. Chỉ số chính", st["h"]), _kpi_table(k),
        Paragraph("So sánh cùng kỳ: cùng tuần 52 tuần trước (cùng các thứ trong tuần). "
                  "Thời gian xử lý: từ khi tiếp nhận đến lần trả lời đầu tiên, các phản ánh của "
                  "người dân tiếp nhận trong tuần. Phản ánh đang xử lý và quá hạn: tại thời "
                  "điểm lập bản tin.", st["small"]),
        Paragraph(f"2. Diễn biến {TREND_WEEKS} tuần gần đây theo lĩnh vực", st["h"]),
        _trend_chart(f["trend"], width, 62 * mm),
        KeepTogether([Paragraph("3. Sự cố theo giờ và thứ trong tuần", st["h"]),
                      _hours_chart(f["hours"], width, 48 * mm)]),
    ]
    story.append(Paragraph("4. Thay đổi lớn nhất so với tuần trước", st["h"]))
    cat_rows = [["Lĩnh vực", "Tuần này", "Tuần trước", "Chênh lệch", "Thay đổi"]] + [
        [INCIDENT_CATEGORIES.get(r["category"], (r["category"],))[0], _n(r["current"]),
         _n(r["previous"]), _signed(r["difference"]), _pct(r["change"])]
        for r in f["categories"]]
    story.append(_table(cat_rows, [60 * mm, 24 * mm, 24 * mm, 24 * mm, 24 * mm]))
    if f["communes"] is not None:
        story.append(Spacer(1, 4))
        rows = [["Xã/phường", "Mã", "Tuần này", "Tuần trước", "Chênh lệch", "Thay đổi"]] + [
            [_esc(r["name"]), r["code"], _n(r["current"]), _n(r["previous"]),
             _signed(r["difference"]), _pct(r["change"])] for r in f["communes"]["communes"]]
        story.append(_table(rows, [56 * mm, 16 * mm, 22 * mm, 22 * mm, 22 * mm, 22 * mm],
                            align_right_from=2))
    story.append(KeepTogether([
        Paragraph("5. Bản đồ sự cố trong tuần", st["h"]),
        _map(f["outlines"], f["points"], width, 95 * mm),
        Paragraph(f"{_n(len(f['points']))} sự cố; ranh giới xã/phường hiện hành; màu theo lĩnh "
                  "vực như biểu đồ mục 2.", st["small"])]))
    if f.get("rates"):
        story.append(KeepTogether([
            Paragraph("5a. Tỷ lệ sự cố trong tuần theo xã/phường", st["h"]),
            _rates_map(f["rates"], width, 85 * mm),
            Paragraph(f"{_n(f['rates']['total'])} sự cố trong tuần trên 1.000 dân (dân số "
                      "của xã/phường); 5 lớp ngắt tự nhiên (Jenks); ranh giới hiện hành.",
                      st["small"])]))
    if f.get("hotspots"):
        h = f["hotspots"]
        story.append(KeepTogether([
            Paragraph(f"5b. Điểm nóng có ý nghĩa thống kê trong {HOTSPOT_WEEKS} tuần gần nhất",
                      st["h"]),
            _hotspot_map(h, width, 85 * mm),
            Paragraph(f"Getis-Ord Gi* trên lưới lục giác {_n(HOTSPOT_CELL_M)} m, từ "
                      f"{fmt.date(dash.vn_today(h['start']))} đến hết "
                      f"{fmt.date(dash.vn_today(h['end'] - dt.timedelta(seconds=1)))}; p hiệu "
                      "chỉnh FDR (Benjamini-Hochberg); ô không có ý nghĩa để trắng.",
                      st["small"])]))
    story.append(Paragraph("6. Phản ánh quá hạn chưa xử lý", st["h"]))
    if f["overdue"]:
        rows = [["Số", "Lĩnh vực", "Xã/phường", "Đơn vị xử lý", "Trạng thái", "Hạn xử lý",
                 "Quá hạn"]] + [
            [str(r["id"]), Paragraph(_esc(INCIDENT_CATEGORIES.get(r["category"],
                                                                  (r["category"],))[0]),
                                     st["cell"]),
             Paragraph(_esc(r["commune_name"] or r["commune_code"] or "–"), st["cell"]),
             Paragraph(_esc(r["agency_name"] or "Chưa phân công"), st["cell"]),
             INCIDENT_STATUSES.get(r["status"], (r["status"],))[0],
             fmt.date(r["expected_at"]), f"{_n(r['days_late'])} ngày"]
            for r in f["overdue"]]
        story.append(_table(rows, [14 * mm, 30 * mm, 32 * mm, 40 * mm, 24 * mm, 22 * mm,
                                   20 * mm], align_right_from=6))
        story.append(Paragraph(f"Tổng số phản ánh quá hạn: {_n(k['reports']['overdue'])}"
                               + (f" (liệt kê {OVERDUE_ROWS} phản ánh quá hạn lâu nhất)"
                                  if k["reports"]["overdue"] > OVERDUE_ROWS else "")
                               + ". Không có thông tin người phản ánh.", st["small"]))
    else:
        story.append(Paragraph("Không có phản ánh quá hạn.", st["p"]))
    story.extend(_indicator_section(f["indicators"], st))
    story.append(Spacer(1, 6))
    story.append(Paragraph("GeoIOC – Trung tâm điều hành thông minh. Dữ liệu mẫu tổng hợp.",
                           st["small"]))
    doc.build(story, onFirstPage=_footer, onLaterPages=_footer)
    return out.getvalue()


def _direction(change: float) -> str:
    return "tăng" if change > 0 else "giảm" if change < 0 else "không đổi"


def _indicator_section(rows: list[dict[str, Any]], st: dict[str, ParagraphStyle]) -> list[Any]:
    """Section 7: the socio-economic indicators of the unit that changed most between their
    two latest periods (gis.indicators.service.top_changes), Vietnamese name first and the
    English one beneath it."""
    out: list[Any] = [Paragraph("7. Chỉ tiêu kinh tế – xã hội thay đổi nhiều nhất "
                                "(Largest indicator changes)", st["h"])]
    if not rows:
        out.append(Paragraph("Không có chỉ tiêu nào có số liệu hai kỳ.", st["p"]))
        return out
    table = [["Chỉ tiêu", "Đơn vị tính", "Kỳ trước", "Kỳ gần nhất", "Thay đổi"]] + [
        [Paragraph(f"{_esc(r['name_vi'])}<br/><font size=6.5 color='#666666'>"
                   f"{_esc(r['name_en'])}</font>", st["cell"]),
         Paragraph(_esc(r["unit_vi"]), st["cell"]),
         Paragraph(f"{indicator_periods.label(r['previous_period'])}: "
                   f"{_n(r['previous'], r['decimals'])}", st["cell"]),
         Paragraph(f"{indicator_periods.label(r['current_period'])}: "
                   f"{_n(r['current'], r['decimals'])}", st["cell"]),
         Paragraph(f"{_direction(r['change_pct'])} {_pct(r['change_pct'])}", st["cell"])]
        for r in rows]
    out.append(_table(table, [64 * mm, 24 * mm, 32 * mm, 32 * mm, 30 * mm], align_right_from=5))
    out.append(Paragraph("Thay đổi tương đối giữa hai kỳ có số liệu gần nhất của mỗi chỉ tiêu "
                         "(kỳ bắt đầu trước khi hết tuần), xếp theo độ lớn; chỉ tiêu có giá trị "
                         "kỳ trước bằng 0 không tính được tỷ lệ nên không liệt kê.", st["small"]))
    return out


def _footer(canvas: Any, doc: Any) -> None:
    regular, _ = _fonts()
    canvas.saveState()
    canvas.setFont(regular, 7)
    canvas.drawRightString(A4[0] - 14 * mm, 7 * mm, f"Trang {doc.page}")
    canvas.restoreState()


def _signed(n: int) -> str:
    return ("+" if n > 0 else "") + fmt.number(n, "vi", 0)


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# --- stored briefings (the schedule's) ---------------------------------------------------------


def root() -> Path:
    from gis.settings import PROJECT_ROOT

    return Path(os.environ.get("GEOIOC_BRIEFINGS_DIR") or PROJECT_ROOT / ".geoioc" / "briefings")


def store(conn: psycopg.Connection, monday: dt.date, code: str | None = None, *,
          now: dt.datetime | None = None, directory: Path | None = None) -> dict[str, Any]:
    """Make the briefing for the leaders' view and keep it (PDF and its JSON note; written to a
    temporary name first, so a reader never meets half a file). Returns the note."""
    now = now or dt.datetime.now(dt.UTC)
    d = directory or root()
    d.mkdir(parents=True, exist_ok=True)
    pdf = build(conn, SCHEDULE_PRINCIPAL, monday, code, now=now)
    name = file_name(code, monday)
    note = {"name": name, "unit": code, "week": dash.week_label(monday),
            "monday": monday.isoformat(), "made_at": dash._iso(now), "bytes": len(pdf),
            "view": "all" if row_filter(INCIDENTS, SCHEDULE_PRINCIPAL) is None else "restricted"}
    for path, data in ((d / name, pdf), (d / (name[:-4] + ".json"),
                                         json.dumps(note, ensure_ascii=False).encode())):
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return note


def stored(directory: Path | None = None) -> list[dict[str, Any]]:
    """The notes of the stored briefings, newest week first."""
    d = directory or root()
    if not d.is_dir():
        return []
    notes = []
    for p in d.glob("ban-tin-*.json"):
        try:
            note = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        if _NAME.match(note.get("name", "")) and (d / note["name"]).is_file():
            notes.append(note)
    return sorted(notes, key=lambda n: (n["monday"], n["name"]), reverse=True)


def stored_one(name: str, directory: Path | None = None) -> tuple[dict[str, Any], bytes] | None:
    if not _NAME.match(name):
        return None
    d = directory or root()
    try:
        note = json.loads((d / (name[:-4] + ".json")).read_text())
        return note, (d / name).read_bytes()
    except (OSError, ValueError):
        return None


def may_read(note: dict[str, Any], who: Principal, layer: Layer) -> bool:
    """A briefing made for the whole view only for who sees every row."""
    return note.get("view") != "all" or row_filter(layer, who) is None
