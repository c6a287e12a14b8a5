"""The SQL of cameras (gis/sensors/cameras.py): heartbeats, the health sweep, the health panel,
snapshots and detections, in one place.

A camera's health is decided by one SQL function, camera_health (migration 0023), from what the
row holds (last_seen, the fps and quality last reported) and the settings (passed as
parameters): the heartbeat statement and the minute's sweep ask the same question. Both change
the row, store the change in camera_status_history and send the `camera` NOTIFY on
geoioc_live in the same statement, so an event exists iff the change committed. Rows are
locked in id order (no deadlock between two ingest workers and the sweep).
"""

from __future__ import annotations

from psycopg import sql

LIVE_CHANNEL = "geoioc_live"
CAMERAS_LAYER = "cameras"

# The health of camera row c at %(now)s with the settings' limits.
_HEALTH = """camera_health({seen}, {fps}, {quality}, %(now)s::timestamptz, %(online_s)s,
                             %(offline_s)s, %(min_fps)s, %(min_quality)s)"""

# The `camera` event of a changed row (ch: id, status, last_seen).
_CAMERA_EVENT = f"""pg_notify('{LIVE_CHANNEL}', json_build_object(
    'kind', 'camera', 'layer', '{CAMERAS_LAYER}', 'id', ch.id, 'status', ch.status,
    'last_seen', to_char(ch.last_seen AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))::text)"""

# Apply a batch of heartbeats (arrays: code, time, fps, bitrate, quality; several of one camera
# are reduced to its latest). Returns (cameras updated, heartbeats of unknown cameras, status
# changes). last_seen only moves forward; the reported quality is the newest
# heartbeat's. A camera in maintenance records the heartbeat but keeps its status.
HEARTBEATS = f"""
WITH raw AS MATERIALIZED (
    SELECT * FROM unnest(%(codes)s::text[], %(ats)s::timestamptz[], %(fps)s::real[],
                         %(bitrates)s::real[], %(qualities)s::real[])
                  AS h(code, at, fps, bitrate, quality)
), hb AS (
    SELECT DISTINCT ON (code) code, at, fps, bitrate, quality FROM raw ORDER BY code, at DESC
), cam AS MATERIALIZED (
    SELECT c.id, c.status AS old, n.newer,
           greatest(c.last_seen, h.at) AS seen,
           CASE WHEN n.newer THEN h.fps ELSE c.fps END AS fps,
           CASE WHEN n.newer THEN h.bitrate ELSE c.bitrate_kbps END AS bitrate,
           CASE WHEN n.newer THEN h.quality ELSE c.quality END AS quality
      FROM hb h
      JOIN cameras c ON c.code = h.code
     CROSS JOIN LATERAL (SELECT c.last_seen IS NULL OR h.at >= c.last_seen AS newer) n
     ORDER BY c.id
       FOR UPDATE OF c
), judged AS (
    SELECT m.*, CASE WHEN m.old = 'maintenance' THEN m.old
                     ELSE {_HEALTH.format(seen="m.seen", fps="m.fps", quality="m.quality")}
                END AS status
      FROM cam m
), ch AS (
    UPDATE cameras c SET last_seen = j.seen, fps = j.fps, bitrate_kbps = j.bitrate,
           quality = j.quality, status = j.status,
           status_changed_at = CASE WHEN j.status <> j.old THEN %(now)s::timestamptz
                                    ELSE c.status_changed_at END
      FROM judged j
     WHERE c.id = j.id
    RETURNING c.id, j.old, c.status, c.last_seen
), hist AS (
    INSERT INTO camera_status_history (camera_id, at, from_status, to_status, last_seen, cause)
    SELECT id, %(now)s, old, status, last_seen, 'heartbeat' FROM ch WHERE status <> old
    ORDER BY id
)
SELECT (SELECT count(*) FROM ch),
       (SELECT count(*) FROM raw WHERE NOT EXISTS (SELECT 1 FROM cameras c WHERE c.code = raw.code)),
       (SELECT count({_CAMERA_EVENT}) FROM ch WHERE ch.status <> ch.old)
"""  # noqa: S608 - constants only

# The minute's sweep: cameras heard from at some time (last_seen set), not in maintenance, whose
# health has changed with the passing of time (late -> degraded, silent -> offline). Returns
# one row per change: id, from, to.
SWEEP = f"""
WITH due AS MATERIALIZED (
    SELECT c.id, c.status AS old,
           {_HEALTH.format(seen="c.last_seen", fps="c.fps", quality="c.quality")} AS status
      FROM cameras c
     WHERE c.last_seen IS NOT NULL AND c.status <> 'maintenance'
       AND c.status <> {_HEALTH.format(seen="c.last_seen", fps="c.fps", quality="c.quality")}
     ORDER BY c.id
       FOR UPDATE OF c
), ch AS (
    UPDATE cameras c SET status = d.status, status_changed_at = %(now)s::timestamptz
      FROM due d WHERE c.id = d.id
    RETURNING c.id, d.old, c.status, c.last_seen
), hist AS (
    INSERT INTO camera_status_history (camera_id, at, from_status, to_status, last_seen, cause)
    SELECT id, %(now)s, old, status, last_seen, 'sweep' FROM ch ORDER BY id
)
SELECT ch.id, ch.old, ch.status, {_CAMERA_EVENT} FROM ch ORDER BY ch.id
"""  # noqa: S608 - constants only

# A camera by its code (device pushes: a key limited to cameras need not read the layer).
CAMERA_BY_CODE = "SELECT id, status FROM cameras WHERE code = %s"
SIMULATION_CAMERAS = "SELECT id, code FROM cameras WHERE status <> 'maintenance' ORDER BY id"
STATUS_OF = "SELECT status, last_seen FROM cameras WHERE code = %s"
KEY_CAMERAS = "SELECT camera_id FROM camera_keys WHERE key_prefix = %s"
BIND_KEY = """
INSERT INTO camera_keys (key_prefix, camera_id)
SELECT %(prefix)s, c.id FROM cameras c WHERE c.code = ANY(%(codes)s::text[])
ON CONFLICT DO NOTHING
"""

# The commune a camera stands in: the current commune covering it (as alerts and reports do).
_COMMUNE = """
LEFT JOIN LATERAL (
    SELECT u.code, u.name FROM admin_units u
     WHERE u.level = 'commune' AND u.valid_to IS NULL AND ST_Covers(u.geom, c.geom)
     ORDER BY u.code LIMIT 1) u ON true
"""

# The health panel: the cameras of %(statuses)s the caller may see ({visible}), by commune
# (name order; cameras outside every commune last), the longest silent first.
PANEL = sql.SQL("""
SELECT c.id, c.code, c.name, c.status, c.last_seen, c.status_changed_at, c.fps, c.quality,
       extract(epoch FROM %(now)s::timestamptz - c.last_seen)::float8 AS seconds_since_seen,
       u.code AS commune_code, u.name AS commune_name,
       ST_X(c.geom) AS lon, ST_Y(c.geom) AS lat
  FROM cameras c
""" + _COMMUNE + """
 WHERE c.status = ANY(%(statuses)s::text[]) AND {visible}
   AND (%(commune)s::text IS NULL OR u.code = %(commune)s)
 ORDER BY u.name NULLS LAST, u.code, c.last_seen NULLS FIRST, c.code
 LIMIT %(limit)s
""")

# Counts per commune of the cameras the caller may see, by status.
COUNTS = sql.SQL("""
SELECT u.code AS commune_code, u.name AS commune_name, count(*) AS total,
       count(*) FILTER (WHERE c.status = 'online') AS online,
       count(*) FILTER (WHERE c.status = 'degraded') AS degraded,
       count(*) FILTER (WHERE c.status = 'offline') AS offline,
       count(*) FILTER (WHERE c.status = 'maintenance') AS maintenance
  FROM cameras c
""" + _COMMUNE + """
 WHERE {visible} AND (%(commune)s::text IS NULL OR u.code = %(commune)s)
 GROUP BY u.code, u.name
 ORDER BY u.name NULLS LAST, u.code
""")

HISTORY = sql.SQL("""
SELECT h.at, h.from_status, h.to_status, h.last_seen, h.cause
  FROM camera_status_history h JOIN cameras c ON c.id = h.camera_id
 WHERE c.code = %(code)s AND {visible}
 ORDER BY h.at DESC, h.id DESC LIMIT %(limit)s
""")

ONE_CAMERA = sql.SQL("""
SELECT c.id, c.code, c.name, c.status, c.last_seen, c.status_changed_at, c.fps,
       c.bitrate_kbps, c.quality, u.code AS commune_code, u.name AS commune_name,
       s.taken_at AS snapshot_taken_at
  FROM cameras c
""" + _COMMUNE + """
  LEFT JOIN camera_snapshots s ON s.camera_id = c.id
 WHERE c.code = %(code)s AND {visible}
""")

# --- snapshots ------------------------------------------------------------------------------

PUT_SNAPSHOT = """
INSERT INTO camera_snapshots (camera_id, jpeg, thumbnail, width, height, sha256, taken_at,
                              uploaded_at)
VALUES (%(camera)s, %(jpeg)s, %(thumb)s, %(width)s, %(height)s, %(sha256)s, %(taken_at)s, now())
ON CONFLICT (camera_id) DO UPDATE SET jpeg = excluded.jpeg, thumbnail = excluded.thumbnail,
    width = excluded.width, height = excluded.height, sha256 = excluded.sha256,
    taken_at = excluded.taken_at, uploaded_at = excluded.uploaded_at
 WHERE camera_snapshots.taken_at <= excluded.taken_at
RETURNING taken_at
"""

SNAPSHOT = sql.SQL("""
SELECT s.{column}, s.sha256, s.taken_at
  FROM camera_snapshots s JOIN cameras c ON c.id = s.camera_id
 WHERE c.code = %(code)s AND {visible}
""")

# --- detections -----------------------------------------------------------------------------

DETECTION_TARGET = """
SELECT c.id AS camera_id, (SELECT k.code FROM detection_categories k WHERE k.code = %(category)s)
  FROM cameras c WHERE c.code = %(code)s
"""

INSERT_DETECTION = """
INSERT INTO camera_detections (camera_id, category, confidence, detected_at, received_at,
                               attributes, snapshot, thumbnail, status)
VALUES (%(camera)s, %(category)s, %(confidence)s, %(at)s, %(now)s, %(attributes)s,
        %(snapshot)s, %(thumbnail)s, %(status)s)
ON CONFLICT (camera_id, category, detected_at) DO NOTHING
RETURNING id
"""

DETECTION_ID = """
SELECT id, status, incident_id FROM camera_detections
 WHERE camera_id = %(camera)s AND category = %(category)s AND detected_at = %(at)s
"""

# What an incident of detection %(id)s says and where it is.
DETECTION_FACTS = """
SELECT d.id, d.category, d.confidence, d.detected_at, d.status, d.incident_id,
       d.snapshot IS NOT NULL AS has_snapshot,
       k.name_vi AS category_vi, k.name_en AS category_en, k.incident_category, k.severity,
       k.agency_code,
       c.id AS camera_id, c.code AS camera_code, c.name AS camera_name,
       u.code AS commune_code, u.name AS commune_name
  FROM camera_detections d
  JOIN detection_categories k ON k.code = d.category
  JOIN cameras c ON c.id = d.camera_id
""" + _COMMUNE + """
 WHERE d.id = %(id)s
"""

INSERT_INCIDENT = """
INSERT INTO incidents (category, severity, status, source, title, description, commune_code,
                       reported_at, geom, updated_at)
SELECT %(category)s, %(severity)s, 'received', 'camera', %(title)s, %(description)s,
       %(commune_code)s, %(at)s, c.geom, %(now)s
  FROM cameras c WHERE c.id = %(camera)s
RETURNING id
"""

LINK_INCIDENT = """
UPDATE camera_detections SET incident_id = %(incident)s, status = %(status)s,
       decided_by = %(actor)s, decided_at = %(decided_at)s, decision_note = %(note)s
 WHERE id = %(id)s
"""

AGENCY_EXISTS = "SELECT EXISTS (SELECT 1 FROM agencies WHERE code = %s)"

DETECTION_EVENT = f"""
SELECT pg_notify('{LIVE_CHANNEL}', json_build_object(
    'kind', 'detection', 'layer', '{CAMERAS_LAYER}', 'id', d.id, 'camera', d.camera_id,
    'category', d.category, 'incident', d.incident_id, 'status', d.status,
    'confidence', d.confidence)::text)
  FROM camera_detections d WHERE d.id = %(id)s
"""  # noqa: S608 - constants only

LOCK_DETECTION = sql.SQL("""
SELECT d.id, d.status, d.incident_id, d.decided_by, d.decided_at
  FROM camera_detections d JOIN cameras c ON c.id = d.camera_id
 WHERE d.id = %(id)s AND {visible}
   FOR UPDATE OF d
""")

DISMISS = """
UPDATE camera_detections SET status = 'dismissed', decided_by = %(actor)s,
       decided_at = %(at)s, decision_note = %(note)s
 WHERE id = %(id)s
"""

# Detections the caller may see ({visible}: the cameras layer; {incident_visible}: whether the
# incident may be shown), newest first.
DETECTIONS = sql.SQL("""
SELECT d.id, d.category, k.name_vi AS category_vi, k.name_en AS category_en,
       k.incident_category, d.confidence, d.detected_at, d.received_at, d.status,
       CASE WHEN i.id IS NOT NULL THEN d.incident_id END AS incident_id,
       d.snapshot IS NOT NULL AS has_snapshot, d.decided_by, d.decided_at, d.decision_note,
       c.id AS camera_id, c.code AS camera_code, c.name AS camera_name,
       u.code AS commune_code, u.name AS commune_name, ST_X(c.geom) AS lon, ST_Y(c.geom) AS lat,
       count(*) OVER () AS total
  FROM camera_detections d
  JOIN detection_categories k ON k.code = d.category
  JOIN cameras c ON c.id = d.camera_id
""" + _COMMUNE + """
  LEFT JOIN incidents i ON i.id = d.incident_id AND {incident_visible}
 WHERE (%(statuses)s::text[] IS NULL OR d.status = ANY(%(statuses)s))
   AND (%(camera)s::text IS NULL OR c.code = %(camera)s)
   AND {visible}
 ORDER BY d.detected_at DESC, d.id DESC
 LIMIT %(limit)s OFFSET %(offset)s
""")

DETECTION_SNAPSHOT = sql.SQL("""
SELECT d.{column}, d.detected_at
  FROM camera_detections d JOIN cameras c ON c.id = d.camera_id
 WHERE d.id = %(id)s AND d.{column} IS NOT NULL AND {visible}
""")

CATEGORIES = """
SELECT code, name_vi, name_en, incident_category, severity, agency_code
  FROM detection_categories ORDER BY code
"""
