"""POST /api/imports: upload a file into a layer (multipart form).

Form fields: file (Shapefile zip, GeoPackage, GeoJSON, FlatGeobuf, CSV), layer, and optionally
crs (overrides the file's, e.g. EPSG:9209), from_encoding (tcvn3, vni, cp1258, utf-8),
repair (fix invalid geometries with ST_MakeValid), partial (write the good rows, report the
others; default all or nothing), dry_run (check and count, write nothing), source_layer (a
GeoPackage with several layers). Query parameters are accepted too.

Answers: 200 with the import report when written (or checked, for a dry run); 422 with the
report when nothing was written (rejected rows, or an unreadable file in "error"); 401 for
anonymous callers; 403 when the caller's roles may not import into the layer
(Layer.import_roles in the catalogue); 404 for a layer they may not read. Never a 500 for a bad file.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile

from api.ogc.errors import OGCError, bad_parameter, not_found
from api.ogc.tiles import CACHE as TILES
from api.routes.exports import _audit_request
from api.security import forbidden, require_roles
from gis.db import connection
from gis.io.imports import ImportNotAllowed, ImportOptions, import_file
from gis.settings import PROJECT_ROOT
from layers.access import Principal
from layers.errors import LayerNotFound

router = APIRouter(prefix="/api", tags=["imports"])

# Uploads above this are refused (a bigger load is a job for `geoioc import` on the server).
MAX_UPLOAD_BYTES = 2 * 1024**3
_TRUE = {"1", "true", "yes", "on"}
_FIELDS = {"layer", "crs", "from_encoding", "repair", "partial", "dry_run", "source_layer", "file"}


def _flag(value: object) -> bool:
    return str(value).strip().lower() in _TRUE


@router.post("/imports")
async def import_upload(request: Request,
                        who: Annotated[Principal, Depends(require_roles())]) -> JSONResponse:
    form = await request.form()
    values = {k.replace("-", "_"): v for k, v in request.query_params.items()}
    values.update({k.replace("-", "_"): v for k, v in form.items()})
    unknown = set(values) - _FIELDS
    if unknown:
        raise bad_parameter(f"unknown field {sorted(unknown)[0]!r}; fields: {', '.join(sorted(_FIELDS))}")
    upload = values.get("file")
    if not isinstance(upload, UploadFile):
        raise bad_parameter("file: attach the file to import (multipart form field 'file')")
    layer = str(values.get("layer") or "").strip()
    if not layer:
        raise bad_parameter("layer: which layer to import into")
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
                    raise OGCError(413, "PayloadTooLarge", f"uploads are limited to "
                                   f"{MAX_UPLOAD_BYTES >> 30} GB; use `geoioc import` on the server")
                out.write(chunk)
        audit_req = _audit_request(request)

        def work() -> JSONResponse:
            try:
                with connection() as conn:
                    report = import_file(conn, path, opts, who, display=name, request=audit_req)
                if report.committed and (report.inserted or report.updated):
                    TILES.forget(report.layer)
            except LayerNotFound as e:
                raise not_found(str(e)) from None
            except ImportNotAllowed as e:
                raise forbidden(str(e)) from None
            return JSONResponse(report.to_json(), status_code=200 if report.ok else 422,
                                headers={"Cache-Control": "no-store"})

        return await run_in_threadpool(work)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _text(value: object) -> str | None:
    if value is None or hasattr(value, "read"):
        return None
    text = str(value).strip()
    return text or None
