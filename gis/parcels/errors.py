"""Problems a parcel request can run into, each with the HTTP status it maps to.

They carry a description meant for a person (naming the key searched, the reason and place of
a geometry error) and optional structured details for programs; api/routes/parcels.py turns
them into `{"code", "description", ...}` JSON bodies, the same shape as the OGC API's errors.
"""

from __future__ import annotations

from typing import Any


class ParcelError(Exception):
    status = 400
    code = "InvalidParameterValue"

    def __init__(self, description: str, **details: Any) -> None:
        super().__init__(description)
        self.description = description
        self.details = details

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "description": self.description, **self.details}


class BadParameter(ParcelError):
    status = 400
    code = "InvalidParameterValue"


class NotFound(ParcelError):
    status = 404
    code = "NotFound"


class Ambiguous(ParcelError):
    """A post-2025 commune code + sheet + parcel matches parcels of several merged communes."""

    status = 300
    code = "MultipleChoices"


class InvalidInput(ParcelError):
    """Well-formed request whose content cannot be accepted (geometry, attribute values)."""

    status = 422
    code = "InvalidValue"


class InvalidGeometry(InvalidInput):
    code = "InvalidGeometry"


class PreconditionRequired(ParcelError):
    status = 428
    code = "PreconditionRequired"


class VersionConflict(ParcelError):
    status = 409
    code = "VersionConflict"


class Forbidden(ParcelError):
    status = 403
    code = "Forbidden"
