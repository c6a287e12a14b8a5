"""OpenAPI `responses=` entries for /api routes: each status code with its media type and schema,
so /openapi.json says what a client gets back (a route still raises layers.errors; api/errors.py
renders the problem document described here).

    @router.get("/x", responses={200: ok("The thing", GEOJSON), **problems(400, 404)})
"""

from __future__ import annotations

from typing import Any

from api.errors import PROBLEM_JSON

JSON = "application/json"
GEOJSON = "application/geo+json"

# RFC 9457 problem details as api/errors.py writes them.
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
        "detail": {"type": "string"}, "instance": {"type": "string"}, "code": {"type": "string"},
        "parameter": {"type": "string", "description": "the query parameter at fault (400)"},
        "errors": {"type": "array", "items": {"type": "object", "properties": {
            "field": {"type": "string"}, "reason": {"type": "string"}, "row": {"type": "integer"}}}},
    },
}
FEATURE_COLLECTION_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["type", "features"],
    "properties": {"type": {"const": "FeatureCollection"},
                   "features": {"type": "array", "items": {"type": "object"}}},
}
MEANINGS = {
    400: "A parameter is malformed or out of range (`parameter` names it)",
    401: "Credentials that do not check out",
    403: "Signed in, but this role may not do it",
    404: "Not found, or not readable by the caller (the same answer for both)",
    409: "Conflicts with the current state",
    413: "Too large",
    422: "A body whose content cannot be accepted (`errors` lists every problem)",
    503: "The database is busy or unavailable; retry after `Retry-After` seconds",
}


def ok(description: str, media_type: str = JSON, schema: dict[str, Any] | None = None
       ) -> dict[str, Any]:
    """A success response of MEDIA_TYPE (a free-form object unless SCHEMA says more)."""
    return {"description": description,
            "content": {media_type: {"schema": schema or {"type": "object"}}}}


def problems(*statuses: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """Error responses as problem+json; `descriptions` override the generic meaning, keyed
    `s404="..."`."""
    return {s: {"description": descriptions.get(f"s{s}", MEANINGS.get(s, "Error")),
                "content": {PROBLEM_JSON: {"schema": PROBLEM_SCHEMA}}} for s in statuses}
