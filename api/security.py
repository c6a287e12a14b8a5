"""Who is calling: one dependency (`Who`) used by every route, /ogc and /api alike.

Credentials are tried in this order:
1. `Authorization: Bearer <JWT>` - an access token from /api/auth/token (the web map);
2. `Authorization: Bearer gioc_...` or `X-API-Key: gioc_...` - an API key (scripts, QGIS, GDAL
   with GDAL_HTTP_HEADERS);
3. `Authorization: Basic` - username and password (QGIS, GDAL_HTTP_AUTH=BASIC +
   GDAL_HTTP_USERPWD); an API key as the password also works, for clients that only do Basic.
4. the page-session cookie `geoioc_session` (set at sign-in on the map, HttpOnly, SameSite=Strict,
   bound to the web session): ONLY for safe methods (GET, HEAD), so the server-rendered pages and
   reads opened from the map keep the user signed in, while every write still needs a header
   credential that a cross-site form cannot send (no CSRF). A cookie that no longer checks out
   (signed out elsewhere, session expired) is ignored: it is ambient, not something the client
   chose to present, and must not lock the user out of public pages.
No credentials: anonymous. Credentials that do not check out are a 401 naming the reason, never
a silent downgrade to anonymous (a client would otherwise see less data and not know why).
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Callable
from typing import Annotated

import psycopg
from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from gis import audit
from gis.auth import api_keys
from gis.auth.errors import CredentialsRejected, TooManyFailures
from gis.auth.roles import ROLES, role_title
from gis.auth.service import AuthService
from gis.db import connection
from gis.settings import get_settings
from layers.access import ADMIN, ANONYMOUS, Principal
from layers.errors import Forbidden, Message, TooManyRequests, Unauthorized

REALM = "GeoIOC"
SESSION_COOKIE = "geoioc_session"
# Methods the session cookie counts for: they must not change anything (RFC 9110 safe methods).
COOKIE_METHODS = frozenset({"GET", "HEAD"})


def unauthorized(description: str, request: Request | None = None,
                 message: Message | None = None) -> Unauthorized:
    """401 with WWW-Authenticate challenges. Basic is offered (QGIS and GDAL then send their
    stored password) unless the client used a token or key, or is a script in a browser page:
    the map must not make the browser pop up its password dialog. (api/errors.py renders it,
    adds the challenges and Cache-Control: no-store.) MESSAGE: its entry in the message catalogue
    (the challenge's error_description stays the English DESCRIPTION)."""
    quoted = description.replace("\\", "").replace('"', "'")
    challenges = [f'Bearer realm="{REALM}"'
                  + (f', error="invalid_token", error_description="{quoted}"'
                     if request is not None and _has_credentials(request) else "")]
    if request is None or not _basic_unwanted(request):
        challenges.append(f'Basic realm="{REALM}", charset="UTF-8"')
    return Unauthorized(description, challenges=tuple(challenges), message=message)


def forbidden(description: str, message: Message | None = None) -> Forbidden:
    return Forbidden(description, message=message)


def too_many_requests(description: str, retry_after: float,
                      message: Message | None = None) -> TooManyRequests:
    """429 with Retry-After (whole seconds, at least 1)."""
    return TooManyRequests(description, retry_after=retry_after, message=message)


def _has_credentials(request: Request) -> bool:
    return "authorization" in request.headers or "x-api-key" in request.headers


def _basic_unwanted(request: Request) -> bool:
    headers = request.headers
    scheme = headers.get("authorization", "").partition(" ")[0].lower()
    return (scheme == "bearer" or "x-api-key" in headers or "x-requested-with" in headers
            or headers.get("sec-fetch-mode", "navigate") != "navigate")


_default_service: AuthService | None = None


def auth_service(request: Request) -> AuthService:
    """The app's AuthService (api.app.create_app puts one on app.state), else a process-wide
    one built from the global settings."""
    service = getattr(request.app.state, "auth", None)
    if service is None:
        global _default_service
        if _default_service is None:
            _default_service = AuthService(get_settings())
        service = _default_service
    return service


async def get_principal(request: Request) -> Principal:
    """Resolve the caller once per request (FastAPI caches dependencies per request). Anonymous
    callers are answered on the event loop; credentials need the database (and argon2 for a
    password), so they are checked in the thread pool."""
    authorization = request.headers.get("authorization", "").strip()
    api_key = request.headers.get("x-api-key", "").strip()
    if not authorization and not api_key:
        if session_cookie(request) is None:
            return ANONYMOUS  # answered on the event loop: no thread hop for the public
        return await run_in_threadpool(_cookie_principal, request)
    return await run_in_threadpool(_principal_from_credentials, request, authorization, api_key)


def _principal_from_credentials(request: Request, authorization: str, api_key: str) -> Principal:
    service = auth_service(request)
    scheme, _, value = authorization.partition(" ")
    scheme, value = scheme.lower(), value.strip()
    client = audit.client_address(request)
    try:
        with connection() as conn:
            if scheme == "bearer":
                if not value:
                    raise CredentialsRejected("empty bearer token")
                if api_keys.looks_like_key(value):
                    return service.principal_from_key(conn, value)
                return service.principal_from_jwt(conn, value)
            if api_key:
                return service.principal_from_key(conn, api_key)
            if scheme == "basic":
                username, password = _basic_credentials(value)
                if api_keys.looks_like_key(password):
                    return service.principal_from_key(conn, password, username=username)
                try:
                    return service.principal_from_password(conn, username, password, client)
                except CredentialsRejected as e:
                    if e.counted:
                        _audit_failed_password(conn, request, username, e)
                    raise
            raise CredentialsRejected(f"unsupported authorization scheme {scheme!r} "
                                      "(use Bearer, Basic or X-API-Key)")
    except CredentialsRejected as e:
        raise unauthorized(e.reason, request, e.message) from None
    except TooManyFailures as e:
        raise too_many_requests(str(e), e.retry_after, e.message) from None


def session_cookie(request: Request) -> str | None:
    """The page-session cookie when it may count for this request (a safe method), else None."""
    if request.method not in COOKIE_METHODS:
        return None
    value = request.cookies.get(SESSION_COOKIE, "").strip()
    return value or None


def _cookie_principal(request: Request) -> Principal:
    token = session_cookie(request)
    if token is None:
        return ANONYMOUS
    try:
        with connection() as conn:
            return auth_service(request).principal_from_cookie(conn, token)
    except CredentialsRejected:
        return ANONYMOUS


def _basic_credentials(value: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise CredentialsRejected("malformed Basic credentials") from None
    username, sep, password = decoded.partition(":")
    if not sep or not username:
        raise CredentialsRejected("malformed Basic credentials")
    return username, password


def _audit_failed_password(conn: psycopg.Connection, request: Request, username: str,
                           error: CredentialsRejected) -> None:
    audit.record(conn, None, "sign_in_failed", request=request, username=username.strip().lower(),
                 credential="basic", status=401, target={"reason": error.reason})
    if error.lockout:
        audit.record(conn, None, "sign_in_locked", request=request,
                     username=username.strip().lower(), credential="basic", status=429,
                     target={"seconds": math.ceil(error.lockout)})


# Route parameter type: `who: Who` resolves the caller once per request.
Who = Annotated[Principal, Depends(get_principal)]


def require_roles(*roles: str) -> Callable[..., Principal]:
    """A dependency for routes only some roles may use: 401 for anonymous callers, 403 for
    signed-in ones holding none of ROLES (no ROLES: any signed-in caller). Admin passes every
    check (as in layers.access).

        @router.get("/x")
        def x(who: Annotated[Principal, Depends(require_roles("land_officer"))]): ...
    """
    unknown = set(roles) - set(ROLES)
    if unknown:  # a typo here would silently lock everybody but admin out
        raise ValueError(f"require_roles: unknown role(s) {sorted(unknown)}")
    wanted = frozenset(roles)

    async def check(request: Request, who: Who) -> Principal:
        if who.anonymous:
            raise unauthorized("sign-in required", request, Message("auth_required"))
        if not wanted or ADMIN in who.roles or who.roles & wanted:
            return who
        titles = {lang: (" hoặc " if lang == "vi" else " or ").join(
            role_title(r, lang) for r in ROLES if r in wanted) for lang in ("vi", "en")}
        raise forbidden(f"requires role {' or '.join(sorted(wanted))}",
                        Message("role_required", {"roles": titles}))

    return check


# Any signed-in caller (401 for anonymous).
SignedIn = Annotated[Principal, Depends(require_roles())]
