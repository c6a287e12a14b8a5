"""Bulk actions of the operator console: one move or assignment for many reports, all or nothing.

Every report is tried in one transaction, each in its own savepoint so that one refusal does not
hide the next: the caller learns every id that cannot move and why, in one answer. If any is
refused (a 409 of the workflow, or a report missing or hidden: 404) the whole transaction is
rolled back (no transition stored, no webhook enqueued, no event sent) and BulkRefused (409)
lists them; otherwise every move is committed together.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import psycopg

from gis.reports.errors import IllegalTransition
from gis.reports.model import Transition
from layers.errors import Conflict, GeoIOCError, Message, NotFound, Problem

MAX_IDS = 500


class BulkRefused(IllegalTransition):
    """Some reports of a bulk action cannot take it; nothing was changed (409)."""

    code = "BulkRefused"
    title = "Bulk action refused"


def _problem(index: int, incident_id: int, e: GeoIOCError) -> Problem:
    return Problem(f"ids[{index}]", f"{incident_id}: {e.detail}", row=index,
                   message=Message("bulk_item", {"id": str(incident_id), "reason": e.message})
                   if e.message is not None else None)


def run(conn: psycopg.Connection, ids: Sequence[int],
        action: Callable[[int], list[Transition]]) -> list[Transition]:
    """ACTION applied to each id (in order, duplicates once), committed only if all succeed."""
    unique = list(dict.fromkeys(ids))
    done: list[Transition] = []
    refused: list[tuple[int, int, GeoIOCError]] = []
    with conn.transaction():
        for index, incident_id in enumerate(unique):
            try:
                with conn.transaction():
                    done.extend(action(incident_id))
            except (Conflict, NotFound) as e:  # refused by the workflow, hidden or missing
                refused.append((index, incident_id, e))
            # Anything else (an unknown status or agency: 400) is about the request, not one
            # report: it propagates and rolls everything back.
        if refused:
            bad = [i for _, i, _ in refused]
            raise BulkRefused(
                f"{len(bad)} of {len(unique)} reports cannot take this action, nothing was "
                f"changed: {', '.join(map(str, bad))}",
                message=Message("bulk_refused", {"count": len(bad), "total": len(unique),
                                                 "ids": ", ".join(map(str, bad))}),
                problems=[_problem(i, n, e) for i, n, e in refused], ids=bad)
    return done
