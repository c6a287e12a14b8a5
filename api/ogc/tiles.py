"""Vector tiles (OGC API - Tiles, WebMercatorQuad) with ETag, Cache-Control and an in-process
cache: tiles are immutable until the data changes, and the map asks for the same ones again
and again."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping

from fastapi import Request
from fastapi.responses import Response

from api.ogc.params import parse_datetime
from gis import db
from gis.tiles import render_tile
from layers.access import Principal, readable_fields, row_filter
from layers.errors import BadRequest, NotFound
from layers.model import Access, Layer
from layers.tiles_sql import TileOutOfRange, TimeRange

MVT = "application/vnd.mapbox-vector-tile"
TILE_MATRIX_SETS = ("WebMercatorQuad",)
MAX_AGE = 60
# (layer id, access profile, z, x, y, datetime asked: its two ends as ISO text, "" when open,
# the tile filters asked: (field, value) pairs)
TileKey = tuple[str, tuple[str, ...], int, int, int, tuple[str, str] | None,
                tuple[tuple[str, str], ...]]
# The longest value a tile filter takes (a code, a period).
MAX_FILTER_CHARS = 100


class TileCache:
    """A byte-bounded LRU with a time-to-live (fresh data within a minute). A tile rendered on a
    read replica keeps the WAL position the replica had replayed: a client whose reads must see
    a later position (it has just written) does not get it (gis.db.read_after)."""

    def __init__(self, max_bytes: int = 64 * 1024 * 1024, ttl: float = MAX_AGE):
        self.max_bytes, self.ttl = max_bytes, ttl
        # key -> (when, tile, etag, WAL position of the replica it came from; None: the primary)
        self._items: OrderedDict[TileKey, tuple[float, bytes, str, int | None]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        # Told the layer id on every forget(): what else this process derives from a layer's
        # data follows its writes too (the collections' extents: api/ogc/bridge.py).
        self.listeners: list[Callable[[str], None]] = []

    def get(self, key: TileKey, after: int = 0) -> tuple[bytes, str] | None:
        """The tile, unless older than TTL or rendered from a replica short of AFTER."""
        with self._lock:
            hit = self._items.get(key)
            if hit is None:
                return None
            if time.monotonic() - hit[0] > self.ttl:
                self._drop(key)
                return None
            if after and hit[3] is not None and hit[3] < after:
                return None
            self._items.move_to_end(key)
            return hit[1], hit[2]

    def put(self, key: TileKey, data: bytes, etag: str, replayed: int | None = None) -> None:
        with self._lock:
            if key in self._items:
                self._drop(key)
            self._items[key] = (time.monotonic(), data, etag, replayed)
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
        data = self._items.pop(key)[1]
        self._size -= len(data)


CACHE = TileCache()


def _int(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise BadRequest(f"{name}: {raw!r} is not an integer", parameter=name) from None


def _time_range(layer: Layer, raw: str | None) -> TimeRange | None:
    """OGC API - Tiles' `datetime` (an instant or an interval, `..` open) on a layer with a time:
    the tile then holds only that window's features, as /items with the same `datetime` would."""
    if raw is None:
        return None
    if layer.time_column is None:
        raise BadRequest.for_field("no_time", "datetime",
                                   f"collection {layer.id!r} has no time dimension", layer=layer.id)
    return parse_datetime(raw)


def _filters(layer: Layer, params: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The layer's tile filters given in the query (Layer.tile_filters: e.g. the indicators'
    `indicator_code` and `period`); the others take their defaults in layers.tiles_sql."""
    out = []
    for f in layer.tile_filters:
        raw = params.get(f.field)
        if raw is None or raw == "":
            continue
        if len(raw) > MAX_FILTER_CHARS:
            raise BadRequest.for_field("text_too_long", f.field,
                                       f"at most {MAX_FILTER_CHARS} characters",
                                       max_length=MAX_FILTER_CHARS)
        out.append((f.field, raw.strip()))
    return tuple(out)


def _iso(t: dt.datetime | None) -> str:
    return t.isoformat() if t is not None else ""


def tile(layer: Layer, who: Principal, tms: str, z: str, y: str, x: str, request: Request) -> Response:
    if tms not in TILE_MATRIX_SETS:
        raise NotFound(f"tile matrix set {tms!r} not found; available: {', '.join(TILE_MATRIX_SETS)}")
    f = request.query_params.get("f")
    if f not in (None, "mvt", "pbf"):
        raise BadRequest(f"f: unsupported tile format {f!r}; use mvt", parameter="f")
    zi, yi, xi = _int("tileMatrix", z), _int("tileRow", y), _int("tileCol", x)
    time_range = _time_range(layer, request.query_params.get("datetime"))
    window = None if time_range is None else (_iso(time_range[0]), _iso(time_range[1]))
    filters = _filters(layer, request.query_params)
    key: TileKey = (layer.id, who.key, zi, xi, yi, window, filters)
    hit = CACHE.get(key, db.read_after.get())
    if hit is None:
        fields = readable_fields(layer, who)
        try:
            with db.read_connection() as conn:
                data = render_tile(conn, layer, fields, zi, xi, yi, row_filter(layer, who),
                                   time_range, dict(filters))
                replayed = db.replayed(conn)
        except TileOutOfRange as e:
            raise NotFound(str(e)) from None
        etag = '"' + hashlib.blake2b(data, digest_size=12).hexdigest() + '"'
        CACHE.put(key, data, etag, replayed)
    else:
        data, etag = hit
    scope = "public" if layer.access is Access.PUBLIC else "private"
    headers = {"ETag": etag, "Cache-Control": f"{scope}, max-age={MAX_AGE}"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    if not data:
        return Response(status_code=204, headers=headers)
    return Response(data, media_type=MVT, headers=headers)
