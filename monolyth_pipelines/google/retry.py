"""Retrying Google calls with capped, jittered exponential backoff.

We do not use ``HttpRequest.execute(num_retries=...)``: its sleep before retry k is
``random() * 2**k`` with no cap and no Retry-After, and it cannot tell us it is retrying. Call
``execute()`` with the default ``num_retries=0`` inside ``call_with_retries`` so the two never
stack (the authorized transport's own 401 refresh-and-resend is separate and fine).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

from monolyth_pipelines.errors import ErrorCode, SyncError
from monolyth_pipelines.google.errors import classify_exception

T = TypeVar("T")


class Jitter(StrEnum):
    # AWS "full jitter": uniform in [0, min(cap, base * 2**n)]. Best at spreading many clients.
    FULL = "full"
    # Google's recommendation: min(base * 2**n + uniform[0, 1) s, cap). Never retries at once,
    # which suits per-minute quota windows.
    GOOGLE = "google"


@dataclass(frozen=True)
class Backoff:
    """Retry policy. ``max_attempts`` counts the first call, so 1 means "never retry".

    ``random`` and ``sleep`` are injectable so tests run instantly and deterministically.
    """

    base: float = 1.0
    cap: float = 32.0
    max_attempts: int = 6
    jitter: Jitter = Jitter.FULL
    # A Retry-After larger than this is clamped: a run should fail visibly, not hang for hours.
    max_retry_after: float = 120.0
    random: Callable[[], float] = field(default=random.random, repr=False, compare=False)
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base < 0 or self.cap < 0:
            raise ValueError("base and cap must not be negative")

    def delay(self, retry_number: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry ``retry_number`` (0 for the first retry).

        A server's Retry-After is a floor: waiting less would just burn an attempt.
        """
        exponential = self.base * (2 ** min(retry_number, 62))
        if self.jitter is Jitter.GOOGLE:
            computed = min(exponential + self.random(), self.cap)
        else:
            computed = self.random() * min(self.cap, exponential)
        if retry_after is not None:
            computed = max(computed, min(retry_after, self.max_retry_after))
        return computed


@dataclass(frozen=True, slots=True)
class RetryEvent:
    """Passed to ``on_retry`` before each sleep, e.g. to count or log retries."""

    attempt: int  # the attempt that just failed, 1-based
    delay: float  # seconds about to be slept
    error: SyncError


def call_with_retries(
    fn: Callable[[], T],
    *,
    policy: Backoff,
    classify: Callable[[BaseException], SyncError | None] = classify_exception,
    on_retry: Callable[[RetryEvent], None] | None = None,
) -> T:
    """``fn()``, retried while it fails with a retryable error, up to ``policy.max_attempts``.

    Raises the classified ``SyncError`` (chained to the original exception) as soon as an
    error is permanent or the attempts are used up. An error ``classify`` does not claim (None)
    propagates unchanged.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except Exception as exc:
            error = classify(exc)
            if error is None:
                raise
            if not error.retryable or attempt >= policy.max_attempts:
                if error is exc:
                    raise
                raise error from exc
            delay = policy.delay(attempt - 1, error.retry_after)
            if on_retry is not None:
                on_retry(RetryEvent(attempt=attempt, delay=delay, error=error))
            policy.sleep(delay)


def expect_json_object(result: T) -> T:
    """An API answer as the client returns it: a JSON object, or bytes for media. The client
    hands back a body that is not JSON as a plain string (a proxy's error page, a truncated
    answer): that is a transient ``bad_response``, retried like a 5xx, never a crash later on."""
    if isinstance(result, dict | bytes):
        return result
    shown = repr(result)[:80]
    raise SyncError(
        ErrorCode.BAD_RESPONSE,
        f"Google answered with a body that is not a JSON object: {shown}",
        retryable=True,
    )
