"""OGC API exception responses: a 4xx with a body that names the problem, never a 500."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse


class OGCError(Exception):
    def __init__(self, status: int, code: str, description: str):
        super().__init__(description)
        self.status, self.code, self.description = status, code, description


def bad_parameter(description: str) -> OGCError:
    return OGCError(400, "InvalidParameterValue", description)


def not_found(description: str) -> OGCError:
    return OGCError(404, "NotFound", description)


async def ogc_error_handler(request: Request, exc: OGCError) -> JSONResponse:
    return JSONResponse({"code": exc.code, "description": exc.description}, status_code=exc.status)
