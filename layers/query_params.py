"""The bbox and datetime parameters, parsed once for every way out that takes them (OGC items,
map endpoints, exports).

Framework-free: a malformed value raises ParamError, whose message names the parameter and the
reason; each caller turns it into its own error (a 400 for the API, ExportError for exports and
the CLI). Values may come as query-string text or, from a JSON body, as a list of numbers.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Any

from layers.crs import UnsupportedCRS, parse_crs_uri, projected_bounds
from layers.errors import PROBLEMS, BadRequest, Message, Problem

# CRS in which a bbox is longitude/latitude (checked against their ranges).
GEOGRAPHIC_SRIDS = (4326, 4756)


class ParamError(BadRequest, ValueError):
    """A malformed bbox or datetime. `field` is the parameter it names (the message starts
    with it); the catalogue entry words the reason."""

    fallback = Message("param_invalid")

    def __init__(self, detail: str, key: str | None = None, **args: Any) -> None:
        field, _, reason = detail.partition(": ")
        message = Message(key, args or None) if key else self.fallback
        super().__init__(detail, parameter=field, message=PROBLEMS,
                         problems=[Problem(field, reason, message=message)])


def parse_bbox(raw: str | Sequence[float], crs_raw: str | None = None
               ) -> tuple[tuple[float, float, float, float], int]:
    """((minx, miny, maxx, maxy) in x/y order, srid) from 4 or 6 numbers (a 3D box is cut to
    2D) in bbox-crs (default CRS84); a latitude-first CRS URI swaps the axes back."""
    try:
        values = [float(v) for v in (raw.split(",") if isinstance(raw, str) else raw)]
    except (TypeError, ValueError):
        raise ParamError(f"bbox: {raw!r} is not a list of numbers", "bbox_numbers") from None
    if len(values) not in (4, 6) or not all(math.isfinite(v) for v in values):
        raise ParamError(f"bbox: expected 4 or 6 finite numbers (minx,miny,maxx,maxy), got {raw!r}",
                         "bbox_numbers")
    if len(values) == 6:
        values = [values[0], values[1], values[3], values[4]]
    srid, swap = 4326, False
    if crs_raw:
        try:
            srid, swap = parse_crs_uri(crs_raw)
        except UnsupportedCRS as e:
            raise ParamError(f"bbox-crs: {e}", "crs_unsupported_any") from None
    if swap:  # latitude-first CRS: minLat, minLon, maxLat, maxLon
        values = [values[1], values[0], values[3], values[2]]
    x1, y1, x2, y2 = values
    if y1 > y2 or x1 > x2:
        raise ParamError(f"bbox: lower corner must come before the upper corner in {raw!r}",
                         "bbox_order")
    if srid in GEOGRAPHIC_SRIDS and (abs(y1) > 90 or abs(y2) > 90 or abs(x1) > 180 or abs(x2) > 180):
        raise ParamError(f"bbox: coordinates out of range for longitude/latitude in {raw!r}",
                         "bbox_range")
    bounds = projected_bounds(srid)
    if bounds is not None:
        # A projected box is cut to where its CRS is defined (nothing is lost: the data lie
        # inside); one wholly outside is refused.
        bx1, by1, bx2, by2 = bounds
        if x2 < bx1 or x1 > bx2 or y2 < by1 or y1 > by2:
            raise ParamError(f"bbox: outside the area where EPSG:{srid} is defined "
                             f"({bx1:.0f},{by1:.0f},{bx2:.0f},{by2:.0f})", "bbox_outside", srid=srid)
        x1, y1, x2, y2 = max(x1, bx1), max(y1, by1), min(x2, bx2), min(y2, by2)
    return (x1, y1, x2, y2), srid


def parse_instant(raw: str, end: bool = False) -> dt.datetime:
    """An RFC 3339 date-time (UTC when it has no offset) or a date: its first microsecond, or
    its last when END."""
    if not isinstance(raw, str):
        raise ParamError(f"datetime: {raw!r} is not an RFC 3339 date or date-time", "datetime")
    try:
        if len(raw) == 10:
            t = dt.datetime.combine(dt.date.fromisoformat(raw), dt.time(), dt.UTC)
            return t + dt.timedelta(days=1, microseconds=-1) if end else t
        t = dt.datetime.fromisoformat(raw.replace("z", "Z"))
    except ValueError:
        raise ParamError(f"datetime: {raw!r} is not an RFC 3339 date or date-time",
                         "datetime") from None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def parse_datetime(raw: str) -> tuple[dt.datetime | None, dt.datetime | None]:
    """(start, end) of an instant, a date (the whole day) or an interval with open ends."""
    if not isinstance(raw, str):
        raise ParamError(f"datetime: {raw!r} is not an RFC 3339 date, date-time or interval",
                         "datetime")
    raw = raw.strip()
    if "/" in raw:
        a, _, b = raw.partition("/")
        start = None if a in ("", "..") else parse_instant(a, end=False)
        stop = None if b in ("", "..") else parse_instant(b, end=True)
        if start is None and stop is None:
            raise ParamError("datetime: an interval needs at least one end", "interval_open")
        if start and stop and start > stop:
            raise ParamError(f"datetime: interval {raw!r} ends before it starts", "interval_order")
        return start, stop
    return parse_instant(raw, end=False), parse_instant(raw, end=True)
