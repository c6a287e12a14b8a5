"""The two ways an import is refused before anything is written.

They are subclasses of the one hierarchy (layers.errors) so that the API's error map answers
them like any other refusal (422 with the reason, 403) with no handler of their own. They stay
ValueError / PermissionError too, so code that catches the built-in kinds keeps working.
"""

from __future__ import annotations

from layers.errors import Forbidden, Invalid


class ImportFileError(Invalid, ValueError):
    """The file cannot be imported at all (damaged, incomplete, unknown CRS, ...): nothing is
    written; HTTP 422, CLI exit code 2."""


class ImportNotAllowed(Forbidden, PermissionError):
    """The caller may not import into this layer (HTTP 403)."""
