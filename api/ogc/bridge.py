"""A thin adapter from FastAPI to pygeoapi's framework-free core (`pygeoapi.api`).

One pygeoapi `API` object per access profile (what a principal may see), each built from the
catalogue, so collection lists, queryables, HTML pages and the OpenAPI document of a profile
contain only its layers and fields.

The collections' extents follow the data: every profile's configuration holds the same extent
dict of a layer, updated in place (pygeoapi reads it on every request). A write through this
process (an import, a parcel edit: they call TILES.forget, which tells forget_extents) makes the
layer's extents be recomputed on the next request; writes by other processes (the simulator,
another server, the command line) show within EXTENT_TTL seconds, when the temporal extents,
two index-friendly aggregates per layer, are recomputed. The spatial extent (ST_Extent over the
layer) is recomputed only after a write here or at start.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pygeoapi.api import API, APIRequest
from pygeoapi.openapi import get_oas
from starlette.concurrency import run_in_threadpool

from api.i18n import request_lang
from api.ogc import html_locale
from api.ogc.config import add_keyset_parameter, build_config, layer_extents, temporal_extent
from gis.db import connection
from gis.settings import get_settings
from layers.access import Principal
from layers.catalogue import LAYERS


class PygeoapiBridge:
    # Seconds after which the temporal extents are read again (writes by other processes).
    EXTENT_TTL = 30.0

    def __init__(self) -> None:
        self._apis: dict[tuple[str, ...], API] = {}
        # layer id -> its extents; the dicts are shared by every profile's config and updated
        # in place, never replaced.
        self._extents: dict[str, dict[str, Any]] = {}
        self._stale: set[str] = {layer.id for layer in LAYERS}
        self._temporal_at = -float("inf")
        self._lock = threading.Lock()
        self._extent_lock = threading.Lock()

    def forget_extents(self, layer_id: str) -> None:
        """LAYER_ID was written: recompute its extents on the next request."""
        self._stale.add(layer_id)

    def extents(self) -> dict[str, dict[str, Any]]:
        """Current extents (blocking: call from a worker thread)."""
        if self._stale or time.monotonic() - self._temporal_at > self.EXTENT_TTL:
            with self._extent_lock:
                self._refresh()
        return self._extents

    def _refresh(self) -> None:
        stale = [layer for layer in LAYERS if layer.id in self._stale]
        due = time.monotonic() - self._temporal_at > self.EXTENT_TTL
        if not stale and not due:
            return
        self._stale.difference_update(layer.id for layer in stale)
        try:
            with connection() as conn:
                for layer_id, extent in layer_extents(conn, tuple(stale)).items():
                    self._set(layer_id, extent)
                if due:
                    started = time.monotonic()
                    done = {layer.id for layer in stale}
                    for layer in LAYERS:
                        if layer.time_column and layer.id not in done:
                            self._set_temporal(layer.id, temporal_extent(conn, layer))
                    self._temporal_at = started
        except BaseException:
            self._stale.update(layer.id for layer in stale)
            raise

    def _set(self, layer_id: str, extent: dict[str, Any]) -> None:
        # Key by key, never emptied: a request reading the dict meanwhile (pygeoapi, on another
        # thread) sees the old or the new value of each member, never a missing "spatial".
        current = self._extents.setdefault(layer_id, {})
        current.update(extent)
        for key in [k for k in current if k not in extent]:
            current.pop(key, None)

    def _set_temporal(self, layer_id: str, temporal: dict[str, Any] | None) -> None:
        current = self._extents.setdefault(layer_id, {})
        if temporal is None:
            current.pop("temporal", None)
        else:
            current["temporal"] = temporal

    def api_for(self, who: Principal) -> API:
        extents = self.extents()
        api = self._apis.get(who.key)
        if api is None:
            with self._lock:
                api = self._apis.get(who.key)
                if api is None:
                    config = build_config(get_settings(), who, extents)
                    api = API(config, add_keyset_parameter(get_oas(config)))
                    self._apis[who.key] = api
        return api

    async def call(self, fn: Callable[..., tuple[dict[str, str], int, Any]], request: Request,
                   who: Principal, *args: str) -> Response:
        """Run a pygeoapi core function for WHO. Its answers, errors included, are already OGC
        documents (pygeoapi's own exception format), so they pass through unchanged."""
        # Extents may be read from the database: not on the event loop.
        api = await run_in_threadpool(self.api_for, who)
        api_request = await APIRequest.from_starlette(request, api.locales)
        if not api_request.is_valid():
            headers, status, content = api.get_format_exception(api_request)
        else:
            headers, status, content = await run_in_threadpool(fn, api, api_request, *args)
        return to_response(headers, status, content, request_lang(request),
                           (get_settings().base_url, str(request.base_url).rstrip("/")))


def to_response(headers: dict[str, str], status: int, content: Any, lang: str = "vi",
                bases: tuple[str, ...] = ()) -> Response:
    """pygeoapi's answer as a response; an HTML page finished in LANG (api/ogc/html_locale)."""
    ctype = headers.get("Content-Type", "")
    if ctype.startswith("text/html"):
        if isinstance(content, str):
            content = html_locale.localise(content, lang, bases)
        response: Response = HTMLResponse(content, status_code=status)
    elif isinstance(content, dict):
        response = JSONResponse(content, status_code=status)
    else:
        response = Response(content, status_code=status)
    response.headers.update(headers)
    return response
