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
by gis.io.jobs. The same access rules as everywhere: an unreadable layer is a 404, hidden fields
and rows are not in the file, restricted and personal data are audited.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response, StreamingResponse

from api.ogc.errors import OGCError, bad_parameter, not_found
from api.security import Who
from gis.db import connection
from gis.io import jobs
from gis.io.export import (
    ExportError,
    ExportRequest,
    LayerNotFound,
    content_disposition,
    estimate,
    plan,
    run,
)
from gis.io.formats import FORMATS, export_srids
from gis.settings import PROJECT_ROOT, get_settings
from layers.access import Principal

router = APIRouter(prefix="/api", tags=["exports"])

# Above this many features an export runs as a job.
ASYNC_ABOVE = 50_000
CHUNK = 1 << 20
_PARAMS = {"layer", "format", "f", "crs", "bbox", "bbox-crs", "commune", "commune-date", "filter",
           "filter-lang", "filter-crs", "datetime", "fields", "encoding", "mode"}


def _request_from(params: dict[str, Any]) -> tuple[ExportRequest, str]:
    norm = {k.replace("_", "-"): v for k, v in params.items()}
    unknown = set(norm) - _PARAMS
    if unknown:
        raise bad_parameter(f"unknown parameter {sorted(unknown)[0]!r}; parameters: "
                            f"{', '.join(sorted(_PARAMS))}")
    if not norm.get("layer"):
        raise bad_parameter("layer: which layer to export (see /ogc/collections)")
    req = ExportRequest(
        layer=str(norm["layer"]), format=str(norm.get("format") or norm.get("f") or "gpkg"),
        crs=norm.get("crs"), bbox=norm.get("bbox"), bbox_crs=norm.get("bbox-crs"),
        commune=norm.get("commune"), commune_date=norm.get("commune-date"),
        filter=norm.get("filter"), filter_lang=norm.get("filter-lang"),
        filter_crs=norm.get("filter-crs"), datetime=norm.get("datetime"),
        fields=norm.get("fields"), encoding=str(norm.get("encoding") or "utf-8"))
    mode = str(norm.get("mode") or "auto").lower()
    if mode not in ("auto", "sync", "async"):
        raise bad_parameter(f"mode: {mode!r}; use auto, sync or async")
    return req, mode


def _audit_request(request: Request) -> SimpleNamespace:
    """What the audit log needs of the request, detached from it (jobs outlive requests)."""
    return SimpleNamespace(method=request.method, url=SimpleNamespace(path=request.url.path,
                                                                      query=request.url.query),
                           client=SimpleNamespace(host=request.client.host if request.client else None))


def _stream_and_delete(path: Path, directory: Path) -> Iterator[bytes]:
    try:
        with path.open("rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _job_response(job: jobs.ExportJob, status: int = 200) -> JSONResponse:
    url = f"{get_settings().base_url}/api/exports/jobs/{job.id}"
    headers = {"Cache-Control": "no-store"}
    if status == 201 or status == 202:
        headers["Location"] = url
    return JSONResponse(job.status_info(url, f"{url}/download"), status_code=status, headers=headers)


def submit_job(params: dict[str, Any], who: Principal, request: Request) -> jobs.ExportJob:
    """Check an export request (400/404 at once, not in a failed job) and run it as a job."""
    req, _ = _request_from(params)
    try:
        with connection() as conn:
            count = estimate(conn, plan(conn, req, who), cap=ASYNC_ABOVE)
    except LayerNotFound as e:
        raise not_found(str(e)) from None
    except ExportError as e:
        raise bad_parameter(str(e)) from None
    total = None if count > ASYNC_ABOVE else count
    return jobs.runner().submit(req, who, total, _audit_request(request))


def owned_job(job_id: str, who: Principal) -> jobs.ExportJob:
    """The job, or a 404 (another user's job does not exist for the caller)."""
    job = jobs.runner().get(job_id, who)
    if job is None:
        raise not_found(f"export job {job_id!r} not found")
    return job


def stream_result(job: jobs.ExportJob) -> Response:
    """The file of a successful job; 409 while it runs, 404 when it failed."""
    if job.status != "successful" or job.result is None or not job.result.path.exists():
        raise OGCError(404 if job.status == "failed" else 409, "ResultNotReady",
                       f"export job {job.id} is {job.status}" + (f": {job.message}" if job.message else ""))
    r = job.result
    headers = {"Content-Disposition": content_disposition(r),
               "Content-Length": str(r.path.stat().st_size), "X-Feature-Count": str(r.rows)}
    path = r.path

    def stream() -> Iterator[bytes]:
        with path.open("rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk

    return StreamingResponse(stream(), media_type=r.media_type, headers=headers)


def _export(params: dict[str, Any], who: Principal, request: Request, prefer_async: bool) -> Response:
    req, mode = _request_from(params)
    audit_req = _audit_request(request)
    try:
        with connection() as conn:
            p = plan(conn, req, who)
            count = estimate(conn, p, cap=ASYNC_ABOVE)
            if mode == "async" or (mode == "auto" and (count > ASYNC_ABOVE or prefer_async)):
                total = None if count > ASYNC_ABOVE else count
                return _job_response(jobs.runner().submit(req, who, total, audit_req), 202)
            tmp_root = PROJECT_ROOT / ".geoioc" / "exports" / "tmp"
            tmp_root.mkdir(parents=True, exist_ok=True)
            directory = Path(tempfile.mkdtemp(dir=tmp_root))
            try:
                result = run(conn, p, directory, total=count)
                if p.sensitive:
                    from gis import audit

                    audit.record(conn, who, "export", request=audit_req, layer=p.layer.id, status=200,
                                 target={**req.summary(), "rows": result.rows,
                                         "fields": [f.name for f in p.fields]})
            except BaseException:
                shutil.rmtree(directory, ignore_errors=True)
                raise
    except LayerNotFound as e:
        raise not_found(str(e)) from None
    except ExportError as e:
        raise bad_parameter(str(e)) from None
    headers = {"Content-Disposition": content_disposition(result),
               "Content-Length": str(result.path.stat().st_size),
               "X-Feature-Count": str(result.rows), "Cache-Control": "no-store"}
    if result.warnings:
        headers["X-Export-Warnings"] = " | ".join(result.warnings).encode("ascii", "replace").decode()
    return StreamingResponse(_stream_and_delete(result.path, directory), media_type=result.media_type,
                             headers=headers)


@router.get("/exports/formats")
def export_formats() -> Response:
    """What can be asked for: formats and CRS."""
    body = {"formats": [{"format": f.key, "title": f.label, "mediaType": f.media_type,
                         "tcvn3": f.tcvn3, "crs": f"EPSG:{f.fixed_srid}" if f.fixed_srid else None}
                        for f in FORMATS.values()],
            "crs": [{"crs": f"EPSG:{s}", "title": n} for s, n in export_srids().items()],
            "asyncAbove": ASYNC_ABOVE}
    return Response(orjson.dumps(body), media_type="application/json")


@router.get("/exports")
async def export_get(request: Request, who: Who) -> Response:
    prefer = "respond-async" in request.headers.get("prefer", "")
    return await run_in_threadpool(_export, dict(request.query_params), who, request, prefer)


@router.post("/exports")
async def export_post(request: Request, who: Who) -> Response:
    params: dict[str, Any] = dict(request.query_params)
    body = await request.body()
    if body.strip():
        if "json" not in request.headers.get("content-type", "application/json"):
            raise OGCError(415, "UnsupportedMediaType", "send the export request as JSON or in the "
                           "query string")
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise bad_parameter(f"body: not JSON ({e})") from None
        if not isinstance(data, dict):
            raise bad_parameter("body: expected a JSON object")
        # OGC API - Processes execute requests wrap the parameters in "inputs".
        params.update(data.get("inputs", data) if isinstance(data.get("inputs"), dict) else data)
    prefer = "respond-async" in request.headers.get("prefer", "")
    return await run_in_threadpool(_export, params, who, request, prefer)


@router.get("/exports/jobs/{job_id}")
def export_job(job_id: str, who: Who) -> Response:
    return _job_response(owned_job(job_id, who))


@router.get("/exports/jobs/{job_id}/download")
def export_job_download(job_id: str, who: Who) -> Response:
    return stream_result(owned_job(job_id, who))
