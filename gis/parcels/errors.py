"""The two parcel problems that carry their own machine-readable `code`; every other parcel error
is a plain layers.errors class (BadRequest, Invalid, NotFound, Ambiguous, PreconditionRequired,
Forbidden), mapped to its status and rendered in one place (api/errors.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from layers.errors import PROBLEMS, Conflict, Invalid, Message, Problem


class InvalidGeometry(Invalid):
    """A polygon that cannot be accepted (422). `located` are the problems with where they are
    (reason, lon/lat and VN-2000 X/Y, the neighbour overlapped...), kept as the body's `problems`
    member that clients already read; each is also one entry of the standard `errors` list.

    Every problem names its catalogue entry (api/messages.py) so that it reads in the user's
    language: `message` for the error's one problem, a located problem's own under the key
    "entry" (taken out of the body's `problems`); without one, the class's fallback."""

    code = "InvalidGeometry"
    fallback = Message("geometry_invalid")

    def __init__(self, detail: str, *, located: Sequence[dict[str, Any]] = (),
                 message: Message | None = None, **details: Any) -> None:
        located = [dict(p) for p in located]
        entries = [p.pop("entry", None) for p in located]
        if located:
            problems = [Problem("geometry", str(p.get("message") or p.get("reason")),
                                message=entry or message or self.fallback)
                        for p, entry in zip(located, entries, strict=True)]
        else:
            problems = [Problem("geometry", detail.removeprefix("geometry: "),
                                message=message or self.fallback)]
        super().__init__(detail, problems=problems, message=PROBLEMS, **details)
        if located:
            self.details["problems"] = located


class VersionConflict(Conflict):
    """Someone saved the parcel since the caller read it (409): the body says both versions."""

    code = "VersionConflict"
