"""Citizen reports and the incident workflow (issue 15): one incidents model for reports from
citizens (Open311) and incidents from operators, cameras and sensors.

- workflow.py: the table of allowed moves, transitions (each stored), assignment and routing,
  duplicates, reopening;
- intake.py: a new citizen report (validation, location, SLA deadline, duplicate, token);
- deadlines.py: SLA deadlines and overdue reports (Vietnam time, in SQL);
- reference.py: service categories and agencies (sample_data/ files into their tables);
- notify.py: on_transition(), the one place that reacts to a stored transition;
- events.py: live events for the operator console (NOTIFY in the transaction, one LISTEN per
  process fanned out to the server-sent event streams);
- queue.py: the operator console's queue of open reports by deadline; bulk.py: bulk moves and
  assignments, all or nothing;
- photos.py: a citizen's photo made safe to store (content check, no EXIF, thumbnail);
- queries.py: the SQL;
- transparency.py (+ transparency_queries.py): the public figures per agency and per commune
  for a period, the ranking, the map of overdue reports (no personal data).
"""

from gis.reports.notify import on_transition

__all__ = ["on_transition"]
