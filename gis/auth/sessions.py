"""Web sessions in the database: the revocation store behind sign-out and refresh rotation.

A session row holds the one refresh token id currently valid (`refresh_jti`). Refreshing swaps
it atomically; presenting an already swapped token means it was copied, so the whole session is
revoked (OAuth 2.0 Security BCP, refresh token rotation). Access tokens name their session and
stop working when it is revoked.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import psycopg

from gis.auth.errors import CredentialsRejected
from gis.rows import one


@dataclass(frozen=True)
class Session:
    id: str
    user_id: int
    refresh_jti: str
    expires_at: dt.datetime


def start(conn: psycopg.Connection, user_id: int, ttl: dt.timedelta,
          client: str | None = None) -> Session:
    sid, jti = uuid.uuid4(), uuid.uuid4()
    with conn.transaction():
        # Housekeeping on the rare path (sign-in), so the table stays the size of a day's logins.
        conn.execute("DELETE FROM auth_sessions WHERE expires_at < now() - interval '1 day'")
        (expires,) = one(conn.execute(
            "INSERT INTO auth_sessions (id, user_id, refresh_jti, expires_at, client) "
            "VALUES (%s, %s, %s, now() + %s, %s) RETURNING expires_at",
            (sid, user_id, jti, ttl, client),
        ))
    return Session(str(sid), user_id, str(jti), expires)


def rotate(conn: psycopg.Connection, sid: str, jti: str) -> Session:
    """Swap the session's refresh token id for a new one, or say why not."""
    sid_u, jti_u = _uuid(sid), _uuid(jti)
    new = uuid.uuid4()
    row = conn.execute(
        "UPDATE auth_sessions SET refresh_jti = %s, refreshed_at = now() "
        "WHERE id = %s AND refresh_jti = %s AND revoked_at IS NULL AND expires_at > now() "
        "RETURNING user_id, expires_at",
        (new, sid_u, jti_u),
    ).fetchone()
    if row is not None:
        return Session(sid, row[0], str(new), row[1])
    state = conn.execute(
        "SELECT revoked_at IS NOT NULL, expires_at <= now() FROM auth_sessions WHERE id = %s",
        (sid_u,),
    ).fetchone()
    if state is None:
        raise CredentialsRejected("session not found")
    revoked, expired = state
    if revoked:
        raise CredentialsRejected("session ended (signed out)")
    if expired:
        raise CredentialsRejected("session expired")
    revoke(conn, sid)
    raise CredentialsRejected("refresh token already used; session revoked")


def revoke(conn: psycopg.Connection, sid: str) -> bool:
    """End a session; False if it was already ended or never existed."""
    cur = conn.execute(
        "UPDATE auth_sessions SET revoked_at = now() WHERE id = %s AND revoked_at IS NULL",
        (_uuid(sid),),
    )
    return cur.rowcount == 1


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        raise CredentialsRejected("malformed token") from None
