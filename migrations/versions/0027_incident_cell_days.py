"""Incidents projected once, and counted per Vietnam-time day and 100 m cell (issues 17 and 18).

Why: at 1,000,000 incidents over 90 % of a province-wide KDE or grid request was spent
projecting every point to the province CRS (VN-2000 TM-3) with ST_Transform at query time, and
a five-year heatmap read every raw row. Two structures remove both:

- `incidents.geom_vn`: the point in the province CRS (the SRID of the `province_srid` setting
  when the migration ran), a STORED generated column, so it can never disagree with `geom`.
  No index of its own: the analytics select by time (BRIN on reported_at) and by the lon/lat
  box (GiST on geom) and then only read it; a GiST on it would cost every insert for no query.
- `incident_cell_days`: the number of incidents per Vietnam-time day of `reported_at`, square
  cell of `incident_cell_grid.cell_m` metres in that CRS (cx = floor(x / cell), cy likewise:
  PostGIS ST_SquareGrid's numbering) and every value of the dimensions the shared filters and
  the row rules use: category (the row rule hiding security events and its access level
  follow from it), severity, status and source. Kept exact by statement-level triggers with
  transition tables on incidents (insert, update of any of those columns, delete, truncate):
  one grouped upsert per statement, so a bulk COPY of a million rows costs one pass. An update
  that changes none of the keys (a note, updated_at) writes nothing. Rows reaching zero are
  deleted, so the table holds only non-empty cells. The application role may read it only:
  the trigger functions are SECURITY DEFINER, and nothing else writes it.

What it cannot answer (and the queries read raw rows for, gis/analysis/aggregates.py): a
filter on an administrative unit or a bbox (not on cell boundaries), hexagons (a square cell
is not inside one hexagon), cells not a multiple of the base cell, and the ragged ends of a
window that does not start or end at a Vietnam midnight (those hours are read raw).

Incidents are NOT made a partitioned table: many foreign keys reference incidents(id), which
a partitioned table cannot carry without the partition key in every one of them (until
migration 0038, which partitions them and replaces those foreign keys by triggers).

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-03
"""

from alembic import op

from gis.settings import get_settings

revision = "0027"
down_revision = "0032"
branch_labels = None
depends_on = None

CELL_M = 100

UPGRADE = r"""
ALTER TABLE incidents ADD COLUMN geom_vn geometry(Point, @SRID@)
    GENERATED ALWAYS AS (ST_Transform(geom, @SRID@)) STORED;

CREATE TABLE incident_cell_grid (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    srid integer NOT NULL,
    cell_m double precision NOT NULL CHECK (cell_m > 0)
);
INSERT INTO incident_cell_grid (srid, cell_m) VALUES (@SRID@, @CELL@);

CREATE TABLE incident_cell_days (
    day date NOT NULL,
    category text NOT NULL,
    severity smallint NOT NULL,
    status text NOT NULL,
    source text NOT NULL,
    cx integer NOT NULL,
    cy integer NOT NULL,
    -- No CHECK (n > 0): an upsert's proposed row (a negative delta) is checked before
    -- ON CONFLICT turns it into an update. The triggers delete rows that reach zero.
    n integer NOT NULL,
    PRIMARY KEY (day, category, severity, status, source, cx, cy)
);

CREATE FUNCTION incident_cell_days_ins() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO incident_cell_days AS a (day, category, severity, status, source, cx, cy, n)
    SELECT (reported_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date, category, severity, status,
           source, floor(ST_X(geom_vn) / @CELL@)::int, floor(ST_Y(geom_vn) / @CELL@)::int,
           count(*)::int
      FROM new_rows GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (day, category, severity, status, source, cx, cy)
    DO UPDATE SET n = a.n + excluded.n;
    RETURN NULL;
END $$;

CREATE FUNCTION incident_cell_days_del() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    WITH d AS (
        SELECT (reported_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date AS day, category, severity,
               status, source, floor(ST_X(geom_vn) / @CELL@)::int AS cx,
               floor(ST_Y(geom_vn) / @CELL@)::int AS cy, count(*)::int AS k
          FROM old_rows GROUP BY 1, 2, 3, 4, 5, 6, 7)
    UPDATE incident_cell_days a SET n = a.n - d.k FROM d
     WHERE (a.day, a.category, a.severity, a.status, a.source, a.cx, a.cy)
         = (d.day, d.category, d.severity, d.status, d.source, d.cx, d.cy);
    DELETE FROM incident_cell_days a WHERE a.n = 0 AND (a.day, a.category, a.severity, a.status,
        a.source, a.cx, a.cy) IN (SELECT (reported_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date,
        category, severity, status, source, floor(ST_X(geom_vn) / @CELL@)::int,
        floor(ST_Y(geom_vn) / @CELL@)::int FROM old_rows);
    RETURN NULL;
END $$;

-- An update: the net change per key (old rows -1, new rows +1); keys whose count does not
-- change (an update of other columns, or of a key and back) are not written.
CREATE FUNCTION incident_cell_days_upd() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO incident_cell_days AS a (day, category, severity, status, source, cx, cy, n)
    SELECT day, category, severity, status, source, cx, cy, sum(k)::int FROM (
        SELECT (reported_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date AS day, category, severity,
               status, source, floor(ST_X(geom_vn) / @CELL@)::int AS cx,
               floor(ST_Y(geom_vn) / @CELL@)::int AS cy, -1 AS k FROM old_rows
        UNION ALL
        SELECT (reported_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date, category, severity,
               status, source, floor(ST_X(geom_vn) / @CELL@)::int,
               floor(ST_Y(geom_vn) / @CELL@)::int, 1 FROM new_rows) s
     GROUP BY 1, 2, 3, 4, 5, 6, 7 HAVING sum(k) <> 0 ORDER BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (day, category, severity, status, source, cx, cy)
    DO UPDATE SET n = a.n + excluded.n;
    IF NOT FOUND THEN
        RETURN NULL;  -- no key changed (an update of other columns)
    END IF;
    DELETE FROM incident_cell_days a WHERE a.n = 0 AND (a.day, a.category, a.severity, a.status,
        a.source, a.cx, a.cy) IN (SELECT (reported_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date,
        category, severity, status, source, floor(ST_X(geom_vn) / @CELL@)::int,
        floor(ST_Y(geom_vn) / @CELL@)::int FROM old_rows);
    RETURN NULL;
END $$;

CREATE FUNCTION incident_cell_days_truncate() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    TRUNCATE incident_cell_days;
    RETURN NULL;
END $$;

CREATE TRIGGER incident_cell_days_ins AFTER INSERT ON incidents
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION incident_cell_days_ins();
CREATE TRIGGER incident_cell_days_upd AFTER UPDATE ON incidents
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION incident_cell_days_upd();
CREATE TRIGGER incident_cell_days_del AFTER DELETE ON incidents
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION incident_cell_days_del();
CREATE TRIGGER incident_cell_days_truncate AFTER TRUNCATE ON incidents
    FOR EACH STATEMENT EXECUTE FUNCTION incident_cell_days_truncate();

INSERT INTO incident_cell_days (day, category, severity, status, source, cx, cy, n)
SELECT (reported_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date, category, severity, status, source,
       floor(ST_X(geom_vn) / @CELL@)::int, floor(ST_Y(geom_vn) / @CELL@)::int, count(*)::int
  FROM incidents GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1, 2, 3, 4, 5, 6, 7;
-- Written in key order, so a window's days lie together on disk (its range scan reads them
-- and nothing else: at 1,000,000 incidents an unordered table was read whole for one year).
ANALYZE incident_cell_days;

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'geoioc_app') THEN
        REVOKE ALL ON incident_cell_days, incident_cell_grid FROM geoioc_app;
        GRANT SELECT ON incident_cell_days, incident_cell_grid TO geoioc_app;
    END IF;
END $$;
"""

DOWNGRADE = r"""
DROP TRIGGER IF EXISTS incident_cell_days_ins ON incidents;
DROP TRIGGER IF EXISTS incident_cell_days_upd ON incidents;
DROP TRIGGER IF EXISTS incident_cell_days_del ON incidents;
DROP TRIGGER IF EXISTS incident_cell_days_truncate ON incidents;
DROP FUNCTION IF EXISTS incident_cell_days_ins();
DROP FUNCTION IF EXISTS incident_cell_days_upd();
DROP FUNCTION IF EXISTS incident_cell_days_del();
DROP FUNCTION IF EXISTS incident_cell_days_truncate();
DROP TABLE IF EXISTS incident_cell_days;
DROP TABLE IF EXISTS incident_cell_grid;
ALTER TABLE incidents DROP COLUMN IF EXISTS geom_vn;
"""


def upgrade() -> None:
    srid = int(get_settings().province_srid)
    op.execute(UPGRADE.replace("@SRID@", str(srid)).replace("@CELL@", str(CELL_M)))


def downgrade() -> None:
    op.execute(DOWNGRADE)
