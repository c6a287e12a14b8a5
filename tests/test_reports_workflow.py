"""The incident workflow: every allowed move and every refused one (409), routing and
reassignment, reopening within the configured days, every transition stored (and handed to the
notification hook once), SLA deadlines and overdue reports across Vietnamese day boundaries,
duplicate linking and unlinking.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from gis.reports import deadlines, intake, workflow
from gis.reports.errors import IllegalTransition
from gis.reports.queries import CLOSED_STATUSES
from layers.catalogue import INCIDENT_STATUSES

VN = dt.timezone(dt.timedelta(hours=7))
AGENCY = "TEST-WF"
STATUSES = list(workflow.ALLOWED)
LEGAL = [(a, b) for a in STATUSES for b in sorted(workflow.ALLOWED[a])]
ILLEGAL = [(a, b) for a in STATUSES for b in STATUSES if b not in workflow.ALLOWED[a]]


@pytest.fixture(scope="module")
def place(conn) -> dict[str, Any]:
    """A current commune, a point inside it, and a test agency handling potholes there only."""
    code, lon, lat = conn.execute(
        "SELECT code, ST_X(p), ST_Y(p) FROM (SELECT code, ST_PointOnSurface(geom) AS p FROM"
        " admin_units WHERE level = 'commune' AND valid_to IS NULL ORDER BY code LIMIT 1) q"
    ).fetchone()
    conn.execute("DELETE FROM agencies WHERE code = %s", (AGENCY,))
    conn.execute("INSERT INTO agencies (code, name_vi, name_en, categories, communes)"
                 " VALUES (%s, 'Đơn vị kiểm thử', 'Test agency', '{street_light}', %s)",
                 (AGENCY, [code]))
    yield {"commune": code, "lon": float(lon), "lat": float(lat)}
    conn.execute("DELETE FROM incidents WHERE title LIKE 'Kiểm thử quy trình%%'"
                 " OR agency_code = %s", (AGENCY,))
    conn.execute("DELETE FROM incident_transitions WHERE agency_code = %s", (AGENCY,))
    conn.execute("DELETE FROM agencies WHERE code = %s", (AGENCY,))


def make(conn, place: dict[str, Any], status: str, *, service: str = "pothole",
         reported: dt.datetime | None = None, resolved_ago: dt.timedelta | None = None,
         agency: str | None = None, expected: dt.datetime | None = None, dlon: float = 0.0) -> int:
    """An incident of SERVICE in STATUS, written directly (the starting point of a move)."""
    answered = None
    if status in CLOSED_STATUSES:
        answered = dt.datetime.now(dt.UTC) - (resolved_ago or dt.timedelta(hours=1))
    reported = reported or (answered or dt.datetime.now(dt.UTC)) - dt.timedelta(hours=3)
    row = conn.execute(
        "INSERT INTO incidents (category, severity, status, source, title, commune_code,"
        " reported_at, resolved_at, geom, service_code, expected_at, agency_code, updated_at)"
        " SELECT s.incident_category, 2, %s, 'citizen_app', 'Kiểm thử quy trình', %s, %s, %s,"
        " ST_SetSRID(ST_MakePoint(%s, %s), 4326), s.code,"
        " COALESCE(%s, geoioc_sla_deadline(%s, s.sla_hours)), %s, %s"
        " FROM service_categories s WHERE s.code = %s RETURNING id",
        (status, place["commune"], reported, answered, place["lon"] + dlon, place["lat"],
         expected, reported, agency or (AGENCY if status in ("assigned", "in_progress") else None),
         reported, service)).fetchone()
    return int(row[0])


def transitions(conn, incident_id: int) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT kind, from_status, to_status, agency_code, actor, note"
                        " FROM incident_transitions WHERE incident_id = %s ORDER BY at, id",
                        (incident_id,)).fetchall()


def status(conn, incident_id: int) -> tuple[str, str | None, Any]:
    return conn.execute("SELECT status, agency_code, resolved_at FROM incidents WHERE id = %s",
                        (incident_id,)).fetchone()


def test_the_workflow_table_covers_the_catalogue() -> None:
    assert set(workflow.ALLOWED) == set(INCIDENT_STATUSES)
    assert all(to in workflow.ALLOWED for tos in workflow.ALLOWED.values() for to in tos)
    assert workflow.ALLOWED["closed"] == frozenset()


@pytest.mark.parametrize(("start", "to"), LEGAL)
def test_each_legal_transition(client, conn, keys, place, start: str, to: str) -> None:
    incident = make(conn, place, start, service="street_light")
    r = client.post(f"/api/incidents/{incident}/transitions", headers=keys["operator"],
                    json={"status": to, "note": "Kiểm thử"})
    assert r.status_code == 200, r.text
    stored = transitions(conn, incident)
    assert stored[0][:3] == ("status", start, to) and stored[0][5] == "Kiểm thử"
    assert stored[0][4] == r.json()["transitions"][0]["actor"] != "system"
    now, agency, answered = status(conn, incident)
    if to == "verified":  # routed at once: the test agency handles street lights in this commune
        assert now == "assigned" and agency == AGENCY
        assert stored[1][:4] == ("status", "verified", "assigned", AGENCY) and stored[1][4] == "system"
    else:
        assert now == to and len(stored) == 1
    assert (answered is not None) == (now in CLOSED_STATUSES)
    timeline = client.get(f"/api/incidents/{incident}/timeline", headers=keys["operator"]).json()
    assert [(t["from_status"], t["to_status"]) for t in timeline["transitions"]] == \
        [(s[1], s[2]) for s in stored]


@pytest.mark.parametrize(("start", "to"), ILLEGAL)
def test_each_illegal_transition_is_409(client, conn, keys, place, start: str, to: str) -> None:
    incident = make(conn, place, start, service="street_light")
    r = client.post(f"/api/incidents/{incident}/transitions", headers=keys["operator"],
                    json={"status": to})
    assert r.status_code == 409, r.text
    body = r.json()
    assert body["code"] == "IllegalTransition" and body["current"] == start
    assert body["allowed"] == sorted(workflow.ALLOWED[start])
    assert status(conn, incident)[0] == start and transitions(conn, incident) == []
    # Vietnamese (the default) names the statuses as the console shows them, not by their codes
    assert f"từ {INCIDENT_STATUSES[start][0]} sang {INCIDENT_STATUSES[to][0]}" in body["detail"], body
    assert start not in body["detail"] and to not in body["detail"]


def test_reopen_within_the_configured_days_only(client, conn, keys, place) -> None:
    recent = make(conn, place, "resolved", service="street_light", agency=AGENCY,
                  resolved_ago=dt.timedelta(days=2))
    r = client.post(f"/api/incidents/{recent}/transitions", headers=keys["operator"],
                    json={"status": "assigned", "note": "Chưa xử lý xong"})
    assert r.status_code == 200, r.text
    now, agency, answered = status(conn, recent)
    assert (now, agency, answered) == ("assigned", AGENCY, None)
    old = make(conn, place, "resolved", service="street_light", agency=AGENCY,
               resolved_ago=dt.timedelta(days=8))
    r = client.post(f"/api/incidents/{old}/transitions", headers=keys["operator"],
                    json={"status": "assigned"})
    assert r.status_code == 409
    assert r.json()["detail"] == "không thể mở lại: phản ánh đã được xử lý hơn 7 ngày"
    r = client.post(f"/api/incidents/{old}/transitions?lang=en", headers=keys["operator"],
                    json={"status": "assigned"})
    assert r.json()["detail"].endswith("resolved more than 7 days ago")
    assert status(conn, old)[0] == "resolved"


def test_who_may_move(client, conn, keys, place) -> None:
    incident = make(conn, place, "received")
    body = {"status": "verified"}
    assert client.post(f"/api/incidents/{incident}/transitions", json=body).status_code == 401
    for profile in ("citizen", "land_officer"):
        r = client.post(f"/api/incidents/{incident}/transitions", headers=keys[profile], json=body)
        assert r.status_code == 403, profile
    r = client.post(f"/api/incidents/{incident}/transitions", headers=keys["operator"],
                    json={"status": "done"})
    assert r.status_code == 400 and r.json()["parameter"] == "status"
    r = client.post("/api/incidents/999999999/transitions", headers=keys["operator"], json=body)
    assert r.status_code == 404
    # A security event is not there for an operator (row rule), so it cannot be moved by one.
    secret = conn.execute("SELECT id FROM incidents WHERE category = 'security_event' AND status"
                          " = 'received' LIMIT 1").fetchone()
    if secret:
        r = client.post(f"/api/incidents/{secret[0]}/transitions", headers=keys["operator"],
                        json=body)
        assert r.status_code == 404
    assert transitions(conn, incident) == []


def test_routing_and_reassignment(client, conn, keys, place) -> None:
    """Verified reports go to the most local agency handling the category there; an operator
    can reassign; each assignment is a stored transition."""
    pothole = make(conn, place, "received", service="pothole")
    r = client.post(f"/api/incidents/{pothole}/transitions", headers=keys["operator"],
                    json={"status": "verified"})
    assert r.status_code == 200
    assert status(conn, pothole)[1] == f"UBND-{place['commune']}"  # the commune's own committee
    light = make(conn, place, "received", service="street_light")
    client.post(f"/api/incidents/{light}/transitions", headers=keys["operator"],
                json={"status": "verified"})
    assert status(conn, light)[1] == AGENCY  # serves this commune only: before the province's
    r = client.post(f"/api/incidents/{light}/assignment", headers=keys["operator"],
                    json={"agency": "DLBN", "note": "Chuyển Điện lực"})
    assert r.status_code == 200, r.text
    assert status(conn, light)[:2] == ("assigned", "DLBN")
    assert transitions(conn, light)[-1][:4] == ("assign", "assigned", "assigned", "DLBN")
    r = client.post(f"/api/incidents/{light}/assignment", headers=keys["operator"],
                    json={"agency": "NO-SUCH"})
    assert r.status_code == 400
    closed = make(conn, place, "closed")
    r = client.post(f"/api/incidents/{closed}/assignment", headers=keys["operator"],
                    json={"agency": "DLBN"})
    assert r.status_code == 409


def test_every_transition_reaches_the_hook_once(conn, place, monkeypatch) -> None:
    seen: list[tuple[int, str, str]] = []

    def hook(c, incident_id, t) -> None:
        assert c is conn
        seen.append((incident_id, t.kind, t.to_status))

    monkeypatch.setattr(workflow, "on_transition", hook)
    incident = make(conn, place, "received", service="street_light")
    workflow.transition(conn, incident, "verified", actor="tester")
    workflow.transition(conn, incident, "in_progress", actor="tester")
    workflow.assign(conn, incident, "DLBN", actor="tester")
    workflow.transition(conn, incident, "resolved", actor="tester", note="Xong")
    with pytest.raises(IllegalTransition):
        workflow.transition(conn, incident, "verified", actor="tester")
    assert seen == [(incident, "status", "verified"), (incident, "status", "assigned"),
                    (incident, "status", "in_progress"), (incident, "assign", "in_progress"),
                    (incident, "status", "resolved")]
    assert len(transitions(conn, incident)) == len(seen)


def test_the_agency_is_told_of_its_assignment_and_each_status_change(conn, place, monkeypatch) -> None:
    """Through the real queue to a receiver on a loopback port that is down for the first
    attempts: every event arrives once, in order, with the report's public facts only."""
    from test_webhooks import Receiver, wait_for

    from gis.jobs import worker
    from gis.settings import get_settings

    s = get_settings()
    for name, value in (("webhook_retry_first_seconds", 0.1), ("webhook_retry_max_seconds", 0.3),
                        ("webhook_timeout_seconds", 2.0), ("webhook_max_attempts", 8)):
        monkeypatch.setattr(s, name, value)
    receiver = Receiver(refuse=2)
    conn.execute("UPDATE agencies SET webhook_url = %s WHERE code = %s", (receiver.url, AGENCY))
    worker.in_process_start()
    try:
        incident = make(conn, place, "received", service="street_light")
        conn.execute("INSERT INTO incident_reporters (incident_id, first_name, last_name, phone)"
                     " VALUES (%s, 'Báo', 'Nguyễn Văn', '0912345678')", (incident,))
        workflow.transition(conn, incident, "verified", actor="tester")  # routed to AGENCY
        workflow.transition(conn, incident, "in_progress", actor="tester")
        workflow.transition(conn, incident, "resolved", actor="tester", note="Đã thay bóng đèn")
        wait_for(lambda: len(receiver.handled) == 3)
    finally:
        worker.in_process_stop()
        receiver.close()
    bodies = sorted(receiver.bodies.values(), key=lambda b: b["data"]["transition"]["id"])
    assert [(b["event"], b["data"]["status"], b["data"]["transition"]["from"]) for b in bodies] == [
        ("report.assigned", "assigned", "verified"),
        ("report.status_changed", "in_progress", "assigned"),
        ("report.status_changed", "resolved", "in_progress")]
    assert {b["data"]["service_request_id"] for b in bodies} == {str(incident)}
    assert {b["data"]["agency"] for b in bodies} == {AGENCY}
    assert bodies[-1]["data"]["transition"]["note"] == "Đã thay bóng đèn"
    assert set(receiver.handled.values()) == {1}
    text = str(bodies)
    assert "Nguyễn Văn" not in text and "0912345678" not in text  # no reporter
    assert len(receiver.requests) == 3 + 2  # the two refused attempts were retried


# --- SLA and overdue, Vietnam time ---------------------------------------------------------------


@pytest.mark.parametrize(("received", "hours", "due"), [
    # One day: to the end of the next Vietnamese day, whatever the hour.
    ("2026-03-02T23:30:00+07:00", 24, "2026-03-04T00:00:00+07:00"),
    ("2026-03-03T00:30:00+07:00", 24, "2026-03-05T00:00:00+07:00"),  # 30 min later: a day more
    ("2026-03-02T16:59:59+00:00", 24, "2026-03-04T00:00:00+07:00"),  # 23:59:59 local
    ("2026-03-02T17:00:00+00:00", 24, "2026-03-05T00:00:00+07:00"),  # 00:00 local
    ("2026-03-02T08:00:00+07:00", 72, "2026-03-06T00:00:00+07:00"),
    ("2026-12-31T23:00:00+07:00", 48, "2027-01-03T00:00:00+07:00"),  # over the new year
    # Hours: counted in hours, across midnight.
    ("2026-03-02T20:00:00+07:00", 12, "2026-03-03T08:00:00+07:00"),
])
def test_sla_deadline_in_vietnam_time(conn, received: str, hours: int, due: str) -> None:
    got = deadlines.deadline(conn, dt.datetime.fromisoformat(received), hours)
    assert got == dt.datetime.fromisoformat(due)


def test_overdue_across_day_boundaries(conn, place) -> None:
    """Open reports past their deadline, with Vietnamese calendar days late; closed ones and
    duplicates are not counted."""
    received = dt.datetime(2026, 3, 2, 23, 30, tzinfo=VN)   # due the end of 3 March (local)
    due = dt.datetime(2026, 3, 4, 0, 0, tzinfo=VN)
    open_one = make(conn, place, "assigned", service="street_light", reported=received,
                    expected=due)
    make(conn, place, "resolved", service="street_light", reported=received, expected=due,
         agency=AGENCY)
    dup = make(conn, place, "assigned", service="street_light", reported=received, expected=due)
    conn.execute("UPDATE incidents SET duplicate_of = %s WHERE id = %s", (open_one, dup))

    def late(now: dt.datetime) -> list[tuple[int, int]]:
        return [(r["id"], r["days_late"]) for r in deadlines.overdue(conn, now, agency=AGENCY)]

    assert late(dt.datetime(2026, 3, 3, 23, 59, 59, tzinfo=VN)) == []
    assert late(due) == []  # due at midnight: not yet late at midnight itself
    assert late(dt.datetime(2026, 3, 4, 0, 0, 1, tzinfo=VN)) == [(open_one, 1)]
    # 16:59 UTC on 4 March is still 4 March in Vietnam; 17:00 UTC is the 5th.
    assert late(dt.datetime(2026, 3, 4, 16, 59, tzinfo=dt.UTC)) == [(open_one, 1)]
    assert late(dt.datetime(2026, 3, 4, 17, 0, tzinfo=dt.UTC)) == [(open_one, 2)]
    counts = deadlines.overdue_counts(conn, dt.datetime(2026, 3, 5, tzinfo=VN))
    assert counts[AGENCY] == 1


def test_overdue_route(client, conn, keys, place) -> None:
    make(conn, place, "in_progress", service="street_light",
         reported=dt.datetime.now(dt.UTC) - dt.timedelta(days=9))
    r = client.get(f"/api/reports/overdue?agency={AGENCY}", headers=keys["operator"])
    assert r.status_code == 200
    body = r.json()
    assert body["items"] and all(i["agency_code"] == AGENCY for i in body["items"])
    expected = conn.execute(
        "SELECT count(*) FROM incidents WHERE status IN ('received', 'verified', 'assigned',"
        " 'in_progress') AND duplicate_of IS NULL AND expected_at < now()"
        " AND category <> 'security_event'").fetchone()[0]
    assert body["total"] == expected
    assert client.get("/api/reports/overdue").status_code == 404


# --- duplicates ----------------------------------------------------------------------------------


@pytest.fixture
def reports(conn, place) -> Iterator[list[int]]:
    made: list[int] = []
    yield made
    conn.execute("DELETE FROM incidents WHERE id = ANY(%s)", (made,))


def _report(conn, place, made: list[int], at: dt.datetime, *, service: str = "street_light",
            east_m: float = 0.0) -> intake.Created:
    lon = place["lon"] + east_m / (111_320 * 0.93)  # metres east at ~21° N
    created = intake.create(conn, intake.NewReport(
        service_code=service, lat=repr(place["lat"]), lon=repr(lon),
        description="Kiểm thử trùng lặp"), province_srid=9209, at=at)
    made.append(created.id)
    return created


def test_duplicates_link_and_unlink(client, conn, keys, place, reports) -> None:
    t0 = dt.datetime(2026, 2, 1, 8, 0, tzinfo=VN)
    first = _report(conn, place, reports, t0)
    assert first.duplicate_of is None
    near = _report(conn, place, reports, t0 + dt.timedelta(hours=5), east_m=30)
    assert near.duplicate_of == first.id
    far = _report(conn, place, reports, t0 + dt.timedelta(hours=5), east_m=80)
    assert far.duplicate_of is None
    other = _report(conn, place, reports, t0 + dt.timedelta(hours=5), service="pothole")
    assert other.duplicate_of is None
    late = _report(conn, place, reports, t0 + dt.timedelta(hours=49), east_m=10)
    assert late.duplicate_of is None
    # The citizen of the duplicate sees the original's status and answer.
    workflow.transition(conn, first.id, "verified", actor="tester")
    workflow.transition(conn, first.id, "resolved", actor="tester", note="Đã thay bóng đèn",
                        at=t0 + dt.timedelta(hours=6))
    doc = client.get(f"/open311/v2/requests/{near.id}.json?lang=en").json()[0]
    assert doc["status"] == "closed"
    assert doc["status_notes"] == f"Duplicate of request {first.id}. Đã thay bóng đèn"
    # It shows the original's "resolved", but its own report is not resolved: nothing to reopen.
    tracked = client.get(f"/api/reports/track/{near.token}").json()
    assert tracked["status"] == "resolved" and tracked["reopen_until"] is None
    # A report near a resolved original is not its duplicate.
    after = _report(conn, place, reports, t0 + dt.timedelta(hours=7), east_m=20)
    assert after.duplicate_of is None
    stored = transitions(conn, near.id)
    assert [s[:3] for s in stored] == [("status", None, "received"),
                                       ("duplicate", "received", "received")]
    # Unlinking: an operator's decision, stored; the report stands on its own again.
    r = client.post(f"/api/incidents/{near.id}/duplicate/unlink", headers=keys["operator"],
                    json={"note": "Khác cột đèn"})
    assert r.status_code == 200, r.text
    assert conn.execute("SELECT duplicate_of FROM incidents WHERE id = %s",
                        (near.id,)).fetchone()[0] is None
    assert transitions(conn, near.id)[-1][0] == "unlink"
    doc = client.get(f"/open311/v2/requests/{near.id}.json").json()[0]
    assert doc["status"] == "open"
    r = client.post(f"/api/incidents/{near.id}/duplicate/unlink", headers=keys["operator"],
                    json={})
    assert r.status_code == 409


def test_citizen_tracks_and_reopens_by_token(client, conn, place, reports) -> None:
    # 400 m from the other tests' reports: not a duplicate of one of them.
    created = _report(conn, place, reports, dt.datetime.now(dt.UTC) - dt.timedelta(hours=4),
                      east_m=400)
    assert created.duplicate_of is None
    workflow.transition(conn, created.id, "verified", actor="dieuhanh01")
    workflow.transition(conn, created.id, "resolved", actor="dieuhanh01", note="Đã thay bóng đèn")
    r = client.get(f"/api/reports/track/{created.token}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == created.id and body["status"] == "resolved"
    assert body["status_note"] == "Đã thay bóng đèn"
    # The public history names no member of staff.
    assert [(h["to_status"], h["actor"]) for h in body["history"]] == [
        ("received", "citizen"), ("verified", "staff"), ("assigned", "system"),
        ("resolved", "staff")]
    assert "dieuhanh01" not in r.text
    # The window the tracking page offers the reopen button in: resolved_at + the configured
    # days, in Vietnam time (+07:00), to the second.
    resolved_at = conn.execute("SELECT resolved_at FROM incidents WHERE id = %s",
                               (created.id,)).fetchone()[0]
    until = dt.datetime.fromisoformat(body["reopen_until"])
    assert until.utcoffset() == dt.timedelta(hours=7)
    assert dt.timedelta(0) <= resolved_at + dt.timedelta(days=7) - until < dt.timedelta(seconds=1)
    r = client.post(f"/api/reports/track/{created.token}/reopen", json={"note": "Đèn lại hỏng"})
    assert r.status_code == 200, r.text
    assert client.get(f"/api/reports/track/{created.token}").json()["reopen_until"] is None
    now, agency, _ = status(conn, created.id)
    assert now == "assigned" and agency is not None  # back to the same agency's queue
    # The citizen's note is in the history, not in place of the agency's answer.
    assert client.get(f"/api/reports/track/{created.token}").json()["status_note"] == \
        "Đã thay bóng đèn"
    assert transitions(conn, created.id)[-1][:5] == ("status", "resolved", "assigned", agency,
                                                     "citizen")
    # Only a resolved report, and only within the configured days.
    r = client.post(f"/api/reports/track/{created.token}/reopen", json={})
    assert r.status_code == 409
    conn.execute("UPDATE incidents SET status = 'resolved', resolved_at = now() - interval '8 days',"
                 " reported_at = now() - interval '9 days' WHERE id = %s", (created.id,))
    assert client.get(f"/api/reports/track/{created.token}").json()["reopen_until"] is None
    r = client.post(f"/api/reports/track/{created.token}/reopen", json={})
    assert r.status_code == 409
    assert client.get("/api/reports/track/no-such-token").status_code == 404
    assert client.post("/api/reports/track/no-such-token/reopen", json={}).status_code == 404
