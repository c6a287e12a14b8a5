"""The public transparency page (/transparency): processing times of citizen reports per agency
and per commune, a choropleth, a ranking and the map of open overdue reports.

Server-rendered shell (Jinja2, web/templates/transparency.html), Vietnamese first and English
with ?lang=en; the figures are loaded by web/static/transparency/app.js from /api/transparency
(the page never touches the database) and written with web/static/common/format.js, so the
numbers follow the page's language. Leaflet and Bootstrap are the vendored copies: offline.

Small counts (issue 17, decided here): for a visitor the API suppresses the per-commune and
per-agency figures under the incidents layer's catalogue minimum (Aggregates.min_count, 3) and
the processing times of fewer than that many answered reports, since one or two reports in a
commune (most agencies are a commune's committee) point at the people who made them; province
totals stay. The page shows a suppressed figure as "ẩn"/"hidden", never as 0 or "no data",
greys a commune whose median is hidden on the choropleth (its own legend entry), and says why
in a note (`suppressed_note`, the minimum taken from the answer). The rule itself:
gis/reports/transparency.py (public_rows) and docs/architecture.md.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC = "/ogc/static"

# The page's words; app.js reads the same table (passed as JSON), so one place per language.
LABELS: dict[str, dict[str, str]] = {
    "vi": {
        "title": "Minh bạch xử lý phản ánh", "map": "Bản đồ điều hành", "other_lang": "English",
        "intro": "Số phản ánh của người dân tiếp nhận trong kỳ, đã giải quyết, thời gian xử lý "
                 "(trung vị và phân vị 90) và tỷ lệ trả lời đúng hạn, theo cơ quan và theo "
                 "xã/phường. Không có thông tin cá nhân; sự kiện an ninh không được tính.",
        "from": "Từ ngày", "to": "Đến hết ngày", "show": "Xem", "period": "Kỳ",
        "province": "Toàn tỉnh", "agencies": "Theo cơ quan xử lý", "communes": "Theo xã/phường",
        "ranking": "Xếp hạng cơ quan", "rank": "Hạng", "agency": "Cơ quan",
        "commune_col": "Xã/phường", "received": "Tiếp nhận", "resolved": "Đã giải quyết",
        "rejected": "Từ chối", "pending": "Đang xử lý", "median": "Trung vị (giờ)",
        "p90": "Phân vị 90 (giờ)", "on_time": "Đúng hạn", "due": "Đến hạn",
        "share": "Tỷ lệ đúng hạn", "unassigned": "Chưa phân công",
        "choropleth": "Thời gian xử lý trung vị theo xã/phường (giờ)",
        "overdue": "Phản ánh quá hạn chưa xử lý (vị trí làm tròn khoảng 100 m)",
        "overdue_count": "Số phản ánh quá hạn", "days_late": "Số ngày quá hạn",
        "deadline": "Hạn xử lý", "received_at": "Thời điểm tiếp nhận", "no_data": "Chưa có số liệu",
        "sensitive": "Nội dung không công khai", "loading": "Đang tải…",
        "error": "Không tải được số liệu", "definitions": "Cách tính",
        "def_text": "Phản ánh được tính theo ngày tiếp nhận (giờ Việt Nam). Thời gian xử lý = lần "
                    "trả lời đầu tiên (giải quyết hoặc từ chối) trừ thời điểm tiếp nhận. Tỷ lệ đúng "
                    "hạn = số trả lời đúng hạn / số phản ánh đã trả lời hoặc đã quá hạn. Phản ánh "
                    "trùng lặp không được tính riêng.",
        "synthetic": "Dữ liệu mẫu tổng hợp.", "zoom_in": "Phóng to", "zoom_out": "Thu nhỏ",
        "presets": "Kỳ thường xem", "last_30": "30 ngày qua", "last_365": "12 tháng qua",
        "this_month": "Tháng này", "this_year": "Năm nay", "computed_at": "số liệu tính lúc",
        "hidden_mark": "ẩn", "hidden_title": "Số nhỏ được ẩn để không xác định được người "
        "phản ánh", "hidden_legend": "Số liệu bị ẩn (số nhỏ)",
        "suppressed_note": "Để bảo vệ người phản ánh, số liệu dưới {k} phản ánh của một "
        "xã/phường hoặc một cơ quan (và thời gian xử lý khi có dưới {k} phản ánh đã trả lời) "
        "được ẩn: ghi “ẩn”, không phải 0. Một vài số khác cũng được ẩn kèm để không suy ra "
        "được số bị ẩn từ tổng toàn tỉnh. Tổng toàn tỉnh được giữ nguyên.",
    },
    "en": {
        "title": "Report processing transparency", "map": "Command map",
        "other_lang": "Tiếng Việt",
        "intro": "Citizen reports received in the period, resolved, processing time (median and "
                 "90th percentile) and the share answered within the deadline, per agency and per "
                 "commune. No personal data; security events are never counted.",
        "from": "From", "to": "To (inclusive)", "show": "Show", "period": "Period",
        "province": "Province", "agencies": "Per agency", "communes": "Per commune",
        "ranking": "Agency ranking", "rank": "Rank", "agency": "Agency",
        "commune_col": "Commune", "received": "Received", "resolved": "Resolved",
        "rejected": "Rejected", "pending": "Pending", "median": "Median (hours)",
        "p90": "90th percentile (hours)", "on_time": "On time", "due": "Due",
        "share": "Share on time", "unassigned": "Not assigned yet",
        "choropleth": "Median processing time per commune (hours)",
        "overdue": "Open reports past their deadline (location rounded to about 100 m)",
        "overdue_count": "Overdue reports", "days_late": "Days late",
        "deadline": "Deadline", "received_at": "Received", "no_data": "No data yet",
        "sensitive": "Content not public", "loading": "Loading…",
        "error": "Could not load the figures", "definitions": "Definitions",
        "def_text": "Reports count by the day they were received (Vietnam time). Processing time "
                    "= first answer (resolved or rejected) minus reception. Share on time = "
                    "answers within the deadline / reports answered or past their deadline. "
                    "Likely duplicates are not counted on their own.",
        "synthetic": "Synthetic sample data.", "zoom_in": "Zoom in", "zoom_out": "Zoom out",
        "presets": "Usual periods", "last_30": "Last 30 days", "last_365": "Last 12 months",
        "this_month": "This month", "this_year": "This year", "computed_at": "figures as of",
        "hidden_mark": "hidden", "hidden_title": "Small figures are hidden so that no "
        "reporter can be identified", "hidden_legend": "Figures hidden (small counts)",
        "suppressed_note": "To protect the people who report, a commune's or an agency's "
        "figures under {k} reports (and processing times of fewer than {k} answered reports) "
        "are hidden: shown as “hidden”, not 0. A few other figures are hidden with them so "
        "that the hidden ones cannot be worked out from the province totals. Province totals "
        "are kept.",
    },
}


@cache
def _env() -> Environment:
    return Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape())


@cache
def render(lang: str) -> str:
    """The page in LANG (vi or en): the same for every caller, so it is built once."""
    t = LABELS[lang]
    return _env().get_template("transparency.html").render(
        lang=lang, t=t, static=STATIC,
        other_lang_url="/transparency" + ("" if lang == "en" else "?lang=en"),
        strings=Markup(json.dumps(t, ensure_ascii=False).replace("</", "<\\/")))
