"""Schemathesis hooks shared by tests/test_schemathesis.py and bench/fuzz.py (loaded by the CLI
through SCHEMATHESIS_HOOKS=<this file>), and the `leaks` check the regression tests use too.

- `no_leak_in_error_body`: an error body never shows a server path, SQL text or a Python repr
  (issue 13). What the request itself carried and the answer echoes back is not a leak.
- counting: with FUZZ_STATS=<file>, every response's status and the operation are counted and
  written there as JSON at exit (bench/fuzz.py reports requests sent and requests/s from it).
"""

from __future__ import annotations

import atexit
import json
import os
import re
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

ROOT = Path(__file__).resolve().parent.parent

_FIXED = [str(ROOT), sys.prefix, "site-packages", "dist-packages", 'File "', "/usr/lib/python",
          tempfile.gettempdir().rstrip("/") + "/", "/.geoioc/"]
_PATTERNS = [
    ("traceback", re.compile(r"Traceback \(most recent call last\)")),
    ("python repr", re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>|<class '[\w.]+'>|<function [\w.]+")),
    ("python repr", re.compile(r"\b[A-Z]\w*(?:Error|Exception)\((?:'|\")")),
    ("sql", re.compile(r"\bSELECT\b[^\n]{0,200}\bFROM\b|\bINSERT INTO\b|\bDELETE FROM\b|"
                       r"\bUPDATE\s+\w+\s+SET\b|syntax error at or near|\bLINE \d+:|psycopg")),
    ("server path", re.compile(r"(?<![\w:.])/(?:srv|home|root|work|opt|var|tmp|usr)/[\w.+-]+")),
]


# Excluded checks, each with its reason (tests/test_schemathesis.py says more):
# positive_data_acceptance expects a 2xx for every value the schema allows, but bbox, CQL2
# filters, datetime intervals and feature ids are valid only by rules JSON Schema cannot state.
EXCLUDED_CHECKS = ("positive_data_acceptance",)
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
# Endless event streams (no parameters to fuzz; a request would only end at its timeout): the
# map's live events, public, so a fuzzer's anonymous request would be answered with a stream.
# tests/test_map_live.py checks them.
ENDLESS = ("/api/map/events",)


def schemathesis_command(url: str, *, max_examples: int, seed: int, workers: int = 2,
                         extra: tuple[str, ...] = ()) -> list[str]:
    """The CLI run of tests/test_schemathesis.py and bench/fuzz.py: the whole of /openapi.json
    (/api and /ogc), every check but EXCLUDED_CHECKS, plus this file's own."""
    return [str(SCHEMATHESIS), "run", f"{url}/openapi.json", "--url", url,
            "--checks", "all", "--exclude-checks", ",".join(EXCLUDED_CHECKS),
            "--max-examples", str(max_examples), "--seed", str(seed), "--workers", str(workers),
            "--request-timeout", "60", "--max-failures", "100", "--no-color",
            "--suppress-health-check", "all", *(f"--exclude-path={p}" for p in ENDLESS),
            *extra]


def schemathesis_env(stats: Path | None = None) -> dict[str, str]:
    """The environment that loads these hooks (and counts into STATS)."""
    env = {**os.environ, "SCHEMATHESIS_HOOKS": str(Path(__file__).resolve())}
    if stats is not None:
        env["FUZZ_STATS"] = str(stats)
    return env


def leaks(body: str, request_text: str = "") -> list[str]:
    """What BODY (an error answer) shows of the server that REQUEST_TEXT did not put there."""
    echoed = unquote_plus(request_text)
    found = []
    for word in _FIXED:
        if word and word in body and word not in echoed:
            found.append(f"server detail {word!r}")
    for kind, pattern in _PATTERNS:
        for m in pattern.finditer(body):
            if m.group(0) not in echoed:
                found.append(f"{kind}: {m.group(0)!r}")
                break
    return found


try:
    import schemathesis

    HAVE_SCHEMATHESIS = True
except ImportError:  # the regression tests use `leaks` alone
    HAVE_SCHEMATHESIS = False

if HAVE_SCHEMATHESIS:

    def _request_text(response: Any) -> str:
        request = response.request
        body = request.body or b""
        if isinstance(body, bytes):
            body = body.decode("utf-8", "replace")
        return f"{request.url} {body}"

    @schemathesis.check
    def no_leak_in_error_body(ctx: Any, response: Any, case: Any) -> bool | None:
        """Error bodies never contain a server path, SQL text or a Python repr."""
        if response.status_code < 400:
            return None
        found = leaks(response.text or "", _request_text(response))
        if found:
            raise AssertionError("error body shows server internals: " + "; ".join(found))
        return None

    _STATS_FILE = os.environ.get("FUZZ_STATS")
    if _STATS_FILE:
        _lock = threading.Lock()
        _statuses: Counter[str] = Counter()
        _operations: Counter[str] = Counter()

        @schemathesis.hook
        def after_call(context: Any, case: Any, response: Any) -> None:
            with _lock:
                _statuses[str(response.status_code)] += 1
                _operations[f"{case.method} {case.path}"] += 1

        @atexit.register
        def _write_stats() -> None:
            with _lock:
                Path(str(_STATS_FILE)).write_text(json.dumps({
                    "requests": sum(_statuses.values()), "statuses": dict(_statuses),
                    "operations": dict(_operations)}))
