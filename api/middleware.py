"""HTTP hardening around the whole app (/ogc, /api and the pages): rate limiting for anonymous
clients, CORS restricted to configured origins, security headers, text the database can store.

Our middlewares are plain ASGI (no BaseHTTPMiddleware): they add nothing to the body path,
so streamed exports and tiles stay streamed.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fastapi import FastAPI, Request
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import cookie_parser
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import errors
from api.security import COOKIE_METHODS, SESSION_COOKIE
from gis import limits
from gis.auth.errors import CredentialsRejected
from gis.limits import SharedTokenBuckets, TokenBuckets
from gis.settings import Settings
from layers.errors import BadRequest, TooManyRequests
from layers.errors import Message as Entry

__all__ = ["RateLimitMiddleware", "SharedTokenBuckets", "TokenBuckets", "client_address",
           "install"]

Buckets = TokenBuckets | SharedTokenBuckets


class RateLimitMiddleware:
    """Anonymous requests: a bucket per client address. Requests with credentials are not
    limited (signed_in_rate = 0) or get their own, larger bucket per credential; bad credentials
    are refused by api.security before any real work and password guessing is bounded by the
    sign-in lockout (gis.auth.throttle).

    With a STORE the buckets are shared by every server process under NAMESPACE (gis.limits:
    one UPSERT per request); without one they are in this process's memory."""

    def __init__(self, app: ASGIApp, *, rate: float, burst: int, signed_in_rate: float = 0.0,
                 signed_in_burst: int = 2000, store: limits.LimitStore | None = None,
                 namespace: str = "") -> None:
        self.app = app

        def buckets(r: float, b: int, kind: str) -> Buckets | None:
            if r <= 0:
                return None
            if store is None:
                return TokenBuckets(r, b)
            return SharedTokenBuckets(r, b, store=store, namespace=f"{namespace}:{kind}")

        self.anonymous = buckets(rate, burst, "anonymous")
        self.signed_in = buckets(signed_in_rate, signed_in_burst, "signed-in")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        credential = headers.get("authorization") or headers.get("x-api-key") or _signed_cookie(scope)
        if credential:
            buckets = self.signed_in
            key = "c:" + hashlib.sha256(credential.encode()).hexdigest()[:32]
        else:
            buckets = self.anonymous
            key = "a:" + client_address(scope)
        wait = buckets.take(key) if buckets is not None else 0.0
        if wait > 0:
            description = ("rate limit exceeded; sign in for a higher limit" if not credential
                           else "rate limit exceeded")
            seconds = max(1, math.ceil(wait))
            message = Entry("rate_limited_signed_in" if credential else "rate_limited", {"s": seconds})
            # Rendered like every other error (problem details under /api, the OGC document
            # under /ogc, a page for browsers) in the user's language, with Retry-After in
            # whole seconds.
            response = errors.render(Request(scope), TooManyRequests(description, retry_after=seconds,
                                                                     message=message))
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def client_address(scope: Scope) -> str:
    """The address a limit per client counts by (the peer; a proxy in front sets it through
    uvicorn's --forwarded-allow-ips)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _session_cookie(scope: Scope) -> str | None:
    """The page-session cookie of a request it may count for (GET, HEAD: api/security.py)."""
    if scope.get("method") not in COOKIE_METHODS:
        return None
    raw = Headers(scope=scope).get("cookie")
    return cookie_parser(raw).get(SESSION_COOKIE) or None if raw else None


def _signed_cookie(scope: Scope) -> str | None:
    """A session cookie with a valid signature (checked without the database, so a made-up
    cookie cannot buy a signed-in rate limit), as the rate-limit credential."""
    token = _session_cookie(scope)
    app = scope.get("app")
    service = getattr(getattr(app, "state", None), "auth", None)
    if token is None or service is None:
        return None
    try:
        service.codec.decode(token, "cookie")
    except CredentialsRejected:
        return None
    return "cookie:" + token


def content_security_policy(settings: Settings) -> str:
    """Same origin only. 'unsafe-inline' for scripts and styles because pygeoapi's HTML
    templates (api/ogc_templates) and folium's map pages use inline <script> and style=;
    everything they load comes from this server (tests/test_offline_assets.py). An optional
    basemap's tile host is allowed for images."""
    img = ["'self'", "data:", "blob:"]
    if settings.basemap_url:
        parts = urlsplit(settings.basemap_url)
        if parts.scheme in ("http", "https") and parts.hostname:
            host = parts.netloc.replace("{s}", "*")
            img.append(f"{parts.scheme}://{host}")
    return "; ".join([
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",
        "style-src 'self' 'unsafe-inline'",
        f"img-src {' '.join(img)}",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


# FastAPI's interactive API docs load Swagger UI / ReDoc from a CDN (not part of the offline map):
# they get a policy that allows exactly that CDN, so they keep working where there is internet.
DOCS_PATHS = frozenset({"/docs", "/redoc", "/docs/oauth2-redirect"})
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
            "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
            "font-src 'self' https://fonts.gstatic.com; "
            "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
            "worker-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'self'; "
            "frame-ancestors 'none'")


class SecurityHeadersMiddleware:
    """nosniff and a same-origin referrer policy on every response; a content security policy
    and frame denial on HTML. A header the route set itself is left alone, except that answers
    to a request carrying the page-session cookie are made private and vary on Cookie."""

    def __init__(self, app: ASGIApp, *, csp: str) -> None:
        self.app, self.csp = app, csp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        csp = DOCS_CSP if scope.get("path") in DOCS_PATHS else self.csp

        by_cookie = _session_cookie(scope) is not None

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if by_cookie:
                    # What a cookie-signed-in user gets may hold personal fields: never for a
                    # shared cache, and not for another user of the same browser.
                    cache = headers.get("cache-control", "")
                    if "public" in cache:
                        headers["Cache-Control"] = cache.replace("public", "private")
                    headers.add_vary_header("Cookie")
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "same-origin")
                if headers.get("content-type", "").startswith(("text/html", "application/xhtml")):
                    headers.setdefault("Content-Security-Policy", csp)
                    headers.setdefault("X-Frame-Options", "DENY")
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _api_routes(routes: list[Any]) -> Iterator[Any]:
    for route in routes:
        if hasattr(route, "original_router"):  # FastAPI's wrapper of an included router
            yield from _api_routes(route.original_router.routes)
        else:
            yield route


def nul_parameter(scope: Scope) -> str | None:
    """The query or path parameter of the request holding a NUL (U+0000), if any."""
    for name, value in parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True):
        if "\x00" in name or "\x00" in value:
            return name.replace("\x00", "")
    if "\x00" in scope["path"]:
        for route in _api_routes(scope["app"].router.routes):
            match, child = route.matches(scope)
            if match == Match.FULL:
                for name, value in child.get("path_params", {}).items():
                    if isinstance(value, str) and "\x00" in value:
                        return str(name)
        return "path"
    return None


class RejectNulBytes:
    """PostgreSQL refuses NUL (U+0000) in text, so a query or path parameter holding one is a 400
    naming it, whatever the route, instead of a database error. (A JSON or form body holding one
    is refused by the database and answered 422.) A middleware rather than an app-wide
    dependency: every request pays for a dependency (api.deps.QueryModel says how much), while
    this looks at two strings and parses only a request that holds a NUL."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (b"%00" in scope["query_string"] or b"\x00" in scope["query_string"]
                                        or "\x00" in scope["path"]):
            name = nul_parameter(scope)
            if name is not None:
                exc = BadRequest.for_field("nul_character", name, "NUL characters are not allowed")
                await errors.render(Request(scope), exc)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class WorkerHeader:
    """`X-GeoIOC-Worker: <pid>` on every response: which server process answered (only with
    GEOIOC_WORKER_HEADER=true, for tests and diagnosis of `geoioc serve --workers N`; off, it is
    not installed and costs nothing)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.pid = str(os.getpid()).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_pid(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append((b"x-geoioc-worker", self.pid))
            await send(message)

        await self.app(scope, receive, send_with_pid)


def install(app: FastAPI, settings: Settings, namespace: str) -> None:
    """Add the middlewares; the last added runs first: CORS, then headers, then rate limit, then
    the NUL guard, so 429s and 400s carry CORS and security headers and preflights are never
    rate limited. NAMESPACE: the app's shared limits (gis.limits.namespace)."""
    app.add_middleware(RejectNulBytes)
    app.add_middleware(RateLimitMiddleware, rate=settings.rate_limit_anonymous_per_second,
                       burst=settings.rate_limit_anonymous_burst,
                       signed_in_rate=settings.rate_limit_signed_in_per_second,
                       signed_in_burst=settings.rate_limit_signed_in_burst,
                       store=limits.store(settings.database_url), namespace=namespace)
    app.add_middleware(SecurityHeadersMiddleware, csp=content_security_policy(settings))
    if settings.worker_header:
        app.add_middleware(WorkerHeader)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            # Bearer tokens and API keys, never cookies: no credentialed CORS needed.
            allow_credentials=False,
            allow_methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "Accept",
                           "Accept-Language"],
            expose_headers=["Retry-After", "WWW-Authenticate", "Content-Crs", "Link"],
            max_age=600,
        )
