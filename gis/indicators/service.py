"""The reads of /api/indicators: the indicators (with the periods and units they have values
for), the values of a period, one unit's series, the communes of a period side by side.

Access: an indicator the caller may not read (its own level, layers.access.access_condition)
does not exist for them (NotFound), exactly as the OGC collection hides its rows. A unit is
named by code and the day its boundaries are taken from (`as_of`; default: the period's last
day for a period's values, today for a series), since codes are reused across the 2025 reform.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from gis.indicators import periods, queries
from layers.access import Principal, access_condition
from layers.errors import NotFound


def _access(who: Principal) -> sql.Composable:
    cond = access_condition(who, sql.Identifier("i", "access"), sql.Identifier("i", "roles"))
    return cond if cond is not None else sql.SQL("TRUE")


def indicators(conn: psycopg.Connection[Any], who: Principal, code: str | None = None,
               domain: str | None = None) -> list[dict[str, Any]]:
    """The indicators WHO may read, in the catalogue's order, each with its metadata and the
    first and last period, number of values and of units it has values for."""
    cur = conn.cursor(row_factory=dict_row)
    return cur.execute(queries.DEFINITIONS.format(access=_access(who)),
                       {"code": code, "domain": domain}).fetchall()


def indicator(conn: psycopg.Connection[Any], who: Principal, code: str) -> dict[str, Any]:
    found = indicators(conn, who, code=code)
    if not found:
        raise NotFound.for_field("indicators_no_indicator", "code",
                                 f"no indicator {code}", value=code)
    return found[0]


def _period(raw: str, d: dict[str, Any], name: str = "period") -> str:
    from layers.errors import BadRequest
    p = periods.parse_period(raw)
    if p is None:
        raise BadRequest.for_field("indicators_period", name,
                                   f"{raw} is not a period (2023, 2023-Q2, 2023-06)", value=raw)
    if periods.periodicity(p) != d["periodicity"]:
        raise BadRequest.for_field("indicators_periodicity", name,
                                   f"{raw} is not a {d['periodicity']} period of {d['code']}",
                                   value=raw, periodicity=d["periodicity"], code=d["code"])
    return p


def _day(period: str, as_of: dt.date | None) -> dt.date:
    return as_of or periods.bounds(period)[1] - dt.timedelta(days=1)


def values(conn: psycopg.Connection[Any], who: Principal, code: str, period: str,
           unit: str | None = None, level: str | None = None,
           as_of: dt.date | None = None) -> dict[str, Any]:
    """The values of one indicator and period on the units valid on AS_OF (default: the
    period's last day), optionally one unit or one level."""
    d = indicator(conn, who, code)
    p = _period(period, d)
    day = _day(p, as_of)
    rows = conn.cursor(row_factory=dict_row).execute(queries.VALUES, {
        "code": d["code"], "period": p, "unit": unit, "level": level, "day": day}).fetchall()
    return {"indicator": d, "period": p, "boundaries_on": day, "values": rows}


def series(conn: psycopg.Connection[Any], who: Principal, code: str, unit: str,
           as_of: dt.date | None = None, since: str | None = None,
           until: str | None = None) -> dict[str, Any]:
    """One indicator's values for the unit that code UNIT named on AS_OF (default today),
    oldest first: for a commune made in 2025, its earlier years are recomputed figures."""
    d = indicator(conn, who, code)
    day = as_of or dt.datetime.now(dt.UTC).date()
    u = conn.cursor(row_factory=dict_row).execute(queries.UNIT_ON, {"code": unit, "day": day}
                                                  ).fetchone()
    if u is None:
        raise NotFound.for_field("indicators_no_unit", "unit",
                                 f"no administrative unit {unit} on {day.isoformat()}",
                                 value=unit, day=day.isoformat())
    first = _period(since, d, "since") if since else None
    last = _period(until, d, "until") if until else None
    rows = conn.cursor(row_factory=dict_row).execute(queries.SERIES, {
        "code": d["code"], "unit_id": u["id"], "since": first, "until": last}).fetchall()
    return {"indicator": d, "unit": {k: u[k] for k in ("code", "name", "level", "valid_from",
                                                        "valid_to")}, "series": rows}


def compare(conn: psycopg.Connection[Any], who: Principal, code: str, period: str,
            as_of: dt.date | None = None, parent: str | None = None) -> dict[str, Any]:
    """The communes' values of one indicator and period, highest first with their rank, beside
    the province's value and the communes' minimum, median and maximum."""
    d = indicator(conn, who, code)
    p = _period(period, d)
    day = _day(p, as_of)
    cur = conn.cursor(row_factory=dict_row)
    rows = cur.execute(queries.COMPARE, {"code": d["code"], "period": p, "day": day,
                                         "parent": parent}).fetchall()
    province = cur.execute(queries.PROVINCE_VALUE, {"code": d["code"], "period": p, "day": day}
                           ).fetchone()
    vals = sorted(r["value"] for r in rows)
    stats = None
    if vals:
        mid = len(vals) // 2
        median = vals[mid] if len(vals) % 2 else (vals[mid - 1] + vals[mid]) / 2
        stats = {"n": len(vals), "min": vals[0], "median": median, "max": vals[-1]}
    return {"indicator": d, "period": p, "boundaries_on": day, "province": province,
            "stats": stats, "communes": rows}


def top_changes(conn: psycopg.Connection[Any], who: Principal, unit: str | None, day: dt.date,
                until: dt.date, limit: int = 10) -> list[dict[str, Any]]:
    """The LIMIT indicators of UNIT (a commune's code on DAY; None: the province) that changed
    most between their two latest periods begun before UNTIL, largest relative change first:
    what a weekly briefing puts beside the week's incidents (gis/dashboard/briefing.py)."""
    return conn.cursor(row_factory=dict_row).execute(
        queries.TOP_CHANGES.format(access=_access(who)),
        {"code": unit, "day": day, "until": until, "limit": limit}).fetchall()
