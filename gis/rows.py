"""Reading the one row a statement always returns (count(*), max(), RETURNING, EXISTS).

psycopg types fetchone() as "a row or None"; for these statements None would be a bug in the
statement, not a case to handle, so it is an error here instead of an unchecked `[0]` at every
call site.
"""

from __future__ import annotations

from typing import Any

import psycopg


def one(cur: psycopg.Cursor[Any]) -> Any:
    """The row the statement just executed on `cur` returned; LookupError when it returned none."""
    row = cur.fetchone()
    if row is None:
        raise LookupError("the statement returned no row")
    return row


def scalar(cur: psycopg.Cursor[Any]) -> Any:
    """The first column of the one row (see `one`)."""
    return one(cur)[0]
