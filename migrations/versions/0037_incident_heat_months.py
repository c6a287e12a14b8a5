"""Incidents counted per Vietnam-time month and day, category and Web Mercator cell (issues 17
and 18: the map's heatmap, clusters and low-zoom incident tiles for long windows).

Why: those three views group the window's points on Web Mercator cells; at 1,000,000
incidents a year's window read ~520,000 raw rows and called ST_X / ST_Y on each (heatmap
426 ms, clusters 501 ms, z10 tile 706 ms against a 300 / 200 ms target). Neither earlier
aggregate helps: incident_cell_days (0027) is on VN-2000 squares, which do not nest Mercator
cells, and holds about one row per incident; incident_days (0035) has no place. Per month,
category and cell the same year is ~150,000 rows (~290,000 for all time), read without any
geometry function.

`incident_heat_months`: per month (its first day, Vietnam time), category and cell of level 16
(2^16 cells along each axis of the Web Mercator square, 611.5 m: 8 screen pixels at zoom 11,
64 tile units at zoom 10; gx = floor(x / cell), x the Mercator metres, origin at 0 as the raw
queries count), the incidents per severity (n1..n4: the clusters' highest severity and an
exact count after deletes) and the sums of their Mercator x and y (the clusters' and tiles'
centroids). `incident_heat_days`: the same per Vietnam-time day, for the whole days of a
window outside its whole months (issue 18: "pre-aggregated per day and cell", so a window
scans raw rows only for the hours before its first midnight and after its last). Coarser
cells are whole groups of these (gx >> k), so every zoom at or below those levels reads them
(gis/analysis/heat_cells.py).

Each kept exact by statement-level triggers with transition tables on incidents, as 0035: one
grouped upsert per statement; an update leaving a row's time, category, severity and point
as they were (a status change, a note) writes nothing (rows are matched by id and cancelled
exactly); rows reaching zero are deleted. SECURITY DEFINER; the application role may only read.
`incident_aggregates_rebuild()` counts every incident pre-aggregate anew (after a load that skipped
the triggers); the backfill here is its first call.

Revision ID: 0037
Revises: 0035
Create Date: 2026-12-04
"""

from alembic import op

revision = "0037"
down_revision = "0035"
branch_labels = None
depends_on = None

# The cell of level 16 in Web Mercator metres: the square's side / 2^16.
CELL = repr(2 * 20037508.342789244 / 2**16)
MONTH = "date_trunc('month', {r}.reported_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date"
DAY = "({r}.reported_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date"
# Web Mercator metres written out (the formula the raw queries use: gis.analysis.incidents).
MX = "(6378137.0 * radians(ST_X({r}.geom)))"
MY = "(6378137.0 * ln(tan(pi() / 4 + radians(ST_Y({r}.geom)) / 2)))"


def _row(r: str, k: str, column: str, period: str) -> str:
    """A row of alias R as an aggregate's key (PERIOD as COLUMN), severity counts (K each) and
    sums."""
    mx, my = MX.format(r=r), MY.format(r=r)
    return (f"{period.format(r=r)} AS {column}, {r}.category, floor({mx} / {CELL})::int AS gx,"
            f" floor({my} / {CELL})::int AS gy,"
            + "".join(f" ({r}.severity = {s})::int * {k} AS n{s}," for s in range(1, 5))
            + f" {mx} * {k} AS sx, {my} * {k} AS sy")


AGGREGATE = r"""
CREATE TABLE @T@ (
    @P@ date NOT NULL,
    category text NOT NULL,
    gx integer NOT NULL,
    gy integer NOT NULL,
    -- No CHECK (>= 0): an upsert's proposed row (a negative delta) is checked before
    -- ON CONFLICT turns it into an update. The triggers delete rows that reach zero.
    n1 integer NOT NULL,
    n2 integer NOT NULL,
    n3 integer NOT NULL,
    n4 integer NOT NULL,
    sx double precision NOT NULL,
    sy double precision NOT NULL,
    PRIMARY KEY (@P@, category, gx, gy)
);

CREATE FUNCTION @T@_apply() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        @ADD@
          FROM (SELECT @NEW@ FROM new_rows n) s GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        @ON_CONFLICT@
        RETURN NULL;
    ELSIF TG_OP = 'DELETE' THEN
        @ADD@
          FROM (SELECT @OLD@ FROM old_rows o) s GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        @ON_CONFLICT@
    ELSE
        -- Each updated row once as it was (-1) and once as it is (+1), grouped by id and
        -- content: a row whose time, category, severity and point did not change is one
        -- group summing to zero and is dropped before anything is written.
        @ADD@
          FROM (SELECT @P@, category, gx, gy, sum(n1) AS n1, sum(n2) AS n2, sum(n3) AS n3,
                       sum(n4) AS n4, sum(sx) AS sx, sum(sy) AS sy
                  FROM (SELECT o.id, @OLD@ FROM old_rows o
                        UNION ALL
                        SELECT n.id, @NEW@ FROM new_rows n) r
                 GROUP BY id, @P@, category, gx, gy, abs(n1), abs(n2), abs(n3), abs(n4),
                          abs(sx), abs(sy)
                HAVING sum(n1 + n2 + n3 + n4) <> 0) c
         GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        @ON_CONFLICT@
        IF NOT FOUND THEN
            RETURN NULL;  -- nothing the aggregate keeps changed
        END IF;
    END IF;
    DELETE FROM @T@ a WHERE a.n1 + a.n2 + a.n3 + a.n4 = 0
       AND (a.@P@, a.category, a.gx, a.gy) IN (
           SELECT @P@, category, gx, gy FROM (SELECT @OLD@ FROM old_rows o) d);
    RETURN NULL;
END $$;

CREATE FUNCTION @T@_truncate() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    TRUNCATE @T@;
    RETURN NULL;
END $$;

CREATE TRIGGER @T@_ins AFTER INSERT ON incidents
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION @T@_apply();
CREATE TRIGGER @T@_upd AFTER UPDATE ON incidents
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION @T@_apply();
CREATE TRIGGER @T@_del AFTER DELETE ON incidents
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION @T@_apply();
CREATE TRIGGER @T@_truncate AFTER TRUNCATE ON incidents
    FOR EACH STATEMENT EXECUTE FUNCTION @T@_truncate();

"""

UPGRADE_COMMON = r"""
-- Every incident pre-aggregate (0027, 0035 and this one) counted anew from the raw rows: for
-- a bulk load that bypassed the triggers (bench/scale.py loads with session_replication_role
-- = replica, which skips every trigger) and for a periodic re-count where no trigger runs
-- (docs/scaling.md, Citus). Each is written in key order, so a window's days or months lie
-- together on disk.
CREATE FUNCTION incident_aggregates_rebuild() RETURNS void LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    cell double precision := (SELECT cell_m FROM incident_cell_grid);
BEGIN
    TRUNCATE incident_cell_days, incident_days, incident_heat_months, incident_heat_days;
    INSERT INTO incident_cell_days (day, category, severity, status, source, cx, cy, n)
    SELECT (reported_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date, category, severity, status,
           source, floor(ST_X(geom_vn) / cell)::int, floor(ST_Y(geom_vn) / cell)::int,
           count(*)::int
      FROM incidents GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1, 2, 3, 4, 5, 6, 7;
    INSERT INTO incident_days (day, category, severity, status, source, n)
    SELECT (reported_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date, category, severity, status,
           source, count(*)::int
      FROM incidents GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5;
    INSERT INTO incident_heat_months (month, category, gx, gy, n1, n2, n3, n4, sx, sy)
    SELECT month, category, gx, gy, sum(n1), sum(n2), sum(n3), sum(n4), sum(sx), sum(sy)
      FROM (SELECT @ALL_MONTHS@ FROM incidents t) s GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4;
    INSERT INTO incident_heat_days (day, category, gx, gy, n1, n2, n3, n4, sx, sy)
    SELECT day, category, gx, gy, sum(n1), sum(n2), sum(n3), sum(n4), sum(sx), sum(sy)
      FROM (SELECT @ALL_DAYS@ FROM incidents t) s GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4;
    ANALYZE incident_cell_days;
    ANALYZE incident_days;
    ANALYZE incident_heat_months;
    ANALYZE incident_heat_days;
END $$;
REVOKE ALL ON FUNCTION incident_aggregates_rebuild() FROM PUBLIC;

SELECT incident_aggregates_rebuild();

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'geoioc_app') THEN
        REVOKE ALL ON incident_heat_months, incident_heat_days FROM geoioc_app;
        GRANT SELECT ON incident_heat_months, incident_heat_days TO geoioc_app;
    END IF;
END $$;
"""

DOWNGRADE = r"""
DROP FUNCTION IF EXISTS incident_aggregates_rebuild();
""" + "".join(f"""
DROP TRIGGER IF EXISTS {t}_ins ON incidents;
DROP TRIGGER IF EXISTS {t}_upd ON incidents;
DROP TRIGGER IF EXISTS {t}_del ON incidents;
DROP TRIGGER IF EXISTS {t}_truncate ON incidents;
DROP FUNCTION IF EXISTS {t}_apply();
DROP FUNCTION IF EXISTS {t}_truncate();
DROP TABLE IF EXISTS {t};
""" for t in ("incident_heat_months", "incident_heat_days"))


# Grouped rows added to the aggregate (a negative count subtracts).
ADD = ("INSERT INTO @T@ AS a (@P@, category, gx, gy, n1, n2, n3, n4, sx, sy)\n"
       "        SELECT @P@, category, gx, gy, sum(n1), sum(n2), sum(n3), sum(n4), sum(sx), sum(sy)")
ON_CONFLICT = ("ON CONFLICT (@P@, category, gx, gy) DO UPDATE\n"
               "           SET n1 = a.n1 + excluded.n1, n2 = a.n2 + excluded.n2,"
               " n3 = a.n3 + excluded.n3,\n"
               "               n4 = a.n4 + excluded.n4, sx = a.sx + excluded.sx,"
               " sy = a.sy + excluded.sy;")


# The two aggregates: table, period column, the period of a row of alias {r}.
AGGREGATES = (("incident_heat_months", "month", MONTH), ("incident_heat_days", "day", DAY))


def upgrade() -> None:
    for table, column, period in AGGREGATES:
        op.execute(AGGREGATE.replace("@ADD@", ADD).replace("@ON_CONFLICT@", ON_CONFLICT)
                   .replace("@OLD@", _row("o", "-1", column, period))
                   .replace("@NEW@", _row("n", "1", column, period))
                   .replace("@T@", table).replace("@P@", column))
    op.execute(UPGRADE_COMMON.replace("@ALL_MONTHS@", _row("t", "1", "month", MONTH))
               .replace("@ALL_DAYS@", _row("t", "1", "day", DAY)))


def downgrade() -> None:
    op.execute(DOWNGRADE)
