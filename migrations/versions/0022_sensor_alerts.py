"""Sensor alerts (issue 16): alert rules as data, the alerts they open, their history, and the
VN_AQI bands.

- `alert_rules`: what makes an alert, one row per rule, applied to every datastream of its
  observed property (a silence rule without one: to every datastream). No rule names a
  datastream: the sample loader empties the datastreams and what refers to them, and the rules
  are reference data that stay. Three kinds:
  * threshold: a value outside [lower_limit, upper_limit]. The value is the latest reading
    (statistic 'latest', at most window_minutes old) or a mean over an averaging period
    (statistic 'mean', window_minutes): periods of whole hours up to 24 h are read from
    `observation_hourly` (the clock hours that end with the hour of the latest reading, that
    hour as far as it has come), longer ones (whole days, e.g. a year) from
    `observation_daily` (days in Vietnam time). A mean counts only when the latest reading
    lies within the period and at least min_coverage of the period's hours (days) have data.
  * rate: the latest reading minus the reading window_minutes before it (the one at or just
    before that instant, not older than twice the window) rises above max_rise or falls
    below -max_fall.
  * silence: nothing has arrived from an online station for window_minutes (arrival time:
    datastream_latest.updated_at, the time data last came in, so a station sending buffered
    readings late is reporting; a station in maintenance or offline is not expected to).
  escalate: whether an alert of the rule becomes an incident (all but silence: a station that
  stopped sending is the monitoring network's fault, for the alert list and the technicians,
  not an event in the province; an operator may turn it on).
  clear_minutes: an open alert closes when every evaluation has found the datastream normal
  for that long (a value that breaches again in between restarts the count). valid_from /
  valid_to: a regulation's roadmap (a limit that tightens on a date is a second row).
  agency_code: the agency an escalated alert's incident is assigned to at once, when it
  exists (agencies are reference data loaded with the sample: no foreign key, checked when
  the incident is made).
- `sensor_alerts`: one row per breach: at most one open (closed_at IS NULL) per datastream and
  rule (the partial unique index `sensor_alerts_one_open`), whatever the number of readings or
  evaluations. The value, the limit and the time of the reading that opened it, the worst value
  while open (peak), since when it reads normal, who acknowledged it and when, when it closed,
  its incident. `status` is derived: open, acknowledged (still open) or closed.
- `sensor_alert_events`: what happened to an alert and when (opened, escalated, normal,
  breach again, acknowledged, closed), oldest first: its timeline.
- `aqi_bands`: the six VN_AQI bands of Decision 1459/QĐ-TCMT (2019) of the Vietnam Environment
  Administration, Table 1, with their colours (RGB as the decision gives them), for display.

The seeded rules and where each value comes from (units as the regulation's: µg/Nm³ for air,
mg/L for water; readings are taken in the datastream's unit, the property's default):

- QCVN 05:2023/BTNMT (Circular 01/2023/TT-BTNMT, in force 12 September 2023), Table 1, basic
  parameters in ambient air: PM2.5 24-hour mean 50, annual mean 25; PM10 24-hour mean 100,
  annual mean 50; NO2 1-hour mean 200, 24-hour mean 100, annual mean 40. The values entered
  here were checked against published copies of the text for NO2 (and the SO2, CO, O3 rows
  beside it) and against several secondary sources for PM; the PM2.5 and PM10 rows should be
  read once more against the official text (one secondary source speaks of a lower PM2.5 value
  from 2026 that could not be confirmed here: if the text has such a step, it is a second row
  with valid_from, not a change of code).
- VN_AQI (Decision 1459/QĐ-TCMT, Table 1): an hourly AQI above 150 is "Xấu" (bad) or worse.
- QCVN 08:2023/BTNMT (same circular), Table 2, rivers, streams and canals: the values that
  separate level C from level D (pH outside 6.0-8.5, COD above 20 mg/L, dissolved oxygen below
  4.0 mg/L). The regulation classifies samples and gives no averaging period: the rules use the
  hourly mean of the automatic stations (a choice of configuration, noted in `source`). It has
  no turbidity limit (it regulates TSS): turbidity gets no threshold rule.
- Rate-of-change and silence rules are operational settings, not regulation values (their
  `source` says so); min_coverage 0.75 (18 of 24 hours) is the usual validity rule of a daily
  mean (as in EU Directive 2008/50/EC, Annex VII), a setting too.

Revision ID: 0022
Revises: 0020
Create Date: 2026-12-03
"""

from alembic import op

revision = "0022"
down_revision = "0020"
branch_labels = None
depends_on = None

QCVN05 = "QCVN 05:2023/BTNMT, Bảng 1 (Thông tư 01/2023/TT-BTNMT)"
QCVN08 = ("QCVN 08:2023/BTNMT, Bảng 2, sông suối kênh mương: ngưỡng giữa mức C và mức D "
          "(đánh giá trên trung bình 1 giờ của trạm tự động: cấu hình vận hành)")
AQI = "Quyết định 1459/QĐ-TCMT (2019), Bảng 1: VN_AQI trên 150 là mức Xấu"
OPERATIONAL = "Cấu hình vận hành (không phải giá trị quy chuẩn)"

UPGRADE = r"""
CREATE TABLE alert_rules (
    id                   bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    code                 text NOT NULL UNIQUE CHECK (code ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
    kind                 text NOT NULL CHECK (kind IN ('threshold', 'rate', 'silence')),
    -- NULL: every datastream (a silence rule); else the datastreams of this property.
    observed_property_id bigint REFERENCES observed_properties (id) ON DELETE CASCADE,
    statistic            text CHECK (statistic IN ('latest', 'mean')),
    window_minutes       integer NOT NULL CHECK (window_minutes > 0 AND window_minutes <= 527040),
    min_coverage         real NOT NULL DEFAULT 0.75 CHECK (min_coverage > 0 AND min_coverage <= 1),
    lower_limit          double precision CHECK (lower_limit > '-Infinity' AND lower_limit < 'Infinity'),
    upper_limit          double precision CHECK (upper_limit > '-Infinity' AND upper_limit < 'Infinity'),
    max_rise             double precision CHECK (max_rise > 0 AND max_rise < 'Infinity'),
    max_fall             double precision CHECK (max_fall > 0 AND max_fall < 'Infinity'),
    clear_minutes        integer NOT NULL DEFAULT 60 CHECK (clear_minutes >= 0),
    severity             smallint NOT NULL DEFAULT 2 CHECK (severity BETWEEN 1 AND 4),
    name_vi              text NOT NULL CHECK (name_vi <> ''),
    name_en              text NOT NULL CHECK (name_en <> ''),
    source               text NOT NULL DEFAULT '',
    escalate             boolean NOT NULL DEFAULT true,
    agency_code          text CHECK (agency_code ~ '^[A-Z0-9][A-Z0-9._-]{1,39}$'),
    valid_from           date,
    valid_to             date CHECK (valid_to > valid_from),
    enabled              boolean NOT NULL DEFAULT true,
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CHECK (kind = 'silence' OR observed_property_id IS NOT NULL),
    CHECK ((kind = 'threshold') = (statistic IS NOT NULL)),
    CHECK (kind <> 'threshold' OR num_nonnulls(lower_limit, upper_limit) > 0),
    CHECK (lower_limit < upper_limit),
    CHECK (kind = 'threshold' OR num_nulls(lower_limit, upper_limit) = 2),
    CHECK ((kind = 'rate') = (num_nonnulls(max_rise, max_fall) > 0)),
    -- Means are read from the rollups: whole hours up to a day, or whole days.
    CHECK (statistic IS DISTINCT FROM 'mean' OR (window_minutes % 60 = 0
           AND (window_minutes <= 1440 OR window_minutes % 1440 = 0)))
);
CREATE INDEX alert_rules_property_idx ON alert_rules (observed_property_id);

CREATE TABLE sensor_alerts (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule_id          bigint NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
    datastream_id    bigint NOT NULL REFERENCES datastreams (id) ON DELETE CASCADE,
    opened_at        timestamptz NOT NULL,
    -- What breached when it opened: the reading or mean (threshold), the change (rate), the
    -- minutes without data (silence); the limit it crossed; the time of the reading behind it.
    value            double precision NOT NULL,
    limit_value      double precision NOT NULL,
    observed_at      timestamptz,
    peak             double precision NOT NULL,  -- the value furthest past the limit while open
    peak_at          timestamptz,
    normal_since     timestamptz,  -- evaluations have found it normal since (NULL: breaching)
    acknowledged_at  timestamptz,
    acknowledged_by  text,
    acknowledge_note text,
    closed_at        timestamptz CHECK (closed_at >= opened_at),
    incident_id      bigint REFERENCES incidents (id) ON DELETE SET NULL,
    status           text NOT NULL GENERATED ALWAYS AS (
        CASE WHEN closed_at IS NOT NULL THEN 'closed'
             WHEN acknowledged_at IS NOT NULL THEN 'acknowledged' ELSE 'open' END) STORED,
    CHECK ((acknowledged_at IS NULL) = (acknowledged_by IS NULL))
);
-- One alert per datastream and rule while the breach lasts (not one per reading).
CREATE UNIQUE INDEX sensor_alerts_one_open ON sensor_alerts (datastream_id, rule_id)
    WHERE closed_at IS NULL;
CREATE INDEX sensor_alerts_opened_idx ON sensor_alerts (opened_at DESC, id DESC);
CREATE INDEX sensor_alerts_datastream_idx ON sensor_alerts (datastream_id, opened_at DESC);
CREATE INDEX sensor_alerts_status_idx ON sensor_alerts (status, opened_at DESC);
CREATE INDEX sensor_alerts_incident_idx ON sensor_alerts (incident_id) WHERE incident_id IS NOT NULL;
CREATE INDEX sensor_alerts_rule_idx ON sensor_alerts (rule_id);

CREATE TABLE sensor_alert_events (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id bigint NOT NULL REFERENCES sensor_alerts (id) ON DELETE CASCADE,
    at       timestamptz NOT NULL,
    kind     text NOT NULL CHECK (kind IN ('opened', 'escalated', 'normal', 'breach',
                                           'acknowledged', 'closed')),
    actor    text NOT NULL DEFAULT 'system' CHECK (actor <> ''),
    value    double precision,
    note     text
);
CREATE INDEX sensor_alert_events_alert_idx ON sensor_alert_events (alert_id, at, id);

CREATE TABLE aqi_bands (
    code     text PRIMARY KEY,
    lower    integer NOT NULL,
    upper    integer NOT NULL CHECK (upper > lower),
    name_vi  text NOT NULL,
    name_en  text NOT NULL,
    colour_vi text NOT NULL,
    rgb      integer[] NOT NULL CHECK (cardinality(rgb) = 3),
    colour   text NOT NULL CHECK (colour ~ '^#[0-9A-F]{6}$'),
    EXCLUDE USING gist (int4range(lower, upper, '[]') WITH &&)
);

INSERT INTO aqi_bands (code, lower, upper, name_vi, name_en, colour_vi, rgb, colour) VALUES
 ('good',      0,  50, 'Tốt',        'Good',      'Xanh',   '{0,228,0}',    '#00E400'),
 ('moderate', 51, 100, 'Trung bình', 'Moderate',  'Vàng',   '{255,255,0}',  '#FFFF00'),
 ('poor',    101, 150, 'Kém',        'Poor',      'Da cam', '{255,126,0}',  '#FF7E00'),
 ('bad',     151, 200, 'Xấu',        'Bad',       'Đỏ',     '{255,0,0}',    '#FF0000'),
 ('very_bad', 201, 300, 'Rất xấu',   'Very bad',  'Tím',    '{143,63,151}', '#8F3F97'),
 ('hazardous', 301, 500, 'Nguy hại', 'Hazardous', 'Nâu',    '{126,0,35}',   '#7E0023');

CREATE FUNCTION geoioc_aqi_band(aqi double precision) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT code FROM aqi_bands WHERE round(aqi) BETWEEN lower AND upper
    UNION ALL SELECT 'hazardous' WHERE round(aqi) > 500
    LIMIT 1
$$;
"""

# The seeded rules (see the module docstring for the sources). Values in the property's unit.
SEED = f"""
INSERT INTO alert_rules (code, kind, observed_property_id, statistic, window_minutes,
    min_coverage, lower_limit, upper_limit, max_rise, max_fall, clear_minutes, severity, name_vi,
    name_en, source, escalate, valid_from)
SELECT v.code, v.kind, p.id, v.statistic, v.window_minutes, v.min_coverage, v.lower_limit,
       v.upper_limit, v.max_rise, v.max_fall, v.clear_minutes, v.severity, v.name_vi, v.name_en,
       v.source, v.kind <> 'silence',
       CASE WHEN v.source IN ('{QCVN05}', '{QCVN08}') THEN date '2023-09-12' END
FROM (VALUES
 -- QCVN 05:2023/BTNMT Bảng 1 (µg/Nm³): PM2.5 24 h 50, year 25; PM10 24 h 100, year 50;
 -- NO2 1 h 200, 24 h 100, year 40.
 ('qcvn05-pm25-24h', 'threshold', 'pm25', 'mean', 1440, 0.75, NULL, 50, NULL, NULL, 60, 3,
  'Bụi PM2.5 trung bình 24 giờ vượt QCVN 05:2023/BTNMT',
  'PM2.5 24-hour mean above QCVN 05:2023/BTNMT', '{QCVN05}'),
 ('qcvn05-pm25-year', 'threshold', 'pm25', 'mean', 525600, 0.75, NULL, 25, NULL, NULL, 1440, 2,
  'Bụi PM2.5 trung bình năm vượt QCVN 05:2023/BTNMT',
  'PM2.5 annual mean above QCVN 05:2023/BTNMT', '{QCVN05}'),
 ('qcvn05-pm10-24h', 'threshold', 'pm10', 'mean', 1440, 0.75, NULL, 100, NULL, NULL, 60, 3,
  'Bụi PM10 trung bình 24 giờ vượt QCVN 05:2023/BTNMT',
  'PM10 24-hour mean above QCVN 05:2023/BTNMT', '{QCVN05}'),
 ('qcvn05-pm10-year', 'threshold', 'pm10', 'mean', 525600, 0.75, NULL, 50, NULL, NULL, 1440, 2,
  'Bụi PM10 trung bình năm vượt QCVN 05:2023/BTNMT',
  'PM10 annual mean above QCVN 05:2023/BTNMT', '{QCVN05}'),
 ('qcvn05-no2-1h', 'threshold', 'no2', 'mean', 60, 1.0, NULL, 200, NULL, NULL, 60, 3,
  'NO₂ trung bình 1 giờ vượt QCVN 05:2023/BTNMT',
  'NO2 1-hour mean above QCVN 05:2023/BTNMT', '{QCVN05}'),
 ('qcvn05-no2-24h', 'threshold', 'no2', 'mean', 1440, 0.75, NULL, 100, NULL, NULL, 60, 3,
  'NO₂ trung bình 24 giờ vượt QCVN 05:2023/BTNMT',
  'NO2 24-hour mean above QCVN 05:2023/BTNMT', '{QCVN05}'),
 ('qcvn05-no2-year', 'threshold', 'no2', 'mean', 525600, 0.75, NULL, 40, NULL, NULL, 1440, 2,
  'NO₂ trung bình năm vượt QCVN 05:2023/BTNMT',
  'NO2 annual mean above QCVN 05:2023/BTNMT', '{QCVN05}'),
 -- VN_AQI (Quyết định 1459/QĐ-TCMT): above 150 is the band Xấu (bad) or worse.
 ('vnaqi-bad', 'threshold', 'aqi', 'latest', 120, 1.0, NULL, 150, NULL, NULL, 60, 3,
  'Chỉ số VN_AQI ở mức Xấu trở lên', 'VN_AQI bad or worse', '{AQI}'),
 -- QCVN 08:2023/BTNMT Bảng 2 (sông, suối, kênh, mương), level C / level D: pH 6.0-8.5,
 -- COD 20 mg/L, DO 4.0 mg/L.
 ('qcvn08-ph', 'threshold', 'ph', 'mean', 60, 1.0, 6.0, 8.5, NULL, NULL, 60, 2,
  'pH nước mặt ngoài khoảng 6,0–8,5 (QCVN 08:2023/BTNMT, mức D)',
  'Surface water pH outside 6.0-8.5 (QCVN 08:2023/BTNMT, level D)', '{QCVN08}'),
 ('qcvn08-cod', 'threshold', 'cod', 'mean', 60, 1.0, NULL, 20, NULL, NULL, 60, 2,
  'COD nước mặt vượt 20 mg/L (QCVN 08:2023/BTNMT, mức D)',
  'Surface water COD above 20 mg/L (QCVN 08:2023/BTNMT, level D)', '{QCVN08}'),
 ('qcvn08-do', 'threshold', 'dissolved_oxygen', 'mean', 60, 1.0, 4.0, NULL, NULL, NULL, 60, 2,
  'Oxy hòa tan (DO) dưới 4,0 mg/L (QCVN 08:2023/BTNMT, mức D)',
  'Dissolved oxygen below 4.0 mg/L (QCVN 08:2023/BTNMT, level D)', '{QCVN08}'),
 -- Operational settings, not regulation values.
 ('rate-pm25-rise', 'rate', 'pm25', NULL, 60, 0.75, NULL, NULL, 100, NULL, 60, 2,
  'Bụi PM2.5 tăng đột ngột', 'Sudden rise of PM2.5', '{OPERATIONAL}'),
 ('rate-ph-change', 'rate', 'ph', NULL, 60, 0.75, NULL, NULL, 1.0, 1.0, 60, 2,
  'pH nước mặt thay đổi đột ngột', 'Sudden change of surface water pH', '{OPERATIONAL}'),
 ('rate-water-level-rise', 'rate', 'water_level', NULL, 60, 0.75, NULL, NULL, 0.5, NULL, 60, 3,
  'Mực nước lên nhanh', 'Water level rising fast', '{OPERATIONAL}'),
 ('silence', 'silence', NULL, NULL, 120, 0.75, NULL, NULL, NULL, NULL, 30, 2,
  'Trạm ngừng gửi số liệu', 'Station stopped reporting', '{OPERATIONAL}')
) AS v(code, kind, property, statistic, window_minutes, min_coverage, lower_limit, upper_limit,
       max_rise, max_fall, clear_minutes, severity, name_vi, name_en, source)
LEFT JOIN observed_properties p ON p.code = v.property
WHERE v.property IS NULL OR p.id IS NOT NULL
ORDER BY v.code
"""  # noqa: S608 - constants only

DOWNGRADE = """
DROP FUNCTION IF EXISTS geoioc_aqi_band(double precision);
DROP TABLE IF EXISTS sensor_alert_events, sensor_alerts, alert_rules, aqi_bands;
"""


def upgrade() -> None:
    op.execute(UPGRADE)
    op.execute(SEED)


def downgrade() -> None:
    op.execute(DOWNGRADE)
