"""Socio-economic indicators by administrative unit under /api/indicators (gis/indicators).

  GET /api/indicators?domain=                     the indicators: code, Vietnamese and English
                                                  name and unit, domain, periodicity, source,
                                                  range, the periods and units with values
  GET /api/indicators/{code}                      one indicator
  GET /api/indicators/{code}/values?period=       its values in a period on the units valid on
        &unit=&level=&as_of=                      as_of (default: the period's last day)
  GET /api/indicators/{code}/series?unit=         one unit's values, oldest first: the unit the
        &as_of=&since=&until=                     code names on as_of (default today)
  GET /api/indicators/{code}/compare?period=      the communes of a period ranked, with the
        &as_of=&parent=                           province's value and min/median/max
  POST /api/indicators/imports                    import a CSV or XLSX of values (multipart:
                                                  file, indicator, layout, boundaries, sheet,
                                                  dry_run), as `geoioc indicators import`

The import is all or nothing (gis/indicators/imports.py): a file with refused rows answers 422
in the problem-details model, one entry of `errors` per refused row and column (row, field,
reason, in the caller's language), and nothing is written; an unreadable file is a 422 naming
`file`. Operators and administrators may import (401 anonymous, 403 other roles); every import,
committed or refused, is in the audit log (action `import`, layer `indicators`).

The same values with the units' boundaries are the OGC collection `indicators`
(/ogc/collections/indicators/items?indicator_code=POP&period=2024). An indicator the caller may
not read (its own access level) answers 404 here and has no rows there.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import UploadFile

from api import messages
from api.deps import IsoDate, QueryModel, ReadConn, app_pool, query
from api.i18n import request_lang
from api.ogc.tiles import CACHE as TILES
from api.route_docs import WHO, body_schema, problems
from api.security import Who, require_roles
from gis import audit
from gis.db import pooled
from gis.indicators import service
from gis.indicators.imports import IMPORT_ROLES, LAYER, IndicatorImportOptions, import_indicators
from gis.io.imports.report import ImportReport, parts_of
from gis.settings import PROJECT_ROOT
from layers.access import Principal
from layers.catalogue import INDICATOR_DOMAINS
from layers.errors import PROBLEMS, BadRequest, Invalid, Message, Problem, TooLarge

router = APIRouter(prefix="/api/indicators", tags=["indicators"])

Code = Annotated[str, Path(pattern=r"^[A-Za-z][A-Za-z0-9_]{1,31}$",
                           description="the indicator's code (GET /api/indicators), e.g. POP")]
PeriodText = Annotated[str, Field(min_length=4, max_length=20, description=(
    "the period: 2023 (annual), 2023-Q2 (quarterly), 2023-06 (monthly)"))]
UnitCode = Annotated[str, Field(pattern=r"^[0-9]{2,5}$",
                                description="an administrative unit's code (2, 3 or 5 digits)")]
AsOf = Annotated[dt.date | None, IsoDate, Field(description=(
    "the day whose units are meant (YYYY-MM-DD): codes are reused across the 2025 reform"))]
Domain = Literal[tuple(INDICATOR_DOMAINS)]  # type: ignore[valid-type]


class ListQuery(QueryModel):
    domain: Annotated[Domain | None, Field(description="only the indicators of this domain")] = None


class ValuesQuery(QueryModel):
    period: PeriodText
    unit: Annotated[UnitCode | None, Field(description="only this unit")] = None
    level: Annotated[Literal["province", "district", "commune"] | None,
                     Field(description="only the units of this level")] = None
    as_of: AsOf = None


class SeriesQuery(QueryModel):
    unit: UnitCode
    as_of: AsOf = None
    since: Annotated[PeriodText | None, Field(description="first period (inclusive)")] = None
    until: Annotated[PeriodText | None, Field(description="last period (inclusive)")] = None


class CompareQuery(QueryModel):
    period: PeriodText
    as_of: AsOf = None
    parent: Annotated[Annotated[str, Field(pattern=r"^[0-9]{2,3}$")] | None, Field(
        description="only the communes of this district or province (its code)")] = None


@router.get("", responses=problems(*WHO, 400))
def list_indicators(who: Who, conn: ReadConn,
                    qm: Annotated[ListQuery, query(ListQuery)]) -> dict[str, Any]:
    """The indicators the caller may read, with their metadata and coverage."""
    items = service.indicators(conn, who, domain=qm.domain)
    return {"count": len(items), "indicators": items}


@router.get("/{code}", responses=problems(*WHO, 404))
def one_indicator(code: Code, who: Who, conn: ReadConn) -> dict[str, Any]:
    """One indicator's metadata and coverage."""
    return service.indicator(conn, who, code.upper())


@router.get("/{code}/values", responses=problems(*WHO, 400, 404))
def indicator_values(code: Code, who: Who, conn: ReadConn,
                     qm: Annotated[ValuesQuery, query(ValuesQuery)]) -> dict[str, Any]:
    """The indicator's values in one period, on the units valid on `as_of`."""
    return service.values(conn, who, code.upper(), qm.period, unit=qm.unit, level=qm.level,
                          as_of=qm.as_of)


@router.get("/{code}/series", responses=problems(*WHO, 400, 404))
def indicator_series(code: Code, who: Who, conn: ReadConn,
                     qm: Annotated[SeriesQuery, query(SeriesQuery)]) -> dict[str, Any]:
    """One unit's values of the indicator, oldest period first."""
    return service.series(conn, who, code.upper(), qm.unit, as_of=qm.as_of, since=qm.since,
                          until=qm.until)


@router.get("/{code}/compare", responses=problems(*WHO, 400, 404))
def indicator_compare(code: Code, who: Who, conn: ReadConn,
                      qm: Annotated[CompareQuery, query(CompareQuery)]) -> dict[str, Any]:
    """The communes' values of one period side by side, highest first."""
    return service.compare(conn, who, code.upper(), qm.period, as_of=qm.as_of, parent=qm.parent)


# --- the import -------------------------------------------------------------------------------

# A statistics office's file is kilobytes to a few megabytes (31 indicators x 100 units x 10
# years is 31,000 rows); anything far bigger is not one.
MAX_UPLOAD_BYTES = 50 * 1024**2
_FORM_FIELDS = ("file", "indicator", "layout", "boundaries", "sheet", "dry_run")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


class IndicatorImportForm(BaseModel):
    """The multipart form of POST /api/indicators/imports."""

    model_config = ConfigDict(extra="forbid", title="IndicatorImportForm")

    file: bytes = Field(description="CSV (UTF-8, with or without BOM; comma, semicolon or tab) "
                        "or XLSX: long (unit, indicator, period, value) or wide (a yearbook "
                        "table: one row per unit, one column per period)",
                        json_schema_extra={"format": "binary"})
    indicator: str | None = Field(None, pattern=r"^[A-Za-z][A-Za-z0-9_]{1,31}$", description=(
        "the indicator of a wide table whose title does not name it, e.g. POP"))
    layout: Literal["auto", "long", "wide"] = Field("auto", description="the file's layout")
    boundaries: dt.date | None = Field(None, description=(
        "match units valid on this day (YYYY-MM-DD), e.g. figures recomputed on the current "
        "boundaries (default: each period's last day)"))
    sheet: str | None = Field(None, max_length=100, description="the XLSX sheet (default: the first)")
    dry_run: bool = Field(False, description="check and count, write nothing")


class IndicatorImportReport(BaseModel):
    """What the import wrote (or, for a dry run, would write)."""

    model_config = ConfigDict(extra="allow", title="IndicatorImportReport")
    layer: str
    file: str
    format: str
    rows: int
    inserted: int
    updated: int
    unchanged: int
    committed: bool
    dry_run: bool
    warnings: list[str]
    ok: bool


class UploadTooLarge(TooLarge):
    code = "PayloadTooLarge"


def _form_text(values: dict[str, Any], name: str, max_length: int) -> str | None:
    raw = values.get(name)
    if raw is None:
        return None
    if isinstance(raw, UploadFile):
        raise BadRequest.for_field("invalid", name, "expected text, not a file")
    text = str(raw).strip()
    if len(text) > max_length:
        raise BadRequest.for_field("text_too_long", name, f"at most {max_length} characters",
                                   max_length=max_length)
    return text or None


def _options(values: dict[str, Any]) -> IndicatorImportOptions:
    """The form's fields, checked (a bad one is a 400 naming it; all of them listed)."""
    bad: list[Problem] = []

    def problem(name: str, reason: str, key: str, **args: Any) -> None:
        bad.append(Problem(name, reason, message=Message(key, args or None)))

    unknown = sorted(set(values) - set(_FORM_FIELDS))
    for name in unknown:
        problem(name, f"unknown field; fields: {', '.join(_FORM_FIELDS)}", "unknown_parameter",
                names=", ".join(_FORM_FIELDS))
    indicator = _form_text(values, "indicator", 32)
    if indicator and not indicator.replace("_", "").isalnum():
        problem("indicator", f"{indicator!r} is not an indicator code", "indicators_r_indicator",
                column="indicator", value=indicator)
    layout = _form_text(values, "layout", 10) or "auto"
    if layout not in ("auto", "long", "wide"):
        problem("layout", "expected auto, long or wide", "one_of",
                expected="'auto', 'long' or 'wide'")
    day = None
    boundaries = _form_text(values, "boundaries", 10)
    if boundaries:
        try:
            day = dt.date.fromisoformat(boundaries)
        except ValueError:
            problem("boundaries", "not a date (YYYY-MM-DD)", "date")
    dry = (_form_text(values, "dry_run", 10) or "").lower()
    if dry not in _TRUE | _FALSE:
        problem("dry_run", "expected true or false", "boolean")
    if not isinstance(values.get("file"), UploadFile):
        problem("file", "attach the CSV or XLSX file (multipart form field 'file')", "required")
    if bad:
        raise BadRequest("; ".join(f"{p.field}: {p.reason}" for p in bad), parameter=bad[0].field,
                         problems=bad, message=PROBLEMS)
    return IndicatorImportOptions(indicator=indicator, layout=layout,  # type: ignore[arg-type]
                                  boundaries=day, sheet=_form_text(values, "sheet", 100),
                                  dry_run=dry in _TRUE)


def _refusal(report: ImportReport) -> Invalid:
    """A refused import as a problem-details error: the file's error, or one problem per refused
    row and column (its number as the spreadsheet shows it, the column, the reason)."""
    if report.error:
        return Invalid(f"file: {report.error}", parameter="file", message=PROBLEMS, problems=[
            Problem("file", report.error, message=report.error_entry)],
            file=report.file, committed=False)
    listed: list[Problem] = []
    for rejection in report.rejected:
        for text, entry in rejection.parts:
            column, sep, reason = text.partition(": ")
            listed.append(Problem(column if sep else None, reason if sep else text,
                                  row=rejection.row, message=entry))
    n = report.rejected_count
    return Invalid(f"{n} row(s) of {report.file} refused; nothing was imported: "
                   + "; ".join(f"row {p.row}: {p.field}: {p.reason}" for p in listed[:20]),
                   message=PROBLEMS, problems=listed, file=report.file, rows=report.rows,
                   rejected_count=n, committed=False)


def _worded(report: ImportReport, lang: str) -> dict[str, Any]:
    body = report.to_json()
    body.pop("rejected", None)
    if lang != "en":
        body["warnings"] = ["; ".join(messages.text(m, lang) or text for text, m in parts_of(w))
                            for w in report.warnings]
    return body


@router.post("/imports", summary="Import indicator values from a CSV or XLSX file",
             openapi_extra=body_schema(IndicatorImportForm, media_type="multipart/form-data"),
             responses={
                 200: {"model": IndicatorImportReport,
                       "description": "written (or checked, for a dry run)"},
                 **problems(400, 401, 403, 413, 422, 429, reasons={
                     400: "a form field is missing, unknown or malformed",
                     403: "only operators and administrators may import indicator values",
                     422: "nothing written: `errors` lists every refused row (row, field, "
                          "reason), or names `file` when it cannot be read"}),
             })
async def import_values(request: Request,
                        who: Annotated[Principal, Depends(require_roles(*IMPORT_ROLES))]
                        ) -> JSONResponse:
    """Import indicator values, all or nothing; a period imported again replaces its values."""
    form = await request.form()
    values: dict[str, Any] = {k.replace("-", "_"): v for k, v in form.items()}
    opts = _options(values)
    upload = values["file"]
    name = FilePath(upload.filename or "upload.csv").name or "upload.csv"
    tmp_root = PROJECT_ROOT / ".geoioc" / "imports"
    tmp_root.mkdir(parents=True, exist_ok=True)
    directory = FilePath(tempfile.mkdtemp(dir=tmp_root))
    try:
        path = directory / name
        size = 0
        with path.open("wb") as out:
            while chunk := await upload.read(1 << 20):
                size += len(chunk)
                if size > MAX_UPLOAD_BYTES:
                    raise UploadTooLarge(f"file: uploads are limited to {MAX_UPLOAD_BYTES >> 20} "
                                         "MB; use `geoioc indicators import` on the server",
                                         parameter="file")
                out.write(chunk)
        audit_req = audit.detached(request)
        lang = request_lang(request)
        pool = app_pool(request)

        def work() -> ImportReport:
            with pooled(pool) as conn:
                return import_indicators(conn, path, opts, who, display=name, request=audit_req)

        report = await run_in_threadpool(work)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    if not report.ok:
        raise _refusal(report)
    if report.committed and (report.inserted or report.updated):
        TILES.forget(LAYER)
    return JSONResponse(_worded(report, lang), headers={"Cache-Control": "no-store"})
