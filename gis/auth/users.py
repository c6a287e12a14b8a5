"""Users and their roles in the database: create, change password, disable, grant, revoke.

Functions take a psycopg connection (autocommit or not) and make each change in one
transaction. Usernames are lower case: sign-in is case-insensitive.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

import psycopg
from psycopg.rows import class_row

from gis.auth.errors import UserError
from gis.auth.passwords import check_policy, hash_password
from gis.auth.roles import check_roles

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}$")
DEFAULT_MIN_PASSWORD_LENGTH = 10


@dataclass(frozen=True)
class Account:
    id: int
    username: str
    full_name: str
    password_hash: str
    disabled: bool
    roles: tuple[str, ...]
    created_at: dt.datetime
    password_changed_at: dt.datetime


_ACCOUNT_SQL = """
SELECT u.id, u.username, u.full_name, u.password_hash, u.disabled,
       ARRAY(SELECT r.role FROM user_roles r WHERE r.user_id = u.id ORDER BY r.role) AS roles,
       u.created_at, u.password_changed_at
  FROM users u
"""


def normalize_username(username: str) -> str:
    """Lower-cased, validated username (raises UserError with the rule)."""
    name = username.strip().lower()
    if not USERNAME_RE.match(name):
        raise UserError(f"invalid username {username!r}: 1-64 of a-z 0-9 . _ @ -, starting with "
                        "a letter or digit")
    return name


def get_account(conn: psycopg.Connection, username: str) -> Account | None:
    """The account with its roles, or None (also for names that cannot be usernames)."""
    name = username.strip().lower()
    if not USERNAME_RE.match(name):
        return None
    with conn.cursor(row_factory=class_row(Account)) as cur:
        cur.execute(_ACCOUNT_SQL + " WHERE u.username = %s", (name,))
        row = cur.fetchone()
    if row is not None:
        row = _with_tuple_roles(row)
    return row


def list_accounts(conn: psycopg.Connection) -> list[Account]:
    with conn.cursor(row_factory=class_row(Account)) as cur:
        cur.execute(_ACCOUNT_SQL + " ORDER BY u.username")
        return [_with_tuple_roles(a) for a in cur.fetchall()]


def _with_tuple_roles(account: Account) -> Account:
    return replace(account, roles=tuple(account.roles))


def require_account(conn: psycopg.Connection, username: str) -> Account:
    account = get_account(conn, username)
    if account is None:
        raise UserError(f"no user {username!r}")
    return account


def add_user(conn: psycopg.Connection, username: str, password: str, *, full_name: str = "",
             roles: Iterable[str] = (),
             min_password_length: int = DEFAULT_MIN_PASSWORD_LENGTH) -> Account:
    name = normalize_username(username)
    check_policy(name, password, min_password_length)
    wanted = check_roles(roles)
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO users (username, full_name, password_hash) VALUES (%s, %s, %s) "
            "ON CONFLICT (username) DO NOTHING RETURNING id",
            (name, full_name.strip(), hash_password(password)),
        ).fetchone()
        if row is None:
            raise UserError(f"user {name!r} already exists")
        for role in wanted:
            conn.execute("INSERT INTO user_roles (user_id, role) VALUES (%s, %s)", (row[0], role))
    return require_account(conn, name)


def set_password(conn: psycopg.Connection, username: str, password: str, *,
                 min_password_length: int = DEFAULT_MIN_PASSWORD_LENGTH) -> None:
    """New password; every web session of the user ends (a changed password is often a
    reaction to a leak)."""
    account = require_account(conn, username)
    check_policy(account.username, password, min_password_length)
    with conn.transaction():
        conn.execute(
            "UPDATE users SET password_hash = %s, password_changed_at = now() WHERE id = %s",
            (hash_password(password), account.id),
        )
        _end_sessions(conn, account.id)


def store_rehash(conn: psycopg.Connection, user_id: int, old_hash: str, new_hash: str) -> None:
    """Upgrade a hash made with older argon2 parameters (same password, so sessions stay)."""
    conn.execute("UPDATE users SET password_hash = %s WHERE id = %s AND password_hash = %s",
                 (new_hash, user_id, old_hash))


def set_disabled(conn: psycopg.Connection, username: str, disabled: bool) -> None:
    """Disable (or enable) a user. A disabled user's tokens, keys and password are refused at
    the next request; their web sessions are ended for good."""
    account = require_account(conn, username)
    with conn.transaction():
        conn.execute("UPDATE users SET disabled = %s WHERE id = %s", (disabled, account.id))
        if disabled:
            _end_sessions(conn, account.id)


def grant_role(conn: psycopg.Connection, username: str, role: str) -> bool:
    """Grant ROLE; False if the user already had it."""
    account = require_account(conn, username)
    (role,) = check_roles([role])
    cur = conn.execute(
        "INSERT INTO user_roles (user_id, role) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        (account.id, role),
    )
    return cur.rowcount == 1


def revoke_role(conn: psycopg.Connection, username: str, role: str) -> bool:
    """Revoke ROLE; it is also removed from the user's API keys, so granting it again later does
    not silently revive old keys. False if the user did not have it."""
    account = require_account(conn, username)
    (role,) = check_roles([role])
    with conn.transaction():
        cur = conn.execute("DELETE FROM user_roles WHERE user_id = %s AND role = %s",
                           (account.id, role))
        conn.execute(
            "UPDATE api_keys SET roles = array_remove(roles, %s) WHERE user_id = %s "
            "AND %s = ANY (roles)",
            (role, account.id, role),
        )
    return cur.rowcount == 1


def _end_sessions(conn: psycopg.Connection, user_id: int) -> None:
    conn.execute(
        "UPDATE auth_sessions SET revoked_at = now() WHERE user_id = %s AND revoked_at IS NULL",
        (user_id,),
    )
