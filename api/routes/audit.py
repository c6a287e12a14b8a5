"""GET /api/audit: the audit log for administrators, newest first, filtered and paged.

The rows are those gis/audit.py writes (reads of personal or restricted data with the way out,
the layer and the feature ids or the filter; writes, imports, exports, sign-ins...). The SQL is
gis.audit.query, the same one `geoioc audit` runs. Paging: `before` (the id of the last row of
the previous page: the `next` link uses it, stable while new rows arrive) or `offset`.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from api.deps import Conn, require_roles
from api.route_docs import problems
from gis import audit
from layers.access import Principal
from layers.errors import BadRequest

router = APIRouter(prefix="/api", tags=["audit"])
Admin = Annotated[Principal, Depends(require_roles("admin"))]
Channel = Literal[audit.CHANNELS]  # type: ignore[valid-type]
WHEN = ("30m, 12h, 7d, 2w (ago), or an ISO date or date-time (UTC when no zone is given)")


class AuditPage(BaseModel):
    # The domain's dataclass is the schema: pydantic reads stdlib dataclasses as models.
    entries: list[audit.AuditEntry]
    numberReturned: int
    limit: int
    next: str | None = None


def _instant(name: str, raw: str | None) -> dt.datetime | None:
    if raw is None or not raw.strip():
        return None
    try:
        return audit.parse_since(raw)
    except (ValueError, OverflowError) as e:
        raise BadRequest(f"{name}: {e}", parameter=name) from None


@router.get("/audit", response_model=AuditPage, responses=problems(
    400, 401, 403, 429, reasons={403: "only administrators read the audit log"}))
def audit_log(
    request: Request, who: Admin, conn: Conn,
    user: Annotated[str | None, Query(max_length=200, description="user name (any case)")] = None,
    layer: Annotated[str | None, Query(max_length=64, pattern=r"^[a-z][a-z0-9_]*$",
                                       description="layer id")] = None,
    action: Annotated[str | None, Query(max_length=64, pattern=r"^[a-z][a-z0-9_]*$",
                                        description="read, export, write, import, sign_in, ...")] = None,
    channel: Annotated[Channel | None, Query(description="the way out of a read (`target.channel`)")
                       ] = None,
    since: Annotated[str | None, Query(max_length=40, description=f"from this instant: {WHEN}")] = None,
    until: Annotated[str | None, Query(max_length=40, description=f"before this instant: {WHEN}")
                     ] = None,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1, description=(
        "only rows older than this id (the `next` link's cursor)"))] = None,
    limit: Annotated[int, Query(ge=1, le=audit.MAX_PAGE, description=(
        f"rows per page (default 100, at most {audit.MAX_PAGE})"))] = 100,
    offset: Annotated[int, Query(ge=0, le=audit.MAX_OFFSET, description="rows to skip")] = 0,
) -> AuditPage:
    """Audit rows, newest first: who, when, which action and way out, which layer, which ids
    or filter (admin only)."""
    entries = audit.query(conn, user=user, layer=layer, action=action, channel=channel,
                          since=_instant("since", since), until=_instant("until", until),
                          before=before, limit=limit, offset=offset)
    next_url = None
    if len(entries) == limit:
        q = {k: v for k, v in request.query_params.items() if k not in ("before", "offset")}
        next_url = str(request.url.replace_query_params(**q, before=str(entries[-1].id)))
    return AuditPage(entries=entries,
                     numberReturned=len(entries), limit=limit, next=next_url)
