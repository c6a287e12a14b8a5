"""A thin adapter from FastAPI to pygeoapi's framework-free core (`pygeoapi.api`).

One pygeoapi `API` object per access profile (what a principal may see), each built from the
catalogue, so collection lists, queryables, HTML pages and the OpenAPI document of a profile
contain only its layers and fields.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pygeoapi.api import API, APIRequest
from pygeoapi.openapi import get_oas
from starlette.concurrency import run_in_threadpool

from api.ogc.config import add_keyset_parameter, build_config, layer_extents
from gis.db import connection
from gis.settings import get_settings
from layers.access import Principal
from layers.catalogue import LAYERS


class PygeoapiBridge:
    def __init__(self) -> None:
        self._apis: dict[tuple[str, ...], API] = {}
        self._extents: dict[str, dict[str, Any]] | None = None
        self._lock = threading.Lock()

    def extents(self) -> dict[str, dict[str, Any]]:
        if self._extents is None:
            with connection() as conn:
                self._extents = layer_extents(conn, LAYERS)
        return self._extents

    def api_for(self, who: Principal) -> API:
        api = self._apis.get(who.key)
        if api is None:
            with self._lock:
                api = self._apis.get(who.key)
                if api is None:
                    config = build_config(get_settings(), who, self.extents())
                    api = API(config, add_keyset_parameter(get_oas(config)))
                    self._apis[who.key] = api
        return api

    async def call(self, fn: Callable[..., tuple[dict[str, str], int, Any]], request: Request,
                   who: Principal, *args: str) -> Response:
        """Run a pygeoapi core function for WHO. Its answers, errors included, are already OGC
        documents (pygeoapi's own exception format), so they pass through unchanged."""
        api = self.api_for(who)
        api_request = await APIRequest.from_starlette(request, api.locales)
        if not api_request.is_valid():
            headers, status, content = api.get_format_exception(api_request)
        else:
            headers, status, content = await run_in_threadpool(fn, api, api_request, *args)
        return to_response(headers, status, content)


def to_response(headers: dict[str, str], status: int, content: Any) -> Response:
    ctype = headers.get("Content-Type", "")
    if ctype.startswith("text/html"):
        response: Response = HTMLResponse(content, status_code=status)
    elif isinstance(content, dict):
        response = JSONResponse(content, status_code=status)
    else:
        response = Response(content, status_code=status)
    response.headers.update(headers)
    return response
