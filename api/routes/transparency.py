"""Public transparency of citizen reports: figures per agency and per commune for any period,
a choropleth, a ranking and the map of open overdue reports (gis/reports/transparency.py
defines what counts). No sign-in: nothing here names a reporter or carries a report's id, a
security event never counts, and sensitive categories show no description.

  GET /api/transparency/agencies?start=&end=        figures per agency and for the province
  GET /api/transparency/communes?start=&end=        GeoJSON: current communes (simplified) with
                                                     their figures, for the choropleth
  GET /api/transparency/ranking?start=&end=&by=      agencies (or communes) best first
  GET /api/transparency/overdue?agency=&commune=     GeoJSON: open reports past their deadline,
                                                     located to ~100 m
  GET /transparency?lang=en                          the public page (web/transparency_page.py)

`start` and `end` are Vietnamese calendar days, the period being [start, end): `end` is the
first day after it. Default: the 30 days up to today (Vietnam time). The answers may be cached
by clients and proxies for a few minutes (Cache-Control): the figures move when a report is
answered, not by the second. For the same reason a period's figures are kept in the database
for a few minutes and recomputed ahead by the job queue (gis/reports/transparency.py, "Kept
figures"): a year of a million reports takes about a second to compute (bench/transparency.py);
`computed_at` says when they were.

Small counts (issue 17): for a caller who may not read incidents (the public), the figures per
commune and the province's follow the incidents layer's aggregate rule, the catalogue's
`Aggregates(min_count=3)` (layers.access.aggregate_read, as every aggregate of incidents):
a commune's (or a commune committee's) count under 3, and the processing time of fewer than
3 answered reports, would
point at the few people who reported there, so they are published as null with
`suppressed: true` (gis/reports/transparency.py, public_rows: the rule and what else is
hidden so that the province totals give nothing back). The agencies get the same rule: most
are a commune's people's committee. The ranking leaves out the rows whose place would bound a
hidden figure. The province totals stay. Signed-in staff who may read incidents get exact
figures, privately cached.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response
from pydantic import Field

from api.deps import Conn, IsoDate, QueryModel, query
from api.route_docs import GEOJSON, JSON, WHO, ok, problems
from api.security import Who
from gis.analysis import suppression
from gis.reports import transparency
from layers.access import aggregate_read
from layers.catalogue import get_layer
from layers.errors import BadRequest, Message, Problem
from web import transparency_page

router = APIRouter(tags=["transparency"])
CACHE = "public, max-age=300"
DEFAULT_DAYS = 30
MAX_DAYS = 3660


class Period(QueryModel):
    """A period of Vietnamese calendar days [start, end)."""

    start: Annotated[dt.date | None, IsoDate, Field(
        description="first day of the period (YYYY-MM-DD, Vietnam time); default: 30 days "
                    "before `end`", examples=["2026-11-01"])] = None
    end: Annotated[dt.date | None, IsoDate, Field(
        description="the first day AFTER the period (YYYY-MM-DD, Vietnam time; exclusive); "
                    "default: tomorrow", examples=["2026-12-01"])] = None

    def bounds(self) -> tuple[dt.date, dt.date]:
        """(start, end), defaults filled; a 400 in the user's language when END is not after
        START or the period is longer than MAX_DAYS."""
        end = self.end or transparency.today_vn() + dt.timedelta(days=1)
        try:
            start = self.start or end - dt.timedelta(days=DEFAULT_DAYS)
        except OverflowError:  # end in the first days of year 1
            start = dt.date.min
        if end <= start:
            msg = Message("period_empty", {"start": start.isoformat(), "end": end.isoformat()})
            raise BadRequest(f"end: {end} must be after start ({start})", parameter="end",
                             message=msg, problems=[Problem("end", f"{end} is not after {start}",
                                                            message=msg)])
        if (end - start).days > MAX_DAYS:
            msg = Message("period_too_long", {"days": MAX_DAYS})
            raise BadRequest(f"end: the period may not span more than {MAX_DAYS} days",
                             parameter="end", message=msg,
                             problems=[Problem("end", f"more than {MAX_DAYS} days", message=msg)])
        return start, end


class Ranking(Period):
    by: Annotated[Literal["agency", "commune"], Field(
        description="rank agencies (default) or communes")] = "agency"


class Overdue(QueryModel):
    agency: Annotated[str | None, Field(max_length=40, description="one agency's code")] = None
    commune: Annotated[str | None, Field(pattern=r"^[0-9]{5}$",
                                         description="one current commune's code")] = None
    limit: Annotated[int, Field(ge=1, le=5000, description="at most this many (default 5000)")
                     ] = 5000


INCIDENTS = "incidents"


def min_count(who: Who) -> int:
    """The minimum count per commune for WHO: 0 (exact) for who may read incidents, else the
    incidents layer's aggregate minimum (the catalogue's one definition)."""
    read = aggregate_read(INCIDENTS, who)
    if read is not None:
        return read.min_count
    agg = get_layer(INCIDENTS).aggregates
    return agg.min_count if agg is not None else 0


def _headers(k: int) -> dict[str, str]:
    """Public answers may be cached by anyone; exact ones only by the caller."""
    return {"Cache-Control": CACHE if k > 0 else "private, max-age=0",
            "Vary": "Authorization, Cookie"}


def _note(k: int) -> dict[str, Any]:
    return {"suppressed": True, "min_count": k,
            "suppression_note": suppression.note(k)} if k > 0 else {}


def _json(body: Any, k: int) -> Response:
    """K: the minimum the body was made with (0: exact figures, cached privately)."""
    return Response(orjson.dumps(body), media_type=JSON, headers=_headers(k))


@router.get("/api/transparency/agencies", responses={
    200: ok("Per agency and for the province: received, resolved, rejected, open, median and "
            "90th-percentile processing time (hours), share answered within the SLA"),
    **problems(*WHO, 400)})
def agencies(conn: Conn, who: Who, p: Annotated[Period, query(Period)]) -> Response:
    """The period's figures per agency (every agency; zeros when it received nothing),
    `unassigned` for reports not routed yet, and the province's; for the public, small counts
    of agencies (most serve one commune) are suppressed, the province's totals stay."""
    start, end = p.bounds()
    f, _ = transparency.kept(conn, start, end)
    k = min_count(who)
    rows, unassigned = transparency.public_agencies(f, k) if k > 0 else (
        f["agencies"], f["unassigned"])
    return _json({"period": f["period"], "computed_at": f["computed_at"],
                  "province": f["province"], "unassigned": unassigned, "agencies": rows,
                  **_note(k)}, k)


@router.get("/api/transparency/communes", responses={
    200: ok("Current communes (simplified geometry) with their figures", GEOJSON),
    **problems(*WHO, 400)})
def communes(conn: Conn, who: Who, p: Annotated[Period, query(Period)]) -> Response:
    """The choropleth's data: a FeatureCollection of the current communes whose properties are
    the period's figures (median_hours colours the map); for the public, small counts and the
    times of fewer than the minimum answered reports are null (`suppressed`)."""
    start, end = p.bounds()
    f, body = transparency.kept(conn, start, end)
    k = min_count(who)
    if k > 0:
        body = transparency.public_communes_geojson(
            body, transparency.public_rows(f["communes"], k))
    # The period and the time of computation as foreign members, after the features (the
    # document is PostgreSQL's text).
    extra = orjson.dumps({"period": f["period"], "computed_at": f["computed_at"], **_note(k)})
    body = body[:body.rindex(b"}")] + b", " + extra[1:]
    return Response(body, media_type=GEOJSON, headers=_headers(k))


@router.get("/api/transparency/ranking", responses={
    200: ok("Agencies (or communes) with at least one report due, best first"),
    **problems(*WHO, 400)})
def ranking(conn: Conn, who: Who, p: Annotated[Ranking, query(Ranking)]) -> Response:
    """Best first: the larger share answered within the SLA, then the shorter median. For the
    public, an agency or commune whose share, median or number due is suppressed is not
    ranked (its place would bound them)."""
    start, end = p.bounds()
    f, _ = transparency.kept(conn, start, end)
    k = min_count(who)
    rows = (transparency.public_agencies(f, k)[0] if k > 0 else f["agencies"]) \
        if p.by == "agency" else transparency.public_rows(f["communes"], k)
    # Ranked: the rows whose place follows from published figures only.
    rows = [r for r in rows if all(r[c] is not None for c in transparency.RANKED_BY)]
    return _json({"period": f["period"], "computed_at": f["computed_at"], "by": p.by,
                  "ranking": transparency.ranking(rows), **_note(k)}, k)


@router.get("/api/transparency/overdue", responses={
    200: ok("Open reports past their deadline, located to ~100 m", GEOJSON),
    **problems(400)})
def overdue(conn: Conn, p: Annotated[Overdue, query(Overdue)]) -> Response:
    """Open public reports past their SLA deadline now: service, agency, commune, times and
    days late; no id, no reporter, no description for a sensitive category."""
    body = transparency.overdue(conn, agency=p.agency, commune=p.commune, limit=p.limit)
    return Response(body, media_type=GEOJSON, headers={"Cache-Control": CACHE})


@router.get("/transparency", response_class=HTMLResponse, responses=problems(400, page=True))
async def page(lang: Annotated[str | None, Query(
        description="`en` for English; anything else (or nothing) is Vietnamese",
        examples=["en"], max_length=100)] = None) -> HTMLResponse:
    """The public transparency page (figures load from /api/transparency)."""
    lang = "en" if lang == "en" else "vi"
    return HTMLResponse(transparency_page.render(lang), headers={"Cache-Control": CACHE})
