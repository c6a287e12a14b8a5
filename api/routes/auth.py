"""Web sign-in (OAuth 2.0 password flow): short-lived access tokens, rotating refresh tokens,
sign-out, and who am I.

Tokens travel in the response body and the Authorization header. Sign-in (and each refresh) also
sets the page-session cookie (api.security.SESSION_COOKIE: HttpOnly, SameSite=Strict, Secure on
https, Path=/), bound to the same session, so the server-rendered pages (/parcels, the extracts)
and a map opened in another tab see the user signed in. The cookie counts for GET and HEAD only
(api/security.py), and for sign-out, which is harmless to forge and is checked to come from this
origin: no write can be made with it, so there is no cross-site request forgery to defend
against. Sign-out revokes the session (the refresh token, the access tokens and the cookie stop
working everywhere) and deletes the cookie. Sign-ins, failures, refreshes and sign-outs are
written to the audit log.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
from typing import Annotated
from urllib.parse import urlsplit

import psycopg
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from api.deps import Conn
from api.route_docs import problems
from api.security import (
    SESSION_COOKIE,
    SignedIn,
    Who,
    auth_service,
    require_roles,
    too_many_requests,
    unauthorized,
)
from gis import audit
from gis.auth.errors import CredentialsRejected, TooManyFailures
from gis.auth.principal import AuthPrincipal
from gis.auth.service import TokenPair
from gis.auth.users import list_accounts
from layers.access import Principal
from layers.errors import BadRequest, GeoIOCError, Message

router = APIRouter(prefix="/api/auth", tags=["auth"])
# The pages' sign-out (a form button on /parcels and the parcel pages).
pages_router = APIRouter(tags=["auth"])
# OAuth 2.0 (RFC 6749 section 5.1): token responses must not be cached.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    refresh_token: str
    refresh_expires_in: int
    user: str
    roles: list[str]


class TokenRequest(BaseModel):
    """A refresh token, sent as a JSON object or as a form field (as OAuth2 clients do)."""

    refresh_token: str | None = Field(None, max_length=4096)


# The body of /refresh and /signout, in both the media types they take (the route reads it
# itself, since FastAPI binds a body to one media type).
TOKEN_BODY = {"content": {
    "application/json": {"schema": TokenRequest.model_json_schema()},
    "application/x-www-form-urlencoded": {"schema": TokenRequest.model_json_schema()},
}}


class Me(BaseModel):
    user: str
    roles: list[str]
    auth: str


class UserOut(BaseModel):
    username: str
    full_name: str
    roles: list[str]
    disabled: bool
    created_at: dt.datetime


def _secure(request: Request) -> bool:
    """Secure cookies when the browser talks https (directly, or to the public URL in front)."""
    settings = getattr(request.app.state, "settings", None)
    public = getattr(settings, "base_url", "") or ""
    return request.url.scheme == "https" or public.startswith("https:")


def set_session_cookie(response: Response, request: Request, pair: TokenPair) -> None:
    response.set_cookie(SESSION_COOKIE, pair.cookie.token,
                        max_age=pair.cookie.expires_in(dt.datetime.now(dt.UTC)), path="/",
                        httponly=True, secure=_secure(request), samesite="strict")


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, secure=_secure(request),
                           samesite="strict")


def _token_response(pair: TokenPair, request: Request) -> JSONResponse:
    now = dt.datetime.now(dt.UTC)
    body = TokenResponse(access_token=pair.access.token, expires_in=pair.access.expires_in(now),
                         refresh_token=pair.refresh.token,
                         refresh_expires_in=pair.refresh.expires_in(now), user=pair.username,
                         roles=list(pair.roles))
    response = JSONResponse(body.model_dump(), headers=NO_STORE)
    set_session_cookie(response, request, pair)
    return response


def _signed_in(pair: TokenPair) -> AuthPrincipal:
    return AuthPrincipal(user=pair.username, roles=frozenset(pair.roles), method="password",
                         session_id=pair.session_id)


@router.post("/token", response_model=TokenResponse, responses=problems(401, 422, 429, 503))
def token(request: Request, form: Annotated[OAuth2PasswordRequestForm, Depends()],
          conn: Conn) -> JSONResponse:
    """Sign in with username and password (form fields, as OAuth2 clients send them). 401:
    wrong username or password, or user disabled; 429: too many failed attempts."""
    service = auth_service(request)
    client = audit.client_address(request)
    username = form.username.strip().lower()
    try:
        pair = service.sign_in(conn, form.username, form.password, client)
    except TooManyFailures as e:
        raise too_many_requests(str(e), e.retry_after, e.message) from None
    except CredentialsRejected as e:
        audit.record(conn, None, "sign_in_failed", request=request, username=username,
                     credential="password", status=401, target={"reason": e.reason})
        if e.lockout:
            audit.record(conn, None, "sign_in_locked", request=request, username=username,
                         credential="password", status=429,
                         target={"seconds": math.ceil(e.lockout)})
        raise unauthorized(e.reason, request, e.message) from None
    audit.record(conn, _signed_in(pair), "sign_in", request=request, status=200,
                 target={"session": pair.session_id})
    return _token_response(pair, request)


async def _token_from(request: Request) -> str | None:
    """The refresh token of a JSON or form body (TokenRequest), as web clients and OAuth2
    clients send it; None when there is none."""
    ctype = request.headers.get("content-type", "")
    try:
        if ctype.startswith("application/json"):
            data = await request.json()
        elif ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            data = dict((await request.form()).items())
        else:
            data = None
    except ValueError:
        raise BadRequest("request body is not valid JSON", parameter="body",
                         message=Message("body_not_json")) from None
    if not isinstance(data, dict):
        return None
    value = data.get("refresh_token")
    if not isinstance(value, str):  # absent, or not text: as if absent (as before)
        return None
    try:
        body = TokenRequest(refresh_token=value)
    except ValidationError:
        raise BadRequest.for_field("text_too_long", "refresh_token", "too long",
                                   max_length=4096) from None
    text = (body.refresh_token or "").strip()
    return text or None


@router.post("/refresh", response_model=TokenResponse, openapi_extra={"requestBody": TOKEN_BODY},
             responses=problems(400, 401, 503))
async def refresh(request: Request, conn: Conn) -> JSONResponse:
    """New access and refresh tokens for a refresh token (`refresh_token` in a JSON or form
    body). Each refresh token works once; reusing one ends the session."""
    token_text = await _token_from(request)
    if token_text is None:
        raise BadRequest("refresh_token is required", parameter="refresh_token",
                         message=Message("refresh_token_required"))
    return await run_in_threadpool(_refresh, request, conn, token_text)


def _refresh(request: Request, conn: psycopg.Connection, token_text: str) -> JSONResponse:
    service = auth_service(request)
    try:
        pair = service.refresh(conn, token_text)
    except CredentialsRejected as e:
        if "session revoked" in e.reason:  # a copied refresh token: worth investigating
            audit.record(conn, None, "refresh_reuse", request=request, status=401,
                         target={"reason": e.reason})
        raise unauthorized(e.reason, request, e.message) from None
    audit.record(conn, _signed_in(pair), "refresh", request=request, status=200,
                 target={"session": pair.session_id})
    return _token_response(pair, request)


@router.post("/signout", status_code=204, response_class=Response,
             openapi_extra={"requestBody": {**TOKEN_BODY, "required": False}},
             responses={204: {"description": "Signed out"}, **problems(400, 401, 503)})
async def signout(request: Request, conn: Conn) -> Response:
    """End the session: its refresh token, access tokens and page-session cookie stop working
    everywhere, and the cookie is deleted. Send the refresh token (JSON or form field
    `refresh_token`) or the access token as `Authorization: Bearer`; a map signed in only through
    the session cookie (opened in another tab) sends nothing and the cookie names the session."""
    token_text = await _token_from(request)
    if token_text is None:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        token_text = value.strip() if scheme.lower() == "bearer" and value.strip() else None
    if token_text is None:
        token_text = _signout_cookie(request)
    if token_text is None:
        raise BadRequest("send refresh_token or Authorization: Bearer <access token>",
                         parameter="refresh_token", message=Message("signout_needs_token"))
    return await run_in_threadpool(_signout, request, conn, token_text)


def _same_origin(request: Request) -> bool:
    """The request comes from a page of this server (Fetch metadata, else Origin). SameSite=
    Strict already keeps the cookie off cross-site requests; this is the second lock."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not a browser's cross-origin request (those always send Origin on POST)
    return origin.rstrip("/") == f"{request.url.scheme}://{request.url.netloc}"


def _signout_cookie(request: Request) -> str | None:
    value = request.cookies.get(SESSION_COOKIE, "").strip()
    return value if value and _same_origin(request) else None


def _end_session(request: Request, conn: psycopg.Connection, token_text: str, credential: str,
                 status: int) -> None:
    service = auth_service(request)
    try:
        username, ended = service.sign_out(conn, token_text)
    except CredentialsRejected as e:
        raise unauthorized(e.reason, request, e.message) from None
    audit.record(conn, None, "sign_out", request=request, username=username,
                 credential=credential, status=status, target={"session_ended": ended})


def _signout(request: Request, conn: psycopg.Connection, token_text: str) -> Response:
    _end_session(request, conn, token_text, "jwt", 204)
    response = Response(status_code=204, headers=NO_STORE)
    clear_session_cookie(response, request)
    return response


def _local_target(next_url: str) -> str:
    parts = urlsplit(next_url)
    if parts.scheme or parts.netloc or not next_url.startswith("/") or next_url.startswith("//") \
            or "\\" in next_url:
        return "/parcels"
    return next_url


@pages_router.post("/sign-out", include_in_schema=False)
def page_signout(request: Request, conn: Conn,
                 next: Annotated[str, Query(max_length=2000)] = "/parcels") -> Response:
    """The pages' sign-out button (a same-origin form POST carrying the session cookie): ends
    the session everywhere (map tabs included), deletes the cookie and goes back to NEXT."""
    token_text = _signout_cookie(request)
    if token_text is not None:
        # An already ended or unreadable session: signed out either way.
        with contextlib.suppress(GeoIOCError):
            _end_session(request, conn, token_text, "cookie", 303)
    response = RedirectResponse(_local_target(next), status_code=303, headers=NO_STORE)
    clear_session_cookie(response, request)
    return response


@router.get("/me", response_model=Me, responses=problems(401, 429, 503))
def me(who: SignedIn) -> Me:
    """The signed-in caller and the roles in effect for this request."""
    return Me(user=who.user or "", roles=sorted(who.roles),
              auth=getattr(who, "credential", "") or "")


class SessionState(BaseModel):
    signed_in: bool
    user: str | None = None
    roles: list[str] = []
    auth: str = ""


@router.get("/session", response_model=SessionState, responses=problems(401, 429, 503))
def session_state(who: Who) -> JSONResponse:
    """Who the request is signed in as, without a 401 when nobody is: the map asks this on load
    so that a tab opened from another one finds the page-session cookie's user (`auth` is
    "cookie" then). 401 only for credentials that do not check out."""
    body = SessionState(signed_in=not who.anonymous, user=who.user,
                        roles=sorted(who.roles), auth=getattr(who, "credential", "") or "")
    return JSONResponse(body.model_dump(), headers={"Cache-Control": "private, no-store",
                                                    "Vary": "Cookie, Authorization"})


@router.get("/users", response_model=list[UserOut], responses=problems(401, 403, 429, 503))
def users(who: Annotated[Principal, Depends(require_roles("admin"))], conn: Conn) -> list[UserOut]:
    """All users with their roles (admin only)."""
    accounts = list_accounts(conn)
    return [UserOut(username=a.username, full_name=a.full_name, roles=list(a.roles),
                    disabled=a.disabled, created_at=a.created_at) for a in accounts]
