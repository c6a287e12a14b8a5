"""The SQL of the public transparency figures (gis/reports/transparency.py says what counts).

Every statement takes `start` and `end` as Vietnamese calendar dates, turned into instants
here (local midnight, Asia/Ho_Chi_Minh), and `now` as a parameter. The public reports are
PUBLIC_REPORTS (the partial index incidents_transparency_idx of migration 0018 has the same
predicate, so a period is one index-only range scan). JSON is built by PostgreSQL.
"""

from __future__ import annotations

from psycopg import sql

# The reports the public figures count: citizen reports (a service code), not a likely
# duplicate (it rides on its original), never a security event. Keep in step with
# incidents_transparency_idx.
PUBLIC_REPORTS = sql.SQL("""
    i.service_code IS NOT NULL AND i.duplicate_of IS NULL AND i.category <> 'security_event'
""")

_PERIOD = sql.SQL("""
    i.reported_at >= (%(start)s::date)::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh'
    AND i.reported_at < (%(end)s::date)::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh'
""")

# The figures of one group of rows of `r` (the period's public reports).
_FIGURES = sql.SQL("""
    count(*) AS received,
    count(*) FILTER (WHERE r.answer = 'resolved') AS resolved,
    count(*) FILTER (WHERE r.answer = 'rejected') AS rejected,
    count(*) FILTER (WHERE r.answer IS NULL) AS open,
    round((percentile_cont(0.5) WITHIN GROUP (ORDER BY r.hours))::numeric, 2)::float8
        AS median_hours,
    round((percentile_cont(0.9) WITHIN GROUP (ORDER BY r.hours))::numeric, 2)::float8
        AS p90_hours,
    count(*) FILTER (WHERE r.on_time) AS within_sla,
    count(*) FILTER (WHERE r.due) AS due,
    round(count(*) FILTER (WHERE r.on_time)::numeric
          / NULLIF(count(*) FILTER (WHERE r.due), 0), 4)::float8 AS within_sla_share
""")

# One row per report of the period: its processing time in hours (NULL while unanswered;
# date_part is float8, extract() numeric: sorting a million numerics for the percentiles took
# twice as long),
# whether it was answered within its SLA, whether it is "due" (answered, or its deadline passed
# unanswered at NOW): the denominator of the share within the SLA.
_ROWS = sql.SQL("""
    SELECT i.agency_code, i.commune_code, i.answer,
           date_part('epoch', i.answered_at - i.reported_at) / 3600.0 AS hours,
           i.answered_at IS NOT NULL AND i.answered_at <= i.expected_at AS on_time,
           i.answered_at IS NOT NULL OR i.expected_at < %(now)s AS due
    FROM incidents i
    WHERE {public} AND {period}
""").format(public=PUBLIC_REPORTS, period=_PERIOD)

# Per agency, per commune and for the province, in one pass (GROUPING SETS), as one JSON
# document. Agencies and communes with no report in the period are listed with zeros (a
# commune where nothing was reported is a fact too); names come from the reference tables.
FIGURES = sql.SQL("""
WITH r AS ({rows}),
g AS (
    SELECT grouping(r.agency_code, r.commune_code) AS level, r.agency_code, r.commune_code,
    {figures}
    FROM r GROUP BY GROUPING SETS ((r.agency_code), (r.commune_code), ())
),
agencies AS (
    SELECT coalesce(json_agg(json_build_object(
        'code', a.code, 'name_vi', a.name_vi, 'name_en', a.name_en,
        'received', coalesce(g.received, 0), 'resolved', coalesce(g.resolved, 0),
        'rejected', coalesce(g.rejected, 0), 'open', coalesce(g.open, 0),
        'median_hours', g.median_hours, 'p90_hours', g.p90_hours,
        'within_sla', coalesce(g.within_sla, 0), 'due', coalesce(g.due, 0),
        'within_sla_share', g.within_sla_share) ORDER BY a.code), '[]') AS j
    FROM agencies a LEFT JOIN g ON g.level = 1 AND g.agency_code = a.code
),
communes AS (
    SELECT coalesce(json_agg(json_build_object(
        'code', c.code, 'name', c.name,
        'received', coalesce(g.received, 0), 'resolved', coalesce(g.resolved, 0),
        'rejected', coalesce(g.rejected, 0), 'open', coalesce(g.open, 0),
        'median_hours', g.median_hours, 'p90_hours', g.p90_hours,
        'within_sla', coalesce(g.within_sla, 0), 'due', coalesce(g.due, 0),
        'within_sla_share', g.within_sla_share) ORDER BY c.code), '[]') AS j
    FROM admin_units c LEFT JOIN g ON g.level = 2 AND g.commune_code = c.code
    WHERE c.level = 'commune' AND c.valid_to IS NULL
)
SELECT json_build_object(
    'province', (SELECT row_to_json(p) FROM (SELECT received, resolved, rejected, open,
                 median_hours, p90_hours, within_sla, due, within_sla_share
                 FROM g WHERE level = 3) AS p),
    'unassigned', (SELECT row_to_json(u) FROM (SELECT received, resolved, rejected, open,
                   median_hours, p90_hours, within_sla, due, within_sla_share
                   FROM g WHERE level = 1 AND agency_code IS NULL) AS u),
    'agencies', (SELECT j FROM agencies),
    'communes', (SELECT j FROM communes))::text
""").format(rows=_ROWS, figures=_FIGURES)

# The choropleth: current communes (simplified by ~50 m, 6 decimals) with their figures, as
# a GeoJSON FeatureCollection. Figures come from FIGURES' per-commune rows, passed in as JSON
# so one period is computed once.
COMMUNES_GEOJSON = """
SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(
    json_build_object('type', 'Feature', 'id', c.code,
        'geometry', ST_AsGeoJSON(ST_SimplifyPreserveTopology(c.geom, 0.0005), 6)::json,
        'properties', f.value) ORDER BY c.code), '[]'))::text
FROM admin_units c
JOIN json_array_elements(%(figures)s::json) AS f(value) ON f.value ->> 'code' = c.code
WHERE c.level = 'commune' AND c.valid_to IS NULL
"""

# Open public reports past their deadline at NOW, located to ~100 m (0.001 degree: 111 m of
# latitude, 104 m of longitude here), with no description for a sensitive category and
# nothing that names the reporter or the report (no id, no token, no title).
OVERDUE = sql.SQL("""
SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(
    json_build_object('type', 'Feature',
        'geometry', json_build_object('type', 'Point', 'coordinates', json_build_array(
            round(ST_X(i.geom)::numeric, 3), round(ST_Y(i.geom)::numeric, 3))),
        'properties', json_build_object(
            'service_code', i.service_code, 'service_name_vi', s.name_vi,
            'service_name_en', s.name_en, 'sensitive', s.sensitive,
            'agency_code', i.agency_code, 'agency_name_vi', a.name_vi,
            'agency_name_en', a.name_en, 'commune_code', i.commune_code,
            'status', i.status, 'reported_at', i.reported_at, 'expected_at', i.expected_at,
            'days_late', (%(now)s::timestamptz AT TIME ZONE 'Asia/Ho_Chi_Minh')::date
                - ((i.expected_at - interval '1 microsecond')
                   AT TIME ZONE 'Asia/Ho_Chi_Minh')::date,
            'description', CASE WHEN s.sensitive THEN NULL ELSE i.description END))
    ORDER BY i.expected_at, i.id), '[]'))::text
FROM (SELECT * FROM incidents i
      WHERE {public}
        AND i.status IN ('received', 'verified', 'assigned', 'in_progress')
        AND i.expected_at < %(now)s
        AND (%(agency)s::text IS NULL OR i.agency_code = %(agency)s)
        AND (%(commune)s::text IS NULL OR i.commune_code = %(commune)s)
      ORDER BY i.expected_at, i.id LIMIT %(limit)s) AS i
JOIN service_categories s ON s.code = i.service_code
LEFT JOIN agencies a ON a.code = i.agency_code
""").format(public=PUBLIC_REPORTS)

# --- kept figures (transparency_figures, migration 0019) -----------------------------------------

# A period's kept figures computed since SINCE; a read marks the period as asked for (at most
# once an hour, so reading is not a write each time): the refresh keeps watched periods fresh.
KEPT = """
WITH hit AS (
    SELECT figures, communes, computed_at FROM transparency_figures
    WHERE start_day = %(start)s AND end_day = %(end)s AND computed_at > %(since)s
), touched AS (
    UPDATE transparency_figures SET requested_at = now()
    WHERE start_day = %(start)s AND end_day = %(end)s AND requested_at < now() - interval '1 hour'
      AND EXISTS (SELECT FROM hit)
)
SELECT figures, communes, computed_at FROM hit
"""

KEEP = """
INSERT INTO transparency_figures AS t (start_day, end_day, computed_at, figures, communes)
VALUES (%(start)s, %(end)s, %(now)s, %(figures)s, %(communes)s)
ON CONFLICT (start_day, end_day) DO UPDATE
    SET computed_at = EXCLUDED.computed_at, figures = EXCLUDED.figures,
        communes = EXCLUDED.communes
"""

# One computation of a period at a time, across processes: the others wait, then read it.
LOCK_PERIOD = "SELECT pg_advisory_xact_lock(%(class)s, hashtext(%(period)s))"

WATCHED_PERIODS = """
SELECT start_day, end_day FROM transparency_figures WHERE requested_at >= %(since)s
"""

DROP_UNASKED = "DELETE FROM transparency_figures WHERE requested_at < %(before)s"

FORGET = "DELETE FROM transparency_figures"
