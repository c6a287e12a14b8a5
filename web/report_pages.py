"""The citizens' pages: `/report` (make a report) and `/report/track/{token}` (follow it).

Server-rendered from Jinja2 templates (web/templates/report), Vietnamese by default and English
with ?lang=en, for phones first and desktops too, with the vendored Bootstrap and Leaflet
(served at /ogc/static: nothing from another host). The report page's script
(web/static/report/report.js) places the pin, previews the photos and submits to
POST /api/reports, showing each refused field beside its input in the page's language (the
server words the reasons: ?lang= on the submit). The route passes the data in: these pages never
read the database.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from gis import fmt
from gis.reports import photos
from layers.catalogue import INCIDENT_STATUSES

TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC = "/ogc/static"

LABELS: dict[str, dict[str, str]] = {
    "vi": {
        "site": "Cổng phản ánh hiện trường", "map": "Bản đồ điều hành", "other_lang": "English",
        "report_title": "Gửi phản ánh",
        "report_intro": "Phản ánh sự cố, vi phạm bạn gặp (ổ gà, ngập úng, rác thải, đèn đường hỏng,"
                        " lấn chiếm…) tới cơ quan chức năng. Không cần tài khoản.",
        "category": "Lĩnh vực phản ánh", "choose_category": "— Chọn lĩnh vực —",
        "location": "Vị trí", "location_hint": "Chạm vào bản đồ để đặt ghim (kéo ghim để chỉnh),"
                                               " hoặc dùng vị trí hiện tại của thiết bị.",
        "use_my_location": "Dùng vị trí của tôi", "locating": "Đang xác định vị trí…",
        "no_location_device": "Không lấy được vị trí của thiết bị; hãy chạm vào bản đồ.",
        "pin_at": "Ghim tại", "no_pin": "Chưa chọn vị trí.",
        "description": "Mô tả", "description_hint": "Điều gì đang xảy ra, từ khi nào, mức độ.",
        "photos": "Ảnh chụp", "photos_hint": "Tối đa {max} ảnh JPEG, PNG hoặc WebP, mỗi ảnh tối đa"
                                             " {mb} MB. Thông tin vị trí và thiết bị trong ảnh được"
                                             " xóa trước khi lưu.",
        "add_photos": "Thêm ảnh", "remove_photo": "Bỏ ảnh này",
        "contact": "Thông tin liên hệ (không bắt buộc)",
        "contact_private": "Họ tên và số điện thoại chỉ cán bộ xử lý được xem, không công khai;"
                           " bạn có thể phản ánh ẩn danh.",
        "name": "Họ và tên", "phone": "Số điện thoại",
        "submit": "Gửi phản ánh", "sending": "Đang gửi…",
        "fix_errors": "Phản ánh chưa được gửi. Vui lòng sửa các mục được đánh dấu.",
        "required": "bắt buộc", "choose_value": "— Chọn —",
        "err_category": "Hãy chọn lĩnh vực phản ánh.",
        "err_location": "Hãy đặt ghim trên bản đồ hoặc dùng vị trí của thiết bị.",
        "err_too_many": "Chỉ được gửi tối đa {max} ảnh.",
        "err_too_large": "Ảnh “{name}” lớn hơn {mb} MB.",
        "err_not_image": "Tệp “{name}” không phải ảnh JPEG, PNG hoặc WebP.",
        "err_network": "Không gửi được (mất kết nối?). Vui lòng thử lại.",
        "err_server": "Máy chủ không nhận phản ánh:",
        "photo_n": "Ảnh {n}",
        "done_title": "Đã nhận phản ánh của bạn",
        "done_code": "Mã theo dõi của bạn (hãy lưu lại):",
        "done_expected": "Dự kiến xử lý xong trước",
        "done_duplicate": "Phản ánh này có thể trùng với phản ánh số {id} đang được xử lý.",
        "track_link": "Theo dõi tình trạng xử lý", "new_report": "Gửi phản ánh khác",
        "track_title": "Theo dõi phản ánh", "track_code": "Mã theo dõi",
        "track_enter": "Nhập mã theo dõi bạn nhận được khi gửi phản ánh.",
        "track_go": "Xem", "track_not_found": "Không tìm thấy phản ánh với mã theo dõi này.",
        "track_bad_code": "Mã theo dõi chỉ gồm chữ cái, chữ số, dấu gạch (4–64 ký tự).",
        "report_no": "Phản ánh số", "status": "Tình trạng", "reported_at": "Thời điểm gửi",
        "expected_at": "Hạn xử lý", "agency": "Cơ quan xử lý", "agency_none": "Chưa phân công",
        "answer": "Trả lời của cơ quan xử lý", "no_answer": "Chưa có trả lời.",
        "duplicate": "Phản ánh này được xác định có thể trùng với phản ánh số {id}; tình trạng và"
                     " trả lời dưới đây là của phản ánh gốc.",
        "original_status": "Tình trạng của phản ánh gốc",
        "history": "Quá trình xử lý", "when": "Thời gian", "event": "Diễn biến", "by": "Người thực hiện",
        "note": "Ghi chú", "vn_time": "Giờ Việt Nam",
        "kind_assign": "Phân công cho {agency}", "kind_duplicate": "Đánh dấu có thể trùng phản ánh khác",
        "kind_unlink": "Bỏ đánh dấu trùng", "actor_citizen": "Người dân", "actor_system": "Hệ thống",
        "actor_staff": "Cán bộ",
        "other_report": "Theo dõi phản ánh khác",
        "kind_reopen": "Mở lại phản ánh",
        "reopen_title": "Vấn đề chưa được giải quyết?",
        "reopen_until": "Bạn có thể mở lại phản ánh này đến {until} (giờ Việt Nam); phản ánh sẽ"
                        " được chuyển lại cho cơ quan xử lý.",
        "reopen_note": "Lý do mở lại (không bắt buộc)",
        "reopen": "Mở lại phản ánh", "reopening": "Đang gửi…",
        "reopened": "Đã mở lại phản ánh. Phản ánh đã được chuyển lại cho cơ quan xử lý.",
        "err_reopen": "Không mở lại được phản ánh:",
    },
    "en": {
        "site": "Citizen reports", "map": "Command map", "other_lang": "Tiếng Việt",
        "report_title": "Report a problem",
        "report_intro": "Tell the authorities about a problem you see (a pothole, flooding, waste,"
                        " a broken street light, an encroachment…). No account needed.",
        "category": "Category", "choose_category": "— Choose a category —",
        "location": "Location", "location_hint": "Tap the map to drop a pin (drag it to adjust),"
                                                 " or use your device's location.",
        "use_my_location": "Use my location", "locating": "Finding your location…",
        "no_location_device": "Could not get the device's location; tap the map instead.",
        "pin_at": "Pin at", "no_pin": "No location chosen yet.",
        "description": "Description", "description_hint": "What is happening, since when, how bad.",
        "photos": "Photos", "photos_hint": "Up to {max} JPEG, PNG or WebP photos, at most {mb} MB"
                                           " each. Location and device data are removed before"
                                           " they are stored.",
        "add_photos": "Add photos", "remove_photo": "Remove this photo",
        "contact": "Contact (optional)",
        "contact_private": "Your name and phone number are seen only by the staff handling the"
                           " report, never published; you may report anonymously.",
        "name": "Full name", "phone": "Phone number",
        "submit": "Send report", "sending": "Sending…",
        "fix_errors": "The report was not sent. Please correct the marked entries.",
        "required": "required", "choose_value": "— Choose —",
        "err_category": "Please choose a category.",
        "err_location": "Please drop a pin on the map or use your device's location.",
        "err_too_many": "At most {max} photos may be sent.",
        "err_too_large": "Photo “{name}” is larger than {mb} MB.",
        "err_not_image": "File “{name}” is not a JPEG, PNG or WebP image.",
        "err_network": "Could not send (no connection?). Please try again.",
        "err_server": "The server did not accept the report:",
        "photo_n": "Photo {n}",
        "done_title": "Your report has been received",
        "done_code": "Your tracking code (keep it):",
        "done_expected": "Expected to be handled by",
        "done_duplicate": "This report may repeat report no. {id}, which is already being handled.",
        "track_link": "Follow its progress", "new_report": "Send another report",
        "track_title": "Track a report", "track_code": "Tracking code",
        "track_enter": "Enter the tracking code you were given when you sent your report.",
        "track_go": "Show", "track_not_found": "No report has this tracking code.",
        "track_bad_code": "A tracking code holds letters, digits, - and _ only (4–64 characters).",
        "report_no": "Report no.", "status": "Status", "reported_at": "Sent",
        "expected_at": "Due by", "agency": "Handled by", "agency_none": "Not assigned yet",
        "answer": "The agency's answer", "no_answer": "No answer yet.",
        "duplicate": "This report was found to likely repeat report no. {id}; the status and answer"
                     " below are the original's.",
        "original_status": "Status of the original report",
        "history": "Progress", "when": "Time", "event": "Event", "by": "By", "note": "Note",
        "vn_time": "Vietnam time",
        "kind_assign": "Assigned to {agency}", "kind_duplicate": "Marked as a likely duplicate",
        "kind_unlink": "Duplicate mark removed", "actor_citizen": "Citizen",
        "actor_system": "System", "actor_staff": "Staff",
        "other_report": "Track another report",
        "kind_reopen": "Reopened",
        "reopen_title": "Problem not solved?",
        "reopen_until": "You may reopen this report until {until} (Vietnam time); it will go back"
                        " to the agency handling it.",
        "reopen_note": "Why you reopen it (optional)",
        "reopen": "Reopen", "reopening": "Sending…",
        "reopened": "The report was reopened and sent back to the agency handling it.",
        "err_reopen": "The report could not be reopened:",
    },
}
MAX_MB = photos.MAX_BYTES // 1024 // 1024
for _lang, _t in LABELS.items():
    _t["photos_hint"] = _t["photos_hint"].format(max=photos.MAX_PHOTOS, mb=MAX_MB)

# The page script's own words (errors it finds before sending, states): given to it as JSON.
SCRIPT_KEYS = ("locating", "no_location_device", "pin_at", "no_pin", "sending", "submit",
               "fix_errors", "err_category", "err_location", "err_too_many", "err_too_large",
               "err_not_image", "err_network", "err_server", "remove_photo", "photo_n",
               "choose_value", "required", "done_expected", "done_duplicate")
# The tracking page script's (web/static/report/track.js: the reopen button).
TRACK_SCRIPT_KEYS = ("reopen", "reopening", "reopened", "err_reopen", "err_network")

_env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]),
                   trim_blocks=True, lstrip_blocks=True)
_env.filters.update(datetime=fmt.datetime)


def _json_for_script(value: object) -> Markup:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def _common(lang: str, path: str, query: dict[str, str] | None = None) -> dict[str, Any]:
    other = "en" if lang == "vi" else "vi"
    q = {k: v for k, v in (query or {}).items() if v}
    if other == "en":
        q["lang"] = "en"
    return {"lang": lang, "t": LABELS[lang], "static": STATIC,
            "suffix": "?lang=en" if lang == "en" else "",
            "other_lang_url": path + ("?" + urlencode(q) if q else "")}


def group_services(services: Sequence[dict[str, Any]], lang: str) -> list[dict[str, Any]]:
    """The service list as the category select shows it: by group, in the page's language."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for s in services:
        groups.setdefault(s["group_en" if lang == "en" else "group_vi"], []).append({
            "code": s["code"], "name": s["name_en" if lang == "en" else "name_vi"],
            "description": s["description_en" if lang == "en" else "description_vi"] or ""})
    return [{"name": g, "services": sorted(v, key=lambda x: x["name"])}
            for g, v in sorted(groups.items())]


def _attributes(services: Sequence[dict[str, Any]], lang: str) -> dict[str, list[dict[str, Any]]]:
    """Each service's variable attributes (Open311 service definitions) for the script to ask."""
    en = lang == "en"
    out: dict[str, list[dict[str, Any]]] = {}
    for s in services:
        attrs = []
        for a in sorted(s["attributes"], key=lambda a: a.get("order", 1)):
            if not a.get("variable", True):
                continue
            attrs.append({"code": a["code"], "datatype": a["datatype"],
                          "required": bool(a.get("required")),
                          "label": a.get("description_en" if en else "description_vi") or a["code"],
                          "values": [{"key": str(v["key"]), "name": v.get("name_en" if en else "name_vi")
                                      or str(v["key"])} for v in a.get("values", ())]})
        if attrs:
            out[s["code"]] = attrs
    return out


def report_page(*, lang: str, services: Sequence[dict[str, Any]],
                bbox: tuple[float, float, float, float], basemap_url: str) -> str:
    ctx = _common(lang, "/report")
    t = LABELS[lang]
    config = {"lang": lang, "bbox": bbox, "basemap": basemap_url, "max_photos": photos.MAX_PHOTOS,
              "max_bytes": photos.MAX_BYTES, "max_mb": MAX_MB,
              "attributes": _attributes(services, lang),
              "t": {k: t[k] for k in SCRIPT_KEYS}}
    ctx.update(title=t["report_title"], groups=group_services(services, lang),
               config=_json_for_script(config), basemap_url=basemap_url)
    return _env.get_template("report/report.html").render(ctx)


def _event(n: dict[str, Any], lang: str, agencies: dict[str, str]) -> str:
    t = LABELS[lang]
    if n["kind"] == "assign":
        return t["kind_assign"].format(agency=agencies.get(n.get("agency_code") or "", "")
                                       or t["agency_none"]).strip()
    if n["kind"] in ("duplicate", "unlink"):
        return t["kind_" + n["kind"]]
    if n["from_status"] == "resolved" and n["to_status"] == "assigned":
        return t["kind_reopen"]  # the one move back to the agency (workflow.ALLOWED)
    return status_label(n["to_status"], lang)


def status_label(status: str | None, lang: str) -> str:
    if status is None:
        return fmt.EMPTY
    vi, en = INCIDENT_STATUSES.get(status, (status, status))
    return en if lang == "en" else vi


def track_page(*, lang: str, report: dict[str, Any] | None, code: str = "",
               error: str | None = None, agencies: dict[str, str] | None = None) -> str:
    """The tracking page of REPORT (api/routes/reports.tracking), or the code form alone (with
    ERROR: a key of LABELS) when there is none. While the report may be reopened (its
    `reopen_until`, decided in gis) the page offers the reopen button (static/report/track.js)."""
    path = f"/report/track/{report['token']}" if report else "/report/track"
    ctx = _common(lang, path, {"code": code} if not report and code else None)
    t = LABELS[lang]
    view = None
    if report is not None:
        names = agencies or {}
        history = [{"at": fmt.datetime(dt.datetime.fromisoformat(n["at"])),
                    "event": _event(n, lang, names),
                    # System notes are the platform's own English words; the event says it.
                    "note": n["note"] if n["actor"] != "system" else None,
                    "by": t["actor_" + n["actor"]] if n["actor"] in ("citizen", "system", "staff")
                    else t["actor_staff"]} for n in report["history"]]
        view = {**report, "status_text": status_label(report["status"], lang),
                "original_status_text": status_label(report["original_status"], lang),
                "service": report["service_name"][lang],
                "agency_name": report["agency"][lang] or t["agency_none"],
                "reported": fmt.datetime(dt.datetime.fromisoformat(report["reported_at"])),
                "expected": fmt.datetime(dt.datetime.fromisoformat(report["expected_at"]))
                if report["expected_at"] else fmt.EMPTY,
                "history_rows": history,
                "duplicate_text": t["duplicate"].format(id=report["duplicate_of"])
                if report["duplicate_of"] else None,
                # reopen_until is given only while the citizen may reopen (gis decides).
                "reopen_text": t["reopen_until"].format(until=fmt.datetime(
                    dt.datetime.fromisoformat(report["reopen_until"])))
                if report.get("reopen_until") else None}
    config = {"lang": lang, "token": report["token"] if report else None,
              "t": {k: t[k] for k in TRACK_SCRIPT_KEYS}}
    ctx.update(title=t["track_title"], r=view, code=code, error=t[error] if error else None,
               config=_json_for_script(config))
    return _env.get_template("report/track.html").render(ctx)
