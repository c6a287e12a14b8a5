"""The two parcel problems that carry their own machine-readable `code`; every other parcel error
is a plain layers.errors class (BadRequest, Invalid, NotFound, Ambiguous, PreconditionRequired,
Forbidden), mapped to its status and rendered in one place (api/errors.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from layers.errors import Conflict, Invalid, Problem


class InvalidGeometry(Invalid):
    """A polygon that cannot be accepted (422). `located` are the problems with where they are
    (reason, lon/lat and VN-2000 X/Y, the neighbour overlapped...), kept as the body's `problems`
    member that clients already read; each is also one entry of the standard `errors` list."""

    code = "InvalidGeometry"

    def __init__(self, detail: str, *, located: Sequence[dict[str, Any]] = (), **details: Any) -> None:
        super().__init__(detail, problems=[Problem("geometry", str(p.get("message") or p.get("reason")))
                                           for p in located], **details)
        if located:
            self.details["problems"] = list(located)


class VersionConflict(Conflict):
    """Someone saved the parcel since the caller read it (409): the body says both versions."""

    code = "VersionConflict"
