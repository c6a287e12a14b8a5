"""Incidents' projected coordinates as plain numbers, for the grids (issue 17's hexagon target).

Why: a grid of cells (hexagons or squares, gis/analysis/density_sql.py) puts each point in its
cell by arithmetic on its projected x and y. Read from the stored point (`geom_vn`, 0027), each
use of x or y is a PostGIS call (ST_X, ST_Y), so the query kept every step in its own subquery
(OFFSET 0) to call them once; and those subqueries kept PostgreSQL from counting in parallel
workers (a subquery with OFFSET is not split), so the whole year of points went through one
process. With x and y as columns, the cell is one expression over two numbers that the planner
can repeat cheaply, the counting is grouped right on the scan, and PostgreSQL's parallel workers
each count their share of the partitions (Partial HashAggregate) before the leader sums them.
Measured on 1,000,360 incidents, 500 m hexagons, a year (490,544 points), this 2-core machine
(bench/hex_cells.py; bench/README.md, "Hexagon cells: counted in parallel"): 700-780 ms before,
300-330 ms after; serial, the same expression over the columns is 435 ms.

- `x_vn`, `y_vn`: ST_X / ST_Y of the point in the SRID of `geom_vn` (incident_cell_grid.srid),
  STORED generated columns, so they can never disagree with `geom` (the same transformation
  as geom_vn, hence the same numbers). 16 bytes a row; adding them rewrites every partition
  (about 15 s for a million rows here; an ACCESS EXCLUSIVE lock meanwhile).
- Planner hints: `n_distinct_inherited = 100` on both columns (the statistics of the
  partitioned parent, which the planner reads for a query over it). The columns are read only by
  the grids, which group by cells of x and y; without a hint the planner takes x (all distinct)
  as the number of cells, expects one cell per point, sees nothing to gain in counting per worker
  first, and ships every point to the leader (measured: 540 ms, no Partial HashAggregate). 100
  values each, 10,000 cells, is the order of a map's grid (1,351 hexagons of 500 m over the
  province; 14,000 of 150 m). The hint is a statistic: nothing else reads these columns.
  ANALYZE here sets it; the sample loader's ANALYZE keeps it (autovacuum never analyzes a
  partitioned parent, so the value stays as long as nobody drops the statistics).

No index: a covering index (reported_at) INCLUDE (the filter columns, x_vn, y_vn) let the scan
read 6,100 index pages instead of 18,200 heap pages, and saved 30-50 ms of the 300 (index-only
scans, once the planner's random_page_cost is lowered to 1.1), at ~60 bytes a row more on disk
and one more B-tree on every insert: not worth it at this size, measured and left out.

Revision ID: 0039
Revises: 0038
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0039"
down_revision = "0038"
branch_labels = None
depends_on = None

# The planner's number of distinct values of x_vn and of y_vn (see the docstring).
BINNING_DISTINCT = 100

UPGRADE = r"""
ALTER TABLE incidents
    ADD COLUMN x_vn double precision GENERATED ALWAYS AS (ST_X(ST_Transform(geom, @SRID@))) STORED,
    ADD COLUMN y_vn double precision GENERATED ALWAYS AS (ST_Y(ST_Transform(geom, @SRID@))) STORED;
ALTER TABLE incidents
    ALTER COLUMN x_vn SET (n_distinct_inherited = @DISTINCT@),
    ALTER COLUMN y_vn SET (n_distinct_inherited = @DISTINCT@);
COMMENT ON COLUMN incidents.x_vn IS
    'ST_X of geom_vn (the point in the province CRS), for grid counts; see migration 0039';
COMMENT ON COLUMN incidents.y_vn IS
    'ST_Y of geom_vn (the point in the province CRS), for grid counts; see migration 0039';
ANALYZE incidents;
"""

DOWNGRADE = r"""
ALTER TABLE incidents DROP COLUMN y_vn, DROP COLUMN x_vn;
"""


def upgrade() -> None:
    srid = int(op.get_bind().execute(sa.text("SELECT srid FROM incident_cell_grid")).scalar_one())
    op.execute(UPGRADE.replace("@SRID@", str(srid)).replace("@DISTINCT@", str(BINNING_DISTINCT)))


def downgrade() -> None:
    op.execute(DOWNGRADE)
