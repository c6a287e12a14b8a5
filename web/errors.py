"""The error page a person sees when a page (not an API call) fails: the status, a title in their
language, the message and every field in error with its reason (api/errors.py words them in
the user's language), with the way back. api/errors.py decides when to show it."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

TITLES = {
    "vi": {400: "Yêu cầu không hợp lệ", 401: "Cần đăng nhập", 403: "Không có quyền truy cập",
           404: "Không tìm thấy", 422: "Dữ liệu không hợp lệ", 503: "Dịch vụ tạm thời gián đoạn",
           500: "Lỗi hệ thống"},
    "en": {400: "Bad request", 401: "Sign-in required", 403: "Forbidden", 404: "Not found",
           422: "Invalid data", 503: "Service temporarily unavailable", 500: "Server error"},
}
FALLBACK = {"vi": "Có lỗi", "en": "Error"}


def error_page(status: int, detail: str, lang: str,
               problems: Sequence[tuple[str | None, str]] = ()) -> str:
    lang = lang if lang in TITLES else "vi"
    title = TITLES[lang].get(status, FALLBACK[lang])
    back = "Về trang tra cứu thửa đất" if lang == "vi" else "Back to parcel search"
    items = "".join(f"<li><b>{escape(field)}</b>: {escape(reason)}</li>" if field
                    else f"<li>{escape(reason)}</li>" for field, reason in problems)
    listed = f'<ul id="problems">{items}</ul>' if len(problems) > 1 else ""
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="stylesheet" href="/ogc/static/vendor/bootstrap/css/bootstrap.min.css"></head>'
        f'<body class="p-4"><h1 class="h4">{status} – {escape(title)}</h1>'
        f'<p id="error">{escape(detail)}</p>{listed}<p>'
        f'<a href="/parcels?lang={lang}">{escape(back)}</a> · '
        f'<a href="/?lang={lang}">{"Bản đồ điều hành" if lang == "vi" else "Command map"}</a></p>'
        '</body></html>'
    )
