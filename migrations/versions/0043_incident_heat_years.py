"""Incidents counted per Vietnam-time year, category and Web Mercator cell of level 16 (issue 18:
the map's all-time clusters and low-zoom incident tiles at 10,000,000 incidents).

Why: a window of five years read its whole months off `incident_heat_months` (0037): at full
scale some 60 months of rows, each month holding most of the province's occupied cells per
category, so an all-time view grouped over a million aggregate rows (clusters at z11 317-418 ms
and the densest z10 tile 214-260 ms on 2 slow cores, against 300 and 200 ms goals). Per year the
same cells are a twelfth of the rows: the whole years of a window come from here, its other whole
months from 0037's months, its other whole days from the days, the ragged hours from raw rows
(gis/analysis/heat_cells.py).

`incident_heat_years`: the columns of incident_heat_months (0037) with `year` (its first day,
Vietnam time) for `month`, written by the same template (0037's AGGREGATE, loaded from its file
so the trigger body exists once): statement-level triggers with transition tables on incidents,
one grouped upsert per statement, rows reaching zero deleted, SECURITY DEFINER, read-only for
the application role. An archived month (0040) leaves it as it leaves the others: by the DELETE
that the triggers see.

`incident_aggregates_rebuild()` now recounts it too (0042's function, renamed, does the others
first); the years are summed from the freshly counted months, which hold the same rows by a
finer period, so neither the rebuild nor this backfill reads the incidents again.

Revision ID: 0043
Revises: 0042
Create Date: 2026-12-05
"""

import importlib.util
from pathlib import Path
from types import ModuleType

from alembic import op

revision = "0043"
down_revision = "0042"
branch_labels = None
depends_on = None

YEAR = "date_trunc('year', {r}.reported_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date"


def _m0037() -> ModuleType:
    """Migration 0037, whose aggregate template and row expressions this one applies to years."""
    spec = importlib.util.spec_from_file_location(
        "_geoioc_migration_0037", Path(__file__).with_name("0037_incident_heat_months.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The years of every cell from its months: the same incidents, by a coarser period.
FROM_MONTHS = """
    INSERT INTO incident_heat_years (year, category, gx, gy, n1, n2, n3, n4, sx, sy)
    SELECT date_trunc('year', month)::date, category, gx, gy, sum(n1), sum(n2), sum(n3),
           sum(n4), sum(sx), sum(sy)
      FROM incident_heat_months GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4;
    ANALYZE incident_heat_years;
"""

UPGRADE = r"""
COMMENT ON TABLE incident_heat_years IS
    'Incidents per Vietnam-time year, category and Web Mercator cell of level 16 (0037''s columns)';

-- 0042's re-count of the other pre-aggregates keeps its body under another name; the function
-- every caller knows runs it, then sums the years from the months it has just counted.
ALTER FUNCTION incident_aggregates_rebuild() RENAME TO incident_aggregates_rebuild_0042;
CREATE FUNCTION incident_aggregates_rebuild() RETURNS void LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM incident_aggregates_rebuild_0042();
    TRUNCATE incident_heat_years;
@FROM_MONTHS@
END $$;
REVOKE ALL ON FUNCTION incident_aggregates_rebuild() FROM PUBLIC;
@FROM_MONTHS@
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'geoioc_app') THEN
        REVOKE ALL ON incident_heat_years FROM geoioc_app;
        GRANT SELECT ON incident_heat_years TO geoioc_app;
    END IF;
END $$;
"""

DOWNGRADE = r"""
DROP FUNCTION IF EXISTS incident_aggregates_rebuild();
ALTER FUNCTION incident_aggregates_rebuild_0042() RENAME TO incident_aggregates_rebuild;
""" + "".join(f"DROP TRIGGER IF EXISTS incident_heat_years_{t} ON incidents;\n"
              for t in ("ins", "upd", "del", "truncate")) + r"""
DROP FUNCTION IF EXISTS incident_heat_years_apply();
DROP FUNCTION IF EXISTS incident_heat_years_truncate();
DROP TABLE IF EXISTS incident_heat_years;
"""


def upgrade() -> None:
    m = _m0037()
    op.execute(m.AGGREGATE.replace("@ADD@", m.ADD).replace("@ON_CONFLICT@", m.ON_CONFLICT)
               .replace("@OLD@", m._row("o", "-1", "year", YEAR))
               .replace("@NEW@", m._row("n", "1", "year", YEAR))
               .replace("@T@", "incident_heat_years").replace("@P@", "year"))
    op.execute(UPGRADE.replace("@FROM_MONTHS@", FROM_MONTHS))


def downgrade() -> None:
    op.execute(DOWNGRADE)
