"""`geoioc simulate`: make the sample province's sensors live by publishing realistic readings to
the MQTT broker (model: gis/sensors/simulate.py; clock and publishing: gis/sensors/simulator.py).
`make run` starts it beside the server at a gentle pace unless GEOIOC_SIMULATE=0."""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import time
from typing import Annotated

import typer

from gis.cli.common import err, fail
from gis.fmt import VN_TZ

_SPAN = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNIT = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def span(value: str) -> float:
    """Seconds of a span like 90s, 15m, 6h, 2d or 1d12h."""
    parts = _SPAN.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise fail(f"{value!r}: expected a span like 30s, 15m, 6h, 2d or 1d12h")
    return sum(float(n) * _UNIT[u] for n, u in parts)


def when(value: str, now: float) -> float:
    """Epoch seconds of --start: a span back from now (-6h, -2d), `now`, or an ISO time (without
    an offset: Vietnam time)."""
    if value == "now":
        return now
    if value.startswith("-"):
        return now - span(value[1:])
    try:
        t = dt.datetime.fromisoformat(value)
    except ValueError:
        raise fail(f"--start {value!r}: expected now, -6h, -2d or an ISO time such as "
                   "2026-12-01T08:00 (Vietnam time unless an offset is given)") from None
    return (t if t.tzinfo else t.replace(tzinfo=VN_TZ)).timestamp()


def _vn(t: float | None) -> str:
    return "-" if t is None else dt.datetime.fromtimestamp(t, VN_TZ).strftime("%Y-%m-%d %H:%M")


def simulate(
    start: Annotated[str, typer.Option(
        help="First simulated time: now, a span back (-6h, -2d) or an ISO time (Vietnam time "
             "unless an offset is given). The past is back-filled quickly, then it goes live.")] = "now",
    duration: Annotated[str | None, typer.Option(
        help="Simulated span to cover from --start (30m, 6h, 2d); default: live until Ctrl+C.")] = None,
    step: Annotated[str, typer.Option(
        help="Simulated time between two readings of one datastream.")] = "1m",
    speed: Annotated[float, typer.Option(
        min=0, help="Time compression while back-filling: simulated seconds per second "
                    "(0: as fast as --rate allows). Live, the clock is the wall clock.")] = 0.0,
    rate: Annotated[float, typer.Option(
        min=0, help="At most this many observations per second, all datastreams together "
                    "(0: no limit).")] = 0.0,
    seed: Annotated[int, typer.Option(help="The same seed gives the same readings.")] = 1,
    once: Annotated[bool, typer.Option(
        "--once", help="Publish one reading of every datastream (at --start) and exit.")] = False,
    wait_for_ingest: Annotated[float, typer.Option(
        help="Seconds to wait for an ingest worker to run (so the first messages find a "
             "subscriber); 0: do not wait.")] = 0.0,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress display; a log line a "
                                        "minute.")] = False,
) -> None:
    """Publish realistic readings of the sample's datastreams to the MQTT broker: diurnal air
    quality with pollution episodes over the QCVN 05:2023 limit, water quality and levels that
    follow the rain, traffic rush hours and camera outages where such datastreams exist."""
    from gis.db import connection
    from gis.sensors import cameras, queries, simulate, simulator
    from gis.settings import get_settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = simulator.log
    s = get_settings()
    now = time.time()
    step_s = span(step)
    if step_s < 1:
        raise fail("--step: at least 1s")
    t0 = when(start, now)
    if t0 > now + 60:
        raise fail("--start lies in the future: the simulator publishes what has happened")
    clock = simulator.Clock(start=t0, end=None if duration is None else t0 + span(duration),
                            step=step_s, speed=speed, rate=rate, once=once)

    parent = os.getppid()

    def alive() -> bool:
        # Started in the background by scripts/setup.sh, which then becomes the server (exec):
        # end with it (adopted by another process when it is gone).
        return not (os.environ.get("GEOIOC_SIMULATE_WITH_PARENT") and os.getppid() != parent)

    with connection() as conn:
        if wait_for_ingest:
            deadline = time.monotonic() + wait_for_ingest
            while not queries.ingest_running(conn, dt.timedelta(seconds=60)):
                if not alive():
                    return
                if time.monotonic() > deadline:
                    raise fail(f"no ingest worker running after {wait_for_ingest:.0f} s")
                time.sleep(1.0)
            time.sleep(3.0)  # its subscription follows its registration
        rows = queries.simulation_streams(conn)
        cams = simulator.Cameras.of(cameras.simulation_cameras(conn))
    streams = simulate.Streams.of([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows],
                                  [r[3] for r in rows])
    streams, skipped = simulator.split(streams)
    if not len(streams):
        raise fail("no datastream to simulate: load the sample first (geoioc sample load)")
    for line in simulator.describe(streams):
        log.info(line)
    log.info("cameras: %d send heartbeats (live times only) and detections", len(cams))
    for prop, n in skipped.items():
        log.info("%s: %d datastreams the model does not draw, left alone", prop, n)
    eps = simulate.episodes(seed, dt.datetime.fromtimestamp(t0, dt.UTC),
                            dt.datetime.fromtimestamp(clock.end or now + 4 * 86400, dt.UTC))
    for e in eps:
        log.info("pollution episode %s to %s (Vietnam time), PM x%.1f", _vn(e.start.timestamp()),
                 _vn(e.end.timestamp()), 1 + e.strength)

    publisher = simulator.Publisher(s)
    log.info("publishing %d datastreams every %s from %s to %s on %s", len(streams), step,
             _vn(t0), "live" if clock.end is None else _vn(clock.end), publisher.topic)
    try:
        if quiet:
            last = [time.monotonic()]

            def report(f: simulator.Figures) -> None:
                if time.monotonic() - last[0] >= 60:
                    last[0] = time.monotonic()
                    log.info("%d observations published, simulated time %s", f.observations,
                             _vn(f.last))

            fig = simulator.run(streams, clock, seed, publisher, report, alive, cameras=cams)
        else:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            total = (clock.end if clock.end is not None else now) - t0
            with Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                          TextColumn("{task.fields[obs]} observations · {task.fields[at]}"),
                          TimeElapsedColumn(), console=err) as bar:
                task = bar.add_task("simulate", total=max(total, step_s), obs=0, at="")

                def report(f: simulator.Figures) -> None:
                    live = f.last is not None and f.last >= time.time() - 2 * step_s
                    bar.update(task, completed=min(total, (f.last or t0) - t0 + step_s),
                               obs=f.observations, at=("live " if live else "") + _vn(f.last),
                               description="live" if live and clock.end is None else "simulate")

                fig = simulator.run(streams, clock, seed, publisher, report, alive, cameras=cams)
    except KeyboardInterrupt:
        fig = None
    except ConnectionError as e:
        raise fail(str(e)) from None
    finally:
        try:
            publisher.close()
        except ConnectionError as e:
            err.print(f"[yellow]{e}[/yellow]")
    if fig is not None:
        err.print(f"{fig.observations} observations in {fig.messages} messages, simulated "
                  f"{_vn(fig.first)} to {_vn(fig.last)} (Vietnam time)")
        if fig.heartbeats or fig.detections:
            err.print(f"cameras: {fig.heartbeats} heartbeats, {fig.detections} detections")
