"""The one place where errors become responses (after titiler's core/errors.py and tipg's
errors.py): a map from exception type to status, and one renderer per way out, installed once by
`install(app)`.

- `/api/...` and anything else that is not a page: RFC 9457 `application/problem+json`
  (`type`, `title`, `status`, `detail`, `instance`, plus `code`, `parameter` and `errors` - every
  field in error with its reason - as extension members);
- `/ogc/...`: the OGC API exception document (`{"code", "description"}`, JSON);
- pages (`/`, `/parcels/...`) asked for by a browser: a small HTML page in the user's language.
A further format (Open311's error list) is one more entry in RENDERERS.

Every renderer words the detail and each problem's reason in the user's language (api/i18n.py)
when the message catalogue (api/messages.py) has them: all of FastAPI's validation errors do.

No route builds an error response by hand: it raises a layers.errors class. An unexpected
exception answers 500 with an error id that is also in the log, with the stack, and nothing else
(no path, SQL or Python value reaches the client).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

import orjson
import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from psycopg import errors as pg_errors
from psycopg_pool import PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import messages, open311
from api.i18n import request_lang
from layers.errors import (
    PROBLEMS,
    Ambiguous,
    BadRequest,
    Conflict,
    Forbidden,
    GeoIOCError,
    Invalid,
    MethodNotAllowed,
    NotAcceptable,
    NotFound,
    PreconditionRequired,
    Problem,
    TooLarge,
    TooManyRequests,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
)
from layers.errors import Message as Entry
from web.errors import error_page

log = logging.getLogger("geoioc.errors")

STATUS_CODES: dict[type[GeoIOCError], int] = {
    Ambiguous: 300,
    BadRequest: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    MethodNotAllowed: 405,
    NotAcceptable: 406,
    Conflict: 409,
    TooLarge: 413,
    UnsupportedMediaType: 415,
    Invalid: 422,
    PreconditionRequired: 428,
    TooManyRequests: 429,
    Unavailable: 503,
}
# Starlette's own HTTP errors (routing: unknown path, wrong method) as our types.
FROM_STATUS: dict[int, type[GeoIOCError]] = {v: k for k, v in STATUS_CODES.items()}
PROBLEM_JSON = "application/problem+json"
_STATUSES = {s.value for s in HTTPStatus}


def status_of(exc: GeoIOCError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_CODES:
            return STATUS_CODES[cls]
    return 400


def _headers(exc: GeoIOCError, status: int) -> dict[str, str]:
    headers = dict(exc.headers)
    if status in (401, 403):
        headers.setdefault("Cache-Control", "no-store")
    return headers


def problem_json(request: Request, exc: GeoIOCError, status: int) -> Response:
    lang = request_lang(request)
    body: dict[str, Any] = {
        "type": f"urn:geoioc:problem:{exc.code}",
        "title": messages.title(exc, status, lang),
        "status": status,
        "detail": messages.detail(exc, lang),
        "instance": request.url.path,
        "code": exc.code,
    }
    if exc.parameter:
        body["parameter"] = exc.parameter
    if exc.problems:
        body["errors"] = messages.problems_json(exc, lang)
    body.update(exc.details)
    return Response(orjson.dumps(body), status_code=status, media_type=PROBLEM_JSON,
                    headers=_headers(exc, status))


def ogc_exception(request: Request, exc: GeoIOCError, status: int) -> Response:
    lang = request_lang(request)
    body: dict[str, Any] = {"code": exc.code, "description": messages.detail(exc, lang)}
    if exc.problems:
        body["errors"] = messages.problems_json(exc, lang)
    body.update(exc.details)
    return Response(orjson.dumps(body), status_code=status, media_type="application/json",
                    headers=_headers(exc, status))


def html_page(request: Request, exc: GeoIOCError, status: int) -> Response:
    lang = request_lang(request)
    problems = [(p.field, messages.reason(p, lang)) for p in exc.problems]
    return Response(error_page(status, messages.detail(exc, lang), lang, problems), status_code=status,
                    media_type="text/html; charset=utf-8",
                    headers={**_headers(exc, status), "Cache-Control": "private, no-cache"})


def open311_errors(request: Request, exc: GeoIOCError, status: int) -> Response:
    """Open311 GeoReport v2's error list (api/open311.py): one error per problem, in the
    user's language, XML or JSON after the path's extension, with the spec's status codes."""
    lang = request_lang(request)
    wire = open311.wire_status(status)
    if exc.problems:
        descriptions = [f"{p.field}: {messages.reason(p, lang)}" if p.field
                        else messages.reason(p, lang) for p in exc.problems]
    else:
        descriptions = [messages.detail(exc, lang)]
    return open311.errors(open311.path_format(request.url.path), wire, descriptions,
                          headers=_headers(exc, wire))


Renderer = Callable[[Request, GeoIOCError, int], Response]
# Path prefix -> renderer; the first that matches wins.
RENDERERS: tuple[tuple[str, Renderer], ...] = (
    ("/api/", problem_json),
    ("/ogc", ogc_exception),
    ("/open311/", open311_errors),
    ("/sta/", problem_json),  # an API: JSON even for a browser
)


def _wants_html(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "text/html" in accept and "json" not in accept.split(",")[0]


def render(request: Request, exc: GeoIOCError) -> Response:
    status = status_of(exc)
    path = request.url.path
    renderer: Renderer = problem_json
    for prefix, candidate in RENDERERS:
        if path.startswith(prefix):
            renderer = candidate
            break
    else:
        if _wants_html(request):
            renderer = html_page
    response = renderer(request, exc, status)
    if isinstance(exc, Unauthorized):
        for challenge in exc.challenges:
            response.headers.append("WWW-Authenticate", challenge)
    return response


# --- translating what others raise ---------------------------------------------------------------


def from_validation(exc: RequestValidationError) -> GeoIOCError:
    """FastAPI's validation of declared parameters and bodies: one problem per field, each
    with its reason from the message catalogue (in the user's language when rendered). Query,
    path and header parameters are the request's own (400); a body that fails is content (422)."""
    problems: list[Problem] = []
    in_body = False
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        where = loc[0] if loc else ""
        in_body = in_body or where == "body"
        name = ".".join(loc[1:]) or where or None
        problems.append(messages.from_pydantic(name, err))
    cls = Invalid if in_body else BadRequest
    first = problems[0].field if problems else None
    return cls(messages.summary(problems, "en") or "invalid request",
               parameter=None if in_body else first, problems=problems,
               message=PROBLEMS if problems else None)


def from_database(exc: psycopg.Error) -> GeoIOCError | None:
    """Database failures that are not bugs: an overloaded or absent database (503), a statement
    stopped by its timeout (503), input PostGIS could not digest (422)."""
    if isinstance(exc, pg_errors.QueryCanceled):
        return Unavailable("the query took too long; narrow the request", retry_after=5,
                           message=Entry("db_timeout"))
    if isinstance(exc, psycopg.OperationalError):
        return Unavailable("the database is not reachable right now", retry_after=2,
                           message=Entry("db_unreachable"))
    if isinstance(exc, pg_errors.DataError | pg_errors.InternalError_):
        message = (exc.diag.message_primary or "invalid input").split("\n")[0][:200]
        return Invalid(f"the database could not process the input: {message}",
                       message=Entry("db_input"))
    return None


class InternalError(GeoIOCError):
    code = "InternalError"
    title = "Internal server error"


STATUS_CODES[InternalError] = 500


def unexpected(request: Request, exc: BaseException) -> Response:
    """500 with an id to quote to an administrator; the stack is in the log under that id."""
    error_id = secrets.token_hex(6)
    log.error("unexpected error %s on %s %s", error_id, request.method, request.url.path,
              exc_info=(type(exc), exc, exc.__traceback__))
    return render(request, InternalError(
        f"internal error {error_id}; the administrators can find it in the log", error_id=error_id,
        message=Entry("internal_error", {"id": error_id})))


# --- installation --------------------------------------------------------------------------------


async def _geoioc_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GeoIOCError)
    return render(request, exc)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return render(request, from_validation(exc))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    cls = FROM_STATUS.get(exc.status_code, BadRequest)
    detail = exc.detail if isinstance(exc.detail, str) else cls.title
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request))
    # Starlette's own detail is the status's English phrase ("Not Found"): the catalogue's
    # title of the status says the same in the user's language.
    standard = detail == HTTPStatus(exc.status_code).phrase if exc.status_code in _STATUSES else False
    err = cls(detail or cls.title, headers=headers,
              message=Entry(f"status_{exc.status_code}") if standard else None)
    response = render(request, err)
    response.status_code = exc.status_code
    return response


def _route_templates(app: Any) -> list[tuple[str, set[str]]]:
    """(path template, methods) of every route of APP, included routers flattened."""
    try:  # FastAPI >= 0.130 keeps included routers as such; this walks them
        from fastapi.routing import iter_route_contexts
        routes: Iterable[Any] = iter_route_contexts(app.router.routes)
    except ImportError:  # older FastAPI: app.routes is already flat
        routes = app.routes
    out = []
    for route in routes:
        path, methods = getattr(route, "path", None), getattr(route, "methods", None)
        if path and methods:
            out.append((path, set(methods)))
    return out


def allowed_methods(request: Request) -> list[str]:
    """The methods of the resource at this path: those of the routes whose template matches it,
    the most specific template first (`/api/parcels/search` names its resource, not
    `/api/parcels/{parcel_id}`, which also matches). Starlette's 405 named only the methods of the
    first route that matched, so a path served by two routes (GET by one, POST by another)
    advertised half of them."""
    path = request.scope.get("path", request.url.path)
    matching = [(template.count("{"), methods) for template, methods in _route_templates(request.app)
                if compile_path(template)[0].match(path)]
    if not matching:
        return []
    fewest = min(params for params, _ in matching)
    allowed: set[str] = set()
    for params, methods in matching:
        if params == fewest:
            allowed |= methods
    return sorted(allowed)


async def _database_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, psycopg.Error)
    err = from_database(exc)
    if err is None:
        return unexpected(request, exc)
    if isinstance(err, Unavailable):
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path,
                    str(exc).split("\n")[0])
    return render(request, err)


async def _pool_timeout(request: Request, exc: Exception) -> Response:
    return render(request, Unavailable("the service is busy; try again shortly", retry_after=2,
                                           message=Entry("busy")))


class UnexpectedErrors:
    """Innermost ASGI guard: an exception no handler claimed becomes the 500 above (Starlette's
    own ServerErrorMiddleware would answer a bare text and drop the keep-alive connection)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except Exception as exc:
            if started:  # too late for a clean answer: let the server close the connection
                raise
            request = Request(scope)
            err = from_database(exc) if isinstance(exc, psycopg.Error) else None
            if isinstance(exc, PoolTimeout):
                err = Unavailable("the service is busy; try again shortly", retry_after=2,
                                  message=Entry("busy"))
            response = render(request, err) if err is not None else unexpected(request, exc)
            await response(scope, receive, send)


def install(app: FastAPI) -> None:
    app.add_exception_handler(GeoIOCError, _geoioc_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(psycopg.Error, _database_error)
    app.add_exception_handler(PoolTimeout, _pool_timeout)
    app.add_middleware(UnexpectedErrors)
