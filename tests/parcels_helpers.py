"""Shared by tests/test_parcels_*.py: parcel picks. (Users and keys per role: the `role_keys`
and `keys` fixtures of tests/conftest.py.)"""

from __future__ import annotations


def keyset(rows) -> set[tuple]:
    return {(a, b, int(s), int(n)) for a, b, s, n in rows}
