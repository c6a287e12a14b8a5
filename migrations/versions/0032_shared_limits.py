"""Rate-limit buckets and sign-in failure counters in the database (issue 18, several API
processes): `geoioc serve --workers N` runs N processes that share nothing but the database, so
a client's limit and a user's lockout must live there to hold whichever process answers.

- `rate_buckets`: one token bucket per key (gis/limits: the anonymous and signed-in request
  limits of api/middleware.py, the report flood limit). UNLOGGED: written on every request and
  worth nothing after a crash (a crash forgets the buckets, as a restart did when they were in
  memory), so it skips the WAL. Every request that takes from it is one UPSERT that refills
  and takes in SQL (no read-modify-write between processes; `granted`: how many tokens the
  last one took, a process may take a few at once for a busy client); `full_at` is when the
  bucket is full again, after which its row holds nothing and the queue's upkeep deletes it.
  fillfactor leaves room on each page for HOT updates: no indexed column changes, which is why
  `full_at` has no index (the upkeep's DELETE scans a table of one row per recent client).
- `signin_failures`: failures per username and per client address (gis/auth/throttle.py), with
  the lockout; a logged table (a lockout survives a crash), written on failures only.
  `forget_at` is when the row holds nothing any more (window passed, lock over).

Keys carry a namespace (gis/limits/): the processes of one deployment share theirs.

Revision ID: 0032
Revises: 0026
Create Date: 2026-12-03
"""

from alembic import op

revision = "0032"
down_revision = "0026"
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE UNLOGGED TABLE rate_buckets (
    key     text PRIMARY KEY,
    tokens  double precision NOT NULL,
    at      timestamptz NOT NULL,
    full_at timestamptz NOT NULL,
    granted integer NOT NULL
) WITH (fillfactor = 50);
COMMENT ON TABLE rate_buckets IS
    'Token buckets of the request and report limits, shared by every server process (gis/limits/)';

CREATE TABLE signin_failures (
    key          text PRIMARY KEY,
    failures     integer NOT NULL CHECK (failures > 0),
    last_failure timestamptz NOT NULL,
    locked_until timestamptz NOT NULL,
    forget_at    timestamptz NOT NULL
);
COMMENT ON TABLE signin_failures IS
    'Password sign-in failures and lockouts per username and address (gis/auth/throttle.py)';
"""

DOWNGRADE = r"""
DROP TABLE signin_failures;
DROP TABLE rate_buckets;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
