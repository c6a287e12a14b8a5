"""Socio-economic indicators by administrative unit (issue 17): their definitions, their values
per unit and period, and the view the layer catalogue serves them through.

- `indicators`: one row per indicator (code, Vietnamese and English name and unit of measure,
  domain, periodicity, source), the range a value must lie in (a percentage 0..100, a count
  >= 0), the decimals it is published with, how a higher unit's value derives from its parts
  (`aggregation`: sum of counts, mean weighted by the parts, or a ratio of two sums), and who
  may read it (`access`/`roles`: the catalogue's access levels, layers.model.Access). The
  definitions are reference data (sample_data/indicators.csv, loaded here); the sample loader
  empties only the values.
- `indicator_values`: one value per indicator, unit and period. A unit is one row of
  `admin_units` (its id): a code is reused across the 2025 reform, the unit is not. A period is
  text: `2023` (annual), `2023-Q2` (quarterly), `2023-06` (monthly); its first day and the day
  after it are generated columns. A value of a unit for a period before the unit existed is a
  figure recomputed on that unit's boundaries (statistics offices publish such series for the
  units made in 2025, so that a trend runs across the reform).
- `indicator_features`: the values with their unit's geometry and their indicator's names and
  access, the table of the catalogue's `indicators` layer (OGC collection, exports). Its id is
  the value's id.

A trigger holds what a CHECK cannot see (the indicator's row): a period of the indicator's
periodicity and a value within its range. The importer (gis/indicators) checks the same per row
first, so that a file gets every refused row named rather than the first refusal.

Revision ID: 0026
Revises: 0024
Create Date: 2026-12-05
"""

import csv

import sqlalchemy as sa
from alembic import op

from gis.settings import PROJECT_ROOT

revision = "0026"
down_revision = "0024"
branch_labels = None
depends_on = None

CSV = PROJECT_ROOT / "sample_data" / "indicators.csv"

UPGRADE = r"""
CREATE TABLE indicators (
    code        text PRIMARY KEY CHECK (code ~ '^[A-Z][A-Z0-9_]{1,31}$'),
    name_vi     text NOT NULL CHECK (name_vi <> ''),
    name_en     text NOT NULL CHECK (name_en <> ''),
    unit_vi     text NOT NULL CHECK (unit_vi <> ''),
    unit_en     text NOT NULL CHECK (unit_en <> ''),
    domain      text NOT NULL CHECK (domain IN ('population', 'land', 'labour', 'economy',
                    'finance', 'enterprise', 'social', 'health', 'education', 'environment',
                    'infrastructure', 'agriculture', 'safety')),
    periodicity text NOT NULL CHECK (periodicity IN ('annual', 'quarterly', 'monthly')),
    source      text NOT NULL CHECK (source <> ''),
    min_value   double precision,
    max_value   double precision CHECK (max_value IS NULL OR min_value IS NULL
                    OR max_value >= min_value),
    decimals    smallint NOT NULL DEFAULT 0 CHECK (decimals BETWEEN 0 AND 6),
    aggregation text NOT NULL CHECK (aggregation IN ('sum', 'mean', 'ratio')),
    access      text NOT NULL DEFAULT 'public' CHECK (access IN ('public', 'internal',
                    'restricted', 'secret')),
    roles       text[] NOT NULL DEFAULT '{}',
    sort_order  integer NOT NULL DEFAULT 0,
    CHECK (access <> 'restricted' OR cardinality(roles) > 0)
);

-- First day of a period written 2023, 2023-Q2 or 2023-06 (NULL when malformed).
CREATE FUNCTION indicator_period_start(p text) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN p ~ '^[0-9]{4}$' THEN make_date(p::int, 1, 1)
        WHEN p ~ '^[0-9]{4}-Q[1-4]$' THEN make_date(left(p, 4)::int, right(p, 1)::int * 3 - 2, 1)
        WHEN p ~ '^[0-9]{4}-(0[1-9]|1[0-2])$' THEN make_date(left(p, 4)::int, right(p, 2)::int, 1)
    END
$$;

-- The day after a period's last day.
CREATE FUNCTION indicator_period_end(p text) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (indicator_period_start(p) + CASE
        WHEN p ~ '^[0-9]{4}$' THEN interval '1 year'
        WHEN p ~ '-Q' THEN interval '3 months'
        ELSE interval '1 month' END)::date
$$;

CREATE TABLE indicator_values (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    indicator_code text NOT NULL REFERENCES indicators (code) ON UPDATE CASCADE,
    unit_id        bigint NOT NULL REFERENCES admin_units (id) ON DELETE CASCADE,
    period         text NOT NULL CHECK (coalesce(indicator_period_start(period)
                       BETWEEN '1900-01-01' AND '2200-12-31', false)),
    period_start   date GENERATED ALWAYS AS (indicator_period_start(period)) STORED,
    period_end     date GENERATED ALWAYS AS (indicator_period_end(period)) STORED,
    value          double precision NOT NULL CHECK (value = value
                       AND value NOT IN ('Infinity', '-Infinity')),
    -- Where the value came from: the file it was imported from, or the sample.
    source_file    text,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (indicator_code, period, unit_id)
);
-- A unit's series (time series, the unit's panel) and a period's units (comparisons, the map).
CREATE INDEX indicator_values_unit_idx ON indicator_values (unit_id, indicator_code, period);

CREATE FUNCTION indicator_values_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE i indicators;
BEGIN
    SELECT * INTO i FROM indicators WHERE code = NEW.indicator_code;
    IF i.periodicity = 'annual' AND NEW.period !~ '^[0-9]{4}$'
       OR i.periodicity = 'quarterly' AND NEW.period !~ '-Q'
       OR i.periodicity = 'monthly' AND NEW.period !~ '^[0-9]{4}-[0-9]{2}$' THEN
        RAISE check_violation USING MESSAGE = format(
            'period %s is not a %s period of indicator %s', NEW.period, i.periodicity, i.code);
    END IF;
    IF NEW.value < i.min_value OR NEW.value > i.max_value THEN
        RAISE check_violation USING MESSAGE = format(
            'value %s of indicator %s is outside [%s, %s]', NEW.value, i.code,
            coalesce(i.min_value::text, '-inf'), coalesce(i.max_value::text, 'inf'));
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER indicator_values_check BEFORE INSERT OR UPDATE ON indicator_values
    FOR EACH ROW EXECUTE FUNCTION indicator_values_check();

CREATE VIEW indicator_features AS
SELECT v.id,
       u.code AS unit_code, u.name AS unit_name, u.level AS unit_level,
       v.indicator_code, i.name_vi AS indicator_name, i.name_en AS indicator_name_en,
       i.unit_vi AS measure_unit, i.domain AS indicator_domain,
       v.period, v.period_start, v.period_end, v.value,
       i.access, i.roles,
       u.geom
  FROM indicator_values AS v
  JOIN indicators AS i ON i.code = v.indicator_code
  JOIN admin_units AS u ON u.id = v.unit_id;
"""

DOWNGRADE = """
DROP VIEW indicator_features;
DROP TABLE indicator_values;
DROP FUNCTION indicator_values_check();
DROP FUNCTION indicator_period_end(text);
DROP FUNCTION indicator_period_start(text);
DROP TABLE indicators;
"""


def upgrade() -> None:
    op.execute(UPGRADE)
    with CSV.open(encoding="utf-8") as f:
        rows = [{**r, "min_value": float(r["min_value"]) if r["min_value"] else None,
                 "max_value": float(r["max_value"]) if r["max_value"] else None,
                 "decimals": int(r["decimals"]), "roles": [x for x in r["roles"].split(";") if x],
                 "sort_order": n} for n, r in enumerate(csv.DictReader(f), start=1)]
    op.get_bind().execute(
        sa.text(
            "INSERT INTO indicators (code, name_vi, name_en, unit_vi, unit_en, domain, periodicity,"
            " source, min_value, max_value, decimals, aggregation, access, roles, sort_order)"
            " VALUES (:code, :name_vi, :name_en, :unit_vi, :unit_en, :domain, :periodicity,"
            " :source, :min_value, :max_value, :decimals, :aggregation, :access, :roles,"
            " :sort_order)"
        ),
        rows,
    )


def downgrade() -> None:
    op.execute(DOWNGRADE)
