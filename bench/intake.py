"""Citizen-report intake through POST /open311/v2/requests, with PostgreSQL restarted mid-run.

Issue 15's benchmark: sustained reports per second on this machine while the database is stopped
and started again in the middle of the run. Afterwards the run proves that every report answered
with a success status is stored (each request carries a unique marker in its description, looked
up in the database), states how many requests were refused during the outage (status and
Retry-After), and the time from the database's return to the first success (target: <= 5 s).

The restart is real and harmless to others: the script starts a throw-away PostgreSQL cluster of
its own (initdb + pg_ctl as the `postgres` user, in a temporary directory, on a free port,
loopback only), copies a migrated and sample-loaded GeoIOC database into it (pg_dump | pg_restore
from --source, default $GEOIOC_DATABASE_URL), and `pg_ctl stop`s / `start`s that cluster. The
machine's shared PostgreSQL on 5432 is only read (the dump). The cluster is removed at the end.

    .venv/bin/python bench/intake.py                       # 1 worker, then 2 (= cores), 60 s each
    .venv/bin/python bench/intake.py --workers 2 --seconds 30 --no-readme
    .venv/bin/python bench/intake.py --stop-mode immediate # a crash and WAL recovery, not a
                                                           # clean shutdown

Server: `geoioc serve --workers W` with the anonymous rate limit off (one client address sends
everything; a flood limit would measure 429s). Client: one asyncio process, --clients
concurrent senders on keep-alive connections (HTTP/1.1 written by hand: `Connection`), each
waiting for its answer before sending the next (closed loop).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import pwd
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import httpx  # noqa: E402
import psycopg  # noqa: E402
from map_server import free_port, write_section  # noqa: E402

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
PG_BIN = Path("/usr/lib/postgresql/15/bin")
DESCRIPTIONS = (
    "Ổ gà lớn giữa đường, xe máy phải tránh", "Đèn đường không sáng từ tối qua",
    "Nước ngập sau mưa lớn, sâu khoảng nửa bánh xe", "Cây đổ chắn một nửa làn đường",
    "Rác thải đổ trộm bên bờ mương", "Đốt rơm rạ gây khói mù mịt khu dân cư",
    "Tiếng ồn từ công trường sau 22 giờ", "Lấn chiếm vỉa hè để kinh doanh",
    "Đèn tín hiệu giao thông tại ngã tư bị hỏng", "Mất nước sinh hoạt từ sáng",
)


# --- the throw-away cluster ----------------------------------------------------------------------


class Cluster:
    """A PostgreSQL 15 cluster of our own: initdb'd in a temporary directory, owned by the
    `postgres` user (initdb refuses root), listening on 127.0.0.1:<free port>, trust auth."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="geoioc-intake-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        pw = pwd.getpwnam("postgres")
        os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self._as_pg(PG_BIN / "initdb", "-D", self.data, "-A", "trust", "-U", "postgres",
                    "-E", "UTF8", "--locale=C.UTF-8")

    def _as_pg(self, *cmd: str | Path) -> str:
        proc = subprocess.run(["runuser", "-u", "postgres", "--", *map(str, cmd)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"bench/intake.py: {' '.join(map(str, cmd))} failed:\n"
                             f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        return proc.stdout

    def postmaster(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def start(self) -> None:
        opts = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                "-c max_connections=200 -c shared_buffers=256MB")
        self._as_pg(PG_BIN / "pg_ctl", "-D", self.data, "-l", self.dir / "log", "-o", opts,
                    "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._as_pg(PG_BIN / "pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "60", "stop")

    def url(self, database: str, user: str = "geoioc") -> str:
        password = ":geoioc" if user == "geoioc" else ""
        return f"postgresql://{user}{password}@127.0.0.1:{self.port}/{database}"

    def remove(self) -> None:
        with contextlib.suppress(SystemExit):
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


# The project's own functions in public (not PostGIS's or another extension's), as regprocedure.
_OWN_FUNCTIONS = """
SELECT p.oid::regprocedure::text FROM pg_proc p
WHERE p.pronamespace = 'public'::regnamespace AND p.proconfig IS NULL AND p.prokind = 'f'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                  AND d.objid = p.oid AND d.deptype = 'e')
"""


def copy_run(cmd: list[str | Path]) -> None:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"bench/intake.py: {' '.join(map(str, cmd))} failed:\n"
                         f"{proc.stderr[-3000:]}")


@contextlib.contextmanager
def throwaway_database(source: str, log=print) -> Iterator[tuple[Cluster, str]]:
    """A cluster holding a copy of SOURCE (roles as scripts/setup.sh makes them), removed after."""
    cluster = Cluster()
    try:
        cluster.start()
        su = cluster.url("postgres", "postgres")
        with psycopg.connect(su, autocommit=True) as conn:
            conn.execute("CREATE ROLE geoioc LOGIN PASSWORD 'geoioc'")
            conn.execute("CREATE ROLE geoioc_app NOLOGIN")
            conn.execute("GRANT geoioc_app TO geoioc")
            conn.execute("CREATE DATABASE geoioc_intake OWNER geoioc")
        parts = urlsplit(source)
        src_su = (f"postgresql://postgres@{parts.hostname or '127.0.0.1'}:{parts.port or 5432}"
                  f"{parts.path}")
        t0 = time.monotonic()
        dumpfile = cluster.dir / "source.dump"
        copy_run(["pg_dump", "-Fc", "-f", dumpfile, "-d", src_su])
        target = cluster.url("geoioc_intake", "postgres")
        copy_run(["pg_restore", "--section=pre-data", "--exit-on-error", "-d", target, dumpfile])
        # pg_restore empties search_path; our SQL functions used by CHECK constraints (e.g.
        # geoioc_geom_ok) name PostGIS unqualified, so the data section would fail. Pin their
        # search_path while the data loads, then reset it (inlining, as in production).
        with psycopg.connect(target, autocommit=True) as conn:
            functions = [r[0] for r in conn.execute(_OWN_FUNCTIONS).fetchall()]
            for f in functions:
                conn.execute(f"ALTER FUNCTION {f} SET search_path = public")
        copy_run(["pg_restore", "--section=data", "--section=post-data", "--exit-on-error",
                  "-d", target, dumpfile])
        with psycopg.connect(target, autocommit=True) as conn:
            for f in functions:
                conn.execute(f"ALTER FUNCTION {f} RESET search_path")
        dumpfile.unlink()
        with psycopg.connect(cluster.url("geoioc_intake", "postgres"), autocommit=True) as conn:
            conn.execute("ANALYZE")
        log(f"copied {parts.path.lstrip('/')} into a throw-away cluster on port {cluster.port} "
            f"({time.monotonic() - t0:.0f} s)")
        yield cluster, cluster.url("geoioc_intake")
    finally:
        cluster.remove()


@contextlib.contextmanager
def serve(db_url: str, workers: int) -> Iterator[tuple[str, int]]:
    """`geoioc serve --workers W` on a free port, the anonymous rate limit off."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "GEOIOC_DATABASE_URL": db_url, "GEOIOC_PORT": str(port),
           "GEOIOC_PUBLIC_URL": url, "GEOIOC_RATE_LIMIT_ANONYMOUS_PER_SECOND": "0",
           # one client address sends every report: the per-address flood limit off
           "GEOIOC_REPORT_FLOOD_LIMIT": "0",
           "GEOIOC_BASEMAP_URL": ""}
    with tempfile.TemporaryFile() as err:
        # --workers only when several: a tree from before the option can be measured too
        # (PYTHONPATH=/other/checkout: the server runs that tree's code).
        more = ["--workers", str(workers)] if workers > 1 else []
        proc = subprocess.Popen([str(Path(sys.executable).parent / "geoioc"), "serve", "--port",
                                 str(port), *more], env=env,
                                stdout=subprocess.DEVNULL, stderr=err)
        try:
            deadline = time.monotonic() + 240  # a start on a busy shared machine
            while True:
                try:
                    if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    err.seek(0)
                    raise RuntimeError("geoioc serve did not start: "
                                       f"{err.read().decode()[-2000:]}")
                time.sleep(0.2)
            yield url, proc.pid
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


# --- CPU accounting (the machine is shared: CPU seconds per report do not depend on others' load)


TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2:].split()


def tree_cpu(root: int) -> float:
    """CPU seconds of ROOT and its descendants: ROOT's own and its reaped children's (cutime,
    cstime: PostgreSQL backends that ended, uvicorn workers), plus the live descendants' own."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                children.setdefault(int(_stat(int(d.name))[1]), []).append(int(d.name))
    f = _stat(root)
    total = sum(int(x) for x in f[11:15])
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        with contextlib.suppress(OSError, IndexError):
            total += sum(int(x) for x in _stat(pid)[11:13])  # reaped ones count in the parent
            todo += children.get(pid, [])
    return total / TICK


def self_cpu() -> float:
    t = os.times()
    return t.user + t.system


# --- the load ------------------------------------------------------------------------------------


@dataclass
class Body:
    marker: str
    form: list[tuple[str, str]]


def bodies(db_url: str, run_id: str, seed: int = 15) -> Iterator[Body]:
    """Endless distinct realistic reports: a random active category with valid attribute values,
    a point inside a random current commune, a Vietnamese description ending in a unique marker."""
    with psycopg.connect(db_url) as conn:
        services = conn.execute("SELECT code, attributes FROM service_categories WHERE active "
                                "ORDER BY code").fetchall()
        # points inside current communes and the province (as the intake's own check sees it)
        points = conn.execute(
            "SELECT ST_X(g), ST_Y(g) FROM (SELECT (ST_Dump(ST_GeneratePoints(geom, 1000, 15))).geom"
            " AS g FROM admin_units WHERE level = 'commune' AND valid_to IS NULL) p WHERE EXISTS"
            " (SELECT 1 FROM admin_units WHERE level = 'province' AND valid_to IS NULL"
            " AND ST_Covers(geom, p.g))").fetchall()
    rng = random.Random(seed)
    n = 0
    while True:
        n += 1
        code, attributes = rng.choice(services)
        lon, lat = rng.choice(points)
        marker = f"bench-intake-{run_id}-{n}"
        form = [("service_code", code), ("lat", f"{lat:.7f}"), ("long", f"{lon:.7f}"),
                ("description", f"{rng.choice(DESCRIPTIONS)} [{marker}]")]
        for a in attributes:
            if a["datatype"] == "number":
                form.append((f"attribute[{a['code']}]", str(rng.randint(5, 80))))
            elif a["datatype"] in ("singlevaluelist", "multivaluelist"):
                form.append((f"attribute[{a['code']}]", rng.choice(a["values"])["key"]))
            elif a["datatype"] == "string" and rng.random() < 0.5:
                form.append((f"attribute[{a['code']}]", f"C-{rng.randint(1, 9999):04d}"))
        if rng.random() < 0.3:
            form += [("first_name", "Nguyễn Văn"), ("last_name", "An"),
                     ("phone", f"09{rng.randint(10_000_000, 99_999_999)}")]
        yield Body(marker, form)


@dataclass
class Result:
    sent_at: float
    latency: float
    status: int  # 0: no HTTP answer (connection error or timeout)
    marker: str
    retry_after: str | None = None
    error: str = ""


@dataclass
class Run:
    results: list[Result] = field(default_factory=list)
    cut_at: float = 0.0
    stopped_at: float = 0.0
    back_at: float = 0.0
    t0: float = 0.0
    t_end: float = 0.0
    warm_acked: set[str] = field(default_factory=set)
    # CPU seconds from the start to the cut: the server's processes, PostgreSQL's, this client
    cpu: tuple[float, float, float] = (0.0, 0.0, 0.0)


class Connection:
    """One keep-alive HTTP/1.1 connection, the request written by hand and the answer read with
    asyncio streams: the load generator shares the 2 cores with the server and the database,
    and httpx cost 3.4 ms of CPU per request here (more than the server's own work), this about
    0.1 ms. Enough HTTP for uvicorn's answers: a status line, headers, a Content-Length or
    chunked body; `Connection: close` or any error closes it (the next request opens another)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def post(self, path: str, body: bytes, timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
        async with asyncio.timeout(timeout):
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            assert self.reader is not None
            self.writer.write(b"POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: "
                              b"application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s"
                              % (path.encode(), self.host.encode(), self.port, len(body), body))
            head = await self.reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            headers: dict[str, str] = {}
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            if "content-length" in headers:
                data = await self.reader.readexactly(int(headers["content-length"]))
            elif headers.get("transfer-encoding", "").lower() == "chunked":
                chunks = []
                while size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16):
                    chunks.append(await self.reader.readexactly(size + 2))
                await self.reader.readuntil(b"\r\n")
                data = b"".join(c[:-2] for c in chunks)
            else:
                data = await self.reader.read()
                headers["connection"] = "close"
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, data


async def sender(conn: Connection, source: Iterator[Body], until: float, run: Run) -> None:
    while time.monotonic() < until:
        body = next(source)
        data = urlencode(body.form).encode()
        t = time.monotonic()
        try:
            status, headers, text = await conn.post("/open311/v2/requests.json", data)
            run.results.append(Result(t, time.monotonic() - t, status, body.marker,
                                      headers.get("retry-after"),
                                      "" if status < 300 else text[:400].decode(errors="replace")[:160]))
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError,
                TimeoutError) as e:
            conn.close()
            run.results.append(Result(t, time.monotonic() - t, 0, body.marker,
                                      error=type(e).__name__))
            await asyncio.sleep(0.05)


async def drive(url: str, server_pid: int, source: Iterator[Body], cluster: Cluster, clients: int,
                seconds: float, down: float, stop_mode: str) -> Run:
    run = Run()
    parts = urlsplit(url)
    conns = [Connection(parts.hostname or "127.0.0.1", parts.port or 80) for _ in range(clients)]
    try:
        # warm-up (not counted): every worker's pool has connections, every code path ran once
        warm = Run()
        await asyncio.gather(*(sender(c, source, time.monotonic() + 2, warm) for c in conns))
        run.warm_acked = {r.marker for r in warm.results if 200 <= r.status < 300}
        cpu0 = (tree_cpu(server_pid), tree_cpu(cluster.postmaster()), self_cpu())
        run.t0 = time.monotonic()
        until = run.t0 + seconds

        async def outage() -> None:
            await asyncio.sleep(seconds / 2 - down / 2)
            run.cut_at = time.monotonic()
            cpu1 = (tree_cpu(server_pid), tree_cpu(cluster.postmaster()), self_cpu())
            run.cpu = (cpu1[0] - cpu0[0], cpu1[1] - cpu0[1], cpu1[2] - cpu0[2])
            await asyncio.to_thread(cluster.stop, stop_mode)
            run.stopped_at = time.monotonic()
            await asyncio.sleep(down)
            await asyncio.to_thread(cluster.start)  # returns once it accepts connections
            run.back_at = time.monotonic()

        await asyncio.gather(outage(), *(sender(c, source, until, run) for c in conns))
        run.t_end = time.monotonic()
    finally:
        for c in conns:
            c.close()
    return run


# --- checking and reporting ----------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] if ordered \
        else float("nan")


def stored_markers(db_url: str, run_id: str) -> set[str]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT substring(description from '\\[(bench-intake-[^]]+)\\]$') "
                            "FROM incidents WHERE description LIKE %s",
                            (f"%[bench-intake-{run_id}-%",)).fetchall()
    return {r[0] for r in rows}


def summarise(run: Run, stored: set[str], workers: int, clients: int, stop_mode: str,
              down: float) -> tuple[dict, list[str]]:
    ok = [r for r in run.results if 200 <= r.status < 300]
    acked = {r.marker for r in ok} | run.warm_acked
    lost = acked - stored
    first_ok_after = min((r.sent_at + r.latency for r in ok if r.sent_at >= run.back_at),
                         default=None)
    recovery = None if first_ok_after is None else first_ok_after - run.back_at
    # the outage window as the clients saw it: from the cut until the first success after return
    outage_end = first_ok_after or run.t_end
    during = [r for r in run.results if run.cut_at <= r.sent_at < outage_end]
    refused: dict[str, int] = {}
    for r in during:
        if not 200 <= r.status < 300:
            key = f"{r.status or r.error}" + (f" Retry-After {r.retry_after}" if r.retry_after
                                              else " no Retry-After")
            refused[key] = refused.get(key, 0) + 1
    other_errors = [r for r in run.results if not 200 <= r.status < 300
                    and not run.cut_at <= r.sent_at < outage_end]
    late = max((r.sent_at + r.latency - run.back_at for r in other_errors
                if r.sent_at >= outage_end), default=None)

    def phase(a: float, b: float) -> tuple[int, float, float, float]:
        done = [r for r in ok if a <= r.sent_at < b]
        lat = [r.latency * 1000 for r in done]
        return len(done), len(done) / max(b - a, 1e-9), statistics.median(lat) if lat else \
            float("nan"), percentile(lat, 99)

    phases = {"before the cut": phase(run.t0, run.cut_at),
              "outage (cut → first success)": phase(run.cut_at, outage_end),
              "after": phase(outage_end, run.t_end),
              "whole run": phase(run.t0, run.t_end)}
    n_before = phases["before the cut"][0]
    per = [c / max(n_before, 1) * 1000 for c in run.cpu]
    capacity = (os.cpu_count() or 1) * 1000 / (per[0] + per[1])
    figures = {"cpu_ms": per, "capacity": capacity, "acked": len(acked), "stored": len(stored),
               "lost": len(lost),
               "stored_not_acked": len(stored - acked), "late": late, "recovery": recovery,
               "refused": refused, "other_errors": len(other_errors), "phases": phases,
               "stop": run.stopped_at - run.cut_at, "down_until_start": run.back_at - run.cut_at}
    lines = [
        f"- **{workers} worker{'s' if workers > 1 else ''}**, {clients} clients, "
        f"{run.t_end - run.t0:.0f} s; PostgreSQL `pg_ctl stop -m {stop_mode}` at "
        f"{run.cut_at - run.t0:.1f} s (took {figures['stop']:.1f} s), started again after "
        f"{down:g} s down, accepting connections {figures['down_until_start']:.1f} s after the cut.",
        f"  - acknowledged (2xx) **{len(acked):,}**, stored {len(stored):,}: **{len(lost)} "
        f"acknowledged but missing**; {len(stored - acked)} stored without a 2xx reaching the "
        "client (warm-up included; e.g. committed as the connection died).",
        f"  - first success **{recovery:.2f} s** after the database accepted connections again"
        if recovery is not None else "  - **no success after the database's return**",
        "  - refused during the outage: " + (", ".join(f"{n:,} × {k}" for k, n in
                                                      sorted(refused.items())) or "none")
        + f"; refused outside the outage (cut → first success): {len(other_errors)}"
        + (f", the last answered {late:.1f} s after the database's return" if late else ""),
        f"  - CPU per stored report before the cut: server {per[0]:.2f} ms, PostgreSQL "
        f"{per[1]:.2f} ms, this client {per[2]:.2f} ms; so {os.cpu_count()} idle cores would "
        f"take **≈ {capacity:.0f} reports/s** (server + database CPU; a capacity estimate, not "
        "a measurement, for a machine not shared)",
        "",
        "  | phase | reports stored | reports/s | p50 ms | p99 ms |",
        "  |---|---:|---:|---:|---:|"]
    for name, (n, rate, p50, p99) in phases.items():
        lines.append(f"  | {name} | {n:,} | **{rate:.0f}** | {p50:.0f} | {p99:.0f} |")
    if other_errors:
        sample = {f"{r.status or r.error} {r.error[:100]}" for r in other_errors[:20]}
        lines.append(f"  - those, e.g.: {'; '.join(sorted(sample)[:3])}")
    return figures, lines


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", default=os.environ.get("GEOIOC_DATABASE_URL"),
                    help="a migrated, sample-loaded GeoIOC database to copy (only read)")
    ap.add_argument("--workers", type=int, nargs="*", default=[1, os.cpu_count() or 2])
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--down", type=float, default=3.0, help="seconds the database stays down")
    ap.add_argument("--stop-mode", choices=("fast", "immediate", "smart"), default="fast")
    ap.add_argument("--no-readme", action="store_true")
    args = ap.parse_args()
    if not args.source:
        raise SystemExit("bench/intake.py: --source or GEOIOC_DATABASE_URL is required")
    if args.seconds > 600 or args.clients > 256 or args.seconds < 4 * args.down:
        raise SystemExit("bench/intake.py: at most 600 s and 256 clients, and long enough around "
                         "the outage (seconds >= 4 x down)")
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load_before = load_average()
    out: list[str] = []
    with throwaway_database(args.source) as (cluster, db_url):
        for workers in args.workers:
            run_id = uuid.uuid4().hex[:8]
            source = bodies(db_url, run_id)
            load_at_start = load_average()  # the neighbours' load, before this run adds its own
            with serve(db_url, workers) as (url, pid):
                run = asyncio.run(drive(url, pid, source, cluster, args.clients, args.seconds,
                                        args.down, args.stop_mode))
            figures, lines = summarise(run, stored_markers(db_url, run_id), workers,
                                       args.clients, args.stop_mode, args.down)
            lines[0] += f" Load average {load_at_start} as it started."
            print("\n".join(lines), flush=True)
            out += lines
    load_after = load_average()
    head = (f"`bench/intake.py` run {started} on this machine ({os.cpu_count()} cores, shared "
            f"with other sessions' work: load average {load_before} before, {load_after} after); "
            f"a throw-away PostgreSQL 15 cluster holding a copy of the sample province, really "
            f"stopped and started mid-run; one asyncio client process (keep-alive HTTP/1.1 "
            f"connections written by hand) on loopback.")
    print(head)
    if not args.no_readme:
        write_section("intake", head + "\n\n" + "\n".join(out))


if __name__ == "__main__":
    main()
