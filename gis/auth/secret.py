"""The JWT signing key: from the setting GEOIOC_JWT_SECRET, else a file generated on first use.

The file (.geoioc/jwt-secret, git-ignored, mode 0600) is published atomically with a hard link,
so several server processes starting together agree on one key. Replacing the key signs
everybody out.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from gis.settings import PROJECT_ROOT, Settings

MIN_LENGTH = 32  # HS256 wants at least 256 bits of key


def secret_file() -> Path:
    return PROJECT_ROOT / ".geoioc" / "jwt-secret"


def jwt_secret(settings: Settings, path: Path | None = None) -> str:
    if settings.jwt_secret:
        if len(settings.jwt_secret) < MIN_LENGTH:
            raise ValueError(f"GEOIOC_JWT_SECRET must have at least {MIN_LENGTH} characters")
        return settings.jwt_secret
    path = path or secret_file()
    if not path.exists():
        _create(path)
    value = path.read_text(encoding="ascii").strip()
    if len(value) < MIN_LENGTH:
        raise ValueError(f"{path} holds no usable key (at least {MIN_LENGTH} characters): "
                         "delete it to generate a new one")
    return value


def _create(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(secrets.token_urlsafe(48) + "\n")
        with contextlib.suppress(FileExistsError):  # another process won the race: keep theirs
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
