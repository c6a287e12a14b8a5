"""The SQL of the shared limits (tables of migration 0032): one statement per request or
sign-in failure, each atomic on its row, so that N server processes counting the same key
never lose a count between a read and a write.

The fragments below are constants of this module (no input is ever formatted into them); the
values travel as parameters.
"""

from __future__ import annotations

from psycopg import sql

# --- token buckets (rate_buckets) ----------------------------------------------------------------
# The bucket refilled since its last request, in tokens (at most the burst). In ON CONFLICT DO
# UPDATE, `b` is the stored row and `excluded.at` this request's time (the database's clock, the
# one clock every process shares).
_REFILL = sql.SQL(
    "least(%(burst)s, b.tokens + extract(epoch FROM excluded.at - b.at)::float8 * %(rate)s)")
# As many whole tokens as asked for (%(n)s) and there are.
_TAKEN = sql.SQL("least(%(n)s, floor({refill}))::int").format(refill=_REFILL)
_LEFT = sql.SQL("(({refill}) - {taken})").format(refill=_REFILL, taken=_TAKEN)

# Take up to N tokens of KEY's bucket (RATE a second, BURST at most, N <= BURST): `granted`
# says how many there were; `tokens` is what is left (when none was granted: what there is,
# under one). A new key starts full and takes N at once.
TAKE = sql.SQL(
    "INSERT INTO rate_buckets AS b (key, tokens, at, full_at, granted) "
    "VALUES (%(key)s, %(burst)s - %(n)s, clock_timestamp(), "
    "        clock_timestamp() + make_interval(secs => %(n)s / %(rate)s), %(n)s) "
    "ON CONFLICT (key) DO UPDATE SET "
    "  granted = {taken}, "
    "  tokens = {left}, "
    "  at = excluded.at, "
    "  full_at = excluded.at + make_interval(secs => (%(burst)s - {left}) / %(rate)s) "
    "RETURNING granted, tokens").format(taken=_TAKEN, left=_LEFT)

# Buckets full again hold no information (a missing row is a full bucket).
FORGET_FULL_BUCKETS = sql.SQL("DELETE FROM rate_buckets WHERE full_at < clock_timestamp()")

# --- sign-in failures (signin_failures) -------------------------------------------------------
# `f` is the stored row, `excluded.last_failure` this failure's time. A failure after a quiet
# window starts the count again.
_QUIET = sql.SQL(
    "(excluded.last_failure - f.last_failure > make_interval(secs => %(window)s))")
_COUNT = sql.SQL("(CASE WHEN {quiet} THEN 1 ELSE f.failures + 1 END)").format(quiet=_QUIET)
# From the limit on, each failure locks for `lockout`, doubling, at most `max_lockout`.
_LOCKED_UNTIL = sql.SQL(
    "(CASE WHEN {count} >= %(limit)s THEN excluded.last_failure + make_interval(secs => "
    "least(%(max_lockout)s, %(lockout)s * power(2, least({count} - %(limit)s, 30)))) "
    "WHEN {quiet} THEN excluded.last_failure ELSE f.locked_until END)").format(
        count=_COUNT, quiet=_QUIET)

# Count a failure of KEY; returns the count and the lock it set (seconds; meaningful only when
# the count reached the limit). FIRST_LOCK: the lock of a first failure (0 unless limit is 1).
# A row not locked has locked_until at or before its last failure.
FAILURE = sql.SQL(
    "INSERT INTO signin_failures AS f (key, failures, last_failure, locked_until, forget_at) "
    "SELECT %(key)s, 1, now_, "
    "       now_ + make_interval(secs => %(first_lock)s), "
    "       now_ + make_interval(secs => greatest(%(window)s, %(first_lock)s)) "
    "  FROM (SELECT clock_timestamp() AS now_) t "
    "ON CONFLICT (key) DO UPDATE SET "
    "  failures = {count}, "
    "  locked_until = {locked_until}, "
    "  last_failure = excluded.last_failure, "
    "  forget_at = greatest({locked_until}, "
    "                       excluded.last_failure + make_interval(secs => %(window)s)) "
    "RETURNING failures, "
    "          greatest(0, extract(epoch FROM locked_until - last_failure))::float8").format(
        count=_COUNT, locked_until=_LOCKED_UNTIL)

# Seconds until the most locked of KEYS may try again (0: none is locked).
RETRY_AFTER = sql.SQL(
    "SELECT greatest(0, max(extract(epoch FROM locked_until - clock_timestamp())::float8)) "
    "FROM signin_failures WHERE key = ANY(%(keys)s)")

SUCCESS = sql.SQL("DELETE FROM signin_failures WHERE key = %(key)s")

FORGET_OLD_FAILURES = sql.SQL("DELETE FROM signin_failures WHERE forget_at < clock_timestamp()")
