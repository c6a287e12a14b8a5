"""The time series chart's SQL (gis/sensors/series.py): one datastream's readings over a range,
raw or from the hourly and daily rollups. {visible} is the caller's access (the sensors layer's
row filter on the station, alias s, and the datastream's own access, alias d)."""

from __future__ import annotations

from psycopg import sql

# The datastream as the chart titles it, when the caller may read it.
DATASTREAM = sql.SQL("""
SELECT d.id, d.name, d.access, p.code AS property, p.name_vi AS property_vi, p.name_en AS property_en,
       coalesce(d.unit_of_measurement ->> 'symbol', '') AS unit,
       s.id AS station, s.code AS station_code, s.name AS station_name,
       CASE WHEN p.code = s.parameter THEN s.threshold END AS station_threshold
  FROM datastreams d
  JOIN observed_properties p ON p.id = d.observed_property_id
  JOIN sensors s ON s.id = d.thing_id
 WHERE d.id = %(ds)s AND {visible}
""")

# Raw readings, oldest first, at most %(limit)s (the caller asks one more than it ships, to
# know when the range holds too many and a rollup must be read instead).
RAW = """
SELECT extract(epoch FROM phenomenon_time)::float8, result, result, result
  FROM observations
 WHERE datastream_id = %(ds)s AND phenomenon_time >= %(start)s AND phenomenon_time < %(end)s
   AND result IS NOT NULL
 ORDER BY phenomenon_time LIMIT %(limit)s
"""

# Hourly means (with min and max), hours that start in the range.
HOURLY = """
SELECT extract(epoch FROM bucket)::float8, sum / n, min, max
  FROM observation_hourly
 WHERE datastream_id = %(ds)s AND bucket >= date_trunc('hour', %(start)s::timestamptz, 'UTC')
   AND bucket < %(end)s
 ORDER BY bucket
"""

# Daily means, days in Vietnam time (buckets at midnight in Asia/Ho_Chi_Minh).
DAILY = """
SELECT extract(epoch FROM bucket)::float8, sum / n, min, max
  FROM observation_daily
 WHERE datastream_id = %(ds)s AND bucket >= geoioc_vn_day(%(start)s) AND bucket < %(end)s
 ORDER BY bucket
"""
