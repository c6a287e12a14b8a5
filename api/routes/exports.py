"""Exports over HTTP: POST (or GET) /api/exports, and the jobs of big ones.

Parameters (query string, or a JSON body for POST - the body wins): layer, format (shp, gpkg,
geojson, fgb, csv, kml), crs (EPSG:4326 default, EPSG:3405, EPSG:9209), bbox (+ bbox-crs),
commune (+ commune-date: a date or "pre-2025"), filter (CQL2 text, or JSON in a JSON body;
filter-lang, filter-crs), datetime (RFC 3339 instant or interval), fields (names or short
names, comma-separated or a list), encoding (utf-8, or tcvn3 for Shapefile/CSV), mode (auto,
sync, async; "Prefer: respond-async" also asks for a job).

Up to ASYNC_ABOVE features the file comes back in the response (written to a temporary file,
then streamed and deleted: GeoPackage and Shapefile writers need a seekable file). Above that,
or when asked, the answer is 202 with a job (status at Location, download when successful), run
by gis.io.jobs on the job queue (gis.jobs). The same access rules as everywhere: an unreadable
layer is a 404, hidden fields and rows are not in the file, restricted and personal data are
audited. Parameters, bodies and every status are declared (/openapi.json); errors are raised as
layers.errors (api/errors.py renders them as problem details).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from api import messages
from api.deps import SettingsDep, app_pool
from api.i18n import request_lang
from api.route_docs import BINARY, WHO, body_schema, problems, validate
from api.security import Who
from gis import audit
from gis.db import pooled
from gis.io import jobs
from gis.io.export import ExportRequest, audit_export, content_disposition, estimate, plan, run
from gis.io.formats import FORMATS, export_srids
from gis.settings import PROJECT_ROOT, Settings
from layers.access import Principal
from layers.errors import BadRequest, Conflict, Message, NotFound, UnsupportedMediaType

router = APIRouter(prefix="/api", tags=["exports"])

# Above this many features an export runs as a job.
ASYNC_ABOVE = 50_000
CHUNK = 1 << 20
_PARAMS = {"layer", "format", "f", "crs", "bbox", "bbox-crs", "commune", "commune-date", "filter",
           "filter-lang", "filter-crs", "datetime", "fields", "encoding", "mode"}


class ResultNotReady(Conflict):
    """The job's file was asked for while the job is still accepted or running (409)."""

    code = "ResultNotReady"


class ResultGone(NotFound):
    """The job failed: there is no file and there will be none (404, same code as before)."""

    code = "ResultNotReady"


class ExportParameters(BaseModel):
    """An export request: the query parameters of GET /api/exports as JSON members (names with
    `-` or `_`), with the JSON types they may also take (a bbox as numbers, a CQL2-JSON filter,
    fields as a list)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, title="ExportParameters")

    layer: str | None = Field(None, max_length=64, description="the layer (see /ogc/collections); required")
    format: str | None = Field(None, max_length=20, description="one of " + ", ".join(FORMATS),
                               examples=["gpkg"])
    f: str | None = Field(None, max_length=20, description="same as `format`")
    crs: str | int | None = Field(None, description="output CRS, e.g. EPSG:4326 (default), EPSG:9209")
    bbox: str | list[float] | None = Field(None, description="minx,miny,maxx,maxy in `bbox-crs`")
    bbox_crs: str | None = Field(None, alias="bbox-crs", max_length=200)
    commune: str | int | None = Field(None, description=(
        "administrative unit: its code, or its name (accents and case ignored, e.g. `bao yen`); "
        "a name several units share answers 300 listing them"))
    commune_date: str | None = Field(None, alias="commune-date", max_length=30,
                                     description="its boundary as of a date, or `pre-2025`")
    filter: str | dict[str, Any] | None = Field(None, description="CQL2 text, or CQL2-JSON")
    filter_lang: str | None = Field(None, alias="filter-lang", max_length=20,
                                    description="cql2-text or cql2-json")
    filter_crs: str | None = Field(None, alias="filter-crs", max_length=200)
    datetime: str | None = Field(None, max_length=100, description="RFC 3339 instant or interval")
    fields: str | list[str] | None = Field(None, description="field names or short names")
    encoding: str | None = Field(None, max_length=20, description="utf-8 (default) or tcvn3 "
                                                                  "(Shapefile, CSV)")
    mode: str | None = Field(None, max_length=10, description="auto (default), sync or async")


class JobStatus(BaseModel):
    """An OGC API - Processes status document (statusInfo) of an export job."""

    model_config = ConfigDict(extra="allow", title="ExportJobStatus")
    jobID: str
    type: str
    processID: str
    status: str = Field(description="accepted, running, successful or failed")
    progress: int = Field(ge=0, le=100)
    message: str
    links: list[dict[str, str]]


FILE_CONTENT = {media: {"schema": BINARY} for media in sorted({f.media_type for f in FORMATS.values()})}
FILE_HEADERS = {
    "Content-Disposition": {"schema": {"type": "string"}, "description": "the file's name"},
    "X-Feature-Count": {"schema": {"type": "integer"}, "description": "features in the file"},
}
LOCATION = {"Location": {"schema": {"type": "string", "format": "uri"}, "description": "the job"}}


def _request_from(params: dict[str, Any]) -> tuple[ExportRequest, str]:
    norm = {k.replace("_", "-"): v for k, v in params.items()}
    unknown = set(norm) - _PARAMS
    if unknown:
        raise BadRequest.for_field("unknown_parameter", sorted(unknown)[0],
                                   f"unknown parameter; parameters: {', '.join(sorted(_PARAMS))}",
                                   names=", ".join(sorted(_PARAMS)))
    # The types each member may take (the values themselves go on as given: the exporter reads
    # them the same way for the query string, a JSON body and the command line).
    validate(ExportParameters, norm, BadRequest)
    if not norm.get("layer"):
        raise BadRequest.for_field("export_layer", "layer", "which layer to export (see /ogc/collections)")
    req = ExportRequest(
        layer=str(norm["layer"]), format=str(norm.get("format") or norm.get("f") or "gpkg"),
        crs=norm.get("crs"), bbox=norm.get("bbox"), bbox_crs=norm.get("bbox-crs"),
        commune=norm.get("commune"), commune_date=norm.get("commune-date"),
        filter=norm.get("filter"), filter_lang=norm.get("filter-lang"),
        filter_crs=norm.get("filter-crs"), datetime=norm.get("datetime"),
        fields=norm.get("fields"), encoding=str(norm.get("encoding") or "utf-8"))
    mode = str(norm.get("mode") or "auto").lower()
    if mode not in ("auto", "sync", "async"):
        raise BadRequest.for_field("one_of", "mode", f"{mode!r}; use auto, sync or async",
                                   expected="'auto', 'sync' or 'async'")
    return req, mode


def _stream_and_delete(path: Path, directory: Path) -> Iterator[bytes]:
    try:
        with path.open("rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _job_response(job: jobs.ExportJob, settings: Settings, status: int = 200,
                  lang: str = "vi") -> JSONResponse:
    url = f"{settings.base_url}/api/exports/jobs/{job.id}"
    headers = {"Cache-Control": "no-store"}
    if status == 201 or status == 202:
        headers["Location"] = url
    body = {**job.status_info(url, f"{url}/download"), "message": messages.job_message(job, lang)}
    return JSONResponse(body, status_code=status, headers=headers)


def submit_job(params: dict[str, Any], who: Principal, request: Request) -> jobs.ExportJob:
    """Check an export request (400/404 at once, not in a failed job) and run it as a job."""
    req, _ = _request_from(params)
    # The connection is only for the check: the job takes its own.
    with pooled(app_pool(request)) as conn:
        count = estimate(conn, plan(conn, req, who), cap=ASYNC_ABOVE)
    total = None if count > ASYNC_ABOVE else count
    return jobs.exports().submit(req, who, total, audit.detached(request))


def owned_job(job_id: str, who: Principal) -> jobs.ExportJob:
    """The job, or a 404 (another user's job does not exist for the caller)."""
    job = jobs.exports().get(job_id, who)
    if job is None:
        raise NotFound(f"export job {job_id!r} not found",
                       message=Message("job_not_found", {"id": repr(job_id)}))
    return job


def stream_result(job: jobs.ExportJob) -> Response:
    """The file of a successful job; 409 while it runs, 404 when it failed."""
    if job.status != "successful" or job.result is None or not job.result.path.exists():
        message = f"export job {job.id} is {job.status}" + (f": {job.message}" if job.message else "")
        if job.status == "failed":
            raise ResultGone(message, message=Message("job_result_gone", {"id": job.id}))
        raise ResultNotReady(message, message=Message("job_result_not_ready", {"id": job.id}))
    r = job.result
    headers = {"Content-Disposition": content_disposition(r),
               "Content-Length": str(r.path.stat().st_size), "X-Feature-Count": str(r.rows)}
    path = r.path

    def stream() -> Iterator[bytes]:
        with path.open("rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk

    return StreamingResponse(stream(), media_type=r.media_type, headers=headers)


def _export(params: dict[str, Any], who: Principal, request: Request, settings: Settings,
            prefer_async: bool) -> Response:
    req, mode = _request_from(params)
    audit_req = audit.detached(request)
    # Our own connection, not the request's: it is given back before the file is streamed.
    with pooled(app_pool(request)) as conn:
        p = plan(conn, req, who)
        count = estimate(conn, p, cap=ASYNC_ABOVE)
        if mode == "async" or (mode == "auto" and (count > ASYNC_ABOVE or prefer_async)):
            total = None if count > ASYNC_ABOVE else count
            return _job_response(jobs.exports().submit(req, who, total, audit_req), settings, 202,
                                 request_lang(request))
        tmp_root = PROJECT_ROOT / ".geoioc" / "exports" / "tmp"
        tmp_root.mkdir(parents=True, exist_ok=True)
        directory = Path(tempfile.mkdtemp(dir=tmp_root))
        try:
            result = run(conn, p, directory, total=count)
            audit_export(conn, who, p, result, "export", request=audit_req)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
    headers = {"Content-Disposition": content_disposition(result),
               "Content-Length": str(result.path.stat().st_size),
               "X-Feature-Count": str(result.rows), "Cache-Control": "no-store"}
    if result.warnings:
        headers["X-Export-Warnings"] = " | ".join(result.warnings).encode("ascii", "replace").decode()
    return StreamingResponse(_stream_and_delete(result.path, directory), media_type=result.media_type,
                             headers=headers)


# --- typed parameters ----------------------------------------------------------------------------


async def get_export_query(
    request: Request,
    layer: Annotated[str | None, Query(max_length=64, description="the layer to export (required)")] = None,
    format: Annotated[str | None, Query(max_length=20, description="one of " + ", ".join(FORMATS)
                                        + " (default gpkg)")] = None,
    f: Annotated[str | None, Query(max_length=20, description="same as `format`")] = None,
    crs: Annotated[str | None, Query(max_length=200, description="output CRS: " + ", ".join(
        f"EPSG:{s}" for s in export_srids()) + " (default EPSG:4326)")] = None,
    bbox: Annotated[str | None, Query(max_length=400, description="minx,miny,maxx,maxy")] = None,
    bbox_crs: Annotated[str | None, Query(alias="bbox-crs", max_length=200)] = None,
    commune: Annotated[str | None, Query(max_length=100, description=(
        "administrative unit: its code, or its name (accents and case ignored); a name several "
        "units share answers 300 listing them"))] = None,
    commune_date: Annotated[str | None, Query(alias="commune-date", max_length=30, description=(
        "its boundary as of a date (YYYY-MM-DD), or `pre-2025`"))] = None,
    filter: Annotated[str | None, Query(max_length=16_000, description="CQL2 text")] = None,
    filter_lang: Annotated[str | None, Query(alias="filter-lang", max_length=20)] = None,
    filter_crs: Annotated[str | None, Query(alias="filter-crs", max_length=200)] = None,
    datetime: Annotated[str | None, Query(max_length=100, description="RFC 3339 instant or interval")] = None,
    fields: Annotated[str | None, Query(max_length=4000, description="comma-separated field names")] = None,
    encoding: Annotated[str | None, Query(max_length=20, description="utf-8 (default) or tcvn3")] = None,
    mode: Annotated[str | None, Query(max_length=10, description="auto (default), sync or async")] = None,
) -> dict[str, Any]:
    """The export parameters of the query string (declared above; `_` may stand for `-`, and an
    unknown one is a 400 naming it)."""
    return dict(request.query_params)


ExportQuery = Annotated[dict[str, Any], Depends(get_export_query)]
PreferHeader = Annotated[str | None, Header(max_length=200, description=(
    "`respond-async` asks for a job whatever the size"))]


async def export_body(request: Request) -> dict[str, Any]:
    """The JSON body of POST /api/exports (optional: the query string may say it all)."""
    raw = await request.body()
    if not raw.strip():
        return {}
    if "json" not in request.headers.get("content-type", "application/json"):
        raise UnsupportedMediaType("send the export request as JSON or in the query string")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise BadRequest.for_field("json", "body", f"not JSON ({e})") from None
    if not isinstance(data, dict):
        raise BadRequest.for_field("object", "body", "expected a JSON object")
    # OGC API - Processes execute requests wrap the parameters in "inputs".
    inputs = data.get("inputs")
    return inputs if isinstance(inputs, dict) else data


EXPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "the file (up to 50 000 features, or mode=sync)", "content": FILE_CONTENT,
          "headers": {**FILE_HEADERS, "X-Export-Warnings": {
              "schema": {"type": "string"}, "description": "what was changed to fit the format"}}},
    202: {"description": "a job (large exports, mode=async, or Prefer: respond-async)", "model": JobStatus,
          "headers": LOCATION},
    **problems(300, 400, *WHO, 404, reasons={
        300: "the commune name fits several administrative units (listed in `candidates`)",
        404: "the layer does not exist or the caller may not read it"}),
}


@router.get("/exports/formats", summary="Export formats and CRS", responses={
    200: {"description": "formats, CRS and the size above which an export runs as a job"},
    **problems()})
def export_formats() -> Response:
    """What can be asked for: formats and CRS."""
    body = {"formats": [{"format": f.key, "title": f.label, "mediaType": f.media_type,
                         "tcvn3": f.tcvn3, "crs": f"EPSG:{f.fixed_srid}" if f.fixed_srid else None}
                        for f in FORMATS.values()],
            "crs": [{"crs": f"EPSG:{s}", "title": n} for s, n in export_srids().items()],
            "asyncAbove": ASYNC_ABOVE}
    return Response(orjson.dumps(body), media_type="application/json")


@router.get("/exports", summary="Export a layer", response_class=Response, responses=EXPORT_RESPONSES)
async def export_get(request: Request, who: Who, settings: SettingsDep, params: ExportQuery,
                     prefer: PreferHeader = None) -> Response:
    return await run_in_threadpool(_export, params, who, request, settings,
                                   "respond-async" in (prefer or ""))


@router.post("/exports", summary="Export a layer (parameters as JSON)", response_class=Response,
             openapi_extra=body_schema({"oneOf": [ExportParameters.model_json_schema(), {
                 "title": "ExportInputs", "type": "object", "required": ["inputs"],
                 "properties": {"inputs": ExportParameters.model_json_schema()}}]},
                                       required=False, description=(
                 "the parameters (they win over the query string's), or an OGC API - Processes "
                 "execute request with them in `inputs`")),
             responses={**problems(400, *WHO, 404, 415), **EXPORT_RESPONSES})
async def export_post(request: Request, who: Who, settings: SettingsDep, params: ExportQuery,
                      body: Annotated[dict[str, Any], Depends(export_body)],
                      prefer: PreferHeader = None) -> Response:
    return await run_in_threadpool(_export, {**params, **body}, who, request, settings,
                                   "respond-async" in (prefer or ""))


JobId = Annotated[str, PathParam(max_length=64, description="the job's id (from Location)")]


@router.get("/exports/jobs/{job_id}", summary="An export job's status",
            responses={200: {"model": JobStatus, "description": "the status"}, **problems(*WHO, 404, 400)})
def export_job(request: Request, job_id: JobId, who: Who, settings: SettingsDep) -> Response:
    return _job_response(owned_job(job_id, who), settings, lang=request_lang(request))


@router.get("/exports/jobs/{job_id}/download", summary="An export job's file", response_class=Response,
            responses={200: {"description": "the file", "content": FILE_CONTENT, "headers": FILE_HEADERS},
                       **problems(400, *WHO, 404, 409, reasons={
                           404: "no such job, or it failed (code ResultNotReady)",
                           409: "the job is still running (code ResultNotReady)"})})
def export_job_download(job_id: JobId, who: Who) -> Response:
    return stream_result(owned_job(job_id, who))
