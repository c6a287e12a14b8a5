"""A signed-in principal: layers.access.Principal plus how the caller authenticated, for the
audit log. Access decisions only ever look at the base fields (user, roles)."""

from __future__ import annotations

from dataclasses import dataclass

from layers.access import Principal


@dataclass(frozen=True)
class AuthPrincipal(Principal):
    # "jwt", "cookie" (the page-session cookie), "api_key" or "basic".
    method: str = ""
    # The public part of the API key used, if any.
    key_prefix: str | None = None
    # The web session (JWT), so sign-out can end it.
    session_id: str | None = None

    @property
    def credential(self) -> str:
        """How the caller proved who they are, as written to the audit log."""
        if self.key_prefix:
            return f"api_key:{self.key_prefix}"
        return self.method
