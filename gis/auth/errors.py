"""The ways authentication can fail, each with the message the caller will see."""

from __future__ import annotations

import math

from layers.errors import Invalid, TooManyRequests, Unauthorized


class AuthError(Exception):
    """Base class of everything gis.auth raises on purpose."""


class UserError(AuthError, Invalid, ValueError):
    """Bad input to a management function (unknown user, unknown role, weak password...):
    shown to the operator as one line."""


class CredentialsRejected(AuthError, Unauthorized):
    """Credentials were presented and are not acceptable (HTTP 401). `reason` names why
    ("token expired", "API key revoked"...) without revealing whether a user exists."""

    def __init__(self, reason: str, *, counted: bool = False, lockout: float = 0.0) -> None:
        super().__init__(reason)
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
        super().__init__(f"too many failed sign-ins; retry in {seconds} s", retry_after=seconds)
