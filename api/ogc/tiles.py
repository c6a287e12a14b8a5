"""Vector tiles (OGC API - Tiles, WebMercatorQuad) with ETag, Cache-Control and an in-process
cache: tiles are immutable until the data changes, and the map asks for the same ones again
and again."""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from fastapi import Request
from fastapi.responses import Response

from gis.db import connection
from gis.tiles import render_tile
from layers.access import Principal, readable_fields, row_filter
from layers.errors import BadRequest, NotFound
from layers.model import Access, Layer
from layers.tiles_sql import TileOutOfRange

MVT = "application/vnd.mapbox-vector-tile"
TILE_MATRIX_SETS = ("WebMercatorQuad",)
MAX_AGE = 60
# (layer id, access profile, z, x, y)
TileKey = tuple[str, tuple[str, ...], int, int, int]


class TileCache:
    """A byte-bounded LRU with a time-to-live (fresh data within a minute)."""

    def __init__(self, max_bytes: int = 64 * 1024 * 1024, ttl: float = MAX_AGE):
        self.max_bytes, self.ttl = max_bytes, ttl
        self._items: OrderedDict[TileKey, tuple[float, bytes, str]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        # Told the layer id on every forget(): what else this process derives from a layer's
        # data follows its writes too (the collections' extents: api/ogc/bridge.py).
        self.listeners: list[Callable[[str], None]] = []

    def get(self, key: TileKey) -> tuple[bytes, str] | None:
        with self._lock:
            hit = self._items.get(key)
            if hit is None:
                return None
            if time.monotonic() - hit[0] > self.ttl:
                self._drop(key)
                return None
            self._items.move_to_end(key)
            return hit[1], hit[2]

    def put(self, key: TileKey, data: bytes, etag: str) -> None:
        with self._lock:
            if key in self._items:
                self._drop(key)
            self._items[key] = (time.monotonic(), data, etag)
            self._size += len(data)
            while self._size > self.max_bytes and self._items:
                self._drop(next(iter(self._items)))

    def forget(self, layer_id: str) -> None:
        """Drop one layer's tiles: after an import or an edit this process serves the new data at
        once (browsers may still hold theirs for MAX_AGE seconds)."""
        with self._lock:
            for key in [k for k in self._items if k[0] == layer_id]:
                self._drop(key)
        for listener in self.listeners:
            listener(layer_id)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._size = 0

    def _drop(self, key: TileKey) -> None:
        _, data, _ = self._items.pop(key)
        self._size -= len(data)


CACHE = TileCache()


def _int(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise BadRequest(f"{name}: {raw!r} is not an integer", parameter=name) from None


def tile(layer: Layer, who: Principal, tms: str, z: str, y: str, x: str, request: Request) -> Response:
    if tms not in TILE_MATRIX_SETS:
        raise NotFound(f"tile matrix set {tms!r} not found; available: {', '.join(TILE_MATRIX_SETS)}")
    f = request.query_params.get("f")
    if f not in (None, "mvt", "pbf"):
        raise BadRequest(f"f: unsupported tile format {f!r}; use mvt", parameter="f")
    zi, yi, xi = _int("tileMatrix", z), _int("tileRow", y), _int("tileCol", x)
    key = (layer.id, who.key, zi, xi, yi)
    hit = CACHE.get(key)
    if hit is None:
        fields = readable_fields(layer, who)
        try:
            with connection() as conn:
                data = render_tile(conn, layer, fields, zi, xi, yi, row_filter(layer, who))
        except TileOutOfRange as e:
            raise NotFound(str(e)) from None
        etag = '"' + hashlib.blake2b(data, digest_size=12).hexdigest() + '"'
        CACHE.put(key, data, etag)
    else:
        data, etag = hit
    scope = "public" if layer.access is Access.PUBLIC else "private"
    headers = {"ETag": etag, "Cache-Control": f"{scope}, max-age={MAX_AGE}"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    if not data:
        return Response(status_code=204, headers=headers)
    return Response(data, media_type=MVT, headers=headers)
