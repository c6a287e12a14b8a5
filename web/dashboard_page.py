"""The leaders' dashboard page (/dashboard): KPI cards and charts, Vietnamese first.

Server-rendered shell (Jinja2, web/templates/dashboard.html) carrying the panel registry
(gis/analysis/dashboard.py PANELS: id, titles, data URL, chart kind) and the page's words; the
figures are loaded by web/static/dashboard/app.js from /api/dashboard for the signed-in caller
(sign-in as on the map: web/static/map/session.js), charts drawn with the vendored uPlot and on
plain canvases (web/static/dashboard/charts.js), so each chart downloads as PNG (its canvas,
axes included) and as CSV (its data URL with `f=csv`). Panels whose data is not served yet are
in the page, hidden. `?wall=1` is the video wall's mode: one panel at a time filling the
screen, rotating every `rotate` seconds, figures refreshed every minute and when a report
arrives or moves (the console's event stream, /api/reports/events).

A visitor (not signed in, or an account that may read only the public aggregates) gets the page
too: the registry (/api/dashboard/panels) lists the panels whose data is public for that caller
(gis/analysis/dashboard.py, Panel.guest), with the suppression's minimum from the catalogue;
the page shows those, a note (`guest_note`) that counts under the minimum are hidden, and each
hidden count as hidden (`hidden_mark`), never as 0. The KPI cards (open and overdue reports,
alerts), the hot spots and the briefing stay for staff, who sign in from the bar.

The words live here, per language, as every server-rendered page's do (web/report_pages.py,
web/parcels_pages.py, web/transparency_page.py); the command map keeps its own in
web/static/map/i18n.js and the gettext catalogue (api/ogc_locale) serves the OGC pages only.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from gis.analysis.hotspots import CLASS_COLORS, CLASS_TITLES
from layers.catalogue import INCIDENT_CATEGORIES, INCIDENT_SOURCES, INCIDENT_STATUSES, SEVERITIES

TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC = "/ogc/static"
REFRESH_SECONDS = 60

LABELS: dict[str, dict[str, str]] = {
    "vi": {
        "title": "Bảng điều hành lãnh đạo", "map": "Bản đồ điều hành", "other_lang": "English",
        "sign_in": "Đăng nhập", "sign_out": "Đăng xuất", "username": "Tên đăng nhập",
        "password": "Mật khẩu", "sign_in_needed": "Cán bộ đăng nhập để xem đầy đủ: chỉ số "
        "trong tuần, phản ánh đang xử lý và quá hạn, cảnh báo, điểm nóng và số liệu chính xác.",
        "filters": "Bộ lọc", "window": "Khoảng thời gian",
        "from": "Từ ngày", "to": "Đến hết ngày", "last_7": "7 ngày", "last_30": "30 ngày",
        "last_90": "90 ngày", "last_365": "12 tháng", "category": "Lĩnh vực",
        "severity": "Mức độ", "status": "Trạng thái", "source": "Nguồn tiếp nhận",
        "commune": "Mã đơn vị (xã/phường)", "all": "Tất cả", "apply": "Áp dụng", "week": "Tuần",
        "kpi_incidents": "Sự cố trong tuần", "kpi_vs_previous": "so với tuần trước",
        "kpi_vs_year": "so với cùng kỳ năm trước", "kpi_open": "Phản ánh đang xử lý",
        "kpi_overdue": "Phản ánh quá hạn", "kpi_median": "Thời gian xử lý trung vị",
        "kpi_alerts": "Cảnh báo cảm biến đang mở", "hours": "giờ", "now": "hiện tại",
        "partial": "tuần đang diễn ra: so sánh đến cùng thời điểm",
        "unacknowledged": "chưa tiếp nhận", "answered": "{a}/{r} phản ánh đã trả lời",
        "png": "Tải ảnh PNG", "csv": "Tải CSV", "wall": "Chế độ màn hình lớn",
        "fullscreen": "Toàn màn hình", "exit_wall": "Thoát màn hình lớn",
        "loading": "Đang tải…", "error": "Không tải được số liệu: {e}",
        "updated": "Cập nhật lúc {t}", "no_data": "Không có sự cố trong kỳ",
        "axis_day": "Ngày (giờ Việt Nam)", "axis_week": "Tuần bắt đầu thứ Hai (giờ Việt Nam)",
        "axis_count": "Số sự cố", "axis_hour": "Giờ trong ngày (giờ Việt Nam)",
        "axis_weekday": "Thứ", "current": "Kỳ này", "previous": "Kỳ trước",
        "weekdays": "T2,T3,T4,T5,T6,T7,CN", "briefing": "Bản tin tuần (PDF)",
        "definitions": "Cách tính",
        "def_text": "Tuần tính từ 0 giờ thứ Hai đến hết Chủ nhật theo giờ Việt Nam; tuần đang "
                    "diễn ra được so với tuần trước và cùng kỳ năm trước (52 tuần trước) đến "
                    "cùng thời điểm. Phản ánh đang xử lý và quá hạn tính tại thời điểm xem. Thời "
                    "gian xử lý: từ tiếp nhận đến lần trả lời đầu tiên, trung vị các phản ánh của "
                    "người dân tiếp nhận trong tuần đã được trả lời. Sự kiện an ninh chỉ được "
                    "tính cho người có quyền xem.",
        "synthetic": "Dữ liệu mẫu tổng hợp.",
        "indicator": "Chỉ tiêu", "classification": "Phương pháp phân lớp",
        "class_natural_breaks": "Ngắt tự nhiên (Jenks)", "class_quantiles": "Phân vị",
        "class_equal_interval": "Khoảng đều", "cog": "Tải bề mặt mật độ (GeoTIFF, COG)",
        "axis_period": "Kỳ số liệu", "province_value": "Toàn tỉnh",
        "median": "Trung vị các xã/phường", "top_of": "{k} cao nhất trong {n} xã/phường, kỳ {p}",
        "legend_rates": "Tỷ lệ sự cố", "density_fixed": "Thang cố định: so sánh được giữa các "
        "vùng và các kỳ", "density_view": "Thang theo vùng đang xem",
        "hot_legend": "Điểm nóng/lạnh (Gi*, hiệu chỉnh FDR)",
        "hot_99": "Điểm nóng, tin cậy 99 %", "hot_95": "Điểm nóng, tin cậy 95 %",
        "hot_90": "Điểm nóng, tin cậy 90 %", "not_significant": "Không có ý nghĩa thống kê",
        "cold_90": "Điểm lạnh, tin cậy 90 %", "cold_95": "Điểm lạnh, tin cậy 95 %",
        "cold_99": "Điểm lạnh, tin cậy 99 %", "cells": "ô", "incidents": "sự cố",
        "per_1000": "/1.000 dân", "per_km2": "/km²", "no_indicator": "Chưa có chỉ tiêu",
        "legend_density": "Mật độ sự cố (KDE)", "p_analytic": "p theo xấp xỉ chuẩn",
        "p_permutations": "p theo {n} hoán vị",
        "guest_note": "Bạn đang xem số liệu công khai. Để bảo vệ người dân, số sự cố dưới {k} "
                      "của một ô lưới, một xã/phường hoặc một nhóm được ẩn: ghi “ẩn”, không "
                      "phải 0 (một vài số khác cũng được ẩn kèm để không suy ra được từ tổng); "
                      "sự kiện an ninh không được tính. Chỉ số trong tuần, phản ánh quá hạn và "
                      "điểm nóng dành cho cán bộ đăng nhập.",
        "hidden_mark": "ẩn", "hidden_legend": "Ẩn (số nhỏ)",
        "hidden_values": "{n} số bị ẩn (dưới {k} sự cố, hoặc ẩn kèm để không suy ra được), "
                         "không phải 0.",
        "hidden_cells": "Ô lưới có dưới {k} sự cố không được tính vào bề mặt mật độ.",
    },
    "en": {
        "title": "Leaders' dashboard", "map": "Command map", "other_lang": "Tiếng Việt",
        "sign_in": "Sign in", "sign_out": "Sign out", "username": "User name",
        "password": "Password", "sign_in_needed": "Staff sign in to see everything: the "
        "week's key figures, open and overdue reports, alerts, hot spots and exact counts.",
        "filters": "Filters", "window": "Time window",
        "from": "From", "to": "To (inclusive)", "last_7": "7 days", "last_30": "30 days",
        "last_90": "90 days", "last_365": "12 months", "category": "Category",
        "severity": "Severity", "status": "Status", "source": "Source",
        "commune": "Unit code (commune)", "all": "All", "apply": "Apply", "week": "Week",
        "kpi_incidents": "Incidents this week", "kpi_vs_previous": "against last week",
        "kpi_vs_year": "against a year ago", "kpi_open": "Open reports",
        "kpi_overdue": "Overdue reports", "kpi_median": "Median processing time",
        "kpi_alerts": "Open sensor alerts", "hours": "hours", "now": "now",
        "partial": "week in progress: compared up to the same point",
        "unacknowledged": "not acknowledged", "answered": "{a}/{r} reports answered",
        "png": "Download PNG", "csv": "Download CSV", "wall": "Video wall mode",
        "fullscreen": "Full screen", "exit_wall": "Leave video wall mode",
        "loading": "Loading…", "error": "Could not load the figures: {e}",
        "updated": "Updated at {t}", "no_data": "No incidents in the window",
        "axis_day": "Day (Vietnam time)", "axis_week": "Week starting Monday (Vietnam time)",
        "axis_count": "Incidents", "axis_hour": "Hour of day (Vietnam time)",
        "axis_weekday": "Day", "current": "This window", "previous": "Previous window",
        "weekdays": "Mon,Tue,Wed,Thu,Fri,Sat,Sun", "briefing": "Weekly briefing (PDF)",
        "definitions": "Definitions",
        "def_text": "Weeks run from Monday 00:00 to the end of Sunday, Vietnam time; the week "
                    "in progress is compared with last week and with the same week a year ago "
                    "(52 weeks earlier) up to the same point. Open and overdue reports are "
                    "counted now. Processing time: from reception to the first answer, the "
                    "median of the citizen reports received in the week and answered. Security "
                    "events count only for those who may see them.",
        "synthetic": "Synthetic sample data.",
        "indicator": "Indicator", "classification": "Classification method",
        "class_natural_breaks": "Natural breaks (Jenks)", "class_quantiles": "Quantiles",
        "class_equal_interval": "Equal intervals", "cog": "Download the density surface "
        "(GeoTIFF, COG)", "axis_period": "Period", "province_value": "Province",
        "median": "Median of the communes", "top_of": "Top {k} of {n} communes, period {p}",
        "legend_rates": "Incident rate", "density_fixed": "Fixed scale: comparable across "
        "views and windows", "density_view": "Scale of this view",
        "hot_legend": "Hot and cold spots (Gi*, FDR-corrected)",
        "hot_99": "Hot spot, 99 % confidence", "hot_95": "Hot spot, 95 % confidence",
        "hot_90": "Hot spot, 90 % confidence", "not_significant": "Not significant",
        "cold_90": "Cold spot, 90 % confidence", "cold_95": "Cold spot, 95 % confidence",
        "cold_99": "Cold spot, 99 % confidence", "cells": "cells", "incidents": "incidents",
        "per_1000": " per 1,000 residents", "per_km2": "/km²", "no_indicator": "No indicator",
        "legend_density": "Incident density (KDE)", "p_analytic": "p by normal approximation",
        "p_permutations": "p from {n} permutations",
        "guest_note": "You are seeing the public figures. To protect people, a grid cell's, a "
                      "commune's or a group's count under {k} is hidden: shown as “hidden”, "
                      "not 0 (a few other counts are hidden with it so that it cannot be worked "
                      "out from a total); security events are not counted. The week's key "
                      "figures, overdue reports and hot spots are for signed-in staff.",
        "hidden_mark": "hidden", "hidden_legend": "Hidden (small count)",
        "hidden_values": "{n} counts hidden (under {k} incidents, or hidden with one so it "
                         "cannot be worked out), not 0.",
        "hidden_cells": "Grid cells with fewer than {k} incidents are left out of the density "
                        "surface.",
    },
}


@cache
def _env() -> Environment:
    return Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape())


def _choices(values: dict[str, tuple[str, str]], lang: str) -> list[tuple[str, str]]:
    return [(code, vi if lang == "vi" else en) for code, (vi, en) in values.items()]


def _json(value: Any) -> Markup:
    return Markup(json.dumps(value, ensure_ascii=False).replace("</", "<\\/"))


def render(lang: str, wall: bool, rotate: int, panels: list[dict[str, Any]]) -> str:
    """The page in LANG (vi or en); WALL: the video wall's mode, ROTATE seconds a panel."""
    t = LABELS[lang]
    config = {"lang": lang, "wall": wall, "rotate": rotate, "refresh": REFRESH_SECONDS,
              "panels": panels, "strings": t,
              "categories": dict(_choices(INCIDENT_CATEGORIES, lang)),
              # the hot-spot classes, hot first: colour and title of each (one definition:
              # gis/analysis/hotspots.py, as on the command map and in the briefing)
              "hot_classes": [{"id": k, "color": c, "title": CLASS_TITLES[k][lang == "en"]}
                              for k, c in CLASS_COLORS.items()]}
    suffix = "&wall=1" if wall else ""
    return _env().get_template("dashboard.html").render(
        lang=lang, t=t, static=STATIC, wall=wall, panels=panels,
        other_lang_url="/dashboard" + ("?lang=vi" if lang == "en" else "?lang=en") + suffix,
        categories=_choices(INCIDENT_CATEGORIES, lang), severities=_choices(SEVERITIES, lang),
        statuses=_choices(INCIDENT_STATUSES, lang), sources=_choices(INCIDENT_SOURCES, lang),
        config=_json(config))
