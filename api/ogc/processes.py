"""OGC API - Processes for exports: one process, `export`, run as a job.

The landing page (pygeoapi's) links /ogc/processes and /ogc/jobs; this router answers them with
the export jobs of api.routes.exports / gis.io.jobs, so a Processes client (OWSLib, a workflow
engine) can order a planner's Shapefile the way it orders any other process. The inputs are the
parameters of /api/exports, checked the same way (a bad one is a 400 at once, not a failed job);
the layer input offers only the layers the caller may read. Jobs run asynchronously only: an
export can take minutes, and its file is the result (GET /ogc/jobs/{id}/results). Errors are raised
as layers.errors and answered as OGC exception documents (api/errors.py, under /ogc).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from api import messages
from api.i18n import request_lang
from api.route_docs import WHO, body_schema, json_body, problems, validate
from api.routes.exports import (
    FILE_CONTENT,
    FILE_HEADERS,
    ExportParameters,
    JobStatus,
    owned_job,
    stream_result,
    submit_job,
)
from api.security import Who
from gis.io import jobs
from gis.io.formats import FORMATS, export_srids
from gis.settings import get_settings
from layers.access import Principal, readable_layers
from layers.errors import BadRequest, NotFound, TooLarge

router = APIRouter(prefix="/ogc", tags=["OGC API - Processes"])

PROCESS_ID = "export"
EXECUTE_KEYS = {"inputs", "outputs", "response", "subscriber"}
NO_STORE = {"Cache-Control": "no-store"}
# Far above any execute request (a CQL2-JSON filter with a detailed polygon included).
MAX_BODY = 20_000_000


class NoSuchProcess(NotFound):
    """404 with the code OGC API - Processes names for an unknown process."""

    code = "NoSuchProcess"


# The inputs: the export's parameters but `mode` (a process always runs as a job).
INPUTS = {k: v for k, v in ExportParameters.model_json_schema()["properties"].items() if k != "mode"}


class Execute(BaseModel):
    """An execute request: the export's parameters in `inputs` (`mode` excepted: it always runs
    as a job); `outputs`, `response` and `subscriber` are accepted and ignored."""

    model_config = ConfigDict(extra="forbid", title="ExportExecute")
    inputs: dict[str, Any] = Field(description="the parameters of /api/exports (ExportParameters)",
                                   json_schema_extra={"properties": INPUTS})
    outputs: Any = None
    response: Any = None
    subscriber: Any = None


execute_body = json_body(max_bytes=MAX_BODY, too_large=TooLarge,
                         not_object='body: expected {"inputs": {"layer": ..., "format": ...}}', empty={})
ProcessId = Annotated[str, Path(max_length=64, description=f"the process (`{PROCESS_ID}`)")]
JobId = Annotated[str, Path(max_length=64, description="the job's id")]


async def get_lang(request: Request, lang: Annotated[str | None, Query(
        description="`en` for English; default Vietnamese (or the browser's Accept-Language)",
        max_length=10)] = None) -> str:
    return request_lang(request)


Lang = Annotated[str, Depends(get_lang)]


def _text(lang: str, vi: str, en: str) -> str:
    return en if lang == "en" else vi


def _base() -> str:
    return get_settings().base_url + "/ogc"


def _summary(lang: str) -> dict[str, Any]:
    url = f"{_base()}/processes/{PROCESS_ID}"
    return {
        "id": PROCESS_ID, "version": "1.0.0",
        "title": _text(lang, "Xuất dữ liệu một lớp", "Export a layer"),
        "description": _text(
            lang, "Xuất một lớp (lọc theo vùng, đơn vị hành chính, CQL2, thời gian, trường) ra "
                  "Shapefile, GeoPackage, GeoJSON, FlatGeobuf, CSV hoặc KML, theo WGS84 hoặc VN-2000.",
            "Export a layer (filtered by area, administrative unit, CQL2, time, fields) to "
            "Shapefile, GeoPackage, GeoJSON, FlatGeobuf, CSV or KML, in WGS84 or VN-2000."),
        "jobControlOptions": ["async-execute"],
        "outputTransmission": ["reference"],
        "links": [
            {"rel": "self", "type": "application/json", "href": url},
            {"rel": "http://www.opengis.net/def/rel/ogc/1.0/execute", "type": "application/json",
             "href": f"{url}/execution"},
        ],
    }


def _input(lang: str, vi: str, en: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"title": _text(lang, vi, en), "schema": schema, "minOccurs": 1 if required else 0,
            "maxOccurs": 1}


def _description(lang: str, who: Principal) -> dict[str, Any]:
    text = {"type": "string"}
    return {
        **_summary(lang),
        "inputs": {
            "layer": _input(lang, "Lớp dữ liệu", "Layer", {
                "type": "string", "enum": [layer.id for layer in readable_layers(who)]}, required=True),
            "format": _input(lang, "Định dạng", "Format", {
                "type": "string", "enum": list(FORMATS), "default": "gpkg"}),
            "crs": _input(lang, "Hệ quy chiếu", "Coordinate reference system", {
                "type": "string", "enum": [f"EPSG:{s}" for s in export_srids()], "default": "EPSG:4326"}),
            "bbox": _input(lang, "Khung bao (minx, miny, maxx, maxy)",
                           "Bounding box (minx, miny, maxx, maxy)",
                           {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4}),
            "bbox-crs": _input(lang, "Hệ quy chiếu của khung bao", "CRS of the bounding box", text),
            "commune": _input(lang, "Mã đơn vị hành chính", "Administrative unit code", text),
            "commune-date": _input(lang, "Ranh giới tại ngày (hoặc pre-2025)",
                                   "Boundary as of a date (or pre-2025)", text),
            "filter": _input(lang, "Bộ lọc CQL2", "CQL2 filter", {"oneOf": [text, {"type": "object"}]}),
            "filter-lang": _input(lang, "Ngôn ngữ bộ lọc", "Filter language", {
                "type": "string", "enum": ["cql2-text", "cql2-json"]}),
            "filter-crs": _input(lang, "Hệ quy chiếu của bộ lọc", "CRS of the filter", text),
            "datetime": _input(lang, "Thời điểm hoặc khoảng thời gian (RFC 3339)",
                               "Instant or interval (RFC 3339)", text),
            "fields": _input(lang, "Các trường", "Fields", {"type": "array", "items": text}),
            "encoding": _input(lang, "Bảng mã thuộc tính", "Attribute encoding", {
                "type": "string", "enum": ["utf-8", "tcvn3"], "default": "utf-8"}),
        },
        "outputs": {
            "file": {"title": _text(lang, "Tệp xuất", "Exported file"),
                     "schema": {"oneOf": [
                         {"type": "string", "contentEncoding": "binary", "contentMediaType": media_type}
                         for media_type in sorted({f.media_type for f in FORMATS.values()})]}},
        },
    }


def _status(job: jobs.ExportJob, lang: str) -> dict[str, Any]:
    url = f"{_base()}/jobs/{job.id}"
    return {**job.status_info(url, f"{url}/results"), "message": messages.job_message(job, lang)}


def _json(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers={**NO_STORE, **(headers or {})})


def _known(process_id: str) -> None:
    if process_id != PROCESS_ID:
        raise NoSuchProcess(f"process {process_id!r} not found; available: {PROCESS_ID}")


@router.get("/processes", summary="The processes offered", responses={
    200: {"description": "the process list (one process: export)"}, **problems(400, ogc=True)})
def process_list(lang: Lang) -> Response:
    return _json({"processes": [_summary(lang)],
                  "links": [{"rel": "self", "type": "application/json", "href": f"{_base()}/processes"}]})


@router.get("/processes/{process_id}", summary="A process description", responses={
    200: {"description": "inputs (the layers the caller may read) and outputs"},
    **problems(400, *WHO, 404, ogc=True, reasons={404: "no such process (code NoSuchProcess)"})})
def process_description(process_id: ProcessId, lang: Lang, who: Who) -> Response:
    _known(process_id)
    return _json(_description(lang, who))


@router.post("/processes/{process_id}/execution", summary="Run an export as a job", status_code=201,
             openapi_extra=body_schema(Execute), responses={
                 201: {"model": JobStatus, "description": "the job, accepted",
                       "headers": {"Location": {"schema": {"type": "string", "format": "uri"}}}},
                 **problems(400, *WHO, 404, 413, ogc=True, reasons={
                     400: "the body or an input is malformed or unknown (checked before the job starts)",
                     404: "no such process, or a layer the caller may not read"})})
async def execute(process_id: ProcessId, request: Request, who: Who,
                  body: Annotated[dict[str, Any], Depends(execute_body)]) -> Response:
    _known(process_id)
    if not isinstance(body.get("inputs"), dict):
        raise BadRequest('body: expected {"inputs": {"layer": ..., "format": ...}}')
    unknown = sorted(set(body) - EXECUTE_KEYS)
    if unknown:
        raise BadRequest(f"body: unknown member {unknown[0]!r}; expected inputs, outputs, response")
    validate(Execute, body, BadRequest)
    if "mode" in body["inputs"]:
        raise BadRequest("inputs: mode is not an input of the process (it always runs as a job)")
    job = await run_in_threadpool(submit_job, body["inputs"], who, request)
    status = _status(job, request_lang(request))
    return _json(status, 201, {"Location": status["links"][0]["href"]})


@router.get("/jobs", summary="The caller's jobs", responses={
    200: {"description": "the caller's export jobs"}, **problems(*WHO, ogc=True)})
def job_list(who: Who, lang: Lang) -> Response:
    return _json({"jobs": [_status(job, lang) for job in jobs.exports().of(who)],
                  "links": [{"rel": "self", "type": "application/json", "href": f"{_base()}/jobs"}]})


@router.get("/jobs/{job_id}", summary="A job's status", responses={
    200: {"model": JobStatus, "description": "the status"}, **problems(400, *WHO, 404, ogc=True)})
def job_status(job_id: JobId, who: Who, lang: Lang) -> Response:
    return _json(_status(owned_job(job_id, who), lang))


@router.get("/jobs/{job_id}/results", summary="A job's file", response_class=Response, responses={
    200: {"description": "the exported file", "content": FILE_CONTENT, "headers": FILE_HEADERS},
    **problems(400, *WHO, 404, 409, ogc=True, reasons={
        404: "no such job, or it failed (code ResultNotReady)",
        409: "the job is still running (code ResultNotReady)"})})
def job_results(job_id: JobId, who: Who) -> Response:
    return stream_result(owned_job(job_id, who))
