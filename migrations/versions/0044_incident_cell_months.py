"""Incidents counted per Vietnam-time month and base cell, one count column per category (issue 18:
the kernel density of a year at 10,000,000 incidents).

Why: a year's KDE on 100 m cells (`/api/incidents/density`, the dashboard's map) counted the
year's raw rows, 2.7 million points at full scale: 1.7 s per request on 2 cores against a 1 s
goal. `incident_cell_days` (0027) holds the same cells but keyed by day, category, severity,
status and source: about one row per incident, no cheaper to read than the raw rows
(aggregates.PAY_RATIO). Per month and cell the year is some 640,000 rows, a quarter of
the incidents; keyed by category as well it was 1.3 million, too many to pay. So the categories
are columns here (`n_<category>`, from migration 0027's CHECK list of incidents.category, written
out below as a migration must be): a reader sums the columns of the categories it may count (its
own selection and the caller's row rule, layers.access.row_filter, evaluated on the category
names), and a security event an operator may not open is in no column they read.

`incident_cell_months`: per month (its first day, Vietnam time) and cell (cx, cy) of the base
grid of incident_cell_grid (0027: cx = floor(x_vn / cell_m), as incident_cell_days counts them),
the incidents of each category. Kept exact by statement-level triggers with transition tables on
incidents, as 0042: one grouped upsert per statement; an update leaving a row's month, cell and
category as they were writes nothing; rows reaching zero in every column are deleted. SECURITY
DEFINER; the application role may only read. An archived month (0040) leaves it by the DELETE
the triggers see.

A category added to incidents later needs its column here and a re-count
(`incident_aggregates_rebuild()`); until then gis/analysis/cell_months.py finds a catalogue
category without a column and reads raw rows instead.

`incident_aggregates_rebuild()` now counts it too (0043's function, renamed, does the others
first); the months are summed from the freshly counted incident_cell_days, which hold the same
cells by a finer key, so neither the rebuild nor this backfill reads the incidents again.

Revision ID: 0044
Revises: 0043
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0044"
down_revision = "0043"
branch_labels = None
depends_on = None

# incidents.category's CHECK list (0027 onwards), in the catalogue's order.
CATEGORIES = ("traffic_accident", "public_order", "fire", "environment", "land_violation",
              "infrastructure", "security_event")
MONTH = "date_trunc('month', {r}.reported_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date"
COLUMNS = ", ".join(f"n_{c}" for c in CATEGORIES)
# The grouped rows of a subquery s (month, cx, cy, category, n) as the table's columns.
SPREAD = ", ".join(f"coalesce(sum(n) FILTER (WHERE category = '{c}'), 0)" for c in CATEGORIES)
ADDED = ", ".join(f"n_{c} = a.n_{c} + excluded.n_{c}" for c in CATEGORIES)
EMPTY = " AND ".join(f"a.n_{c} = 0" for c in CATEGORIES)


def _row(r: str, k: str, cell: str) -> str:
    """A row of alias R as the aggregate's key (month, cx, cy), its category and count K."""
    return (f"{MONTH.format(r=r)} AS month, floor({r}.x_vn / {cell})::int AS cx,"
            f" floor({r}.y_vn / {cell})::int AS cy, {r}.category, {k} AS n")


UPGRADE = r"""
CREATE TABLE incident_cell_months (
    month date NOT NULL,
    cx integer NOT NULL,
    cy integer NOT NULL,
@DEFINITIONS@
    PRIMARY KEY (month, cx, cy)
);
COMMENT ON TABLE incident_cell_months IS
    'Incidents per Vietnam-time month and base cell (incident_cell_grid), one column per category';

CREATE FUNCTION incident_cell_months_apply() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO incident_cell_months AS a (month, cx, cy, @COLUMNS@)
        SELECT month, cx, cy, @SPREAD@
          FROM (SELECT @NEW@ FROM new_rows n) s GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (month, cx, cy) DO UPDATE SET @ADDED@;
        RETURN NULL;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO incident_cell_months AS a (month, cx, cy, @COLUMNS@)
        SELECT month, cx, cy, @SPREAD@
          FROM (SELECT @OLD@ FROM old_rows o) s GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (month, cx, cy) DO UPDATE SET @ADDED@;
    ELSE
        -- Each updated row once as it was (-1) and once as it is (+1), grouped by id and key:
        -- a row whose month, cell and category did not change sums to zero and is dropped.
        INSERT INTO incident_cell_months AS a (month, cx, cy, @COLUMNS@)
        SELECT month, cx, cy, @SPREAD@
          FROM (SELECT month, cx, cy, category, sum(n) AS n
                  FROM (SELECT o.id, @OLD@ FROM old_rows o
                        UNION ALL
                        SELECT n.id, @NEW@ FROM new_rows n) r
                 GROUP BY id, month, cx, cy, category
                HAVING sum(n) <> 0) s
         GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (month, cx, cy) DO UPDATE SET @ADDED@;
        IF NOT FOUND THEN
            RETURN NULL;  -- nothing the aggregate keeps changed
        END IF;
    END IF;
    DELETE FROM incident_cell_months a WHERE @EMPTY@
       AND (a.month, a.cx, a.cy) IN (SELECT month, cx, cy FROM (SELECT @OLD@ FROM old_rows o) d);
    RETURN NULL;
END $$;

CREATE FUNCTION incident_cell_months_truncate() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    TRUNCATE incident_cell_months;
    RETURN NULL;
END $$;

CREATE TRIGGER incident_cell_months_ins AFTER INSERT ON incidents
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION incident_cell_months_apply();
CREATE TRIGGER incident_cell_months_upd AFTER UPDATE ON incidents
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION incident_cell_months_apply();
CREATE TRIGGER incident_cell_months_del AFTER DELETE ON incidents
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION incident_cell_months_apply();
CREATE TRIGGER incident_cell_months_truncate AFTER TRUNCATE ON incidents
    FOR EACH STATEMENT EXECUTE FUNCTION incident_cell_months_truncate();

-- 0043's re-count of the other pre-aggregates keeps its body under another name; the function
-- every caller knows runs it, then sums the months from the cell days it has just counted.
ALTER FUNCTION incident_aggregates_rebuild() RENAME TO incident_aggregates_rebuild_0043;
CREATE FUNCTION incident_aggregates_rebuild() RETURNS void LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM incident_aggregates_rebuild_0043();
    TRUNCATE incident_cell_months;
@FROM_DAYS@
END $$;
REVOKE ALL ON FUNCTION incident_aggregates_rebuild() FROM PUBLIC;
@FROM_DAYS@
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'geoioc_app') THEN
        REVOKE ALL ON incident_cell_months FROM geoioc_app;
        GRANT SELECT ON incident_cell_months TO geoioc_app;
    END IF;
END $$;
"""

# The months of every cell from its days: the same incidents, by a coarser key.
FROM_DAYS = """
    INSERT INTO incident_cell_months (month, cx, cy, @COLUMNS@)
    SELECT month, cx, cy, @SPREAD@
      FROM (SELECT date_trunc('month', day)::date AS month, cx, cy, category, n
              FROM incident_cell_days) s GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;
    ANALYZE incident_cell_months;
"""

DOWNGRADE = r"""
DROP FUNCTION IF EXISTS incident_aggregates_rebuild();
ALTER FUNCTION incident_aggregates_rebuild_0043() RENAME TO incident_aggregates_rebuild;
""" + "".join(f"DROP TRIGGER IF EXISTS incident_cell_months_{t} ON incidents;\n"
              for t in ("ins", "upd", "del", "truncate")) + r"""
DROP FUNCTION IF EXISTS incident_cell_months_apply();
DROP FUNCTION IF EXISTS incident_cell_months_truncate();
DROP TABLE IF EXISTS incident_cell_months;
"""


def upgrade() -> None:
    # The base cell as 0027 wrote it into incident_cell_days' triggers: a literal, read once.
    cell = op.get_bind().execute(sa.text("SELECT cell_m FROM incident_cell_grid")).scalar_one()
    cell_sql = f"{float(cell)!r}::float8"
    # No CHECK (>= 0): an upsert's proposed row (a negative delta) is checked before ON
    # CONFLICT turns it into an update. The triggers delete rows that reach zero.
    definitions = "".join(f"    n_{c} integer NOT NULL,\n" for c in CATEGORIES)
    op.execute(UPGRADE.replace("@FROM_DAYS@", FROM_DAYS)
               .replace("@DEFINITIONS@", definitions.rstrip("\n"))
               .replace("@COLUMNS@", COLUMNS).replace("@SPREAD@", SPREAD)
               .replace("@ADDED@", ADDED).replace("@EMPTY@", EMPTY)
               .replace("@OLD@", _row("o", "-1", cell_sql))
               .replace("@NEW@", _row("n", "1", cell_sql)))


def downgrade() -> None:
    op.execute(DOWNGRADE)
