"""Query parameters of OGC API - Features items (Parts 1, 2 and 3), validated into a FeatureQuery.

Every problem becomes a 400 naming the parameter and the reason, so nothing malformed reaches
PostgreSQL; all the parameters in error are listed in one answer (layers.errors.Collect), each
reason with its catalogue entry (api/messages.py) for the user's language.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

import orjson

from api.ogc.config import DEFAULT_ITEMS, MAX_ITEMS
from layers import query_params
from layers.crs import UnsupportedCRS, parse_crs_uri
from layers.errors import BadRequest, Collect
from layers.features_sql import FeatureQuery
from layers.model import Field, Layer

# Parameters with a meaning of their own; any other parameter must be a queryable property.
RESERVED = {"f", "lang", "limit", "offset", "after", "bbox", "bbox-crs", "datetime", "crs", "sortby",
            "properties", "skipGeometry", "filter", "filter-lang", "filter-crs"}
FORMATS = {"json", "geojson", "html", "jsonld"}
# Feature ids are bigint: a keyset position outside that range is a 400, never a database error.
MAX_ID = 2**63 - 1


def parse_int(name: str, raw: str | None, default: int, lo: int, hi: int | None = None) -> int:
    if raw is None or raw == "":
        return default
    try:
        v = int(raw)
    except ValueError:
        raise BadRequest.for_field("whole_number", name, f"{raw!r} is not an integer") from None
    if v < lo:
        raise BadRequest.for_field("at_least", name, f"{v} is below the minimum {lo}", ge=lo)
    if hi is not None and v > hi:
        raise BadRequest.for_field("at_most", name, f"{v} is above the maximum {hi}", le=hi)
    return v


def parse_bbox(raw: str, crs_raw: str | None) -> tuple[tuple[float, float, float, float], int]:
    """The shared parser (layers.query_params), its error naming `bbox` or `bbox-crs`."""
    try:
        return query_params.parse_bbox(raw, crs_raw)
    except query_params.ParamError as e:
        raise _named(e) from None


def parse_datetime(raw: str) -> tuple[dt.datetime | None, dt.datetime | None]:
    try:
        return query_params.parse_datetime(raw)
    except query_params.ParamError as e:
        raise _named(e) from None


def _named(e: query_params.ParamError) -> BadRequest:
    """The shared parsers' errors name their parameter ("bbox-crs: ...") and catalogue entry."""
    return BadRequest(e.detail, parameter=e.parameter, problems=e.problems, message=e.message)


# A property's type -> the catalogue entry of a value that is not of it.
VALUE_ENTRIES = {"int": "whole_number", "float": "finite_number", "date": "date",
                 "datetime": "datetime", "bool": "boolean"}


def parse_value(f: Field, raw: str) -> object:
    """A property filter value, typed as its field (arrays match on membership)."""
    try:
        if f.type == "int":
            return int(raw)
        if f.type == "float":
            v = float(raw)
            if not math.isfinite(v):
                raise ValueError
            return v
        if f.type == "date":
            return dt.date.fromisoformat(raw)
        if f.type == "datetime":
            return query_params.parse_instant(raw)
        if f.type == "bool":
            if raw.lower() not in ("true", "false"):
                raise ValueError
            return raw.lower() == "true"
    except ValueError:  # ParamError included
        key = VALUE_ENTRIES.get(f.type, "invalid")
        raise BadRequest.for_field(key, f.name, f"{raw!r} is not a valid {f.type}") from None
    return raw


def wants_html(params: Mapping[str, str], accept: str) -> bool:
    f = params.get("f")
    if f is not None:
        if f not in FORMATS:
            raise BadRequest.for_field("one_of", "f", f"unsupported format {f!r}; use json or html",
                                       expected="'json' or 'html'")
        return f == "html"
    return "text/html" in accept and "json" not in accept.split(",")[0]


def output_crs(params: Mapping[str, str]) -> tuple[int, bool, str | None]:
    raw = params.get("crs")
    if not raw:
        return 4326, False, None
    try:
        srid, swap = parse_crs_uri(raw)
    except UnsupportedCRS as e:
        raise BadRequest.about("crs", e) from None
    return srid, swap, raw


def items_query(layer: Layer, fields: tuple[Field, ...], params: Mapping[str, str]) -> FeatureQuery:
    """Everything but the CQL2 filter (composed by the caller, which knows the visible fields).
    Every parameter is checked; those in error are listed together."""
    visible = {f.name: f for f in fields}
    q = FeatureQuery(layer=layer, fields=fields)
    check = Collect()
    q.limit = check(parse_int, "limit", params.get("limit"), DEFAULT_ITEMS, 1, MAX_ITEMS) or DEFAULT_ITEMS
    q.offset = check(parse_int, "offset", params.get("offset"), 0, 0) or 0
    if params.get("bbox"):
        box = check(parse_bbox, params["bbox"], params.get("bbox-crs"))
        if box is not None:
            q.bbox, q.bbox_srid = box
    elif params.get("bbox-crs"):
        check(_bad, "bbox_crs_alone", "bbox-crs", "given without bbox")
    if params.get("datetime"):
        if not layer.time_column:
            check(_bad, "no_time", "datetime", f"collection {layer.id!r} has no time dimension",
                  layer=layer.id)
        else:
            q.time_range = check(parse_datetime, params["datetime"])
    crs = check(output_crs, params)
    if crs is not None:
        q.out_srid, q.swap_axes, _ = crs
    if params.get("skipGeometry"):
        if params["skipGeometry"] not in ("true", "false"):
            check(_bad, "boolean", "skipGeometry", "expected true or false")
        q.skip_geometry = params["skipGeometry"] == "true"
    if params.get("properties") is not None:
        names = [n for n in params["properties"].split(",") if n]
        unknown = [n for n in names if n not in visible]
        if unknown:
            check(_bad, "unknown_properties", "properties",
                  f"unknown {', '.join(map(repr, unknown))}; available: {', '.join(visible)}",
                  names=", ".join(map(repr, unknown)), available=", ".join(visible))
        else:
            q.fields = tuple(visible[n] for n in names)
    if params.get("sortby"):
        order = []
        for key in params["sortby"].split(","):
            key = key.strip()
            asc = not key.startswith("-")
            name = key.lstrip("+-")
            if name not in visible and name != layer.id_column:
                check(_bad, "unknown_properties", "sortby", f"unknown property {name!r}",
                      names=repr(name), available=", ".join(visible))
            order.append((name, asc))
        q.sortby = order
    if params.get("after") is not None:
        q.after = check(parse_int, "after", params["after"], 0, 0, MAX_ID)
        if not q.keyset:
            check(_bad, "after_sortby", "after", "pages by id, so it cannot be combined with "
                  "sortby; use offset to page a sorted result")
    for name, raw in params.items():
        if name in RESERVED:
            continue
        if name not in visible:
            check(_bad, "unknown_parameter", name,
                  f"unknown parameter; queryable properties: {', '.join(visible)}",
                  names=", ".join(visible))
        else:
            q.equals[name] = check(parse_value, visible[name], raw)
    check.done()
    return q


def _bad(key: str, name: str, reason: str, **args: Any) -> None:
    """Parameter NAME in error (REASON, catalogue entry KEY): for Collect, which lists it."""
    raise BadRequest.for_field(key, name, reason, **args)


def filter_value(params: Mapping[str, str]) -> tuple[str | dict[str, Any], str] | None:
    raw = params.get("filter")
    lang = params.get("filter-lang") or "cql2-text"
    if lang not in ("cql2-text", "cql2-json"):
        raise BadRequest.for_field("cql2_language", "filter-lang",
                                   f"unsupported {lang!r}; use cql2-text or cql2-json",
                                   value=repr(lang))
    if raw is None or raw == "":
        return None
    if lang == "cql2-json":
        try:
            return orjson.loads(raw), lang
        except orjson.JSONDecodeError as e:
            raise BadRequest.for_field("json", "filter", f"not valid JSON ({e})") from None
    return raw, lang
