"""Shared pieces: the parcels layer's columns as the caller may read them, "as of" parsing,
name folding, VN-2000 coordinates of a point for messages."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

from psycopg import sql

from gis.crs import transformer
from gis.fmt import VN_TZ
from layers.access import Principal, readable_fields
from layers.catalogue import get_layer
from layers.errors import BadRequest, Message
from layers.model import Layer

# Dates typed by land officers are local dates of the province (UTC+7, no DST).
# A parcel's number: its natural key in the catalogue.
KEY_FIELDS = get_layer("parcels").natural_key
COMMUNE_CODE = re.compile(r"^[0-9]{5}$")


def parcels_layer() -> Layer:
    return get_layer("parcels")


def readable(who: Principal, layer_id: str = "parcels") -> tuple[str, ...]:
    """Names of the fields of LAYER_ID that WHO may read (the catalogue decides, not us)."""
    return tuple(f.name for f in readable_fields(get_layer(layer_id), who))


def columns(names: tuple[str, ...], alias: str = "t") -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(alias, n) for n in names)


def parse_as_of(raw: str | None) -> dt.datetime | None:
    """`YYYY-MM-DD` = the end of that day in the province (every change made that day is in),
    or an ISO date-time (without a zone: province time). None/empty = now (current row)."""
    if raw is None or not raw.strip():
        return None
    text = raw.strip()
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            start = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), VN_TZ)
            return start - dt.timedelta(microseconds=1)
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        raise BadRequest.for_field("as_of_format", "as_of",
                                   f"{raw!r} is not a date (YYYY-MM-DD) or an ISO date-time",
                                   value=raw) from None
    return value if value.tzinfo else value.replace(tzinfo=VN_TZ)


# Punctuation that unaccent's rules write in ASCII and that names carry ("Trạm ... – PM2.5",
# typographic quotes): typed or pasted, it must fold as the stored name does.
_PUNCTUATION = str.maketrans({
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-",
    "\u2212": "-", "\u00ad": "-", "\u2018": "'", "\u2019": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201f": '"', "\u2033": '"', "\u2026": "...",
    "\u00ab": "<<", "\u00bb": ">>", "\u2039": "<", "\u203a": ">",
})


def fold(text: str) -> str:
    """Lower case, no diacritics, đ as d, single spaces: the Python side of geoioc_fold()
    (migration 0006), also for decomposed (NFD) input that unaccent would leave alone."""
    text = text.translate(_PUNCTUATION)
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(bare.lower().split())


def like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def location(lon: float, lat: float, srid: int) -> dict[str, float]:
    """A point for messages: lon/lat and VN-2000 X (northing) / Y (easting) in the province's
    TM-3 zone, as land officers read coordinates."""
    e, n = transformer(4326, srid).transform(lon, lat)
    return {"lon": round(lon, 7), "lat": round(lat, 7), "x_northing": round(n, 3),
            "y_easting": round(e, 3), "srid": srid}


def location_entry(loc: dict[str, float]) -> Message:
    """describe_location's words as a catalogue entry (api/messages.py), for the user's language."""
    return Message("location", {"lon": round(loc["lon"], 6), "lat": round(loc["lat"], 6),
                                "srid": str(loc["srid"]), "x": round(loc["x_northing"], 3),
                                "y": round(loc["y_easting"], 3)})


def describe_location(loc: dict[str, float]) -> str:
    return (f"lon {loc['lon']:.7f}, lat {loc['lat']:.7f} (VN-2000 EPSG:{loc['srid']} "
            f"X = {loc['x_northing']:.3f} m, Y = {loc['y_easting']:.3f} m)")


def key_text(commune: str | None, old: str | None, sheet: int, parcel: int) -> str:
    """27001/12/345, or 27001 (old 26998)/12/345 after a merge."""
    where = commune or "?"
    if old and old != commune:
        where += f" (old {old})"
    return f"{where}/{sheet}/{parcel}"
