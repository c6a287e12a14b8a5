"""The one exception hierarchy of GeoIOC: every error raised on purpose is one of these.

It sits at the bottom of the package order so that the SQL builders (layers), the domain (gis)
and the HTTP layer (api) raise the same types. It knows nothing of HTTP: api/errors.py maps each
class to a status code and renders it in the format of the way out (RFC 9457 problem details under
/api, the OGC exception document under /ogc, an HTML page for pages, Open311's error list next).
A new kind of problem is a subclass here plus one line in that map.

Every message is meant for the person who sent the request: it names the parameter or field and
the reason, never a server path, SQL text or a Python value's repr. A message that people meet
on the pages (validation of what they typed) also names its entry in the message catalogue
(`Message`, api/messages.py), which words it in the user's language; the English text is kept
for everything else (logs, older clients).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Message:
    """An entry of the message catalogue (api/messages.py: Vietnamese and English) with its
    arguments. The key PROBLEMS stands for "every problem of the error, each with its reason"."""

    key: str
    args: Mapping[str, Any] | None = None


PROBLEMS = Message("problems")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input: which parameter, field or column (and row, for files and
    lists), and why. A 422 lists all of them at once so the user fixes everything in one go.
    `reason` is English; `message`, when given, words it in the user's language."""

    field: str | None
    reason: str
    row: int | None = None
    message: Message | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"field": self.field, "reason": self.reason}
        if self.row is not None:
            out["row"] = self.row
        return out


class GeoIOCError(Exception):
    """Base class. `code` is a stable machine-readable name (kept from the OGC exception codes
    the API answered with before, so clients keep working); `details` are extra members of the
    error body (e.g. the parcels that matched an ambiguous number)."""

    code: ClassVar[str] = "Error"
    title: ClassVar[str] = "Error"
    # The catalogue's wording of an error of this class raised without an entry of its own
    # (what kind of input was refused), so that no such error reaches a Vietnamese reader in
    # English; its English detail stays what was raised.
    fallback: ClassVar[Message | None] = None

    def __init__(self, detail: str, *, parameter: str | None = None,
                 problems: Iterable[Problem] = (), headers: dict[str, str] | None = None,
                 message: Message | None = None, **details: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.parameter = parameter
        self.problems = tuple(problems)
        self.headers = dict(headers or {})
        # `detail` in the user's language (PROBLEMS: the problems listed), when known.
        self.message = message
        self.details = details

    @classmethod
    def for_field(cls, key: str, name: str, reason: str, **args: Any) -> Self:
        """One parameter or field in error, with the catalogue entry KEY (api/messages.py) that
        words REASON in the user's language (ARGS fill its placeholders)."""
        return cls(f"{name}: {reason}", parameter=name, message=PROBLEMS,
                   problems=[Problem(name, reason, message=Message(key, args or None))])

    @classmethod
    def about(cls, name: str, error: GeoIOCError) -> Self:
        """ERROR (raised by a lower layer: a filter, a CRS, a format) as a problem of the
        parameter NAME, keeping its catalogue entry (or its class's fallback)."""
        message = error.message if error.message not in (None, PROBLEMS) else error.fallback
        if error.message == PROBLEMS and error.problems:
            problems = [Problem(name, f"{p.field}: {p.reason}" if p.field else p.reason,
                                message=p.message) for p in error.problems]
        else:
            problems = [Problem(name, error.detail, message=message)]
        return cls(f"{name}: {error.detail}", parameter=name, message=PROBLEMS, problems=problems)

    @property
    def description(self) -> str:
        """The OGC exception document's name for `detail`."""
        return self.detail


class BadRequest(GeoIOCError):
    """A parameter is malformed or out of range (the request itself is wrong)."""

    code = "InvalidParameterValue"
    title = "Bad request"


class Invalid(GeoIOCError):
    """A well-formed request whose content cannot be accepted (field values, geometry, a file's
    rows): `problems` lists every one."""

    code = "InvalidValue"
    title = "Unprocessable content"


class Unauthorized(GeoIOCError):
    """Sign-in needed, or credentials that do not check out."""

    code = "Unauthorized"
    title = "Unauthorized"
    fallback = Message("auth_rejected")

    def __init__(self, detail: str, *, challenges: tuple[str, ...] = (), **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.challenges = challenges


class Forbidden(GeoIOCError):
    code = "Forbidden"
    title = "Forbidden"
    fallback = Message("forbidden")


class NotFound(GeoIOCError):
    """Also what a caller gets for a thing they may not read: it does not exist for them."""

    code = "NotFound"
    title = "Not found"


class LayerNotFound(NotFound, LookupError):
    """Unknown layer, or one the caller may not read: the two must look the same."""


class MethodNotAllowed(GeoIOCError):
    code = "MethodNotAllowed"
    title = "Method not allowed"


class NotAcceptable(GeoIOCError):
    code = "NotAcceptable"
    title = "Not acceptable"


class Ambiguous(GeoIOCError):
    """Several things match what was asked for (the body lists them)."""

    code = "MultipleChoices"
    title = "Multiple choices"


class Conflict(GeoIOCError):
    code = "Conflict"
    title = "Conflict"


class PreconditionRequired(GeoIOCError):
    """A write that must say which version it changes (If-Match) did not."""

    code = "PreconditionRequired"
    title = "Precondition required"


class TooLarge(GeoIOCError):
    code = "TooLarge"
    title = "Content too large"


class UnsupportedMediaType(GeoIOCError):
    code = "UnsupportedMediaType"
    title = "Unsupported media type"


class _RetryLater(GeoIOCError):
    def __init__(self, detail: str, *, retry_after: float = 1, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.retry_after = max(1, math.ceil(retry_after))
        self.headers.setdefault("Retry-After", str(self.retry_after))


class TooManyRequests(_RetryLater):
    code = "TooManyRequests"
    title = "Too many requests"
    fallback = Message("too_many_requests")


class Unavailable(_RetryLater):
    """The database (or another service we need) is down or overloaded: try again later."""

    code = "Unavailable"
    title = "Service unavailable"
    fallback = Message("unavailable")


class Collect:
    """The checks of several fields run one after the other, and ONE error listing every
    problem at the end (`done`), so that a person sees all that is wrong at once instead of
    fixing one field per round trip. A check that fails for another reason than a field in
    error (sign-in, access) is raised at once."""

    def __init__(self) -> None:
        self.errors: list[GeoIOCError] = []

    def __call__(self, check: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        """CHECK(*ARGS, **KWARGS), or None when it found a field in error (remembered)."""
        try:
            return check(*args, **kwargs)
        except GeoIOCError as e:
            if not e.problems or isinstance(e, Unauthorized | Forbidden):
                raise
            self.errors.append(e)
            return None

    def done(self) -> None:
        """Raise the errors collected as one: its class is the first one's that is not a
        NotFound (a malformed field outweighs a name that matched nothing)."""
        if not self.errors:
            return
        if len(self.errors) == 1:
            raise self.errors[0]
        first = next((e for e in self.errors if not isinstance(e, NotFound)), self.errors[0])
        problems = [p for e in self.errors for p in e.problems]
        # The nearest class that takes the plain arguments (a subclass may want others).
        cls = next(c for c in type(first).__mro__ if "__init__" not in vars(c) or c is GeoIOCError)
        detail = "; ".join(f"{p.field}: {p.reason}" if p.field else p.reason for p in problems)
        raise cls(detail, parameter=first.parameter, problems=problems, message=PROBLEMS)
