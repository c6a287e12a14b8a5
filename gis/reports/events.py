"""Live report events for the operator console: PostgreSQL NOTIFY in, server-sent events out.

publish() sends a NOTIFY on the connection of the transaction that stored a new report or a
transition (called from notify.on_transition; a new report's events are sent by intake's own
statement, queries.CREATE_REPORT, with the same payload), so an event exists if and only if the change
committed, and every server process hears it: each process keeps one LISTEN connection
(gis/live.py Listener, shared with the live map's events) and fans the events out to its
subscribers (one queue per open event stream).
The payload holds public facts only (id, status, service, agency, commune, deadline): the
console refetches what it shows under its own access.
"""

from __future__ import annotations

import datetime as dt

import psycopg

from gis.reports import queries as q


def publish(conn: psycopg.Connection, incident_id: int, event: str, kind: str,
            at: dt.datetime) -> None:
    """NOTIFY the report event in CONN's current transaction (nothing for a security event)."""
    conn.execute(q.NOTIFY_EVENT, {"channel": q.EVENTS_CHANNEL, "event": event, "kind": kind,
                                  "at": at, "id": incident_id})
