"""Password hashing with argon2id (argon2-cffi defaults: about 50-100 ms per hash on purpose, so
a stolen table is slow to attack). Hashes made with older parameters are upgraded on sign-in."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from gis.auth.errors import UserError

_hasher = PasswordHasher()
# Verified against when the user does not exist, so that "no such user" costs the same time as
# "wrong password" and cannot be told apart by timing.
_DUMMY_HASH = _hasher.hash("geoioc: no such user")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True if the password matches; a missing or malformed hash is a mismatch, never an error."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def check_policy(username: str, password: str, min_length: int) -> None:
    """Length over composition rules (NIST SP 800-63B): long enough, not the username."""
    if len(password) < min_length:
        raise UserError(f"password must have at least {min_length} characters")
    if len(password) > 1024:
        raise UserError("password is too long (at most 1024 characters)")
    if password.strip().lower() == username.lower():
        raise UserError("password must not be the username")
