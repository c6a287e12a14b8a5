"""Reading Open311 documents (ours and the specification's examples) into comparable values.

XML is read by the Spark convention the spec names for JSON: a list element (services,
service_requests, attributes, values, endpoints, formats, errors) becomes a list of its
children, any other element with children an object, a leaf its text. Values are then made
comparable: text stripped, empty text and null alike, booleans and numbers as text (the JSON
examples write keys and codes as numbers, `001`, that XML holds as text), *_datetime values as
instants (the spec's examples are in -08:00, ours in +07:00).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

SPEC_DIR = Path(__file__).parent / "open311_spec"
LISTS = {"services", "service_requests", "attributes", "values", "endpoints", "formats", "errors",
         "notes"}


def _element(e: ET.Element) -> Any:
    children = list(e)
    if e.tag in LISTS:
        return [_element(c) for c in children]
    if not children:
        return e.text
    return {c.tag: _element(c) for c in children}


def from_xml(text: str | bytes) -> tuple[str, Any]:
    """(root tag, value) of an XML document."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    root = ET.fromstring(text.strip().encode("utf-8"))
    return root.tag, _element(root)


def from_json(text: str | bytes) -> Any:
    """JSON, also the spec's non-strict examples (a number with leading zeros is text)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    return json.loads(re.sub(r':(\s*)(0\d+)(\s*[,}\n])', r':\1"\2"\3', text))


def spec(name: str) -> str:
    """A spec example without its HTTP status line (errors.*.http)."""
    text = (SPEC_DIR / name).read_text(encoding="utf-8")
    if text.startswith("HTTP/"):
        text = text.split("\n\n", 1)[1]
    return text


def norm(value: Any, key: str = "") -> Any:
    if isinstance(value, tuple):  # (root tag, value) of an XML document
        return (value[0], norm(value[1]))
    if isinstance(value, dict):
        return {k: norm(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [norm(v, key) for v in value]
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value).strip()
    if text == "":
        return None
    if key.endswith("_datetime"):
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return text


def shape(value: Any) -> Any:
    """The structure alone: element names and nesting, not values."""
    if isinstance(value, tuple):
        return (value[0], shape(value[1]))
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value[:1]]
    return None
