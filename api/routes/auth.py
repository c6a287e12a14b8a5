"""Web sign-in (OAuth 2.0 password flow): short-lived access tokens, rotating refresh tokens,
sign-out, and who am I.

Tokens travel in the response body and the Authorization header, never in cookies, so there is
no cross-site request forgery to defend against. Sign-ins, failures, refreshes and sign-outs are
written to the audit log.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated

import psycopg
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from api.deps import Conn
from api.route_docs import problems
from api.security import SignedIn, auth_service, require_roles, too_many_requests, unauthorized
from gis import audit
from gis.auth.errors import CredentialsRejected, TooManyFailures
from gis.auth.principal import AuthPrincipal
from gis.auth.service import TokenPair
from gis.auth.users import list_accounts
from layers.access import Principal
from layers.errors import BadRequest

router = APIRouter(prefix="/api/auth", tags=["auth"])
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


def _token_response(pair: TokenPair) -> JSONResponse:
    now = dt.datetime.now(dt.UTC)
    body = TokenResponse(access_token=pair.access.token, expires_in=pair.access.expires_in(now),
                         refresh_token=pair.refresh.token,
                         refresh_expires_in=pair.refresh.expires_in(now), user=pair.username,
                         roles=list(pair.roles))
    return JSONResponse(body.model_dump(), headers=NO_STORE)


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
        raise too_many_requests(str(e), e.retry_after) from None
    except CredentialsRejected as e:
        audit.record(conn, None, "sign_in_failed", request=request, username=username,
                     credential="password", status=401, target={"reason": e.reason})
        if e.lockout:
            audit.record(conn, None, "sign_in_locked", request=request, username=username,
                         credential="password", status=429,
                         target={"seconds": math.ceil(e.lockout)})
        raise unauthorized(e.reason, request) from None
    audit.record(conn, _signed_in(pair), "sign_in", request=request, status=200,
                 target={"session": pair.session_id})
    return _token_response(pair)


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
        raise BadRequest("request body is not valid JSON", parameter="body") from None
    if not isinstance(data, dict):
        return None
    value = data.get("refresh_token")
    if not isinstance(value, str):  # absent, or not text: as if absent (as before)
        return None
    try:
        body = TokenRequest(refresh_token=value)
    except ValidationError:
        raise BadRequest("refresh_token: too long", parameter="refresh_token") from None
    text = (body.refresh_token or "").strip()
    return text or None


@router.post("/refresh", response_model=TokenResponse, openapi_extra={"requestBody": TOKEN_BODY},
             responses=problems(400, 401, 503))
async def refresh(request: Request, conn: Conn) -> JSONResponse:
    """New access and refresh tokens for a refresh token (`refresh_token` in a JSON or form
    body). Each refresh token works once; reusing one ends the session."""
    token_text = await _token_from(request)
    if token_text is None:
        raise BadRequest("refresh_token is required", parameter="refresh_token")
    return await run_in_threadpool(_refresh, request, conn, token_text)


def _refresh(request: Request, conn: psycopg.Connection, token_text: str) -> JSONResponse:
    service = auth_service(request)
    try:
        pair = service.refresh(conn, token_text)
    except CredentialsRejected as e:
        if "session revoked" in e.reason:  # a copied refresh token: worth investigating
            audit.record(conn, None, "refresh_reuse", request=request, status=401,
                         target={"reason": e.reason})
        raise unauthorized(e.reason, request) from None
    audit.record(conn, _signed_in(pair), "refresh", request=request, status=200,
                 target={"session": pair.session_id})
    return _token_response(pair)


@router.post("/signout", status_code=204, response_class=Response,
             openapi_extra={"requestBody": {**TOKEN_BODY, "required": False}},
             responses={204: {"description": "Signed out"}, **problems(400, 401, 503)})
async def signout(request: Request, conn: Conn) -> Response:
    """End the session: its refresh token and access tokens stop working. Send the refresh
    token (JSON or form field `refresh_token`) or the access token as `Authorization: Bearer`."""
    token_text = await _token_from(request)
    if token_text is None:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        token_text = value.strip() if scheme.lower() == "bearer" and value.strip() else None
    if token_text is None:
        raise BadRequest("send refresh_token or Authorization: Bearer <access token>",
                         parameter="refresh_token")
    return await run_in_threadpool(_signout, request, conn, token_text)


def _signout(request: Request, conn: psycopg.Connection, token_text: str) -> Response:
    service = auth_service(request)
    try:
        username, ended = service.sign_out(conn, token_text)
    except CredentialsRejected as e:
        raise unauthorized(e.reason, request) from None
    audit.record(conn, None, "sign_out", request=request, username=username,
                 credential="jwt", status=204, target={"session_ended": ended})
    return Response(status_code=204, headers=NO_STORE)


@router.get("/me", response_model=Me, responses=problems(401, 429, 503))
def me(who: SignedIn) -> Me:
    """The signed-in caller and the roles in effect for this request."""
    return Me(user=who.user or "", roles=sorted(who.roles),
              auth=getattr(who, "credential", "") or "")


@router.get("/users", response_model=list[UserOut], responses=problems(401, 403, 429, 503))
def users(who: Annotated[Principal, Depends(require_roles("admin"))], conn: Conn) -> list[UserOut]:
    """All users with their roles (admin only)."""
    accounts = list_accounts(conn)
    return [UserOut(username=a.username, full_name=a.full_name, roles=list(a.roles),
                    disabled=a.disabled, created_at=a.created_at) for a in accounts]
