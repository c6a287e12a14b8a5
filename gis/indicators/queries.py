"""The SQL of the indicators (gis/indicators): named statements, parameters only. `{access}` is
layers.access.access_condition on the indicator's row (alias i), composed with psycopg.sql."""

from __future__ import annotations

from psycopg import sql

DEFINITIONS = sql.SQL("""
SELECT i.code, i.name_vi, i.name_en, i.unit_vi, i.unit_en, i.domain, i.periodicity, i.source,
       i.min_value, i.max_value, i.decimals, i.aggregation, i.access,
       s.first_period, s.last_period, coalesce(s.n_values, 0) AS n_values,
       coalesce(s.n_units, 0) AS n_units
  FROM indicators AS i
  LEFT JOIN LATERAL (SELECT min(v.period) AS first_period, max(v.period) AS last_period,
                            count(*) AS n_values, count(DISTINCT v.unit_id) AS n_units
                       FROM indicator_values AS v WHERE v.indicator_code = i.code) AS s ON TRUE
 WHERE {access} AND (%(code)s::text IS NULL OR i.code = %(code)s)
   AND (%(domain)s::text IS NULL OR i.domain = %(domain)s)
 ORDER BY i.sort_order, i.code
""")

# Units of the gazetteer (the importer matches codes and names against them in memory).
UNITS = """
SELECT id, code, name, level, parent_code, valid_from, valid_to FROM admin_units
"""

# The unit a code names on a day.
UNIT_ON = """
SELECT id, code, name, level, valid_from, valid_to FROM admin_units
 WHERE code = %(code)s AND valid_from <= %(day)s AND (valid_to IS NULL OR valid_to > %(day)s)
"""

VALUES = """
SELECT u.code AS unit_code, u.name AS unit_name, u.level, v.period, v.value,
       v.period_start, v.period_end
  FROM indicator_values AS v JOIN admin_units AS u ON u.id = v.unit_id
 WHERE v.indicator_code = %(code)s AND v.period = %(period)s
   AND (%(unit)s::text IS NULL OR u.code = %(unit)s)
   AND (%(level)s::text IS NULL OR u.level = %(level)s)
   AND u.valid_from <= %(day)s AND (u.valid_to IS NULL OR u.valid_to > %(day)s)
 ORDER BY u.level, u.code
"""

SERIES = """
SELECT v.period, v.period_start, v.period_end, v.value
  FROM indicator_values AS v
 WHERE v.indicator_code = %(code)s AND v.unit_id = %(unit_id)s
   AND (%(since)s::text IS NULL OR v.period >= %(since)s)
   AND (%(until)s::text IS NULL OR v.period <= %(until)s)
 ORDER BY v.period_start
"""

COMPARE = """
SELECT u.code AS unit_code, u.name AS unit_name, u.parent_code, v.value,
       rank() OVER (ORDER BY v.value DESC) AS rank
  FROM indicator_values AS v JOIN admin_units AS u ON u.id = v.unit_id
 WHERE v.indicator_code = %(code)s AND v.period = %(period)s AND u.level = 'commune'
   AND u.valid_from <= %(day)s AND (u.valid_to IS NULL OR u.valid_to > %(day)s)
   AND (%(parent)s::text IS NULL OR u.parent_code = %(parent)s)
 ORDER BY v.value DESC, u.code
"""

PROVINCE_VALUE = """
SELECT u.code, u.name, v.value FROM indicator_values AS v JOIN admin_units AS u ON u.id = v.unit_id
 WHERE v.indicator_code = %(code)s AND v.period = %(period)s AND u.level = 'province'
   AND u.valid_from <= %(day)s AND (u.valid_to IS NULL OR u.valid_to > %(day)s)
"""

# --- the import's write (one transaction) -----------------------------------------------------

LOCK = "SELECT pg_advisory_xact_lock(hashtext('geoioc.indicator_import'))"

STAGE = """
CREATE TEMP TABLE _indicator_import (indicator_code text, unit_id bigint, period text,
    value double precision, level text, scope_day date) ON COMMIT DROP
"""

COPY_STAGE = ("COPY _indicator_import (indicator_code, unit_id, period, value, level, scope_day)"
              " FROM STDIN")

# What the import replaces: values of the same indicator and period, on the units of the same
# levels valid on the same day (the same boundaries), that the file does not hold.
DELETE_REPLACED = """
WITH scope AS (SELECT DISTINCT indicator_code, period, level, scope_day FROM _indicator_import)
DELETE FROM indicator_values AS v
 USING admin_units AS u, scope AS s
 WHERE u.id = v.unit_id AND v.indicator_code = s.indicator_code AND v.period = s.period
   AND u.level = s.level AND u.valid_from <= s.scope_day
   AND (u.valid_to IS NULL OR u.valid_to > s.scope_day)
   AND NOT EXISTS (SELECT 1 FROM _indicator_import AS n WHERE n.indicator_code = v.indicator_code
                   AND n.period = v.period AND n.unit_id = v.unit_id)
"""

COUNT_CHANGES = """
SELECT count(*) FILTER (WHERE v.id IS NULL),
       count(*) FILTER (WHERE v.id IS NOT NULL AND v.value IS DISTINCT FROM n.value),
       count(*) FILTER (WHERE v.value = n.value)
  FROM _indicator_import AS n
  LEFT JOIN indicator_values AS v ON v.indicator_code = n.indicator_code AND v.period = n.period
   AND v.unit_id = n.unit_id
"""

UPSERT = """
INSERT INTO indicator_values (indicator_code, unit_id, period, value, source_file)
SELECT indicator_code, unit_id, period, value, %(file)s FROM _indicator_import
ON CONFLICT (indicator_code, period, unit_id) DO UPDATE
   SET value = EXCLUDED.value, source_file = EXCLUDED.source_file, updated_at = now()
 WHERE indicator_values.value IS DISTINCT FROM EXCLUDED.value
"""

# --- the briefing's top changes --------------------------------------------------------------

# The indicators of one unit (the province when %(code)s is NULL, else the commune that code
# names on %(day)s) that changed most, relatively, between their two latest periods begun
# before %(until)s: the change is (latest - previous) / |previous|, undefined (and the row left
# out) when the previous value is zero. Computed here rather than in Python so that a unit
# with 31 indicators x N periods sends 31 rows at most. `{access}`: the indicators the caller
# may read (alias i).
TOP_CHANGES = sql.SQL("""
WITH unit AS (
    SELECT id FROM admin_units
     WHERE (CASE WHEN %(code)s::text IS NULL THEN level = 'province' ELSE code = %(code)s END)
       AND valid_from <= %(day)s AND (valid_to IS NULL OR valid_to > %(day)s)
     ORDER BY id LIMIT 1
), ranked AS (
    SELECT v.indicator_code, v.period, v.value,
           row_number() OVER (PARTITION BY v.indicator_code ORDER BY v.period_start DESC) AS k
      FROM indicator_values AS v JOIN unit ON unit.id = v.unit_id
     WHERE v.period_start < %(until)s
)
SELECT i.code, i.name_vi, i.name_en, i.unit_vi, i.unit_en, i.decimals,
       p.period AS previous_period, p.value AS previous,
       c.period AS current_period, c.value AS current,
       (c.value - p.value) / abs(p.value) * 100 AS change_pct
  FROM indicators AS i
  JOIN ranked AS c ON c.indicator_code = i.code AND c.k = 1
  JOIN ranked AS p ON p.indicator_code = i.code AND p.k = 2
 WHERE {access} AND p.value <> 0
 ORDER BY abs(c.value - p.value) / abs(p.value) DESC, i.sort_order, i.code
 LIMIT %(limit)s
""")
