"""What happens after a transition is stored: the operator consoles hear of it (a NOTIFY,
gis/reports/events.py) and the agency in charge is told by webhook.

Every stored transition (status move, assignment, duplicate link or unlink) calls
on_transition() in the transition's own transaction, and the delivery is enqueued on the
PostgreSQL job queue (gis/jobs/webhooks.py) on that same connection: it exists if and only if
the move committed, and the queue retries it with backoff until the agency's receiver answers,
or leaves it as a dead letter an administrator replays. Nothing is lost while the receiver is
down, and each delivery carries one id for all its attempts so the receiver can drop repeats.
One exception, for the hot path: a new report's first transitions (received, and a duplicate
link) are stored by intake's one statement (queries.CREATE_REPORT), which sends their events
itself; it sets no agency (routing is at verification), so there is nobody to tell yet.

Only assignments and status changes are told (the issue's two events). The payload holds the
report's public facts - no reporter, no description: the agency reads those through the API
under its own access, where reads of personal data are audited.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg

from gis.reports import events
from gis.reports import queries as q
from gis.reports.model import Transition

EVENTS = {"assign": "report.assigned", "status": "report.status_changed"}


def on_transition(conn: psycopg.Connection, incident_id: int, transition: Transition) -> None:
    """Called once per stored transition, inside its transaction (see the module docstring)."""
    created = transition.from_status is None and transition.kind == "status"
    events.publish(conn, incident_id, "report.created" if created else "report.updated",
                   transition.kind, transition.at)
    event = EVENTS.get(transition.kind)
    if transition.kind == "status" and transition.to_status == "assigned":
        event = EVENTS["assign"]  # verified -> assigned (routing) or a reopened report
    if event is None:
        return
    row = conn.execute(q.NOTIFY_TARGET, (incident_id,)).fetchone()
    if row is None:  # no agency yet, or one without a webhook
        return
    url, agency, service, status, due, commune, lon, lat = row
    from gis.jobs.webhooks import enqueue_webhook  # the queue's worker stack, only when needed

    enqueue_webhook(conn, url, event, payload(incident_id, transition, agency, service, status,
                                              due, commune, lon, lat))


def payload(incident_id: int, t: Transition, agency: str, service: str | None, status: str,
            due: dt.datetime | None, commune: str | None, lon: float, lat: float) -> dict[str, Any]:
    return {
        "service_request_id": str(incident_id),
        "service_code": service,
        "status": status,
        "agency": agency,
        "expected_datetime": due.isoformat() if due else None,
        "commune_code": commune,
        "lat": lat,
        "long": lon,
        "transition": {"id": t.id, "kind": t.kind, "from": t.from_status, "to": t.to_status,
                       "at": t.at.isoformat(), "actor": t.actor, "note": t.note},
    }
