"""The job queue's tables: procrastinate's own schema (gis/jobs, issue 15).

Every background job of the platform (export jobs, webhook deliveries, later the scheduled
briefings) is a row of procrastinate_jobs, run by a procrastinate worker (gis/jobs/worker.py).
The schema is the one the installed procrastinate ships (procrastinate/sql/schema.sql, read
through its SchemaManager), not a copy of ours: the queue's functions and triggers are the
library's business. pyproject.toml pins procrastinate to one minor version for that reason: a
later version's schema changes come with a later migration of ours that applies the library's
delta files (procrastinate/sql/migrations/) in order.

The downgrade drops every procrastinate_* table, function and type: the library ships no
"uninstall" script, so it is found in the catalogue by name.

Pooled connections act as geoioc_app (gis/db.py): it enqueues, and the in-process worker and
`geoioc worker` use the same role, so it gets the DML rights on the tables and sequences (the
trigger functions write events with the caller's rights).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

TABLES = ("procrastinate_workers", "procrastinate_jobs", "procrastinate_periodic_defers",
          "procrastinate_events")


def upgrade() -> None:
    from procrastinate.schema import SchemaManager

    # The library's SQL as it ships: op.execute sends it as one statement block (no
    # parameters, so its `%` signs are not placeholders).
    op.execute(SchemaManager.get_schema())
    tables = ", ".join(TABLES)
    op.execute(f"""
    DO $$ BEGIN
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'geoioc_app') THEN
            GRANT SELECT, INSERT, UPDATE, DELETE ON {tables} TO geoioc_app;
            GRANT USAGE, SELECT ON SEQUENCE procrastinate_jobs_id_seq, procrastinate_events_id_seq,
                procrastinate_periodic_defers_id_seq, procrastinate_workers_id_seq TO geoioc_app;
        END IF;
    END $$;
    """)


def downgrade() -> None:
    op.execute(r"""
    DO $$
    DECLARE r record;
    BEGIN
        DROP TABLE IF EXISTS procrastinate_events, procrastinate_periodic_defers,
                             procrastinate_jobs, procrastinate_workers CASCADE;
        FOR r IN SELECT p.oid::regprocedure AS f FROM pg_proc p
                 JOIN pg_namespace n ON n.oid = p.pronamespace
                 WHERE n.nspname = 'public' AND p.proname LIKE 'procrastinate\_%' LOOP
            EXECUTE 'DROP FUNCTION IF EXISTS ' || r.f || ' CASCADE';
        END LOOP;
        FOR r IN SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                 WHERE n.nspname = 'public' AND t.typname LIKE 'procrastinate\_%'
                   AND t.typtype IN ('e', 'c') LOOP
            EXECUTE format('DROP TYPE IF EXISTS %I CASCADE', r.typname);
        END LOOP;
    END $$;
    """)
