"""The broker's address (setting mqtt_url) and the ingest workers' MQTT client ids.

A worker's session (what the broker keeps for it while it is away, and sends again) belongs to
its client id, so the id must be the same when the worker comes back: `ingest_client_id` when
set, else `geoioc-ingest-<host>-<slot>`, where the slot is the first of 0, 1, 2 ... that no other
worker process of this checkout holds (an exclusive lock on `.geoioc/ingest-slot-<n>.lock`,
released when the process ends, however it ends). A server restarted, or the second of two
`geoioc ingest` started again, finds its own slot, hence its own session.
"""

from __future__ import annotations

import fcntl
import os
import socket
from dataclasses import dataclass
from typing import IO
from urllib.parse import unquote, urlsplit

from gis.settings import PROJECT_ROOT, Settings

DEFAULT_PORTS = {"mqtt": 1883, "tcp": 1883, "mqtts": 8883, "ssl": 8883}


@dataclass(frozen=True)
class BrokerUrl:
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None


def parse_url(url: str) -> BrokerUrl:
    """mqtt://[user[:password]@]host[:port] (mqtts:// for TLS)."""
    u = urlsplit(url)
    if u.scheme not in DEFAULT_PORTS or not u.hostname:
        raise ValueError(f"GEOIOC_MQTT_URL {url!r}: expected mqtt://host:port or mqtts://host:port")
    return BrokerUrl(u.hostname, u.port or DEFAULT_PORTS[u.scheme], u.scheme in ("mqtts", "ssl"),
                     unquote(u.username) if u.username else None,
                     unquote(u.password) if u.password else None)


def client_id(settings: Settings) -> tuple[str, IO[bytes] | None]:
    """The client id, and the lock file that holds its slot (close it to give the slot back)."""
    if settings.ingest_client_id:
        return settings.ingest_client_id, None
    folder = PROJECT_ROOT / ".geoioc"
    folder.mkdir(exist_ok=True)
    host = socket.gethostname().split(".")[0] or "host"
    for slot in range(1000):
        f = open(folder / f"ingest-slot-{slot}.lock", "ab")  # noqa: SIM115 - held open on purpose
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            continue
        return f"geoioc-ingest-{host}-{slot}", f
    return f"geoioc-ingest-{host}-pid{os.getpid()}", None
