"""Every kind of search at scale 20 (~800,000 parcels), next to the code before issue 14.

    .venv/bin/python bench/search.py --old-code /tmp/search-main     # both, README updated
    .venv/bin/python bench/search.py --requests 50 --no-readme        # this code only, smoke run
    git archive <commit> | tar -x -C /tmp/search-main                 # the code to compare with

Why: issue 14 asks that every search answer under 100 ms at p99 with 800,941 parcels; an owner
search by one word took 461 ms. The cases are what people type: a land user's name (one word,
the full name, each also without diacritics) in the parcel search API (as a land officer: owners
are personal data; an anonymous user must be refused), and in the map's search box a commune's
name, a pre-2025 commune's name, a tourism place, a public facility, a road, a sensor station,
any of those names without diacritics, sheet/parcel numbers and coordinates, each as a land
officer and as an anonymous user; a camera (internal) as a land officer and an operator, and
anonymously, where no camera may be found. Each request is checked (status, and the thing looked
for among the hits); a case with a wrong answer is marked ✗.

Method: `geoioc serve` (one worker) on a free port for this code and, with --old-code, another
for the old code (same Python environment, PYTHONPATH pointing at that checkout; the database
is the same, so the old code also meets this code's indexes: run it once before migrating for
the figures of the old code on the old schema). One client sends sequential requests on a
kept-alive connection; with two servers it alternates them request by request, so that the
machine's load (shared, noisy) falls on both alike; next to the wall clock, the time each
request spent on a CPU (CpuMeter), which that load does not inflate. Each case draws its texts from the data
(seeded), so a case is many different searches, not one cached query. The load average is
printed with the figures. Figures go to bench/README.md between the "bench-search" markers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import math
import os
import platform
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlencode

import orjson
import psycopg
from benchdb import Server, db_url
from map_server import temp_user, write_section

from gis.parcels.common import fold

ROOT = Path(__file__).resolve().parent.parent
Check = Callable[[int, bytes], bool]


def log(msg: str) -> None:
    print(f"[{dt.datetime.now():%H:%M:%S}] {msg}", flush=True)


def _pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(p / 100 * len(s)) - 1))] * 1000 if s else math.nan


@dataclass
class Timings:
    times: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # seconds on a CPU, server + PostgreSQL
    failures: int = 0
    first_failure: str = ""

    def pct(self, p: float) -> float:
        return _pct(self.times, p)

    def cpu_pct(self, p: float) -> float:
        return _pct(self.cpu, p)

    @property
    def ok(self) -> bool:
        return self.failures == 0 and bool(self.times)


class CpuMeter:
    """Time spent on a CPU (nanoseconds, /proc/<pid>/schedstat) by the server's threads and by
    the database's PostgreSQL backends. On a machine shared with other work a request also
    waits for a CPU, which the wall clock counts and this does not: its p99 is the work a
    search takes, the wall clock's what a user would have seen on this machine at that time.
    Requests are sequential and one server answers at a time, so every backend of the database
    counts for the request in flight (this meter's own connection aside). Not counted: waiting
    for the disk (the audit row's commit) and PostgreSQL's background processes."""

    def __init__(self, database: str, pids: list[int]) -> None:
        self.server_pids = pids
        self.conn = psycopg.connect(db_url(database), autocommit=True)
        self.database = database
        self.backends: list[int] = []
        self.refresh()

    def refresh(self) -> None:
        """Backends come and go with the pools: re-read them when a case starts and after its
        untimed requests."""
        self.backends = [r[0] for r in self.conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND backend_type = 'client backend'"
            " AND pid <> pg_backend_pid()", (self.database,))]

    @staticmethod
    def _ns(path: str) -> int:
        try:
            with open(path, "rb") as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return 0

    def now(self) -> int:
        total = sum(self._ns(f"/proc/{pid}/schedstat") for pid in self.backends)
        for pid in self.server_pids:
            try:
                tasks = os.listdir(f"/proc/{pid}/task")
            except OSError:
                continue
            total += sum(self._ns(f"/proc/{pid}/task/{t}/schedstat") for t in tasks)
        return total

    def close(self) -> None:
        self.conn.close()


@dataclass
class Case:
    name: str
    requests: list[tuple[str, Check]]
    key: str | None = None  # X-API-Key of the role the case needs
    role: str = "anonymous"
    by_server: dict[str, Timings] = field(default_factory=dict)


def run(cases: list[Case], servers: dict[str, Server], warmup: int, meter: CpuMeter) -> None:
    conns = {label: http.client.HTTPConnection("127.0.0.1", s.port, timeout=60)
             for label, s in servers.items()}
    for case in cases:
        headers = {"X-API-Key": case.key} if case.key else {}
        for label in servers:
            case.by_server[label] = Timings()
        meter.refresh()
        for i, (path, check) in enumerate(case.requests):
            if i == warmup:
                meter.refresh()
            order = list(servers) if i % 2 == 0 else list(reversed(servers))
            for label in order:
                t = case.by_server[label]
                conn = conns[label]
                cpu0 = meter.now()
                t0 = time.perf_counter()
                conn.request("GET", path, headers=headers)
                r = conn.getresponse()
                body = r.read()
                elapsed = time.perf_counter() - t0
                cpu = (meter.now() - cpu0) / 1e9
                if not check(r.status, body):
                    t.failures += 1
                    t.first_failure = t.first_failure or f"{path} -> {r.status} {body[:300]!r}"
                if i >= warmup:
                    t.times.append(elapsed)
                    t.cpu.append(max(cpu, 0.0))
        summary = ", ".join(f"{label} p50 {t.pct(50):.1f} p99 {t.pct(99):.1f} ms"
                            f" (CPU p50 {t.cpu_pct(50):.1f} p99 {t.cpu_pct(99):.1f})"
                            + ("" if t.ok else f" ({t.failures} WRONG: {t.first_failure})")
                            for label, t in case.by_server.items())
        log(f"{case.name} [{case.role}]: {summary}")
    for c in conns.values():
        c.close()


# --- what the answers must hold ------------------------------------------------------------------


def hits_of(body: bytes) -> list[dict]:
    """The map search's hits, of its flat list and of its groups (full_scale.py reads them too)."""
    doc = orjson.loads(body)
    hits = list(doc.get("results") or [])
    for g in doc.get("groups") or []:
        hits.extend(g.get("results") or [])
    return hits


def map_hit(title: str, layer: str | None = None) -> Check:
    """A hit of the map search with this title (in this layer)."""
    def check(status: int, body: bytes) -> bool:
        return status == 200 and any(h["title"]["vi"] == title and (layer is None or h["layer"] == layer)
                                     for h in hits_of(body))
    return check


def map_id(layer: str, ident: int) -> Check:
    def check(status: int, body: bytes) -> bool:
        return status == 200 and any(h["layer"] == layer and (
            h["id"] == ident or ident in (h["properties"].get("ids") or [])) for h in hits_of(body))
    return check


def map_number(sheet: int, parcel: int) -> Check:
    def check(status: int, body: bytes) -> bool:
        return status == 200 and any(
            h["layer"] == "parcels" and h["properties"]["sheet_no"] == sheet
            and h["properties"]["parcel_no"] == parcel for h in hits_of(body))
    return check


def no_layer(layer: str) -> Check:
    """A hit-list without LAYER: what a caller who may not read it gets (cameras are internal)."""
    def check(status: int, body: bytes) -> bool:
        return status == 200 and all(h["layer"] != layer for h in hits_of(body))
    return check


def refused(status: int, body: bytes) -> bool:
    """The owner search is for land officers: anyone else is refused (401/403), not served."""
    return status in (401, 403)


def coordinate_hit(status: int, body: bytes) -> bool:
    return status == 200 and any(h["kind"] == "coordinate" for h in hits_of(body))


def owner_first(name: str) -> Check:
    """The exact name comes first."""
    def check(status: int, body: bytes) -> bool:
        if status != 200:
            return False
        results = orjson.loads(body)["results"]
        return bool(results) and fold(results[0]["land_user"]) == fold(name)
    return check


def owner_word(word: str) -> Check:
    def check(status: int, body: bytes) -> bool:
        if status != 200:
            return False
        results = orjson.loads(body)["results"]
        return bool(results) and all(word in fold(r["land_user"]) for r in results)
    return check


def has_parcel(pid: int) -> Check:
    def check(status: int, body: bytes) -> bool:
        return status == 200 and any(r["id"] == pid for r in orjson.loads(body)["results"])
    return check


# --- the cases ------------------------------------------------------------------------------------


def build_cases(database: str, n: int, seed: int, keys: dict[str, str]) -> tuple[list[Case], int]:
    rng = random.Random(seed)
    with psycopg.connect(db_url(database)) as conn:
        total = conn.execute("SELECT count(*) FROM parcels").fetchone()[0]
        pct = min(100.0, 100.0 * n * 4 / max(total, 1))
        sampled = conn.execute(
            "SELECT id, commune_code, old_commune_code, sheet_no, parcel_no, land_user"
            " FROM parcels TABLESAMPLE BERNOULLI (%s) REPEATABLE (%s)"
            " WHERE land_user IS NOT NULL ORDER BY id", (pct, seed)).fetchall()
        communes = [r[0] for r in conn.execute(
            "SELECT name FROM admin_units WHERE level = 'commune' AND valid_to IS NULL ORDER BY code")]
        former = [r[0] for r in conn.execute(
            "SELECT o.name FROM admin_units o WHERE o.level = 'commune' AND o.valid_to IS NOT NULL"
            " AND NOT EXISTS (SELECT FROM admin_units c WHERE c.valid_to IS NULL AND c.name = o.name)"
            " ORDER BY o.code")]
        places = [r[0] for r in conn.execute("SELECT name FROM tourism_places ORDER BY id")]
        facilities = [r[0] for r in conn.execute("SELECT name FROM public_facilities ORDER BY id")]
        roads = [r[0] for r in conn.execute(
            "SELECT DISTINCT name FROM roads WHERE name IS NOT NULL ORDER BY name")]
        sensors = conn.execute("SELECT id, code, name FROM sensors ORDER BY id").fetchall()
        cameras = conn.execute("SELECT id, code, name FROM cameras ORDER BY id").fetchall()
        box = conn.execute("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM"
                           " (SELECT ST_Extent(geom) e FROM admin_units WHERE valid_to IS NULL) s"
                           ).fetchone()
    rng.shuffle(sampled)

    def pick(values: list, k: int = n) -> list:
        return [values[rng.randrange(len(values))] for _ in range(k)]

    def keyboard(name: str) -> str:
        """A dash as on a keyboard."""
        return name.replace("–", "-")

    def q(path: str, **params: object) -> str:
        return f"{path}?{urlencode(params, quote_via=quote)}"

    parcels = sampled[:n]
    people = [r[5] for r in sampled]
    # One word: the family name (Nguyễn is a third of the province) or the given name, as
    # written (with diacritics) and without them. At least 3 letters: the API refuses shorter.
    words = [w for w in (p.split()[0 if i % 2 == 0 else -1]
                         for i, p in enumerate(pick(people, 4 * n))) if len(fold(w)) >= 3]
    full = pick(people)
    officer, operator = keys["land_officer"], keys["operator"]
    roles = {"land officer": officer, "anonymous": None}
    # Every name the map box finds, from every searchable public layer, without diacritics.
    named = ([(c, "admin_units") for c in communes + former] + [(c, "tourism_places") for c in places]
             + [(c, "public_facilities") for c in facilities] + [(c, "roads") for c in roads])

    def each_role(name: str, requests: list[tuple[str, Check]]) -> list[Case]:
        return [Case(name, requests, key, role) for role, key in roles.items()]

    cases = [
        Case("owner, one word (parcel search API)", [
            (q("/api/parcels/search", owner=w), owner_word(fold(w))) for w in words[:n]],
            officer, "land officer"),
        Case("owner, one word without diacritics (parcel search API)", [
            (q("/api/parcels/search", owner=fold(w)), owner_word(fold(w))) for w in words[n:2 * n]],
            officer, "land officer"),
        Case("owner, full name (parcel search API)", [
            (q("/api/parcels/search", owner=keyboard(p)), owner_first(p)) for p in full], officer,
            "land officer"),
        Case("owner, full name without diacritics (parcel search API)", [
            (q("/api/parcels/search", owner=fold(p)), owner_first(p)) for p in pick(people)],
            officer, "land officer"),
        Case("owner, one word (parcel search API): refused", [
            (q("/api/parcels/search", owner=w), refused) for w in words[:n]]),
        *each_role("commune + sheet + parcel (parcel search API)", [
            (q("/api/parcels/search", commune=p[2] or p[1], sheet=p[3], parcel=p[4]),
             has_parcel(p[0])) for p in parcels]),
        # With the commune's code as on the certificate, or without a commune (every commune).
        *each_role("map box: sheet/parcel \"12/345 09244\" or \"12/345\"", [
            (q("/api/search", q=f"{p[3]}/{p[4]} {p[2] or p[1]}"), map_id("parcels", p[0]))
            if i % 2 == 0 else (q("/api/search", q=f"{p[3]}/{p[4]}"), map_number(p[3], p[4]))
            for i, p in enumerate(parcels)]),
        *each_role("map box: commune name", [
            (q("/api/search", q=keyboard(c)), map_hit(c, "admin_units")) for c in pick(communes)]),
        *each_role("map box: pre-2025 commune name", [
            (q("/api/search", q=keyboard(c)), map_hit(c, "admin_units")) for c in pick(former)]),
        *each_role("map box: tourism place", [
            (q("/api/search", q=keyboard(c)), map_hit(c, "tourism_places")) for c in pick(places)]),
        *each_role("map box: public facility", [
            (q("/api/search", q=keyboard(c)), map_hit(c, "public_facilities"))
            for c in pick(facilities)]),
        *each_role("map box: road name", [
            (q("/api/search", q=keyboard(c)), map_hit(c, "roads")) for c in pick(roads)]),
        *each_role("map box: sensor station (code)", [
            (q("/api/search", q=s[1].lower()), map_id("sensors", s[0])) for s in pick(sensors)]),
        *each_role("map box: any of the names above, without diacritics", [
            (q("/api/search", q=fold(keyboard(c))), map_hit(c, layer)) for c, layer in pick(named)]),
        Case("map box: camera name", [
            (q("/api/search", q=keyboard(c[2])), map_hit(c[2], "cameras")) for c in pick(cameras)],
            officer, "land officer"),
        Case("map box: camera name", [
            (q("/api/search", q=keyboard(c[2])), map_hit(c[2], "cameras")) for c in pick(cameras)],
            operator, "operator"),
        # Cameras are internal: the same texts find other things, never a camera.
        Case("map box: camera name (cameras hidden)", [
            (q("/api/search", q=keyboard(c[2])), no_layer("cameras")) for c in pick(cameras)]),
        *each_role("map box: coordinates", [
            (q("/api/search", q=f"{rng.uniform(box[1], box[3]):.5f}, {rng.uniform(box[0], box[2]):.5f}"),
             coordinate_hit) for _ in range(n)]),
    ]
    return cases, total


def table(cases: list[Case], labels: list[str]) -> str:
    head = ("| search | as | requests |"
            + "".join(f" {lb} p50 ms | {lb} p99 ms | {lb} CPU p50 | {lb} CPU p99 |" for lb in labels)
            + " ok |")
    lines = [head, "|---|---|---:|" + "---:|---:|---:|---:|" * len(labels) + ":-:|"]
    for c in cases:
        first = c.by_server[labels[0]]
        cells = "".join(f" {c.by_server[lb].pct(50):.1f} | {c.by_server[lb].pct(99):.1f} |"
                        f" {c.by_server[lb].cpu_pct(50):.1f} | {c.by_server[lb].cpu_pct(99):.1f} |"
                        for lb in labels)
        ok = "".join("✓" if c.by_server[lb].ok else "✗" for lb in labels)
        lines.append(f"| {c.name} | {c.role} | {len(first.times)} |{cells} {ok} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database", default="geoioc_bench20")
    ap.add_argument("--old-code", type=Path, help="a checkout of the code to compare with")
    ap.add_argument("--old-label", default="before")
    ap.add_argument("--new-label", default="after")
    ap.add_argument("--requests", type=int, default=400, help="timed requests per case and server")
    ap.add_argument("--warmup", type=int, default=20, help="untimed requests first, per case")
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--old-only", action="store_true",
                    help="only the old code (its figures on a schema this code cannot run on)")
    ap.add_argument("--cases", default="", help="only the cases whose name contains this text")
    ap.add_argument("--no-readme", action="store_true")
    args = ap.parse_args()

    url = db_url(args.database)
    with psycopg.connect(url) as conn:
        revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]
        pg = conn.execute("SHOW server_version").fetchone()[0]
    load_before = os.getloadavg()
    with temp_user(url, "land_officer") as (_, _, officer), temp_user(url, "operator") as (_, _, op):
        cases, total = build_cases(args.database, args.requests + args.warmup, args.seed,
                                   {"land_officer": officer, "operator": op})
        cases = [c for c in cases if args.cases in c.name]
        log(f"{total:,} parcels, schema {revision}; {len(cases)} cases of "
            f"{args.requests} timed requests (+{args.warmup} untimed)")
        servers: dict[str, Server] = {}
        if args.old_code:
            servers[args.old_label] = Server(args.database, args.old_code.resolve())
        if not args.old_only:
            servers[args.new_label] = Server(args.database)
        try:
            for s in servers.values():
                s.__enter__()
            meter = CpuMeter(args.database, [s.proc.pid for s in servers.values()])
            started = time.monotonic()
            try:
                run(cases, servers, args.warmup, meter)
            finally:
                meter.close()
            took = time.monotonic() - started
        finally:
            for s in servers.values():
                s.__exit__()
    load_after = os.getloadavg()
    labels = list(servers)
    result = table(cases, labels)
    last = labels[-1]
    worst = max(c.by_server[last].pct(99) for c in cases)
    worst_cpu = max(c.by_server[last].cpu_pct(99) for c in cases)
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "?") if Path("/proc/cpuinfo").exists() else "?"
    machine = (f"{platform.machine()} ({cpu}), {os.cpu_count()} CPUs shared with other work, "
               f"Python {platform.python_version()}, PostgreSQL {pg}")
    load = (f"load average {load_before[0]:.2f} / {load_before[1]:.2f} / {load_before[2]:.2f} "
            f"(1/5/15 min) before the run, {load_after[0]:.2f} / {load_after[1]:.2f} / "
            f"{load_after[2]:.2f} after; {took:.0f} s")
    text = "\n".join([
        f"`bench/search.py` run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC: database "
        f"`{args.database}` = **{total:,} parcels**, schema revision {revision}; "
        + (f"`{args.old_label}` = the code of `{args.old_code}`, " if args.old_code else "")
        + ("" if args.old_only else f"`{args.new_label}` = this code; ")
        + "one `geoioc serve` worker each, one client, sequential requests on a kept-alive "
        f"connection{', alternating the servers' if args.old_code else ''}; "
        f"{args.warmup} untimed requests first per case; {machine}; {load}.",
        "",
        result,
        "",
        f"- Slowest p99 of `{last}`: {worst:.1f} ms wall clock, {worst_cpu:.1f} ms on a CPU "
        "(goal < 100 ms).",
        "- CPU = time on a CPU of the server's threads and the database's PostgreSQL backends "
        "during the request (/proc/<pid>/schedstat, ms): the work, without the waits for a CPU "
        "that other work on the machine causes, nor the wait for the disk.",
    ])
    print(text)
    if not args.no_readme:
        write_section("search", text)
        log("figures written to bench/README.md")
    if not all(c.by_server[last].ok for c in cases):
        sys.exit(1)


if __name__ == "__main__":
    main()
