"""`geoioc ingest` (an MQTT ingest worker of its own), `geoioc observations` and `geoioc incidents`
(their monthly partitions: observations in UTC months, migration 0020; incidents in Vietnam-time
months, migrations 0038 and 0040)."""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Annotated

import typer

from gis.cli.common import actor, console, err, fail
from gis.fmt import VN_TZ

observations_app = typer.Typer(help="The observations' monthly partitions.", no_args_is_help=True)
incidents_app = typer.Typer(help="Các tháng của sự cố (phân vùng) / The incidents' monthly "
                                 "partitions.", no_args_is_help=True)


def ingest(
    client_id: Annotated[str | None, typer.Option(
        help="MQTT client id, i.e. the session to resume (default: setting ingest_client_id, "
             "else geoioc-ingest-<host>-<first free slot>).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="Log warnings and errors only.")] = False,
) -> None:
    """Run an MQTT ingest worker until Ctrl+C (`geoioc serve` runs one already unless
    GEOIOC_INGEST_IN_PROCESS=false). Several share the load (MQTT shared subscription)."""
    from gis.sensors.ingest import run
    from gis.settings import get_settings

    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    s = get_settings()
    err.print(f"GeoIOC ingest from {s.mqtt_url} (Ctrl+C to stop)")
    try:
        run(s, client_id=client_id)
    except KeyboardInterrupt:
        pass
    except ConnectionError as e:
        raise fail(str(e)) from None


def _month(value: str) -> dt.date:
    if not re.fullmatch(r"\d{4}-\d{2}", value):
        raise fail(f"{value!r}: expected a month as YYYY-MM")
    y, m = map(int, value.split("-"))
    if not 1 <= m <= 12:
        raise fail(f"{value!r}: no such month")
    return dt.date(y, m, 1)


@observations_app.command("partitions")
def list_partitions() -> None:
    """The monthly partitions (attached or detached) with their estimated rows."""
    from gis.db import connection
    from gis.sensors import queries

    with connection() as conn:
        for name, parent, month, attached, rows in queries.partitions(conn):
            console.print(f"{name}\t{parent}\t{month:%Y-%m}\t"
                          f"{'attached' if attached else 'detached'}\t~{rows}", highlight=False)


@observations_app.command("ensure")
def ensure(ahead: Annotated[int | None, typer.Option(
        help="Months ahead of the current one (default: setting observation_partitions_ahead).")] = None,
) -> None:
    """Create the missing partitions up to AHEAD months ahead (a periodic job does it hourly)."""
    from gis.db import connection
    from gis.sensors import queries
    from gis.settings import get_settings

    with connection() as conn, conn.transaction():
        made = queries.ensure_partitions(conn, ahead or get_settings().observation_partitions_ahead)
    console.print("\n".join(made) or "nothing to create")


@observations_app.command("detach")
def detach(
    before: Annotated[str, typer.Option(help="Detach the months before this one (YYYY-MM).")],
    rollups: Annotated[bool, typer.Option(help="Detach the hourly rollups' months too (the "
                                          "daily rollups always stay).")] = False,
) -> None:
    """Detach whole months of observations before BEFORE: they leave the table (queries no longer
    read them; the hourly and daily rollups keep their charts) and stay as tables of their own,
    to be dumped (pg_dump -t) and dropped. Observations of a detached month are refused."""
    from gis.db import connection
    from gis.sensors import queries

    month = _month(before)
    if month > dt.date.today().replace(day=1):
        raise fail("only past months can be detached")
    with connection() as conn, conn.transaction():
        names = queries.detach_partitions(conn, "observations", month)
        if rollups:
            names += queries.detach_partitions(conn, "observation_hourly", month)
    console.print("\n".join(names) or "nothing to detach")


@incidents_app.command("partitions")
def list_incident_partitions() -> None:
    """Các tháng sự cố (đã gắn hoặc đã tách) với số dòng ước tính / The incidents' months
    (attached or detached) with their estimated rows."""
    from gis.db import connection
    from gis.sensors import queries

    with connection() as conn:
        for name, month, attached, rows in queries.incident_partitions(conn):
            console.print(f"{name}\t{month:%Y-%m}\t"
                          f"{'đã gắn / attached' if attached else 'đã tách / detached'}\t~{rows}",
                          highlight=False)


@incidents_app.command("detach")
def detach_incidents(
    before: Annotated[str, typer.Option(
        help="Tách các tháng trước tháng này (YYYY-MM) / Detach the months before this one "
             "(YYYY-MM).")],
    include_open: Annotated[bool, typer.Option(
        "--include-open", help="Lưu trữ cả tháng còn sự cố đang mở / Archive months that still "
                               "have open incidents too.")] = False,
) -> None:
    """Lưu trữ trọn các tháng sự cố trước BEFORE / Archive whole months of incidents before
    BEFORE (Vietnam time): they leave the table and every view (map, statistics, pre-aggregates,
    queues) as if deleted, and stay as tables of their own with what linked to them (workflow,
    requests, reporters, photos: <month>_<table>), to be dumped (pg_dump -t) and dropped. A new
    incident of an archived month is refused. A month with open incidents is refused unless
    --include-open."""
    import psycopg

    from gis import audit
    from gis.db import connection
    from gis.sensors import queries

    month = _month(before)
    if month > dt.datetime.now(VN_TZ).date().replace(day=1):
        raise fail("chỉ tách được các tháng đã qua / only past months can be detached")
    with connection() as conn, conn.transaction():
        try:
            names = queries.detach_incident_partitions(conn, month, open_too=include_open)
        except psycopg.errors.ObjectNotInPrerequisiteState as e:
            raise fail("còn sự cố đang mở, chưa tách tháng nào (xử lý xong trước, hoặc dùng "
                       f"--include-open) / {e.diag.message_primary}") from None
        except psycopg.errors.InvalidParameterValue as e:
            raise fail(f"không tách được / cannot detach: {e.diag.message_primary}") from None
        if names:
            audit.record(conn, None, "incidents_detach", username=actor(), credential="cli",
                         layer="incidents", target={"before": f"{month:%Y-%m}", "tables": names,
                                                    "include_open": include_open})
    console.print("\n".join(names) or "không có tháng nào để tách / nothing to detach")
    if names:
        err.print("Sao lưu rồi xoá / dump, then drop: "
                  + "; ".join(f"pg_dump -t '{n}*'" for n in names), highlight=False)
