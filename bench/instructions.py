"""CPU instructions the app spends per request, counted by valgrind (callgrind): a figure a busy
machine does not move, for changes of a few percent that wall-clock benchmarks cannot see here.

    .venv/bin/python bench/instructions.py                       # this tree, the parcel lookups
    .venv/bin/python bench/instructions.py --tree /path/to/other/checkout   # the same, another tree
    .venv/bin/python bench/instructions.py --database geoioc_dev "/ogc/collections/roads/items?limit=10"
    .venv/bin/python bench/instructions.py --database h_mine POST/open311/v2/requests.json
                    # report intake: distinct realistic reports as bench/intake.py sends them
                    # (stored in that database: not the shared ones)

Why: issue 12 asked that no benchmark get more than 5 % slower, and the parcel lookups of about
2 ms moved by more than that from run to run on a shared 2-core machine (bench/README.md,
"Structure change"). Instructions per request of the ASGI app (no HTTP server: uvicorn's share is
the same for every tree) are repeatable to well under 1 %, so two trees can be compared on the
same database one after the other.

How: a child Python runs under `valgrind --tool=callgrind --instr-atstart=no`, builds the app of
TREE (PYTHONPATH), runs its lifespan, sends each path 30 times untimed, then switches counting on
(`callgrind_control -i on`), sends it --requests times, switches it off and dumps. The figure is
the dump's total divided by --requests (the few instructions of the switching itself included).
Slow (valgrind runs Python about 50 times slower: a few minutes per tree). Needs Debian's valgrind.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PATHS = (
    "/api/parcels/search?commune=09244&sheet=7&parcel=212",
    "/api/parcels/search?point=106.08698204275854,21.15071444526574",
    "/ogc/collections/parcels/items?commune_code=09244&sheet_no=7&parcel_no=212&f=json",
)
WARMUP = 30
# A path spelled POST/... is sent as a form-encoded POST of a new report (bench/intake.py's bodies).
POST = "POST"


def _control(*args: str) -> None:
    """callgrind_control on this process; keep running Python meanwhile (valgrind reads the
    command between basic blocks, so a process blocked in wait() would never see it)."""
    proc = subprocess.Popen(["callgrind_control", *args, str(os.getpid())],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while proc.poll() is None:
        sum(range(200))


def child(paths: list[str], requests: int) -> None:
    from urllib.parse import urlencode

    from api.app import create_app

    app = create_app()
    forms = None
    if any(p.startswith(POST) for p in paths):
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import uuid

        from intake import bodies  # bench/intake.py

        forms = bodies(os.environ["GEOIOC_DATABASE_URL"], "cg" + uuid.uuid4().hex[:6])

    async def call(path: str) -> None:
        method, body, headers = "GET", b"", [(b"host", b"127.0.0.1:8000")]
        if path.startswith(POST) and forms is not None:
            method, path, body = "POST", path[len(POST):], urlencode(next(forms).form).encode()
            headers += [(b"content-type", b"application/x-www-form-urlencoded"),
                        (b"content-length", str(len(body)).encode())]
        route, _, qs = path.partition("?")
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
                 "scheme": "http", "path": route, "raw_path": route.encode(), "query_string": qs.encode(),
                 "root_path": "", "headers": headers,
                 "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8000), "state": {}}

        async def receive() -> dict[str, object]:
            return {"type": "http.request", "body": body, "more_body": False}

        statuses: list[int] = []

        async def send(message: dict[str, object]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(int(message["status"]))  # type: ignore[call-overload]

        await app(scope, receive, send)
        if statuses != [200]:
            raise SystemExit(f"bench: {path} -> {statuses}")

    async def run() -> None:
        async with app.router.lifespan_context(app):
            for i, path in enumerate(paths):
                for _ in range(WARMUP):
                    await call(path)
                _control("-i", "on")
                for _ in range(requests):
                    await call(path)
                _control("-i", "off")
                _control(f"--dump=path{i}")

    asyncio.run(run())


def measure(tree: Path, database: str, paths: list[str], requests: int) -> list[float]:
    env = {**os.environ, "PYTHONPATH": str(tree), "GEOIOC_RATE_LIMIT_ANONYMOUS_PER_SECOND": "0",
           "GEOIOC_DATABASE_URL": f"postgresql://geoioc:geoioc@127.0.0.1:5432/{database}",
           "GEOIOC_REPORT_FLOOD_LIMIT": "0"}  # one client sends every report
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(["valgrind", "--tool=callgrind", "--instr-atstart=no",
                               f"--callgrind-out-file={tmp}/cg.%p", sys.executable, __file__,
                               "--child", "--requests", str(requests), *paths],
                              env=env, cwd=tree, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"bench: valgrind failed:\n{proc.stderr[-3000:]}")
        totals: dict[int, float] = {}
        for dump in Path(tmp).glob("cg.*.*"):
            text = dump.read_text(errors="replace")
            which = re.search(r"^desc: Trigger: .*?path(\d+)", text, re.M)
            total = re.search(r"^totals: (\d+)", text, re.M)
            if which and total:
                totals[int(which.group(1))] = int(total.group(1)) / requests
    return [totals[i] for i in range(len(paths))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="*", default=list(DEFAULT_PATHS))
    ap.add_argument("--tree", type=Path, action="append",
                    help="checkout whose app is measured (repeat to compare; default this one)")
    ap.add_argument("--database", default="geoioc_test")
    ap.add_argument("--requests", type=int, default=100)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.paths, args.requests)
        return
    trees = args.tree or [ROOT]
    results = {tree: measure(tree.resolve(), args.database, args.paths, args.requests) for tree in trees}
    print(f"instructions per request ({args.requests} requests after {WARMUP} untimed), "
          f"database {args.database}")
    header = " | ".join(str(t) for t in trees)
    print(f"| path | {header} |" + (" last / first |" if len(trees) > 1 else ""))
    for i, path in enumerate(args.paths):
        row = [results[t][i] for t in trees]
        ratio = f" {row[-1] / row[0]:.3f} |" if len(trees) > 1 else ""
        print(f"| `{path}` | " + " | ".join(f"{v / 1e6:.2f} M" for v in row) + " |" + ratio)


if __name__ == "__main__":
    main()
