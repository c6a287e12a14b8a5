"""`geoioc worker` (a queue worker of its own) and `geoioc jobs dead|replay` (webhook dead letters)."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

import typer

from gis import audit, fmt
from gis.cli.common import actor, console, err, fail

jobs_app = typer.Typer(help="The job queue: webhook deliveries whose retries are spent.",
                       no_args_is_help=True)


def worker(
    queue: Annotated[list[str] | None, typer.Option(
        "--queue", "-q", help="Only this queue (exports, webhooks, maintenance); repeatable.")] = None,
    concurrency: Annotated[int | None, typer.Option(help="Jobs run at once (default: setting "
                                                         "jobs_concurrency).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="Log warnings and errors only.")] = False,
) -> None:
    """Run a queue worker until Ctrl+C (`geoioc serve` runs one already unless
    GEOIOC_JOBS_IN_PROCESS=false). It logs each job as it starts and ends, on stderr."""
    from gis.jobs.worker import run

    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from gis.jobs.queue import QUEUES

    err.print(f"GeoIOC worker on queue(s) {', '.join(queue or QUEUES)} (Ctrl+C to stop)")
    asyncio.run(run(queues=queue, name="geoioc-worker", concurrency=concurrency))


@jobs_app.command("dead")
def dead() -> None:
    """List the webhook deliveries whose retries are spent (dead letters), oldest first."""
    from gis.db import connection
    from gis.jobs.webhooks import dead_letters

    with connection() as conn:
        letters = dead_letters(conn)
    if not letters:
        console.print("no dead letters")
        return
    for d in letters:  # one line each (scripts read them): times in Vietnam time
        console.print(f"{d.job}\t{d.event}\t{d.url}\tdelivery {d.delivery}\t{d.attempts} attempts\t"
                      f"last failed {fmt.datetime(d.failed)}", soft_wrap=True, highlight=False)


@jobs_app.command("replay")
def replay(
    job: Annotated[int | None, typer.Argument(
        help="The dead letter's job number (`geoioc jobs dead`).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Replay every dead letter.")] = False,
) -> None:
    """Put a dead letter (or --all of them) back in the queue for one more delivery attempt."""
    from gis.db import connection
    from gis.jobs import webhooks

    if (job is None) == (not all_):
        raise fail("give a job number, or --all")
    with connection() as conn:
        done = webhooks.replay(conn, None if all_ else job)
        if job is not None and not done:
            raise fail(f"job {job} is not a dead letter")
        audit.record(conn, None, "webhook_replay", username=actor(), credential="cli",
                     target={"jobs": done})
    console.print(f"{len(done)} delivery(ies) queued again: {', '.join(map(str, done)) or '-'}")
