"""The long fuzzing run (issue 13): Schemathesis over the whole /openapi.json (/api and /ogc) of a
fresh `geoioc serve` on loopback, with every check of tests/test_schemathesis.py, until a request
budget is spent (at least 20,000 generated requests by default). Prints the requests sent, the
failures by kind and the requests per second, and writes them to bench/README.md (section
bench-fuzz).

    .venv/bin/python bench/fuzz.py [--requests 20000] [--examples 150] [--db URL] [--no-write]

Rounds of `schemathesis run` with a new seed each, until the budget is reached (or --max-minutes
passes): one round covers every operation with up to EXAMPLES cases per phase. Requests are
anonymous (nothing is written to the database).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from fuzz_hooks import EXCLUDED_CHECKS, schemathesis_command, schemathesis_env  # noqa: E402
from map_server import DEFAULT_DB, serve, write_section  # noqa: E402


def failures_of(junit: Path) -> Counter[str]:
    """Failures by kind (the check's title, the first line of each failure in the JUnit report)."""
    kinds: Counter[str] = Counter()
    if not junit.exists():
        return kinds
    for case in ET.parse(junit).getroot().iter("testcase"):
        for failure in [*case.iter("failure"), *case.iter("error")]:
            text = failure.get("message") or failure.text or "failure"
            if failure.tag == "error":  # Schemathesis's own trouble (no request involved)
                kinds["Schemathesis internal error (not a response)"] += 1
                continue
            for title in re.findall(r"^\s*(?:- |\d+\. )?([A-Z][^\n:]{3,60})\n", text, re.M) or [text[:60]]:
                kinds[title.strip()] += 1
    return kinds


def run(url: str, budget: int, examples: int, max_minutes: float, workers: int,
        log_dir: Path | None = None) -> dict[str, object]:
    sent = 0
    statuses: Counter[str] = Counter()
    operations: set[str] = set()
    kinds: Counter[str] = Counter()
    rounds = 0
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        while sent < budget and time.monotonic() - started < max_minutes * 60:
            stats, junit = Path(tmp) / f"stats-{rounds}.json", Path(tmp) / f"junit-{rounds}.xml"
            cmd = schemathesis_command(url, max_examples=examples, seed=1000 + rounds, workers=workers,
                                       extra=("--report", "junit", "--report-junit-path", str(junit)))
            r = subprocess.run(cmd, env=schemathesis_env(stats), capture_output=True, text=True, cwd=tmp)
            rounds += 1
            if log_dir is not None:  # Schemathesis's report of the round: each failure with a curl
                log_dir.mkdir(parents=True, exist_ok=True)
                (log_dir / f"round-{rounds}.txt").write_text(r.stdout + r.stderr)
            counted = json.loads(stats.read_text()) if stats.exists() else {"requests": 0}
            sent += int(counted["requests"])
            statuses.update(counted.get("statuses", {}))
            operations.update(counted.get("operations", {}))
            kinds.update(failures_of(junit))
            if r.returncode != 0 and not kinds:
                kinds["schemathesis exited " + str(r.returncode)] += 1
                print(r.stdout[-3000:], r.stderr[-2000:], file=sys.stderr)
            print(f"round {rounds}: {sent} requests so far, exit {r.returncode}", flush=True)
    seconds = time.monotonic() - started
    return {"requests": sent, "seconds": round(seconds, 1), "per_second": round(sent / seconds, 1),
            "rounds": rounds, "operations": len(operations), "statuses": dict(sorted(statuses.items())),
            "failures": dict(kinds), "examples": examples, "workers": workers}


def report(result: dict[str, object]) -> str:
    statuses = ", ".join(f"{k}: {v}" for k, v in result["statuses"].items())  # type: ignore[attr-defined]
    failures = result["failures"]
    lines = [
        f"Schemathesis {_version()} over `/openapi.json` (every `/api` and `/ogc` operation; "
        f"{result['operations']} method and path pairs requested, undocumented methods included), "
        "anonymous, {result['workers']} workers, up to "
        f"{result['examples']} examples per operation and phase, {result['rounds']} rounds with a new "
        f"seed each; checks: all but {', '.join(EXCLUDED_CHECKS)}, plus `no_leak_in_error_body`.",
        "",
        "| requests sent | time | requests/s | failures |",
        "|---:|---:|---:|---|",
        f"| {result['requests']} | {result['seconds']} s | {result['per_second']} | "
        + (", ".join(f"{k}: {v}" for k, v in failures.items()) if failures else "none")  # type: ignore[attr-defined]
        + " |",
        "",
        f"Statuses answered: {statuses}.",
    ]
    return "\n".join(lines)


def _version() -> str:
    from importlib.metadata import version

    return version("schemathesis")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=20_000, help="request budget (at least)")
    ap.add_argument("--examples", type=int, default=150, help="examples per operation and phase")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--max-minutes", type=float, default=60)
    ap.add_argument("--db", default=DEFAULT_DB)
    ap.add_argument("--log-dir", type=Path, help="keep each round's Schemathesis report here")
    ap.add_argument("--no-write", action="store_true", help="print only, leave bench/README.md")
    args = ap.parse_args()
    with serve(args.db) as url:
        result = run(url, args.requests, args.examples, args.max_minutes, args.workers, args.log_dir)
    print(json.dumps(result, indent=2))
    text = report(result)
    print(text)
    if not args.no_write:
        write_section("fuzz", text)


if __name__ == "__main__":
    main()
