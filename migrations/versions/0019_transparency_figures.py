"""Transparency figures kept per period (issue 15): a year of a million reports is computed in
about a second (exact percentiles sort every processing time of the period), the public page
must answer in well under 300 ms.

A period's figures (the FIGURES document of gis/reports/transparency_queries.py, and the
choropleth built from it) are kept here once computed. A request serves them while they are
younger than transparency.FRESH; the job queue's periodic task recomputes, ahead of the
requests, the periods asked for in the last day and those the page offers (the last 30 and
365 days, this month, this year), so a reader almost never waits for a computation. Rows not
asked for in a week are dropped by the same task.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03
"""

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE transparency_figures (
        start_day    date NOT NULL,
        end_day      date NOT NULL CHECK (end_day > start_day),
        computed_at  timestamptz NOT NULL,
        requested_at timestamptz NOT NULL DEFAULT now(),
        figures      text NOT NULL,
        communes     text NOT NULL,
        PRIMARY KEY (start_day, end_day)
    );
    COMMENT ON TABLE transparency_figures IS
        'Public transparency figures per period, kept by gis/reports/transparency.py';
    """)


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS transparency_figures")
