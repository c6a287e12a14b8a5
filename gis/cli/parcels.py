"""`geoioc parcels ...`: the land officer's checks from the command line.

    geoioc parcels check [--commune 09244] [--json]

Lists every parcel whose legal area is off the area computed in the province's VN-2000 TM-3
zone beyond the tolerance, and every zoning conflict per the rule table parcel_zoning_rules
(the same SQL as the parcel page and /api/parcels/anomalies: gis/parcels/checks.py).
"""

from __future__ import annotations

from typing import Annotated

import orjson
import typer
from rich.table import Table

from gis.cli.common import console
from gis.db import connect
from gis.parcels import checks
from gis.settings import get_settings

parcels_app = typer.Typer(help="Cadastral parcels: checks.", no_args_is_help=True)


@parcels_app.command("check")
def check(commune: Annotated[str | None, typer.Option(help="commune code (current or pre-2025)")] = None,
          as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False) -> None:
    """Area discrepancies and zoning conflicts over all parcels (of one commune)."""
    srid = get_settings().province_srid
    with connect() as conn:
        areas = checks.all_area_discrepancies(conn, srid, commune)
        conflicts = checks.all_zoning_conflicts(conn, srid, commune)
        keys = {r[0]: r[1:] for r in conn.execute(
            "SELECT id, commune_code, old_commune_code, sheet_no, parcel_no FROM parcels WHERE id = ANY(%s)",
            ([c.parcel_id for c in conflicts],)).fetchall()}
    if as_json:
        print(orjson.dumps({"area_discrepancies": areas, "zoning_conflicts": [
            {"id": c.parcel_id, "key": keys.get(c.parcel_id), **c.as_json()} for c in conflicts]},
            default=str).decode())
        return
    t = Table(title=f"Area discrepancies ({len(areas)})")
    for col in ("id", "commune", "old", "sheet", "parcel", "legal m²", "computed m²", "diff m²"):
        t.add_column(col)
    for a in areas:
        t.add_row(str(a["id"]), a["commune_code"], a["old_commune_code"] or "", str(a["sheet_no"]),
                  str(a["parcel_no"]), f"{a['area']['legal_m2']:.1f}", f"{a['area']['computed_m2']:.1f}",
                  f"{a['area']['difference_m2']:+.1f}")
    console.print(t)
    t = Table(title=f"Zoning conflicts ({len(conflicts)})")
    for col in ("id", "commune", "old", "sheet", "parcel", "use", "zone", "share", "reason"):
        t.add_column(col)
    for c in conflicts:
        k = keys.get(c.parcel_id, ("", "", "", ""))
        t.add_row(str(c.parcel_id), k[0], k[1] or "", str(k[2]), str(k[3]), c.parcel_code, c.zone_code,
                  f"{100 * c.share:.0f} %", c.reason_vi)
    console.print(t)
