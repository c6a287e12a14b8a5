"""Sustained MQTT ingest, broker to stored, with the ingest worker killed and restarted mid-run.

Issue 16's benchmark: observations per second from the MQTT broker into the partitioned
observations table (with the rollups and latest rows maintained in the same transactions), while
the worker process (`geoioc ingest`) is killed with SIGKILL halfway and started again under the
same client id (its persistent session). Afterwards it checks that nothing was lost (every
observation the broker acknowledged to the publisher is stored) and nothing doubled (one row
per observation, the hourly rollups count each once), and prints the figures.

    .venv/bin/python bench/mqtt_ingest.py                           # 12,000 obs/s for 60 s
    .venv/bin/python bench/mqtt_ingest.py --rate 20000 --seconds 30
    .venv/bin/python bench/mqtt_ingest.py --per-message 1 --rate 3000  # one STA message each
    .venv/bin/python bench/mqtt_ingest.py --roads 500   # and 500 road segments' speed and flow

What runs: the broker of GEOIOC_MQTT_URL (default 127.0.0.1:1883), the database of
GEOIOC_DATABASE_URL (migrated; the run adds --datastreams stations of its own, sensors rows
AIR-8xxxxx, and --roads trunk road segments of its own, each with a speed and a flow
datastream (migration 0024), and deletes them, with everything they got, at the end), one
`geoioc ingest`
process (topic prefix and share group of this run only), and a publisher process sending
gateway messages (`geoioc/v1/gateways/<gw>/observations`, --per-message observations each) or
STA messages (`v1.1/Datastreams(<id>)/Observations`, with --per-message 1) at --rate
observations per second, QoS 1.

Figures: observations published (all acknowledged by the broker), stored, the rate from the
first publication to the moment the last one is stored (sustained, kill included), the
worker's CPU, the time from the kill to the first commit of the restarted worker, and the
machine's load average.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

GEOIOC = ROOT / ".venv" / "bin" / "geoioc"


def publisher(url: str, prefix: str, datastreams: list[int], rate: int, seconds: float,
              per_message: int, t0: float, out: mp.Queue,  # type: ignore[type-arg]
              recent: bool = False) -> None:
    """Publish `rate` observations per second for `seconds`, paced in 10 ms steps; reports the
    number published and acknowledged by the broker (QoS 1)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from gis.sensors.mqtt import parse_url

    u = parse_url(url)
    c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    if u.username:
        c.username_pw_set(u.username, u.password)
    c.connect(u.host, u.port)
    c.loop_start()
    # Yesterday (observation i of a datastream at base + i ms...); with road segments ten
    # minutes ago, so their speeds are fresh and every batch recolours its segments.
    base = int(time.time()) - (600 if recent else 86400)
    n_ds = len(datastreams)
    sent = 0
    infos = []
    start = time.monotonic()
    end = start + seconds
    while True:
        now = time.monotonic()
        if now >= end:
            break
        due = int((now - start) * rate)
        while sent < due:
            if per_message == 1:
                ds = datastreams[sent % n_ds]
                t = base + (sent // n_ds) * 0.001
                payload = json.dumps({"phenomenonTime": _iso(t), "result": sent % 997 / 10})
                infos.append(c.publish(f"{prefix}v1.1/Datastreams({ds})/Observations", payload, qos=1))
                sent += 1
            else:
                rows = []
                for k in range(sent, sent + per_message):
                    rows.append([datastreams[k % n_ds], _iso(base + (k // n_ds) * 0.001), k % 997 / 10])
                infos.append(c.publish(f"{prefix}geoioc/v1/gateways/bench/observations",
                                       json.dumps(rows), qos=1))
                sent += per_message
        time.sleep(0.01)
    for i in infos:
        i.wait_for_publish(120)
    acked = sum(per_message for i in infos if i.is_published())
    out.put((sent, acked, time.monotonic() - start))
    c.disconnect()
    c.loop_stop()


def _iso(t: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError):
        return 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=int, default=12000, help="observations per second published")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--per-message", type=int, default=100)
    ap.add_argument("--datastreams", type=int, default=1000)
    ap.add_argument("--kill-at", type=float, default=0.5, help="fraction of the run")
    ap.add_argument("--down-seconds", type=float, default=1.0)
    ap.add_argument("--roads", type=int, default=0,
                    help="road segments of the run's own, with speed and flow datastreams")
    args = ap.parse_args()

    from gis.settings import get_settings

    s = get_settings()
    tag = uuid.uuid4().hex[:8]
    prefix, client_id = f"bench-{tag}/", f"bench-{tag}"
    env = {**os.environ, "GEOIOC_MQTT_TOPIC_PREFIX": prefix, "GEOIOC_INGEST_SHARE_GROUP": f"bench-{tag}",
           "PYTHONPATH": str(ROOT)}
    with psycopg.connect(s.database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM sensors WHERE code LIKE 'AIR-8_____'")
        things = [r[0] for r in conn.execute(
            "INSERT INTO sensors (code, name, kind, parameter, unit, threshold, status, geom)"
            " SELECT 'AIR-8' || lpad(i::text, 5, '0'), 'Trạm đo thử ' || i, 'air', 'pm25', 'µg/m³', 50,"
            " 'online', ST_SetSRID(ST_MakePoint(106.0 + i * 0.0001, 21.1), 4326)"
            " FROM generate_series(1, %s) AS i RETURNING id", (args.datastreams,))]
        conn.execute("DELETE FROM roads WHERE name = 'Quốc lộ đo thử'")
        roads = [r[0] for r in conn.execute(
            "INSERT INTO roads (name, road_class, lanes, max_speed, traffic_state, geom)"
            " SELECT 'Quốc lộ đo thử', 'trunk', 4, 80, 'free', ST_SetSRID(ST_MakeLine("
            " ST_MakePoint(106.0 + i * 0.0001, 21.0), ST_MakePoint(106.0 + i * 0.0001, 21.001)), 4326)"
            " FROM generate_series(1, %s) AS i RETURNING id", (args.roads,))]
        things += [r[0] for r in conn.execute("SELECT id FROM things WHERE road_id = ANY(%s)", (roads,))]
        ds = [r[0] for r in conn.execute("SELECT id FROM datastreams WHERE thing_id = ANY(%s) ORDER BY id",
                                         (things,))]
        conn.execute("SELECT observations_ensure_partitions(1)")
        conn.execute("SELECT observations_create_partitions((now() - interval '2 days')::date, now()::date)")
        load_before = os.getloadavg()
        try:
            run(args, s.mqtt_url, prefix, client_id, env, conn, ds, load_before)
        finally:
            conn.execute("DELETE FROM sensors WHERE id = ANY(%s)", (things,))
            conn.execute("DELETE FROM roads WHERE id = ANY(%s)", (roads,))


def start_worker(client_id: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([str(GEOIOC), "ingest", "--client-id", client_id],
                            env=env, stdout=subprocess.DEVNULL, stderr=log.open("ab"))


def count(conn: psycopg.Connection, ds: list[int]) -> int:  # type: ignore[type-arg]
    return int(conn.execute("SELECT count(*) FROM observations WHERE datastream_id = ANY(%s)",
                            (ds,)).fetchone()[0])  # type: ignore[index]


def run(args: argparse.Namespace, url: str, prefix: str, client_id: str, env: dict[str, str],
        conn: psycopg.Connection, ds: list[int], load_before: tuple[float, float, float]) -> None:  # type: ignore[type-arg]
    log = ROOT / ".geoioc" / f"bench-ingest-{client_id}.log"
    log.parent.mkdir(exist_ok=True)
    w = start_worker(client_id, env, log)
    # Ready when its figures row exists and it has subscribed (give it the import time).
    deadline = time.monotonic() + 60
    while not conn.execute("SELECT 1 FROM ingest_workers WHERE client_id = %s", (client_id,)).fetchone():
        if time.monotonic() > deadline or w.poll() is not None:
            sys.exit(f"the ingest worker did not start: see {log}")
        time.sleep(0.2)
    time.sleep(1.0)
    q: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    t0 = time.monotonic()
    p = mp.Process(target=publisher, args=(url, prefix, ds, args.rate, args.seconds, args.per_message,
                                           t0, q, args.roads > 0))
    p.start()
    time.sleep(args.seconds * args.kill_at)
    cpu = cpu_seconds(w.pid)
    stored_at_kill = count(conn, ds)
    os.kill(w.pid, signal.SIGKILL)
    w.wait()
    killed = time.monotonic()
    time.sleep(args.down_seconds)
    w2 = start_worker(client_id, env, log)
    first_commit = None
    while first_commit is None and p.is_alive():  # the restarted worker's first commit
        if count(conn, ds) > stored_at_kill:
            first_commit = time.monotonic()
        time.sleep(0.05)
    sent, acked, pub_seconds = q.get()
    p.join()
    # Wait until everything is stored (no progress for 20 s: give up and report the gap).
    last, last_change = -1, time.monotonic()
    while True:
        n = count(conn, ds)
        now = time.monotonic()
        if first_commit is None and n > stored_at_kill:
            first_commit = now
        if n != last:
            last, last_change = n, now
        if n >= acked or now - last_change > 20:
            break
        time.sleep(0.05)
    done = last_change if n < acked else time.monotonic()
    cpu += cpu_seconds(w2.pid)
    figures = conn.execute(
        "SELECT sum(received), sum(stored), sum(duplicates), sum(rejected), sum(messages)"
        " FROM ingest_workers WHERE client_id = %s", (client_id,)).fetchone()
    rolled = conn.execute("SELECT coalesce(sum(n), 0) FROM observation_hourly WHERE datastream_id = ANY(%s)",
                          (ds,)).fetchone()[0]  # type: ignore[index]
    distinct = conn.execute("SELECT count(DISTINCT (datastream_id, phenomenon_time)) FROM observations"
                            " WHERE datastream_id = ANY(%s)", (ds,)).fetchone()[0]  # type: ignore[index]
    latest = conn.execute("SELECT coalesce(sum(observations), 0) FROM datastream_latest"
                          " WHERE datastream_id = ANY(%s)", (ds,)).fetchone()[0]  # type: ignore[index]
    w2.send_signal(signal.SIGINT)
    try:
        w2.wait(30)
    except subprocess.TimeoutExpired:
        w2.kill()
    elapsed = done - t0
    load_after = os.getloadavg()
    print(f"published     {sent:,} observations in {pub_seconds:.1f} s ({sent / pub_seconds:,.0f}/s),"
          f" {args.per_message} per message, {len(ds)} datastreams; broker acknowledged {acked:,}")
    print(f"stored        {n:,} ({'nothing lost' if n == acked else f'MISSING {acked - n:,}'};"
          f" distinct keys {distinct:,}, hourly rollups count {int(rolled):,},"
          f" datastream_latest counts {int(latest):,})")
    print(f"sustained     {n / elapsed:,.0f} observations/s broker -> stored, from the first"
          f" publication to the last stored ({elapsed:.1f} s, kill and restart included)")
    print(f"kill          SIGKILL at {stored_at_kill:,} stored; the restarted worker's first"
          f" commit {((first_commit or done) - killed):.1f} s after the kill"
          f" ({args.down_seconds:.0f} s down + start)")
    if figures and figures[0]:
        print(f"worker        received {int(figures[0]):,}, stored {int(figures[1]):,}, duplicates"
              f" {int(figures[2]):,} (redelivered after the kill), rejected {int(figures[3]):,},"
              f" messages {int(figures[4]):,}; CPU {cpu:.1f} s"
              f" ({cpu / max(n, 1) * 1e6:.0f} µs per observation)")
    if args.roads:
        live = conn.execute("SELECT count(*) FROM roads WHERE name = 'Quốc lộ đo thử'"
                            " AND speed_ratio IS NOT NULL").fetchone()[0]  # type: ignore[index]
        print(f"roads         {args.roads} segments' speed and flow among the datastreams;"
              f" {live} with a live congestion state at the end")
    print(f"machine       {os.cpu_count()} cores; load average {load_before[0]:.1f} before,"
          f" {load_after[0]:.1f} after")
    ok = n == acked == distinct == int(rolled) == int(latest)
    print("RESULT        " + ("ok: nothing lost, nothing doubled" if ok else "FAILED"))
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
