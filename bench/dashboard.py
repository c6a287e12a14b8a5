"""The leaders' dashboard's first render: the API calls the page makes once signed in (the KPI
cards and every available chart), and the weekly briefing PDF, on the database of
GEOIOC_DATABASE_URL (the sample, or the sample at a scale).

    PYTHONPATH=. .venv/bin/python bench/dashboard.py [--repeat 5]

In process (FastAPI's TestClient: no network, the server's own work), as a leader (security
events included, so every read is audited too), with the page's default filters (the last 30
days). Each call's median over --repeat runs; "first render" is the sum of the calls (the page
sends them at once, so on a server with several workers the wall time is nearer the slowest).
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid

import psycopg
from fastapi.testclient import TestClient

from api.app import create_app
from gis.auth import api_keys, users
from gis.settings import get_settings

CALLS = {
    "kpis (this week)": "/api/dashboard/kpis",
    "by category (30 days, daily)": "/api/dashboard/series/categories",
    "hour × weekday (30 days)": "/api/dashboard/series/hour-weekday",
    "communes (30 days)": "/api/dashboard/series/communes",
    "by category (1 year, weekly)": "/api/dashboard/series/categories?start=2025-12-01",
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    settings = get_settings()
    name = f"bench-{uuid.uuid4().hex[:6]}"
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        incidents = conn.execute("SELECT count(*) FROM incidents").fetchone()[0]
        users.add_user(conn, name, "bench-password-123", roles=["leader"])
        key = api_keys.create_key(conn, name, "bench", days=1).key
    try:
        app = create_app(settings.model_copy(update={"ingest_in_process": False,
                                                      "jobs_in_process": False}))
        with TestClient(app) as c:
            h = {"X-API-Key": key}
            times: dict[str, float] = {}
            for label, url in {**CALLS, "briefing PDF (province)": "/api/dashboard/briefing.pdf"
                               }.items():
                runs = []
                for _ in range(args.repeat):
                    t = time.perf_counter()
                    r = c.get(url, headers=h)
                    runs.append((time.perf_counter() - t) * 1000)
                    assert r.status_code == 200, (url, r.text[:200])
                times[label] = statistics.median(runs)
    finally:
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            conn.execute("DELETE FROM users WHERE username = %s", (name,))
    print(f"{incidents:,} incidents, median of {args.repeat}\n")
    print("| call | ms |\n|---|---:|")
    for label, ms in times.items():
        print(f"| {label} | {ms:.1f} |")
    first = sum(times[k] for k in list(CALLS)[:4])
    print(f"| **first render (the first four, in sequence)** | **{first:.1f}** |")


if __name__ == "__main__":
    main()
