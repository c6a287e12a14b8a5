"""The SQL of citizen reports and the incident workflow, in one place (named statements).

Times are timestamptz (UTC stored); what depends on the Vietnamese calendar (SLA deadlines in
whole days, "overdue by N days") is computed in SQL with Asia/Ho_Chi_Minh, never in Python's
local time. `now` is always a parameter so tests can stand at any instant.
"""

from __future__ import annotations

from psycopg import sql

OPEN_STATUSES = ("received", "verified", "assigned", "in_progress")
CLOSED_STATUSES = ("resolved", "rejected", "closed")
DUPLICATE_METRES = 50.0
DUPLICATE_HOURS = 48

# --- reference data ------------------------------------------------------------------------------

SERVICES = """
SELECT s.code, s.name_vi, s.name_en, s.description_vi, s.description_en, s.group_vi, s.group_en,
       s.keywords, s.incident_category, s.severity, s.agency_code, s.sla_hours, s.sensitive,
       s.attributes, a.name_vi AS agency_name_vi, a.name_en AS agency_name_en
FROM service_categories s LEFT JOIN agencies a ON a.code = s.agency_code
WHERE s.active AND (%(code)s::text IS NULL OR s.code = %(code)s)
ORDER BY s.group_vi, s.code
"""

INSERT_AGENCY = """
INSERT INTO agencies (code, name_vi, name_en, email, phone, categories, communes, webhook_url)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
"""

INSERT_SERVICE = """
INSERT INTO service_categories (code, name_vi, name_en, description_vi, description_en, group_vi,
    group_en, keywords, incident_category, severity, agency_code, sla_hours, sensitive, attributes)
VALUES (%(code)s, %(name_vi)s, %(name_en)s, %(description_vi)s, %(description_en)s, %(group_vi)s,
    %(group_en)s, %(keywords)s, %(incident_category)s, %(severity)s, %(agency_code)s,
    %(sla_hours)s, %(sensitive)s, %(attributes)s)
"""

CURRENT_COMMUNES = """
SELECT code, name FROM admin_units WHERE level = 'commune' AND valid_to IS NULL ORDER BY code
"""

# An Open311 address_id is a code of our gazetteer: a current administrative unit.
ADDRESS_ID = """
SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM admin_units
    WHERE code = %(code)s AND valid_to IS NULL ORDER BY level DESC LIMIT 1) AS u
"""

# --- intake --------------------------------------------------------------------------------------

# The current commune holding the point, and whether the province covers it at all.
LOCATE = """
SELECT c.code AS commune_code, c.name AS commune_name,
       EXISTS (SELECT 1 FROM admin_units WHERE level = 'province' AND valid_to IS NULL
               AND ST_Covers(geom, p.g)) AS inside
FROM (SELECT ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326) AS g) AS p
LEFT JOIN LATERAL (SELECT code, name FROM admin_units WHERE level = 'commune'
                   AND valid_to IS NULL AND ST_Covers(geom, p.g) ORDER BY code LIMIT 1) AS c ON true
"""

# What intake reads before it checks a report given a service code and a point, in one plain
# statement (one round trip, no pipeline): the service's row as SERVICES gives it (its columns
# NULL for an unknown code) and where the point lies, as LOCATE (always one row).
READ_SERVICE_AND_PLACE = (  # two constants of this module, no input: noqa below
    f"SELECT s.*, l.* FROM ({LOCATE}) AS l LEFT JOIN ({SERVICES}) AS s ON true")  # noqa: S608
PLACE_COLUMNS = ("commune_code", "commune_name", "inside")

# A new report's whole write in one statement (one round trip; atomic on its own): the incident,
# its Open311 request row, the reporter's identity when one was given (%(identified)s), the first
# transition (received, by the citizen) and, when the report likely repeats an open one (same
# service, within DUPLICATE_METRES and DUPLICATE_HOURS before it, not itself a duplicate; the
# nearest, then the oldest), the duplicate link and its transition after the first (ORDER BY:
# identity ids follow the rows' order). The statement's
# snapshot does not see the row it inserts, so the duplicate search needs no "not itself".
#
# The duplicate search starts from the reports near the point (`near`: the GiST index on geom,
# a box a little larger than the DUPLICATE_METRES circle: a degree of latitude is at least
# 110,574 m, one of longitude at least 111,319 m x cos(latitude)), materialized so that the
# planner cannot prefer the service index: the statistics of the last 48 hours lag behind a busy
# intake (a prepared plan estimated 1 row where 2,000 reports of the service had come in, and
# each new report read them all: 2-3 ms of database CPU per report, growing with the run).
#
# It also sends the operator consoles' live events (gis/reports/events.py, the same payload as
# queries.NOTIFY_EVENT: report.created, then report.updated for the duplicate link; none for a
# security event), delivered at commit: `told` is read by the last SELECT so that it runs.
# No agency is set here (routing happens at verification), so there is no agency to tell
# (gis/reports/notify.py) at intake.
#
# Returns what the caller answers with: the id, the category (security events are no service
# request), the agency (none until routing), the link, the deadline the citizen is told (a
# duplicate's original's, as REQUEST_COLUMNS shows it) and the number of events sent.
CREATE_REPORT = """
WITH s AS (
    SELECT code, incident_category, severity, sla_hours FROM service_categories
    WHERE code = %(service_code)s
), p AS (
    SELECT ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326) AS g
), near AS MATERIALIZED (
    SELECT i.id, i.expected_at, i.geom, i.service_code, i.status, i.duplicate_of, i.reported_at
    FROM incidents i
    WHERE i.geom && ST_Expand(ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326),
        %(metres)s::float8 / (110000 * greatest(cos(radians(%(lat)s::float8)), 0.01)),
        %(metres)s::float8 / 110000)
), dup AS (
    SELECT i.id, i.expected_at FROM near i, p
    WHERE i.service_code = %(service_code)s
      AND i.status IN ('received', 'verified', 'assigned', 'in_progress')
      AND i.duplicate_of IS NULL
      AND i.reported_at <= %(at)s AND i.reported_at > %(at)s - make_interval(hours => %(hours)s)
      AND ST_DWithin(i.geom::geography, p.g::geography, %(metres)s)
    ORDER BY ST_Distance(i.geom::geography, p.g::geography), i.reported_at, i.id
    LIMIT 1
), report AS (
    INSERT INTO incidents (category, severity, status, source, title, description, commune_code,
        reported_at, geom, service_code, expected_at, updated_at, duplicate_of)
    SELECT s.incident_category, s.severity, 'received', 'citizen_app', %(title)s, %(description)s,
        %(commune_code)s, %(at)s, p.g, s.code, geoioc_sla_deadline(%(at)s, s.sla_hours), %(at)s,
        (SELECT id FROM dup)
    FROM s, p
    RETURNING id, category, status, service_code, agency_code, commune_code, expected_at,
        duplicate_of
), request AS (
    INSERT INTO incident_requests (incident_id, token, address, address_id, media_url, attributes)
    SELECT id, %(token)s, %(address)s, %(address_id)s, %(media_url)s, %(attributes)s FROM report
), reporter AS (
    INSERT INTO incident_reporters (incident_id, first_name, last_name, email, phone, device_id,
        account_id)
    SELECT id, %(first_name)s, %(last_name)s, %(email)s, %(phone)s, %(device_id)s, %(account_id)s
    FROM report WHERE %(identified)s
), moves AS (
    INSERT INTO incident_transitions (incident_id, at, actor, kind, from_status, to_status, note)
    SELECT r.id, %(at)s, m.actor, m.kind, m.from_status, 'received', m.note
    FROM report r CROSS JOIN LATERAL (VALUES
        (1, %(citizen)s::text, 'status', NULL::text, NULL::text),
        (2, %(system)s::text, 'duplicate', 'received', 'likely duplicate of ' || r.duplicate_of))
        AS m(ord, actor, kind, from_status, note)
    WHERE m.ord = 1 OR r.duplicate_of IS NOT NULL
    ORDER BY m.ord
), told AS (
    SELECT count(pg_notify(%(channel)s::text, json_build_object(
        'event', e.event, 'id', r.id, 'status', r.status, 'service_code', r.service_code,
        'agency_code', r.agency_code, 'commune_code', r.commune_code,
        'expected_at', r.expected_at, 'kind', e.kind, 'at', %(at)s::timestamptz)::text)) AS n
    FROM report r CROSS JOIN LATERAL (VALUES
        (1, 'report.created', 'status'), (2, 'report.updated', 'duplicate')) AS e(ord, event, kind)
    WHERE r.category <> 'security_event' AND (e.ord = 1 OR r.duplicate_of IS NOT NULL)
)
SELECT r.id, r.category, r.agency_code, r.duplicate_of,
       COALESCE((SELECT expected_at FROM dup), r.expected_at) AS expected_at,
       (SELECT n FROM told) AS events
FROM report r
"""

# A citizen's photo as gis/reports/photos.py re-encoded it (migration 0017).
INSERT_PHOTO = """
INSERT INTO report_photos (incident_id, position, jpeg, thumbnail, width, height, sha256, created_at)
VALUES (%(id)s, %(position)s, %(jpeg)s, %(thumbnail)s, %(width)s, %(height)s, %(sha256)s, %(at)s)
RETURNING id
"""

INSERT_TRANSITION = """
INSERT INTO incident_transitions (incident_id, at, actor, kind, from_status, to_status,
    agency_code, note)
VALUES (%(incident_id)s, %(at)s, %(actor)s, %(kind)s, %(from_status)s, %(to_status)s,
    %(agency_code)s, %(note)s)
RETURNING id
"""

# --- workflow ------------------------------------------------------------------------------------

# The row to move, locked; ROW_FILTER hides rows the caller may not see (security events).
LOCK = sql.SQL("""
SELECT t.id, t.status, t.service_code, t.commune_code, t.agency_code, t.resolved_at,
       t.duplicate_of, s.sla_hours
FROM incidents t LEFT JOIN service_categories s ON s.code = t.service_code
WHERE t.id = %(id)s AND {row_filter}
FOR UPDATE OF t
""")

SET_STATUS = """
UPDATE incidents SET status = %(to)s, updated_at = %(at)s,
    resolved_at = CASE WHEN %(to)s IN ('resolved', 'rejected') THEN %(at)s
                       WHEN %(to)s = 'closed' THEN resolved_at ELSE NULL END,
    expected_at = CASE WHEN %(restart_sla)s AND %(sla_hours)s::int IS NOT NULL
                       THEN geoioc_sla_deadline(%(at)s, %(sla_hours)s::int) ELSE expected_at END,
    status_note = COALESCE(%(note)s, status_note)
WHERE id = %(id)s
"""

SET_AGENCY = """
UPDATE incidents SET agency_code = %(agency)s, updated_at = %(at)s WHERE id = %(id)s
"""

SET_DUPLICATE = """
UPDATE incidents SET duplicate_of = %(original)s, updated_at = %(at)s WHERE id = %(id)s
"""

AGENCY_EXISTS = "SELECT EXISTS (SELECT 1 FROM agencies WHERE code = %s)"

# Routing: the agencies that handle the service and serve the commune, the most local first
# (a commune's own People's Committee before a provincial department), then by code.
ROUTE = """
SELECT code FROM agencies
WHERE %(service_code)s = ANY (categories)
  AND (communes IS NULL OR %(commune_code)s = ANY (communes))
ORDER BY communes IS NULL, cardinality(communes), code
LIMIT 1
"""

TIMELINE = """
SELECT t.id, t.at, t.actor, t.kind, t.from_status, t.to_status, t.agency_code, t.note,
       a.name_vi AS agency_name_vi, a.name_en AS agency_name_en
FROM incident_transitions t LEFT JOIN agencies a ON a.code = t.agency_code
WHERE t.incident_id = %(id)s
ORDER BY t.at, t.id
"""

REPORTER = """
SELECT first_name, last_name, email, phone, device_id, account_id
FROM incident_reporters WHERE incident_id = %(id)s
"""

# --- SLA -----------------------------------------------------------------------------------------

DEADLINE = "SELECT geoioc_sla_deadline(%(at)s, %(sla_hours)s)"

# Open reports past their deadline at NOW (duplicates ride on their original), with how many
# Vietnamese calendar days late they are (0: due earlier today, local time).
OVERDUE = sql.SQL("""
SELECT t.id, t.service_code, t.agency_code, t.commune_code, t.status, t.reported_at,
       t.expected_at,
       ((%(now)s::timestamptz AT TIME ZONE 'Asia/Ho_Chi_Minh')::date
        - ((t.expected_at - interval '1 microsecond') AT TIME ZONE 'Asia/Ho_Chi_Minh')::date)
           AS days_late
FROM incidents t
WHERE t.status IN ('received', 'verified', 'assigned', 'in_progress')
  AND t.duplicate_of IS NULL
  AND t.expected_at < %(now)s
  AND (%(agency)s::text IS NULL OR t.agency_code = %(agency)s)
  AND {row_filter}
ORDER BY t.expected_at, t.id
LIMIT %(limit)s
""")

OVERDUE_COUNTS = sql.SQL("""
SELECT t.agency_code, count(*) AS overdue
FROM incidents t
WHERE t.status IN ('received', 'verified', 'assigned', 'in_progress')
  AND t.duplicate_of IS NULL
  AND t.expected_at < %(now)s
  AND {row_filter}
GROUP BY t.agency_code
ORDER BY t.agency_code NULLS LAST
""")

# --- Open311 reads -------------------------------------------------------------------------------

# A public service request: only citizen reports (a service code), never security events, never
# the reporter. A duplicate shows its original's status and answer.
REQUEST_COLUMNS = sql.SQL("""
SELECT i.id, r.token, i.service_code, s.name_vi AS service_name_vi, s.name_en AS service_name_en,
       s.sensitive,
       COALESCE(o.status, i.status) AS status, COALESCE(o.status_note, i.status_note) AS status_note,
       i.description, i.agency_code, a.name_vi AS agency_name_vi, a.name_en AS agency_name_en,
       i.reported_at, COALESCE(GREATEST(i.updated_at, o.updated_at), i.updated_at, i.reported_at)
           AS updated_at,
       COALESCE(o.expected_at, i.expected_at) AS expected_at, r.address, r.address_id, r.zipcode,
       r.media_url, r.attributes, i.commune_code,
       ST_X(i.geom) AS lon, ST_Y(i.geom) AS lat, i.duplicate_of,
       o.status AS original_status,
       ARRAY(SELECT p.id FROM report_photos p WHERE p.incident_id = i.id ORDER BY p.position)
           AS photo_ids
FROM incidents i
JOIN service_categories s ON s.code = i.service_code
LEFT JOIN incident_requests r ON r.incident_id = i.id
LEFT JOIN incidents o ON o.id = i.duplicate_of
LEFT JOIN agencies a ON a.code = COALESCE(o.agency_code, i.agency_code)
WHERE i.service_code IS NOT NULL AND i.category <> 'security_event'
""")

# What an agency's webhook is told of a report after a transition (no reporter, no description:
# the agency reads those through the API with its own access).
NOTIFY_TARGET = """
SELECT a.webhook_url, a.code, i.service_code, i.status, i.expected_at, i.commune_code,
       ST_X(i.geom), ST_Y(i.geom)
FROM incidents i JOIN agencies a ON a.code = i.agency_code
WHERE i.id = %s AND a.webhook_url IS NOT NULL
"""

# --- photos --------------------------------------------------------------------------------------

# One stored photo (the JPEG or its thumbnail) with what decides who may see it: its report's
# category (security events: never public) and whether its service is sensitive.
PHOTO = sql.SQL("""
SELECT p.{column}, p.sha256, i.id AS incident_id,
       (i.category = 'security_event' OR s.sensitive IS NOT FALSE) AS restricted
FROM report_photos p JOIN incidents i ON i.id = p.incident_id
LEFT JOIN service_categories s ON s.code = i.service_code
WHERE p.id = %(id)s
""")

# The province's extent (lon/lat): where the report page's map opens and what it may show.
PROVINCE_BBOX = """
SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e)
FROM (SELECT ST_Extent(geom)::geometry AS e FROM admin_units
      WHERE level = 'province' AND valid_to IS NULL) AS x
"""
# --- the operator console ------------------------------------------------------------------------

# Open reports, the nearest deadline first (none last), with the page's total. A duplicate rides
# on its original: it is listed (an operator may unlink it) but never overdue by itself.
# %(text)s is matched as a whole id or as a part of the title or description (LIKE-escaped).
QUEUE = sql.SQL("""
SELECT t.id, t.status, t.service_code, s.name_vi AS service_name_vi,
       s.name_en AS service_name_en, t.agency_code, a.name_vi AS agency_name_vi,
       a.name_en AS agency_name_en, t.commune_code, c.name AS commune_name, t.title,
       t.reported_at, t.expected_at, t.duplicate_of,
       (t.duplicate_of IS NULL AND t.expected_at < %(now)s) AS overdue,
       ST_X(t.geom) AS lon, ST_Y(t.geom) AS lat, count(*) OVER () AS total
FROM incidents t
LEFT JOIN service_categories s ON s.code = t.service_code
LEFT JOIN agencies a ON a.code = t.agency_code
LEFT JOIN admin_units c ON c.code = t.commune_code AND c.level = 'commune' AND c.valid_to IS NULL
WHERE t.status = ANY (%(statuses)s)
  AND (%(service)s::text IS NULL OR t.service_code = %(service)s)
  AND (%(agency)s::text IS NULL OR t.agency_code = %(agency)s)
  AND (%(commune)s::text IS NULL OR t.commune_code = %(commune)s)
  AND (NOT %(overdue_only)s OR (t.duplicate_of IS NULL AND t.expected_at < %(now)s))
  AND (%(text)s::text IS NULL OR t.id::text = %(text)s
       OR t.title ILIKE %(pattern)s ESCAPE '\\' OR t.description ILIKE %(pattern)s ESCAPE '\\')
  AND {row_filter}
ORDER BY t.expected_at NULLS LAST, t.id
LIMIT %(limit)s OFFSET %(offset)s
""")

# The channel every server process LISTENs on for report events (gis/reports/events.py).
EVENTS_CHANNEL = "geoioc_reports"

# A report event, sent with NOTIFY in the transaction that made it (delivered at commit, to
# every listening process, or never). Public facts only; never for a security event.
NOTIFY_EVENT = """
SELECT pg_notify(%(channel)s::text, json_build_object(
    'event', %(event)s::text, 'id', i.id, 'status', i.status, 'service_code', i.service_code,
    'agency_code', i.agency_code, 'commune_code', i.commune_code,
    'expected_at', i.expected_at, 'kind', %(kind)s::text, 'at', %(at)s::timestamptz)::text)
FROM incidents i WHERE i.id = %(id)s AND i.category <> 'security_event'
"""

# What the console's pickers offer: agencies, services, current communes.
CONSOLE_AGENCIES = "SELECT code, name_vi, name_en FROM agencies ORDER BY name_vi, code"
CONSOLE_SERVICES = ("SELECT code, name_vi, name_en FROM service_categories WHERE active"
                    " ORDER BY name_vi, code")

# A report's own status (a duplicate's public status is its original's).
OWN_STATUS = "SELECT status FROM incidents WHERE id = %s"

# A report's own status and when it was resolved (a duplicate's tracking page shows its
# original's status, but only the report's own may be reopened): the citizen's reopen window.
OWN_RESOLUTION = "SELECT status, resolved_at FROM incidents WHERE id = %s"
