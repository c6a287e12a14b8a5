"""Shared by tests/test_parcels_*.py: users with API keys per role, parcel picks."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from gis.auth import api_keys, users

PASSWORD = "mật-khẩu-đủ-dài-1"


@contextmanager
def role_keys(conn: psycopg.Connection, prefix: str,
              roles: tuple[str, ...] = ("citizen", "operator", "land_officer", "security_officer",
                                        "leader", "admin")) -> Iterator[dict[str, dict[str, str]]]:
    """{"anonymous": {}, role: {"X-API-Key": ...}} for fresh users (deleted afterwards), and
    {"user:"+role: username}."""
    run = uuid.uuid4().hex[:8]
    out: dict[str, dict[str, str]] = {"anonymous": {}}
    names = []
    for role in roles:
        name = f"{prefix}{run}-{role.replace('_', '-')}"
        users.add_user(conn, name, PASSWORD, roles=[role])
        names.append(name)
        out[role] = {"X-API-Key": api_keys.create_key(conn, name, "parcel tests", days=1).key}
        out["user:" + role] = {"name": name}
    try:
        yield out
    finally:
        conn.execute("DELETE FROM users WHERE username = ANY(%s)", (names,))


def keyset(rows) -> set[tuple]:
    return {(a, b, int(s), int(n)) for a, b, s, n in rows}
