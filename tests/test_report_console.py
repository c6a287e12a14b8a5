"""The operator console's API: the queue (order and filters equal independent SQL, access),
bulk transitions and assignments (all or nothing, a 409 naming every id that cannot move, in the
user's language), and the live event stream (a report POSTed through Open311 by another
connection reaches a server's event stream through PostgreSQL NOTIFY).
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from psycopg import sql

from gis.reports.queries import OPEN_STATUSES

TITLE = "Kiểm thử bàn điều hành"
AGENCY = "TEST-CONSOLE"


@pytest.fixture(scope="module")
def place(conn) -> Iterator[dict[str, Any]]:
    code, lon, lat = conn.execute(
        "SELECT code, ST_X(p), ST_Y(p) FROM (SELECT code, ST_PointOnSurface(geom) AS p FROM"
        " admin_units WHERE level = 'commune' AND valid_to IS NULL ORDER BY code DESC LIMIT 1) q"
    ).fetchone()
    conn.execute("DELETE FROM agencies WHERE code = %s", (AGENCY,))
    conn.execute("INSERT INTO agencies (code, name_vi, name_en, categories, communes)"
                 " VALUES (%s, 'Đơn vị kiểm thử bàn điều hành', 'Console test agency',"
                 " '{pothole}', %s)", (AGENCY, [code]))
    yield {"commune": code, "lon": float(lon), "lat": float(lat)}
    conn.execute("DELETE FROM incidents WHERE title = %s OR description LIKE %s",
                 (TITLE, TITLE + "%"))
    conn.execute("DELETE FROM incident_transitions WHERE agency_code = %s", (AGENCY,))
    conn.execute("UPDATE incidents SET agency_code = NULL WHERE agency_code = %s", (AGENCY,))
    conn.execute("DELETE FROM agencies WHERE code = %s", (AGENCY,))


def make(conn, place: dict[str, Any], status: str, *, hours: float = 24.0,
         agency: str | None = None) -> int:
    """A pothole report in STATUS, due in HOURS (negative: overdue)."""
    row = conn.execute(
        "INSERT INTO incidents (category, severity, status, source, title, commune_code,"
        " reported_at, geom, service_code, expected_at, agency_code, updated_at, resolved_at)"
        " SELECT s.incident_category, 2, %s, 'citizen_app', %s, %s, now() - interval '1 day',"
        " ST_SetSRID(ST_MakePoint(%s, %s), 4326), s.code, now() + make_interval(secs => %s),"
        " %s, now(), CASE WHEN %s THEN now() END FROM service_categories s"
        " WHERE s.code = 'pothole' RETURNING id",
        (status, TITLE, place["commune"], place["lon"], place["lat"], hours * 3600,
         agency, status in ("resolved", "rejected", "closed"))).fetchone()
    return int(row[0])


def expected_ids(conn, where: str = "TRUE", params: tuple[Any, ...] = (), *,
                 security: bool = False, limit: int = 500) -> list[int]:
    """The queue computed independently: open, the nearest deadline first."""
    hide = sql.SQL("TRUE" if security else "category <> 'security_event'")
    stmt = sql.SQL("SELECT id FROM incidents WHERE status = ANY(%s) AND {} AND {}"
                   " ORDER BY expected_at NULLS LAST, id LIMIT %s").format(hide, sql.SQL(where))
    return [r[0] for r in conn.execute(stmt, (list(OPEN_STATUSES), *params, limit)).fetchall()]


def queue_ids(client, keys, profile: str = "operator", **params: Any) -> tuple[list[int], int]:
    r = client.get("/api/reports/queue", headers=keys[profile], params={"limit": 500, **params})
    assert r.status_code == 200, r.text
    body = r.json()
    return [i["id"] for i in body["items"]], body["total"]


def test_queue_order_and_filters_equal_sql(client, conn, keys, place) -> None:
    late = make(conn, place, "assigned", hours=-30, agency=AGENCY)
    soon = make(conn, place, "received", hours=2)
    make(conn, place, "resolved", hours=-50)  # not open: never listed
    ids, total = queue_ids(client, keys)
    assert ids == expected_ids(conn)
    assert total == conn.execute(
        "SELECT count(*) FROM incidents WHERE status = ANY(%s) AND category <> 'security_event'",
        (list(OPEN_STATUSES),)).fetchone()[0]
    assert late in ids and soon in ids

    cases: list[tuple[dict[str, Any], str, tuple[Any, ...]]] = [
        ({"status": "assigned"}, "status = %s", ("assigned",)),
        ({"service": "pothole"}, "service_code = %s", ("pothole",)),
        ({"agency": AGENCY}, "agency_code = %s", (AGENCY,)),
        ({"commune": place["commune"]}, "commune_code = %s", (place["commune"],)),
        ({"overdue": "true"}, "duplicate_of IS NULL AND expected_at < now()", ()),
        ({"q": "bàn điều"}, "(title ILIKE %s OR description ILIKE %s)",
         ("%bàn điều%", "%bàn điều%")),
        ({"q": str(soon)}, "id = %s", (soon,)),
        ({"overdue": "1", "agency": AGENCY, "status": ""},
         "duplicate_of IS NULL AND expected_at < now() AND agency_code = %s", (AGENCY,)),
    ]
    for params, where, args in cases:
        got, n = queue_ids(client, keys, **params)
        want = expected_ids(conn, where, args)
        assert got == want, params
        assert n >= len(want), params
    assert queue_ids(client, keys, agency=AGENCY, overdue="true")[0] == [late]
    # Items carry what the console shows: deadline, overdue flag, the moves allowed.
    items = client.get("/api/reports/queue", headers=keys["operator"],
                       params={"q": str(late)}).json()["items"]
    assert items[0]["overdue"] is True and items[0]["status"] == "assigned"
    assert items[0]["allowed"] == ["in_progress", "rejected", "resolved"]
    assert items[0]["agency_name_vi"] == "Đơn vị kiểm thử bàn điều hành"


def test_queue_paging_and_access(client, conn, keys, place) -> None:
    make(conn, place, "received", hours=5)
    all_ids = expected_ids(conn, limit=1_000_000)
    page = client.get("/api/reports/queue", headers=keys["operator"],
                      params={"limit": 3, "offset": 2}).json()
    assert [i["id"] for i in page["items"]] == all_ids[2:5] and page["total"] == len(all_ids)
    # Security events are hidden from operators by the layer's row rule, shown to admins.
    sec = conn.execute("SELECT count(*) FROM incidents WHERE status = ANY(%s)"
                       " AND category = 'security_event'", (list(OPEN_STATUSES),)).fetchone()[0]
    admin_ids, admin_total = queue_ids(client, keys, "admin")
    assert admin_ids == expected_ids(conn, security=True)  # the first 500
    assert admin_total == len(all_ids) + sec
    assert client.get("/api/reports/queue").status_code == 401
    for profile in ("citizen", "land_officer"):
        assert client.get("/api/reports/queue", headers=keys[profile]).status_code == 403
    # Empty filters of the console's form mean "any".
    blank = client.get("/api/reports/queue", headers=keys["operator"],
                       params={k: "" for k in ("status", "service", "agency", "commune",
                                               "overdue", "q", "limit", "offset")})
    assert blank.status_code == 200 and blank.json()["total"] == len(all_ids)
    bad = client.get("/api/reports/queue", headers=keys["operator"], params={"status": "closed"})
    assert bad.status_code == 400 and "status" in bad.text
    assert client.get("/api/reports/queue", headers=keys["operator"],
                      params={"limit": "0"}).status_code == 400


def _state(conn, ids: list[int]) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT i.id, i.status, i.agency_code, (SELECT count(*) FROM incident_transitions t"
        " WHERE t.incident_id = i.id) FROM incidents i WHERE i.id = ANY(%s) ORDER BY i.id",
        (ids,)).fetchall()


def test_bulk_transition_is_all_or_nothing(client, conn, keys, place) -> None:
    good = [make(conn, place, "received"), make(conn, place, "received")]
    closed = make(conn, place, "closed")
    missing = 999_999_999
    ids = [good[0], closed, good[1], missing]
    before = _state(conn, ids)
    body = {"ids": ids, "status": "rejected", "note": "không thuộc thẩm quyền"}
    r = client.post("/api/reports/bulk/transitions", headers=keys["operator"], json=body)
    assert r.status_code == 409, r.text
    problem = r.json()
    assert problem["ids"] == [closed, missing]
    assert [e["field"] for e in problem["errors"]] == ["ids[1]", "ids[3]"]
    assert "chưa phản ánh nào bị thay đổi" in problem["detail"]
    assert f"phản ánh {closed}: không thể chuyển trạng thái" in problem["errors"][0]["reason"]
    assert f"phản ánh {missing}: không tìm thấy" in problem["errors"][1]["reason"]
    assert _state(conn, ids) == before  # nothing moved, no transition stored
    en = client.post("/api/reports/bulk/transitions?lang=en", headers=keys["operator"],
                     json=body).json()
    assert en["detail"].startswith("2 of 4 reports cannot take this action")
    assert str(closed) in en["errors"][0]["reason"] and "closed" in en["errors"][0]["reason"]

    r = client.post("/api/reports/bulk/transitions", headers=keys["operator"],
                    json={**body, "ids": good})
    assert r.status_code == 200, r.text
    assert r.json()["incidents"] == sorted(good)
    for _id, status, _agency, n in _state(conn, good):
        assert status == "rejected" and n == 1
    notes = conn.execute("SELECT DISTINCT note FROM incident_transitions"
                         " WHERE incident_id = ANY(%s)", (good,)).fetchall()
    assert notes == [("không thuộc thẩm quyền",)]
    assert client.post("/api/reports/bulk/transitions", headers=keys["citizen"],
                       json=body).status_code == 403
    assert client.post("/api/reports/bulk/transitions", headers=keys["operator"],
                       json={"ids": [], "status": "verified"}).status_code in (400, 422)
    r = client.post("/api/reports/bulk/transitions", headers=keys["operator"],
                    json={"ids": [closed], "status": "no_such"})
    assert r.status_code == 400 and r.json()["parameter"] == "status"


def test_bulk_assignment_is_all_or_nothing(client, conn, keys, place) -> None:
    good = [make(conn, place, "assigned", agency=None), make(conn, place, "in_progress")]
    fresh = make(conn, place, "received")  # cannot be assigned before it is verified
    before = _state(conn, [*good, fresh])
    r = client.post("/api/reports/bulk/assignment", headers=keys["operator"],
                    json={"ids": [*good, fresh], "agency": AGENCY})
    assert r.status_code == 409 and r.json()["ids"] == [fresh]
    assert _state(conn, [*good, fresh]) == before
    # An unknown agency is wrong for the whole request: 400 naming it, nothing changed.
    r = client.post("/api/reports/bulk/assignment", headers=keys["operator"],
                    json={"ids": good, "agency": "NO-SUCH"})
    assert r.status_code == 400 and r.json()["parameter"] == "agency"
    assert "không có đơn vị xử lý mã NO-SUCH" in r.json()["detail"]
    assert _state(conn, [*good, fresh]) == before
    r = client.post("/api/reports/bulk/assignment", headers=keys["operator"],
                    json={"ids": good, "agency": AGENCY, "note": "giao lại"})
    assert r.status_code == 200, r.text
    assert [row[2] for row in _state(conn, good)] == [AGENCY, AGENCY]


def _events(url: str, headers: dict[str, str], out: queue.Queue[tuple[str, Any]],
            stop: threading.Event) -> None:
    """Read the event stream into OUT until STOP (a thread: the stream never ends)."""
    with httpx.Client(timeout=httpx.Timeout(5.0, read=20.0)) as http, \
            http.stream("GET", url + "/api/reports/events", headers=headers) as r:
        out.put(("status", r.status_code))
        name = "message"
        try:
            for line in r.iter_lines():
                if stop.is_set():
                    return
                if line.startswith("event:"):
                    name = line[6:].strip()
                elif line.startswith("data:"):
                    out.put((name, json.loads(line[5:])))
                    name = "message"
        except httpx.HTTPError:  # the server stopped at the end of the run
            return


def _next(out: queue.Queue[tuple[str, Any]], want: Any, seconds: float = 15.0) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            item = out.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            break
        if want(item):
            return item
    pytest.fail("the expected event did not arrive")


def test_event_arrives_after_an_open311_post_by_another_connection(
        live_server, client, conn, keys, place) -> None:
    """The stream is served by the live server process; the report is POSTed through another
    process's app (the test client): only PostgreSQL NOTIFY can carry it across."""
    out: queue.Queue[tuple[str, Any]] = queue.Queue()
    stop = threading.Event()
    reader = threading.Thread(target=_events, args=(live_server, keys["operator"], out, stop),
                              daemon=True)
    reader.start()
    assert _next(out, lambda i: i[0] == "status") == ("status", 200)
    assert _next(out, lambda i: i[0] == "ready")[1] == {"listening": True}
    r = client.post("/open311/v2/requests.json", data={
        "service_code": "pothole", "lat": repr(place["lat"] + 0.001),
        "long": repr(place["lon"] + 0.001), "description": TITLE + " sự kiện",
        "first_name": "Bí Mật", "phone": "0912345678"})
    assert r.status_code == 200, r.text
    rid = int(r.json()[0]["service_request_id"])
    name, event = _next(out, lambda i: i[0] == "report" and i[1].get("id") == rid)
    assert event["event"] == "report.created" and event["status"] == "received"
    assert event["service_code"] == "pothole"
    assert "Bí Mật" not in json.dumps(event) and "0912345678" not in json.dumps(event)
    assert set(event) <= {"event", "id", "status", "service_code", "agency_code", "commune_code",
                          "expected_at", "kind", "at"}
    # A transition by an operator is heard too.
    assert client.post(f"/api/incidents/{rid}/transitions", headers=keys["operator"],
                       json={"status": "rejected", "note": "thử"}).status_code == 200
    _, moved = _next(out, lambda i: i[0] == "report" and i[1].get("id") == rid
                     and i[1]["event"] == "report.updated")
    assert moved["status"] == "rejected"
    stop.set()
    conn.execute("DELETE FROM incidents WHERE id = %s", (rid,))


def test_events_are_for_operators_only(live_server, keys) -> None:
    assert httpx.get(live_server + "/api/reports/events", timeout=5).status_code == 401
    assert httpx.get(live_server + "/api/reports/events", headers=keys["citizen"],
                     timeout=5).status_code == 403
