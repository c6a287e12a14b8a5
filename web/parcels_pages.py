"""Server-rendered pages of parcel inspection (/parcels, /parcels/{id}, the HTML extract).

Plain HTML from Jinja2 templates (web/templates/parcels), Vietnamese by default and English with
?lang=en, styled with the vendored Bootstrap and mapped with the vendored Leaflet (served at
/ogc/static): nothing is fetched from another host. The pages show what the caller may read,
decided by the same functions as the API (the route passes the data in).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from jinja2.runtime import Context
from markupsafe import Markup

from gis import fmt
from gis.auth.roles import role_title
from gis.parcels import extract
from gis.parcels.checks import AREA_TOLERANCE_M2, AREA_TOLERANCE_SHARE
from layers.catalogue import get_layer

TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC = "/ogc/static"

LABELS: dict[str, dict[str, str]] = {
    "vi": {
        "search_title": "Tra cứu thửa đất", "map": "Bản đồ điều hành", "sign_in": "Đăng nhập",
        "sign_out": "Đăng xuất",
        "other_lang": "English", "synthetic": "Dữ liệu mẫu tổng hợp – không có giá trị pháp lý.",
        "commune": "Xã/phường (mã hoặc tên)", "sheet": "Tờ bản đồ số", "parcel": "Thửa số",
        "land_use": "Loại đất", "any": "— tất cả —", "owner": "Người sử dụng đất",
        "owner_hint": "Chỉ cán bộ địa chính được tra cứu theo tên (không phân biệt dấu, hoa/thường).",
        "point": "Điểm (kinh độ, vĩ độ)", "xy": "Điểm VN-2000 (X, Y)", "search": "Tra cứu",
        "reset": "Xóa", "draw": "Vẽ vùng tìm", "finish": "Kết thúc vùng", "click_hint":
        "Nhấp bản đồ để chọn điểm; “Vẽ vùng tìm” rồi nhấp các đỉnh, “Kết thúc vùng” để tìm trong vùng.",
        "polygon": "Vùng vẽ", "results": "Kết quả", "none": "Không tìm thấy thửa nào.",
        "more": "Trang sau", "prev": "Trang trước", "key": "Số hiệu", "area": "Diện tích (m²)",
        "commune_name": "Xã/phường", "open": "Xem", "parcel_title": "Thửa đất",
        "attributes": "Thông tin thửa đất", "area_check": "Kiểm tra diện tích",
        "legal_area": "Diện tích pháp lý", "computed_area": "Diện tích tính theo VN-2000",
        "difference": "Chênh lệch", "tolerance": "Ngưỡng cho phép", "flagged": "Vượt ngưỡng",
        "ok": "Trong ngưỡng", "land_use_codes": "Mục đích sử dụng", "neighbours": "Thửa liền kề",
        "shared": "Cạnh chung (m)", "zones": "Quy hoạch sử dụng đất", "zone": "Loại đất quy hoạch",
        "plan": "Quy hoạch", "share": "Tỷ lệ diện tích", "conflicts": "Mâu thuẫn quy hoạch",
        "no_conflicts": "Không có mâu thuẫn quy hoạch.",
        "incidents": "Sự cố trong thửa và trong vòng 50 m (12 tháng)",
        "cameras": "Camera có vùng quan sát phủ thửa đất", "history": "Lịch sử biến động",
        "version": "Phiên bản", "from": "Từ", "to": "Đến", "by": "Người sửa", "changes": "Thay đổi",
        "note": "Lý do", "current": "hiện hành", "extract_html": "Trích lục (HTML)",
        "extract_pdf": "Trích lục (PDF)", "as_of": "Xem tại thời điểm", "show": "Xem",
        "as_of_note": "Hiện trạng thửa đất tại thời điểm", "none_found": "Không có.",
        "category": "Lĩnh vực", "reported": "Thời điểm", "distance": "Khoảng cách (m)",
        "title": "Tiêu đề", "status": "Trạng thái", "camera": "Camera", "covered": "Phủ",
        "json": "JSON", "flags": "Cảnh báo", "area_discrepancy": "Sai lệch diện tích",
        "zoning_conflict": "Mâu thuẫn quy hoạch", "geometry": "hình thể", "deleted": "đã xóa",
        "error": "Lỗi", "zoom_in": "Phóng to", "zoom_out": "Thu nhỏ",
        "limit": "Số kết quả mỗi trang", "offset": "Số kết quả bỏ qua",
        "area_rule": "|diện tích tính toán − diện tích pháp lý| > max({share} diện tích pháp lý; "
                     "{min} m²)",
    },
    "en": {
        "search_title": "Parcel search", "map": "Command map", "sign_in": "Sign in",
        "sign_out": "Sign out",
        "other_lang": "Tiếng Việt", "synthetic": "Synthetic sample data – no legal value.",
        "commune": "Commune (code or name)", "sheet": "Map sheet", "parcel": "Parcel number",
        "land_use": "Land use", "any": "— any —", "owner": "Land user",
        "owner_hint": "Only land officers may search by name (accents and case ignored).",
        "point": "Point (longitude, latitude)", "xy": "VN-2000 point (X, Y)", "search": "Search",
        "reset": "Clear", "draw": "Draw area", "finish": "Finish area", "click_hint":
        "Click the map to pick a point; “Draw area”, click the corners, then “Finish area”.",
        "polygon": "Drawn area", "results": "Results", "none": "No parcel found.",
        "more": "Next page", "prev": "Previous page", "key": "Key", "area": "Area (m²)",
        "commune_name": "Commune", "open": "Open", "parcel_title": "Parcel",
        "attributes": "Parcel attributes", "area_check": "Area check",
        "legal_area": "Legal area", "computed_area": "Area computed in VN-2000",
        "difference": "Difference", "tolerance": "Tolerance", "flagged": "Exceeds tolerance",
        "ok": "Within tolerance", "land_use_codes": "Land use", "neighbours": "Adjacent parcels",
        "shared": "Shared boundary (m)", "zones": "Land-use planning", "zone": "Planned use",
        "plan": "Plan", "share": "Share of area", "conflicts": "Zoning conflicts",
        "no_conflicts": "No zoning conflict.", "incidents": "Incidents inside or within 50 m (12 months)",
        "cameras": "Cameras whose field of view covers the parcel", "history": "Edit history",
        "version": "Version", "from": "From", "to": "To", "by": "Changed by", "changes": "Changes",
        "note": "Reason", "current": "current", "extract_html": "Extract (HTML)",
        "extract_pdf": "Extract (PDF)", "as_of": "Show as of", "show": "Show",
        "as_of_note": "The parcel as it was at", "none_found": "None.",
        "category": "Category", "reported": "Reported", "distance": "Distance (m)",
        "title": "Title", "status": "Status", "camera": "Camera", "covered": "Covered",
        "json": "JSON", "flags": "Warnings", "area_discrepancy": "Area discrepancy",
        "zoning_conflict": "Zoning conflict", "geometry": "shape", "deleted": "deleted",
        "error": "Error", "zoom_in": "Zoom in", "zoom_out": "Zoom out",
        "limit": "Results per page", "offset": "Results skipped",
        "area_rule": "|computed − legal| > max({share} of legal, {min} m²)",
    },
}

for _lang, _t in LABELS.items():
    _t["area_rule"] = _t["area_rule"].format(
        share=fmt.number(100 * AREA_TOLERANCE_SHARE, _lang) + "%",
        min=fmt.number(AREA_TOLERANCE_M2, _lang))

# The parcel's history (web/templates/parcels/_history.html): versions in legal order.
HISTORY_LABELS: dict[str, dict[str, str]] = {
    "vi": {
        "history": "Lịch sử biến động", "legal_from": "Có hiệu lực từ", "decision": "Căn cứ",
        "recorded": "Ghi nhận vào hệ thống lúc", "no_legal_date": "chưa có ngày hiệu lực",
        "before": "Trước", "after": "Sau", "first_version": "Phiên bản đầu tiên được ghi nhận.",
        "no_changes": "Không thay đổi thông tin nào bạn được xem.", "view_version": "Xem phiên bản này",
        "outline_change": "Hình thể thửa đất trước và sau thay đổi",
        "outline_area": "Hình thể (diện tích đo theo VN-2000, m²)",
    },
    "en": {
        "history": "Parcel history", "legal_from": "Legally valid from", "decision": "Decision",
        "recorded": "Recorded in the system", "no_legal_date": "no legal date",
        "before": "Before", "after": "After", "first_version": "First recorded version.",
        "no_changes": "Nothing you may see changed.", "view_version": "View this version",
        "outline_change": "The parcel's outline before and after the change",
        "outline_area": "Outline (area measured in VN-2000, m²)",
    },
}
for _lang, _labels in HISTORY_LABELS.items():
    LABELS[_lang].update(_labels)

OUTLINE_PX = 180
OUTLINE_PAD_PX = 8


def _rings(geometry: dict[str, Any]) -> list[list[list[float]]]:
    polygons = [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
    return [ring for polygon in polygons for ring in polygon]


def outline_svg(before: dict[str, Any], after: dict[str, Any], title: str, size: int = OUTLINE_PX) -> Markup:
    """Both outlines of a parcel (GeoJSON, lon/lat) in one small SVG at the same scale: the old
    one dashed, the new one solid, so a resurvey or a split shows at a glance without a map
    library. Longitudes are scaled by cos(latitude): at parcel size that is a true shape."""
    rings = {"before": _rings(before), "after": _rings(after)}
    points = [pt for rs in rings.values() for ring in rs for pt in ring]
    lons, lats = [pt[0] for pt in points], [pt[1] for pt in points]
    kx = math.cos(math.radians((min(lats) + max(lats)) / 2))
    width = (max(lons) - min(lons)) * kx
    height = max(lats) - min(lats)
    scale = (size - 2 * OUTLINE_PAD_PX) / max(width, height, 1e-12)
    dx = (size - width * scale) / 2
    dy = (size - height * scale) / 2

    def path(rs: list[list[list[float]]]) -> str:
        return " ".join(
            "M" + " L".join(f"{dx + (x - min(lons)) * kx * scale:.1f},{dy + (max(lats) - y) * scale:.1f}"
                            for x, y, *_ in ring) + " Z" for ring in rs)

    return Markup(
        f'<svg class="history-map" viewBox="0 0 {size} {size}" width="{size}" height="{size}" '
        f'role="img" aria-label="{Markup.escape(title)}"><title>{Markup.escape(title)}</title>'
        f'<path class="outline-before" d="{path(rings["before"])}"/>'
        f'<path class="outline-after" d="{path(rings["after"])}"/></svg>')


def _shown(name: str, value: Any, value_labels: dict[str, dict[str, str]], lang: str) -> str:
    if name in value_labels and value is not None:
        return value_labels[name].get(value, str(value))
    return field_text(value, name, lang)


def history_view(history: list[dict[str, Any]], lang: str, field_titles: dict[str, str],
                 value_labels: dict[str, dict[str, str]]) -> list[dict[str, Any]]:
    """The parcel file's history (oldest first: legal order) as the page shows it: each change
    titled and its values readable, a changed outline as a before/after SVG."""
    out = []
    for h in history:
        changes = h.get("changes") or {}
        geometry = changes.get("geometry")
        out.append({**h, "geometry": geometry,
                    "change_list": [{"field": k, "title": field_titles.get(k, k),
                                     "from": _shown(k, v["from"], value_labels, lang),
                                     "to": _shown(k, v["to"], value_labels, lang)}
                                    for k, v in changes.items() if k != "geometry"],
                    "svg": outline_svg(geometry["from"], geometry["to"],
                                       LABELS[lang]["outline_change"]) if geometry else None})
    return out


_env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]),
                   trim_blocks=True, lstrip_blocks=True)

# --- numbers, dates and times in the page's language (gis/fmt.py) ------------------------------

PARCEL_FIELDS = {f.name: f for f in get_layer("parcels").fields}


@pass_context
def _num(ctx: Context, value: Any, decimals: int = 0, sign: bool = False, group: bool = True) -> str:
    return fmt.number(value, ctx["lang"], decimals, sign=sign, group=group)


@pass_context
def _field_value(ctx: Context, value: Any, name: str) -> str:
    return field_text(value, name, ctx["lang"])


def field_text(value: Any, name: str, lang: str) -> str:
    """A parcel field's value as the catalogue types it: areas with their stored decimals,
    times in Vietnam time, numbers that are identifiers (sheet, parcel, version) as they are."""
    f = PARCEL_FIELDS.get(name)
    if value is None or value == "":
        return fmt.EMPTY
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if f is None or isinstance(value, bool):
        return str(value)
    if f.type == "float" and isinstance(value, int | float):
        return fmt.number(value, lang, 2 if f.decimals is None else f.decimals)
    if f.type == "datetime":
        return fmt.datetime(value)
    if f.type == "date":
        return fmt.date(value)
    return str(value)


_env.filters.update(num=_num, date=fmt.date, datetime=fmt.datetime, field_value=_field_value)


# Credentials a page can end with its sign-out button: the web session (the cookie set at sign-in
# on the map). A browser's HTTP Basic password cannot be forgotten by a page, so no button then.
SESSION_CREDENTIALS = frozenset({"cookie", "jwt"})


def _common(lang: str, user: str | None, roles: list[str], path: str,
            query: dict[str, Any], credential: str = "") -> dict[str, Any]:
    # Every link keeps the page's language in its query (`lang=`, the one way the pages carry
    # it): without it a Vietnamese page's link would open in the browser's Accept-Language.
    other = "en" if lang == "vi" else "vi"
    q = {k: v for k, v in query.items() if v not in (None, "") and k != "lang"}
    here = path + "?" + urlencode({**q, "lang": lang})
    after = path + "?" + urlencode({"lang": lang})
    return {"lang": lang, "t": LABELS[lang], "user": user,
            "roles": ", ".join(role_title(r, lang) for r in roles),
            "static": STATIC, "lang_q": "lang=" + lang,
            "other_lang_url": path + "?" + urlencode({**q, "lang": other}),
            "sign_in_url": "/parcels/sign-in?" + urlencode({"next": here}),
            "sign_out_url": ("/sign-out?" + urlencode({"next": after})
                             if user and credential in SESSION_CREDENTIALS else None)}


def search_page(*, lang: str, user: str | None, roles: list[str], query: dict[str, Any],
                land_use_codes: list[tuple[str, str]], owner_allowed: bool,
                results: list[dict[str, Any]] | None, more: bool, error: str | None,
                basemap_url: str, limit: int, offset: int, credential: str = "",
                problems: Sequence[tuple[str | None, str]] = ()) -> str:
    """PROBLEMS: every field in error with its reason (in LANG), listed under the form's own
    labels and marked on the form; ERROR is the whole message (shown when there is no list)."""
    ctx = _common(lang, user, roles, "/parcels", query, credential)
    q = {k: v for k, v in query.items() if v not in (None, "")}

    def page(off: int) -> str:
        return "/parcels?" + urlencode({**q, "offset": off, "limit": limit, "lang": lang})

    ctx.update(q=query, land_use_codes=land_use_codes, owner_allowed=owner_allowed,
               results=results, error=error, basemap_url=basemap_url,
               problems=[{"field": f, "label": LABELS[lang].get(f, f) if f else "", "reason": r}
                         for f, r in problems],
               bad_fields={f for f, _ in problems if f},
               next_url=page(offset + limit) if more else None,
               prev_url=page(max(offset - limit, 0)) if offset > 0 else None,
               title=LABELS[lang]["search_title"])
    return _env.get_template("parcels/search.html").render(ctx)


def parcel_page(*, lang: str, user: str | None, roles: list[str], parcel: dict[str, Any],
                query: dict[str, Any], map_data: dict[str, Any], basemap_url: str,
                field_titles: dict[str, str], value_labels: dict[str, dict[str, str]],
                credential: str = "") -> str:
    ctx = _common(lang, user, roles, f"/parcels/{parcel['id']}", query, credential)
    as_of = query.get("as_of") or ""
    suffix = urlencode({k: v for k, v in (("as_of", as_of), ("lang", lang)) if v})
    ctx.update(p=parcel, map_data=map_data, basemap_url=basemap_url, as_of=as_of,
               field_titles=field_titles, value_labels=value_labels,
               history=history_view(parcel.get("history", []), lang, field_titles, value_labels),
               suffix=("?" + suffix) if suffix else "",
               title=f"{LABELS[lang]['parcel_title']} {parcel['key']}")
    return _env.get_template("parcels/parcel.html").render(ctx)


def extract_page(ex: extract.Extract, lang: str) -> str:
    ctx = {"lang": lang, "t": extract.TEXTS[lang], "ex": ex, "svg": extract.svg(ex.drawing),
           "lines": extract.document_lines(ex, lang), "number": extract.extract_number(ex),
           "issued": extract.issued_text(ex, lang),
           "rows": [(extract.ring_caption(r, ex, lang), [extract.vertex_cells(v, lang) for v in r.vertices])
                    for r in ex.rings]}
    return _env.get_template("parcels/extract.html").render(ctx)
