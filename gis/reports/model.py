"""A stored transition, as the workflow, the hook and the API pass it around."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Transition:
    """One stored move: what on_transition() and the timeline get."""

    id: int
    incident_id: int
    at: dt.datetime
    actor: str
    kind: str  # status | assign | duplicate | unlink
    from_status: str | None
    to_status: str
    agency_code: str | None = None
    note: str | None = None

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["at"] = self.at.isoformat()
        return out
