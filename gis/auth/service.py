"""Authentication as one object per application: settings, the JWT codec, the brute-force guard
and the password cache live together, so a test can build an app with its own limits and
fresh counters. Each method turns presented credentials into an AuthPrincipal or raises
CredentialsRejected / TooManyFailures with the reason."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from dataclasses import dataclass

import psycopg

from gis.auth import api_keys, sessions
from gis.auth.errors import CredentialsRejected
from gis.auth.principal import AuthPrincipal
from gis.auth.signin import PasswordVerifier
from gis.auth.throttle import SignInGuard
from gis.auth.tokens import Claims, IssuedToken, TokenCodec
from gis.auth.users import Account, get_account
from gis.settings import Settings


@dataclass(frozen=True)
class TokenPair:
    access: IssuedToken
    refresh: IssuedToken
    username: str
    roles: tuple[str, ...]
    session_id: str
    # The page-session cookie of the same session (api/routes/auth.py sets it).
    cookie: IssuedToken


class AuthService:
    def __init__(self, settings: Settings, limits_namespace: str | None = None) -> None:
        """LIMITS_NAMESPACE: the sign-in lockouts are shared by every process under it (in the
        database); without one they are in this process's memory."""
        self.settings = settings
        self.guard = SignInGuard.from_settings(settings, limits_namespace)
        self.passwords = PasswordVerifier(self.guard,
                                          cache_seconds=settings.basic_auth_cache_seconds)
        self._codec: TokenCodec | None = None
        self._lock = threading.Lock()

    @property
    def codec(self) -> TokenCodec:
        """Built on first use: reading (or generating) the key file is not an import side effect."""
        if self._codec is None:
            with self._lock:
                if self._codec is None:
                    self._codec = TokenCodec.from_settings(self.settings)
        return self._codec

    # --- web sign-in ----------------------------------------------------------------------
    def sign_in(self, conn: psycopg.Connection, username: str, password: str,
                client: str | None) -> TokenPair:
        account = self.passwords.verify(conn, username, password, client)
        session = sessions.start(conn, account.id, self.codec.refresh_ttl, client)
        return self._pair(account, session)

    def refresh(self, conn: psycopg.Connection, refresh_token: str) -> TokenPair:
        claims = self.codec.decode(refresh_token, "refresh")
        session = sessions.rotate(conn, claims.sid, claims.jti)
        account = get_account(conn, claims.sub)
        if account is None or account.id != session.user_id:
            sessions.revoke(conn, claims.sid)
            raise CredentialsRejected("user not found")
        if account.disabled:
            sessions.revoke(conn, claims.sid)
            raise CredentialsRejected("user disabled")
        return self._pair(account, session)

    def sign_out(self, conn: psycopg.Connection, token: str) -> tuple[str, bool]:
        """End the session an access, refresh or cookie token belongs to (an expired token still signs
        out). Returns the username and whether a live session was ended."""
        claims = self.codec.decode(token, None, verify_exp=False)
        return claims.sub, sessions.revoke(conn, claims.sid)

    def _pair(self, account: Account, session: sessions.Session) -> TokenPair:
        now = dt.datetime.now(dt.UTC)
        access = self.codec.access_token(account.username, account.roles, session.id,
                                         session_expires=session.expires_at, now=now)
        refresh = self.codec.refresh_token(account.username, session.id, session.refresh_jti,
                                           session.expires_at, now=now)
        cookie = self.codec.cookie_token(account.username, account.roles, session.id,
                                         session.expires_at, now=now)
        return TokenPair(access, refresh, account.username, account.roles, session.id, cookie)

    # --- per-request credentials ----------------------------------------------------------
    def principal_from_jwt(self, conn: psycopg.Connection, token: str) -> AuthPrincipal:
        """An access token is checked cryptographically, then against the database (one
        indexed query): the user must still be enabled and the session not signed out. Roles
        are those in the token that the user still holds."""
        return self._session_principal(conn, self.codec.decode(token, "access"), "jwt")

    def principal_from_cookie(self, conn: psycopg.Connection, token: str) -> AuthPrincipal:
        """The page-session cookie: checked like an access token (signature, then the session
        row and the user), so signing out anywhere ends it at once."""
        return self._session_principal(conn, self.codec.decode(token, "cookie"), "cookie")

    def _session_principal(self, conn: psycopg.Connection, claims: Claims,
                           method: str) -> AuthPrincipal:
        try:
            sid = uuid.UUID(claims.sid)
        except ValueError:
            raise CredentialsRejected("malformed token") from None
        row = conn.execute(
            "SELECT u.disabled, ARRAY(SELECT r.role FROM user_roles r WHERE r.user_id = u.id), "
            "EXISTS (SELECT 1 FROM auth_sessions s WHERE s.id = %s AND s.user_id = u.id "
            "AND s.revoked_at IS NULL AND s.expires_at > now()) "
            "FROM users u WHERE u.username = %s",
            (sid, claims.sub),
        ).fetchone()
        if row is None:
            raise CredentialsRejected("user not found")
        disabled, current_roles, session_live = row
        if disabled:
            raise CredentialsRejected("user disabled")
        if not session_live:
            raise CredentialsRejected("session ended (signed out)")
        roles = frozenset(claims.roles) & frozenset(current_roles)
        return AuthPrincipal(user=claims.sub, roles=roles, method=method, session_id=claims.sid)

    def principal_from_key(self, conn: psycopg.Connection, key: str,
                           username: str | None = None) -> AuthPrincipal:
        """An API key; USERNAME (HTTP Basic with the key as password) must name its owner."""
        owner = api_keys.authenticate_key(conn, key)
        if username is not None and username.strip().lower() != owner.username:
            raise CredentialsRejected("API key belongs to another user")
        return AuthPrincipal(user=owner.username, roles=owner.roles, method="api_key",
                             key_prefix=owner.prefix)

    def principal_from_password(self, conn: psycopg.Connection, username: str, password: str,
                                client: str | None) -> AuthPrincipal:
        account = self.passwords.verify(conn, username, password, client)
        return AuthPrincipal(user=account.username, roles=frozenset(account.roles),
                             method="basic")
