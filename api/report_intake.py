"""What the two ways a citizen reports (Open311 `POST /open311/v2/requests` and the report page's
`POST /api/reports`) share: the form as sent (fields and uploaded photos) and the flood limit.

The form is form-encoded or multipart/form-data (GeoReport v2 lets a server take the photo as
an upload: field `media`, repeated for several photos); an upload is read at most
photos.MAX_BYTES + 1 bytes, so a huge one is refused as too large without being held whole.

The flood limit is a token bucket per client address (api.middleware.TokenBuckets, the one the
anonymous rate limit uses): settings.report_flood_limit reports at once, refilled at that many
per report_flood_window_seconds. It is checked before the form is read and before anything is
stored; a client past it gets 429 with Retry-After (Open311's error list on /open311).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote_plus

from fastapi import Request
from starlette.datastructures import UploadFile

from api.middleware import SharedTokenBuckets, TokenBuckets, client_address
from gis import limits
from gis.reports import intake, photos
from gis.settings import Settings
from layers.errors import Message, TooLarge, TooManyRequests

MAX_FORM_FIELDS = 200
# Starlette's limit of one form field's name and value together (max_part_size).
MAX_FIELD_BYTES = 1024 * 1024
# Uploads beyond this are not even parsed (more than MAX_PHOTOS is refused by name below it).
MAX_FORM_FILES = 10
MEDIA = "media"
# A whole report: its photos and some room for the text fields. A bigger body is refused from its
# Content-Length before it is read (413), so it is never spooled to disk.
MAX_BODY = (MAX_FORM_FILES * photos.MAX_BYTES) // 2 + 1024 * 1024


@dataclass
class ReportForm:
    fields: list[tuple[str, str]] = field(default_factory=list)
    media: list[bytes] = field(default_factory=list)

    def first(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, value in self.fields:
            out.setdefault(name, value)
        return out

    def attributes(self) -> dict[str, list[str]]:
        """attribute[CODE]=value (or attribute[CODE][]=), repeated for a multivaluelist."""
        out: dict[str, list[str]] = {}
        for name, value in self.fields:
            if name.startswith("attribute[") and "]" in name:
                code = name[len("attribute["):name.index("]")]
                out.setdefault(code, []).append(value)
        return out

    def new_report(self) -> intake.NewReport:
        """The report as Open311 names its fields."""
        first = self.first()
        return intake.NewReport(
            service_code=first.get("service_code"), lat=first.get("lat"), lon=first.get("long"),
            address=first.get("address_string"), address_id=first.get("address_id"),
            description=first.get("description"), media_url=first.get("media_url"),
            attributes=self.attributes(), first_name=first.get("first_name"),
            last_name=first.get("last_name"), email=first.get("email"), phone=first.get("phone"),
            device_id=first.get("device_id"), account_id=first.get("account_id"),
            photos=self.media)


async def report_form(request: Request) -> ReportForm:
    """The form's fields in order (repeated names kept) and its `media` uploads, once the client
    is found within its flood limit (flood_guard: before the body is read). A body that is not a
    form is an empty one (then: the missing fields are named). One dependency for both: FastAPI
    solves each dependency of a route on every request (about 76,000 instructions each)."""
    flood_guard(request)
    ctype = request.headers.get("content-type", "")
    if not ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        return ReportForm()
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY:
        raise TooLarge.for_field("photo_too_large", MEDIA, f"the report is larger than "
                                 f"{MAX_BODY >> 20} MB", max_mb=photos.MAX_BYTES >> 20)
    if ctype.startswith("application/x-www-form-urlencoded"):
        return ReportForm(urlencoded_fields(await request.body()))
    try:
        form = await request.form(max_files=MAX_FORM_FILES, max_fields=MAX_FORM_FIELDS)
    except Exception:  # a malformed body: the same as none  # noqa: BLE001
        return ReportForm()
    out = ReportForm()
    try:
        for name, value in form.multi_items():
            if isinstance(value, str):
                out.fields.append((name, value))
            elif isinstance(value, UploadFile) and name == MEDIA:
                data = await value.read(photos.MAX_BYTES + 1)
                if data or value.filename:  # an empty file input sends an empty part: no photo
                    out.media.append(data)
    finally:
        await form.close()  # the spooled uploads go now, not when collected
    return out


def urlencoded_fields(body: bytes) -> list[tuple[str, str]]:
    """An application/x-www-form-urlencoded body's fields in order, exactly as Starlette's form
    parser reads them (latin-1 bytes, then `+` and %-escapes as UTF-8; empty parts skipped; a
    part without `=` a field with an empty value), in a fifth of its time: a string split instead
    of python-multipart's callbacks per field. Past MAX_FORM_FIELDS fields, or a field past
    MAX_FIELD_BYTES, it is refused as Starlette refuses it: here, as a malformed body, none."""
    out: list[tuple[str, str]] = []
    for part in body.decode("latin-1").split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        if len(out) == MAX_FORM_FIELDS or len(name) + len(value) > MAX_FIELD_BYTES:
            return []
        out.append((unquote_plus(name), unquote_plus(value)))
    return out


def flood_buckets(settings: Settings, namespace: str | None = None
                  ) -> TokenBuckets | SharedTokenBuckets | None:
    """The flood limit's buckets: shared by every server process under NAMESPACE (gis.limits),
    in this process's memory without one."""
    if settings.report_flood_limit <= 0:
        return None
    if namespace is None:
        return TokenBuckets.per_window(settings.report_flood_limit,
                                       settings.report_flood_window_seconds)
    return SharedTokenBuckets.per_window(settings.report_flood_limit,
                                         settings.report_flood_window_seconds,
                                         store=limits.store(settings.database_url),
                                         namespace=f"{namespace}:reports")


def flood_guard(request: Request) -> None:
    """Refuse a report past the client's flood limit (called by report_form, on the event loop:
    TokenBuckets needs no lock there). The app's buckets live on app.state, so a test's app has
    its own counters."""
    buckets: TokenBuckets | SharedTokenBuckets | None = getattr(request.app.state,
                                                                "report_buckets", None)
    if buckets is None:
        return
    wait = buckets.take("report:" + client_address(request.scope))
    if wait > 0:
        seconds = max(1, round(wait))
        raise TooManyRequests(f"too many reports from this address; try again in {seconds} "
                              "seconds", retry_after=wait,
                              message=Message("report_flood", {"seconds": seconds}))


def photo_path(photo_id: int, thumb: bool = False) -> str:
    return f"/api/reports/photos/{photo_id}" + ("/thumb" if thumb else "")


def media_urls(base_url: str, photo_ids: Sequence[int]) -> list[str]:
    return [base_url.rstrip("/") + photo_path(i) for i in photo_ids]
