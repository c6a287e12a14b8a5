"""Citizen reports in the sample province: a few hundred Open311 requests over the last
REPORT_DAYS days before as_of, in every workflow status, each with its transitions.

They are made by the domain itself (gis.reports.intake.create, workflow.transition, assign), fed
their events in time order with the event's time as `at`: routing, SLA deadlines, duplicate
detection and the stored transitions are the ones the live service would have produced. A few
reports are planted as repeats (same service, ~20 m and a few hours after an open report) so
the duplicate links exist. Events after the sample's "now" (as_of midnight UTC) are not played:
what is still open stays open, some past their deadline.

The reference data (service categories, agencies: sample_data/*.json) is loaded first.
"""

from __future__ import annotations

import datetime as dt
import heapq
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg

from gis.reports import intake, reference, workflow
from gis.sample.common import stream
from gis.sample.names import person_names

REPORTS = 360
REPORT_DAYS = 120
PLANTED_DUPLICATES = 12
STALL = 0.06  # chance that a report stops at a given step of its chain
OPERATORS = ("dieuhanh01", "dieuhanh02", "dieuhanh03")
DESCRIPTIONS = ("Đề nghị cơ quan chức năng kiểm tra, xử lý sớm.",
                "Tình trạng kéo dài nhiều ngày, ảnh hưởng đến người dân.",
                "Rất nguy hiểm, nhất là vào buổi tối.",
                "Mong được xử lý dứt điểm.")


@dataclass(order=True)
class _Event:
    at: dt.datetime
    seq: int
    report: int
    action: str  # create | verify | reject | start | resolve | close | reopen | reassign


def _points(conn: psycopg.Connection, codes: list[str], seeds: list[int]) -> list[tuple[float, float]]:
    rows = conn.execute(
        "SELECT ST_X(ST_GeometryN(ST_GeneratePoints(a.geom, 1, u.seed), 1)),"
        " ST_Y(ST_GeometryN(ST_GeneratePoints(a.geom, 1, u.seed), 1))"
        " FROM unnest(%s::text[], %s::int[]) WITH ORDINALITY AS u(code, seed, i)"
        " JOIN admin_units a ON a.code = u.code AND a.level = 'commune' AND a.valid_to IS NULL"
        " ORDER BY u.i", (codes, seeds)).fetchall()
    return [(float(r[0]), float(r[1])) for r in rows]


def load(conn: psycopg.Connection, as_of: dt.date, seed: int, province_srid: int) -> int:
    """Load the reference data and play the sample's reports; returns how many were made."""
    reference.load(conn)
    rng = stream(seed, "reports")
    services = reference.services(conn)
    sla = {s["code"]: int(s["sla_hours"]) for s in services}
    communes = conn.execute("SELECT code, coalesce(population, 1) FROM admin_units WHERE "
                            "level = 'commune' AND valid_to IS NULL ORDER BY code").fetchall()
    weights = np.array([float(c[1]) for c in communes])
    now = dt.datetime.combine(as_of, dt.time(), dt.UTC)
    n = REPORTS
    svc = [services[i]["code"] for i in rng.integers(0, len(services), n)]
    where = rng.choice(len(communes), n, p=weights / weights.sum())
    points = _points(conn, [communes[i][0] for i in where],
                     [int(s) for s in rng.integers(1, 2**31 - 1, n)])
    # Planted repeats: the last PLANTED_DUPLICATES reports copy an earlier one, ~20 m away.
    # Half of them in the last three weeks: the open part of the workflow is recent.
    days = np.where(rng.random(n) < 0.5, rng.uniform(0, 21, n), rng.uniform(0, REPORT_DAYS, n))
    start = [now - dt.timedelta(days=float(d)) for d in days]
    for k in range(n - PLANTED_DUPLICATES, n):
        j = int(rng.integers(0, n - PLANTED_DUPLICATES))
        svc[k] = svc[j]
        lon, lat = points[j]
        points[k] = (lon + 0.00015, lat + 0.0001)
        start[k] = start[j] + dt.timedelta(hours=float(rng.uniform(0.5, 20)))
    names, _ = person_names(rng, n)
    named = rng.random(n) < 0.6
    phones = [f"09{int(x):08d}" for x in rng.integers(0, 10**8, n)]

    events: list[_Event] = []
    seq = 0

    def add(at: dt.datetime, report: int, action: str) -> None:
        nonlocal seq
        seq += 1
        if at < now:
            heapq.heappush(events, _Event(at, seq, report, action))

    for k in range(n):
        add(start[k], k, "create")
    ids: dict[int, int] = {}
    chains: dict[int, list[tuple[float, str]]] = {}
    for k in range(n):
        if k >= n - PLANTED_DUPLICATES:
            chains[k] = []  # a repeat waits on its original
            continue
        hours = sla[svc[k]]
        u = rng.random()
        verify_h = float(rng.lognormal(np.log(2.0), 0.8))
        if u < 0.1:
            chain = [(verify_h, "reject"), (72.0, "close")]
        else:
            chain = [(verify_h, "verify"), (float(rng.lognormal(np.log(4.0), 0.7)), "start"),
                     (hours * float(rng.lognormal(np.log(0.6), 0.6)), "resolve")]
            if rng.random() < 0.06:
                chain += [(float(rng.uniform(4, 40)), "reopen"), (hours * 0.5, "resolve")]
            if rng.random() < 0.05:
                chain.insert(2, (1.0, "reassign"))
            chain.append((float(rng.uniform(120, 480)), "close"))
        # A backlog: some reports wait at some step (never verified, never started, ...).
        stall = rng.random(len(chain)) < STALL
        chains[k] = chain[:int(np.argmax(stall))] if stall.any() else chain

    def operator() -> str:
        return OPERATORS[int(rng.integers(0, len(OPERATORS)))]

    notes = {"reject": "Không thuộc thẩm quyền hoặc thông tin không chính xác.",
             "resolve": "Đã xử lý xong, đề nghị người dân kiểm tra lại.",
             "start": "Đã cử cán bộ đến hiện trường.", "reopen": "Người dân phản ánh chưa xử lý xong.",
             "close": None, "verify": None, "reassign": "Chuyển đơn vị có thẩm quyền."}
    while events:
        e = heapq.heappop(events)
        k = e.report
        if e.action == "create":
            lon, lat = points[k]
            given = {"depth_cm": [str(int(rng.integers(10, 60)))]} if svc[k] == "flooding" else {}
            report = intake.NewReport(
                service_code=svc[k], lat=repr(lat), lon=repr(lon), attributes=given,
                description=DESCRIPTIONS[int(rng.integers(0, len(DESCRIPTIONS)))],
                first_name=str(names[k]).rsplit(" ", 1)[-1] if named[k] else None,
                last_name=str(names[k]).rsplit(" ", 1)[0] if named[k] else None,
                phone=phones[k] if named[k] else None)
            created = intake.create(conn, report, province_srid=province_srid, at=e.at,
                                    token=f"sample{seed:03d}r{k:05d}")
            ids[k] = created.id
        else:
            _play(conn, ids[k], e.action, e.at, operator(), notes[e.action], k)
        if chains.get(k):
            delay, action = chains[k].pop(0)
            add(e.at + dt.timedelta(hours=max(delay, 0.05)), k, action)
    return len(ids)


def _play(conn: psycopg.Connection, incident_id: int, action: str, at: dt.datetime, actor: str,
          note: str | None, k: int) -> None:
    to = {"verify": "verified", "reject": "rejected", "start": "in_progress",
          "resolve": "resolved", "close": "closed", "reopen": "assigned"}
    if action == "reassign":
        row = conn.execute("SELECT commune_code FROM incidents WHERE id = %s",
                           (incident_id,)).fetchone()
        current: Any = conn.execute("SELECT agency_code, service_code FROM incidents WHERE id = %s",
                                    (incident_id,)).fetchone()
        other = conn.execute("SELECT code FROM agencies WHERE %s = ANY (categories) AND code <> %s"
                             " AND communes IS NULL ORDER BY code LIMIT 1",
                             (current[1], current[0])).fetchone()
        if row and other:
            workflow.assign(conn, incident_id, other[0], actor=actor, note=note, at=at)
        return
    workflow.transition(conn, incident_id, to[action], actor=actor, note=note, at=at,
                        reopen_days=7)
