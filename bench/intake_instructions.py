"""CPU instructions the whole server process spends per citizen report (uvicorn's HTTP parsing,
the app, psycopg), counted by valgrind (callgrind): the per-report figure of bench/intake.py's
server that a busy machine does not move.

    .venv/bin/python bench/intake_instructions.py                  # this tree, 300 reports
    .venv/bin/python bench/intake_instructions.py --tree-h11 /old/checkout --tree .

bench/instructions.py counts the ASGI app alone; here `geoioc serve` itself runs under
`valgrind --tool=callgrind --instr-atstart=no` on $GEOIOC_DATABASE_URL (a migrated,
sample-loaded database of your own: the reports are stored in it), gets 60 untimed reports,
then counting is switched on (`callgrind_control -i on`), --reports distinct reports (bench/
intake.py's bodies) are POSTed on --connections keep-alive connections, and the dump's total is
divided by their number. The in-process job worker is off (GEOIOC_JOBS_IN_PROCESS=false): its
polls every second would count more the slower valgrind runs. PostgreSQL's share is not in it
(another process: bench/intake.py counts its CPU time).

--tree-h11: uvicorn takes httptools whenever it is installed; a tree from before `geoioc serve`
chose it ran h11 (httptools was not installed), and this measures it that way.
Slow: a few minutes per tree.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import httpx  # noqa: E402
from intake import Connection, bodies  # noqa: E402
from map_server import free_port  # noqa: E402

WARMUP = 60


def _post_all(port: int, forms: list[bytes], connections: int) -> list[int]:
    async def one(share: list[bytes], out: list[int]) -> None:
        conn = Connection("127.0.0.1", port)
        try:
            for body in share:
                status, _, _ = await conn.post("/open311/v2/requests.json", body, timeout=600)
                out.append(status)
        finally:
            conn.close()

    async def run() -> list[int]:
        out: list[int] = []
        await asyncio.gather(*(one(forms[i::connections], out) for i in range(connections)))
        return out

    return asyncio.run(run())


def measure(tree: Path, db_url: str, reports: int, connections: int, hide_httptools: bool) -> float:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        path = [str(tree)]
        if hide_httptools:
            (Path(tmp) / "httptools").mkdir()
            (Path(tmp) / "httptools" / "__init__.py").write_text(
                "raise ImportError('hidden by bench/intake_instructions.py --tree-h11')\n")
            path.append(tmp)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(path), "GEOIOC_DATABASE_URL": db_url,
               "GEOIOC_PORT": str(port), "GEOIOC_PUBLIC_URL": f"http://127.0.0.1:{port}",
               "GEOIOC_RATE_LIMIT_ANONYMOUS_PER_SECOND": "0", "GEOIOC_REPORT_FLOOD_LIMIT": "0",
               "GEOIOC_BASEMAP_URL": "", "GEOIOC_JOBS_IN_PROCESS": "false"}
        geoioc = Path(sys.executable).parent / "geoioc"
        with open(Path(tmp) / "stderr", "w") as err:
            proc = subprocess.Popen(["valgrind", "--tool=callgrind", "--instr-atstart=no",
                                     f"--callgrind-out-file={tmp}/cg.%p", sys.executable,
                                     str(geoioc), "serve", "--port", str(port)],
                                    env=env, cwd=tree, stdout=subprocess.DEVNULL, stderr=err)
        try:
            deadline = time.monotonic() + 900
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("bench: the server did not start under valgrind:\n"
                                     + (Path(tmp) / "stderr").read_text()[-3000:])
                time.sleep(1)
            source = bodies(db_url, "cg" + uuid.uuid4().hex[:6])
            warm = [urlencode(next(source).form).encode() for _ in range(WARMUP)]
            counted = [urlencode(next(source).form).encode() for _ in range(reports)]
            if set(_post_all(port, warm, connections)) != {200}:
                raise SystemExit("bench: a warm-up report was not accepted")
            # valgrind reads a command between basic blocks: the idle server (blocked in epoll)
            # is woken by a request until it has taken it (not counted: counting is still off).
            control = subprocess.Popen(["callgrind_control", "-i", "on", str(proc.pid)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            while control.poll() is None:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=60)
            statuses = _post_all(port, counted, connections)
            subprocess.run(["callgrind_control", "--dump=counted", str(proc.pid)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            if set(statuses) != {200}:
                raise SystemExit(f"bench: answers {sorted(set(statuses))}")
        finally:
            proc.terminate()
            proc.wait(120)
        total = 0
        for dump in Path(tmp).glob("cg.*"):
            text = dump.read_text(errors="replace")
            if re.search(r"^desc: Trigger: .*counted", text, re.M):
                found = re.search(r"^totals: (\d+)", text, re.M)
                total += int(found.group(1)) if found else 0
    return total / reports


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tree", dest="trees", action="append", type=lambda p: (Path(p), False),
                    help="checkout whose server is measured (repeat to compare; default this one)")
    ap.add_argument("--tree-h11", dest="trees", action="append", type=lambda p: (Path(p), True),
                    help="the same, with httptools hidden (see above)")
    ap.add_argument("--reports", type=int, default=300)
    ap.add_argument("--connections", type=int, default=4)
    args = ap.parse_args()
    db_url = os.environ.get("GEOIOC_DATABASE_URL")
    if not db_url:
        raise SystemExit("bench: GEOIOC_DATABASE_URL (a database of your own) is required")
    print(f"instructions per report of the server process ({args.reports} reports on "
          f"{args.connections} keep-alive connections, after {WARMUP} untimed)")
    print("| tree | instructions | / first |\n|---|---:|---:|")
    first = None
    for tree, hide in args.trees or [(ROOT, False)]:
        value = measure(tree.resolve(), db_url, args.reports, args.connections, hide)
        first = first or value
        print(f"| {tree}{' (h11)' if hide else ''} | {value / 1e6:.2f} M | {value / first:.3f} |",
              flush=True)


if __name__ == "__main__":
    main()
