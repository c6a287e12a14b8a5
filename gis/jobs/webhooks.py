"""Webhook deliveries: a JSON POST to an agency's URL, retried with backoff until it is taken,
and kept as a dead letter an administrator can replay when the retries are spent.

Nothing is lost while the receiver is down: a delivery is a queued job (procrastinate_jobs)
from the moment it is enqueued - in the caller's own transaction when it passes its connection
(gis.jobs.queue.enqueue) - until the receiver answers 2xx. A refusal, an error status, a
timeout or an unreachable host raises, and the worker schedules the next attempt by
SettingsBackoff (5 s, 10 s, 20 s ... up to an hour by default, `webhook_*` settings). After
`webhook_max_attempts` runs the job ends `failed`: that is the dead-letter list (dead_letters),
and replay() puts a dead letter back in the queue (procrastinate's retry_job: one more run,
and back on the list if that fails too).

At least once, never knowingly twice: a receiver may see a delivery again (it took the POST
but its answer was lost, or came after our timeout), so every attempt of one delivery carries
the same id in the X-GeoIOC-Delivery header (and `id` in the body), and the receiver drops an
id it has already handled. X-GeoIOC-Attempt numbers the attempts for the receiver's logs
(procrastinate's count: increasing, one skipped after an interruption or a replay).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import procrastinate
import psycopg

from gis.jobs import queries
from gis.jobs.queue import WEBHOOKS, app, enqueue, sync_manager
from gis.jobs.retry import Backoff, SettingsBackoff

DELIVERY_HEADER = "X-GeoIOC-Delivery"
EVENT_HEADER = "X-GeoIOC-Event"
ATTEMPT_HEADER = "X-GeoIOC-Attempt"
TASK_NAME = "webhook.deliver"


class DeliveryFailed(Exception):
    """The receiver did not take the delivery (error status): the job is retried."""


class BadWebhook(ValueError):
    """A webhook that cannot be delivered at all (not an http(s) URL): refused at enqueue."""


def policy() -> Backoff:
    from gis.settings import get_settings

    s = get_settings()
    return Backoff(s.webhook_max_attempts, s.webhook_retry_first_seconds, s.webhook_retry_max_seconds)


@dataclass(frozen=True)
class Delivery:
    id: str  # the X-GeoIOC-Delivery header: the same on every attempt
    job: int  # procrastinate's job id


@dataclass(frozen=True)
class DeadLetter:
    job: int
    delivery: str
    url: str
    event: str
    attempts: int  # runs made, replays included
    queued: dt.datetime | None
    failed: dt.datetime | None
    payload: Any

    def as_json(self) -> dict[str, Any]:
        return {"job": self.job, "delivery": self.delivery, "url": self.url, "event": self.event,
                "attempts": self.attempts, "queued": _iso(self.queued), "failed": _iso(self.failed),
                "payload": self.payload}


def _iso(t: dt.datetime | None) -> str | None:
    return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if t else None


@app.task(name=TASK_NAME, queue=WEBHOOKS, retry=SettingsBackoff(policy), pass_context=True)
async def deliver(context: procrastinate.JobContext, delivery: str, url: str, event: str,
                  created: str, payload: Any) -> int:
    """One attempt: POST the delivery; a non-2xx answer or a transport error raises (retried)."""
    from gis.settings import get_settings

    body = orjson.dumps({"id": delivery, "event": event, "created": created, "data": payload})
    attempt = (context.job.attempts if context.job else 0) + 1
    headers = {"Content-Type": "application/json", "User-Agent": "GeoIOC-webhooks",
               DELIVERY_HEADER: delivery, EVENT_HEADER: event, ATTEMPT_HEADER: str(attempt)}
    async with httpx.AsyncClient(timeout=get_settings().webhook_timeout_seconds,
                                 follow_redirects=False, trust_env=False) as client:
        r = await client.post(url, content=body, headers=headers)
    if not 200 <= r.status_code < 300:
        raise DeliveryFailed(f"{url} answered {r.status_code} to delivery {delivery} (attempt {attempt})")
    return r.status_code


def enqueue_webhook(conn: psycopg.Connection[Any], url: str, event: str, payload: Any) -> Delivery:
    """Queue a delivery of PAYLOAD (JSON-able) for EVENT to URL, on CONN: inside the caller's
    transaction when one is open, so the delivery exists if and only if the caller's write
    does."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadWebhook(f"webhook URL {url!r}: expected http:// or https:// with a host")
    delivery = uuid.uuid4().hex
    created = dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
    job = enqueue(conn, deliver, delivery=delivery, url=url, event=event, created=created,
                  payload=orjson.loads(orjson.dumps(payload)))
    return Delivery(delivery, job)


def dead_letters(conn: psycopg.Connection[Any], job: int | None = None, limit: int = 1000
                 ) -> list[DeadLetter]:
    """The deliveries whose retries are spent, oldest first (JOB: that one only)."""
    rows = conn.execute(queries.DEAD_LETTERS, {"task": deliver.name, "id": job, "limit": limit}).fetchall()
    out = []
    for job_id, args, runs, _queue, queued, failed in rows:
        out.append(DeadLetter(job_id, args.get("delivery", ""), args.get("url", ""), args.get("event", ""),
                              runs, queued, failed, args.get("payload")))
    return out


def replay(conn: psycopg.Connection[Any], job: int | None = None) -> list[int]:
    """Put dead letters back in the queue (JOB: that one; None: all); returns the jobs put back.
    A letter replayed meanwhile by someone else is skipped."""
    from procrastinate.exceptions import ConnectorException

    manager = sync_manager()
    done = []
    now = dt.datetime.now(dt.UTC)
    for letter in dead_letters(conn, job, limit=100_000):
        try:
            manager.retry_job_by_id(letter.job, retry_at=now)
        except ConnectorException:  # no longer failed: replayed by another admin at the same time
            continue
        done.append(letter.job)
    return done
