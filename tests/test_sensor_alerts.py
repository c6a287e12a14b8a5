"""Sensor alerts (gis/sensors/alerts.py): a threshold breach opens one alert, escalates it to one
incident and closes it after readings have been normal for the rule's time; a silent station
raises its alert; rate of change; no duplicate under repeated and concurrent evaluation;
operators acknowledge (timestamped, audited); Vietnamese titles in Vietnam time; the API.

Each test makes its own stations (sensors rows: the migration's trigger gives them their
datastreams) and writes observations with SQL into `observations`, then rebuilds the
datastream's rollups and latest row with observation_rollups_rebuild (migration 0020's way
for data that did not come through the ingest). Times are a few days back, inside the sample's
partitions and far enough from the present that the minute's sweep (the job queue of a live
server, when one runs in this session) finds nothing to decide about these stations; stations
are in maintenance (not expected to report) except the one whose silence is tested.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from gis import fmt
from gis.jobs import queue
from gis.reports import workflow
from gis.sensors import alerts
from layers.access import Principal

VN = dt.timezone(dt.timedelta(hours=7))
AGENCY = "TEST-ALERTS"


def _hm(at: dt.datetime) -> str:
    return at.astimezone(VN).strftime("%H:%M %d/%m/%Y")


@pytest.fixture(scope="module")
def base(conn) -> dt.datetime:
    """An hour three days back (UTC), with the months around it partitioned."""
    now = conn.execute("SELECT date_trunc('hour', now())").fetchone()[0]
    start = now - dt.timedelta(days=3)
    conn.execute("SELECT observations_create_partitions(%s, %s)",
                 ((start - dt.timedelta(days=3)).date(), (start + dt.timedelta(days=2)).date()))
    return start.astimezone(dt.UTC)


@pytest.fixture(scope="module")
def place(conn) -> Iterator[dict[str, Any]]:
    """A current commune and a point inside it; a test agency."""
    code, name, lon, lat = conn.execute(
        "SELECT code, name, ST_X(p), ST_Y(p) FROM (SELECT code, name, ST_PointOnSurface(geom) AS p"
        " FROM admin_units WHERE level = 'commune' AND valid_to IS NULL ORDER BY code LIMIT 1) q"
    ).fetchone()
    conn.execute("DELETE FROM agencies WHERE code = %s", (AGENCY,))
    conn.execute("INSERT INTO agencies (code, name_vi, name_en) VALUES (%s, 'Đơn vị thử cảnh báo',"
                 " 'Alert test agency')", (AGENCY,))
    yield {"commune": code, "commune_name": name, "lon": float(lon), "lat": float(lat)}
    conn.execute("DELETE FROM incident_transitions WHERE agency_code = %s", (AGENCY,))
    conn.execute("UPDATE incidents SET agency_code = NULL WHERE agency_code = %s", (AGENCY,))
    conn.execute("DELETE FROM agencies WHERE code = %s", (AGENCY,))


class Stations:
    """Test stations, removed at the end with their alerts and the incidents they made."""

    def __init__(self, conn: psycopg.Connection[Any], place: dict[str, Any]) -> None:
        self.conn, self.place = conn, place
        self.sensors: list[int] = []

    def add(self, parameter: str, *, status: str = "maintenance", dlon: float = 0.0) -> dict[str, Any]:
        kind = "air" if parameter in ("pm25", "pm10", "no2") else "water"
        code = f"{'AIR' if kind == 'air' else 'WAT'}-9{uuid.uuid4().int % 10**5:05d}"
        unit = {"pm25": "µg/m³", "pm10": "µg/m³", "no2": "µg/m³", "ph": "pH",
                "dissolved_oxygen": "mg/L", "cod": "mg/L", "turbidity": "NTU"}[parameter]
        sid = self.conn.execute(
            "INSERT INTO sensors (code, name, kind, parameter, unit, threshold, status, geom)"
            " VALUES (%s, %s, %s, %s, %s, 1, %s, ST_SetSRID(ST_MakePoint(%s, %s), 4326))"
            " RETURNING id",
            (code, f"Trạm thử cảnh báo {code}", kind, parameter, unit, status,
             self.place["lon"] + dlon, self.place["lat"])).fetchone()[0]
        self.sensors.append(sid)
        return {"sensor": sid, "code": code, "ds": self.datastream(sid, parameter)}

    def datastream(self, sid: int, prop: str) -> int:
        """The station's datastream of PROP (made here when the trigger did not: VN_AQI)."""
        row = self.conn.execute(
            "SELECT d.id FROM datastreams d JOIN observed_properties p ON p.id = d.observed_property_id"
            " WHERE d.thing_id = %s AND p.code = %s", (sid, prop)).fetchone()
        if row:
            return int(row[0])
        return int(self.conn.execute(
            "INSERT INTO datastreams (thing_id, sensor_model_id, observed_property_id, name,"
            " unit_of_measurement) SELECT %s, m.id, p.id, 'thử', p.default_unit"
            " FROM observed_properties p, sensor_models m"
            " WHERE p.code = %s AND m.code = 'station-air' RETURNING id", (sid, prop)).fetchone()[0])

    def observe(self, ds: int, readings: list[tuple[dt.datetime, float]],
                arrived: dt.datetime | None = None) -> None:
        """READINGS stored, rollups and latest row rebuilt; ARRIVED: when they came in (the
        latest row's updated_at, which silence is measured from), default the last reading."""
        self.conn.execute(
            "INSERT INTO observations (datastream_id, phenomenon_time, result, result_time,"
            " feature_of_interest_id)"
            " SELECT %s, t, v, t, (SELECT l.feature_of_interest_id FROM thing_locations l"
            "   JOIN datastreams d ON d.thing_id = l.thing_id WHERE d.id = %s"
            "   ORDER BY l.time DESC LIMIT 1)"
            " FROM unnest(%s::timestamptz[], %s::float8[]) AS r(t, v)",
            (ds, ds, [t for t, _ in readings], [v for _, v in readings]))
        self.conn.execute("SELECT observation_rollups_rebuild(%s)", (ds,))
        self.conn.execute("UPDATE datastream_latest SET updated_at = %s WHERE datastream_id = %s",
                          (arrived or max(t for t, _ in readings), ds))

    def remove(self) -> None:
        self.conn.execute(
            "DELETE FROM incidents WHERE id IN (SELECT a.incident_id FROM sensor_alerts a"
            " JOIN datastreams d ON d.id = a.datastream_id WHERE d.thing_id = ANY(%s))",
            (self.sensors,))
        self.conn.execute("DELETE FROM sensors WHERE id = ANY(%s)", (self.sensors,))


@pytest.fixture()
def stations(conn, place) -> Iterator[Stations]:
    s = Stations(conn, place)
    yield s
    s.remove()


def hourly(start: dt.datetime, hours: int, value: float) -> list[tuple[dt.datetime, float]]:
    return [(start + dt.timedelta(hours=h), value) for h in range(hours)]


def alerts_of(conn, ds: int) -> list[dict[str, Any]]:
    cur = conn.execute(
        "SELECT a.id, r.code AS rule, a.status, a.value, a.limit_value, a.peak, a.normal_since,"
        " a.closed_at, a.incident_id, a.acknowledged_by FROM sensor_alerts a"
        " JOIN alert_rules r ON r.id = a.rule_id WHERE a.datastream_id = %s ORDER BY a.id", (ds,))
    names = [d.name for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def events_of(conn, alert_id: int) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT kind FROM sensor_alert_events WHERE alert_id = %s ORDER BY at, id", (alert_id,))]


def incident(conn, incident_id: int) -> dict[str, Any]:
    cur = conn.execute(
        "SELECT i.category, i.source, i.status, i.severity, i.title, i.description, i.commune_code,"
        " i.agency_code, ST_AsText(i.geom) AS geom, i.reported_at FROM incidents i WHERE i.id = %s",
        (incident_id,))
    names = [d.name for d in cur.description]
    return dict(zip(names, cur.fetchone(), strict=True))


def moves(conn, incident_id: int) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT from_status, to_status, actor, note FROM incident_transitions"
                        " WHERE incident_id = %s ORDER BY at, id", (incident_id,)).fetchall()


# --- rules as data ------------------------------------------------------------------------


def test_rules_are_seeded_from_the_regulations(conn) -> None:
    rules = {r[0]: r[1:] for r in conn.execute(
        "SELECT r.code, p.code, r.statistic, r.window_minutes, r.lower_limit, r.upper_limit,"
        " r.source FROM alert_rules r LEFT JOIN observed_properties p ON p.id = r.observed_property_id")}
    # QCVN 05:2023/BTNMT, Table 1: the averaging period is part of the limit.
    assert rules["qcvn05-pm25-24h"][:5] == ("pm25", "mean", 1440, None, 50)
    assert rules["qcvn05-pm25-year"][:5] == ("pm25", "mean", 525600, None, 25)
    assert rules["qcvn05-pm10-24h"][:5] == ("pm10", "mean", 1440, None, 100)
    assert rules["qcvn05-no2-1h"][:5] == ("no2", "mean", 60, None, 200)
    assert rules["qcvn05-no2-24h"][:5] == ("no2", "mean", 1440, None, 100)
    assert all("QCVN 05:2023/BTNMT" in v[5] for k, v in rules.items() if k.startswith("qcvn05"))
    # QCVN 08:2023/BTNMT, Table 2: pH 6.0-8.5, COD 20 mg/L, DO 4.0 mg/L.
    assert rules["qcvn08-ph"][3:5] == (6.0, 8.5)
    assert rules["qcvn08-cod"][4] == 20 and rules["qcvn08-do"][3] == 4.0
    assert "turbidity" not in {v[0] for v in rules.values() if v[1] is not None}
    assert rules["vnaqi-bad"][:5] == ("aqi", "latest", 120, None, 150)
    # Rate and silence rules say they are settings, not regulation values.
    assert "không phải giá trị quy chuẩn" in rules["silence"][5]
    assert "không phải giá trị quy chuẩn" in rules["rate-ph-change"][5]


def test_aqi_bands_of_decision_1459(client) -> None:
    r = client.get("/api/sensors/aqi-bands")
    assert r.status_code == 200
    bands = [(b["lower"], b["upper"], b["name_vi"], b["rgb"]) for b in r.json()["bands"]]
    assert bands == [(0, 50, "Tốt", [0, 228, 0]), (51, 100, "Trung bình", [255, 255, 0]),
                     (101, 150, "Kém", [255, 126, 0]), (151, 200, "Xấu", [255, 0, 0]),
                     (201, 300, "Rất xấu", [143, 63, 151]), (301, 500, "Nguy hại", [126, 0, 35])]
    rules = client.get("/api/sensors/alert-rules", params={"property": "pm25"}).json()["rules"]
    assert {r["code"] for r in rules} >= {"qcvn05-pm25-24h", "qcvn05-pm25-year", "rate-pm25-rise"}


def test_the_sweep_is_a_periodic_job() -> None:
    assert "gis.sensors.alert_jobs" in queue.TASK_MODULES
    from gis.sensors import alert_jobs

    assert alert_jobs.alerts_sweep.name == "sensors.alerts_sweep"
    periodic = {t.task.name for t in queue.app.periodic_registry.periodic_tasks.values()}
    assert {"sensors.alerts_sweep", "sensors.alerts_long"} <= periodic


# --- threshold -> one alert -> one incident -> closed on recovery --------------------------


def test_threshold_one_alert_one_incident_closed_on_recovery(conn, stations, place, base) -> None:
    st = stations.add("pm25")
    ds, t = st["ds"], base
    stations.observe(ds, hourly(t - dt.timedelta(hours=23), 24, 80.0))  # 24-hour mean 80 > 50

    done = alerts.evaluate(conn, [ds], t + dt.timedelta(minutes=5))
    assert len(done.opened) == 1 and len(done.incidents) == 1 and not done.closed
    [alert] = alerts_of(conn, ds)
    assert (alert["rule"], alert["status"], alert["value"], alert["limit_value"]) == \
        ("qcvn05-pm25-24h", "open", 80.0, 50.0)
    assert alert["incident_id"] == done.incidents[0]
    assert events_of(conn, alert["id"]) == ["opened", "escalated"]

    inc = incident(conn, alert["incident_id"])
    assert (inc["category"], inc["source"], inc["status"], inc["severity"]) == \
        ("environment", "sensor", "received", 3)
    assert inc["commune_code"] == place["commune"]
    assert inc["geom"] == conn.execute("SELECT ST_AsText(geom) FROM sensors WHERE id = %s",
                                       (st["sensor"],)).fetchone()[0]
    # What, how much, the limit, where and when - the reading's hour in Vietnam time.
    assert inc["title"] == (f"Bụi PM2.5 trung bình 24 giờ 80,0 µg/m³, vượt giới hạn 50 µg/m³ "
                            f"tại {st['code']} lúc {_hm(t)}")
    assert "QCVN 05:2023/BTNMT" in inc["description"] and place["commune_name"] in inc["description"]
    assert f"#{alert['id']}" in inc["description"]
    assert moves(conn, alert["incident_id"]) == [
        (None, "received", "system", f"Cảnh báo tự động #{alert['id']} (qcvn05-pm25-24h)")]

    # More readings above the limit, evaluated again and again: still one alert, one incident.
    for h in range(1, 4):
        stations.observe(ds, [(t + dt.timedelta(hours=h), 90.0)])
        for minute in (5, 20, 40):
            again = alerts.evaluate(conn, [ds], t + dt.timedelta(hours=h, minutes=minute))
            assert again.opened == () and again.incidents == ()
    [alert] = alerts_of(conn, ds)
    assert alert["peak"] == pytest.approx((80 * 21 + 90 * 3) / 24)
    assert conn.execute("SELECT count(*) FROM incidents WHERE id IN (SELECT incident_id FROM"
                        " sensor_alerts WHERE datastream_id = %s)", (ds,)).fetchone()[0] == 1

    # An operator acknowledges (the incident is verified) and assigns it to an agency.
    who = Principal("op-alerts", frozenset({"operator"}))
    alerts.acknowledge(conn, alert["id"], who, note="Đã báo đội môi trường",
                       now=t + dt.timedelta(hours=3, minutes=50))
    workflow.assign(conn, alert["incident_id"], AGENCY, actor="op-alerts",
                    at=t + dt.timedelta(hours=3, minutes=55))
    assert incident(conn, alert["incident_id"])["status"] == "assigned"

    # Back to normal: the 24-hour mean falls under 50 with the readings of the next 17 hours.
    stations.observe(ds, hourly(t + dt.timedelta(hours=4), 17, 5.0))
    normal = t + dt.timedelta(hours=20, minutes=5)
    assert alerts.evaluate(conn, [ds], normal).closed == ()
    [alert] = alerts_of(conn, ds)
    assert alert["status"] == "acknowledged" and alert["normal_since"] == normal
    # Not yet normal for the rule's 60 minutes ...
    assert alerts.evaluate(conn, [ds], normal + dt.timedelta(minutes=30)).closed == ()
    # ... then closed (by the minute's sweep: no data need arrive).
    done = alerts.sweep(conn, normal + dt.timedelta(minutes=61))
    assert alert["id"] in done.closed
    [alert] = alerts_of(conn, ds)
    assert alert["status"] == "closed" and alert["closed_at"] == normal + dt.timedelta(minutes=61)
    assert events_of(conn, alert["id"]) == ["opened", "escalated", "acknowledged", "normal", "closed"]
    inc = incident(conn, alert["incident_id"])
    assert inc["status"] == "resolved"
    last = moves(conn, alert["incident_id"])[-1]
    assert last[:3] == ("assigned", "resolved", "system")
    assert f"đã trở lại bình thường từ {fmt.datetime(normal)} (giờ Việt Nam)" in last[3]
    assert f"cảnh báo #{alert['id']} đã đóng" in last[3]
    # A new breach later is a new alert.
    stations.observe(ds, hourly(t + dt.timedelta(hours=21), 24, 120.0))
    done = alerts.evaluate(conn, [ds], t + dt.timedelta(hours=44, minutes=5))
    assert len(done.opened) == 1 and [a["status"] for a in alerts_of(conn, ds)] == ["closed", "open"]


def test_recovery_before_anyone_took_it_up_rejects_the_incident(conn, stations, base) -> None:
    """Water: the hourly mean of dissolved oxygen below 4.0 mg/L (QCVN 08:2023/BTNMT); nobody
    acknowledged or assigned it before it recovered: the incident is rejected with a note."""
    st = stations.add("dissolved_oxygen")
    ds, t = st["ds"], base
    stations.observe(ds, [(t, 3.4), (t + dt.timedelta(minutes=30), 3.2)])
    done = alerts.evaluate(conn, [ds], t + dt.timedelta(minutes=35))
    [alert] = alerts_of(conn, ds)
    assert alert["rule"] == "qcvn08-do" and alert["value"] == pytest.approx(3.3)
    title = incident(conn, done.incidents[0])["title"]
    assert title == (f"Oxy hòa tan (DO) trung bình 1 giờ 3,30 mg/L, dưới giới hạn tối thiểu "
                     f"4 mg/L tại {st['code']} lúc {_hm(t + dt.timedelta(minutes=30))}")
    stations.observe(ds, [(t + dt.timedelta(hours=1), 6.5)])
    alerts.evaluate(conn, [ds], t + dt.timedelta(hours=1, minutes=1))
    stations.observe(ds, [(t + dt.timedelta(hours=2), 6.6)])
    alerts.evaluate(conn, [ds], t + dt.timedelta(hours=2, minutes=1))
    [alert] = alerts_of(conn, ds)
    assert alert["status"] == "closed"
    inc = incident(conn, alert["incident_id"])
    assert inc["status"] == "rejected"
    last = moves(conn, alert["incident_id"])[-1]
    assert last[:2] == ("received", "rejected") and "không cần xử lý thêm" in last[3]


def test_a_breach_that_returns_restarts_the_count(conn, stations, base) -> None:
    st = stations.add("cod")
    ds, t = st["ds"], base
    stations.observe(ds, [(t, 26.0)])
    alerts.evaluate(conn, [ds], t + dt.timedelta(minutes=5))
    stations.observe(ds, [(t + dt.timedelta(hours=1), 12.0)])
    alerts.evaluate(conn, [ds], t + dt.timedelta(hours=1, minutes=5))   # normal from here
    stations.observe(ds, [(t + dt.timedelta(hours=2), 31.0)])
    alerts.evaluate(conn, [ds], t + dt.timedelta(hours=2, minutes=5))   # breach again
    alerts.evaluate(conn, [ds], t + dt.timedelta(hours=2, minutes=10))
    [alert] = alerts_of(conn, ds)
    assert alert["status"] == "open" and alert["normal_since"] is None and alert["peak"] == 31.0
    assert events_of(conn, alert["id"]) == ["opened", "escalated", "normal", "breach"]


@pytest.fixture()
def test_rule(conn, base) -> Iterator[Any]:
    """A rule of this test only, valid on the test's days alone (so that the minute's sweep of
    a live server, judging the present, never applies it); removed with its incidents."""
    codes: list[str] = []

    def make(columns: str, values: str, params: tuple[Any, ...]) -> str:
        code = f"test-{uuid.uuid4().hex[:8]}"
        conn.execute(
            f"INSERT INTO alert_rules (code, name_vi, name_en, valid_from, valid_to, {columns})"
            f" SELECT %s, 'Quy tắc thử', 'Test rule', %s, %s, {values}",
            (code, base.date() - dt.timedelta(days=2), base.date() + dt.timedelta(days=2), *params))
        codes.append(code)
        return code

    yield make
    conn.execute("DELETE FROM incidents WHERE id IN (SELECT a.incident_id FROM sensor_alerts a"
                 " JOIN alert_rules r ON r.id = a.rule_id WHERE r.code = ANY(%s))", (codes,))
    conn.execute("DELETE FROM alert_rules WHERE code = ANY(%s)", (codes,))


def test_rules_with_an_agency_assign_the_incident_at_once(conn, stations, test_rule, base) -> None:
    test_rule("kind, observed_property_id, statistic, window_minutes, upper_limit, agency_code",
              "'threshold', id, 'latest', 60, 80, %s FROM observed_properties"
              " WHERE code = 'turbidity'", (AGENCY,))
    st = stations.add("turbidity")
    stations.observe(st["ds"], [(base, 120.0)])
    done = alerts.evaluate(conn, [st["ds"]], base + dt.timedelta(minutes=1))
    inc = incident(conn, done.incidents[0])
    assert (inc["status"], inc["agency_code"]) == ("assigned", AGENCY)
    assert [m[:2] for m in moves(conn, done.incidents[0])] == [
        (None, "received"), ("received", "verified"), ("verified", "assigned")]


# --- silence, rate of change ---------------------------------------------------------------


def test_a_silent_station_raises_its_alert(conn, stations, base) -> None:
    """Measured from when data last arrived; found by the minute's sweep (nothing arrives to
    trigger an evaluation), closed once data have been arriving for the rule's 30 minutes."""
    mine = stations.add("ph", status="online")
    maintenance = stations.add("ph", dlon=0.001)  # not expected to report
    others = conn.execute("SELECT max(updated_at) FROM datastream_latest WHERE datastream_id <>"
                          " ALL(%s)", ([mine["ds"], maintenance["ds"]],)).fetchone()[0]
    now = (max(others, base) + dt.timedelta(minutes=1)).replace(microsecond=0)
    last = now - dt.timedelta(hours=3)
    stations.observe(mine["ds"], [(last, 7.2)], arrived=last)
    stations.observe(maintenance["ds"], [(last, 7.2)], arrived=last)

    alerts.sweep(conn, now)
    [alert] = [a for a in alerts_of(conn, mine["ds"]) if a["rule"] == "silence"]
    assert alert["status"] == "open" and alert["value"] >= 180
    assert alert["limit_value"] == 120
    assert alert["incident_id"] is None  # the seeded silence rule does not escalate
    assert not [a for a in alerts_of(conn, maintenance["ds"]) if a["rule"] == "silence"]
    alerts.sweep(conn, now + dt.timedelta(minutes=1))
    assert len([a for a in alerts_of(conn, mine["ds"]) if a["rule"] == "silence"]) == 1

    # Data again: normal from the batch's evaluation; closed 30 minutes later by the sweep.
    back = now + dt.timedelta(minutes=5)
    stations.observe(mine["ds"], [(back, 7.1)], arrived=back)
    alerts.evaluate(conn, [mine["ds"]], back)
    alerts.sweep(conn, back + dt.timedelta(minutes=20))
    assert alerts_of(conn, mine["ds"])[0]["status"] == "open"
    alerts.sweep(conn, back + dt.timedelta(minutes=30))
    [alert] = alerts_of(conn, mine["ds"])
    assert alert["status"] == "closed"


def test_silence_escalates_when_the_rule_says_so(conn, stations, test_rule, base) -> None:
    code = test_rule("kind, observed_property_id, window_minutes, clear_minutes, escalate",
                     "'silence', id, 120, 30, true FROM observed_properties WHERE code = 'cod'", ())
    st = stations.add("cod", status="online")
    last = base - dt.timedelta(hours=5)
    stations.observe(st["ds"], [(last, 9.0)], arrived=last)
    done = alerts.evaluate(conn, [st["ds"]], base)
    by_rule = {a["rule"]: a for a in alerts_of(conn, st["ds"])}
    assert by_rule["silence"]["incident_id"] is None  # the seeded rule: an alert only
    assert done.incidents == (by_rule[code]["incident_id"],)
    inc = incident(conn, done.incidents[0])
    assert inc["title"] == (f"Trạm {st['code']} ngừng gửi số liệu COD (5 giờ; số liệu cuối lúc "
                            f"{_hm(last)})")


def test_rate_of_change(conn, stations, base) -> None:
    st = stations.add("ph")
    ds, t = st["ds"], base
    # pH 7.0 -> 8.3 within an hour: inside 6.0-8.5 (no threshold breach), a rise of 1.3 > 1.0.
    stations.observe(ds, [(t - dt.timedelta(hours=1), 7.0), (t - dt.timedelta(minutes=30), 7.4),
                          (t, 8.3)])
    done = alerts.evaluate(conn, [ds], t + dt.timedelta(minutes=2))
    found = alerts_of(conn, ds)
    assert [a["rule"] for a in found] == ["rate-ph-change"]
    assert found[0]["value"] == pytest.approx(1.3) and found[0]["limit_value"] == 1.0
    assert incident(conn, done.incidents[0])["title"] == (
        f"pH tăng 1,30 trong 1 giờ, vượt mức thay đổi cho phép 1 tại {st['code']} lúc {_hm(t)}")
    # A steady hour later: the change is small, the alert reads normal.
    stations.observe(ds, [(t + dt.timedelta(hours=1), 8.2)])
    alerts.evaluate(conn, [ds], t + dt.timedelta(hours=1, minutes=2))
    assert alerts_of(conn, ds)[0]["normal_since"] is not None
    stations.observe(ds, [(t + dt.timedelta(hours=2), 8.2)])
    assert alerts.evaluate(conn, [ds], t + dt.timedelta(hours=2, minutes=5)).closed
    # A fall of more than 1.0 is a breach too: a new alert, the first having closed.
    stations.observe(ds, [(t + dt.timedelta(hours=3), 6.9)])
    alerts.evaluate(conn, [ds], t + dt.timedelta(hours=3, minutes=1))
    latest = alerts_of(conn, ds)
    assert [a["status"] for a in latest] == ["closed", "open"]
    assert latest[1]["value"] == pytest.approx(-1.3) and latest[1]["limit_value"] == -1.0


def test_no_rate_without_a_reading_a_window_before(conn, stations, base) -> None:
    st = stations.add("ph")
    stations.observe(st["ds"], [(base - dt.timedelta(hours=5), 6.8), (base, 8.3)])
    alerts.evaluate(conn, [st["ds"]], base + dt.timedelta(minutes=1))
    assert alerts_of(conn, st["ds"]) == []


# --- no duplicates ---------------------------------------------------------------------------


def test_no_duplicate_alert_under_concurrent_evaluation(conn, db_url, stations, base) -> None:
    """Several ingest workers evaluating the same datastreams at once: one alert, one incident."""
    sts = [stations.add("pm25", dlon=i * 0.001) for i in range(3)]
    for st in sts:
        stations.observe(st["ds"], hourly(base - dt.timedelta(hours=23), 24, 70.0))
    ids = [st["ds"] for st in sts]
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def worker(n: int) -> None:
        try:
            with psycopg.connect(db_url, autocommit=True) as c:
                start.wait()
                for k in range(4):
                    alerts.evaluate(c, ids[n % 3:] + ids[:n % 3],
                                    base + dt.timedelta(minutes=5, seconds=n + k))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    for ds in ids:
        found = alerts_of(conn, ds)
        assert len(found) == 1 and found[0]["incident_id"] is not None
        assert events_of(conn, found[0]["id"]) == ["opened", "escalated"]
    assert conn.execute("SELECT count(*) FROM incidents WHERE id IN (SELECT incident_id FROM"
                        " sensor_alerts WHERE datastream_id = ANY(%s))", (ids,)).fetchone()[0] == 3


# --- Vietnam time -----------------------------------------------------------------------------


def test_titles_say_vietnam_time(conn, stations, base) -> None:
    """A reading at 17:30 UTC is 00:30 of the next day in Vietnam: the title says so."""
    st = stations.add("pm25")
    aqi = stations.datastream(st["sensor"], "aqi")
    at = dt.datetime.combine(base.date() - dt.timedelta(days=1), dt.time(17, 30), dt.UTC)
    stations.observe(aqi, [(at, 162.0)])
    done = alerts.evaluate(conn, [aqi], at + dt.timedelta(minutes=10))
    next_day = (at.date() + dt.timedelta(days=1)).strftime("%d/%m/%Y")
    assert incident(conn, done.incidents[0])["title"] == (
        f"Chỉ số chất lượng không khí (VN_AQI) 162 (mức Xấu), vượt giới hạn 150 tại {st['code']} "
        f"lúc 00:30 {next_day}")
    assert f"{next_day} 00:30 (giờ Việt Nam)" in incident(conn, done.incidents[0])["description"]


# --- the API ----------------------------------------------------------------------------------


def test_list_and_one_alert(client, conn, keys, role_keys, stations, base) -> None:
    st = stations.add("pm25")
    ds = st["ds"]
    stations.observe(ds, hourly(base - dt.timedelta(hours=23), 24, 66.0))
    alerts.evaluate(conn, [ds], base + dt.timedelta(minutes=5))
    [alert] = alerts_of(conn, ds)

    r = client.get("/api/sensors/alerts", params={"station": st["code"]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == 1 and body["items"][0]["id"] == alert["id"]
    item = body["items"][0]
    assert (item["status"], item["rule"], item["property"], item["station"]) == \
        ("open", "qcvn05-pm25-24h", "pm25", st["code"])
    assert item["rule_name"]["vi"].startswith("Bụi PM2.5 trung bình 24 giờ")
    assert item["opened_at"].endswith("Z") or item["opened_at"].endswith("+00:00")
    for params, n in (({"status": "open"}, 1), ({"status": "active"}, 1), ({"status": "closed"}, 0),
                      ({"property": "pm10"}, 0), ({"rule": "qcvn05-pm25-24h"}, 1),
                      ({"datetime": (base - dt.timedelta(days=2)).date().isoformat()}, 0),
                      ({"datetime": f"{base.isoformat()}/.."}, 1)):
        got = client.get("/api/sensors/alerts", params={"station": st["code"], **params}).json()
        assert got["total"] == n, (params, got)

    r = client.get(f"/api/sensors/alerts/{alert['id']}")
    assert r.status_code == 200
    one = r.json()
    assert one["station"] == st["code"] and one["value"] == 66.0 and one["limit_value"] == 50.0
    assert [e["kind"] for e in one["events"]] == ["opened", "escalated"]
    ctx = one["context"]
    assert len(ctx["hourly"]) == 24 and all(h["mean"] == 66.0 for h in ctx["hourly"])
    assert len(ctx["readings"]) == 24
    assert {lim["code"]: lim["upper_limit"] for lim in ctx["limits"]}["qcvn05-pm25-24h"] == 50.0

    for bad in ({"status": "bogus"}, {"limit": "0"}, {"station": "x y"}, {"datetime": "soon"}):
        r = client.get("/api/sensors/alerts", params=bad)
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["parameter"] in bad
    r = client.get("/api/sensors/alerts/999999999")
    assert r.status_code == 404 and r.json()["detail"] == "không tìm thấy cảnh báo 999.999.999"
    r = client.get("/api/sensors/alerts/999999999", params={"lang": "en"})
    assert r.json()["detail"] == "alert 999999999 not found"


def test_the_dashboard_counts_the_alerts_the_list_shows(conn, stations, base) -> None:
    """count_open (the dashboard's card) counts what list_alerts lists, role by role."""
    raised = []
    for prop in ("pm25", "pm25"):
        st = stations.add(prop)
        stations.observe(st["ds"], hourly(base - dt.timedelta(hours=23), 24, 66.0))
        alerts.evaluate(conn, [st["ds"]], base + dt.timedelta(minutes=5))
        raised += alerts_of(conn, st["ds"])
    operator = Principal("count-operator", frozenset({"operator"}))
    alerts.acknowledge(conn, raised[0]["id"], operator, note="checked")
    for who in (operator, Principal("count-leader", frozenset({"leader"})), Principal()):
        try:
            _, active, _ = alerts.list_alerts(conn, who, statuses=("open", "acknowledged"), limit=1)
            _, unacknowledged, _ = alerts.list_alerts(conn, who, statuses=("open",), limit=1)
        except alerts.NotFound:
            with pytest.raises(alerts.NotFound):
                alerts.count_open(conn, who)
            continue
        assert alerts.count_open(conn, who) == (active, unacknowledged), who
        assert active > unacknowledged > 0 or who.anonymous


def test_acknowledge_is_timestamped_and_audited(client, conn, keys, role_keys, stations, base) -> None:
    st = stations.add("no2")
    stations.observe(st["ds"], [(base, 260.0)])  # the 1-hour mean above 200
    done = alerts.evaluate(conn, [st["ds"]], base + dt.timedelta(minutes=3))
    [alert] = alerts_of(conn, st["ds"])
    assert alert["rule"] == "qcvn05-no2-1h"
    url = f"/api/sensors/alerts/{alert['id']}/acknowledge"

    assert client.post(url, json={}).status_code == 401
    assert client.post(url, json={}, headers=keys["citizen"]).status_code == 403
    assert client.post(url, json={"nope": 1}, headers=keys["operator"]).status_code == 422
    before = dt.datetime.now(dt.UTC)
    r = client.post(url, json={"note": "Đã gọi trạm"}, headers=keys["operator"])
    assert r.status_code == 200, r.text
    operator = role_keys["operator"]["user"]
    assert r.json()["acknowledged_by"] == operator
    row = conn.execute("SELECT acknowledged_at, acknowledged_by, acknowledge_note, status"
                       " FROM sensor_alerts WHERE id = %s", (alert["id"],)).fetchone()
    assert row[1:] == (operator, "Đã gọi trạm", "acknowledged")
    assert before <= row[0] <= dt.datetime.now(dt.UTC) and row[0].utcoffset() == dt.timedelta(0)
    audit = conn.execute(
        "SELECT username, action, layer, target, status, at FROM audit_log"
        " WHERE action = 'alert_acknowledge' AND (target->>'alert')::bigint = %s", (alert["id"],)
    ).fetchall()
    assert len(audit) == 1
    assert audit[0][:3] == (operator, "alert_acknowledge", "sensors")
    assert audit[0][3] == {"alert": alert["id"], "datastream": st["ds"], "incident": done.incidents[0]}
    assert before <= audit[0][5]
    # The incident is verified by the operator; the alert's history says who and when.
    assert moves(conn, done.incidents[0])[-1][:3] == ("received", "verified", operator)
    assert events_of(conn, alert["id"])[-1] == "acknowledged"

    again = client.post(url, json={}, headers=keys["operator"])
    assert again.status_code == 409
    assert again.json()["detail"].startswith(f"cảnh báo {alert['id']:,}".replace(",", ".")
                                             + f" đã được {operator} xác nhận lúc")
    assert client.post("/api/sensors/alerts/999999999/acknowledge", json={},
                       headers=keys["operator"]).status_code == 404

    # Who acknowledged is for the centre's staff.
    anon = client.get(f"/api/sensors/alerts/{alert['id']}").json()
    staff = client.get(f"/api/sensors/alerts/{alert['id']}", headers=keys["operator"]).json()
    assert anon["status"] == "acknowledged" and anon["acknowledged_by"] is None
    assert staff["acknowledged_by"] == operator and staff["acknowledge_note"] == "Đã gọi trạm"
    listed = client.get("/api/sensors/alerts", params={"status": "acknowledged", "station": st["code"]},
                        headers=keys["operator"]).json()
    assert [i["id"] for i in listed["items"]] == [alert["id"]]


def test_a_closed_alert_is_not_acknowledged(client, conn, keys, stations, base) -> None:
    st = stations.add("cod")
    stations.observe(st["ds"], [(base, 25.0)])
    alerts.evaluate(conn, [st["ds"]], base + dt.timedelta(minutes=1))
    stations.observe(st["ds"], [(base + dt.timedelta(hours=1), 10.0),
                                (base + dt.timedelta(hours=2), 11.0)])
    alerts.evaluate(conn, [st["ds"]], base + dt.timedelta(hours=1, minutes=1))
    alerts.evaluate(conn, [st["ds"]], base + dt.timedelta(hours=2, minutes=1))
    [alert] = alerts_of(conn, st["ds"])
    assert alert["status"] == "closed"
    r = client.post(f"/api/sensors/alerts/{alert['id']}/acknowledge", json={},
                    headers=keys["operator"])
    assert r.status_code == 409 and "đã đóng" in r.json()["detail"]


def test_the_routes_are_documented(client) -> None:
    spec = client.get("/openapi.json").json()
    listing = spec["paths"]["/api/sensors/alerts"]["get"]
    names = {p["name"] for p in listing["parameters"]}
    assert {"status", "station", "property", "rule", "limit", "offset", "datetime"} <= names
    status = next(p for p in listing["parameters"] if p["name"] == "status")
    assert "acknowledged" in str(status["schema"])
    ack = spec["paths"]["/api/sensors/alerts/{alert_id}/acknowledge"]["post"]
    assert {"401", "403", "404", "409"} <= set(ack["responses"])
    assert "application/problem+json" in ack["responses"]["409"]["content"]
    assert "/api/sensors/alerts/{alert_id}" in spec["paths"]


def test_a_restricted_datastream_hides_its_alerts(client, conn, keys, role_keys, stations, base) -> None:
    """A datastream with its own access level (a camera's, a security sensor's) is readable by
    its roles only, here as in SensorThings: its alerts are 404 and absent from lists for the
    others, and a read by its roles is audited (channel sensor-alerts)."""
    st = stations.add("pm10")
    conn.execute("UPDATE datastreams SET access = 'restricted', roles = '{security_officer}'"
                 " WHERE id = %s", (st["ds"],))
    stations.observe(st["ds"], hourly(base - dt.timedelta(hours=23), 24, 140.0))
    alerts.evaluate(conn, [st["ds"]], base + dt.timedelta(minutes=5))
    [alert] = alerts_of(conn, st["ds"])
    for profile in ("anonymous", "citizen", "operator"):
        assert client.get(f"/api/sensors/alerts/{alert['id']}", headers=keys[profile]).status_code == 404
        listed = client.get("/api/sensors/alerts", params={"station": st["code"]},
                            headers=keys[profile]).json()
        assert listed["total"] == 0, profile
        r = client.post(f"/api/sensors/alerts/{alert['id']}/acknowledge", json={},
                        headers=keys[profile])
        assert r.status_code in (401, 403, 404), (profile, r.status_code)
    officer = role_keys["security_officer"]["user"]
    for profile in ("security_officer", "admin"):
        assert client.get(f"/api/sensors/alerts/{alert['id']}", headers=keys[profile]).status_code == 200
        listed = client.get("/api/sensors/alerts", params={"station": st["code"]},
                            headers=keys[profile]).json()
        assert [i["id"] for i in listed["items"]] == [alert["id"]]
    reads = conn.execute(
        "SELECT username, target FROM audit_log WHERE action = 'read' AND layer = 'sensors'"
        " AND target->>'channel' = 'sensor-alerts' AND target->'ids' @> %s::jsonb",
        (f"[{alert['id']}]",)).fetchall()
    assert officer in {r[0] for r in reads} and len(reads) >= 4
