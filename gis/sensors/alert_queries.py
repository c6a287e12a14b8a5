"""The SQL of sensor alerts (gis/sensors/alerts.py), in one place.

Evaluation is set-based: one statement evaluates every (datastream, rule) pair in scope and
applies the result to `sensor_alerts` (open, breach again, normal, close) with its events; it
reads only `datastream_latest`, the rollups and, for a rate rule, one observation found by the
key. Python then handles the few alerts that opened or closed (their incidents). `now` is always
a parameter, so tests stand at any instant and the ingest passes the batch's time.

Statements that take part in the same transaction lock open alerts in id order first
(LOCK_OPEN_*), so that two evaluations (two ingest workers, a worker and the periodic sweep) that
touch the same alerts never wait for each other in a cycle.
"""

from __future__ import annotations

from psycopg import sql

# --- evaluation -----------------------------------------------------------------------------

# Rules that apply to a datastream D at %(now)s (enabled, valid that Vietnamese day): its
# property's, and the ones for every datastream (silence).
_APPLIES = sql.SQL("""
    r.enabled
    AND (r.valid_from IS NULL OR r.valid_from <= (%(now)s::timestamptz AT TIME ZONE 'Asia/Ho_Chi_Minh')::date)
    AND (r.valid_to IS NULL OR (%(now)s::timestamptz AT TIME ZONE 'Asia/Ho_Chi_Minh')::date < r.valid_to)
    AND (r.observed_property_id IS NULL OR r.observed_property_id = d.observed_property_id)
""")

# A mean over more than a day is read from the daily rollups: such rules (annual means) are
# evaluated by the hourly sweep, not after every ingest batch (a year is 365 rows a datastream).
LONG = sql.SQL("(r.statistic = 'mean' AND r.window_minutes > 1440)")

# Which pairs an evaluation covers (evaluate()'s scope).
SCOPE_BATCH = sql.SQL("d.id = ANY(%(ids)s::bigint[]) AND NOT {long}").format(long=LONG)
# The minute's sweep: silence everywhere, and every pair with an open alert (so that an alert
# closes on time even when no data arrive).
SCOPE_SWEEP = sql.SQL(
    "(r.kind = 'silence' OR EXISTS (SELECT 1 FROM sensor_alerts x WHERE x.datastream_id = d.id"
    " AND x.rule_id = r.id AND x.closed_at IS NULL))")
# The hour's sweep: the long means of every datastream.
SCOPE_LONG = LONG

LOCK_OPEN_IDS = """
SELECT id FROM sensor_alerts WHERE datastream_id = ANY(%(ids)s::bigint[]) AND closed_at IS NULL
ORDER BY id FOR UPDATE
"""
LOCK_OPEN_ALL = "SELECT id FROM sensor_alerts WHERE closed_at IS NULL ORDER BY id FOR UPDATE"

# Evaluate the pairs in {scope} at %(now)s and apply the outcome. Per pair (ev):
#   value: threshold: the latest reading (fresh enough) or the mean over the period that ends
#          with the latest reading's hour or day (enough hours or days with data: the hour that
#          has just begun, still empty, does not make a 1-hour mean unknown); rate: latest
#          minus the reading a window before; silence: minutes since data last arrived.
#          NULL: nothing to judge (no decision, nothing changes).
#   breach: true / false / NULL (unknown); limit: the limit it is judged against.
# Then: a breach without an open alert opens one (the partial unique index makes a concurrent
# second opening do nothing); an open alert that breaches after having read normal restarts
# (normal_since NULL, event 'breach'); one that reads normal starts its count (event 'normal')
# and closes once normal for the rule's clear_minutes (event 'closed'). Returns the alerts that
# opened or closed, for their incidents.
_EVALUATE = sql.SQL("""
WITH pairs AS MATERIALIZED (
    SELECT d.id AS datastream_id, r.id AS rule_id, r.kind, r.statistic, r.window_minutes,
           r.min_coverage, r.lower_limit, r.upper_limit, r.max_rise, r.max_fall,
           r.clear_minutes, s.status AS station_status
      FROM datastreams d
      JOIN sensors s ON s.id = d.thing_id
      JOIN alert_rules r ON {applies}
     WHERE {scope}
), latest AS MATERIALIZED (
    SELECT p.*, l.datastream_id IS NOT NULL AS reported, l.phenomenon_time AS latest_time,
           l.result AS latest, l.updated_at AS arrived_at
      FROM pairs p
      LEFT JOIN datastream_latest l ON l.datastream_id = p.datastream_id
), hourly AS (
    -- Means over whole hours: the period that ends with the hour of the latest reading, when
    -- that reading lies within the period (else nothing: too old to judge the present). Each
    -- lookup below runs only for the pairs of its kind.
    SELECT m.datastream_id, m.rule_id, h.mean, h.periods, h.last_time
      FROM latest m
     CROSS JOIN LATERAL (
          SELECT sum(x.sum) / sum(x.n) AS mean, count(*) AS periods, max(x.last_time) AS last_time
            FROM observation_hourly x
           WHERE x.datastream_id = m.datastream_id
             AND x.bucket > date_trunc('hour', least(m.latest_time, %(now)s::timestamptz), 'UTC')
                            - make_interval(mins => m.window_minutes)
             AND x.bucket <= least(m.latest_time, %(now)s::timestamptz)) h
     WHERE m.statistic = 'mean' AND m.window_minutes <= 1440
       AND m.latest_time > %(now)s::timestamptz - make_interval(mins => m.window_minutes)
), daily AS (
    -- Means over whole days (Vietnam time), the same way.
    SELECT m.datastream_id, m.rule_id, h.mean, h.periods, h.last_time
      FROM latest m
     CROSS JOIN LATERAL (
          SELECT sum(x.sum) / sum(x.n) AS mean, count(*) AS periods, max(x.last_time) AS last_time
            FROM observation_daily x
           WHERE x.datastream_id = m.datastream_id
             AND x.bucket > geoioc_vn_day(least(m.latest_time, %(now)s::timestamptz))
                            - make_interval(days => m.window_minutes / 1440)
             AND x.bucket <= least(m.latest_time, %(now)s::timestamptz)) h
     WHERE m.statistic = 'mean' AND m.window_minutes > 1440
       AND m.latest_time > %(now)s::timestamptz - make_interval(mins => m.window_minutes)
), earlier AS (
    -- Rate: the reading a window before the latest (at or just before; not twice as old).
    SELECT m.datastream_id, m.rule_id, b.result AS before_value
      FROM latest m
     CROSS JOIN LATERAL (
          SELECT o.result FROM observations o
           WHERE o.datastream_id = m.datastream_id
             AND o.phenomenon_time <= m.latest_time - make_interval(mins => m.window_minutes)
             AND o.phenomenon_time > m.latest_time - 2 * make_interval(mins => m.window_minutes)
             AND o.result IS NOT NULL
           ORDER BY o.phenomenon_time DESC LIMIT 1) b
     WHERE m.kind = 'rate'
       AND m.latest_time > %(now)s::timestamptz - make_interval(mins => m.window_minutes)
), measured AS (
    SELECT m.*, coalesce(h.mean, d.mean) AS mean, coalesce(h.periods, d.periods, 0) AS periods,
           coalesce(h.last_time, d.last_time) AS last_time, e.before_value
      FROM latest m
      LEFT JOIN hourly h ON h.datastream_id = m.datastream_id AND h.rule_id = m.rule_id
      LEFT JOIN daily d ON d.datastream_id = m.datastream_id AND d.rule_id = m.rule_id
      LEFT JOIN earlier e ON e.datastream_id = m.datastream_id AND e.rule_id = m.rule_id
), valued AS (
    SELECT m.datastream_id, m.rule_id, m.kind, m.lower_limit, m.upper_limit, m.max_rise,
           m.max_fall, m.window_minutes, m.clear_minutes, m.station_status,
           CASE m.kind
               WHEN 'threshold' THEN CASE
                   WHEN m.statistic = 'latest' THEN CASE WHEN m.latest_time > %(now)s::timestamptz
                       - make_interval(mins => m.window_minutes) THEN m.latest END
                   WHEN m.periods >= ceil(m.min_coverage * CASE WHEN m.window_minutes <= 1440
                       THEN m.window_minutes / 60 ELSE m.window_minutes / 1440 END) THEN m.mean END
               WHEN 'rate' THEN CASE WHEN m.latest_time > %(now)s::timestamptz
                   - make_interval(mins => m.window_minutes) THEN m.latest - m.before_value END
               WHEN 'silence' THEN CASE WHEN m.reported
                   THEN extract(epoch FROM %(now)s::timestamptz - m.arrived_at) / 60 END
           END AS value,
           CASE WHEN m.kind = 'threshold' AND m.statistic = 'mean' THEN m.last_time
                ELSE m.latest_time END AS observed_at
      FROM measured m
), ev AS MATERIALIZED (
    SELECT v.*,
           CASE WHEN v.value IS NULL THEN NULL
                WHEN v.kind = 'threshold' THEN coalesce(v.value > v.upper_limit, false)
                                               OR coalesce(v.value < v.lower_limit, false)
                WHEN v.kind = 'rate' THEN coalesce(v.value > v.max_rise, false)
                                          OR coalesce(-v.value > v.max_fall, false)
                ELSE v.station_status = 'online' AND v.value > v.window_minutes
           END AS breach,
           CASE WHEN v.kind = 'threshold' THEN CASE WHEN v.value < v.lower_limit
                    OR v.upper_limit IS NULL THEN v.lower_limit ELSE v.upper_limit END
                WHEN v.kind = 'rate' THEN CASE WHEN v.value < 0 AND v.max_fall IS NOT NULL
                    OR v.max_rise IS NULL THEN -v.max_fall ELSE v.max_rise END
                ELSE v.window_minutes
           END AS limit_value
      FROM valued v
), cur AS MATERIALIZED (
    SELECT a.id, a.normal_since, a.peak, a.limit_value AS alert_limit, e.breach, e.value,
           e.observed_at, e.clear_minutes
      FROM sensor_alerts a
      JOIN ev e ON e.datastream_id = a.datastream_id AND e.rule_id = a.rule_id
     WHERE a.closed_at IS NULL AND e.breach IS NOT NULL
), opened AS (
    INSERT INTO sensor_alerts (rule_id, datastream_id, opened_at, value, limit_value, observed_at,
                               peak, peak_at)
    SELECT e.rule_id, e.datastream_id, %(now)s, e.value, e.limit_value, e.observed_at, e.value,
           e.observed_at
      FROM ev e
     WHERE e.breach AND NOT EXISTS (
           SELECT 1 FROM sensor_alerts a WHERE a.datastream_id = e.datastream_id
              AND a.rule_id = e.rule_id AND a.closed_at IS NULL)
     ORDER BY e.datastream_id, e.rule_id
    ON CONFLICT (datastream_id, rule_id) WHERE closed_at IS NULL DO NOTHING
    RETURNING id, value
), changed AS (
    UPDATE sensor_alerts a SET
        normal_since = CASE WHEN c.breach THEN NULL ELSE coalesce(c.normal_since, %(now)s) END,
        closed_at = CASE WHEN NOT c.breach AND %(now)s::timestamptz
                              >= coalesce(c.normal_since, %(now)s) + make_interval(mins => c.clear_minutes)
                         THEN %(now)s::timestamptz END,
        peak = CASE WHEN c.breach AND abs(c.value - c.alert_limit) > abs(c.peak - c.alert_limit)
                    THEN c.value ELSE a.peak END,
        peak_at = CASE WHEN c.breach AND abs(c.value - c.alert_limit) > abs(c.peak - c.alert_limit)
                       THEN c.observed_at ELSE a.peak_at END
      FROM cur c
     WHERE a.id = c.id
       AND ((c.breach AND (c.normal_since IS NOT NULL
                           OR abs(c.value - c.alert_limit) > abs(c.peak - c.alert_limit)))
            OR (NOT c.breach AND (c.normal_since IS NULL OR %(now)s::timestamptz
                >= c.normal_since + make_interval(mins => c.clear_minutes))))
    RETURNING a.id, c.value,
        CASE WHEN a.closed_at IS NOT NULL THEN 'closed'
             WHEN c.breach AND c.normal_since IS NOT NULL THEN 'breach'
             WHEN NOT c.breach AND c.normal_since IS NULL THEN 'normal' END AS event
), events AS (
    INSERT INTO sensor_alert_events (alert_id, at, kind, value)
    SELECT id, %(now)s, 'opened', value FROM opened
    UNION ALL
    SELECT id, %(now)s, event, value FROM changed WHERE event IS NOT NULL
)
SELECT 'opened' AS event, id FROM opened
UNION ALL
SELECT event, id FROM changed WHERE event = 'closed'
ORDER BY 2
""")


def evaluate(scope: sql.Composable) -> sql.Composed:
    """EVALUATE over the pairs of SCOPE (SCOPE_BATCH, SCOPE_SWEEP or SCOPE_LONG)."""
    return _EVALUATE.format(applies=_APPLIES, scope=scope)


# --- escalation -----------------------------------------------------------------------------

# What an incident of the alerts %(ids)s says and where it is: the rule, the property and unit,
# the station and its current commune.
ALERT_FACTS = """
SELECT a.id, a.opened_at, a.value, a.limit_value, a.observed_at, a.normal_since, a.closed_at,
       a.incident_id, a.peak,
       r.code AS rule_code, r.kind, r.statistic, r.window_minutes, r.clear_minutes, r.severity,
       r.name_vi AS rule_vi, r.source, r.escalate, r.agency_code, r.lower_limit, r.upper_limit,
       p.code AS property, p.name_vi AS property_vi,
       coalesce(d.unit_of_measurement ->> 'symbol', '') AS unit,
       s.id AS station_id, s.code AS station_code, s.name AS station_name, s.geom,
       c.code AS commune_code, c.name AS commune_name,
       i.status AS incident_status,
       CASE WHEN p.code = 'aqi' THEN (SELECT b.name_vi FROM aqi_bands b
                                      WHERE b.code = geoioc_aqi_band(a.value)) END AS aqi_band_vi
  FROM sensor_alerts a
  JOIN alert_rules r ON r.id = a.rule_id
  JOIN datastreams d ON d.id = a.datastream_id
  JOIN observed_properties p ON p.id = d.observed_property_id
  JOIN sensors s ON s.id = d.thing_id
  LEFT JOIN incidents i ON i.id = a.incident_id
  LEFT JOIN LATERAL (
      SELECT u.code, u.name FROM admin_units u
       WHERE u.level = 'commune' AND u.valid_to IS NULL AND ST_Covers(u.geom, s.geom)
       ORDER BY u.code LIMIT 1) c ON true
 WHERE a.id = ANY(%(ids)s)
 ORDER BY a.id
"""

INSERT_INCIDENT = """
INSERT INTO incidents (category, severity, status, source, title, description, commune_code,
                       reported_at, geom, updated_at)
SELECT 'environment', %(severity)s, 'received', 'sensor', %(title)s, %(description)s,
       %(commune_code)s, %(at)s, s.geom, %(at)s
  FROM sensors s WHERE s.id = %(station_id)s
RETURNING id
"""

LINK_INCIDENT = """
UPDATE sensor_alerts SET incident_id = %(incident)s WHERE id = %(id)s
"""

INSERT_EVENT = """
INSERT INTO sensor_alert_events (alert_id, at, kind, actor, value, note)
VALUES (%(id)s, %(at)s, %(kind)s, %(actor)s, %(value)s, %(note)s)
"""

AGENCY_EXISTS = "SELECT EXISTS (SELECT 1 FROM agencies WHERE code = %s)"

# --- operators ------------------------------------------------------------------------------

# One alert for an operator's action, locked; {visible}: what the caller may read.
LOCK_ALERT = sql.SQL("""
SELECT a.id, a.status, a.acknowledged_at, a.acknowledged_by, a.closed_at, a.incident_id,
       a.datastream_id
  FROM sensor_alerts a
  JOIN datastreams d ON d.id = a.datastream_id
  JOIN sensors s ON s.id = d.thing_id
 WHERE a.id = %(id)s AND {visible}
   FOR UPDATE OF a
""")

ACKNOWLEDGE = """
UPDATE sensor_alerts SET acknowledged_at = %(at)s, acknowledged_by = %(actor)s,
       acknowledge_note = %(note)s
 WHERE id = %(id)s
"""

INCIDENT_STATUS = sql.SQL("SELECT t.status FROM incidents t WHERE t.id = %(id)s AND {visible}")

# --- reads ----------------------------------------------------------------------------------

# The alerts a caller may see ({visible}: the sensors layer's row filter and the datastream's
# own access), newest first, with the page's total. {incident_visible}: whether the caller may
# read the incident (else its id and status are not given).
LIST = sql.SQL("""
SELECT a.id, a.status, a.opened_at, a.value, a.limit_value, a.observed_at, a.peak, a.peak_at,
       a.normal_since, a.acknowledged_at, a.acknowledged_by, a.acknowledge_note, a.closed_at,
       CASE WHEN i.id IS NOT NULL THEN a.incident_id END AS incident_id,
       i.status AS incident_status,
       r.code AS rule, r.kind, r.statistic, r.window_minutes, r.severity,
       r.name_vi AS rule_vi, r.name_en AS rule_en,
       d.id AS datastream_id, d.access AS datastream_access, p.code AS property,
       p.name_vi AS property_vi, p.name_en AS property_en,
       coalesce(d.unit_of_measurement ->> 'symbol', '') AS unit,
       s.code AS station, s.name AS station_name, ST_X(s.geom) AS lon, ST_Y(s.geom) AS lat,
       count(*) OVER () AS total
  FROM sensor_alerts a
  JOIN alert_rules r ON r.id = a.rule_id
  JOIN datastreams d ON d.id = a.datastream_id
  JOIN observed_properties p ON p.id = d.observed_property_id
  JOIN sensors s ON s.id = d.thing_id
  LEFT JOIN incidents i ON i.id = a.incident_id AND {incident_visible}
 WHERE (%(statuses)s::text[] IS NULL OR a.status = ANY(%(statuses)s))
   AND (%(station)s::text IS NULL OR s.code = %(station)s)
   AND (%(property)s::text IS NULL OR p.code = %(property)s)
   AND (%(rule)s::text IS NULL OR r.code = %(rule)s)
   AND (%(since)s::timestamptz IS NULL OR coalesce(a.closed_at, 'infinity') >= %(since)s)
   AND (%(until)s::timestamptz IS NULL OR a.opened_at < %(until)s)
   AND {visible}
 ORDER BY a.opened_at DESC, a.id DESC
 LIMIT %(limit)s OFFSET %(offset)s
""")

# How many alerts WHO may see are open and unacknowledged (the dashboard's KPI card): LIST's
# visibility without LIST's columns, and without its join to the incidents, which are
# partitioned by month: an alert's incident by id alone probes every partition's index
# (529 alerts at full scale: 110-130 ms a LIST, twice a card, for two numbers).
COUNT_OPEN = sql.SQL("""
SELECT count(*) FILTER (WHERE a.status IN ('open', 'acknowledged'))::int,
       count(*) FILTER (WHERE a.status = 'open')::int
  FROM sensor_alerts a
  JOIN datastreams d ON d.id = a.datastream_id
  JOIN sensors s ON s.id = d.thing_id
 WHERE a.status IN ('open', 'acknowledged') AND {visible}
""")

ONE = sql.SQL("""
SELECT a.id, a.status, a.opened_at, a.value, a.limit_value, a.observed_at, a.peak, a.peak_at,
       a.normal_since, a.acknowledged_at, a.acknowledged_by, a.acknowledge_note, a.closed_at,
       CASE WHEN i.id IS NOT NULL THEN a.incident_id END AS incident_id,
       i.status AS incident_status, i.title AS incident_title,
       r.code AS rule, r.kind, r.statistic, r.window_minutes, r.min_coverage, r.lower_limit,
       r.upper_limit, r.max_rise, r.max_fall, r.clear_minutes, r.severity, r.source,
       r.name_vi AS rule_vi, r.name_en AS rule_en,
       d.id AS datastream_id, d.access AS datastream_access, p.code AS property,
       p.name_vi AS property_vi, p.name_en AS property_en,
       coalesce(d.unit_of_measurement ->> 'symbol', '') AS unit,
       s.code AS station, s.name AS station_name, s.status AS station_status,
       ST_X(s.geom) AS lon, ST_Y(s.geom) AS lat, c.code AS commune_code, c.name AS commune_name,
       l.phenomenon_time AS latest_time, l.result AS latest_value, l.updated_at AS latest_arrived_at
  FROM sensor_alerts a
  JOIN alert_rules r ON r.id = a.rule_id
  JOIN datastreams d ON d.id = a.datastream_id
  JOIN observed_properties p ON p.id = d.observed_property_id
  JOIN sensors s ON s.id = d.thing_id
  LEFT JOIN datastream_latest l ON l.datastream_id = d.id
  LEFT JOIN incidents i ON i.id = a.incident_id AND {incident_visible}
  LEFT JOIN LATERAL (
      SELECT u.code, u.name FROM admin_units u
       WHERE u.level = 'commune' AND u.valid_to IS NULL AND ST_Covers(u.geom, s.geom)
       ORDER BY u.code LIMIT 1) c ON true
 WHERE a.id = %(id)s AND {visible}
""")

EVENTS = """
SELECT at, kind, actor, value, note FROM sensor_alert_events WHERE alert_id = %(id)s
ORDER BY at, id
"""

# The readings around an alert: hourly means (with min, max and count) from before it opened to
# its end (or now), at most MAX_CONTEXT_HOURS.
HOURLY = """
SELECT bucket, n, sum / n AS mean, min, max, last_time, last_result
  FROM observation_hourly
 WHERE datastream_id = %(ds)s AND bucket >= %(start)s AND bucket < %(end)s
 ORDER BY bucket
"""

# The raw readings of the same span, newest first, at most %(limit)s.
READINGS = """
SELECT phenomenon_time, result FROM observations
 WHERE datastream_id = %(ds)s AND phenomenon_time >= %(start)s AND phenomenon_time < %(end)s
   AND result IS NOT NULL
 ORDER BY phenomenon_time DESC LIMIT %(limit)s
"""

# Every limit that applies to the datastream now (the chart's threshold lines).
LIMITS = sql.SQL("""
SELECT r.code, r.kind, r.statistic, r.window_minutes, r.lower_limit, r.upper_limit, r.max_rise,
       r.max_fall, r.name_vi, r.name_en, r.source
  FROM datastreams d JOIN alert_rules r ON {applies}
 WHERE d.id = %(ds)s AND r.kind = 'threshold'
 ORDER BY r.window_minutes, r.code
""").format(applies=_APPLIES)

RULES = """
SELECT r.code, r.kind, p.code AS property, r.statistic, r.window_minutes,
       r.min_coverage, r.lower_limit, r.upper_limit, r.max_rise, r.max_fall, r.clear_minutes,
       r.severity, r.name_vi, r.name_en, r.source, r.escalate, r.agency_code, r.valid_from,
       r.valid_to, r.enabled
  FROM alert_rules r LEFT JOIN observed_properties p ON p.id = r.observed_property_id
 WHERE (%(property)s::text IS NULL OR p.code = %(property)s)
 ORDER BY p.code NULLS LAST, r.kind, r.window_minutes, r.code
"""

AQI_BANDS = """
SELECT code, lower, upper, name_vi, name_en, colour_vi, rgb, colour FROM aqi_bands ORDER BY lower
"""
