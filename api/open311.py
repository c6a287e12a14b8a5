"""Open311 GeoReport v2 documents: the same data as JSON or XML, and the spec's error list.

The spec (http://wiki.open311.org/GeoReport_v2, frozen) defines XML and lets JSON follow it by
the "Spark convention": a list element (services, service_requests, attributes, values,
formats, endpoints, errors) is a JSON array of its children, an element holding text is a
string, `true`/`false` are booleans, an empty element is null. One tree (`Node`) is written
both ways here so the two can never disagree. XML: `text/xml; charset=utf-8` with the
declaration; JSON: `application/json; charset=utf-8`. Times carry Vietnam's offset (+07:00),
as the spec requires an offset.

Errors (api/errors.py RENDERERS, for every path under /open311): `<errors><error><code>
<description>` or `[{"code", "description"}]`, one error per problem, in the user's language;
the HTTP status is 404 for what does not exist, 403 for a refused key, 429/503 when the service
cannot take the request now, and 400 for everything else (the spec's rule: a 422 of ours is a
400 there).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from typing import Any
from xml.sax.saxutils import escape

import orjson
from starlette.responses import Response

from gis.fmt import VN_TZ

XML_TYPE = "text/xml; charset=utf-8"
JSON_TYPE = "application/json; charset=utf-8"
SPEC = "http://wiki.open311.org/GeoReport_v2"

# An element: (tag, value). A value is a scalar (text), None (empty), a dict (an element with
# named children, in order) or a ListOf (a list element: repeated children of one tag).
Node = Any


class ListOf:
    """A list element: `tag` repeated for each item (XML), a JSON array of the items."""

    def __init__(self, tag: str, items: Iterable[Any]) -> None:
        self.tag = tag
        self.items = list(items)


def w3(value: dt.datetime | None) -> str | None:
    """A W3C date-time in Vietnam time, with its offset (2026-12-03T08:00:00+07:00)."""
    if value is None:
        return None
    return value.astimezone(VN_TZ).replace(microsecond=0).isoformat()


def _json_value(value: Any) -> Any:
    if isinstance(value, ListOf):
        return [_json_value(v) for v in value.items]
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, dt.datetime):
        return w3(value)
    return value


_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return w3(value) or ""
    if isinstance(value, float):
        return repr(value)
    # Characters XML 1.0 cannot carry (intake refuses them; older rows may hold them).
    return escape(_NOT_XML.sub("", str(value)))


def _xml(tag: str, value: Any, out: list[str]) -> None:
    if value is None or value == "":
        out.append(f"<{tag}/>" if value is None else f"<{tag}></{tag}>")
    elif isinstance(value, ListOf):
        out.append(f"<{tag}>")
        for item in value.items:
            _xml(value.tag, item, out)
        out.append(f"</{tag}>")
    elif isinstance(value, dict):
        out.append(f"<{tag}>")
        for k, v in value.items():
            _xml(k, v, out)
        out.append(f"</{tag}>")
    else:
        out.append(f"<{tag}>{_xml_text(value)}</{tag}>")


def render(fmt: str, root: str, value: Any, status: int = 200,
           headers: dict[str, str] | None = None) -> Response:
    """ROOT holding VALUE, as `fmt` ("xml" or "json")."""
    if fmt == "xml":
        out = ['<?xml version="1.0" encoding="utf-8"?>']
        _xml(root, value, out)
        return Response("".join(out).encode(), status_code=status, media_type=XML_TYPE,
                        headers=headers)
    return Response(orjson.dumps(_json_value(value)), status_code=status, media_type=JSON_TYPE,
                    headers=headers)


def errors(fmt: str, status: int, descriptions: Sequence[str],
           headers: dict[str, str] | None = None) -> Response:
    return render(fmt, "errors", ListOf("error", [{"code": status, "description": d}
                                                  for d in descriptions]), status, headers)


def wire_status(status: int) -> int:
    """Our status as the spec wants it: 404, 403, 405, 429, 5xx kept; every other error 400."""
    return status if status in (403, 404, 405, 429) or status >= 500 else 400


def path_format(path: str) -> str:
    return "xml" if path.endswith(".xml") else "json"


# --- /openapi.json ------------------------------------------------------------------------------

_ERRORS_JSON = {"type": "array", "items": {"type": "object", "required": ["code", "description"],
                "properties": {"code": {"type": "integer"}, "description": {"type": "string"}}}}


def responses(ok_description: str, *statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` of an Open311 route: the document in JSON or XML, and the error list."""
    def entry(description: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {"description": description, "content": {
            "application/json": {"schema": schema}, "text/xml": {"schema": {"type": "string"}}}}
    out: dict[int | str, dict[str, Any]] = {200: entry(ok_description, {})}
    for status in (*statuses, 400, 500, 503):
        out[status] = entry("the spec's error list", _ERRORS_JSON)
    out["default"] = entry("the spec's error list", _ERRORS_JSON)
    return out
