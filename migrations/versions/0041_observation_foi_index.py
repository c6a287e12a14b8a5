"""Observations by feature of interest: an index, found missing at the issue's full scale.

Why: SensorThings reaches observations through their feature of interest
(`FeaturesOfInterest(id)/Observations`, `Observations?$filter=FeatureOfInterest/id eq id`, or any
filter on the feature's properties). Nothing indexed `feature_of_interest_id`, and the default
order of Observations is their id's, (datastream_id, phenomenon_time): with a limit, the planner
walks the primary key in that order and tests every row's feature, expecting the first page
soon; the feature's rows sit in a few datastreams among 1,000. At 100,000,000 observations
(bench/scale.py) both requests ran into the 10 s statement timeout (503). With this index the
feature's rows come in that very order: 10 ms for the first page, 470 ms for the same feature's
page by `phenomenonTime desc` (its ~400,000 rows sorted), 570 ms for `$skip=50000`.

Measured on those 100,000,000 observations, this 2-core machine (bench/README.md, "Every
benchmark at full scale"): 53 s to build, 3.9 GB on disk (the primary key is 4.3 GB, the
table with its rollups 11.7 GB); the MQTT ingest of `bench/mqtt_ingest.py --rate 40000` stored
34,000 observations/s without it and 29,100 with it (one more B-tree per row: 15 % of the peak,
which stays 2.4 times issue 16's 12,000/s). `(feature_of_interest_id, phenomenon_time)` alone
(3.0 GB, and no measurable cost to the ingest: 34,000/s) served `phenomenonTime desc` in 10 ms
but left the default order's plan as it was (timeout), so the datastream is in the key; its
inserts touch one leaf per feature and datastream instead of one per feature.

On an installation with years of observations, the index is built on every attached month's
partition inside this migration's transaction (writes to observations wait meanwhile: about a
minute per 100,000,000 rows here). Detached months (`geoioc observations detach`) get it when
they are attached again.

Revision ID: 0041
Revises: 0040
Create Date: 2026-12-04
"""

from alembic import op

revision = "0041"
down_revision = "0040"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX observations_foi_idx ON observations"
               " (feature_of_interest_id, datastream_id, phenomenon_time)")


def downgrade() -> None:
    op.execute("DROP INDEX observations_foi_idx")
