"""Landing page: what this server is and which layers it offers (until the map takes over)."""

from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.i18n import request_lang
from layers import LAYERS, Access

router = APIRouter(tags=["landing"])

TEXT = {
    "vi": {
        "title": "GeoIOC – Nền tảng GIS mở cho Trung tâm điều hành thông minh",
        "intro": "Dữ liệu hiển thị là dữ liệu mẫu tổng hợp (không phải dữ liệu thật) đặt tại vị trí "
        "tỉnh Bắc Ninh.",
        "layers": "Lớp dữ liệu công khai",
        "other": "English",
        "other_href": "?lang=en",
    },
    "en": {
        "title": "GeoIOC – open GIS platform for an Intelligent Operations Center",
        "intro": "The data shown is a synthetic sample (not real data) placed at Bắc Ninh province.",
        "layers": "Public layers",
        "other": "Tiếng Việt",
        "other_href": "?lang=vi",
    },
}


@router.get("/", response_class=HTMLResponse)
def landing(request: Request) -> HTMLResponse:
    lang = request_lang(request)
    t = TEXT[lang]
    items = "".join(
        f"<li><b>{escape(layer.title(lang))}</b> <code>{escape(layer.id)}</code></li>"
        for layer in LAYERS
        if layer.access is Access.PUBLIC
    )
    html = f"""<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8"><title>{escape(t["title"])}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 50rem; margin: 2rem auto">
<p style="text-align:right"><a href="{t["other_href"]}">{t["other"]}</a></p>
<h1>{escape(t["title"])}</h1><p>{escape(t["intro"])}</p>
<h2>{escape(t["layers"])}</h2><ul>{items}</ul>
<p><a href="/healthz">/healthz</a></p>
</body></html>"""
    return HTMLResponse(html)
