"""Export jobs live in the database and run on the job queue (gis.jobs): a new process (here a
new ExportJobs) answers for jobs another accepted, and a job whose worker died runs again - as
far as its user still may."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from _io_util import RUN

from gis.auth import users
from gis.io import jobs
from gis.io.export import ExportRequest
from gis.jobs import worker
from layers.access import Principal

PREFIX = f"iojobs{RUN}"


@pytest.fixture(scope="module")
def people(conn, role_keys):
    """The suite's operator and citizen, and an operator of this module who has been disabled."""
    names = {"op": role_keys["operator"]["user"], "cit": role_keys["citizen"]["user"],
             "gone": f"{PREFIX}-gone"}
    users.add_user(conn, names["gone"], role_keys["operator"]["password"], roles=["operator"])
    users.set_disabled(conn, names["gone"], True)
    yield names
    conn.execute("DELETE FROM export_jobs WHERE owner = ANY(%s)", (list(names.values()),))
    conn.execute("DELETE FROM users WHERE username = %s", (names["gone"],))


@pytest.fixture(scope="module", autouse=True)
def queue_worker():
    """The process's queue worker (the one `geoioc serve` runs), which runs the jobs."""
    worker.in_process_start()
    yield
    worker.in_process_stop()


def _wait(runner: jobs.ExportJobs, job_id: str, who: Principal, seconds: float = 30) -> jobs.ExportJob:
    deadline = time.monotonic() + seconds
    while True:
        job = runner.get(job_id, who)
        assert job is not None
        if job.status in ("successful", "failed"):
            return job
        assert time.monotonic() < deadline, f"job {job_id} did not finish in {seconds} s ({job.status})"
        time.sleep(0.05)


def _interrupted(conn, owner: str, roles: list[str], layer: str, root, attempts: int = 1) -> str:
    """A job as a worker that died mid-run leaves it: its export_jobs row `running`, its queue job
    `doing` under a worker whose last heartbeat is minutes old."""
    job_id = uuid.uuid4().hex
    conn.execute("INSERT INTO export_jobs (id, owner, roles, request, status, rows_done, attempts, created, "
                 "started, updated) VALUES (%s, %s, %s, %s, 'running', 7, %s, now() - interval '10 min', "
                 "now() - interval '10 min', now() - interval '5 min')",
                 (job_id, owner, roles, json.dumps({"layer": layer, "format": "geojson"}), attempts))
    dead = conn.execute("INSERT INTO procrastinate_workers (last_heartbeat) "
                        "VALUES (now() - interval '5 min') RETURNING id").fetchone()[0]
    conn.execute("INSERT INTO procrastinate_jobs (queue_name, task_name, args, status, worker_id) "
                 "VALUES ('exports', %s, %s, 'doing', %s)",
                 (jobs.run_export.name, json.dumps({"job_id": job_id, "root": str(root), "audit": None}),
                  dead))
    return job_id


def test_a_new_runner_answers_for_jobs_another_accepted(conn, people, tmp_path) -> None:
    who = Principal(people["op"], frozenset({"operator"}))
    first = jobs.ExportJobs(tmp_path)
    job = first.submit(ExportRequest("tourism_places", "geojson"), who, None)
    done = _wait(first, job.id, who)
    assert done.status == "successful", done.message
    second = jobs.ExportJobs(tmp_path)  # as after a restart, or in another server process
    again = second.get(job.id, who)
    assert again is not None and again.status == "successful" and again.progress == 100
    assert again.result is not None and again.result.path.exists()
    n = conn.execute("SELECT count(*) FROM tourism_places").fetchone()[0]
    assert len(json.loads(again.result.path.read_bytes())["features"]) == n == again.result.rows
    assert job.id in [j.id for j in second.of(who)]
    assert second.get(job.id, Principal(people["cit"], frozenset({"citizen"}))) is None


def test_a_job_whose_process_stopped_runs_again(conn, people, tmp_path) -> None:
    job_id = _interrupted(conn, people["op"], ["operator"], "tourism_places", tmp_path)
    runner = jobs.ExportJobs(tmp_path)
    assert job_id in runner.recover()
    assert runner.recover() == []  # taken once
    who = Principal(people["op"], frozenset({"operator"}))
    job = _wait(runner, job_id, who)
    assert job.status == "successful", job.message
    assert job.result is not None and job.result.rows == conn.execute(
        "SELECT count(*) FROM tourism_places").fetchone()[0]
    attempts = conn.execute("SELECT attempts FROM export_jobs WHERE id = %s", (job_id,)).fetchone()[0]
    assert attempts == 2


@pytest.mark.parametrize(("who", "roles", "layer", "attempts", "words"), [
    ("gone", ["operator"], "tourism_places", 1, ["disabled"]),
    # accepted as an operator, now only a citizen: incidents are no longer readable
    ("cit", ["operator", "citizen"], "incidents", 1, ["incidents", "not found"]),
    ("op", ["operator"], "tourism_places", jobs.MAX_ATTEMPTS, ["stopped"]),
])
def test_an_interrupted_job_runs_again_only_as_far_as_its_user_still_may(
        conn, people, tmp_path, who, roles, layer, attempts, words) -> None:
    job_id = _interrupted(conn, people[who], roles, layer, tmp_path, attempts)
    runner = jobs.ExportJobs(tmp_path)
    runner.recover()
    principal = Principal(people[who], frozenset(roles))
    job = _wait(runner, job_id, principal)
    assert job.status == "failed" and job.result is None
    for w in words:
        assert w in job.message, job.message


def _worker_process(db_url: str, queue: str) -> subprocess.Popen:
    """`geoioc worker` for QUEUE alone (this process's worker does not serve it), with a
    heartbeat every half second and stalled after two."""
    env = {**os.environ, "GEOIOC_DATABASE_URL": db_url, "GEOIOC_JOBS_HEARTBEAT_SECONDS": "0.5",
           "GEOIOC_JOBS_STALLED_SECONDS": "2", "GEOIOC_JOBS_POLL_SECONDS": "0.2"}
    geoioc = Path(sys.executable).parent / "geoioc"
    return subprocess.Popen([str(geoioc), "worker", "--queue", queue], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.mark.slow
def test_a_job_whose_worker_process_is_killed_is_taken_over_by_another(conn, db_url, people,
                                                                        tmp_path) -> None:
    """For real: a `geoioc worker` is killed (SIGKILL) in the middle of an export; the next
    worker finds the job stalled (no heartbeat) and runs it again to the end."""
    queue = f"crash-{RUN}"
    who = Principal(people["op"], frozenset({"operator"}))
    exports = jobs.ExportJobs(tmp_path, queue=queue)
    first = _worker_process(db_url, queue)
    try:
        job = exports.submit(ExportRequest("parcels", "gpkg"), who, None)
        deadline = time.monotonic() + 60
        while (exports.get(job.id, who) or job).status == "accepted":
            assert first.poll() is None and time.monotonic() < deadline, "the worker did not take the job"
            time.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    assert exports.get(job.id, who).status == "running", "the export ended before the kill: inconclusive"
    time.sleep(2.5)  # its last heartbeat is now older than jobs_stalled_seconds
    second = _worker_process(db_url, queue)  # takes over stalled jobs as it starts
    try:
        done = _wait(exports, job.id, who, seconds=120)
    finally:
        second.terminate()
        second.wait(20)
    assert done.status == "successful", done.message
    assert done.result is not None and done.result.rows == conn.execute(
        "SELECT count(*) FROM parcels").fetchone()[0]
    assert conn.execute("SELECT attempts FROM export_jobs WHERE id = %s", (job.id,)).fetchone()[0] == 2


def test_a_job_whose_queue_job_was_aborted_is_queued_again(conn, people, tmp_path) -> None:
    """A worker stopped gracefully aborts the jobs still running after its grace time; if the
    process then dies before the export ends, the upkeep queues the export again."""
    job_id = _interrupted(conn, people["op"], ["operator"], "tourism_places", tmp_path)
    conn.execute("UPDATE procrastinate_jobs SET status = 'aborted' WHERE args ->> 'job_id' = %s", (job_id,))
    runner = jobs.ExportJobs(tmp_path)
    assert job_id not in runner.recover()  # not stalled: its queue job ended (aborted)
    assert job_id in runner.requeue_orphans()
    assert job_id not in runner.requeue_orphans()  # queued once
    who = Principal(people["op"], frozenset({"operator"}))
    job = _wait(runner, job_id, who)
    assert job.status == "successful", job.message
    assert conn.execute("SELECT attempts FROM export_jobs WHERE id = %s", (job_id,)).fetchone()[0] == 2
