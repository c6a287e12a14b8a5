"""Transparency figures equal an independent computation: rows fetched plainly (the first answer
read from incident_transitions, not from the incidents.answered_at the figures use), the
period's Vietnamese days cut with zoneinfo, percentiles by Python's statistics. Reports sit on
both sides of Vietnamese midnight at both ends of the period; a security event, a duplicate and a
reopened report are planted; no reporter, id or sensitive description reaches the public API.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gis.reports import transparency, workflow

VN = ZoneInfo("Asia/Ho_Chi_Minh")
UTC = dt.UTC
AGENCY_A, AGENCY_B = "TEST-TP-A", "TEST-TP-B"
TITLE = "Kiểm thử minh bạch"
SECRET_NAME, SECRET_PHONE = "Trần Thị Kín Đáo", "0987654321"
SECRET_DESCRIPTION = "Hàng xóm nhà số 12 hát karaoke đến 2 giờ sáng"
PUBLIC_DESCRIPTION = "Ổ gà lớn trước cổng chợ"
START, END = dt.date(2024, 3, 10), dt.date(2024, 3, 12)  # [10/03, 12/03) Vietnam days


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
    """An instant of March 2024 in UTC (Vietnam is UTC+7: 17:00 UTC is local midnight)."""
    return dt.datetime(2024, 3, day, hour, minute, second, tzinfo=UTC)


def _insert(conn, commune: str, lon: float, lat: float, service: str, reported: dt.datetime,
            *, category: str | None = None, description: str | None = None,
            duplicate_of: int | None = None) -> int:
    row = conn.execute(
        "INSERT INTO incidents (category, severity, status, source, title, description,"
        " commune_code, reported_at, geom, service_code, expected_at, updated_at, duplicate_of)"
        " SELECT COALESCE(%s, s.incident_category), 2, 'received', 'citizen_app', %s, %s, %s, %s,"
        " ST_SetSRID(ST_MakePoint(%s, %s), 4326), s.code, geoioc_sla_deadline(%s, s.sla_hours),"
        " %s, %s FROM service_categories s WHERE s.code = %s RETURNING id",
        (category, TITLE, description, commune, reported, lon, lat, reported, reported,
         duplicate_of, service)).fetchone()
    iid = int(row[0])
    conn.execute("INSERT INTO incident_reporters (incident_id, first_name, phone) VALUES (%s, %s, %s)",
                 (iid, SECRET_NAME, SECRET_PHONE))
    return iid


def _answer(conn, iid: int, agency: str, assigned: dt.datetime, answer: str | None,
            answered: dt.datetime | None) -> None:
    """received -> verified -> assigned (AGENCY) -> ANSWER at ANSWERED, through the workflow."""
    workflow.transition(conn, iid, "verified", actor="tester", at=assigned)
    row = conn.execute("SELECT status FROM incidents WHERE id = %s", (iid,)).fetchone()
    if row[0] == "verified":
        workflow.transition(conn, iid, "assigned", actor="tester", at=assigned, agency_code=agency)
    else:
        workflow.assign(conn, iid, agency, actor="tester", at=assigned)
    if answer is not None and answered is not None:
        workflow.transition(conn, iid, answer, actor="tester", at=answered)


@pytest.fixture(scope="module")
def scene(conn) -> Iterator[dict[str, Any]]:
    communes = conn.execute(
        "SELECT code, ST_X(p), ST_Y(p) FROM (SELECT code, ST_PointOnSurface(geom) AS p FROM"
        " admin_units WHERE level = 'commune' AND valid_to IS NULL ORDER BY code LIMIT 2) q"
    ).fetchall()
    (c1, x1, y1), (c2, x2, y2) = communes
    for code, name in ((AGENCY_A, "A"), (AGENCY_B, "B")):
        conn.execute("DELETE FROM agencies WHERE code = %s", (code,))
        conn.execute("INSERT INTO agencies (code, name_vi, name_en, categories, communes)"
                     " VALUES (%s, %s, %s, '{}', %s)",
                     (code, f"Đơn vị minh bạch {name}", f"Transparency unit {name}", [c1, c2]))
    ids: dict[str, int] = {}

    def report(key: str, commune: tuple[str, float, float], service: str, reported: dt.datetime,
               agency: str | None = None, answer: str | None = None,
               answered: dt.datetime | None = None, **kw: Any) -> int:
        iid = _insert(conn, commune[0], commune[1], commune[2], service, reported, **kw)
        if agency is not None:
            _answer(conn, iid, agency, reported + dt.timedelta(minutes=30), answer, answered)
        ids[key] = iid
        return iid

    one, two = (c1, x1, y1), (c2, x2, y2)
    # Start boundary: 17:00 UTC on the 9th is 00:00 on the 10th in Vietnam (in); a second
    # before is the 9th (out).
    report("start_in", one, "pothole", at(9, 17), AGENCY_A, "resolved", at(10, 5))
    report("start_out", one, "pothole", at(9, 16, 59, 59), AGENCY_A, "resolved", at(10, 1))
    # End boundary: 16:59:59 UTC on the 11th is 23:59:59 on the 11th (in); 17:00 is the 12th.
    report("end_in", two, "pothole", at(11, 16, 59, 59), AGENCY_B, "resolved", at(20, 3))
    report("end_out", two, "pothole", at(11, 17), AGENCY_B, "resolved", at(12, 2))
    # Within the SLA (flooding: 24 h in whole days -> midnight after the next day) and not.
    report("fast", one, "flooding", at(10, 2), AGENCY_A, "resolved", at(10, 9, 30))
    report("slow", two, "flooding", at(10, 3), AGENCY_B, "resolved", at(13, 4))
    # Answered at the very instant of its deadline (midnight starting the 12th, Vietnam): on time.
    report("exact", one, "flooding", at(10, 4), AGENCY_A, "resolved", at(11, 17))
    report("rejected", two, "street_light", at(10, 8), AGENCY_B, "rejected", at(10, 20))
    # Reopened: the first answer counts, not the second.
    iid = report("reopened", one, "street_light", at(10, 10), AGENCY_A, "resolved", at(10, 12))
    workflow.transition(conn, iid, "assigned", actor="citizen", at=at(10, 13), reopen_days=3650)
    workflow.transition(conn, iid, "resolved", actor="tester", at=at(15, 12))
    # Never answered: past its deadline (counts against), sensitive with a description.
    report("open_sensitive", two, "noise", at(11, 1), AGENCY_B, description=SECRET_DESCRIPTION)
    report("open_public", one, "pothole", at(11, 2), AGENCY_A, description=PUBLIC_DESCRIPTION)
    report("unassigned", one, "pothole", at(11, 3))
    # Never counted: a security event, a duplicate.
    report("security", one, "pothole", at(10, 6), AGENCY_A, "resolved", at(10, 7),
           category="security_event", description=SECRET_DESCRIPTION)
    report("duplicate", one, "pothole", at(10, 7), duplicate_of=ids["start_in"])
    yield {"ids": ids, "communes": (c1, c2)}
    conn.execute("DELETE FROM incidents WHERE title = %s", (TITLE,))
    conn.execute("DELETE FROM agencies WHERE code IN (%s, %s)", (AGENCY_A, AGENCY_B))


# --- the independent computation ----------------------------------------------------------------


def independent(conn, start: dt.date, end: dt.date, now: dt.datetime) -> dict[str, Any]:
    """The figures from plain rows: every incident, every status transition, and Python."""
    incidents = conn.execute(
        "SELECT id, category, service_code, duplicate_of, agency_code, commune_code, reported_at,"
        " expected_at FROM incidents").fetchall()
    first: dict[int, tuple[dt.datetime, str]] = {}
    for iid, when, to in conn.execute(
            "SELECT incident_id, at, to_status FROM incident_transitions WHERE kind = 'status'"
            " ORDER BY id").fetchall():
        if to in ("resolved", "rejected") and (iid not in first or when < first[iid][0]):
            first[iid] = (when, to)
    groups: dict[tuple[str, str | None], list[dict[str, Any]]] = defaultdict(list)
    for iid, category, service, dup, agency, commune, reported, expected in incidents:
        if service is None or dup is not None or category == "security_event":
            continue
        if not start <= reported.astimezone(VN).date() < end:
            continue
        answered, answer = first.get(iid, (None, None))
        row = {"answer": answer,
               "hours": (answered - reported).total_seconds() / 3600 if answered else None,
               "on_time": answered is not None and answered <= expected,
               "due": answered is not None or expected < now}
        groups[("agency", agency)].append(row)
        groups[("commune", commune)].append(row)
        groups[("province", None)].append(row)
    return {key: figures_of(rows) for key, rows in groups.items()}


def figures_of(rows: list[dict[str, Any]]) -> dict[str, Any]:
    hours = sorted(r["hours"] for r in rows if r["hours"] is not None)
    due = sum(r["due"] for r in rows)
    on_time = sum(r["on_time"] for r in rows)

    def pct(q: float) -> float | None:
        if not hours:
            return None
        if len(hours) == 1:
            return round(hours[0], 2)
        # percentile_cont: linear interpolation between closest ranks (R-7, "inclusive").
        return round(statistics.quantiles(hours, n=100 if q == 0.9 else 2,
                                          method="inclusive")[89 if q == 0.9 else 0], 2)

    return {"received": len(rows), "resolved": sum(r["answer"] == "resolved" for r in rows),
            "rejected": sum(r["answer"] == "rejected" for r in rows),
            "open": sum(r["answer"] is None for r in rows),
            "median_hours": pct(0.5), "p90_hours": pct(0.9), "within_sla": on_time, "due": due,
            "within_sla_share": round(on_time / due, 4) if due else None}


FIELDS = ("received", "resolved", "rejected", "open", "median_hours", "p90_hours", "within_sla",
          "due", "within_sla_share")


def close(a: dict[str, Any], b: dict[str, Any]) -> bool:
    for f in FIELDS:
        x, y = a.get(f), b.get(f)
        if x is None or y is None:
            if x != y:
                return False
        elif abs(float(x) - float(y)) > 0.0051:  # both rounded to 0.01 h (shares to 1e-4)
            return False
    return True


def check(got: dict[str, Any], want: dict[tuple[str, str | None], dict[str, Any]]) -> None:
    zero = figures_of([])
    assert close(got["province"] or zero, want.get(("province", None), zero))
    assert close(got["unassigned"] or zero, want.get(("agency", None), zero))
    for a in got["agencies"]:
        assert close(a, want.get(("agency", a["code"]), zero)), a["code"]
    for c in got["communes"]:
        assert close(c, want.get(("commune", c["code"]), zero)), c["code"]
    listed = {("agency", a["code"]) for a in got["agencies"]} | {
        ("commune", c["code"]) for c in got["communes"]} | {("agency", None), ("province", None)}
    assert set(want) <= listed  # every group counted is shown


# --- tests --------------------------------------------------------------------------------------


def test_figures_equal_the_independent_computation(conn, scene) -> None:
    now = dt.datetime.now(UTC)
    got = transparency.figures(conn, START, END, now=now)
    want = independent(conn, START, END, now)
    check(got, want)
    a = next(x for x in got["agencies"] if x["code"] == AGENCY_A)
    # start_in, fast, exact, reopened, open_public: start_out, security and duplicate are not
    # counted.
    assert a["received"] == 5 and a["resolved"] == 4 and a["open"] == 1
    # reopened: 2 h to its first answer (not 5 days); fast 7.5 h, start_in 12 h, exact 37 h.
    assert a["median_hours"] == 9.75 and a["within_sla_share"] == 0.8
    b = next(x for x in got["agencies"] if x["code"] == AGENCY_B)
    assert (b["received"], b["resolved"], b["rejected"], b["open"]) == (4, 2, 1, 1)
    assert got["unassigned"]["received"] == 1


def test_vietnam_day_boundaries(conn, scene) -> None:
    now = dt.datetime.now(UTC)
    day10 = transparency.figures(conn, START, START + dt.timedelta(days=1), now=now)
    day9 = transparency.figures(conn, START - dt.timedelta(days=1), START, now=now)
    day12 = transparency.figures(conn, END, END + dt.timedelta(days=1), now=now)
    a10 = next(x for x in day10["agencies"] if x["code"] == AGENCY_A)
    a9 = next(x for x in day9["agencies"] if x["code"] == AGENCY_A)
    b12 = next(x for x in day12["agencies"] if x["code"] == AGENCY_B)
    assert a9["received"] == 1  # start_out: 23:59:59 on the 9th in Vietnam
    assert a10["received"] == 4  # start_in (00:00 on the 10th), fast, exact, reopened
    assert b12["received"] == 1  # end_out: 00:00 on the 12th
    for start, end in ((START - dt.timedelta(days=1), START), (END, END + dt.timedelta(days=1))):
        check(transparency.figures(conn, start, end, now=now),
              independent(conn, start, end, now))


def test_figures_of_the_sample_province(conn) -> None:
    """The whole sample (a few hundred reports played through the workflow, every status)."""
    now = dt.datetime(2026, 12, 3, 5, tzinfo=UTC)
    start, end = dt.date(2026, 7, 1), dt.date(2027, 1, 1)
    got = transparency.figures(conn, start, end, now=now)
    assert got["province"]["received"] > 100
    check(got, independent(conn, start, end, now))


def test_the_api_gives_the_same_figures(client, conn, scene, keys) -> None:
    """Staff (who may read incidents) get the exact figures; the public's are suppressed
    (test_public_figures_hide_small_counts)."""
    transparency.forget(conn)  # figures another test's request may have kept
    params = {"start": START.isoformat(), "end": END.isoformat()}
    staff = keys["operator"]
    r = client.get("/api/transparency/agencies", params=params, headers=staff)
    assert r.status_code == 200, r.text
    assert "max-age" in r.headers["cache-control"]  # the same for everybody
    body = r.json()
    want = independent(conn, START, END, dt.datetime.now(UTC))
    communes = client.get("/api/transparency/communes", params=params, headers=staff)
    assert communes.status_code == 200
    assert communes.headers["content-type"].startswith("application/geo+json")
    geo = communes.json()
    assert geo["type"] == "FeatureCollection" and geo["period"] == body["period"]
    assert all(f["geometry"]["type"] in ("Polygon", "MultiPolygon") for f in geo["features"])
    assert communes.headers["cache-control"] == "private, max-age=0"  # exact: not shared
    assert "suppressed" not in geo
    check({**body, "communes": [f["properties"] for f in geo["features"]]}, want)
    assert geo["computed_at"] == body["computed_at"]  # one computation served both
    ranking = client.get("/api/transparency/ranking", params=params,
                         headers=staff).json()["ranking"]
    order = [x["code"] for x in ranking if x["code"] in (AGENCY_A, AGENCY_B)]
    # A: 4 on time of 5 due (0.8); B: fast rejection, end_in late, slow late, open late.
    assert order == [AGENCY_A, AGENCY_B]
    shares = [x["within_sla_share"] for x in ranking]
    assert shares == sorted(shares, reverse=True)


@pytest.mark.parametrize("params, lang, words", [
    ({"start": "2024-03-12", "end": "2024-03-10"}, "vi", "phải sau ngày bắt đầu"),
    ({"start": "2024-03-12", "end": "2024-03-12"}, "en", "must be after start"),
    ({"start": "2000-01-01", "end": "2024-01-01"}, "vi", "không được dài quá"),
    ({"start": "10/03/2024"}, "vi", "YYYY-MM-DD"),
    ({"end": "2024-02-30"}, "en", "date"),
])
def test_bad_periods_are_400_in_the_users_language(client, params, lang, words) -> None:
    r = client.get("/api/transparency/agencies", params={**params, "lang": lang})
    assert r.status_code == 400, r.text
    assert r.json()["parameter"] in ("start", "end")
    assert words in r.json()["detail"]


def test_overdue_map_is_public(client, scene) -> None:
    r = client.get("/api/transparency/overdue", params={"agency": AGENCY_B})
    assert r.status_code == 200
    features = r.json()["features"]
    services = {f["properties"]["service_code"]: f for f in features}
    assert set(services) == {"noise"}  # end_in, slow...: answered; open_sensitive is overdue
    noise = services["noise"]
    assert noise["properties"]["description"] is None and noise["properties"]["sensitive"]
    lon, lat = noise["geometry"]["coordinates"]
    assert round(lon, 3) == lon and round(lat, 3) == lat
    a = client.get("/api/transparency/overdue", params={"agency": AGENCY_A}).json()["features"]
    assert [f["properties"]["description"] for f in a] == [PUBLIC_DESCRIPTION]


def test_no_personal_data_and_no_security_event(client, conn, scene) -> None:
    params = {"start": START.isoformat(), "end": END.isoformat()}
    texts = [client.get(f"/api/transparency/{what}", params=params).text
             for what in ("agencies", "communes", "ranking")]
    texts.append(client.get("/api/transparency/overdue").text)
    texts.append(client.get("/api/transparency/ranking", params={**params, "by": "commune"}).text)
    ids = scene["ids"]
    for text in texts:
        for secret in (SECRET_NAME, SECRET_PHONE, SECRET_DESCRIPTION, TITLE, "token"):
            assert secret not in text
    overdue = client.get("/api/transparency/overdue").json()["features"]
    assert all(set(f) == {"type", "geometry", "properties"} for f in overdue)
    assert not any("id" in f["properties"] for f in overdue)
    # The security event was resolved in an hour in commune 1 by A: had it counted, A would
    # have 6 reports and commune 1 one more than the independent computation (which drops it).
    got = transparency.figures(conn, START, END)
    assert next(x for x in got["agencies"] if x["code"] == AGENCY_A)["received"] == 5
    assert ids["security"] and conn.execute(
        "SELECT answered_at IS NOT NULL FROM incidents WHERE id = %s", (ids["security"],)
    ).fetchone()[0]


def test_the_first_answer_is_kept_by_the_trigger(conn, scene) -> None:
    """incidents.answered_at (what the figures read) is the first answer in the transitions."""
    iid = scene["ids"]["reopened"]
    row = conn.execute("SELECT answered_at, answer, resolved_at FROM incidents WHERE id = %s",
                       (iid,)).fetchone()
    assert row == (at(10, 12), "resolved", at(15, 12))


def test_ranking_ties_share_a_rank() -> None:
    rows = [{"code": c, "due": d, "within_sla_share": s, "median_hours": m}
            for c, d, s, m in (("X", 2, 0.5, 3.0), ("Y", 1, 0.5, 3.0), ("Z", 4, 1.0, 9.0),
                               ("W", 0, None, None))]
    ranked = transparency.ranking(rows)
    assert [(r["code"], r["rank"]) for r in ranked] == [("Z", 1), ("X", 2), ("Y", 2)]


def test_kept_figures_are_served_then_recomputed(client, conn, scene, keys) -> None:
    """A period is computed once and served from transparency_figures while fresh; a report
    answered meanwhile shows once the figures are older than FRESH; the refresh task
    recomputes watched periods ahead, and the page's periods without being asked."""
    transparency.forget(conn)
    params = {"start": START.isoformat(), "end": END.isoformat()}
    first = client.get("/api/transparency/agencies", params=params).json()
    again = client.get("/api/transparency/ranking", params=params).json()
    assert again["computed_at"] == first["computed_at"]
    kept = conn.execute("SELECT figures FROM transparency_figures WHERE start_day = %s AND"
                        " end_day = %s", (START, END)).fetchone()
    assert kept is not None and '"received"' in kept[0]
    # Figures older than FRESH are computed again on request, and equal the independent SQL.
    conn.execute("UPDATE transparency_figures SET computed_at = computed_at - %s, figures ="
                 " '{\"province\": null}'", (transparency.FRESH,))
    body = client.get("/api/transparency/agencies", params=params,
                      headers=keys["operator"]).json()
    assert body["province"] is not None and body["computed_at"] >= first["computed_at"]
    check({**body, "communes": transparency.figures(conn, START, END)["communes"]},
          independent(conn, START, END, dt.datetime.now(UTC)))
    # The refresh recomputes a watched period older than REFRESH_AFTER, and the offered ones.
    # Its clock is an hour ahead: the figures the queue's own periodic refresh may compute
    # meanwhile (the worker runs in this process) are older than REFRESH_AFTER for it too.
    conn.execute("UPDATE transparency_figures SET figures = '{}'")
    now = dt.datetime.now(UTC) + dt.timedelta(hours=1)
    offered = set(transparency.offered_periods(transparency.today_vn(now)))
    assert transparency.refresh(conn, now) == 1 + len(offered - {(START, END)})
    rows = dict(((r[0], r[1]), r[2]) for r in conn.execute(
        "SELECT start_day, end_day, figures FROM transparency_figures"))
    assert set(rows) == {(START, END), *offered}
    assert "{}" not in rows.values()
    assert transparency.refresh(conn, now) == 0  # all fresh: nothing recomputed
    # A period nobody asked for in DROP_AFTER goes; the page's own come back at once.
    conn.execute("UPDATE transparency_figures SET requested_at = %s",
                 (now - transparency.DROP_AFTER - dt.timedelta(seconds=1),))
    transparency.refresh(conn, now)
    assert {(r[0], r[1]) for r in conn.execute(
        "SELECT start_day, end_day FROM transparency_figures")} == offered


# --- small counts for the public (issue 17) -------------------------------------------------------


def test_public_figures_hide_small_counts(client, conn, scene, keys) -> None:
    """The public gets the catalogue's rule (incidents' Aggregates.min_count, 3): in the scene
    commune one has 6 reports (4 resolved, 2 open) and commune two 4 (2 resolved, 1 rejected,
    1 open), so every breakdown count is hidden (the 2s and the 1s, and the 4 that the
    province's 6 resolved would otherwise give back), the communes' received (6 and 4) and
    their medians (4 and 3 answered) stay, the province's totals stay; the agencies (most are
    a commune's committee) get the same rule; staff see all of it."""
    from layers.catalogue import get_layer

    k = get_layer("incidents").aggregates.min_count
    assert k == 3
    transparency.forget(conn)
    params = {"start": START.isoformat(), "end": END.isoformat()}
    c1, c2 = scene["communes"]
    want = independent(conn, START, END, dt.datetime.now(UTC))
    r = client.get("/api/transparency/communes", params=params)
    assert r.status_code == 200 and r.headers["cache-control"].startswith("public")
    geo = r.json()
    assert geo["suppressed"] is True and geo["min_count"] == k
    assert geo["suppression_note"]["vi"].startswith("Để bảo vệ")
    rows = {f["properties"]["code"]: f["properties"] for f in geo["features"]}
    for code, row in rows.items():
        exact = want.get(("commune", code), figures_of([]))
        for f in ("received", "resolved", "rejected", "open", "within_sla", "due"):
            assert row[f] is None or row[f] == 0 or row[f] >= k, (code, f, row[f])
            assert row[f] is None or row[f] == exact[f], (code, f)
        answered = exact["resolved"] + exact["rejected"]
        if 0 < answered < k:
            assert row["median_hours"] is None and row["p90_hours"] is None, code
    one, two = rows[c1], rows[c2]
    assert (one["received"], one["resolved"], one["rejected"], one["open"]) == (6, None, 0, None)
    assert (two["received"], two["resolved"], two["rejected"], two["open"]) == (4, None, None, None)
    assert one["suppressed"] and two["suppressed"]
    assert one["median_hours"] == want[("commune", c1)]["median_hours"]
    assert two["median_hours"] == want[("commune", c2)]["median_hours"]  # 3 answered
    body = client.get("/api/transparency/agencies", params=params).json()
    prov = want[("province", None)]
    assert body["province"]["received"] == prov["received"] == 10
    assert body["province"]["resolved"] == prov["resolved"] == 6
    # the agencies: the single unassigned report is hidden, and so is B's received (4: the
    # smaller of A's 5 and B's 4), else the province's 10 minus A's and B's would give it
    assert body["suppressed"] is True
    a = next(x for x in body["agencies"] if x["code"] == AGENCY_A)
    b = next(x for x in body["agencies"] if x["code"] == AGENCY_B)
    assert body["unassigned"]["received"] is None and a["received"] == 5
    assert (b["received"], b["resolved"], b["rejected"], b["open"]) == (None, None, None, None)
    for a in [*body["agencies"], body["unassigned"]]:
        for f in ("received", "resolved", "rejected", "open", "within_sla", "due"):
            assert a[f] is None or a[f] == 0 or a[f] >= k, (a.get("code"), f)
    by_agency = client.get("/api/transparency/ranking", params=params).json()["ranking"]
    assert all(x["within_sla_share"] is not None and x["due"] >= k for x in by_agency)
    staff_b = next(x for x in client.get("/api/transparency/agencies", params=params,
                                         headers=keys["operator"]).json()["agencies"]
                   if x["code"] == AGENCY_B)
    assert (staff_b["received"], staff_b["rejected"]) == (4, 1)
    # the ranking by commune lists only communes whose place follows from published figures
    ranked = client.get("/api/transparency/ranking", params={**params, "by": "commune"}).json()
    assert ranked["suppressed"] is True
    for x in ranked["ranking"]:
        assert x["due"] >= k and x["within_sla_share"] is not None
    # staff: exact, privately cached
    staff = client.get("/api/transparency/communes", params=params, headers=keys["operator"])
    assert staff.headers["cache-control"] == "private, max-age=0"
    srows = {f["properties"]["code"]: f["properties"] for f in staff.json()["features"]}
    assert (srows[c2]["resolved"], srows[c2]["rejected"], srows[c2]["open"]) == (2, 1, 1)
    assert "suppressed" not in staff.json()


def test_public_rows_never_give_a_small_count_back() -> None:
    """public_rows on random sparse periods: nothing under 3 published, published values
    exact, the breakdown passes suppression's audit, a received count is never the only one
    hidden (the province total would give it), times hidden under 3 answered."""
    import random

    from gis.analysis import suppression

    rng = random.Random(17)
    k = 3
    for _ in range(300):
        rows = []
        for i in range(rng.randint(1, 30)):
            res, rej, opn = (rng.choice([0, 0, 0, 1, 2, 3, 5, 9]) for _ in range(3))
            due = rng.randint(0, res + rej + opn)
            within = rng.randint(0, min(due, res + rej))
            rows.append({"code": f"{i:05d}", "name": "x", "received": res + rej + opn,
                         "resolved": res, "rejected": rej, "open": opn,
                         "median_hours": 1.0 if res + rej else None,
                         "p90_hours": 2.0 if res + rej else None, "within_sla": within,
                         "due": due, "within_sla_share": within / due if due else None})
        out = transparency.public_rows(rows, k)
        counts = ("received", "resolved", "rejected", "open", "within_sla", "due")
        for r, o in zip(rows, out, strict=True):
            for f in counts:
                assert o[f] is None or o[f] == r[f], f
                assert o[f] is None or not suppression.small(o[f], k), (f, o[f])
            if suppression.small(r["resolved"] + r["rejected"], k):
                assert o["median_hours"] is None
        cells = [[r[c] for c in transparency.ANSWER_COUNTS] for r in rows]
        hidden = [[o[c] is None for c in transparency.ANSWER_COUNTS] for o in out]
        assert not suppression.recoverable(cells, hidden, k)
        lost = [o for r, o in zip(rows, out, strict=True) if r["received"] and o["received"] is None]
        # (a withheld table hides every commune's, zeros included)
        assert len(lost) != 1 or all(o["received"] is None for o in out)
        # a received count shown with hidden cells has two non-zero cells at least
        for r, o in zip(rows, out, strict=True):
            if o["received"] is not None and None in (o["resolved"], o["rejected"], o["open"]):
                assert sum(r[c] > 0 for c in transparency.ANSWER_COUNTS) >= 2
    assert transparency.public_rows(rows, 0) == rows  # staff: exact


def test_offered_periods_follow_the_vietnamese_calendar() -> None:
    assert transparency.offered_periods(dt.date(2026, 12, 31)) == [
        (dt.date(2026, 12, 2), dt.date(2027, 1, 1)), (dt.date(2026, 1, 1), dt.date(2027, 1, 1)),
        (dt.date(2026, 12, 1), dt.date(2027, 1, 1)), (dt.date(2026, 1, 1), dt.date(2027, 1, 1))]
    # 16:59 UTC on 31 January is still 31 January in Vietnam; 17:00 is 1 February.
    assert transparency.today_vn(dt.datetime(2026, 1, 31, 16, 59, tzinfo=UTC)) == dt.date(2026, 1, 31)
    assert transparency.today_vn(dt.datetime(2026, 1, 31, 17, 0, tzinfo=UTC)) == dt.date(2026, 2, 1)
