"""Public transparency figures of citizen reports: per agency and per commune, for any period.

What counts (the definitions the public page states, and the tests recompute independently):

* The reports: citizen reports (they have a service code), not linked as a likely duplicate
  (a duplicate rides on its original and is never counted itself), never a security event,
  RECEIVED in the period: `reported_at` in [start, end), START and END being Vietnamese
  calendar days (local midnight, Asia/Ho_Chi_Minh; END is the first day after the period).
* Grouped by the agency the report is assigned to now (`unassigned`: not yet routed) and by
  the commune it is in (current communes, those of the 2025 reform).
* Answered: the report's first move to `resolved` or `rejected` (incidents.answered_at,
  kept by a trigger from incident_transitions, migration 0018). `resolved` / `rejected` count
  the reports whose FIRST answer was that; a report reopened later keeps its first answer.
  `open`: not answered yet.
* Processing time, in hours: first answer - received. The median and the 90th percentile are
  PostgreSQL's percentile_cont (linear interpolation) over the answered reports of the group,
  rounded to 0.01 h; none when nothing was answered.
* Within the SLA: answered at or before the report's deadline (`expected_at`: the category's
  SLA from reception, geoioc_sla_deadline; a reopened report's deadline restarts). The share
  within the SLA is within_sla / due, where `due` counts the reports answered or whose deadline
  has passed unanswered at NOW: a report still inside its SLA counts neither way, one left
  unanswered past its deadline counts against.

Public: no reporter, no title, no description, no id; the map of open overdue reports rounds
locations to 0.001 degree (~100 m) and drops the description of sensitive categories.

Small counts per commune (issue 17): a commune with one or two reports in the period, and that
report's processing time, would point at the few people who reported there; so would an
agency serving one commune (104 of the sample's 109 agencies are communes' people's
committees, UBND-<commune code>). So a caller who may not read incidents (the public) gets the
per-commune and per-agency figures with the incidents layer's aggregate rule
(layers.model.Aggregates.min_count, 3; gis/analysis/suppression.py), applied by public_rows()
to each partition (the communes; the agencies with the unassigned reports): the counts
resolved / rejected / open (adding up to `received`) and within / past the SLA (adding up to
`due`) are two-way tables, rows x columns, whose margins (the row's received and due, the
province's totals) are published; suppression.table hides
every count under the minimum and as many others as needed so that no margin gives one back.
A commune's `received` (`due`) is published only where the table's audit takes it as
published (at least the minimum and all its cells shown or two non-zero ones), and never as
the only hidden one (else the province total minus the others would give it). Median and 90th
percentile are published when at least the minimum of the commune's reports were answered
(else they are one or two reports' own times), the share within the SLA when both its counts
are. Suppressed rows say `suppressed: true`; the ranking leaves out the rows whose share,
median or number due is hidden (their place would bound them). Staff (who may read incidents)
see exact figures.

The province's totals stay as they are. Residual risks: when the whole province has only one
or two of a kind in the period (say one rejection), that total is published, so the one row
whose count of that kind is hidden (the others being 0, and zeros are published) is known to
hold them; the row's received count, the figure that could point at a reporter, is not given
by it. The two partitions are suppressed each on its own: a commune's committee and its commune
share most reports, not all (departments take some), so one does not give the other exactly;
as for every aggregate, answers for neighbouring periods can be differenced
(gis/analysis/suppression.py).

Kept figures (migration 0019): exact percentiles sort every processing time of the period, a
second for a year of a million reports, while the public page must answer at once. So a
period's figures, once computed, are kept in transparency_figures and served while younger
than FRESH (the answers' Cache-Control allows as much to every proxy anyway); the job queue
recomputes ahead of the readers, every minute, the periods asked for in the last day and those
the page offers (refresh(), run by gis/reports/transparency_refresh.py). A period nobody asked
for is computed on its first request, once for every process (an advisory lock: the others
wait for it and read the result). The figures say when they were computed (`computed_at`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import psycopg

from gis.analysis import suppression
from gis.reports import transparency_queries as q

VN = dt.timezone(dt.timedelta(hours=7))
RANK_BY = ("agency", "commune")
FRESH = dt.timedelta(minutes=5)  # kept figures are served while younger than this
REFRESH_AFTER = dt.timedelta(minutes=3)  # the periodic task recomputes those older than this
WATCHED = dt.timedelta(days=1)  # periods asked for this recently are kept fresh ahead
DROP_AFTER = dt.timedelta(days=7)  # periods not asked for this long are dropped
_LOCK_CLASS = 15_019  # pg_advisory_xact_lock(class, period): one computation per period


def today_vn(now: dt.datetime | None = None) -> dt.date:
    return (now or dt.datetime.now(dt.UTC)).astimezone(VN).date()


def figures(conn: psycopg.Connection, start: dt.date, end: dt.date,
            now: dt.datetime | None = None) -> dict[str, Any]:
    """The period's figures computed now: `province`, `unassigned`, `agencies` and `communes`
    (every agency and every current commune, zeros where nothing was received)."""
    with conn.transaction():
        doc = _figures_json(conn, start, end, now or dt.datetime.now(dt.UTC))
    out: dict[str, Any] = orjson.loads(doc)
    out["period"] = {"start": start.isoformat(), "end": end.isoformat()}
    return out


def _figures_json(conn: psycopg.Connection, start: dt.date, end: dt.date, now: dt.datetime) -> str:
    """FIGURES' document; inside the caller's transaction."""
    # The percentiles sort every report of the period (a million for a year of the
    # benchmark): in memory rather than in temporary files.
    conn.execute("SET LOCAL work_mem = '128MB'")
    row = conn.execute(q.FIGURES, {"start": start, "end": end, "now": now}).fetchone()
    assert row is not None
    return str(row[0])


def offered_periods(today: dt.date) -> list[tuple[dt.date, dt.date]]:
    """The periods the page offers, [start, end): the last 30 and 365 days up to TODAY, this
    month and this year (Vietnamese calendar)."""
    tomorrow = today + dt.timedelta(days=1)
    month = today.replace(day=1)
    next_month = (month + dt.timedelta(days=32)).replace(day=1)
    year = today.replace(month=1, day=1)
    return [(tomorrow - dt.timedelta(days=30), tomorrow),
            (tomorrow - dt.timedelta(days=365), tomorrow),
            (month, next_month), (year, year.replace(year=year.year + 1))]


def kept(conn: psycopg.Connection, start: dt.date, end: dt.date) -> tuple[dict[str, Any], bytes]:
    """The period's figures and its choropleth (GeoJSON of the communes), kept ones when they
    are younger than FRESH, else computed now and kept."""
    row = conn.execute(q.KEPT, {"start": start, "end": end,
                                "since": dt.datetime.now(dt.UTC) - FRESH}).fetchone()
    if row is None:
        row = _compute_and_keep(conn, start, end, FRESH)
    return _document(start, end, row[0], row[2]), str(row[1]).encode()


def refresh(conn: psycopg.Connection, now: dt.datetime | None = None) -> int:
    """Recompute the watched and offered periods whose figures are older than REFRESH_AFTER;
    drop those nobody asked for in DROP_AFTER. Returns how many periods were computed."""
    now = now or dt.datetime.now(dt.UTC)
    conn.execute(q.DROP_UNASKED, {"before": now - DROP_AFTER})  # first: offered ones come back
    periods = set(offered_periods(today_vn(now)))
    periods.update((r[0], r[1]) for r in conn.execute(q.WATCHED_PERIODS, {"since": now - WATCHED}))
    return sum(_compute_and_keep(conn, start, end, REFRESH_AFTER, now)[3]
               for start, end in sorted(periods))


def forget(conn: psycopg.Connection) -> None:
    """Drop every kept period (tests that change reports, the benchmark's cold runs)."""
    conn.execute(q.FORGET)


def _compute_and_keep(conn: psycopg.Connection, start: dt.date, end: dt.date,
                      younger_than: dt.timedelta, now: dt.datetime | None = None
                      ) -> tuple[str, str, dt.datetime, bool]:
    """(figures JSON, communes GeoJSON, computed_at, computed now?): kept figures younger
    than YOUNGER_THAN as they are (another process may have just computed them: the advisory
    lock makes it wait for that), else computed and stored."""
    now = now or dt.datetime.now(dt.UTC)
    with conn.transaction():
        conn.execute(q.LOCK_PERIOD, {"class": _LOCK_CLASS, "period": f"{start}/{end}"})
        row = conn.execute(q.KEPT, {"start": start, "end": end,
                                    "since": now - younger_than}).fetchone()
        if row is not None:
            return row[0], row[1], row[2], False
        doc = _figures_json(conn, start, end, now)
        geo = communes_geojson(conn, orjson.loads(doc)["communes"]).decode()
        conn.execute(q.KEEP, {"start": start, "end": end, "now": now, "figures": doc,
                              "communes": geo})
    return doc, geo, now, True


def _document(start: dt.date, end: dt.date, figures_json: str,
              computed_at: dt.datetime) -> dict[str, Any]:
    out: dict[str, Any] = orjson.loads(figures_json)
    out["period"] = {"start": start.isoformat(), "end": end.isoformat()}
    out["computed_at"] = computed_at.astimezone(VN).isoformat(timespec="seconds")
    return out


def communes_geojson(conn: psycopg.Connection, communes: list[dict[str, Any]]) -> bytes:
    """The choropleth's FeatureCollection: current communes, simplified, with their figures."""
    row = conn.execute(q.COMMUNES_GEOJSON, {"figures": orjson.dumps(communes).decode()}).fetchone()
    assert row is not None
    return str(row[0]).encode()


def ranking(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Groups with at least one report due, best first: the larger share within the SLA, then
    the shorter median, then the code; `rank` is shared by ties on both figures."""
    ranked = sorted((r for r in rows if r["due"] > 0),
                    key=lambda r: (-(r["within_sla_share"] or 0.0),
                                   r["median_hours"] if r["median_hours"] is not None
                                   else float("inf"), r["code"]))
    out: list[dict[str, Any]] = []
    for i, r in enumerate(ranked):
        tie = out and (out[-1]["within_sla_share"], out[-1]["median_hours"]) == \
            (r["within_sla_share"], r["median_hours"])
        out.append({**r, "rank": out[-1]["rank"] if tie else i + 1})
    return out


def overdue(conn: psycopg.Connection, now: dt.datetime | None = None, *,
            agency: str | None = None, commune: str | None = None, limit: int = 5000) -> bytes:
    """Open reports past their deadline as GeoJSON (public: rounded, see the module doc)."""
    row = conn.execute(q.OVERDUE, {"now": now or dt.datetime.now(dt.UTC), "agency": agency,
                                   "commune": commune, "limit": limit}).fetchone()
    assert row is not None
    return str(row[0]).encode()


# --- small counts per commune for the public (see the module docstring) ----------------------

ANSWER_COUNTS = ("resolved", "rejected", "open")  # adding up to `received`
RANKED_BY = ("due", "within_sla_share", "median_hours")  # what ranking() orders by


def _table_and_margins(cells: list[list[int]], k: int
                       ) -> tuple[list[list[int | None]], list[bool]] | None:
    """CELLS (communes x columns) suppressed with suppression.table, and which row margins
    may be published; None when a row margin could still be worked out from the total (the
    whole table is then withheld)."""
    shown = suppression.table(cells, k)
    margins = [not suppression.small(sum(row), k)
               and (None not in srow or sum(v > 0 for v in row) >= 2)
               for row, srow in zip(cells, shown, strict=True)]
    hidden = [i for i, row in enumerate(cells) if sum(row) > 0 and not margins[i]]
    if len(hidden) == 1:  # the total minus the published margins would give this one
        partners = [(sum(cells[i]), i) for i in range(len(cells))
                    if margins[i] and None in shown[i]]
        if not partners:
            return None
        margins[min(partners)[1]] = False
    return shown, margins


def public_rows(rows: list[dict[str, Any]], k: int) -> list[dict[str, Any]]:
    """ROWS (FIGURES' rows of one partition of the reports: the communes, or the agencies with
    the unassigned reports) as the public may see them under a minimum of K (0: exact, as they
    are); see the module docstring for the rule."""
    if k <= 0:
        return rows
    answers = _table_and_margins([[r[c] for c in ANSWER_COUNTS] for r in rows], k)
    sla = _table_and_margins([[r["within_sla"], r["due"] - r["within_sla"]] for r in rows], k)
    out: list[dict[str, Any]] = []
    for i, r in enumerate(rows):
        row = dict(r)
        if answers is None:
            row.update(dict.fromkeys((*ANSWER_COUNTS, "received")))
        else:
            row.update(zip(ANSWER_COUNTS, answers[0][i], strict=True))
            row["received"] = r["received"] if answers[1][i] else None
        if sla is None:
            row.update(within_sla=None, due=None)
        else:
            row["within_sla"] = sla[0][i][0]
            row["due"] = r["due"] if sla[1][i] and None not in sla[0][i] else None
        if row["within_sla"] is None or row["due"] is None:
            row["within_sla_share"] = None
        if suppression.small(r["resolved"] + r["rejected"], k):  # one or two reports' times
            row["median_hours"] = row["p90_hours"] = None
        row["suppressed"] = any(row[c] is None and r[c] not in (None, 0) for c in
                                (*ANSWER_COUNTS, "received", "within_sla", "due",
                                 "median_hours", "p90_hours", "within_sla_share"))
        out.append(row)
    return out


def public_agencies(figures: dict[str, Any], k: int
                    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """FIGURES' agencies and unassigned reports (one partition) as the public may see them
    under a minimum of K."""
    unassigned = figures["unassigned"]
    rows = public_rows([*figures["agencies"], *([{**unassigned, "code": None}]
                                                 if unassigned else [])], k)
    if not unassigned:
        return rows, None
    last = dict(rows[-1])
    del last["code"]
    return rows[:-1], last


def public_communes_geojson(body: bytes, rows: list[dict[str, Any]]) -> bytes:
    """The choropleth's FeatureCollection with each commune's properties replaced by ROWS'
    (public_rows): the kept document holds the exact figures."""
    doc = orjson.loads(body)
    by_code = {r["code"]: r for r in rows}
    for feature in doc["features"]:
        code = feature["properties"].get("code") if feature.get("properties") else None
        if code in by_code:
            feature["properties"] = by_code[code]
    return orjson.dumps(doc)
