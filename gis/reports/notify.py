"""What happens after a transition is stored: the hook the agency notifications hang on.

Every stored transition (status move, assignment, duplicate link or unlink) calls
on_transition() in the transition's own transaction, so whatever it enqueues commits or rolls
back with the move itself. Today it does nothing: the PostgreSQL job queue and the agency
webhooks (issue 15, branch i15-queue) will enqueue their notification job here.
"""

from __future__ import annotations

import psycopg

from gis.reports.model import Transition


def on_transition(conn: psycopg.Connection, incident_id: int, transition: Transition) -> None:
    """Called once per stored transition, inside its transaction (see the module docstring)."""
    return None
