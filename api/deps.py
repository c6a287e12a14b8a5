"""Typed FastAPI dependencies: every query parameter a route takes is declared here once, with its
type, bounds and description, so /openapi.json documents it and a bad value becomes a 400 naming
the parameter (api/errors.py) before the route runs. After tipg's dependencies.py.

    @router.get("/x")
    def x(who: Who, conn: Conn, bbox: BBoxParam, window: DatetimeParam, page: Paging) -> ...

Values are parsed by the framework-free parsers in layers.query_params, the same ones the OGC
API, exports and the CLI use.

Dependencies that do no I/O are `async def`: FastAPI runs a plain `def` dependency in the thread
pool, and each such hop cost about 0.2 ms of CPU per request (the parcel search went from 1.4 to
2.7 ms of server CPU when its parameters became five sync dependencies). The connection is taken
on first use, in the route's thread (RequestConnection says why). A route with many parameters
on a hot path declares them as one QueryModel (`query(Model)`), validated in one pydantic call.
A route that only reads takes `ReadConn` instead of `Conn`: a read replica may answer it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import psycopg
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from psycopg_pool import ConnectionPool, PoolTimeout
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError
from pydantic_core import PydanticCustomError
from starlette.concurrency import run_in_threadpool
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.security import SignedIn, Who, require_roles
from gis import db
from gis.settings import Settings, get_settings
from layers import query_params
from layers.access import readable_layer
from layers.crs import UnsupportedCRS, parse_crs_uri, supported_crs_uris
from layers.errors import BadRequest, NotFound
from layers.model import Layer

__all__ = ["BBox", "BBoxParam", "Conn", "CrsParam", "DatetimeParam", "Paging", "QueryModel",
           "ReadConn", "ReadableLayer", "SettingsDep", "SignedIn", "Who", "IsoDate", "paging",
           "query", "require_roles"]

log = logging.getLogger(__name__)


# --- the application's shared state --------------------------------------------------------------


def app_pool(request: Request) -> ConnectionPool:
    """The pool the app opened at start-up (app.state.pool); a bare app (tests that skip the
    lifespan) falls back to the process's pool, which is the same object once the app started."""
    pool = getattr(request.app.state, "pool", None)
    # Another app in the same process (tests build several) may have closed the shared pool
    # in its lifespan; the process's pool is then opened anew.
    return pool if pool is not None and not pool.closed else db.get_pool()


class RequestConnection:
    """The request's pooled connection, taken on first use and given back when the request ends.

    Why not take it in the dependency: FastAPI resolves dependencies first and then runs a sync
    route in a thread of its pool. A connection taken up front is held while the request waits
    for a thread, and under load every thread can end up waiting for a connection held by a
    request that is itself waiting for a thread (bench/load.py stalled to 6 requests/s). Taken on
    first use it is taken in the route's own thread: thread first, then connection, as the
    routes that open `gis.db.connection()` themselves do. It stands in for a psycopg Connection
    (attribute access goes to the real one).

    Why ReleaseConnections gives it back rather than a `yield` dependency: FastAPI's generator
    dependencies cost about three times a plain one per request (an exit stack and a cancel
    scope; 0.2 M instructions, more than the parcel lookup's own SQL round trip costs us).
    """

    __slots__ = ("_pool", "_conn")

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool
        self._conn: psycopg.Connection | None = None

    def _open(self) -> psycopg.Connection:
        if self._conn is None:
            self._conn = db.take(self._pool)
        return self._conn

    def __getattr__(self, name: str) -> Any:
        return getattr(self._open(), name)

    def taken(self) -> psycopg.Connection | None:
        """The connection, if the request has used it."""
        return self._conn

    def release(self) -> None:
        """Give the connection back (gis.db.give_back checks a broken one)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            db.give_back(self._pool, conn)


LEASES = "geoioc.connections"


class ReadConnection(RequestConnection):
    """The request's connection for a route that only reads: a read replica's when one has
    replayed what this client last wrote, else the primary's (gis.db.take_read). What such a
    route writes besides (the audit row of a sensitive read) goes to the primary (gis/audit.py)."""

    __slots__ = ()

    def _open(self) -> psycopg.Connection:
        if self._conn is None:
            self._pool, self._conn = db.take_read(self._pool)
        return self._conn


async def get_connection(request: Request) -> psycopg.Connection:
    lease = RequestConnection(app_pool(request))
    request.scope.setdefault(LEASES, []).append(lease)
    return lease  # type: ignore[return-value]  # stands in for the Connection


async def get_read_connection(request: Request) -> psycopg.Connection:
    lease = ReadConnection(app_pool(request))
    request.scope.setdefault(LEASES, []).append(lease)
    return lease  # type: ignore[return-value]  # stands in for the Connection


# Read-your-writes on replicas: after a write (an unsafe method answered below 400) the primary's
# WAL position is remembered for the client, and its reads go to a replica only once it has
# replayed that far. A client is its credential (an API key, a token: hashed) or, without one,
# its address; the position also goes to the client in this cookie, which holds across server
# processes and clients sharing an address.
WAL_COOKIE = "geoioc_wal"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
WRITES_KEPT = 100_000  # clients remembered (the oldest are forgotten: their replicas caught up)
_last_write: OrderedDict[str, int] = OrderedDict()  # used on the event loop only


def _reader(scope: Scope) -> tuple[str, int]:
    """(client key, WAL position its reads must see) of a request."""
    credential = cookie = b""
    for name, value in scope.get("headers", ()):
        if name in (b"authorization", b"x-api-key"):
            credential = value
        elif name == b"cookie":
            cookie = value
    if credential:
        client = "c:" + hashlib.blake2b(credential, digest_size=16).hexdigest()
    else:
        client = "a:" + (scope["client"][0] if scope.get("client") else "")
    position = _last_write.get(client, 0)
    if WAL_COOKIE.encode() in cookie:
        # Not ours to trust or refuse: a made-up position only costs its owner the replicas.
        with contextlib.suppress(KeyError, ValueError):
            position = max(position, db.lsn(cookie_parser(cookie.decode("latin-1"))[WAL_COOKIE]))
    return client, position


def _write_position(scope: Scope) -> int:
    """The primary's WAL position after the request's writes, asked on the request's own primary
    connection when it has one: writers each waiting for a second connection of a pool they hold
    could wait out its timeout."""
    for lease in scope.get(LEASES, ()):
        if type(lease) is RequestConnection and lease.taken() is not None:
            return db.write_position(lease.taken())
    return db.write_position()


def _noting_writes(scope: Scope, send: Send, client: str) -> Send:
    async def noting(message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] < 400:
            try:
                position = await run_in_threadpool(_write_position, scope)
            except (psycopg.Error, PoolTimeout):
                log.warning("could not read the WAL position after a write", exc_info=True)
            else:
                _last_write[client] = position
                _last_write.move_to_end(client)
                while len(_last_write) > WRITES_KEPT:
                    _last_write.popitem(last=False)
                cookie = f"{WAL_COOKIE}={db.lsn_text(position)}; Path=/; HttpOnly; SameSite=Lax"
                if scope.get("scheme") == "https":
                    cookie += "; Secure"
                message = {**message, "headers": [*message.get("headers", ()),
                                                  (b"set-cookie", cookie.encode("latin-1"))]}
        await send(message)

    return noting


class ReleaseConnections:
    """ASGI middleware: the connections the request's `Conn` and `ReadConn` took go back to
    their pools when the response is complete (streamed bodies and background tasks included),
    whatever happened. With read replicas it also sets the WAL position the request's reads must
    see (gis.db.read_after) and notes the one of its writes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = None
        if scope["type"] == "http" and db.get_replicas():
            client, position = _reader(scope)
            token = db.read_after.set(position)
            if scope["method"] not in SAFE_METHODS:
                send = _noting_writes(scope, send, client)
        try:
            await self.app(scope, receive, send)
        finally:
            for lease in scope.pop(LEASES, ()):
                lease.release()
            if token is not None:
                db.read_after.reset(token)


Conn = Annotated[psycopg.Connection, Depends(get_connection)]
# For routes that only read (OGC, tiles, analytics, dashboards, map data): a replica may answer.
ReadConn = Annotated[psycopg.Connection, Depends(get_read_connection)]


async def get_app_settings(request: Request) -> Settings:
    return getattr(request.app.state, "settings", None) or get_settings()


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


# --- a route's query string as one model ----------------------------------------------------------


class QueryModel(BaseModel):
    """The query parameters of one route, as one model: `q: Annotated[M, query(M)]`.

    Why not one `Query()` per parameter on hot routes: FastAPI solves and validates those one by
    one on every request, given or not (about 20 µs each here: the 16 parameters of OGC items
    cost more than the database lookup of a parcel by number). A model is validated by
    pydantic-core in one call and is still documented parameter by parameter in /openapi.json
    (document_query_models). Unknown parameters are left to the route (OGC property filters)."""

    model_config = ConfigDict(extra="ignore", frozen=True)


QM = TypeVar("QM", bound=QueryModel)
# The parse dependency of each model, to find them again when documenting the routes.
_QUERY_MODELS: dict[Callable[..., Any], type[QueryModel]] = {}


def query(model: type[QM]) -> Any:
    """Depends(...) that validates the request's query string against MODEL: a bad value is the
    same 400 naming the parameter as a declared Query() gives (api/errors.from_validation)."""

    async def parse(request: Request) -> QM:
        try:
            return model.model_validate(dict(request.query_params))
        except ValidationError as e:
            raise RequestValidationError([{**err, "loc": ("query", *err["loc"])}
                                          for err in e.errors(include_url=False)]) from None

    parse.__name__ = parse.__qualname__ = f"query_{model.__name__}"
    _QUERY_MODELS[parse] = model
    return Depends(parse)


def query_parameters(model: type[QueryModel]) -> list[dict[str, Any]]:
    """MODEL's fields as OpenAPI query parameters (what FastAPI writes for a declared Query())."""
    schema = model.model_json_schema(by_alias=True)
    if "$defs" in schema:
        raise TypeError(f"{model.__name__}: query parameters must be plain values, not models")
    required = set(schema.get("required", ()))
    params = []
    for name, prop in schema["properties"].items():
        prop = dict(prop)
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in required}
        if "description" in prop:
            param["description"] = prop.pop("description")
        if "examples" in prop:
            param["example"] = prop.pop("examples")[0]
        param["schema"] = prop
        params.append(param)
    return params


def _dependency_calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _dependency_calls(sub)


def document_query_models(router: APIRouter) -> None:
    """Write the QueryModel parameters of ROUTER's routes into their OpenAPI operations; called
    on each router before the app includes it (a second call adds nothing)."""
    for route in router.routes:
        if not isinstance(route, APIRoute):
            continue
        extra = dict(route.openapi_extra or {})
        documented = {p["name"] for p in extra.get("parameters", ())}
        params = [p for call in _dependency_calls(route.dependant) if call in _QUERY_MODELS
                  for p in query_parameters(_QUERY_MODELS[call]) if p["name"] not in documented]
        if params:
            extra["parameters"] = [*extra.get("parameters", ()), *params]
            route.openapi_extra = extra


# --- spatial and temporal filters ----------------------------------------------------------------


@dataclass(frozen=True)
class BBox:
    """(minx, miny, maxx, maxy) in the axis order x/y of `srid` (a latitude-first bbox-crs has
    already been swapped back)."""

    minx: float
    miny: float
    maxx: float
    maxy: float
    srid: int = 4326

    @property
    def box(self) -> tuple[float, float, float, float]:
        return self.minx, self.miny, self.maxx, self.maxy


async def get_bbox(
    bbox: Annotated[str | None, Query(
        description="minx,miny,maxx,maxy (or 6 numbers for a 3D box) in `bbox-crs`, default "
                    "CRS84 longitude/latitude", examples=["105.95,21.0,106.2,21.25"],
        max_length=400)] = None,
    bbox_crs: Annotated[str | None, Query(
        alias="bbox-crs", description=f"CRS of `bbox`; one of {', '.join(supported_crs_uris())}",
        max_length=200)] = None,
) -> BBox | None:
    if bbox is None or bbox == "":
        if bbox_crs:
            raise BadRequest.for_field("bbox_crs_alone", "bbox-crs", "given without bbox")
        return None
    (x1, y1, x2, y2), srid = query_params.parse_bbox(bbox, bbox_crs)
    return BBox(x1, y1, x2, y2, srid)


BBoxParam = Annotated[BBox | None, Depends(get_bbox)]


async def get_datetime(
    datetime: Annotated[str | None, Query(
        description="an RFC 3339 instant, a date (the whole day) or an interval `start/end` "
                    "with `..` for an open end", examples=["2026-01-01/2026-06-30"],
        max_length=100)] = None,
) -> tuple[dt.datetime | None, dt.datetime | None] | None:
    if datetime is None or datetime == "":
        return None
    return query_params.parse_datetime(datetime)


DatetimeParam = Annotated[tuple[dt.datetime | None, dt.datetime | None] | None, Depends(get_datetime)]


async def get_crs(
    crs: Annotated[str | None, Query(
        description=f"output CRS; one of {', '.join(supported_crs_uris())}", max_length=200)] = None,
) -> int:
    if not crs:
        return 4326
    try:
        srid, _ = parse_crs_uri(crs)
    except UnsupportedCRS as e:
        raise BadRequest.about("crs", e) from None
    return srid


CrsParam = Annotated[int, Depends(get_crs)]


# --- paging --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int


def paging(default: int, maximum: int, max_offset: int = 1_000_000) -> Callable[..., Page]:
    """A dependency for `limit` and `offset` with this route's default and bounds (advertised in
    the OpenAPI document, so clients pick a large page)."""

    async def get_page(
        limit: Annotated[int, Query(ge=1, le=maximum, description=f"page size (default {default}, "
                                    f"at most {maximum})")] = default,
        offset: Annotated[int, Query(ge=0, le=max_offset, description="rows to skip")] = 0,
    ) -> Page:
        return Page(limit, offset)

    return get_page


Paging = Annotated[Page, Depends(paging(default=100, maximum=1000))]


# --- catalogue -----------------------------------------------------------------------------------


async def get_readable_layer(
    who: Who,
    layer_id: Annotated[str, Path(description="a layer id of the catalogue (`geoioc layers list`)",
                                  max_length=64)],
) -> Layer:
    """The layer, or a 404 that is the same whether it does not exist or may not be read."""
    layer = readable_layer(layer_id, who)
    if layer is None:
        raise NotFound(f"layer {layer_id!r} not found")
    return layer


ReadableLayer = Annotated[Layer, Depends(get_readable_layer)]


def iso_date_text(value: object) -> object:
    """A `date` query parameter as the document says (`YYYY-MM-DD`): pydantic alone would also
    take a number as a Unix time (`as_of=0` was 1970-01-01)."""
    if isinstance(value, str) and not (len(value) == 10 and value[4] == "-" and value[7] == "-"):
        # A type of its own (not value_error): api/messages.py words it in the user's language.
        raise PydanticCustomError("date_parsing", "expected a date YYYY-MM-DD")
    return value


IsoDate = BeforeValidator(iso_date_text)
