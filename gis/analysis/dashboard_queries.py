"""The SQL of the leaders' dashboard (gis/analysis/dashboard.py says what each figure means).

Each statement takes the incident conditions as a composed `{cond}` on the incidents table
aliased `t` (gis.analysis.incidents.where plus the dashboard's own source and commune
conditions) with their parameters first, then its own named parameters after them (positional
`%s` only: the conditions are positional). Days, weeks and hours are Vietnam's
(Asia/Ho_Chi_Minh, UTC+7 all year).
"""

from __future__ import annotations

from psycopg import sql

from gis.fmt import VN_TZ_NAME

VN = sql.Literal(VN_TZ_NAME)
VN_OFFSET_SECONDS = sql.Literal(7 * 3600)  # UTC+7 (HOUR_WEEKDAY)

# Statuses of a report still being handled (gis/reports/workflow.py: before resolved/rejected).
OPEN_STATUSES = ("received", "verified", "assigned", "in_progress")

# Incidents matching {cond}: one count per window (the caller composes three conditions).
COUNT = sql.SQL("SELECT count(*)::int FROM incidents t WHERE {cond}")

# Open reports now and those past their deadline (gis/reports/deadlines.py's definition: an
# open status, not a duplicate, expected_at before NOW), among the incidents matching {cond}.
OPEN_OVERDUE = sql.SQL("""
SELECT count(*)::int,
       count(*) FILTER (WHERE t.expected_at < %s)::int
FROM incidents t
WHERE t.status = ANY(%s) AND t.duplicate_of IS NULL AND {cond}
""")

# Processing time of the reports received in the window (gis/reports/transparency.py: citizen
# reports, not a duplicate; first answer minus reception, in hours; percentile_cont's median
# rounded to 0.01 h): received, answered, median hours.
PROCESSING = sql.SQL("""
SELECT count(*)::int,
       count(t.answered_at)::int,
       round((percentile_cont(0.5) WITHIN GROUP (
           ORDER BY date_part('epoch', t.answered_at - t.reported_at) / 3600.0))::numeric,
             2)::float8
FROM incidents t
WHERE t.service_code IS NOT NULL AND t.duplicate_of IS NULL AND {cond}
""")

# Incidents per bucket (a Vietnamese day or a Monday-start week) and category.
BY_CATEGORY = sql.SQL("""
SELECT (date_trunc({unit}, t.reported_at AT TIME ZONE {vn}))::date AS bucket, t.category,
       count(*)::int
FROM incidents t WHERE {cond}
GROUP BY 1, 2 ORDER BY 1, 2
""")

# The same from the per-day pre-aggregate (migration 0035) for the whole days of the window
# ({cond}: gis.analysis.aggregates.agg_where on `incident_days t`): a day lies wholly in one
# bucket, so it is exact; the ragged ends of the window go through BY_CATEGORY.
BY_CATEGORY_DAYS = sql.SQL("""
SELECT date_trunc({unit}, t.day)::date AS bucket, t.category, sum(t.n)::int
FROM incident_days t WHERE {cond}
GROUP BY 1, 2 ORDER BY 1, 2
""")

# Incidents per ISO day of week (1 = Monday) and hour, Vietnam time, by arithmetic on the
# seconds since 1970 (a Thursday): exact because Vietnam has kept UTC+7 without daylight saving
# since 1975, as incident_stats' day arithmetic. Converting each row with AT TIME ZONE and
# extract instead took twice as long (30 days at 10,000,000 incidents, 220,000 rows: 340-460 ms
# against 190-210 ms), in the dashboard's first render beside its other panels.
HOUR_WEEKDAY = sql.SQL("""
SELECT (mod(mod(floor(s / 86400)::int8 + 3, 7) + 7, 7) + 1)::int,
       mod(mod(floor(s / 3600)::int8, 24) + 24, 24)::int, count(*)::int
FROM (SELECT date_part('epoch', t.reported_at) + {offset} AS s FROM incidents t WHERE {cond}) x
GROUP BY 1, 2
""")

# Incidents per current commune in the window ({cond}) and in the previous one ({prev}),
# every current commune listed (zero where nothing happened: that is a fact too).
COMMUNES = sql.SQL("""
WITH cur AS (SELECT t.commune_code AS code, count(*)::int AS n FROM incidents t
             WHERE {cond} GROUP BY 1),
prev AS (SELECT t.commune_code AS code, count(*)::int AS n FROM incidents t
         WHERE {prev} GROUP BY 1)
SELECT u.code, u.name, coalesce(cur.n, 0), coalesce(prev.n, 0)
FROM admin_units u
LEFT JOIN cur ON cur.code = u.code
LEFT JOIN prev ON prev.code = u.code
WHERE u.level = 'commune' AND u.valid_to IS NULL
ORDER BY u.code
""")

# One current commune, by code.
COMMUNE = """
SELECT code, name FROM admin_units
WHERE code = %s AND level = 'commune' AND valid_to IS NULL
"""

PROVINCE = """
SELECT code, name FROM admin_units WHERE level = 'province' AND valid_to IS NULL
ORDER BY code LIMIT 1
"""

# Open reports past their deadline (no reporter, no title, no description: the briefing is
# printed and passed around), longest overdue first.
OVERDUE = sql.SQL("""
SELECT t.id, t.category, t.service_code, t.agency_code, a.name_vi, t.commune_code, u.name,
       t.status, t.reported_at, t.expected_at,
       ((%s::timestamptz AT TIME ZONE {vn})::date
        - ((t.expected_at - interval '1 microsecond') AT TIME ZONE {vn})::date) AS days_late
FROM incidents t
LEFT JOIN agencies a ON a.code = t.agency_code
LEFT JOIN admin_units u ON u.code = t.commune_code AND u.level = 'commune' AND u.valid_to IS NULL
WHERE t.status = ANY(%s) AND t.duplicate_of IS NULL AND t.expected_at < %s AND {cond}
ORDER BY t.expected_at, t.id
LIMIT %s
""")

# The week's incidents as points (the briefing's small map), at most %s.
POINTS = sql.SQL("""
SELECT ST_X(t.geom), ST_Y(t.geom), t.category FROM incidents t WHERE {cond}
ORDER BY t.reported_at, t.id LIMIT %s
""")

# Outlines of the unit (a commune) or of every current commune (the province), simplified to
# ~50 m, as GeoJSON geometries.
OUTLINES = """
SELECT ST_AsGeoJSON(ST_SimplifyPreserveTopology(geom, 0.0005), 5)
FROM admin_units
WHERE level = 'commune' AND valid_to IS NULL AND (%(code)s::text IS NULL OR code = %(code)s)
ORDER BY code
"""
