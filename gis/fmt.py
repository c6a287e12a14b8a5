"""Numbers, dates and times as a person reads them, server side (the parcel pages, the extract,
the map manifest); web/static/common/format.js is the same rules in the browser.

- Numbers: Vietnamese separators on Vietnamese pages (1.234,5), English ones on English pages
  (1,234.5), with the number of decimals given (areas with the stored precision: a legal area of
  24.1 m² is "24,1", never "24,10" or "24.100000000000001").
- Times: Vietnam time (Asia/Ho_Chi_Minh) whatever the server's zone, dd/mm/yyyy HH:mm in both
  languages; dates dd/mm/yyyy. Stored values are UTC timestamptz; a naive value is taken as UTC.
"""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from zoneinfo import ZoneInfo

# The one definition of Vietnam time in Python (SQL text names the zone itself).
VN_TZ_NAME = "Asia/Ho_Chi_Minh"
VN_TZ = ZoneInfo(VN_TZ_NAME)
EMPTY = "–"

Number = int | float | Decimal


def number(value: Number | None, lang: str, decimals: int = 0, *, sign: bool = False,
           group: bool = True) -> str:
    """VALUE with DECIMALS decimals in LANG's separators. GROUP=False leaves out the thousands
    separator (coordinates, which surveyors read digit by digit); SIGN writes '+' before a
    positive value (differences)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return EMPTY
    spec = f"{'+' if sign else ''}{',' if group else ''}.{decimals}f"
    text = format(value, spec)
    if text.lstrip("+-").strip("0.,") == "":  # no "-0,0"
        text = text.lstrip("-")
    if lang == "vi":
        text = text.replace(",", "\0").replace(".", ",").replace("\0", ".")
    return text


def _moment(value: dt.datetime | dt.date | str) -> dt.datetime | dt.date:
    if isinstance(value, str):
        text = value.strip()
        if len(text) == 10:
            return dt.date.fromisoformat(text)
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value


def _vn(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(VN_TZ)


def date(value: dt.datetime | dt.date | str | None) -> str:
    """dd/mm/yyyy; a date-time is first put in Vietnam time (its Vietnamese calendar day)."""
    if value is None or value == "":
        return EMPTY
    v = _moment(value)
    if isinstance(v, dt.datetime):
        v = _vn(v).date()
    return v.strftime("%d/%m/%Y")


def datetime(value: dt.datetime | dt.date | str | None) -> str:
    """dd/mm/yyyy HH:mm in Vietnam time (a plain date: dd/mm/yyyy)."""
    if value is None or value == "":
        return EMPTY
    v = _moment(value)
    if not isinstance(v, dt.datetime):
        return v.strftime("%d/%m/%Y")
    return _vn(v).strftime("%d/%m/%Y %H:%M")
