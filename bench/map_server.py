"""Shared by bench/map_render.py and bench/heatmap.py: a real `geoioc serve` on a free port, a
throw-away user with an API key, and writing a section of bench/README.md between markers.

Not a benchmark itself (`python bench/map_render.py` or `python bench/heatmap.py`).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psycopg  # noqa: E402

README = ROOT / "bench" / "README.md"
DEFAULT_DB = os.environ.get("GEOIOC_DATABASE_URL",
                            "postgresql://geoioc:geoioc@127.0.0.1:5432/geoioc_dev")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(db_url: str = DEFAULT_DB) -> Iterator[str]:
    """`geoioc serve` with the anonymous rate limit off (a page load is ~100 requests), stopped
    on exit whatever happens."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "GEOIOC_DATABASE_URL": db_url, "GEOIOC_PORT": str(port),
           "GEOIOC_PUBLIC_URL": url, "GEOIOC_RATE_LIMIT_ANONYMOUS_PER_SECOND": "0",
           "GEOIOC_BASEMAP_URL": ""}
    # The server's log goes to a file, not a pipe: a pipe nobody reads fills up (64 kB) and
    # then blocks the server mid-run; the file's tail explains a start that failed.
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in the finally below)
    proc = subprocess.Popen([str(Path(sys.executable).parent / "geoioc"), "serve", "--port",
                             str(port)], env=env, stdout=subprocess.DEVNULL, stderr=log)
    try:
        # On a loaded machine the server's imports alone can take a minute.
        deadline = time.monotonic() + float(os.environ.get("GEOIOC_BENCH_START_S", "180"))
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                proc.wait(10)
                log.seek(0)
                raise RuntimeError(f"geoioc serve did not start: {log.read().decode()[-2000:]}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@contextmanager
def temp_user(db_url: str, role: str) -> Iterator[tuple[str, str, str]]:
    """(username, password, API key) of a user holding ROLE, deleted afterwards."""
    from gis.auth import api_keys, users

    name = f"bench-{role.replace('_', '-')}-{uuid.uuid4().hex[:6]}"
    password = "bench-mật-khẩu-" + uuid.uuid4().hex[:8]
    with psycopg.connect(db_url, autocommit=True) as conn:
        users.add_user(conn, name, password, roles=[role])
        key = api_keys.create_key(conn, name, "bench", days=1).key
    try:
        yield name, password, key
    finally:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("DELETE FROM users WHERE username = %s", (name,))


def write_section(name: str, body: str) -> None:
    """Replace the text between <!-- bench-NAME:start --> and :end --> in bench/README.md, or
    append it under a "## Map" heading (created once) when the markers are not there yet."""
    start, end = f"<!-- bench-{name}:start -->", f"<!-- bench-{name}:end -->"
    text = README.read_text(encoding="utf-8") if README.exists() else "# Benchmarks\n"
    block = f"{start}\n{body.rstrip()}\n{end}"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        text = before + block + rest.split(end, 1)[1]
    elif "\n## Map\n" in text:  # at the end of the Map section, before the next heading
        head, tail = text.split("\n## Map\n", 1)
        cut = tail.find("\n## ")
        section, after = (tail, "") if cut < 0 else (tail[:cut], tail[cut:])
        text = head + "\n## Map\n" + section.rstrip() + "\n\n" + block + "\n" + after
    else:
        text = text.rstrip() + "\n\n## Map\n\n" + block + "\n"
    README.write_text(text, encoding="utf-8")
