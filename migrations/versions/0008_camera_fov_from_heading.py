"""A camera's field of view is derived from its position, heading, angle and range.

The `fov` polygon is derivable state: computing it in the database means an import or an edit
that only knows the heading (as a camera register does) cannot leave it missing or stale.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE FUNCTION camera_fov(p geometry, heading double precision, fov double precision,
                               range_m double precision) RETURNS geometry
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT CASE WHEN fov >= 360 THEN ST_Buffer(p::geography, range_m, 16)::geometry
        ELSE ST_MakePolygon(ST_MakeLine(ARRAY[p] || ARRAY(
                 SELECT ST_Project(p::geography, range_m,
                                   radians(heading - fov / 2 + fov * i / 16))::geometry
                   FROM generate_series(0, 16) AS i ORDER BY i) || ARRAY[p]))
        END
    $$;

    CREATE FUNCTION cameras_derive_fov() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' AND NEW.fov IS NOT NULL THEN
            RETURN NEW;  -- a surveyed field of view is kept as given
        END IF;
        IF TG_OP = 'INSERT' OR NEW.geom IS DISTINCT FROM OLD.geom
           OR NEW.heading IS DISTINCT FROM OLD.heading OR NEW.fov_deg IS DISTINCT FROM OLD.fov_deg
           OR NEW.range_m IS DISTINCT FROM OLD.range_m OR NEW.fov IS NULL THEN
            NEW.fov := camera_fov(NEW.geom, NEW.heading, NEW.fov_deg, NEW.range_m);
        END IF;
        RETURN NEW;
    END $$;

    CREATE TRIGGER cameras_derive_fov BEFORE INSERT OR UPDATE ON cameras
        FOR EACH ROW EXECUTE FUNCTION cameras_derive_fov();
    """)


def downgrade() -> None:
    op.execute("""
    DROP TRIGGER IF EXISTS cameras_derive_fov ON cameras;
    DROP FUNCTION IF EXISTS cameras_derive_fov();
    DROP FUNCTION IF EXISTS camera_fov(geometry, double precision, double precision,
                                       double precision);
    """)
