"""POST /api/imports: upload a file into a layer (multipart form).

Form fields: file (Shapefile zip, GeoPackage, GeoJSON, FlatGeobuf, CSV), layer, and optionally
crs (overrides the file's, e.g. EPSG:9209), from_encoding (tcvn3, vni, cp1258, utf-8),
repair (fix invalid geometries with ST_MakeValid), partial (write the good rows, report the
others; default all or nothing), dry_run (check and count, write nothing), source_layer (a
GeoPackage with several layers). Query parameters are accepted too.

Answers: 200 with the import report when written (or checked, for a dry run); 422 with the
report when nothing was written (rejected rows, or an unreadable file in "error"); 401 for
anonymous callers; 403 when the caller's roles may not import into the layer
(Layer.import_roles in the catalogue); 404 for a layer they may not read; 400 for a missing or
unknown field; 413 past MAX_UPLOAD_BYTES. Never a 500 for a bad file. Errors are raised as
layers.errors (problem details); the 422 with the report is the report, not an error body.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import UploadFile

from api import messages
from api.deps import app_pool
from api.i18n import request_lang
from api.ogc.tiles import CACHE as TILES
from api.route_docs import body_schema, problems
from api.security import require_roles
from gis import audit
from gis.db import pooled
from gis.io.imports import ImportOptions, import_file
from gis.io.imports.report import ImportReport, parts_of
from gis.settings import PROJECT_ROOT
from layers.access import Principal
from layers.errors import BadRequest, TooLarge

router = APIRouter(prefix="/api", tags=["imports"])

# Uploads above this are refused (a bigger load is a job for `geoioc import` on the server).
MAX_UPLOAD_BYTES = 2 * 1024**3
_TRUE = {"1", "true", "yes", "on"}
_FIELDS = {"layer", "crs", "from_encoding", "repair", "partial", "dry_run", "source_layer", "file"}


class UploadTooLarge(TooLarge):
    """413, with the code this route always answered."""

    code = "PayloadTooLarge"


class ImportForm(BaseModel):
    """The multipart form of POST /api/imports (`-` may stand for `_` in the names)."""

    model_config = ConfigDict(extra="forbid", title="ImportForm")

    file: bytes = Field(description="Shapefile (zip), GeoPackage, GeoJSON, FlatGeobuf or CSV",
                        json_schema_extra={"format": "binary"})
    layer: str = Field(max_length=64, description="the layer to import into")
    crs: str | None = Field(None, max_length=200, description="overrides the file's, e.g. EPSG:9209")
    from_encoding: str | None = Field(None, max_length=20, description="tcvn3, vni, cp1258, utf-8")
    repair: bool = Field(False, description="fix invalid geometries (ST_MakeValid)")
    partial: bool = Field(False, description="write the good rows and report the others "
                                             "(default: all or nothing)")
    dry_run: bool = Field(False, description="check and count, write nothing")
    source_layer: str | None = Field(None, max_length=200, description="the layer of a multi-layer "
                                                                       "GeoPackage")


class ImportReportBody(BaseModel):
    """What happened to the file: counts, every rejected row with its reason, warnings."""

    model_config = ConfigDict(extra="allow", title="ImportReport")
    layer: str
    file: str
    rows: int
    inserted: int
    updated: int
    rejected_count: int
    rejected: list[dict[str, Any]]
    committed: bool
    ok: bool
    error: str | None = None


def _flag(value: object) -> bool:
    return str(value).strip().lower() in _TRUE


async def get_import_query(
    request: Request,
    layer: Annotated[str | None, Query(max_length=64, description="as the form field")] = None,
    crs: Annotated[str | None, Query(max_length=200, description="as the form field")] = None,
    from_encoding: Annotated[str | None, Query(max_length=20, description="as the form field")] = None,
    repair: Annotated[str | None, Query(max_length=10, description="as the form field (1, true, yes, on)")
                      ] = None,
    partial: Annotated[str | None, Query(max_length=10, description="as the form field")] = None,
    dry_run: Annotated[str | None, Query(max_length=10, description="as the form field")] = None,
    source_layer: Annotated[str | None, Query(max_length=200, description="as the form field")] = None,
) -> dict[str, Any]:
    """The form's fields may come in the query string too (the form wins)."""
    return {k.replace("-", "_"): v for k, v in request.query_params.items()}


@router.post("/imports", summary="Import a file into a layer",
             openapi_extra=body_schema(ImportForm, media_type="multipart/form-data"),
             responses={
                 200: {"model": ImportReportBody, "description": "written (or checked, for a dry run)"},
                 422: {"model": ImportReportBody, "description": "nothing written: the report lists the "
                       "rejected rows, or says in `error` why the file could not be read"},
                 **problems(400, 401, 403, 404, 413, 429, reasons={
                     400: "a field is missing or unknown",
                     403: "the caller's roles may not import into this layer",
                     404: "the layer does not exist or the caller may not read it"}),
             })
async def import_upload(request: Request, who: Annotated[Principal, Depends(require_roles())],
                        query: Annotated[dict[str, Any], Depends(get_import_query)]) -> JSONResponse:
    form = await request.form()
    values = dict(query)
    values.update({k.replace("-", "_"): v for k, v in form.items()})
    unknown = set(values) - _FIELDS
    if unknown:
        raise BadRequest(f"unknown field {sorted(unknown)[0]!r}; fields: {', '.join(sorted(_FIELDS))}",
                         parameter=sorted(unknown)[0])
    upload = values.get("file")
    if not isinstance(upload, UploadFile):
        raise BadRequest("file: attach the file to import (multipart form field 'file')", parameter="file")
    layer = str(values.get("layer") or "").strip()
    if not layer:
        raise BadRequest("layer: which layer to import into", parameter="layer")
    opts = ImportOptions(layer=layer, crs=_text(values.get("crs")),
                         from_encoding=_text(values.get("from_encoding")),
                         repair=_flag(values.get("repair", "")), partial=_flag(values.get("partial", "")),
                         dry_run=_flag(values.get("dry_run", "")),
                         source_layer=_text(values.get("source_layer")))
    name = Path(upload.filename or "upload").name
    tmp_root = PROJECT_ROOT / ".geoioc" / "imports"
    tmp_root.mkdir(parents=True, exist_ok=True)
    directory = Path(tempfile.mkdtemp(dir=tmp_root))
    try:
        path = directory / (name or "upload")
        size = 0
        with path.open("wb") as out:
            while chunk := await upload.read(1 << 20):
                size += len(chunk)
                if size > MAX_UPLOAD_BYTES:
                    raise UploadTooLarge(f"uploads are limited to {MAX_UPLOAD_BYTES >> 30} GB; use "
                                         "`geoioc import` on the server")
                out.write(chunk)
        audit_req = audit.detached(request)
        lang = request_lang(request)
        pool = app_pool(request)

        def work() -> JSONResponse:
            # A connection only once the file is here: an upload can take minutes.
            with pooled(pool) as conn:
                report = import_file(conn, path, opts, who, display=name, request=audit_req)
            if report.committed and (report.inserted or report.updated):
                TILES.forget(report.layer)
            return JSONResponse(_worded(report, lang), status_code=200 if report.ok else 422,
                                headers={"Cache-Control": "no-store"})

        return await run_in_threadpool(work)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _worded(report: ImportReport, lang: str) -> dict[str, Any]:
    """The report as JSON, its file error, rejected rows' reasons and warnings in LANG (the
    catalogue's wording; English as the importer wrote them)."""
    body = report.to_json()
    if lang == "en":
        return body
    if report.error and report.error_entry:
        body["error"] = messages.text(report.error_entry, lang) or report.error
    for row, rejection in zip(body["rejected"], report.rejected, strict=True):
        row["reason"] = "; ".join(messages.text(m, lang) or text for text, m in rejection.parts)
    body["warnings"] = ["; ".join(messages.text(m, lang) or text for text, m in parts_of(w))
                        for w in report.warnings]
    return body


def _text(value: object) -> str | None:
    if value is None or hasattr(value, "read"):
        return None
    text = str(value).strip()
    return text or None
