"""The two ways an import is refused before anything is written.

They are subclasses of the one hierarchy (layers.errors) so that the API's error map answers
them like any other refusal (422 with the reason, 403) with no handler of their own. They stay
ValueError / PermissionError too, so code that catches the built-in kinds keeps working.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from layers.errors import Forbidden, Invalid, Message


class ImportFileError(Invalid, ValueError):
    """The file cannot be imported at all (damaged, incomplete, unknown CRS, ...): nothing is
    written; HTTP 422, CLI exit code 2. KEY names the catalogue entry (api/messages.py) that
    words it in the user's language, ARGS fill it; without one, the class's fallback."""

    fallback = Message("import_file_invalid")

    def __init__(self, detail: str, key: str | None = None, **args: Any) -> None:
        super().__init__(detail, message=Message(key, args or None) if key else None)


class ImportNotAllowed(Forbidden, PermissionError):
    """The caller may not import into this layer (HTTP 403)."""


# An absolute path of two or more segments (POSIX or Windows), as GDAL and the OS quote them; not
# the relative path of a file inside a zip ("x.zip:dir/a.shp").
_PATH = re.compile(r"(?<![\w:.])(?:[A-Za-z]:)?(?:[/\\][\w.+@~-]+){2,}")


def without_paths(message: str, name: str, *paths: Path) -> str:
    """MESSAGE with no server path in it: PATHS (the temporary copy of the upload) become NAME,
    the file's name as the user gave it, and any other absolute path its last part. GDAL and the
    OS quote the temporary copy (`/srv/.../.geoioc/imports/tmpab12/x.zip`), which says nothing to
    the user and tells a client where the server keeps its files."""
    for path in sorted(paths, key=lambda p: len(str(p)), reverse=True):
        message = message.replace(str(path), name)
    return _PATH.sub(lambda m: re.split(r"[/\\]", m.group(0))[-1], message)
