"""The leaders' dashboard's figures (gis/analysis/dashboard.py) against independent SQL and
Python on the sample province, Vietnam-time week boundaries with planted incidents, CSV equal to
JSON, security events hidden from operators, the weekly briefing PDF (read back with pypdf) and
the scheduled briefing stored and listed.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import statistics
from collections.abc import Iterator
from typing import Any

import pypdf
import pytest

from gis import fmt

WEEK = "2026-W48"
MONDAY = dt.date(2026, 11, 23)
OPEN = ("received", "verified", "assigned", "in_progress")


def vn(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), dt.timezone(dt.timedelta(hours=7)))


def sql_count(conn: Any, start: dt.datetime, end: dt.datetime, where: str = "TRUE",
              params: tuple = ()) -> int:
    return conn.execute(f"SELECT count(*) FROM incidents WHERE reported_at >= %s AND "  # noqa: S608
                        f"reported_at < %s AND {where}", (start, end, *params)).fetchone()[0]


def get(client: Any, url: str, headers: dict[str, str], **params: Any) -> Any:
    r = client.get(url, params=params, headers=headers)
    assert r.status_code == 200, r.text
    return r.json() if "json" in r.headers["content-type"] else r.text


def test_kpis_equal_independent_sql(client, conn, keys) -> None:
    k = get(client, "/api/dashboard/kpis", keys["leader"], week=WEEK)
    assert (k["week"], k["monday"], k["partial"]) == (WEEK, "2026-11-23", False)
    this = sql_count(conn, vn(MONDAY), vn(MONDAY + dt.timedelta(days=7)))
    last = sql_count(conn, vn(MONDAY - dt.timedelta(days=7)), vn(MONDAY))
    year = sql_count(conn, vn(MONDAY - dt.timedelta(days=364)), vn(MONDAY - dt.timedelta(days=357)))
    assert this > 0 and last > 0 and year > 0
    inc = k["incidents"]
    assert (inc["current"], inc["previous"], inc["year_ago"]) == (this, last, year)
    assert inc["change_vs_previous"] == round((this - last) * 100 / last, 1)
    assert inc["change_vs_year_ago"] == round((this - year) * 100 / year, 1)
    open_, overdue = conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE expected_at < now()) FROM incidents"
        " WHERE status = ANY(%s) AND duplicate_of IS NULL", (list(OPEN),)).fetchone()
    assert (k["reports"]["open"], k["reports"]["overdue"]) == (open_, overdue)
    assert overdue > 0
    # The median processing time: transparency's definition, recomputed in Python.
    rows = conn.execute(
        "SELECT extract(epoch FROM answered_at - reported_at) / 3600 FROM incidents"
        " WHERE service_code IS NOT NULL AND duplicate_of IS NULL AND reported_at >= %s"
        " AND reported_at < %s", (vn(MONDAY), vn(MONDAY + dt.timedelta(days=7)))).fetchall()
    answered = [float(r[0]) for r in rows if r[0] is not None]
    assert k["processing"]["received"] == len(rows)
    assert k["processing"]["answered"] == len(answered)
    assert k["processing"]["median_hours"] == pytest.approx(statistics.median(answered), abs=0.006)
    alerts = conn.execute("SELECT count(*) FROM sensor_alerts WHERE closed_at IS NULL").fetchone()[0]
    assert k["alerts"]["open"] == alerts


def test_the_current_week_is_compared_up_to_the_same_point(client, conn, keys) -> None:
    k = get(client, "/api/dashboard/kpis", keys["leader"])
    assert k["partial"] is True
    w = k["windows"]
    cur_end = dt.datetime.fromisoformat(w["current"]["end"])
    prev_end = dt.datetime.fromisoformat(w["previous"]["end"])
    assert cur_end - prev_end == dt.timedelta(days=7)
    assert k["incidents"]["previous"] == sql_count(
        conn, dt.datetime.fromisoformat(w["previous"]["start"]), prev_end)


@pytest.fixture
def planted(conn) -> Iterator[tuple[str, list[int]]]:
    """Two patrol fires in one commune, one second either side of the Monday 00:00 (Vietnam
    time) that starts week 49: Sunday 23:59:59 belongs to week 48."""
    code = conn.execute("SELECT code FROM admin_units WHERE level = 'commune' AND valid_to IS NULL"
                        " ORDER BY code LIMIT 1").fetchone()[0]
    monday_utc = dt.datetime(2026, 11, 29, 17, 0, tzinfo=dt.UTC)  # 2026-11-30 00:00 in Vietnam
    ids = [conn.execute(
        "INSERT INTO incidents (category, severity, status, source, title, reported_at, geom,"
        " commune_code) SELECT 'fire', 2, 'received', 'patrol', 'test dashboard', %s,"
        " ST_PointOnSurface(geom), code FROM admin_units WHERE code = %s AND valid_to IS NULL"
        " RETURNING id", (at, code)).fetchone()[0]
        for at in (monday_utc - dt.timedelta(seconds=1), monday_utc)]
    yield code, ids
    conn.execute("DELETE FROM incidents WHERE id = ANY(%s)", (ids,))


def test_vietnam_week_boundaries(client, conn, keys, planted) -> None:
    code, ids = planted
    f = {"category": "fire", "source": "patrol", "unit": code}
    counts = {}
    for week in ("2026-W48", "2026-W49"):
        counts[week] = get(client, "/api/dashboard/kpis", keys["leader"], week=week,
                           **f)["incidents"]["current"]
    conn.execute("UPDATE incidents SET source = 'hotline' WHERE id = ANY(%s)", (ids,))
    for week in ("2026-W48", "2026-W49"):
        without = get(client, "/api/dashboard/kpis", keys["leader"], week=week,
                      **f)["incidents"]["current"]
        assert counts[week] - without == 1, week
    conn.execute("UPDATE incidents SET source = 'patrol' WHERE id = ANY(%s)", (ids,))
    # By hour and day of week: Sunday 23 h and Monday 0 h, Vietnam time.
    m = get(client, "/api/dashboard/series/hour-weekday", keys["leader"],
            start="2026-11-29T16:00:00Z", end="2026-11-29T18:00:00Z", **f)["matrix"]
    assert m[6][23] == 1 and m[0][0] == 1 and sum(map(sum, m)) == 2
    # By day: the two fall on two Vietnamese days.
    s = get(client, "/api/dashboard/series/categories", keys["leader"],
            start="2026-11-29T00:00:00+07:00", end="2026-12-01T00:00:00+07:00", **f)
    assert s["buckets"] == ["2026-11-29", "2026-11-30"]
    fire = next(x for x in s["series"] if x["category"] == "fire")
    assert fire["counts"] == [sql_count(conn, vn(dt.date(2026, 11, 29)), vn(dt.date(2026, 11, 30)),
                                        "category = 'fire' AND source = 'patrol' AND commune_code = %s",
                                        (code,)),
                              sql_count(conn, vn(dt.date(2026, 11, 30)), vn(dt.date(2026, 12, 1)),
                                        "category = 'fire' AND source = 'patrol' AND commune_code = %s",
                                        (code,))]
    assert fire["counts"][0] >= 1 and fire["counts"][1] >= 1


WINDOW = {"start": "2026-10-01T00:00:00+07:00", "end": "2026-12-01T00:00:00+07:00"}


def test_series_equal_independent_sql(client, conn, keys) -> None:
    start, end = vn(dt.date(2026, 10, 1)), vn(dt.date(2026, 12, 1))
    s = get(client, "/api/dashboard/series/categories", keys["leader"], **WINDOW)
    assert s["unit"] == "day" and len(s["buckets"]) == 61
    assert s["total"] == sql_count(conn, start, end)
    day = dt.date(2026, 11, 15)
    i = s["buckets"].index(day.isoformat())
    traffic = next(x for x in s["series"] if x["category"] == "traffic_accident")
    assert traffic["counts"][i] == sql_count(conn, vn(day), vn(day + dt.timedelta(days=1)),
                                             "category = 'traffic_accident'")
    c = get(client, "/api/dashboard/series/communes", keys["leader"], top=5, **WINDOW)
    expected = conn.execute(
        "SELECT commune_code, count(*) FROM incidents WHERE reported_at >= %s AND reported_at < %s"
        " GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 5", (start, end)).fetchall()
    assert [(r["code"], r["current"]) for r in c["communes"]] == [tuple(e) for e in expected]
    first = c["communes"][0]
    assert first["previous"] == sql_count(conn, start - (end - start), start, "commune_code = %s",
                                          (first["code"],))
    # Hour and weekday, Vietnam time, as PostgreSQL's own time-zone conversion puts them.
    m = get(client, "/api/dashboard/series/hour-weekday", keys["leader"], **WINDOW)["matrix"]
    local = "reported_at AT TIME ZONE 'Asia/Ho_Chi_Minh'"
    want = [[0] * 24 for _ in range(7)]
    for dow, hour, n in conn.execute(
            f"SELECT extract(isodow FROM {local})::int, extract(hour FROM {local})::int,"  # noqa: S608
            " count(*) FROM incidents WHERE reported_at >= %s AND reported_at < %s GROUP BY 1, 2",
            (start, end)).fetchall():
        want[dow - 1][hour] = n
    assert m == want and sum(map(sum, m)) == s["total"]


def _csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))


def _cell(v: Any) -> str:
    return "" if v is None else str(v)


def test_csv_equals_json(client, keys) -> None:
    h = keys["leader"]
    cats = get(client, "/api/dashboard/series/categories", h, **WINDOW)
    rows = _csv(get(client, "/api/dashboard/series/categories", h, f="csv", **WINDOW))
    assert rows[0] == ["bucket_start", *(s["category"] for s in cats["series"]), "total"]
    assert [r[0] for r in rows[1:]] == cats["buckets"]
    for j, s in enumerate(cats["series"]):
        assert [int(r[j + 1]) for r in rows[1:]] == s["counts"]
    hw = get(client, "/api/dashboard/series/hour-weekday", h, **WINDOW)
    r = client.get("/api/dashboard/series/hour-weekday", params=WINDOW,
                   headers={**h, "Accept": "text/csv"})
    assert r.headers["content-type"].startswith("text/csv")
    assert [[int(x) for x in row[1:]] for row in _csv(r.text)[1:]] == hw["matrix"]
    com = get(client, "/api/dashboard/series/communes", h, **WINDOW)
    rows = _csv(get(client, "/api/dashboard/series/communes", h, f="csv", **WINDOW))
    assert rows[1:] == [[x["code"], x["name"], str(x["current"]), str(x["previous"]),
                         str(x["difference"]), _cell(x["change"])] for x in com["communes"]]
    k = get(client, "/api/dashboard/kpis", h, week=WEEK)
    rows = {r[0]: r[1:] for r in _csv(get(client, "/api/dashboard/kpis", h, week=WEEK, f="csv"))}
    assert rows["incidents"] == [str(k["incidents"][x]) for x in ("current", "previous", "year_ago")]
    assert rows["overdue_reports"][0] == str(k["reports"]["overdue"])
    assert rows["median_processing_hours"][0] == _cell(k["processing"]["median_hours"])


def test_security_events_only_for_their_roles(client, conn, keys) -> None:
    end = vn(MONDAY + dt.timedelta(days=7))
    security = sql_count(conn, vn(MONDAY), end, "category = 'security_event'")
    assert security > 0
    leader = get(client, "/api/dashboard/kpis", keys["leader"], week=WEEK)["incidents"]["current"]
    operator = get(client, "/api/dashboard/kpis", keys["operator"], week=WEEK)["incidents"]["current"]
    assert leader - operator == security
    only = get(client, "/api/dashboard/kpis", keys["operator"], week=WEEK,
               category="security_event")["incidents"]["current"]
    assert only == 0
    s = get(client, "/api/dashboard/series/categories", keys["operator"], **WINDOW)
    assert "security_event" not in {x["category"] for x in s["series"]}
    assert client.get("/api/dashboard/kpis").status_code == 404  # anonymous: no such thing
    assert client.get("/api/dashboard/kpis", headers=keys["citizen"]).status_code == 404
    # The leader's read carries security events: audited; the operator's does not.
    audited = conn.execute(
        "SELECT count(*) FROM audit_log WHERE target->>'channel' = 'dashboard'"
        " AND path = '/api/dashboard/kpis' AND username = %s",
        (client.get("/api/auth/session", headers=keys["leader"]).json().get("user"),)).fetchone()[0]
    assert audited > 0


@pytest.mark.parametrize("params,field", [({"week": "2026-13"}, "week"), ({"week": "9999-W52"}, "week"),
                                          ({"week": "0001-01-01"}, "week"),
                                          ({"source": "pigeon"}, "source"),
                                          ({"order": "random"}, "order"),
                                          ({"nonsense": "1"}, "nonsense")])
def test_bad_input_is_a_400_naming_the_field(client, keys, params, field) -> None:
    url = "/api/dashboard/series/communes" if "order" in params else "/api/dashboard/kpis"
    r = client.get(url, params=params, headers=keys["leader"])
    assert r.status_code == 400, r.text
    assert field in r.text


def test_briefing_pdf(client, conn, keys) -> None:
    r = client.get("/api/dashboard/briefing.pdf", params={"week": WEEK}, headers=keys["leader"])
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    text = "\n".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(r.content)).pages)
    assert "BẢN TIN TUẦN" in text and "23/11/2026" in text and "29/11/2026" in text
    k = get(client, "/api/dashboard/kpis", keys["leader"], week=WEEK)
    for value in (k["incidents"]["current"], k["incidents"]["previous"],
                  k["incidents"]["year_ago"], k["reports"]["overdue"]):
        assert fmt.number(value, "vi", 0) in text
    assert fmt.number(k["processing"]["median_hours"], "vi", 2) in text
    oldest = conn.execute(
        "SELECT id FROM incidents WHERE status = ANY(%s) AND duplicate_of IS NULL"
        " AND expected_at < now() ORDER BY expected_at, id LIMIT 1", (list(OPEN),)).fetchone()[0]
    overdue = text.split("6. Phản ánh quá hạn chưa xử lý")[1]
    assert f"\n{oldest}\n" in overdue and " ngày\n" in overdue
    assert "Phản ánh quá hạn chưa xử lý" in text and "ngày" in text
    # the choropleth of the week's rates per commune, its legend the API's breaks, and the map
    # of hot spots of the four weeks, its legend with the API's number of cells per class
    assert "Tỷ lệ sự cố trong tuần theo xã/phường" in text
    assert "Sự cố/1.000 dân (ngắt tự nhiên, Jenks)" in text
    rates = get(client, "/api/incidents/rates", keys["leader"], start="2026-11-23",
                end="2026-11-29")
    for b in rates["legend"]["breaks"]:
        assert fmt.number(b, "vi", 2) in text
    hot = get(client, "/api/incidents/hotspots", keys["leader"], start="2026-11-02",
              end="2026-11-29", cell_m=1000, bin="weekly")
    assert "Điểm nóng có ý nghĩa thống kê trong 4 tuần gần nhất" in text
    assert f"Điểm nóng, tin cậy 99 % ({fmt.number(hot['summary']['hot_99'], 'vi', 0)} ô)" in text
    # No reporter's name: the overdue list carries none of the reporters' fields.
    names = [r[0] for r in conn.execute(
        "SELECT last_name FROM incident_reporters WHERE last_name IS NOT NULL LIMIT 50")]
    assert not any(n and len(n) > 3 and f" {n} " in text for n in names)
    _check_indicator_changes(conn, text, None)
    # One commune's briefing names it.
    code, name = conn.execute("SELECT code, name FROM admin_units WHERE level = 'commune'"
                              " AND valid_to IS NULL ORDER BY code LIMIT 1").fetchone()
    r = client.get("/api/dashboard/briefing.pdf", params={"week": WEEK, "unit": code},
                   headers=keys["operator"])
    text = "\n".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(r.content)).pages)
    assert name in text and "An ninh" not in text.split("4. Thay đổi")[1].split("5.")[0]
    _check_indicator_changes(conn, text, code)


def _check_indicator_changes(conn, text: str, commune: str | None) -> None:
    """Section 7 lists the unit's indicators that changed most between their two latest periods
    (begun before the week's end), largest relative change first: the same rows, figures and
    order as computed here from the stored values (the sample's indicators are public or
    internal, which leaders and operators both read)."""
    from gis.indicators.periods import label

    week_end = dt.date(2026, 11, 30)
    unit_id = conn.execute(
        "SELECT id FROM admin_units WHERE valid_to IS NULL AND CASE WHEN %(c)s::text IS NULL"
        " THEN level = 'province' ELSE code = %(c)s END", {"c": commune}).fetchone()[0]
    series: dict[str, list] = {}
    meta = {}
    for code, name_vi, name_en, unit_vi, decimals, period, value in conn.execute(
            "SELECT i.code, i.name_vi, i.name_en, i.unit_vi, i.decimals, v.period, v.value"
            " FROM indicator_values v JOIN indicators i ON i.code = v.indicator_code"
            " WHERE v.unit_id = %s AND v.period_start < %s AND i.access IN ('public', 'internal')"
            " ORDER BY v.period_start", (unit_id, week_end)):
        series.setdefault(code, []).append((period, value))
        meta[code] = (name_vi, name_en, unit_vi, decimals)
    changes = []
    for code, values in series.items():
        if len(values) >= 2 and values[-2][1] != 0:
            (p0, v0), (p1, v1) = values[-2:]
            changes.append((abs(v1 - v0) / abs(v0), code, p0, v0, p1, v1, (v1 - v0) / abs(v0) * 100))
    changes.sort(key=lambda c: -c[0])
    top = changes[:10]
    assert len(top) == 10
    section = text.split("7. Chỉ tiêu kinh tế – xã hội thay đổi nhiều nhất")[1]
    flat = " ".join(section.split())
    at = 0
    for _, code, p0, v0, p1, v1, pct in top:
        name_vi, name_en, unit_vi, decimals = meta[code]
        direction = "tăng" if pct > 0 else "giảm" if pct < 0 else "không đổi"
        figures = (f"{label(p0)}: {fmt.number(v0, 'vi', decimals)} "
                   f"{label(p1)}: {fmt.number(v1, 'vi', decimals)} "
                   f"{direction} {'+' if pct > 0 else ''}{fmt.number(pct, 'vi', 1)} %")
        found = flat.find(figures, at)
        assert found > at, (code, figures)
        # Vietnamese name first, the English beneath it, then the unit of measure
        row = flat[at:found]
        assert " ".join(name_vi.split()) in row and " ".join(name_en.split()) in row, code
        assert row.rstrip().endswith(" ".join(unit_vi.split())), (code, row[-40:])
        at = found + len(figures)


def test_scheduled_briefing_is_stored_and_listed(client, keys, tmp_path, monkeypatch) -> None:
    from gis.dashboard import jobs
    from gis.jobs.queue import app

    monkeypatch.setenv("GEOIOC_BRIEFINGS_DIR", str(tmp_path))
    crons = {p.task.name: p.cron for p in app.periodic_registry.periodic_tasks.values()}
    assert crons["dashboard.weekly_briefing"] == "0 0 * * 1"  # Monday 07:00 in Vietnam
    monday_7am = dt.datetime(2026, 11, 30, 0, 0, tzinfo=dt.UTC)
    name = jobs.weekly_briefing(int(monday_7am.timestamp()))
    assert name == "ban-tin-tinh-2026-W48.pdf"
    assert (tmp_path / name).read_bytes().startswith(b"%PDF")
    listed = get(client, "/api/dashboard/briefings", keys["leader"])["briefings"]
    assert [b["name"] for b in listed] == [name] and listed[0]["week"] == "2026-W48"
    r = client.get(f"/api/dashboard/briefings/{name}", headers=keys["leader"])
    assert r.status_code == 200 and r.content == (tmp_path / name).read_bytes()
    # Made for the leaders' view (security events in it): not an operator's.
    assert get(client, "/api/dashboard/briefings", keys["operator"])["briefings"] == []
    assert client.get(f"/api/dashboard/briefings/{name}",
                      headers=keys["operator"]).status_code == 404


def test_panel_registry(client, keys) -> None:
    reg = get(client, "/api/dashboard/panels", keys["operator"])
    panels = {p["id"]: p for p in reg["panels"]}
    assert all(p["available"] for p in panels.values())
    assert set(panels) == {"kpis", "by-category", "hour-weekday", "communes", "indicator-trends",
                           "indicator-communes", "choropleth", "heatmap", "hotspots"}
    assert reg["province"]["code"] == "24"
    for p in panels.values():
        if p["csv"] == "server":
            assert client.get(p["url"], headers=keys["operator"]).status_code == 200


def panel_url(panel: dict[str, Any], fill: dict[str, str], filters: dict[str, str]) -> tuple[str, dict]:
    """The URL and parameters the page asks a panel's data with (web/static/dashboard/app.js)."""
    url = panel["url"].replace("{code}", fill.get("{code}", ""))
    params = {k: fill.get(v, v) for k, v in panel["params"].items()}
    if panel["filters"] == "incidents":
        params.update(filters)
    return url, params


def test_the_five_analytics_panels_serve_the_analytics_apis(client, conn, keys) -> None:
    """The indicator trend and comparison, the choropleth, the KDE heatmap and the hot-spot
    map: available, their URLs the analytics API's own, their numbers those of independent SQL."""
    h = keys["leader"]
    reg = get(client, "/api/dashboard/panels", h)
    panels = {p["id"]: p for p in reg["panels"]}
    province = reg["province"]["code"]
    pop = get(client, "/api/indicators/POP", h)
    fill = {"{code}": "POP", "{unit}": province, "{period}": pop["last_period"]}
    start, end = vn(dt.date(2026, 10, 1)), vn(dt.date(2026, 12, 1))
    incidents = sql_count(conn, start, end)

    url, params = panel_url(panels["indicator-trends"], fill, WINDOW)
    assert (url, params) == ("/api/indicators/POP/series", {"unit": province})
    trend = get(client, url, h, **params)
    expected = conn.execute(
        "SELECT v.period, v.value FROM indicator_values v JOIN admin_units u ON u.id = v.unit_id"
        " WHERE v.indicator_code = 'POP' AND u.code = %s AND u.valid_to IS NULL ORDER BY v.period",
        (province,)).fetchall()
    assert [(r["period"], r["value"]) for r in trend["series"]] == [tuple(e) for e in expected]
    assert len(expected) >= 5

    url, params = panel_url(panels["indicator-communes"], fill, WINDOW)
    assert url == "/api/indicators/POP/compare" and params == {"period": pop["last_period"]}
    cmp_ = get(client, url, h, **params)
    values = [r["value"] for r in cmp_["communes"]]
    assert values == sorted(values, reverse=True) and cmp_["stats"]["n"] == len(values) > 50
    assert cmp_["stats"]["median"] == statistics.median(values)

    url, params = panel_url(panels["choropleth"], fill, WINDOW)
    assert url == "/api/incidents/rates" and params["format"] == "geojson"
    rates = get(client, url, h, **params)
    assert rates["legend"]["classification"] == "natural_breaks" and len(rates["legend"]["breaks"]) == 5
    assert rates["total"] == incidents
    assert sum(f["properties"]["count"] for f in rates["features"]) == incidents
    quant = get(client, url, h, **{**params, "classification": "quantiles"})
    assert quant["legend"]["classification"] == "quantiles"

    url, params = panel_url(panels["heatmap"], fill, WINDOW)
    assert url == "/api/incidents/density" and params["scale"] == "fixed"
    kde = get(client, url, h, **params)
    assert kde["total"] == incidents and kde["legend"]["unit"]["vi"] == "sự cố/km²"
    assert kde["mass"] == pytest.approx(incidents, rel=0.01)
    # the fixed scale: another window of the same length, the same legend
    other = get(client, url, h, **{**params, "start": "2026-08-01T00:00:00+07:00",
                                   "end": "2026-10-01T00:00:00+07:00"})
    assert other["legend"]["breaks"] == kde["legend"]["breaks"] and other["total"] != kde["total"]

    url, params = panel_url(panels["hotspots"], fill, WINDOW)
    assert url == "/api/incidents/hotspots" and params["cell_m"] == "1000"
    hot = get(client, url, h, **params)
    assert hot["total"] == incidents and sum(hot["summary"].values()) == hot["cells"] == len(hot["features"])
    assert hot["summary"]["hot_99"] > 0
    assert sum(f["properties"]["count"] for f in hot["features"]) == incidents


def test_one_400_lists_every_bad_filter(client, keys) -> None:
    """The dashboard's filters are the shared IncidentFilter's: every bad one in one answer."""
    r = client.get("/api/dashboard/series/categories", headers=keys["leader"],
                   params={"source": "pigeon", "category": "dragons", "severity": "9",
                           "boundaries": "current", "as_of": "2025-06-30"})
    assert r.status_code == 400, r.text
    fields = {e["field"] for e in r.json()["errors"]}
    assert {"source", "category", "severity", "as_of"} <= fields
    # a unit unknown on that day is a 404 naming it, as on the map
    r = client.get("/api/dashboard/kpis", headers=keys["leader"], params={"unit": "99999"})
    assert r.status_code == 404 and "99999" in r.text
