"""OpenAPI `responses=` entries for the error answers of /api routes, so /openapi.json says for
every status code a route can answer with which media type and schema it comes.

The bodies themselves are built in one place, api/errors.py (RFC 9457 problem details under
/api); this module only describes them. Usage:

    @router.get("/x", responses=problems(400, 404, 503))
    @router.get("/y", responses={**ok("text/csv", {"type": "string"}), **problems(401)})
"""

from __future__ import annotations

from typing import Any

PROBLEM_JSON = "application/problem+json"

# The body of every /api error (api/errors.problem_json), as a JSON schema inlined in each
# response so that it needs no registered component.
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details; `code`, `parameter` and `errors` are extensions.",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string", "description": "urn:geoioc:problem:<code>"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string", "description": "what is wrong, for the person who asked"},
        "instance": {"type": "string", "description": "the path that was asked for"},
        "code": {"type": "string", "description": "stable machine-readable name"},
        "parameter": {"type": "string", "description": "the query or path parameter in error"},
        "errors": {
            "type": "array",
            "description": "every field in error with its reason",
            "items": {"type": "object", "properties": {
                "field": {"type": ["string", "null"]},
                "reason": {"type": "string"},
                "row": {"type": "integer"}}},
        },
        "error_id": {"type": "string", "description": "500 only: quote it to an administrator"},
    },
    "additionalProperties": True,
}

_MEANING = {
    300: "Several things match; the body lists them",
    400: "A parameter is malformed or out of range (`parameter` names it)",
    401: "Sign-in needed, or credentials that do not check out (see WWW-Authenticate)",
    403: "Signed in, but without a role this needs",
    404: "Not found, or not readable by the caller (the two look the same)",
    409: "Conflict with the current state",
    413: "Content too large",
    415: "Unsupported media type",
    422: "The content cannot be accepted; `errors` lists every field in error",
    428: "If-Match required",
    429: "Too many requests; see Retry-After",
    500: "Unexpected error; `error_id` is in the server log with its stack",
    503: "The database is unavailable or busy; see Retry-After",
}

_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before trying again",
                                "schema": {"type": "integer", "minimum": 1}}}
_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": "Bearer and, for password clients, Basic challenges",
                               "schema": {"type": "string"}},
          "Cache-Control": {"schema": {"type": "string", "enum": ["no-store"]}}},
    403: {"Cache-Control": {"schema": {"type": "string", "enum": ["no-store"]}}},
    429: _RETRY_AFTER,
    503: _RETRY_AFTER,
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Error responses as problem+json, with the headers each status carries. 500 is always
    added: any route can fail unexpectedly."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in (*statuses, 500):
        entry: dict[str, Any] = {
            "description": _MEANING.get(status, "Error"),
            "content": {PROBLEM_JSON: {"schema": PROBLEM_SCHEMA}},
        }
        if status in _HEADERS:
            entry["headers"] = _HEADERS[status]
        out[status] = entry
    return out


def ok(media_type: str, schema: dict[str, Any], description: str = "Successful response",
       status: int = 200) -> dict[int | str, dict[str, Any]]:
    """A success response with a media type and schema FastAPI cannot infer (a Response built
    from bytes)."""
    return {status: {"description": description, "content": {media_type: {"schema": schema}}}}
