"""`/`: the command map page (web/map_page.py builds it with folium).

The page is the same for every caller (it inlines only the anonymous layer manifest), so it is
built once per language and kept for a few minutes; a signed-in user's script fetches their own
manifest from /api/map/layers.
"""

from __future__ import annotations

import threading
import time
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from api.deps import SettingsDep
from api.route_docs import problems
from gis.db import connection
from gis.maps.reference import reference
from gis.settings import Settings
from layers.access import ANONYMOUS
from web import manifest, map_page

router = APIRouter(tags=["map"])
PAGE_SECONDS = 300
_pages: dict[tuple[str, str], tuple[float, str]] = {}
_lock = threading.Lock()


def page_html(lang: str, settings: Settings) -> str:
    key = (lang, settings.basemap_url)
    with _lock:
        hit = _pages.get(key)
        if hit and time.monotonic() - hit[0] < PAGE_SECONDS:
            return hit[1]
    with connection() as conn:
        public = manifest.manifest(reference(conn), ANONYMOUS)
    text = map_page.render(lang, settings, public)
    with _lock:
        _pages[key] = (time.monotonic(), text)
    return text


@router.get("/", response_class=HTMLResponse, responses=problems(400, page=True))
async def command_map(
    settings: SettingsDep,
    lang: Annotated[str | None, Query(
        description="`en` for English; anything else (or nothing) is Vietnamese",
        examples=["en"], max_length=100)] = None,
) -> HTMLResponse:
    """The province map: Vietnamese by default (whatever the browser's language: the operations
    centre works in Vietnamese), `?lang=en` for English; the page's toggle switches in place."""
    lang = "en" if lang == "en" else "vi"
    text = await run_in_threadpool(page_html, lang, settings)
    return HTMLResponse(text, headers={"Cache-Control": "no-cache"})
