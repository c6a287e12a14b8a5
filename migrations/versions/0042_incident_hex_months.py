"""Incidents counted per Vietnam-time month, category and 500 m hexagon (issue 18: the hexagon
grid of a year at 10,000,000 incidents).

Why: the grid's default hexagons (500 m, `/api/incidents/grid`) over a year counted the year's
raw rows, 2.8 million points at full scale: 595 ms for the statement alone on 2 cores after the
three-floor rule (0.6 s of scanning, keying and hashing that only more cores divide), against a
500 ms goal for the whole request. None of the earlier aggregates serves it: hexagons do not
nest the VN-2000 squares of incident_cell_days (0027) nor the Mercator cells of 0037. Per month,
category and hexagon the year is some 73,500 rows at full scale (381,432 for
the five years).

`incident_hex_months`: per month (its first day, Vietnam time), category and hexagon of edge 500
m in the stored projection (x_vn, y_vn: migration 0039), the incidents (n). The hexagon is its
centre's lattice coordinates (a, b) by the three floors of gis/analysis/density_sql.cell_key,
written out here for 500 m with the same double constants, operation for operation, so a raw
row and the aggregate put a point in the same hexagon (gis/analysis/hex_months.py reads it and
adds the window's ragged days from raw rows).

Kept exact by statement-level triggers with transition tables on incidents, as 0037: one grouped
upsert per statement; an update leaving a row's time, category and point as they were writes
nothing; rows reaching zero are deleted. SECURITY DEFINER; the application role may only read.
`incident_aggregates_rebuild()` now counts this one anew too (0037's function, renamed, does the
others first); the backfill here is that part of it.

Revision ID: 0042
Revises: 0041
Create Date: 2026-12-04
"""

from alembic import op

revision = "0042"
down_revision = "0041"
branch_labels = None
depends_on = None

SIZE = 500.0
# gis/analysis/dask_tasks.hexagon_factors(500.0): three per hexagon column, two per row.
ACROSS = repr(3 / (1.5 * SIZE))
UP = repr(2 / (3 ** 0.5 * SIZE))
MONTH = "date_trunc('month', {r}.reported_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date"


def _row(r: str, k: str) -> str:
    """A row of alias R as the aggregate's key (month, category, a, b) and count K."""
    x, y = f"{r}.x_vn", f"{r}.y_vn"
    f1 = f"floor({y} * {UP}::float8)"
    f2 = f"floor({x} * {ACROSS}::float8 + {y} * {UP}::float8)"
    f3 = f"floor({x} * {ACROSS}::float8 - {y} * {UP}::float8)"
    return (f"{MONTH.format(r=r)} AS month, {r}.category,"
            f" floor((2 * {f1} + {f2} + 4) / 6)::int AS a,"
            f" floor(({f3} - 2 * {f1} + 2) / 6)::int AS b, {k} AS n")


UPGRADE = r"""
CREATE TABLE incident_hex_months (
    month date NOT NULL,
    category text NOT NULL,
    a integer NOT NULL,
    b integer NOT NULL,
    -- No CHECK (>= 0): an upsert's proposed row (a negative delta) is checked before
    -- ON CONFLICT turns it into an update. The triggers delete rows that reach zero.
    n integer NOT NULL,
    PRIMARY KEY (month, category, a, b)
);
COMMENT ON TABLE incident_hex_months IS
    'Incidents per Vietnam-time month, category and 500 m hexagon (lattice a, b) of x_vn, y_vn';

CREATE FUNCTION incident_hex_months_apply() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO incident_hex_months AS h (month, category, a, b, n)
        SELECT month, category, a, b, sum(n)
          FROM (SELECT @NEW@ FROM new_rows n) s GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        ON CONFLICT (month, category, a, b) DO UPDATE SET n = h.n + excluded.n;
        RETURN NULL;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO incident_hex_months AS h (month, category, a, b, n)
        SELECT month, category, a, b, sum(n)
          FROM (SELECT @OLD@ FROM old_rows o) s GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        ON CONFLICT (month, category, a, b) DO UPDATE SET n = h.n + excluded.n;
    ELSE
        -- Each updated row once as it was (-1) and once as it is (+1), grouped by id and key:
        -- a row whose month, category and hexagon did not change sums to zero and is dropped.
        INSERT INTO incident_hex_months AS h (month, category, a, b, n)
        SELECT month, category, a, b, sum(n)
          FROM (SELECT month, category, a, b, sum(n) AS n
                  FROM (SELECT o.id, @OLD@ FROM old_rows o
                        UNION ALL
                        SELECT n.id, @NEW@ FROM new_rows n) r
                 GROUP BY id, month, category, a, b
                HAVING sum(n) <> 0) c
         GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        ON CONFLICT (month, category, a, b) DO UPDATE SET n = h.n + excluded.n;
        IF NOT FOUND THEN
            RETURN NULL;  -- nothing the aggregate keeps changed
        END IF;
    END IF;
    DELETE FROM incident_hex_months h WHERE h.n = 0
       AND (h.month, h.category, h.a, h.b) IN (
           SELECT month, category, a, b FROM (SELECT @OLD@ FROM old_rows o) d);
    RETURN NULL;
END $$;

CREATE FUNCTION incident_hex_months_truncate() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    TRUNCATE incident_hex_months;
    RETURN NULL;
END $$;

CREATE TRIGGER incident_hex_months_ins AFTER INSERT ON incidents
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION incident_hex_months_apply();
CREATE TRIGGER incident_hex_months_upd AFTER UPDATE ON incidents
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION incident_hex_months_apply();
CREATE TRIGGER incident_hex_months_del AFTER DELETE ON incidents
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION incident_hex_months_apply();
CREATE TRIGGER incident_hex_months_truncate AFTER TRUNCATE ON incidents
    FOR EACH STATEMENT EXECUTE FUNCTION incident_hex_months_truncate();

-- 0037's re-count of the other pre-aggregates keeps its body under another name; the function
-- every caller knows (bench/scale.py after a bulk load, docs/scaling.md's periodic re-count)
-- runs it and then counts this one.
ALTER FUNCTION incident_aggregates_rebuild() RENAME TO incident_aggregates_rebuild_0037;
CREATE FUNCTION incident_aggregates_rebuild() RETURNS void LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM incident_aggregates_rebuild_0037();
    TRUNCATE incident_hex_months;
    INSERT INTO incident_hex_months (month, category, a, b, n)
    SELECT month, category, a, b, sum(n)
      FROM (SELECT @ALL@ FROM incidents t) s GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4;
    ANALYZE incident_hex_months;
END $$;
REVOKE ALL ON FUNCTION incident_aggregates_rebuild() FROM PUBLIC;

INSERT INTO incident_hex_months (month, category, a, b, n)
SELECT month, category, a, b, sum(n)
  FROM (SELECT @ALL@ FROM incidents t) s GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4;
ANALYZE incident_hex_months;

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'geoioc_app') THEN
        REVOKE ALL ON incident_hex_months FROM geoioc_app;
        GRANT SELECT ON incident_hex_months TO geoioc_app;
    END IF;
END $$;
"""

DOWNGRADE = r"""
DROP FUNCTION IF EXISTS incident_aggregates_rebuild();
ALTER FUNCTION incident_aggregates_rebuild_0037() RENAME TO incident_aggregates_rebuild;
DROP TRIGGER IF EXISTS incident_hex_months_ins ON incidents;
DROP TRIGGER IF EXISTS incident_hex_months_upd ON incidents;
DROP TRIGGER IF EXISTS incident_hex_months_del ON incidents;
DROP TRIGGER IF EXISTS incident_hex_months_truncate ON incidents;
DROP FUNCTION IF EXISTS incident_hex_months_apply();
DROP FUNCTION IF EXISTS incident_hex_months_truncate();
DROP TABLE IF EXISTS incident_hex_months;
"""


def upgrade() -> None:
    op.execute(UPGRADE.replace("@OLD@", _row("o", "-1")).replace("@NEW@", _row("n", "1"))
               .replace("@ALL@", _row("t", "1")))


def downgrade() -> None:
    op.execute(DOWNGRADE)
