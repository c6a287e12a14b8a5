"""Transitional: the old OGC exception helpers, now thin aliases onto the one hierarchy.

Every error is a layers.errors class rendered by api/errors.py (the OGC exception document under
/ogc, problem details under /api); this module only keeps the modules that still import it
working until they raise layers.errors themselves. It is to be deleted then.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from layers.errors import BadRequest, GeoIOCError, NotFound


class OGCError(GeoIOCError):
    """An error given as (status, code, description): an instance of the layers.errors class of
    that status (so api/errors.py maps and renders it) that keeps the given `code`."""

    def __new__(cls, status: int, code: str, description: str, *args: Any, **kwargs: Any) -> OGCError:
        if cls is OGCError:
            cls = _with_status(status)
        return super().__new__(cls, description)

    def __init__(self, status: int, code: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.code = code  # type: ignore[misc]  # the instance keeps the code it was given


@cache
def _with_status(status: int) -> type[OGCError]:
    from api.errors import FROM_STATUS

    base = FROM_STATUS.get(status, BadRequest)
    return type(f"OGC{base.__name__}", (OGCError, base), {})


def bad_parameter(description: str) -> BadRequest:
    return BadRequest(description, parameter=parameter_named(description))


def parameter_named(description: str) -> str | None:
    """The parameter a message starts with ("bbox: ..."), if it does."""
    name, sep, _ = description.partition(":")
    return name if sep and name and " " not in name else None


def not_found(description: str) -> NotFound:
    return NotFound(description)
