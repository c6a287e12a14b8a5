"""The roles a user can hold. Anonymous is not one of them: it is the absence of a user."""

from __future__ import annotations

from collections.abc import Iterable

from gis.auth.errors import UserError

# Order is from least to most trusted; migrations/versions/0004 checks the same list.
ROLES: tuple[str, ...] = ("citizen", "operator", "land_officer", "security_officer", "leader",
                          "admin")
# What a person reads for each role (Vietnamese, English): pages show these, never the code.
ROLE_TITLES: dict[str, tuple[str, str]] = {
    "citizen": ("Công dân", "Citizen"),
    "operator": ("Cán bộ điều hành", "Operator"),
    "land_officer": ("Cán bộ địa chính", "Land officer"),
    "security_officer": ("Cán bộ an ninh", "Security officer"),
    "leader": ("Lãnh đạo", "Leader"),
    "admin": ("Quản trị hệ thống", "Administrator"),
}


def role_title(role: str, lang: str) -> str:
    vi, en = ROLE_TITLES.get(role, (role, role))
    return en if lang == "en" else vi


def check_roles(roles: Iterable[str]) -> tuple[str, ...]:
    """Validated, de-duplicated roles in canonical order."""
    wanted = {r.strip().lower() for r in roles}
    unknown = sorted(wanted - set(ROLES))
    if unknown:
        raise UserError(f"unknown role {', '.join(unknown)} (roles: {', '.join(ROLES)})")
    return tuple(r for r in ROLES if r in wanted)
