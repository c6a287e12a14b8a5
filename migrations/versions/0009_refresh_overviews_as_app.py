"""Let the application refresh the low-zoom overviews after an import through the API.

REFRESH MATERIALIZED VIEW needs the view's owner; the application runs as geoioc_app. A
SECURITY DEFINER function that refreshes only `<table>_overview` views closes that gap without
giving the application ownership of anything.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(r"""
    CREATE FUNCTION geoioc_refresh_overview(view_name text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_matviews WHERE schemaname = 'public'
                        AND matviewname = view_name AND matviewname LIKE '%\_overview') THEN
            RAISE invalid_parameter_value USING MESSAGE = format('%L is not an overview', view_name);
        END IF;
        EXECUTE format('REFRESH MATERIALIZED VIEW %I', view_name);
    END $$;
    REVOKE ALL ON FUNCTION geoioc_refresh_overview(text) FROM PUBLIC;
    DO $$ BEGIN
        IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'geoioc_app') THEN
            GRANT EXECUTE ON FUNCTION geoioc_refresh_overview(text) TO geoioc_app;
        END IF;
    END $$;
    """)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS geoioc_refresh_overview(text)")
