"""The leaders' dashboard under /api/dashboard (gis/analysis/dashboard.py defines each figure)
and its page /dashboard (web/dashboard_page.py).

  GET /api/dashboard/panels                      the panel registry: id, titles, data URL, chart
                                                  kind, whether its data is served yet
  GET /api/dashboard/kpis?week=                  the week's KPI cards
  GET /api/dashboard/series/categories           incidents per day (or week) and category
  GET /api/dashboard/series/hour-weekday         incidents per hour of day and day of week
  GET /api/dashboard/series/communes?top=&order= incidents per commune against the previous window
  GET /api/dashboard/briefing.pdf?unit=&week=    the weekly briefing (PDF), made now
  GET /api/dashboard/briefings                   the briefings the schedule made (Mondays 07:00)
  GET /api/dashboard/briefings/{name}            one of them (PDF)
  GET /dashboard?lang=en&wall=1                  the page (wall mode: panels rotating, live)

Every data route takes the map's filters, checked by the one shared dependency
(api/routes/incident_analytics.py's IncidentFilter: `start`, `end`, `category`, `severity`,
`status`, `source`, `bbox`, `unit` with `boundaries` or `as_of`; one 400 lists every bad
field), and answers JSON, or CSV with `f=csv` or `Accept: text/csv` (the
chart's numbers as a table, UTF-8 with a byte-order mark for spreadsheet programs). Access is
the incidents layer's: 404 for who may not read it; security events are in no figure of a
caller who may not open them; reads that include them are audited (channel `dashboard`).
The three series are public through the layer's aggregates (layers.model.Aggregates): a
caller who may not read incidents gets them with counts under 3 suppressed (null, an empty
CSV field; gis/analysis/suppression.py). The panel registry is public too: such a caller gets
the panels whose data is public (`guest`), and the page shows those only, with a note on the
suppression. The KPI cards (open and overdue reports, processing times, alerts: the center's
work, not counts of places), the hot spots and the briefings (the overdue list) stay for
staff.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from api.deps import ReadConn
from api.route_docs import WHO, ok, problems
from api.routes.incident_analytics import (
    FILTERS,
    Filter,
    IncidentAggregates,
    IncidentsLayer,
    _suppression,
    only,
)
from api.security import Who
from gis import audit, fmt
from gis import dashboard as board
from gis.analysis import dashboard as dash
from gis.dashboard import briefing
from layers.access import Principal, row_filter
from layers.errors import BadRequest, Message, NotFound
from layers.model import Layer
from web import dashboard_page

router = APIRouter(tags=["dashboard"])
JSON, CSV, PDF = "application/json", "text/csv", "application/pdf"
SCOPE = (*FILTERS, "f")
ERRORS = problems(*WHO, 400, 404)
CHANNEL = "dashboard"

Format = Annotated[Literal["json", "csv"] | None, Query(
    alias="f", description="`csv` for the chart's table as CSV (also `Accept: text/csv`); default JSON")]
Week = Annotated[str | None, Query(
    alias="week", description="the week: an ISO week `2026-W49` or any date in it (YYYY-MM-DD); weeks run "
                "Monday to Sunday, Vietnam time. Default: the current week",
    examples=["2026-W49"], max_length=10)]


def _params(*extra: str) -> Any:
    return Depends(only(*SCOPE, *extra))


def _commune(conn: Any, code: str | None) -> str | None:
    if code is not None and dash.commune_name(conn, code) is None:
        today = dash.vn_today(dt.datetime.now(dt.UTC))
        raise NotFound(f"administrative unit {code!r} not found on {today.isoformat()}",
                       message=Message("unit_not_found", {"code": repr(code),
                                                          "day": fmt.date(today)}))
    return code


def _week(raw: str | None, now: dt.datetime) -> dt.date:
    if raw is None or raw.strip() == "":
        return dash.week_of(dash.vn_today(now))
    try:
        monday = dash.parse_week(raw)
        if not 1900 <= monday.year < 2200:  # year 1 or 9999: no week before or after it
            raise ValueError(raw)
        return monday
    except ValueError:
        raise BadRequest.for_field("week", "week", f"{raw!r} is not an ISO week (2026-W49) or "
                                   "a date (YYYY-MM-DD)", value=repr(raw)) from None


def _wants_csv(request: Request, f: str | None) -> bool:
    if f is not None:
        return f == "csv"
    accept = request.headers.get("accept", "")
    return CSV in accept and JSON not in accept


def csv_bytes(header: list[str], rows: list[list[Any]]) -> bytes:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(header)
    w.writerows(["" if v is None else v for v in r] for r in rows)
    return ("\ufeff" + out.getvalue()).encode()


def answer(request: Request, f: str | None, panel_id: str, body: dict[str, Any]) -> Response:
    headers = {"Cache-Control": "private, max-age=0", "Vary": "Accept"}
    if _wants_csv(request, f):
        header, rows = dash.table(panel_id, body)
        headers["Content-Disposition"] = f'attachment; filename="dashboard-{panel_id}.csv"'
        return Response(csv_bytes(header, rows), media_type=f"{CSV}; charset=utf-8",
                        headers=headers)
    return Response(orjson.dumps(body), media_type=JSON, headers=headers)


def _audit(conn: Any, who: Principal, layer: Layer, params: dict[str, str],
           request: Request) -> None:
    audit.record_read(conn, who, layer, CHANNEL, filter=params, request=request)


def _window(s: dash.Scope) -> dict[str, Any]:
    return {"start": dash._iso(s.f.start), "end": dash._iso(s.f.end),
            "sources": list(s.f.sources), "unit": s.f.unit.public() if s.f.unit else None}


DATA = {200: {"description": "the chart's data (JSON), or its table (CSV)",
              "content": {JSON: {"schema": {"type": "object"}},
                          CSV: {"schema": {"type": "string"}}}}, **ERRORS}


@router.get("/api/dashboard/panels", responses={200: ok("the dashboard's panels"), **ERRORS})
def panels(agg: IncidentAggregates, conn: ReadConn) -> dict[str, Any]:
    """The panel registry: every chart or map the dashboard can show the caller (those whose
    data is not served yet are listed with `available: false`; a caller who may read only the
    public aggregates gets the `guest` panels, and `suppressed` with the minimum and its note),
    and the province (its code is the unit of the indicator trend when no commune is chosen)."""
    code, name = dash.province(conn)
    return {"panels": [p.public() for p in dash.PANELS if p.guest or not agg.suppressed],
            "province": {"code": code, "name": name}, **_suppression(agg)}


@router.get("/api/dashboard/kpis", responses=DATA)
def kpis(request: Request, who: Who, layer: IncidentsLayer, f: Filter, conn: ReadConn,
         params: Annotated[dict[str, str], _params("week")], week_: Week = None,
         format_: Format = None) -> Response:
    """The week's KPI cards: incidents against last week and the same week a year ago (cut at
    the same point while the week runs), open and overdue reports now, the median processing
    time of the week's citizen reports, sensor alerts open now. `start`/`end` are accepted and
    ignored (the page sends the same filters to every panel)."""
    now = dt.datetime.now(dt.UTC)
    s = dash.Scope(f)
    body = board.kpis(conn, s, row_filter(layer, who), _week(week_, now), now, who)
    body["filters"] = _window(s)
    _audit(conn, who, layer, params, request)
    return answer(request, format_, "kpis", body)


@router.get("/api/dashboard/series/categories", responses=DATA)
def by_category(request: Request, who: Who, agg: IncidentAggregates, f: Filter, conn: ReadConn,
                params: Annotated[dict[str, str], _params()], format_: Format = None) -> Response:
    """Incidents per Vietnamese day (a window up to 62 days; else per Monday-start week) and
    category, in the window [start, end)."""
    s = dash.Scope(f)
    body = {**_window(s), **dash.by_category(conn, s, agg.restrict, agg.min_count),
            **_suppression(agg)}
    _audit(conn, who, agg.layer, params, request)
    return answer(request, format_, "by-category", body)


@router.get("/api/dashboard/series/hour-weekday", responses=DATA)
def hour_weekday(request: Request, who: Who, agg: IncidentAggregates, f: Filter, conn: ReadConn,
                 params: Annotated[dict[str, str], _params()], format_: Format = None) -> Response:
    """Incidents per day of week (rows, Monday first) and hour of day (columns 0-23), Vietnam
    time, in the window."""
    s = dash.Scope(f)
    body = {**_window(s), **dash.hour_weekday(conn, s, agg.restrict, agg.min_count),
            **_suppression(agg)}
    _audit(conn, who, agg.layer, params, request)
    return answer(request, format_, "hour-weekday", body)


@router.get("/api/dashboard/series/communes", responses=DATA)
def by_commune(request: Request, who: Who, agg: IncidentAggregates, f: Filter, conn: ReadConn,
               params: Annotated[dict[str, str], _params("top", "order")], format_: Format = None,
               top: Annotated[int, Query(ge=1, le=1000, description="how many communes")] = 10,
               order: Annotated[Literal["count", "change"], Query(
                   description="`count`: the most incidents first; `change`: the largest "
                               "change against the previous window either way")] = "count"
               ) -> Response:
    """Incidents per current commune in the window and in the previous window of the same
    length, with the difference and the change in per cent."""
    s = dash.Scope(f)
    body = {**_window(s), **dash.communes(conn, s, agg.restrict, top=top, order=order,
                                          min_count=agg.min_count), **_suppression(agg)}
    _audit(conn, who, agg.layer, params, request)
    return answer(request, format_, "communes", body)


# --- the weekly briefing -------------------------------------------------------------------------

PDF_OK = {200: {"description": "the briefing (PDF, A4, Vietnamese)",
                "content": {PDF: {"schema": {"type": "string", "format": "binary"}}}}, **ERRORS}


@router.get("/api/dashboard/briefing.pdf", response_class=Response, responses=PDF_OK)
def briefing_pdf(request: Request, who: Who, layer: IncidentsLayer, conn: ReadConn,
                 params: Annotated[dict[str, str], Depends(only("unit", "week"))],
                 unit: Annotated[str | None, Query(
                     description="a current commune's code; default the province",
                     pattern=r"^[0-9]{5}$", examples=["09220"])] = None,
                 week_: Annotated[str | None, Query(
                     alias="week", description="an ISO week `2026-W48` or any date in it; "
                     "default the last whole week", examples=["2026-W48"],
                     max_length=10)] = None) -> Response:
    """The weekly briefing for the province or one commune, made now: KPIs, charts, the top
    changes per commune against the previous week, the overdue reports (no reporter) and a map
    of the week's incidents."""
    now = dt.datetime.now(dt.UTC)
    monday = _week(week_, now) if week_ else briefing.last_whole_week(now)
    code = _commune(conn, unit)
    pdf = briefing.build(conn, who, monday, code, now=now)
    _audit(conn, who, layer, params, request)
    name = briefing.file_name(code, monday)
    return Response(pdf, media_type=PDF, headers={
        "Content-Disposition": f'inline; filename="{name}"', "Cache-Control": "private, no-store"})


@router.get("/api/dashboard/briefings", responses={200: ok("stored briefings"), **ERRORS})
def briefings(who: Who, layer: IncidentsLayer) -> dict[str, Any]:
    """The briefings made by the schedule (Mondays 07:00 Vietnam time, for the week before),
    newest first; those made for a wider view than the caller's are not listed."""
    return {"briefings": [b for b in briefing.stored() if briefing.may_read(b, who, layer)]}


@router.get("/api/dashboard/briefings/{name}", response_class=Response, responses=PDF_OK)
def stored_briefing(request: Request, who: Who, layer: IncidentsLayer, conn: ReadConn,
                    name: Annotated[str, Path(pattern=briefing.NAME_PATTERN, max_length=80,
                                              description="the briefing's file name")]
                    ) -> Response:
    """One stored briefing (PDF)."""
    found = briefing.stored_one(name)
    if found is None or not briefing.may_read(found[0], who, layer):
        raise NotFound(f"briefing {name!r} not found", message=Message("status_404"))
    _audit(conn, who, layer, {"briefing": name}, request)
    return Response(found[1], media_type=PDF, headers={
        "Content-Disposition": f'inline; filename="{name}"', "Cache-Control": "private, no-store"})


# --- the page ------------------------------------------------------------------------------------


@router.get("/dashboard", response_class=HTMLResponse, responses=problems(400, page=True))
async def page(lang: Annotated[str | None, Query(
        description="`en` for English; anything else (or nothing) is Vietnamese",
        examples=["en"], max_length=100)] = None,
        wall: Annotated[str | None, Query(
            description="`1`: the video wall's mode (full screen, panels rotating, live)",
            max_length=10)] = None,
        rotate: Annotated[int | None, Query(
            ge=5, le=3600, description="wall mode: seconds each panel is shown (default 15)")
        ] = None) -> HTMLResponse:
    """The leaders' dashboard: Vietnamese by default, `?lang=en` for English. A visitor sees
    the public panels (small counts suppressed, said on the page); staff sign in as on the map
    for every panel."""
    lang = "en" if lang == "en" else "vi"
    return HTMLResponse(dashboard_page.render(lang, wall == "1", rotate or 15,
                                              [p.public() for p in dash.PANELS]),
                        headers={"Cache-Control": "no-cache"})
