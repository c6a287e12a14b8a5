"""The workflow's refusals, as classes of the one error hierarchy (layers/errors.py)."""

from __future__ import annotations

from layers.errors import Conflict


class IllegalTransition(Conflict):
    """A move the workflow does not allow from the report's current status (409)."""

    code = "IllegalTransition"
    title = "Illegal transition"
