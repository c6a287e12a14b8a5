"""Sensor streams (issue 16): observations arriving over MQTT stored in the SensorThings-shaped
tables of migration 0020.

- payloads: topics and payloads read into rows, or refused with a reason;
- queries: the SQL (staging, the one statement storing a batch with its rollups and latest rows,
  the workers' figures, partitions);
- ingest: the worker (paho-mqtt, QoS 1, persistent session, shared subscription, acknowledged
  after commit); `geoioc ingest` runs one, `geoioc serve` runs one in the server process;
- mqtt: the broker's URL and the workers' stable client ids;
- partitions: the periodic job that keeps monthly partitions created ahead (job queue);
- series (+ series_queries): one datastream's readings for the map's chart, raw or from the
  rollups by range.
"""
