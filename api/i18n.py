"""Vietnamese first, English on request (`?lang=en` or Accept-Language)."""

from fastapi import Request

LANGS = ("vi", "en")


def request_lang(request: Request) -> str:
    lang = request.query_params.get("lang")
    if lang in LANGS:
        return lang
    accept = request.headers.get("accept-language", "")
    if accept.lower().startswith("en"):
        return "en"
    return "vi"
