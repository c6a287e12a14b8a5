"""JSON Web Tokens for web sessions (HS256, PyJWT).

An access token (15 minutes) is presented on every request; a refresh token (8 hours, the
session's absolute lifetime) only to /api/auth/refresh, which rotates it. Both carry iss, aud,
sub, iat, exp, jti, typ and the session id `sid`; access tokens also carry the roles at sign-in.
Every failure is reported with its reason, never turned into "anonymous".
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Literal

import jwt

from gis.auth.errors import CredentialsRejected
from gis.auth.secret import jwt_secret
from gis.settings import Settings

# "cookie": the page-session cookie (api/security.py), bound to a web session like the others but
# never accepted as a Bearer token nor for refresh.
TokenType = Literal["access", "refresh", "cookie"]
ALGORITHM = "HS256"
# Tolerated clock difference between servers.
LEEWAY_SECONDS = 5


@dataclass(frozen=True)
class Claims:
    sub: str
    typ: str
    sid: str
    jti: str
    roles: tuple[str, ...]
    exp: dt.datetime


@dataclass(frozen=True)
class IssuedToken:
    token: str
    jti: str
    expires_at: dt.datetime

    def expires_in(self, now: dt.datetime) -> int:
        return max(0, int((self.expires_at - now).total_seconds()))


class TokenCodec:
    """Issues and checks tokens with one key, issuer and audience."""

    def __init__(self, secret: str, *, issuer: str = "geoioc", audience: str = "geoioc",
                 access_ttl: dt.timedelta = dt.timedelta(minutes=15),
                 refresh_ttl: dt.timedelta = dt.timedelta(hours=8)) -> None:
        self._secret = secret
        self.issuer, self.audience = issuer, audience
        self.access_ttl, self.refresh_ttl = access_ttl, refresh_ttl

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenCodec:
        return cls(jwt_secret(settings), issuer=settings.jwt_issuer,
                   audience=settings.jwt_audience,
                   access_ttl=dt.timedelta(minutes=settings.access_token_minutes),
                   refresh_ttl=dt.timedelta(hours=settings.refresh_token_hours))

    def encode(self, claims: dict) -> str:
        """Sign arbitrary claims (building block; tests use it to forge bad tokens)."""
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def access_token(self, username: str, roles: tuple[str, ...] | frozenset[str], sid: str, *,
                     session_expires: dt.datetime | None = None,
                     now: dt.datetime | None = None) -> IssuedToken:
        now = now or dt.datetime.now(dt.UTC)
        exp = now + self.access_ttl
        if session_expires is not None:
            exp = min(exp, session_expires)
        return self._issue("access", username, sid, str(uuid.uuid4()), now, exp,
                           roles=sorted(roles))

    def refresh_token(self, username: str, sid: str, jti: str, expires_at: dt.datetime, *,
                      now: dt.datetime | None = None) -> IssuedToken:
        return self._issue("refresh", username, sid, jti, now or dt.datetime.now(dt.UTC),
                           expires_at)

    def cookie_token(self, username: str, roles: tuple[str, ...] | frozenset[str], sid: str,
                     expires_at: dt.datetime, *, now: dt.datetime | None = None) -> IssuedToken:
        """The page-session cookie: it lives as long as the session (the session row, not the
        token, says whether it still works: sign-out revokes it at once)."""
        return self._issue("cookie", username, sid, str(uuid.uuid4()),
                           now or dt.datetime.now(dt.UTC), expires_at, roles=sorted(roles))

    def _issue(self, typ: TokenType, sub: str, sid: str, jti: str, now: dt.datetime,
               exp: dt.datetime, **extra) -> IssuedToken:
        claims = {"iss": self.issuer, "aud": self.audience, "sub": sub, "iat": now, "exp": exp,
                  "jti": jti, "typ": typ, "sid": sid, **extra}
        return IssuedToken(self.encode(claims), jti, exp.replace(microsecond=0))

    def decode(self, token: str, typ: TokenType | None, *, verify_exp: bool = True) -> Claims:
        """Checked claims of TOKEN, which must be of type TYP (None: any of the three)."""
        try:
            data = jwt.decode(
                token, self._secret, algorithms=[ALGORITHM], audience=self.audience,
                issuer=self.issuer, leeway=LEEWAY_SECONDS,
                options={"require": ["iss", "aud", "sub", "iat", "exp", "jti", "typ", "sid"],
                         "verify_exp": verify_exp},
            )
        except jwt.ExpiredSignatureError:
            raise CredentialsRejected("token expired") from None
        except jwt.InvalidAudienceError:
            raise CredentialsRejected("token has the wrong audience") from None
        except jwt.InvalidIssuerError:
            raise CredentialsRejected("token has the wrong issuer") from None
        except jwt.InvalidSignatureError:
            raise CredentialsRejected("token signature is invalid") from None
        except jwt.MissingRequiredClaimError as e:
            raise CredentialsRejected(f"token lacks the {e.claim!r} claim") from None
        except jwt.ImmatureSignatureError:
            raise CredentialsRejected("token is not valid yet") from None
        except jwt.InvalidTokenError:
            raise CredentialsRejected("malformed token") from None
        if data["typ"] not in ("access", "refresh", "cookie"):
            raise CredentialsRejected("malformed token")
        if typ is not None and data["typ"] != typ:
            raise CredentialsRejected(f"{data['typ']} token used as {typ} token")
        roles = data.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise CredentialsRejected("malformed token")
        return Claims(sub=str(data["sub"]), typ=data["typ"], sid=str(data["sid"]),
                      jti=str(data["jti"]), roles=tuple(roles),
                      exp=dt.datetime.fromtimestamp(data["exp"], dt.UTC))
