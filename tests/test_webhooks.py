"""Webhook deliveries over real HTTP to a receiver on a loopback port, through the real queue
(PostgreSQL, the process's worker): a receiver that refuses, then recovers, gets every delivery
and hands each to its application once; a receiver that stays down leaves a dead letter that an
administrator replays (API and CLI) once it is back.

Retry waits are cut to a fraction of a second through the settings (the worker reads them at
each decision); the worker polls for due retries every second (jobs_poll_seconds).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from typer.testing import CliRunner

from gis.jobs import queries, webhooks, worker
from gis.settings import get_settings


class Receiver:
    """An agency's endpoint: refuses the first `refuse` requests (503), makes the first accepted
    request of `slow` answer after the sender's timeout (it has handled it by then), and hands
    each delivery id to the "application" once, answering 200 to repeats without handling them."""

    def __init__(self, port: int = 0, refuse: int = 0, slow: bool = False) -> None:
        self.refuse, self.slow = refuse, slow
        self.lock = threading.Lock()
        self.requests: list[tuple[str, int]] = []  # (delivery id, attempt header)
        self.handled: Counter[str] = Counter()  # what the application saw, by delivery id
        self.bodies: dict[str, Any] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                delivery = self.headers[webhooks.DELIVERY_HEADER]
                with receiver.lock:
                    receiver.requests.append((delivery, int(self.headers[webhooks.ATTEMPT_HEADER])))
                    if receiver.refuse > 0:
                        receiver.refuse -= 1
                        status, wait = 503, 0.0
                    else:
                        if delivery not in receiver.handled:  # the duplicate check of the receiver
                            receiver.handled[delivery] += 1
                            receiver.bodies[delivery] = body
                        status, wait = 200, 0.0
                        if receiver.slow:
                            receiver.slow, wait = False, 2 * get_settings().webhook_timeout_seconds
                time.sleep(wait)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks/geoioc"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module", autouse=True)
def queue_worker() -> Iterator[None]:
    worker.in_process_start()
    yield
    worker.in_process_stop()


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    s = get_settings()
    monkeypatch.setattr(s, "webhook_retry_first_seconds", 0.1)
    monkeypatch.setattr(s, "webhook_retry_max_seconds", 0.3)
    monkeypatch.setattr(s, "webhook_timeout_seconds", 0.5)
    monkeypatch.setattr(s, "webhook_max_attempts", 8)


def _status(conn, job: int) -> str:
    return conn.execute(queries.JOB, (job,)).fetchone()[1]


def wait_for(what, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not what():
        assert time.monotonic() < deadline, f"not done in {seconds} s"
        time.sleep(0.05)


def test_a_receiver_that_refuses_then_recovers_gets_everything_once(conn, quick) -> None:
    receiver = Receiver(refuse=4, slow=True)
    try:
        # Enqueued with the caller's write, in its transaction: all five or none.
        with conn.transaction():
            deliveries = [webhooks.enqueue_webhook(conn, receiver.url, "incident.assigned",
                                                   {"incident": i, "agency": "Công an tỉnh"})
                          for i in range(5)]
        wait_for(lambda: all(_status(conn, d.job) == "succeeded" for d in deliveries))
    finally:
        receiver.close()
    ids = {d.id for d in deliveries}
    assert set(receiver.handled) == ids and set(receiver.handled.values()) == {1}
    assert [receiver.bodies[d.id]["data"] for d in deliveries] == [
        {"incident": i, "agency": "Công an tỉnh"} for i in range(5)]
    assert all(receiver.bodies[d.id]["id"] == d.id for d in deliveries)
    seen = Counter(delivery for delivery, _ in receiver.requests)
    assert sum(seen.values()) >= 5 + 4 + 1  # four refusals and the slow answer were retried
    repeated = [d for d, n in seen.items() if n > 1]
    assert repeated, "the slow answer's delivery was sent again"
    for d in repeated:  # attempts of one delivery are numbered
        attempts = [a for x, a in receiver.requests if x == d]
        assert attempts == sorted(attempts) and attempts[0] == 1 and len(set(attempts)) == len(attempts)
    assert not [x for x in webhooks.dead_letters(conn) if x.job in {d.job for d in deliveries}]


def test_a_delivery_rolled_back_with_its_transaction_is_not_sent(conn) -> None:
    class Undo(Exception):
        pass

    with pytest.raises(Undo), conn.transaction():
        job = webhooks.enqueue_webhook(conn, "http://127.0.0.1:9/x", "incident.assigned", {}).job
        raise Undo
    assert conn.execute(queries.JOB, (job,)).fetchone() is None


def test_a_bad_url_is_refused_at_once(conn) -> None:
    with pytest.raises(webhooks.BadWebhook):
        webhooks.enqueue_webhook(conn, "ftp://example.org/x", "incident.assigned", {})


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_receiver_that_stays_down_leaves_a_dead_letter_replayed_by_an_admin(
        conn, client, keys, role_keys, quick, monkeypatch) -> None:
    monkeypatch.setattr(get_settings(), "webhook_max_attempts", 3)
    port = _closed_port()  # nobody listens there: connection refused
    url = f"http://127.0.0.1:{port}/hooks/geoioc"
    sent = webhooks.enqueue_webhook(conn, url, "incident.status", {"incident": 7, "status": "closed"})
    wait_for(lambda: _status(conn, sent.job) == "failed")
    letter = {d.job: d for d in webhooks.dead_letters(conn)}[sent.job]
    assert (letter.delivery, letter.url, letter.event, letter.attempts) == (
        sent.id, url, "incident.status", 3)

    # Administrators only.
    assert client.get("/api/admin/webhooks/dead", headers=keys["operator"]).status_code == 403
    assert client.get("/api/admin/webhooks/dead").status_code == 401
    r = client.get("/api/admin/webhooks/dead", headers=keys["admin"])
    assert r.status_code == 200, r.text
    listed = {d["job"]: d for d in r.json()["deadLetters"]}
    assert listed[sent.job]["delivery"] == sent.id and listed[sent.job]["payload"] == {
        "incident": 7, "status": "closed"}
    from gis.cli import app as cli

    out = CliRunner().invoke(cli, ["jobs", "dead"])
    assert out.exit_code == 0 and f"delivery {sent.id}" in out.output

    r = client.post(f"/api/admin/webhooks/dead/{2**62}/replay", headers=keys["admin"])
    assert r.status_code == 404, r.text

    receiver = Receiver(port=port)  # the agency is back
    try:
        r = client.post(f"/api/admin/webhooks/dead/{sent.job}/replay", headers=keys["admin"])
        assert r.status_code == 202 and r.json() == {"replayed": [sent.job]}, r.text
        assert conn.execute("SELECT username FROM audit_log WHERE action = 'webhook_replay' "
                            "AND target -> 'jobs' @> %s::jsonb", (json.dumps([sent.job]),)).fetchone()[0] \
            == role_keys["admin"]["user"]
        wait_for(lambda: _status(conn, sent.job) == "succeeded")
    finally:
        receiver.close()
    assert receiver.handled == Counter({sent.id: 1})
    assert receiver.bodies[sent.id]["data"] == {"incident": 7, "status": "closed"}
    assert sent.job not in {d.job for d in webhooks.dead_letters(conn)}
    # Replayed already: no longer a dead letter.
    r = client.post(f"/api/admin/webhooks/dead/{sent.job}/replay", headers=keys["admin"])
    assert r.status_code == 404 and r.json()["code"] == "NotFound", r.text


def test_replay_all_from_the_command_line(conn, quick, monkeypatch) -> None:
    from gis.cli import app as cli

    monkeypatch.setattr(get_settings(), "webhook_max_attempts", 1)
    port = _closed_port()
    sent = [webhooks.enqueue_webhook(conn, f"http://127.0.0.1:{port}/h", "incident.assigned", {"n": n})
            for n in range(2)]
    wait_for(lambda: all(_status(conn, d.job) == "failed" for d in sent))
    assert CliRunner().invoke(cli, ["jobs", "replay"]).exit_code != 0  # a job or --all
    receiver = Receiver(port=port)
    try:
        out = CliRunner().invoke(cli, ["jobs", "replay", "--all"])
        assert out.exit_code == 0, out.output
        wait_for(lambda: all(_status(conn, d.job) == "succeeded" for d in sent))
    finally:
        receiver.close()
    assert set(receiver.handled) == {d.id for d in sent}
