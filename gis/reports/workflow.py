"""The incident workflow: one table of allowed moves, and every move stored.

    received -> verified -> assigned -> in_progress -> resolved | rejected -> closed

plus the shortcuts an operations centre takes (a report can be rejected from any open status,
an assigned report resolved without an "in progress" step) and reopening: a resolved report
goes back to `assigned` (its agency's queue) within `reopen_days` of being resolved, with a new
SLA deadline. Anything else is IllegalTransition (409). A move is one transaction: the row is
locked, checked against ALLOWED, updated, the transition stored with time, actor and note, and
on_transition() called.

Verifying a report routes it: the agency that handles its service and serves its commune (the
most local one) is assigned at once by `system`; an operator can reassign at any open status.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from gis.fmt import VN_TZ
from gis.reports import queries as q
from gis.reports.errors import IllegalTransition
from gis.reports.model import Transition
from gis.reports.notify import on_transition
from layers.catalogue import INCIDENT_STATUSES
from layers.errors import BadRequest, Message, NotFound, Problem

# status -> the statuses it may move to. The one table of the workflow.
ALLOWED: dict[str, frozenset[str]] = {
    "received": frozenset({"verified", "rejected"}),
    "verified": frozenset({"assigned", "rejected"}),
    "assigned": frozenset({"in_progress", "resolved", "rejected"}),
    "in_progress": frozenset({"resolved", "rejected"}),
    "resolved": frozenset({"closed", "assigned"}),  # -> assigned: reopened (within reopen_days)
    "rejected": frozenset({"closed"}),
    "closed": frozenset(),
}
STATUSES = tuple(ALLOWED)
SYSTEM = "system"
CITIZEN = "citizen"


def _now(at: dt.datetime | None) -> dt.datetime:
    return at or dt.datetime.now(dt.UTC)


def record(conn: psycopg.Connection, incident_id: int, *, at: dt.datetime, actor: str, kind: str,
           from_status: str | None, to_status: str, agency_code: str | None = None,
           note: str | None = None) -> Transition:
    """Store one transition and call the hook (in the caller's transaction)."""
    row = conn.execute(q.INSERT_TRANSITION, {
        "incident_id": incident_id, "at": at, "actor": actor, "kind": kind,
        "from_status": from_status, "to_status": to_status, "agency_code": agency_code,
        "note": note}).fetchone()
    assert row is not None
    t = Transition(int(row[0]), incident_id, at, actor, kind, from_status, to_status, agency_code,
                   note)
    on_transition(conn, incident_id, t)
    return t


def _lock(conn: psycopg.Connection, incident_id: int,
          row_filter: sql.Composable | None) -> dict[str, Any]:
    stmt = q.LOCK.format(row_filter=row_filter if row_filter is not None else sql.SQL("TRUE"))
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(stmt, {"id": incident_id}).fetchone()
    if row is None:
        raise NotFound(f"incident {incident_id} not found",
                       message=Message("incident_not_found", {"id": incident_id}))
    return row


def _illegal(current: str, to: str, why: str | None = None, key: str = "transition_illegal",
             **args: Any) -> IllegalTransition:
    allowed = sorted(ALLOWED.get(current, ()))
    english = (f"cannot move an incident from {current} to {to}"
               + (f": {why}" if why else f"; allowed from {current}: {', '.join(allowed) or 'none'}"))
    return IllegalTransition(english, message=Message(
        key, {"from": _worded(current), "to": _worded(to), "allowed": _worded(*allowed), **args}),
        current=current, allowed=allowed)


def _worded(*statuses: str) -> dict[str, str]:
    """Statuses as a Vietnamese reader knows them ("Đã xử lý"), and as codes in English (the
    values an API client sends)."""
    return {"vi": ", ".join(INCIDENT_STATUSES[s][0] if s in INCIDENT_STATUSES else s
                            for s in statuses) or "-",
            "en": ", ".join(statuses) or "-"}


def reopen_deadline(resolved_at: dt.datetime, reopen_days: int) -> dt.datetime:
    """The last moment a report resolved at RESOLVED_AT may be reopened: one rule for the move
    (transition) and for what the tracking page offers (reopen_until)."""
    return resolved_at + dt.timedelta(days=reopen_days)


def reopen_until(conn: psycopg.Connection, incident_id: int, *, reopen_days: int,
                 at: dt.datetime | None = None) -> dt.datetime | None:
    """Until when the citizen may still reopen the report, in Vietnam time (what the tracking
    page shows), or None when they may not now: its own status is not resolved (a duplicate
    shows its original's status but moves on its own) or the window has passed."""
    row = conn.execute(q.OWN_RESOLUTION, (incident_id,)).fetchone()
    if row is None or row[0] != "resolved" or row[1] is None:
        return None
    until = reopen_deadline(row[1], reopen_days)
    return until.astimezone(VN_TZ) if _now(at) <= until else None


def transition(conn: psycopg.Connection, incident_id: int, to: str, *, actor: str,
               note: str | None = None, at: dt.datetime | None = None,
               row_filter: sql.Composable | None = None, reopen_days: int = 7,
               agency_code: str | None = None,
               only_from: tuple[str, ...] | None = None) -> list[Transition]:
    """Move the incident to TO (IllegalTransition when ALLOWED has no such move); returns the
    transitions stored: the move, and after a verification the automatic assignment.
    `agency_code` with TO = assigned names the agency (else routing picks it). ONLY_FROM
    narrows the statuses the move may start from (a citizen may only reopen a resolved
    report, not assign a verified one)."""
    if to not in ALLOWED:
        raise BadRequest(f"status: unknown status {to!r}; expected one of {', '.join(STATUSES)}",
                         parameter="status", message=Message("status_unknown", {"value": to}),
                         problems=[Problem("status", f"unknown status {to!r}",
                                           message=Message("status_unknown", {"value": to}))])
    now = _now(at)
    with conn.transaction():
        row = _lock(conn, incident_id, row_filter)
        current = row["status"]
        if to not in ALLOWED[current] or (only_from is not None and current not in only_from):
            raise _illegal(current, to)
        reopen = current == "resolved" and to == "assigned"
        if reopen and row["resolved_at"] is not None and \
                now > reopen_deadline(row["resolved_at"], reopen_days):
            raise _illegal(current, to, f"resolved more than {reopen_days} days ago",
                           "transition_reopen_expired", days=reopen_days)
        agency = row["agency_code"]
        if to == "assigned" and not reopen:
            agency = agency_code or route(conn, row["service_code"], row["commune_code"])
            if agency is None:
                raise _illegal(current, to, "no agency handles this category in this commune; "
                                            "name one", "transition_no_agency")
            _check_agency(conn, agency)
        # The status note is the agency's answer (Open311 status_notes, the tracking page's
        # "answer"): a citizen's note (reopening) is kept in the history, not put in its place.
        conn.execute(q.SET_STATUS, {"id": incident_id, "to": to, "at": now,
                                    "note": note if actor != CITIZEN else None,
                                    "restart_sla": reopen, "sla_hours": row["sla_hours"]})
        if to == "assigned" and agency != row["agency_code"]:  # before the hook reads it
            conn.execute(q.SET_AGENCY, {"id": incident_id, "agency": agency, "at": now})
        out = [record(conn, incident_id, at=now, actor=actor, kind="status", from_status=current,
                      to_status=to, agency_code=agency if to == "assigned" else None, note=note)]
        if to == "verified":
            routed = route(conn, row["service_code"], row["commune_code"])
            if routed is not None:
                conn.execute(q.SET_STATUS, {"id": incident_id, "to": "assigned", "at": now,
                                            "note": None, "restart_sla": False,
                                            "sla_hours": row["sla_hours"]})
                conn.execute(q.SET_AGENCY, {"id": incident_id, "agency": routed, "at": now})
                out.append(record(conn, incident_id, at=now, actor=SYSTEM, kind="status",
                                  from_status="verified", to_status="assigned",
                                  agency_code=routed, note=None))
    return out


def _check_agency(conn: psycopg.Connection, agency: str) -> None:
    row = conn.execute(q.AGENCY_EXISTS, (agency,)).fetchone()
    if not (row and row[0]):
        raise BadRequest(f"agency: unknown agency {agency!r}", parameter="agency",
                         message=Message("agency_unknown", {"value": agency}),
                         problems=[Problem("agency", f"unknown agency {agency!r}",
                                           message=Message("agency_unknown", {"value": agency}))])


def route(conn: psycopg.Connection, service_code: str | None,
          commune_code: str | None) -> str | None:
    """The agency a report of SERVICE_CODE in COMMUNE_CODE goes to, or None."""
    if service_code is None:
        return None
    row = conn.execute(q.ROUTE, {"service_code": service_code,
                                 "commune_code": commune_code}).fetchone()
    return str(row[0]) if row else None


def assign(conn: psycopg.Connection, incident_id: int, agency_code: str, *, actor: str,
           note: str | None = None, at: dt.datetime | None = None,
           row_filter: sql.Composable | None = None) -> Transition:
    """Reassign an open report (or a verified one, which this assigns) to AGENCY_CODE."""
    now = _now(at)
    with conn.transaction():
        row = _lock(conn, incident_id, row_filter)
        current = row["status"]
        if current == "verified":
            return transition(conn, incident_id, "assigned", actor=actor, note=note, at=now,
                              row_filter=row_filter, agency_code=agency_code)[0]
        if current not in ("assigned", "in_progress"):
            raise _illegal(current, "assigned")
        _check_agency(conn, agency_code)
        conn.execute(q.SET_AGENCY, {"id": incident_id, "agency": agency_code, "at": now})
        return record(conn, incident_id, at=now, actor=actor, kind="assign", from_status=current,
                      to_status=current, agency_code=agency_code, note=note)


def unlink_duplicate(conn: psycopg.Connection, incident_id: int, *, actor: str,
                     note: str | None = None, at: dt.datetime | None = None,
                     row_filter: sql.Composable | None = None) -> Transition:
    """An operator's "not a duplicate": the report stands on its own again (409 if not linked)."""
    now = _now(at)
    with conn.transaction():
        row = _lock(conn, incident_id, row_filter)
        if row["duplicate_of"] is None:
            raise IllegalTransition(f"incident {incident_id} is not linked as a duplicate",
                                    message=Message("not_duplicate", {"id": incident_id}))
        conn.execute(q.SET_DUPLICATE, {"id": incident_id, "original": None, "at": now})
        return record(conn, incident_id, at=now, actor=actor, kind="unlink",
                      from_status=row["status"], to_status=row["status"],
                      note=note or f"not a duplicate of {row['duplicate_of']}")


def timeline(conn: psycopg.Connection, incident_id: int,
             row_filter: sql.Composable | None = None) -> list[dict[str, Any]]:
    """Every stored transition of the incident, oldest first (NotFound when hidden)."""
    stmt = sql.SQL("SELECT t.id FROM incidents t WHERE t.id = %(id)s AND {}").format(
        row_filter if row_filter is not None else sql.SQL("TRUE"))
    if conn.execute(stmt, {"id": incident_id}).fetchone() is None:
        raise NotFound(f"incident {incident_id} not found",
                       message=Message("incident_not_found", {"id": incident_id}))
    with conn.cursor(row_factory=dict_row) as cur:
        return list(cur.execute(q.TIMELINE, {"id": incident_id}).fetchall())
