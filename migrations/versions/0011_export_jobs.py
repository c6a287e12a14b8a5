"""Export jobs in the database: an accepted job survives a restart and every server process
sees it.

Before this, jobs lived in the memory of the process that accepted them: a restart forgot them
(a client polling its job got a 404 for an export it had been promised) and a second process
could not answer for them. The file stays on disk (.geoioc/exports/<id>/); this table holds the
status document's state and what is needed to run the job again after a crash (the request and
the roles it was accepted with).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(r"""
    CREATE TABLE export_jobs (
        id         text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{32}$'),
        owner      text,                         -- user name; NULL: anonymous, reachable by id only
        roles      text[] NOT NULL DEFAULT '{}', -- the roles the job was accepted with
        request    jsonb NOT NULL,
        status     text NOT NULL DEFAULT 'accepted'
                   CHECK (status IN ('accepted', 'running', 'successful', 'failed')),
        rows_done  bigint NOT NULL DEFAULT 0 CHECK (rows_done >= 0),
        rows_total bigint CHECK (rows_total >= 0),
        message    text NOT NULL DEFAULT '',
        attempts   integer NOT NULL DEFAULT 1 CHECK (attempts >= 1),
        created    timestamptz NOT NULL DEFAULT now(),
        started    timestamptz,
        finished   timestamptz,
        updated    timestamptz NOT NULL DEFAULT now(),  -- also the heartbeat of a running job
        result     jsonb,
        CHECK ((status IN ('successful', 'failed')) = (finished IS NOT NULL))
    );
    CREATE INDEX export_jobs_owner_idx ON export_jobs (owner, created DESC);
    CREATE INDEX export_jobs_open_idx ON export_jobs (updated) WHERE status IN ('accepted', 'running');
    DO $$ BEGIN
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'geoioc_app') THEN
            GRANT SELECT, INSERT, UPDATE, DELETE ON export_jobs TO geoioc_app;
        END IF;
    END $$;
    """)


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS export_jobs")
