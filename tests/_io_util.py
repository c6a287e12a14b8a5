"""Helpers shared by the import/export/harvest tests (not a test module)."""

from __future__ import annotations

import subprocess
import time
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyogrio

RUN = uuid.uuid4().hex[:8]


def unzip(data_or_path: bytes | Path, into: Path) -> list[Path]:
    into.mkdir(parents=True, exist_ok=True)
    if isinstance(data_or_path, bytes):
        src = into / "download.zip"
        src.write_bytes(data_or_path)
    else:
        src = data_or_path
    with zipfile.ZipFile(src) as z:
        z.extractall(into)
        return [into / n for n in z.namelist()]


def ogrinfo(path: Path, *args: str) -> str:
    """The Debian GDAL command line tool (another GDAL than pyogrio's wheel)."""
    r = subprocess.run(["ogrinfo", "-ro", *args, str(path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def read(path: Path, **kwargs):
    return pyogrio.read_dataframe(path, **kwargs)


def wait_for_job(get: Callable[..., Any], path: str, headers: dict[str, str],
                 seconds: float = 60) -> dict[str, Any]:
    """An export job's status once it has finished (or failed), polled until a deadline. GET is
    `client.get` of a TestClient or `httpx.get` for a live server."""
    deadline = time.monotonic() + seconds
    while True:
        status: dict[str, Any] = get(path, headers=headers).json()
        if status["status"] in ("successful", "failed"):
            return status
        assert time.monotonic() < deadline, f"job did not finish in {seconds} s: {status}"
        time.sleep(0.05)
