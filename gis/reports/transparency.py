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
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import psycopg

from gis.reports import transparency_queries as q

VN = dt.timezone(dt.timedelta(hours=7))
RANK_BY = ("agency", "commune")


def today_vn(now: dt.datetime | None = None) -> dt.date:
    return (now or dt.datetime.now(dt.UTC)).astimezone(VN).date()


def figures(conn: psycopg.Connection, start: dt.date, end: dt.date,
            now: dt.datetime | None = None) -> dict[str, Any]:
    """The period's figures: `province`, `unassigned`, `agencies` and `communes` (every agency
    and every current commune, zeros where nothing was received)."""
    with conn.transaction():
        # The percentiles sort every report of the period (a million for a year of the
        # benchmark): in memory rather than in temporary files.
        conn.execute("SET LOCAL work_mem = '128MB'")
        row = conn.execute(q.FIGURES, {"start": start, "end": end,
                                       "now": now or dt.datetime.now(dt.UTC)}).fetchone()
    assert row is not None
    out: dict[str, Any] = orjson.loads(row[0])
    out["period"] = {"start": start.isoformat(), "end": end.isoformat()}
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
