"""Exponential backoff read from the settings when a job fails, not when the task is defined.

procrastinate's own RetryStrategy computes `exponential_wait ** (attempts + 1)` in whole
seconds (2, 4, 8 ... at the least), fixed when the module is imported. A delivery retried for
hours in production has to be retried within a second in a test, from the same code: this
strategy (a procrastinate BaseRetryStrategy, so the worker applies it as it applies its own)
reads `first`, `longest` and the number of attempts from gis.settings each time it decides.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from procrastinate import BaseRetryStrategy, RetryDecision
from procrastinate.jobs import Job


@dataclass(frozen=True)
class Backoff:
    max_attempts: int  # runs in all, the first included
    first: float  # seconds before the second run
    longest: float  # the wait doubles up to this

    def wait(self, runs_done: int) -> float:
        """Seconds to wait after the RUNS_DONE-th run failed."""
        return min(self.longest, self.first * float(2 ** max(0, runs_done - 1)))


class SettingsBackoff(BaseRetryStrategy):
    def __init__(self, read: Callable[[], Backoff]) -> None:
        self.read = read

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        policy = self.read()
        # procrastinate counts the runs before this one in job.attempts (it adds one per retry,
        # an admin's replay included): this run is number attempts + 1.
        runs_done = job.attempts + 1
        if runs_done >= policy.max_attempts:
            return None  # the job ends `failed`: a dead letter
        at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=policy.wait(runs_done))
        return RetryDecision(retry_at=at)
