"""A new citizen report: checked whole, stored whole, or refused with every problem at once.

What is checked: the service code (an active category), the location (latitude and longitude,
or an address the gazetteer and the map's search resolve; inside the province), the category's
attribute definitions (required ones present, list values among the keys, numbers numeric),
the lengths of free text and the photo URL. Nothing is written before all of it passed, and the
writes (the incident, its request row, the reporter's identity, the first transition, a duplicate
link, the operator consoles' live events) are one statement (queries.CREATE_REPORT), one round
trip to the database, atomic on its own, and the report's photos follow in the same transaction.
With the reads (the service and where the point lies, together), a report costs the database two
round trips.

Uploaded photos (at most photos.MAX_PHOTOS) are checked and re-encoded before anything is
written (gis/reports/photos.py): a photo that is not an image, or too large, is one more problem
of the report (field `media`, row = its position), and the report is refused whole.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from gis.analysis import search
from gis.reports import photos as photo_files
from gis.reports import queries as q
from gis.reports import workflow
from gis.reports.reference import services
from layers.access import ANONYMOUS, readable_fields
from layers.catalogue import get_layer
from layers.errors import GeoIOCError, Invalid, Message, Problem

MAX_DESCRIPTION = 4000  # GeoReport v2: "may be up to 4,000 characters"
MAX_TEXT = 200
MAX_URL = 2000
# Public layers whose names an address may be (in this order after coordinates and units).
ADDRESS_LAYERS = ("public_facilities", "tourism_places", "roads")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")
_PHONE = re.compile(r"^\+?[0-9][0-9 .()-]{5,19}$")


@dataclass
class NewReport:
    """A report as the client sent it (text as given; checked by create())."""

    service_code: str | None
    lat: str | None = None
    lon: str | None = None
    address: str | None = None
    address_id: str | None = None
    description: str | None = None
    media_url: str | None = None
    # attribute code -> values given (several for a multivaluelist)
    attributes: Mapping[str, Sequence[str]] = field(default_factory=dict)
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    device_id: str | None = None
    account_id: str | None = None
    # Uploaded photos as sent (field `media`), in order.
    photos: Sequence[bytes] = ()


@dataclass(frozen=True)
class Created:
    id: int
    token: str
    duplicate_of: int | None
    service_notice: str | None = None
    photo_ids: tuple[int, ...] = ()
    # The deadline the citizen is told: the report's SLA, or its original's when a duplicate.
    expected_at: dt.datetime | None = None


def _problem(name: str, english: str, key: str, **args: Any) -> Problem:
    return Problem(name, english, message=Message(key, args or None))


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None and text.strip() != "" else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def resolve_address(conn: psycopg.Connection, text: str, province_srid: int) -> tuple[float, float] | None:
    """(lon, lat) of an address: coordinates as typed, else the best name hit among public
    places (facilities, tourism places, roads), else a current administrative unit."""
    c = search.parse_coordinate(text, province_srid)
    if c is not None:
        return c.lon, c.lat
    best: search.Hit | None = None
    for layer_id in ADDRESS_LAYERS:
        layer = get_layer(layer_id)
        for hit in search.layer_features(conn, layer, readable_fields(layer, ANONYMOUS), None,
                                         text, limit=1):
            if best is None or hit.rank < best.rank:
                best = hit
    # A unit's name wins a tie with a place's ("Xã Bồng Hòa" is the commune, not the road named
    # after it); a current unit before one that ended with the 2025 reform.
    units = sorted(search.admin_units(conn, text, limit=3),
                   key=lambda h: (h.rank, not h.properties.get("current")))
    if units and (best is None or units[0].rank <= best.rank):
        best = units[0]
    return best.center if best is not None else None


def _check_attributes(definitions: list[dict[str, Any]], given: Mapping[str, Sequence[str]],
                      problems: list[Problem]) -> dict[str, Any]:
    known = {d["code"]: d for d in definitions}
    values: dict[str, Any] = {}
    for code in sorted(set(given) - set(known)):
        problems.append(_problem(f"attribute[{code}]", "unknown attribute for this service",
                                 "attribute_unknown"))
    for d in definitions:
        name = f"attribute[{d['code']}]"
        raw = [v for v in given.get(d["code"], ()) if v.strip() != ""]
        if not raw:
            if d.get("required") and d.get("variable", True):
                problems.append(_problem(name, "required", "required"))
            continue
        kind = d["datatype"]
        if kind != "multivaluelist" and len(raw) > 1:
            problems.append(_problem(name, "one value expected", "attribute_one_value"))
            continue
        if kind in ("singlevaluelist", "multivaluelist"):
            keys = [str(v["key"]) for v in d.get("values", ())]
            bad = [v for v in raw if v not in keys]
            if bad:
                problems.append(_problem(name, f"{bad[0]!r} is not one of {', '.join(keys)}",
                                         "one_of", expected=", ".join(keys)))
                continue
            values[d["code"]] = raw if kind == "multivaluelist" else raw[0]
        elif kind == "number":
            number = _number(raw[0])
            if number is None:
                problems.append(_problem(name, "expected a number", "number"))
                continue
            values[d["code"]] = number
        elif kind == "datetime":
            try:
                values[d["code"]] = dt.datetime.fromisoformat(raw[0].replace("Z", "+00:00")).isoformat()
            except ValueError:
                problems.append(_problem(name, "expected an ISO 8601 date-time", "datetime"))
        else:
            if len(raw[0]) > MAX_DESCRIPTION:
                problems.append(_problem(name, f"at most {MAX_DESCRIPTION} characters",
                                         "text_too_long", max_length=MAX_DESCRIPTION))
                continue
            values[d["code"]] = raw[0]
    return values


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
TEXT_FIELDS = ("service_code", "description", "first_name", "last_name", "email", "phone",
               "device_id", "account_id", "address", "address_id", "media_url", "lat", "lon")


def _check_text(report: NewReport, problems: list[Problem]) -> None:
    for name in TEXT_FIELDS:
        value = getattr(report, name)
        if value is not None and _CONTROL.search(value):
            field = {"address": "address_string", "lon": "long"}.get(name, name)
            problems.append(_problem(field, "control characters are not accepted",
                                     "text_control"))
    for code, values in report.attributes.items():
        if any(_CONTROL.search(v) for v in values) or _CONTROL.search(code):
            problems.append(_problem(f"attribute[{code}]", "control characters are not accepted",
                                     "text_control"))
    if report.description is not None and len(report.description) > MAX_DESCRIPTION:
        problems.append(_problem("description", f"at most {MAX_DESCRIPTION} characters",
                                 "text_too_long", max_length=MAX_DESCRIPTION))
    for name in ("first_name", "last_name", "device_id", "account_id", "address", "address_id"):
        value = getattr(report, name)
        if value is not None and len(value) > MAX_TEXT:
            problems.append(_problem(name if name != "address" else "address_string",
                                     f"at most {MAX_TEXT} characters", "text_too_long",
                                     max_length=MAX_TEXT))
    if report.email and not _EMAIL.match(report.email):
        problems.append(_problem("email", "not an e-mail address", "email_format"))
    if report.phone and not _PHONE.match(report.phone):
        problems.append(_problem("phone", "not a phone number", "phone_format"))
    if report.media_url and (len(report.media_url) > MAX_URL
                             or not re.match(r"^https?://[^\s]+$", report.media_url)):
        problems.append(_problem("media_url", "expected an http(s) URL", "url_format"))


def _blank(value: str | None) -> str | None:
    return value.strip() or None if value is not None else None


def prepare_photos(uploads: Sequence[bytes], problems: list[Problem]) -> list[photo_files.Photo]:
    """The uploads as they will be stored; each refused one is a problem of field `media` whose
    row is its position (1..3). More than MAX_PHOTOS: one problem, and none is decoded."""
    if len(uploads) > photo_files.MAX_PHOTOS:
        problems.append(_problem("media", f"at most {photo_files.MAX_PHOTOS} photos",
                                 "photo_too_many", max=photo_files.MAX_PHOTOS))
        return []
    out = []
    for position, data in enumerate(uploads, start=1):
        try:
            out.append(photo_files.prepare(data, "media"))
        except GeoIOCError as exc:
            problems.extend(Problem(p.field, p.reason, row=position, message=p.message)
                            for p in exc.problems)
    return out


def _locate(conn: psycopg.Connection, lon: float, lat: float) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(q.LOCATE, {"lon": lon, "lat": lat}).fetchone()


def _read(conn: psycopg.Connection, code: str | None, point: tuple[float, float] | None
          ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The service CODE (reference.services) and, when POINT (lon, lat) is given, where it lies
    (queries.LOCATE; read even for a refused code, to name every problem). The usual report has
    both: one statement reads them (queries.READ_SERVICE_AND_PLACE), so its reads cost one
    round trip as its write does (sending the two queries in pipeline mode cost psycopg about
    0.11 ms of CPU per report, this 0.06 ms)."""
    if point is None:
        return (services(conn, code) if code else []), None
    if code is None:
        return [], _locate(conn, *point)
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(q.READ_SERVICE_AND_PLACE,
                          {"code": code, "lon": point[0], "lat": point[1]}).fetchone()
    assert row is not None  # LOCATE always answers one row
    place = {k: row.pop(k) for k in q.PLACE_COLUMNS}
    return ([row] if row["code"] is not None else []), place


def create(conn: psycopg.Connection, report: NewReport, *, province_srid: int,
           at: dt.datetime | None = None, token: str | None = None) -> Created:
    """Check REPORT and store it (see the module docstring); Invalid lists every problem.
    TOKEN: the tracking token to give (the deterministic sample); default a random one."""
    now = at or dt.datetime.now(dt.UTC)
    problems: list[Problem] = []
    code = _blank(report.service_code)
    lon, lat = _number(report.lon), _number(report.lat)
    typed = (lon, lat) if lon is not None and lat is not None and -90 <= lat <= 90 \
        and -180 <= lon <= 180 else None
    # The usual report (a code and a point): both reads in one round trip.
    found, prefetched = _read(conn, code, typed)
    service = found[0] if found else None
    if code is None:
        problems.append(_problem("service_code", "required", "required"))
    elif service is None:
        problems.append(_problem("service_code", f"unknown service code {code!r}",
                                 "service_unknown", value=code))
    attributes = _check_attributes(service["attributes"], report.attributes, problems) \
        if service else {}
    _check_text(report, problems)
    prepared = prepare_photos(report.photos, problems)

    address = _blank(report.address)
    address_id = _blank(report.address_id)
    located: dict[str, Any] | None = None
    if report.lat not in (None, "") and lat is None:
        problems.append(_problem("lat", "expected a number", "number"))
    if report.lon not in (None, "") and lon is None:
        problems.append(_problem("long", "expected a number", "number"))
    if (lat is None) != (lon is None) and not any(p.field in ("lat", "long") for p in problems):
        missing = "long" if lon is None else "lat"
        problems.append(_problem(missing, "lat and long go together", "lat_long_pair"))
    elif lat is None and lon is None and not any(p.field in ("lat", "long") for p in problems):
        by_id = conn.execute(q.ADDRESS_ID, {"code": address_id}).fetchone() if address_id else None
        if by_id is not None:
            lon, lat = float(by_id[0]), float(by_id[1])
        elif address is None and address_id is not None:
            problems.append(_problem("address_id", "no administrative unit has this code",
                                     "address_unknown"))
        elif address is None:
            problems.append(_problem("lat", "a location is required: lat and long, "
                                            "address_string or address_id", "location_required"))
        else:
            point = resolve_address(conn, address, province_srid)
            if point is None:
                problems.append(_problem("address_string", "no place of that name in the "
                                                           "province", "address_unknown"))
            else:
                lon, lat = point
    if lat is not None and lon is not None:
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            problems.append(_problem("lat", "not a latitude/longitude", "location_outside"))
        else:
            located = prefetched if typed is not None else _locate(conn, lon, lat)
            if not located or not located["inside"] or located["commune_code"] is None:
                problems.append(_problem("lat", "the location is outside the province",
                                         "location_outside"))
    if problems:
        raise Invalid("; ".join(f"{p.field}: {p.reason}" for p in problems),
                      problems=problems, message=Message("problems"))
    assert service is not None and located is not None and lat is not None and lon is not None

    token = token or secrets.token_urlsafe(12)
    title = f"{service['name_vi']} tại {located['commune_name']}"
    identity = {k: _blank(getattr(report, k)) for k in
                ("first_name", "last_name", "email", "phone", "device_id", "account_id")}
    # The statement is atomic on its own: a transaction of ours only when photos follow it, or
    # when the caller's connection would otherwise leave one open (not autocommit).
    alone = not prepared and conn.autocommit \
        and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    with contextlib.nullcontext() if alone else conn.transaction(), \
            conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(q.CREATE_REPORT, {
            "service_code": service["code"], "title": title,
            "description": _blank(report.description), "commune_code": located["commune_code"],
            "at": now, "lon": lon, "lat": lat, "hours": q.DUPLICATE_HOURS,
            "metres": q.DUPLICATE_METRES, "token": token, "address": address,
            "address_id": address_id, "media_url": _blank(report.media_url),
            "attributes": Jsonb(attributes) if attributes else None,
            "identified": any(identity.values()), **identity,
            "citizen": workflow.CITIZEN, "system": workflow.SYSTEM,
            "channel": q.EVENTS_CHANNEL}).fetchone()
        assert row is not None  # the service was read above; its row is there
        incident_id, original = int(row["id"]), row["duplicate_of"]
        photo_ids = []
        for position, photo in enumerate(prepared, start=1):
            stored = conn.execute(q.INSERT_PHOTO, {
                "id": incident_id, "position": position, "jpeg": photo.jpeg,
                "thumbnail": photo.thumbnail, "width": photo.width, "height": photo.height,
                "sha256": photo.sha256, "at": now}).fetchone()
            assert stored is not None
            photo_ids.append(int(stored[0]))
        # What notify.on_transition does after a transition is done for these two: the
        # statement sent the consoles' events, and set no agency (routing is at verification),
        # so no agency is told.
    notice = None if original is None else f"duplicate of {original}"
    service_request = row["category"] != "security_event"  # as requests.find reads them
    return Created(incident_id, token, original, notice, tuple(photo_ids),
                   expected_at=row["expected_at"] if service_request else None)
