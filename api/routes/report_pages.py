"""The citizens' pages: `/report` (make a report) and `/report/track/{token}` (follow it), built
by web/report_pages.py from what is read here. Vietnamese whatever the browser says (the
province's citizens' pages, like the map), English with ?lang=en.

  GET /report                   the report form (categories, map, photos, contact)
  GET /report/track?code=       the code form; with a code, the way to its tracking page
  GET /report/track/{token}     status, agency and answer, history in Vietnam time
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.responses import Response

from api.deps import Conn, SettingsDep
from api.route_docs import problems
from api.routes.reports import tracking
from gis.reports import queries as q
from gis.reports import reference
from layers.errors import NotFound
from web import report_pages

router = APIRouter(tags=["citizen pages"])
TOKEN = re.compile(r"^[A-Za-z0-9_-]{4,64}$")
LangQ = Annotated[str | None, Query(description="`en` for English; anything else Vietnamese",
                                    max_length=10)]
NO_CACHE = {"Cache-Control": "no-cache"}


def _lang(lang: str | None) -> str:
    return "en" if lang == "en" else "vi"


@router.get("/report", response_class=HTMLResponse, responses=problems(400, page=True))
def report_page(conn: Conn, settings: SettingsDep, lang: LangQ = None) -> HTMLResponse:
    row = conn.execute(q.PROVINCE_BBOX).fetchone()
    bbox = (float(row[0]), float(row[1]), float(row[2]), float(row[3])) \
        if row and row[0] is not None else (105.9, 20.9, 106.4, 21.4)
    html = report_pages.report_page(lang=_lang(lang), services=reference.services(conn),
                                    bbox=bbox, basemap_url=settings.basemap_url)
    return HTMLResponse(html, headers=NO_CACHE)


def _agencies(conn: Any, lang: str) -> dict[str, str]:
    rows = conn.execute("SELECT code, name_vi, name_en FROM agencies").fetchall()
    return {r[0]: r[2] if lang == "en" else r[1] for r in rows}


# 303 to the report's page for a well-formed code; a client that follows it may meet that page's 404.
@router.get("/report/track", response_class=HTMLResponse, responses={
    303: {"description": "to the tracking page of the code given"}, **problems(400, 404, page=True)})
def track_form(lang: LangQ = None,
               code: Annotated[str | None, Query(max_length=100,
                                                 description="a tracking code")] = None) -> Response:
    language = _lang(lang)
    code = (code or "").strip()
    if code and TOKEN.match(code):
        suffix = "?lang=en" if language == "en" else ""
        return RedirectResponse(f"/report/track/{code}{suffix}", status_code=303)
    html = report_pages.track_page(lang=language, report=None, code=code,
                                   error="track_bad_code" if code else None)
    return HTMLResponse(html, status_code=400 if code else 200, headers=NO_CACHE)


@router.get("/report/track/{token}", response_class=HTMLResponse,
            responses=problems(400, 404, page=True))
def track_page(token: Annotated[str, Path(max_length=100)], conn: Conn, settings: SettingsDep,
               lang: LangQ = None) -> HTMLResponse:
    language = _lang(lang)
    if not TOKEN.match(token):
        return HTMLResponse(report_pages.track_page(lang=language, report=None, code=token,
                                                    error="track_bad_code"),
                            status_code=400, headers=NO_CACHE)
    try:
        data = tracking(conn, token, reopen_days=settings.report_reopen_days)
    except NotFound:
        return HTMLResponse(report_pages.track_page(lang=language, report=None, code=token,
                                                    error="track_not_found"),
                            status_code=404, headers=NO_CACHE)
    html = report_pages.track_page(lang=language, report=data, agencies=_agencies(conn, language))
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})
