"""A database outage, for real: the server talks to PostgreSQL through a TCP proxy this test
controls. Cutting the proxy drops every connection and refuses new ones, as a stopped or
restarting PostgreSQL does; while it is cut, requests must answer 503 with Retry-After within 2
seconds (no hang, no 500), and within 5 seconds of its return the service answers normally."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from conftest import _free_port

pytestmark = pytest.mark.slow  # a server behind a TCP proxy, cut and restored


class TcpProxy:
    """Forwards 127.0.0.1:<port> to the database; `cut()` closes the listener and every open
    connection, `restore()` listens again on the same port."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = _free_port()
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            if self._listener is not None:
                # shutdown() wakes the thread blocked in accept(); close() alone would not.
                with contextlib.suppress(OSError):
                    self._listener.shutdown(socket.SHUT_RDWR)
                self._listener.close()
                self._listener = None
            for s in self._sockets:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            self._sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


@pytest.fixture()
def server_behind_proxy(db_url: str):
    parts = urlsplit(db_url)
    proxy = TcpProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    proxy.restore()
    netloc = f"{parts.username}:{parts.password}@127.0.0.1:{proxy.port}"
    proxied_url = urlunsplit(parts._replace(netloc=netloc))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "GEOIOC_DATABASE_URL": proxied_url, "GEOIOC_PORT": str(port),
           "GEOIOC_PUBLIC_URL": url, "GEOIOC_RATE_LIMIT_ANONYMOUS_BURST": "100000",
           "GEOIOC_RATE_LIMIT_ANONYMOUS_PER_SECOND": "10000"}
    geoioc = Path(sys.executable).parent / "geoioc"
    proc = subprocess.Popen([str(geoioc), "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120  # a start on a busy machine (CI runs beside other work)
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("server did not start")
    yield url, proxy
    proc.terminate()
    proc.wait(10)
    proxy.cut()


# Each reads the database on every call (no cache in front of it).
PATHS = ("/ogc/collections/parcels/items?limit=1&f=json", "/api/search?q=12/34", "/healthz")


def test_outage_answers_503_fast_and_recovers_within_5_seconds(server_behind_proxy) -> None:
    url, proxy = server_behind_proxy
    with httpx.Client(base_url=url, timeout=10) as client:
        for path in PATHS:  # warm: every pooled connection is in use at least once
            r = client.get(path)
            assert r.status_code == 200, (path, r.text[:300])

        proxy.cut()
        for _ in range(3):
            for path in PATHS:
                t0 = time.monotonic()
                r = client.get(path)
                elapsed = time.monotonic() - t0
                assert r.status_code == 503, (path, r.status_code, r.text[:300])
                assert int(r.headers.get("Retry-After", 0)) >= 1, (path, r.text[:200])
                assert elapsed < 2.0, f"{path} took {elapsed:.2f} s to fail"
                assert "Traceback" not in r.text and "psycopg" not in r.text
        # Said in the user's language: Vietnamese by default, English on request.
        vi = client.get("/api/search?q=12/34")
        en = client.get("/api/search?q=12/34", headers={"Accept-Language": "en"})
        assert vi.status_code == en.status_code == 503
        assert vi.json()["title"] == "Dịch vụ tạm thời gián đoạn", vi.text
        assert vi.json()["detail"] in ("hiện không kết nối được cơ sở dữ liệu; hãy thử lại sau ít phút",
                                       "hệ thống đang bận; hãy thử lại sau giây lát"), vi.text
        assert en.json()["detail"] in ("the database is not reachable right now",
                                       "the service is busy; try again shortly"), en.text

        proxy.restore()
        restored = time.monotonic()
        ok_at = None
        while time.monotonic() - restored < 10:
            if all(client.get(path).status_code == 200 for path in PATHS):
                ok_at = time.monotonic() - restored
                break
            time.sleep(0.1)
        assert ok_at is not None and ok_at < 5.0, f"not recovered after {ok_at}"
        # and it stays recovered: no stale connection is handed out afterwards
        for _ in range(20):
            for path in PATHS:
                assert client.get(path).status_code == 200
        body = client.get("/ogc/collections/parcels/items?limit=1&f=json").json()
        assert body["features"] and body["features"][0]["properties"]["sheet_no"] >= 1
