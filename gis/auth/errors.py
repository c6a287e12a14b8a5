"""The ways authentication can fail, each with the message the caller will see."""

from __future__ import annotations

import math

from layers.errors import Invalid, Message, TooManyRequests, Unauthorized

# The reasons credentials are refused -> their entry in the message catalogue (api/messages.py),
# so that a person reads why in their language; a reason not listed reads as "auth_rejected".
# Several reasons share one entry where the difference is technical (the English keeps it).
REASONS: dict[str, str] = {
    "wrong username or password": "auth_wrong_password",
    "user disabled": "auth_user_disabled",
    "user not found": "auth_user_gone",
    "malformed Basic credentials": "auth_malformed",
    "empty bearer token": "auth_malformed",
    "malformed API key": "auth_key_invalid",
    "invalid API key": "auth_key_invalid",
    "API key revoked": "auth_key_revoked",
    "API key expired": "auth_key_expired",
    "API key belongs to another user": "auth_key_other_user",
    "token expired": "auth_token_expired",
    "malformed token": "auth_token_invalid",
    "token has the wrong audience": "auth_token_invalid",
    "token has the wrong issuer": "auth_token_invalid",
    "token signature is invalid": "auth_token_invalid",
    "token is not valid yet": "auth_token_invalid",
    "session not found": "auth_session_gone",
    "session ended (signed out)": "auth_signed_out",
    "session expired": "auth_session_expired",
    "refresh token already used; session revoked": "auth_refresh_reused",
}


class AuthError(Exception):
    """Base class of everything gis.auth raises on purpose."""


class UserError(AuthError, Invalid, ValueError):
    """Bad input to a management function (unknown user, unknown role, weak password...):
    shown to the operator as one line."""


class CredentialsRejected(AuthError, Unauthorized):
    """Credentials were presented and are not acceptable (HTTP 401). `reason` names why
    ("token expired", "API key revoked"...) without revealing whether a user exists."""

    def __init__(self, reason: str, *, counted: bool = False, lockout: float = 0.0) -> None:
        super().__init__(reason, message=Message(REASONS.get(reason, "auth_rejected")))
        self.reason = reason
        # True when this was a fresh password failure counted by the brute-force guard
        # (worth an audit row); False for repeats of the same wrong password and other errors.
        self.counted = counted
        # Seconds of lockout this failure started (0 = none): worth its own audit row.
        self.lockout = lockout


class TooManyFailures(AuthError, TooManyRequests):
    """Too many failed password attempts for this user or client address (HTTP 429)."""

    def __init__(self, retry_after: float) -> None:
        seconds = max(1, math.ceil(retry_after))
        super().__init__(f"too many failed sign-ins; retry in {seconds} s", retry_after=seconds,
                         message=Message("sign_in_locked", {"s": seconds}))
