"""What the routes share to describe themselves in /openapi.json, and to read a JSON body the way
they always have.

- `ok(...)`: a success response's media type and schema, where FastAPI cannot infer them (a
  Response built from bytes);
- `problems(...)`: the `responses=` entries for error statuses, with the media type api/errors.py
  answers with (RFC 9457 application/problem+json under /api, the OGC exception document under
  /ogc, an HTML page for a browser on a page) and its schema;
- `json_body(...)`: the JSON object of a request, read by the route's own dependency rather than
  FastAPI's body parsing because these routes answer a body that is not JSON or not an object
  with 400 (FastAPI would say 422), and an unknown member with the status each route always used;
- `body_schema(...)`: the `openapi_extra` that documents such a body with its pydantic model.

Nothing here builds an error response: errors are raised (layers.errors) and rendered in one place.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import orjson
from fastapi import Request
from pydantic import BaseModel, ValidationError

from api import messages
from layers.errors import PROBLEMS, BadRequest, GeoIOCError, Invalid, Message, Problem

PROBLEM_JSON = "application/problem+json"
JSON = "application/json"
GEOJSON = "application/geo+json"

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem details (RFC 9457)",
    "type": "object",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string", "format": "uri-reference", "examples": ["urn:geoioc:problem:NotFound"]},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 100, "maximum": 599},
        "detail": {"type": "string", "description": "what is wrong, for a person: the parameter or "
                                                    "field and the reason"},
        "instance": {"type": "string", "description": "the path of the request"},
        "code": {"type": "string", "description": "stable machine-readable name of the problem"},
        "parameter": {"type": "string", "description": "the query or path parameter in error"},
        "errors": {"type": "array", "description": "every field in error, with its reason",
                   "items": {"type": "object", "properties": {
                       "field": {"type": ["string", "null"]}, "reason": {"type": "string"},
                       "row": {"type": "integer"}}, "required": ["field", "reason"]}},
    },
    "additionalProperties": True,
}

OGC_EXCEPTION_SCHEMA: dict[str, Any] = {
    "title": "OGC API exception",
    "type": "object",
    "required": ["code", "description"],
    "properties": {"code": {"type": "string"}, "description": {"type": "string"}},
    "additionalProperties": True,
}

FEATURE_COLLECTION_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["type", "features"],
    "properties": {"type": {"const": "FeatureCollection"},
                   "features": {"type": "array", "items": {"type": "object"}}},
}
BINARY: dict[str, Any] = {"type": "string", "format": "binary"}
HTML: dict[str, Any] = {"type": "string", "description": "an HTML page"}

# What any route taking the caller (api.security.Who) can answer: credentials that do not check
# out, or too many failed sign-ins.
WHO = (401, 429)

REASONS = {
    300: "several things match: the body lists them",
    400: "a parameter or the body is malformed or out of range (named in `parameter` / `errors`)",
    401: "sign-in needed, or credentials that do not check out (with WWW-Authenticate)",
    403: "the caller's roles do not allow this",
    404: "not found, or not readable by the caller",
    409: "conflict with the current state",
    413: "content too large",
    415: "unsupported media type",
    422: "well-formed but unacceptable content: every problem is listed",
    428: "the version edited is required (If-Match)",
    429: "too many failed sign-ins from this client (with Retry-After)",
    500: "unexpected error: the body holds an error id to quote",
    503: "the database is unavailable or the query took too long (with Retry-After)",
}


def problems(*statuses: int, ogc: bool = False, page: bool = False,
             reasons: dict[int, str] | None = None) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries for STATUSES plus 500 and 503 (any route that reads the database can
    answer them). OGC routes answer the OGC exception document; pages also answer an HTML page
    when a browser asks for one. `default` stands for nothing else: it stops FastAPI from
    advertising its own 422 schema, which api/errors.py never sends."""
    media = "application/json" if ogc else PROBLEM_JSON
    schema = OGC_EXCEPTION_SCHEMA if ogc else PROBLEM_SCHEMA
    out: dict[int | str, dict[str, Any]] = {}
    for status in (*statuses, 500, 503):
        content: dict[str, Any] = {media: {"schema": schema}}
        if page:
            content["text/html"] = {"schema": HTML}
        reason = (reasons or {}).get(status) or REASONS.get(status, "error")
        entry: dict[str, Any] = {"description": reason, "content": content}
        if status == 401:
            entry["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"},
                                                     "description": "the challenges to sign in with"},
                                "Cache-Control": {"schema": {"type": "string"}}}
        if status == 403:
            entry["headers"] = {"Cache-Control": {"schema": {"type": "string"}}}
        if status in (429, 503):
            entry["headers"] = {"Retry-After": {"schema": {"type": "integer"},
                                                "description": "seconds to wait"}}
        out[status] = entry
    out["default"] = {"description": "no other status is answered", "content": {media: {"schema": schema}}}
    return out


def ok(description: str, media_type: str = JSON, schema: dict[str, Any] | None = None
       ) -> dict[str, Any]:
    """A success response of MEDIA_TYPE (a free-form object unless SCHEMA says more)."""
    return {"description": description,
            "content": {media_type: {"schema": schema or {"type": "object"}}}}


def body_schema(model: type[BaseModel] | dict[str, Any], *, media_type: str = "application/json",
                required: bool = True, description: str | None = None) -> dict[str, Any]:
    """`openapi_extra` documenting a request body read by `json_body` (or a form read by hand)."""
    schema = model if isinstance(model, dict) else model.model_json_schema()
    body: dict[str, Any] = {"required": required, "content": {media_type: {"schema": schema}}}
    if description:
        body["description"] = description
    return {"requestBody": body}


def json_body(*, max_bytes: int, not_object: str, too_large: type[GeoIOCError] = Invalid,
              empty: Any = None) -> Callable[[Request], Awaitable[dict[str, Any]]]:
    """A dependency giving the request's JSON object: 400 when it is not JSON or not an object
    (NOT_OBJECT is the hint), TOO_LARGE past MAX_BYTES. An empty body is EMPTY when given."""

    async def read(request: Request) -> dict[str, Any]:
        raw = await request.body()
        if len(raw) > max_bytes:
            raise too_large(f"request body larger than {max_bytes} bytes",
                            message=Message("body_too_large", {"max": max_bytes}))
        if empty is not None and not raw.strip():
            return dict(empty)
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise BadRequest(f"body is not JSON: {e}", message=Message("body_not_json")) from None
        if not isinstance(data, dict):
            raise BadRequest(not_object, message=Message("body_not_object"))
        return data

    return read


M = TypeVar("M", bound=BaseModel)


def check_members(data: dict[str, Any], allowed: Iterable[str], error: type[GeoIOCError],
                  hint: str) -> None:
    """Unknown members are named (a typo must not be silently ignored)."""
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise error(f"body: unknown member(s) {', '.join(unknown)} {hint}",
                    problems=[Problem(name, "unknown member", message=Message("unknown_member"))
                              for name in unknown], message=PROBLEMS)


def validate(model: type[M], data: dict[str, Any], error: type[GeoIOCError]) -> M:
    """DATA as MODEL, or ERROR listing every member in error with its reason (worded in the
    user's language by api/messages.py)."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        found: list[Problem] = []
        for err in e.errors(include_url=False, include_input=False):
            loc = [str(p) for p in err.get("loc", ())]
            problem = messages.from_pydantic(loc[0] if loc else None, err)
            if found and found[-1].field == problem.field and problem.field is not None:
                # The branches of a union (text or a list): one problem naming both.
                problem = messages.either(found.pop(), problem)
            found.append(problem)
        raise error(messages.summary(found, "en") or "invalid body", problems=found,
                    message=PROBLEMS if found else None) from None
