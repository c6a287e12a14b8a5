"""`geoioc serve`'s HTTP protocol (gis/cli/http_protocol.py): uvicorn's httptools parser, with
the bound on a request's head that h11 gave (1 MiB). Checked on the real server over raw
sockets: a long but valid URL is served, a head past the bound is a 400 and the connection is
closed, and keep-alive connections carry request after request."""

from __future__ import annotations

import json
import socket
from urllib.parse import quote, urlsplit

import httpx

from gis.cli.http_protocol import MAX_REQUEST_HEAD


def _connect(live_server: str) -> socket.socket:
    parts = urlsplit(live_server)
    return socket.create_connection((parts.hostname, parts.port), timeout=20)


def _answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 answer, with a Content-Length or chunked (streamed features)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection before answering"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    if "content-length" in headers:
        while len(rest) < int(headers["content-length"]):
            rest += sock.recv(65536)
        return int(lines[0].split()[1]), headers, rest
    assert headers.get("transfer-encoding") == "chunked"
    while not rest.endswith(b"\r\n0\r\n\r\n") and rest != b"0\r\n\r\n":
        rest += sock.recv(65536)
    body, pos = b"", 0
    while (size := int(rest[pos:rest.index(b"\r\n", pos)], 16)) > 0:
        start = rest.index(b"\r\n", pos) + 2
        body, pos = body + rest[start:start + size], start + size + 2
    return int(lines[0].split()[1]), headers, body


def _closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_a_long_url_is_served_and_keep_alive_holds(live_server: str) -> None:
    """A 300,000-character query string (CQL2 filters with detailed polygons come close) is
    served; the same connection then serves another request."""
    with _connect(live_server) as sock:
        long_query = "x=" + "1" * 300_000
        sock.sendall(f"GET /healthz?{long_query} HTTP/1.1\r\nHost: geoioc\r\n\r\n".encode())
        status, _, _ = _answer(sock)
        assert status == 200
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: geoioc\r\n\r\n")
        status, headers, _ = _answer(sock)
        assert status == 200 and headers.get("connection", "").lower() != "close"


def test_a_cql2_filter_longer_than_64_kib_reaches_the_app_whole(live_server: str, conn) -> None:
    """httptools' URL splitter stops at 65,535 bytes: a filter with a detailed polygon (here a
    box drawn with 2,161 vertices, 71 KB percent-encoded) selects what the same box as BBOX
    selects."""
    cx, cy = conn.execute("SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(geom) AS c FROM parcels "
                          "ORDER BY id LIMIT 1) s").fetchone()
    x1, y1, x2, y2 = cx - 0.01, cy - 0.01, cx + 0.01, cy + 0.01
    n = 540  # the filter stays under the API's 64,000 characters, its URL goes past 65,535 bytes
    ring = ([(x1 + (x2 - x1) * i / n, y1) for i in range(n)]
            + [(x2, y1 + (y2 - y1) * i / n) for i in range(n)]
            + [(x2 - (x2 - x1) * i / n, y2) for i in range(n)]
            + [(x1, y2 - (y2 - y1) * i / n) for i in range(n)] + [(x1, y1)])
    polygon = "POLYGON((" + ", ".join(f"{x:.9f} {y:.9f}" for x, y in ring) + "))"
    items = "/ogc/collections/parcels/items?limit=10000&f=json&filter="
    long_url = items + quote(f"S_INTERSECTS(geom, {polygon})")
    assert len(long_url) > 65536  # httpx refuses it: a raw request
    with _connect(live_server) as sock:
        sock.sendall(f"GET {long_url} HTTP/1.1\r\nHost: geoioc\r\n\r\n".encode())
        status, _, body = _answer(sock)
    short = httpx.get(live_server + items + quote(f"S_INTERSECTS(geom, BBOX({x1},{y1},{x2},{y2}))"),
                      timeout=60)
    assert status == short.status_code == 200, body[:300]
    ids = {f["id"] for f in json.loads(body)["features"]}
    assert ids == {f["id"] for f in short.json()["features"]} and ids


def test_a_head_past_the_bound_is_refused_and_the_connection_closed(live_server: str) -> None:
    """A head still incomplete past 1 MiB (a header that never ends): 400, connection closed.
    Nothing is sent after the bytes that cross the bound, so the server has read all of it
    when it closes (an unread rest would make the close a reset and lose its answer)."""
    with _connect(live_server) as sock:
        start = b"GET /healthz HTTP/1.1\r\nHost: geoioc\r\nX-Pad: "
        sock.sendall(start + b"a" * (MAX_REQUEST_HEAD + 1000 - len(start)))
        status, headers, body = _answer(sock)
        assert status == 400 and headers["connection"] == "close"
        assert body == b"Invalid HTTP request received."
        assert _closed(sock)
