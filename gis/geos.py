"""GEOS's reasons for an invalid geometry (PostGIS ST_IsValidDetail/ST_IsValidReason, shapely's
is_valid_reason) as catalogue entries (api/messages.py), so that a person reads them in their
language: the parcel editor and the importer meet the same reasons."""

from __future__ import annotations

from layers.errors import Message

# GEOS's text (before any "[x y]" location) -> its catalogue entry.
GEOS_REASONS = {
    "Self-intersection": "geos_self_intersection",
    "Ring Self-intersection": "geos_ring_self_intersection",
    "Too few points in geometry component": "geos_too_few_points",
    "Hole lies outside shell": "geos_hole_outside",
    "Nested holes": "geos_nested_holes",
    "Interior is disconnected": "geos_disconnected",
    "Nested shells": "geos_nested_shells",
    "Duplicate Rings": "geos_duplicate_rings",
    "Invalid Coordinate": "geos_invalid_coordinate",
    "Ring is not closed": "geos_not_closed",
}
OTHER = "geos_other"


def reason_entry(reason: str | None) -> Message:
    """The catalogue entry of GEOS's REASON (an unknown one: "breaks the OGC rules")."""
    return Message(GEOS_REASONS.get(str(reason or "").split("[")[0].strip(), OTHER))
