"""Incidents counted per Vietnam-time day without the cell (issue 17: the map's statistics).

Why: `/api/incidents/stats` counts by category, severity and status with a time series, over a
window and the previous one; at 1,000,000 incidents it read ~500,000 raw rows for a year (1.4 s,
2.1 s for all time). incident_cell_days (0027) cannot help: with its 100 m cell it holds about
one row per incident. Without the cell the same keys compress about 7x (72,279 rows for a
year at 1,000,000 incidents), so the whole days of a window are read here and only its ragged
ends from raw rows (gis/analysis/aggregates.py, incidents.stats).

`incident_days`: incidents per Vietnam-time day of `reported_at`, category, severity, status and
source. Kept exact like incident_cell_days: statement-level triggers with transition tables on
incidents (one grouped upsert per statement; an update changing no key writes nothing; rows
reaching zero are deleted), SECURITY DEFINER, the application role may only read it. A second
set of triggers rather than 0027's functions extended: each migration can be downgraded alone,
and an update of a position only (which moves a cell, not a day) writes nothing here.

No commune column: the statistics' unit filter is spatial (ST_Covers on the unit's boundary of
its era), and incidents.commune_code is a reported attribute that need not agree with it, so
counting by it would not equal the raw path; a unit filter reads raw rows.

Revision ID: 0035
Revises: 0027
Create Date: 2026-12-03
"""

from alembic import op

revision = "0035"
down_revision = "0027"
branch_labels = None
depends_on = None

DAY = "(reported_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date"

UPGRADE = r"""
CREATE TABLE incident_days (
    day date NOT NULL,
    category text NOT NULL,
    severity smallint NOT NULL,
    status text NOT NULL,
    source text NOT NULL,
    -- No CHECK (n > 0): an upsert's proposed row (a negative delta) is checked before
    -- ON CONFLICT turns it into an update. The triggers delete rows that reach zero.
    n integer NOT NULL,
    PRIMARY KEY (day, category, severity, status, source)
);

CREATE FUNCTION incident_days_ins() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO incident_days AS a (day, category, severity, status, source, n)
    SELECT @DAY@, category, severity, status, source, count(*)::int
      FROM new_rows GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (day, category, severity, status, source)
    DO UPDATE SET n = a.n + excluded.n;
    RETURN NULL;
END $$;

CREATE FUNCTION incident_days_del() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    WITH d AS (
        SELECT @DAY@ AS day, category, severity, status, source, count(*)::int AS k
          FROM old_rows GROUP BY 1, 2, 3, 4, 5)
    UPDATE incident_days a SET n = a.n - d.k FROM d
     WHERE (a.day, a.category, a.severity, a.status, a.source)
         = (d.day, d.category, d.severity, d.status, d.source);
    DELETE FROM incident_days a WHERE a.n = 0
       AND (a.day, a.category, a.severity, a.status, a.source)
        IN (SELECT @DAY@, category, severity, status, source FROM old_rows);
    RETURN NULL;
END $$;

-- An update: the net change per key (old rows -1, new rows +1); keys whose count does not
-- change (an update of other columns, or of a key and back) are not written.
CREATE FUNCTION incident_days_upd() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO incident_days AS a (day, category, severity, status, source, n)
    SELECT day, category, severity, status, source, sum(k)::int FROM (
        SELECT @DAY@ AS day, category, severity, status, source, -1 AS k FROM old_rows
        UNION ALL
        SELECT @DAY@, category, severity, status, source, 1 FROM new_rows) s
     GROUP BY 1, 2, 3, 4, 5 HAVING sum(k) <> 0 ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (day, category, severity, status, source)
    DO UPDATE SET n = a.n + excluded.n;
    IF NOT FOUND THEN
        RETURN NULL;  -- no key changed (an update of other columns)
    END IF;
    DELETE FROM incident_days a WHERE a.n = 0
       AND (a.day, a.category, a.severity, a.status, a.source)
        IN (SELECT @DAY@, category, severity, status, source FROM old_rows);
    RETURN NULL;
END $$;

CREATE FUNCTION incident_days_truncate() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    TRUNCATE incident_days;
    RETURN NULL;
END $$;

CREATE TRIGGER incident_days_ins AFTER INSERT ON incidents
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION incident_days_ins();
CREATE TRIGGER incident_days_upd AFTER UPDATE ON incidents
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION incident_days_upd();
CREATE TRIGGER incident_days_del AFTER DELETE ON incidents
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION incident_days_del();
CREATE TRIGGER incident_days_truncate AFTER TRUNCATE ON incidents
    FOR EACH STATEMENT EXECUTE FUNCTION incident_days_truncate();

-- Written in key order, so a window's days lie together on disk.
INSERT INTO incident_days (day, category, severity, status, source, n)
SELECT @DAY@, category, severity, status, source, count(*)::int
  FROM incidents GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5;
ANALYZE incident_days;

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'geoioc_app') THEN
        REVOKE ALL ON incident_days FROM geoioc_app;
        GRANT SELECT ON incident_days TO geoioc_app;
    END IF;
END $$;
"""

DOWNGRADE = r"""
DROP TRIGGER IF EXISTS incident_days_ins ON incidents;
DROP TRIGGER IF EXISTS incident_days_upd ON incidents;
DROP TRIGGER IF EXISTS incident_days_del ON incidents;
DROP TRIGGER IF EXISTS incident_days_truncate ON incidents;
DROP FUNCTION IF EXISTS incident_days_ins();
DROP FUNCTION IF EXISTS incident_days_upd();
DROP FUNCTION IF EXISTS incident_days_del();
DROP FUNCTION IF EXISTS incident_days_truncate();
DROP TABLE IF EXISTS incident_days;
"""


def upgrade() -> None:
    op.execute(UPGRADE.replace("@DAY@", DAY))


def downgrade() -> None:
    op.execute(DOWNGRADE)
