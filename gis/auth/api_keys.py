"""API keys for programs (QGIS, GDAL, scripts): `gioc_<prefix>_<secret>`.

The prefix (12 hex digits) is public: it finds the row and names the key in lists and in the
audit log. The secret has 256 random bits, so a SHA-256 of the whole key is a safe store (no
slow hash needed) and is compared in constant time. Every key expires; a key can be revoked.
A key's roles are a subset of its user's roles when it is created, and at each use it acts with
the roles both it and its user (still) hold.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

import psycopg

from gis.auth.errors import CredentialsRejected, UserError
from gis.auth.roles import check_roles
from gis.auth.users import require_account

KEY_START = "gioc_"
_KEY_RE = re.compile(r"^gioc_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
# last_used_at is written at most this often per key and process (not on every tile request).
TOUCH_INTERVAL_SECONDS = 60.0


@dataclass(frozen=True)
class NewKey:
    key: str  # shown once, never stored
    prefix: str
    name: str
    username: str
    roles: tuple[str, ...]
    expires_at: dt.datetime


@dataclass(frozen=True)
class KeyInfo:
    prefix: str
    name: str
    username: str
    roles: tuple[str, ...]
    created_at: dt.datetime
    expires_at: dt.datetime
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None

    def status(self, now: dt.datetime | None = None) -> str:
        now = now or dt.datetime.now(dt.UTC)
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expires_at <= now else "active"


@dataclass(frozen=True)
class KeyOwner:
    """Who a valid key speaks for, with the roles it may use now."""

    user_id: int
    username: str
    roles: frozenset[str]
    prefix: str


def looks_like_key(text: str) -> bool:
    """Cheap test used to tell keys from JWTs in `Authorization: Bearer`."""
    return text.startswith(KEY_START)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(conn: psycopg.Connection, username: str, name: str, *,
               roles: Iterable[str] | None = None, days: int = 90, max_days: int = 365,
               now: dt.datetime | None = None) -> NewKey:
    """A new key for USERNAME. roles=None: all the user's current roles."""
    account = require_account(conn, username)
    if not name.strip():
        raise UserError("a key needs a name (what or who uses it)")
    if not 1 <= days <= max_days:
        raise UserError(f"--days must be between 1 and {max_days}")
    wanted = account.roles if roles is None else check_roles(roles)
    missing = sorted(set(wanted) - set(account.roles))
    if missing:
        raise UserError(f"user {account.username!r} does not hold role {', '.join(missing)}; "
                        "a key cannot have more rights than its user")
    prefix = secrets.token_hex(6)
    key = f"{KEY_START}{prefix}_{secrets.token_urlsafe(32)}"
    created = now or dt.datetime.now(dt.UTC)
    expires = created + dt.timedelta(days=days)
    conn.execute(
        "INSERT INTO api_keys (name, prefix, key_hash, user_id, roles, created_at, expires_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (name.strip(), prefix, hash_key(key), account.id, list(wanted), created, expires),
    )
    return NewKey(key, prefix, name.strip(), account.username, tuple(wanted), expires)


def revoke_key(conn: psycopg.Connection, prefix: str) -> None:
    """Revoke the key with this prefix (the part after `gioc_`; a whole key is accepted too)."""
    match = _KEY_RE.match(prefix.strip())
    prefix = match.group(1) if match else prefix.strip().removeprefix(KEY_START)
    row = conn.execute("SELECT revoked_at FROM api_keys WHERE prefix = %s", (prefix,)).fetchone()
    if row is None:
        raise UserError(f"no API key with prefix {prefix!r}")
    if row[0] is not None:
        raise UserError(f"API key {prefix} was already revoked on {row[0]:%Y-%m-%d %H:%M} UTC")
    conn.execute("UPDATE api_keys SET revoked_at = now() WHERE prefix = %s", (prefix,))


def list_keys(conn: psycopg.Connection, username: str | None = None) -> list[KeyInfo]:
    query = (
        "SELECT k.prefix, k.name, u.username, k.roles, k.created_at, k.expires_at, k.revoked_at, "
        "k.last_used_at FROM api_keys k JOIN users u ON u.id = k.user_id"
    )
    params: tuple = ()
    if username is not None:
        query += " WHERE u.username = %s"
        params = (require_account(conn, username).username,)
    rows = conn.execute(query + " ORDER BY u.username, k.created_at", params).fetchall()
    return [KeyInfo(r[0], r[1], r[2], tuple(r[3]), *r[4:]) for r in rows]


_last_touch: dict[str, float] = {}
_touch_lock = threading.Lock()


def authenticate_key(conn: psycopg.Connection, key: str) -> KeyOwner:
    """The owner of a valid key, or CredentialsRejected naming why not. Whether a key exists is
    only revealed to someone holding its secret."""
    match = _KEY_RE.match(key.strip())
    if not match:
        raise CredentialsRejected("malformed API key")
    prefix = match.group(1)
    row = conn.execute(
        "SELECT k.key_hash, k.revoked_at IS NOT NULL, k.expires_at <= now(), u.id, u.username, "
        "u.disabled, ARRAY(SELECT r FROM unnest(k.roles) r JOIN user_roles ur "
        "ON ur.user_id = u.id AND ur.role = r) "
        "FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.prefix = %s",
        (prefix,),
    ).fetchone()
    # Compare against a dummy digest when the prefix is unknown: same work either way.
    stored = row[0] if row else "0" * 64
    if not hmac.compare_digest(stored, hash_key(key.strip())) or row is None:
        raise CredentialsRejected("invalid API key")
    _, revoked, expired, user_id, username, disabled, roles = row
    if revoked:
        raise CredentialsRejected("API key revoked")
    if expired:
        raise CredentialsRejected("API key expired")
    if disabled:
        raise CredentialsRejected("user disabled")
    _touch(conn, prefix)
    return KeyOwner(user_id, username, frozenset(roles), prefix)


def _touch(conn: psycopg.Connection, prefix: str) -> None:
    now = time.monotonic()
    with _touch_lock:
        if now - _last_touch.get(prefix, -TOUCH_INTERVAL_SECONDS) < TOUCH_INTERVAL_SECONDS:
            return
        _last_touch[prefix] = now
        if len(_last_touch) > 10_000:
            _last_touch.clear()
    conn.execute("UPDATE api_keys SET last_used_at = now() WHERE prefix = %s", (prefix,))
