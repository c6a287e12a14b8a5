"""The leaders' dashboard: KPIs of a week and the series its charts draw, computed in SQL.

What each figure means (the page's "Cách tính" and the tests recompute them independently):

* Weeks are Vietnamese: Monday 00:00 to the next Monday 00:00, Asia/Ho_Chi_Minh. The current
  week is not over: its figures run to NOW, and the weeks it is compared with are cut at the
  same point (last week to the same weekday and hour, the year-ago week likewise), so a
  Wednesday morning is never compared with a whole week. `partial` says so.
* A year ago is 52 weeks earlier (364 days): the same weekdays, so a Monday's peak is compared
  with a Monday's.
* Incidents: those matching the filters (category, severity, status, source, unit) whose
  reception time falls in the window. Changes are in per cent of the earlier count (none when
  it was zero).
* Open reports: incidents in an open status (received, verified, assigned, in progress), not a
  likely duplicate, now; overdue: of those, the ones past their deadline now
  (gis/reports/deadlines.py). They follow the filters but not the week: a state, not a flow.
* Processing time: gis/reports/transparency.py's definition, for the citizen reports received in
  the week: first answer minus reception, median in hours over those answered so far.
* Alerts: sensor alerts open now (not yet closed; `unacknowledged`: nobody took them yet), those
  the caller may see (counted by gis/dashboard with gis/sensors/alerts.py: sensors import the
  reports, which import this package); the incident filters do not apply to them.
* Series: incidents per Vietnamese day (a window up to 62 days) or Monday-start week and
  category; per hour of day and day of week; per current commune against the previous window
  of the same length.

Access: every incident figure takes the caller's row restriction (layers.access.row_filter): a
security event an operator may not open is in none of an operator's numbers.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any

import psycopg
from psycopg import sql

from gis.analysis import aggregates, incident_stats, suppression
from gis.analysis import dashboard_queries as q
from gis.analysis.incidents import IncidentFilter, where
from gis.fmt import VN_TZ
from layers.catalogue import INCIDENT_CATEGORIES

WEEK = dt.timedelta(days=7)
YEAR_AGO = dt.timedelta(days=364)  # 52 weeks: the same weekdays
DAILY_MAX_DAYS = 62  # longer windows are bucketed by week
TOP_COMMUNES = 10
_FAR_PAST = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
_FAR_FUTURE = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)


# --- the panels the page shows (one definition each) ----------------------------------------


@dataclass(frozen=True)
class Panel:
    """One chart or map of the dashboard: what the page needs to draw it and what the wall mode
    rotates through. `url` answers JSON for the page's filters (the dashboard's own routes also
    CSV with `f=csv`; the other panels read the analytics API itself, and the page writes their
    CSV from the same JSON). `params`: fixed query parameters of the panel; `{code}` (in the
    URL), `{unit}` and `{period}` are filled by the page from its indicator choice and the
    selected unit. `filters`: `incidents` (the page's incident filters are sent) or `indicator`
    (only the indicator's own parameters). `available` False: its data is not served yet (the
    page hides it; nothing is broken). `guest` False: its data is for staff only (a visitor who
    may read only the public aggregates, layers.model.Aggregates, does not see the panel)."""

    id: str
    title_vi: str
    title_en: str
    url: str
    kind: str  # kpis | stacked-bars | heat-matrix | bars | indicator-lines | indicator-bars
    #            | choropleth | raster | hotspots
    unit_vi: str = ""
    unit_en: str = ""
    available: bool = True
    params: tuple[tuple[str, str], ...] = ()
    filters: str = "incidents"
    csv: str = "server"  # server: the URL with f=csv; page: written by the page from the JSON
    guest: bool = True

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "title": {"vi": self.title_vi, "en": self.title_en},
                "url": self.url, "kind": self.kind,
                "unit": {"vi": self.unit_vi, "en": self.unit_en}, "available": self.available,
                "params": dict(self.params), "filters": self.filters, "csv": self.csv,
                "guest": self.guest}


# The maps' grids: the KDE as on the command map (100 m cells, 500 m bandwidth: the same fixed
# scale), the hot spots on 1 km hexagons (a few hundred cells over the province: light enough
# for a small map refreshed every minute, fine enough to point at a neighbourhood).
KDE_CELL_M, KDE_BANDWIDTH_M, HOTSPOT_CELL_M = 100, 500, 1000

PANELS: tuple[Panel, ...] = (
    # The KPI cards are the center's work (open and overdue reports, processing times,
    # alerts) and the hot spots' cells carry exact counts: staff only.
    Panel("kpis", "Chỉ số chính trong tuần", "Key figures of the week", "/api/dashboard/kpis",
          "kpis", guest=False),
    Panel("by-category", "Sự cố theo lĩnh vực theo thời gian", "Incidents by category over time",
          "/api/dashboard/series/categories", "stacked-bars", "sự cố", "incidents"),
    Panel("hour-weekday", "Sự cố theo giờ trong ngày và thứ trong tuần",
          "Incidents by hour of day and day of week", "/api/dashboard/series/hour-weekday",
          "heat-matrix", "sự cố", "incidents"),
    Panel("communes", "Xã/phường nhiều sự cố nhất (so với kỳ trước)",
          "Communes with the most incidents (against the previous window)",
          "/api/dashboard/series/communes", "bars", "sự cố", "incidents"),
    Panel("indicator-trends", "Xu hướng chỉ tiêu kinh tế - xã hội",
          "Socio-economic indicator trends", "/api/indicators/{code}/series", "indicator-lines",
          params=(("unit", "{unit}"),), filters="indicator", csv="page"),
    Panel("indicator-communes", "So sánh chỉ tiêu giữa các xã/phường",
          "Indicators compared across communes", "/api/indicators/{code}/compare",
          "indicator-bars", params=(("period", "{period}"),), filters="indicator", csv="page"),
    Panel("choropleth", "Tỷ lệ sự cố theo xã/phường", "Incident rates per commune",
          "/api/incidents/rates", "choropleth", "sự cố/1.000 dân", "incidents per 1,000 residents",
          params=(("format", "geojson"), ("measure", "per_1000"),
                  ("classification", "natural_breaks"), ("classes", "5")), csv="page"),
    Panel("heatmap", "Mật độ sự cố (KDE)", "Incident density (KDE)", "/api/incidents/density",
          "raster", "sự cố/km²", "incidents per km²",
          params=(("cell", str(KDE_CELL_M)), ("bandwidth", str(KDE_BANDWIDTH_M)),
                  ("scale", "fixed")), csv="page"),
    Panel("hotspots", "Điểm nóng có ý nghĩa thống kê (Gi*)", "Significant hot spots (Gi*)",
          "/api/incidents/hotspots", "hotspots", "ô lục giác 1 km", "1 km hexagons",
          params=(("cell_m", str(HOTSPOT_CELL_M)),), csv="page", guest=False),
)


def panel(panel_id: str) -> Panel:
    return next(p for p in PANELS if p.id == panel_id)


# --- weeks ----------------------------------------------------------------------------------


def vn_today(now: dt.datetime) -> dt.date:
    return now.astimezone(VN_TZ).date()


def week_of(day: dt.date) -> dt.date:
    """The Monday of DAY's week."""
    return day - dt.timedelta(days=day.weekday())


def parse_week(text: str) -> dt.date:
    """`2026-W49` (ISO week) or a date `2026-12-01` (its week): the week's Monday. ValueError
    when it is neither."""
    text = text.strip()
    if len(text) in (8, 9) and text[4:6].upper() == "-W":
        year, week = int(text[:4]), int(text[6:])
        return dt.date.fromisocalendar(year, week, 1)
    return week_of(dt.date.fromisoformat(text))


def week_label(monday: dt.date) -> str:
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


def vn_midnight(day: dt.date) -> dt.datetime:
    """The instant DAY begins in Vietnam, in UTC."""
    return dt.datetime.combine(day, dt.time(), VN_TZ).astimezone(dt.UTC)


@dataclass(frozen=True)
class Weeks:
    """The week's window and the two it is compared with, each [start, end) in UTC."""

    monday: dt.date
    current: tuple[dt.datetime, dt.datetime]
    previous: tuple[dt.datetime, dt.datetime]
    year_ago: tuple[dt.datetime, dt.datetime]
    partial: bool

    @staticmethod
    def of(monday: dt.date, now: dt.datetime) -> Weeks:
        start = vn_midnight(monday)
        end = vn_midnight(monday + WEEK)
        partial = start <= now < end
        cut = now if partial else end
        return Weeks(monday, (start, cut), (start - WEEK, cut - WEEK),
                     (start - YEAR_AGO, cut - YEAR_AGO), partial)


# --- the filters ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """What the dashboard is looking at: the map's incident filters (IncidentFilter: their
    window is the series' window, the KPIs take a week instead; sources and the administrative
    unit are the filter's own), and for the briefing one current commune by the incidents'
    commune code."""

    f: IncidentFilter
    commune: str | None = None

    def cond(self, restrict: sql.Composable | None, start: dt.datetime | None = None,
             end: dt.datetime | None = None) -> tuple[sql.Composable, list[Any]]:
        """WHERE clause on `incidents t`: the filters, over [START, END) (default the window)."""
        f = replace(self.f, start=start or self.f.start, end=end or self.f.end)
        cond, params = where(f, restrict)
        parts = [cond]
        if self.commune is not None:
            parts.append(sql.SQL("t.commune_code = %s"))
            params.append(self.commune)
        return sql.SQL(" AND ").join(parts), params

    def any_time(self, restrict: sql.Composable | None) -> tuple[sql.Composable, list[Any]]:
        """The filters without a time window (states: open and overdue reports)."""
        return self.cond(restrict, _FAR_PAST, _FAR_FUTURE)

    @property
    def length(self) -> dt.timedelta:
        return self.f.end - self.f.start


def commune_name(conn: psycopg.Connection, code: str) -> str | None:
    row = conn.execute(q.COMMUNE, (code,)).fetchone()
    return str(row[1]) if row else None


def province(conn: psycopg.Connection) -> tuple[str, str]:
    row = conn.execute(q.PROVINCE).fetchone()
    return (str(row[0]), str(row[1])) if row else ("", "")


# --- KPIs -----------------------------------------------------------------------------------


def change(cur: int | float | None, before: int | float | None) -> float | None:
    """Per cent change from BEFORE to CUR, one decimal; None when BEFORE is zero or unknown."""
    if cur is None or not before:
        return None
    return round((cur - before) * 100.0 / before, 1)


def _count(conn: psycopg.Connection, scope: Scope, restrict: sql.Composable | None,
           window: tuple[dt.datetime, dt.datetime]) -> int:
    cond, params = scope.cond(restrict, *window)
    row = conn.execute(q.COUNT.format(cond=cond), params).fetchone()
    return int(row[0]) if row else 0


def _processing(conn: psycopg.Connection, scope: Scope, restrict: sql.Composable | None,
                window: tuple[dt.datetime, dt.datetime]) -> dict[str, Any]:
    cond, params = scope.cond(restrict, *window)
    row = conn.execute(q.PROCESSING.format(cond=cond), params).fetchone()
    assert row is not None
    return {"received": row[0], "answered": row[1], "median_hours": row[2]}


def kpis(conn: psycopg.Connection, scope: Scope, restrict: sql.Composable | None,
         monday: dt.date, now: dt.datetime, alerts: dict[str, int] | None = None
         ) -> dict[str, Any]:
    """The week's KPI cards (see the module docstring for each definition); ALERTS: the open
    sensor alerts the caller may see (gis/dashboard counts them: sensors are another domain)."""
    w = Weeks.of(monday, now)
    this, last, year = (_count(conn, scope, restrict, x) for x in (w.current, w.previous,
                                                                      w.year_ago))
    cond, params = scope.any_time(restrict)
    row = conn.execute(q.OPEN_OVERDUE.format(cond=cond),
                       [now, list(q.OPEN_STATUSES), *params]).fetchone()
    assert row is not None
    proc_this = _processing(conn, scope, restrict, w.current)
    proc_last = _processing(conn, scope, restrict, w.previous)
    return {
        "week": week_label(monday), "monday": monday.isoformat(),
        "sunday": (monday + dt.timedelta(days=6)).isoformat(), "partial": w.partial,
        "windows": {name: {"start": _iso(a), "end": _iso(b)} for name, (a, b) in
                    (("current", w.current), ("previous", w.previous), ("year_ago", w.year_ago))},
        "incidents": {"current": this, "previous": last, "year_ago": year,
                      "change_vs_previous": change(this, last),
                      "change_vs_year_ago": change(this, year)},
        "reports": {"open": row[0], "overdue": row[1], "as_of": _iso(now)},
        "processing": {**proc_this, "previous_median_hours": proc_last["median_hours"],
                       "change_vs_previous": change(proc_this["median_hours"],
                                                    proc_last["median_hours"])},
        "alerts": alerts,
    }


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


# --- series ---------------------------------------------------------------------------------


def bucket_unit(length: dt.timedelta) -> str:
    return "day" if length <= dt.timedelta(days=DAILY_MAX_DAYS) else "week"


def buckets(scope: Scope) -> list[dt.date]:
    """The Vietnamese days (or Mondays) the window touches, in order."""
    unit = bucket_unit(scope.length)
    first = vn_today(scope.f.start)
    last = vn_today(scope.f.end - dt.timedelta(microseconds=1))
    if unit == "week":
        first, last = week_of(first), week_of(last)
    step = dt.timedelta(days=1 if unit == "day" else 7)
    out = []
    while first <= last:
        out.append(first)
        first += step
    return out


def _by_category_rows(conn: psycopg.Connection, scope: Scope, restrict: sql.Composable | None,
                      unit: str) -> list[tuple]:
    """(bucket, category, n) rows, a key possibly twice: the whole days of the window from
    incident_days when the filters allow (aggregates.filter_ok, no briefing commune), else and
    for the ragged ends raw rows (at 1,000,000 incidents a year's series read ~500,000 rows)."""
    f = scope.f
    days = (aggregates.whole_days(f) if scope.commune is None and incident_stats.present(conn)
            and aggregates.filter_ok(conn, f, restrict) else None)
    if days is None:
        cond, params = scope.cond(restrict)
        return conn.execute(q.BY_CATEGORY.format(unit=sql.Literal(unit), vn=q.VN, cond=cond),
                            params).fetchall()
    cond, params = aggregates.agg_where(f, restrict, days)
    rows = conn.execute(q.BY_CATEGORY_DAYS.format(unit=sql.Literal(unit), cond=cond),
                        params).fetchall()
    raw = aggregates.edges(f, days)
    if raw:
        cond, params = aggregates.raw_where(raw, restrict)
        rows += conn.execute(q.BY_CATEGORY.format(unit=sql.Literal(unit), vn=q.VN, cond=cond),
                             params).fetchall()
    return rows


def by_category(conn: psycopg.Connection, scope: Scope,
                restrict: sql.Composable | None, min_count: int = 0) -> dict[str, Any]:
    """Incidents per bucket (day or week, Vietnam time) and category: `buckets` (the first day
    of each) and one list of counts per category present, in the catalogue's order.

    MIN_COUNT (public callers): the categories x buckets table is suppressed as a two-way table
    (suppression.table: counts under MIN_COUNT null, and more until no category's, bucket's or
    the window's total, here or in /api/incidents/stats, gives one of them by subtraction);
    `total` is null when under MIN_COUNT."""
    unit = bucket_unit(scope.length)
    rows = _by_category_rows(conn, scope, restrict, unit)
    days = buckets(scope)
    index = {d: i for i, d in enumerate(days)}
    counts: dict[str, list[int]] = {}
    for day, category, n in rows:
        series = counts.setdefault(category, [0] * len(days))
        if day in index:
            series[index[day]] += n
    order = [c for c in INCIDENT_CATEGORIES if c in counts] + sorted(
        c for c in counts if c not in INCIDENT_CATEGORIES)
    return {"unit": unit, "buckets": [d.isoformat() for d in days],
            "series": [{"category": c, "name": _category_names(c), "counts": shown}
                       for c, shown in zip(order, suppression.table(
                           [counts[c] for c in order], min_count), strict=True)],
            "total": suppression.total(sum(sum(v) for v in counts.values()), min_count)}


def _category_names(code: str) -> dict[str, str]:
    vi, en = INCIDENT_CATEGORIES.get(code, (code, code))
    return {"vi": vi, "en": en}


def hour_weekday(conn: psycopg.Connection, scope: Scope,
                 restrict: sql.Composable | None, min_count: int = 0) -> dict[str, Any]:
    """Incidents per day of week (rows, Monday first) and hour (columns 0-23), Vietnam time.
    MIN_COUNT (public callers): the matrix is suppressed as a two-way table
    (suppression.table), `max` is the largest published cell and `total` null under it."""
    cond, params = scope.cond(restrict)
    matrix = [[0] * 24 for _ in range(7)]
    query = q.HOUR_WEEKDAY.format(offset=q.VN_OFFSET_SECONDS, cond=cond)
    for dow, hour, n in conn.execute(query, params):
        matrix[dow - 1][hour] += n
    shown = suppression.table(matrix, min_count)
    return {"matrix": shown, "total": suppression.total(sum(map(sum, matrix)), min_count),
            "max": max((v for row in shown for v in row if v is not None), default=0)}


def communes(conn: psycopg.Connection, scope: Scope, restrict: sql.Composable | None, *,
             top: int | None = TOP_COMMUNES, order: str = "count",
             min_count: int = 0) -> dict[str, Any]:
    """Incidents per current commune in the window and in the previous window of the same
    length: the TOP most (order `count`) or the largest changes either way (order `change`:
    by absolute difference), ties by code; top None: every commune.

    MIN_COUNT (public callers): each window's counts over the communes are a group
    (suppression.group); a commune with a suppressed count has no difference or change, is
    flagged `suppressed` and is ordered after every published one (its place in the order
    would otherwise bound its count)."""
    cond, params = scope.cond(restrict)
    prev = scope.f.previous()
    pcond, pparams = scope.cond(restrict, prev.start, prev.end)
    rows = conn.execute(q.COMMUNES.format(cond=cond, prev=pcond), [*params, *pparams]).fetchall()
    cur_shown = suppression.group([r[2] for r in rows], min_count)
    before_shown = suppression.group([r[3] for r in rows], min_count)
    items: list[dict[str, Any]] = []
    for (code, name, _, _), cur, before in zip(rows, cur_shown, before_shown, strict=True):
        hidden = cur is None or before is None
        item: dict[str, Any] = {
            "code": code, "name": name, "current": cur, "previous": before,
            "difference": None if cur is None or before is None else cur - before,
            "change": None if hidden else change(cur, before)}
        if min_count > 0:
            item["suppressed"] = hidden
        items.append(item)

    def key(r: dict[str, Any]) -> tuple:
        if r["difference"] is None:
            return (1, 0, 0, r["code"])
        if order == "change":
            return (0, -abs(r["difference"]), -r["current"], r["code"])
        return (0, -r["current"], 0, r["code"])

    items.sort(key=key)
    return {"order": order, "previous": {"start": _iso(prev.start), "end": _iso(prev.end)},
            "communes": items[:top] if top is not None else items,
            "total": suppression.total(sum(r[2] for r in rows), min_count)}


def overdue(conn: psycopg.Connection, scope: Scope, restrict: sql.Composable | None,
            now: dt.datetime, limit: int = 50) -> list[dict[str, Any]]:
    """Open reports past their deadline now (the filters, any time), longest overdue first; no
    reporter, title or description."""
    cond, params = scope.any_time(restrict)
    rows = conn.execute(q.OVERDUE.format(vn=q.VN, cond=cond),
                        [now, list(q.OPEN_STATUSES), now, *params, limit]).fetchall()
    keys = ("id", "category", "service_code", "agency_code", "agency_name", "commune_code",
            "commune_name", "status", "reported_at", "expected_at", "days_late")
    return [dict(zip(keys, r, strict=True)) for r in rows]


# --- tables (the charts' CSV) ---------------------------------------------------------------


def _row_total(values: list[int | None]) -> int | None:
    """A row's total, empty when a value of the row is suppressed (it would follow from it)."""
    return None if any(v is None for v in values) else sum(v for v in values if v is not None)


def table(panel_id: str, data: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """The panel's data as one header and rows: what its CSV carries (the same numbers as its
    JSON)."""
    if panel_id == "kpis":
        inc, rep, proc, al = data["incidents"], data["reports"], data["processing"], data["alerts"]
        rows: list[list[Any]] = [
            ["incidents", inc["current"], inc["previous"], inc["year_ago"]],
            ["incidents_change_vs_previous_pct", inc["change_vs_previous"], None, None],
            ["incidents_change_vs_year_ago_pct", inc["change_vs_year_ago"], None, None],
            ["open_reports", rep["open"], None, None],
            ["overdue_reports", rep["overdue"], None, None],
            ["median_processing_hours", proc["median_hours"], proc["previous_median_hours"], None],
            ["reports_received", proc["received"], None, None],
            ["reports_answered", proc["answered"], None, None],
            ["open_alerts", al["open"] if al else None, None, None],
            ["unacknowledged_alerts", al["unacknowledged"] if al else None, None, None]]
        return ["figure", "this_week", "previous_week", "year_ago_week"], rows
    if panel_id == "by-category":
        cats = [s["category"] for s in data["series"]]
        return (["bucket_start", *cats, "total"],
                [[b, *(s["counts"][i] for s in data["series"]),
                  _row_total([s["counts"][i] for s in data["series"]])]
                 for i, b in enumerate(data["buckets"])])
    if panel_id == "hour-weekday":
        return (["iso_weekday", *(f"h{h:02d}" for h in range(24))],
                [[d + 1, *row] for d, row in enumerate(data["matrix"])])
    if panel_id == "communes":
        return (["code", "name", "current", "previous", "difference", "change_pct"],
                [[r["code"], r["name"], r["current"], r["previous"], r["difference"],
                  r["change"]] for r in data["communes"]])
    raise KeyError(panel_id)
