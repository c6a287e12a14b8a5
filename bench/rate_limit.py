"""What the shared rate limit costs a request (issue 18: limits in PostgreSQL, one UPSERT each).

Two measurements, each alternated in rounds (A, B, A, B ...) so that a machine shared with other
work loads both sides alike; the median round is reported.

1. The middleware alone, in this process: a bare ASGI app answering 200 behind
   api.middleware.RateLimitMiddleware, called directly (no HTTP), one request after the other:
   no limit, buckets in memory (before issue 18), buckets in the database (now). The difference
   is the cost per request of each.
2. The real server: two `geoioc serve --workers 1` side by side, one with the anonymous limit
   off, one with it on (shared, in the database; a burst no client reaches, so every answer is
   a 200), CONCURRENCY clients on keep-alive connections fetching a small static file (no
   database work of its own: the limit's round trip is the only one).

    .venv/bin/python bench/rate_limit.py                       # GEOIOC_DATABASE_URL's database
    .venv/bin/python bench/rate_limit.py --seconds 5 --rounds 5 --concurrency 8
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from api.middleware import RateLimitMiddleware  # noqa: E402
from gis import limits  # noqa: E402
from gis.settings import get_settings  # noqa: E402

STATIC = "/ogc/static/css/default.css"


async def _ok(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def middleware(mode: str, url: str) -> RateLimitMiddleware:
    burst, rate = 10**9, 10**6  # never refuses: the cost of counting, not of refusing
    if mode == "off":
        return RateLimitMiddleware(_ok, rate=0, burst=burst)
    if mode == "memory":
        return RateLimitMiddleware(_ok, rate=rate, burst=burst)
    app = RateLimitMiddleware(_ok, rate=rate, burst=burst, store=limits.store(url),
                              namespace=f"bench-{uuid.uuid4().hex[:8]}")
    if mode == "exact" and isinstance(app.anonymous, limits.SharedTokenBuckets):
        app.anonymous.lease = 1  # one round trip per request: what a small burst gets
    return app


async def _drive(app: RateLimitMiddleware, seconds: float) -> float:
    """Requests a second through APP, one after the other, from 100 client addresses in turn
    (a bucket each, updated as a returning client's is)."""
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    n, start = 0, time.perf_counter()
    while True:
        for _ in range(200):
            scope = {"type": "http", "method": "GET", "path": "/", "headers": [],
                     "query_string": b"", "client": (f"10.0.0.{n % 100}", 1234)}
            await app(scope, receive, send)
            n += 1
        if time.perf_counter() - start >= seconds:
            break
    assert all(m.get("status", 200) == 200 for m in sent if m["type"] == "http.response.start")
    return n / (time.perf_counter() - start)


def middleware_alone(url: str, seconds: float, rounds: int) -> dict[str, float]:
    apps = {mode: middleware(mode, url) for mode in ("off", "memory", "exact", "database")}
    results: dict[str, list[float]] = {mode: [] for mode in apps}
    for _ in range(rounds):
        for mode, app in apps.items():
            results[mode].append(asyncio.run(_drive(app, seconds)))
    return {mode: statistics.median(r) for mode, r in results.items()}


@contextmanager
def server(url: str, limited: bool) -> Iterator[str]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "GEOIOC_DATABASE_URL": url, "GEOIOC_PORT": str(port),
           "GEOIOC_PUBLIC_URL": base, "GEOIOC_BASEMAP_URL": "",
           "GEOIOC_JOBS_IN_PROCESS": "false", "GEOIOC_INGEST_IN_PROCESS": "false",
           "GEOIOC_LIMITS_NAMESPACE": f"bench-{uuid.uuid4().hex[:8]}",
           "GEOIOC_RATE_LIMIT_ANONYMOUS_PER_SECOND": "1000000" if limited else "0",
           "GEOIOC_RATE_LIMIT_ANONYMOUS_BURST": "1000000000"}
    proc = subprocess.Popen([str(Path(sys.executable).parent / "geoioc"), "serve", "--port",
                             str(port)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(base + STATIC, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("geoioc serve did not start")
            time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


async def _load(base: str, seconds: float, concurrency: int) -> float:
    done = 0

    async def client(http: httpx.AsyncClient, stop: float) -> None:
        nonlocal done
        while time.perf_counter() < stop:
            r = await http.get(base + STATIC)
            assert r.status_code == 200, r.status_code
            done += 1

    limits_ = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits_, timeout=30) as http:
        start = time.perf_counter()
        await asyncio.gather(*(client(http, start + seconds) for _ in range(concurrency)))
        return done / (time.perf_counter() - start)


def real_server(url: str, seconds: float, rounds: int, concurrency: int) -> dict[str, float]:
    results: dict[str, list[float]] = {"off": [], "database": []}
    with server(url, False) as off, server(url, True) as on:
        for base in (off, on):  # warm both
            asyncio.run(_load(base, 1.0, concurrency))
        for _ in range(rounds):
            results["off"].append(asyncio.run(_load(off, seconds, concurrency)))
            results["database"].append(asyncio.run(_load(on, seconds, concurrency)))
    return {mode: statistics.median(r) for mode, r in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=get_settings().database_url)
    parser.add_argument("--seconds", type=float, default=3.0, help="per round and case")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--skip-server", action="store_true")
    a = parser.parse_args()

    alone = middleware_alone(a.database_url, a.seconds, a.rounds)
    print("middleware alone (requests/s, one after the other; µs per request):")
    for mode, rps in alone.items():
        print(f"  {mode:9s} {rps:10,.0f}/s  {1e6 / rps:7.1f} µs")
    for mode in ("exact", "database"):
        print(f"  {mode}: {1e6 / alone[mode] - 1e6 / alone['memory']:.1f} µs more per request "
              "than the memory bucket")
    if not a.skip_server:
        served = real_server(a.database_url, a.seconds, a.rounds, a.concurrency)
        print(f"geoioc serve, 1 worker, {a.concurrency} keep-alive clients, {STATIC}:")
        for mode, rps in served.items():
            print(f"  limit {mode:9s} {rps:8,.0f} requests/s")
        print(f"  with the shared limit: {served['database'] / served['off']:.0%} of the "
              "throughput without a limit")


if __name__ == "__main__":
    main()
