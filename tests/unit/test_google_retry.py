"""Retry sequencing with a fake sleep and a fixed random source."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httplib2
import pytest
from googleapiclient.errors import HttpError

from monolyth_pipelines.google.errors import ErrorCode, SyncError
from monolyth_pipelines.google.retry import Backoff, Jitter, RetryEvent, call_with_retries


def _http(status: int, reason: str | None = None, headers: dict[str, str] | None = None) -> HttpError:
    errors = [{"reason": reason, "message": "m"}] if reason else []
    body = json.dumps({"error": {"code": status, "message": "m", "errors": errors}}).encode()
    return HttpError(httplib2.Response({"status": status, **(headers or {})}), body)


def _scripted(outcomes: list[object]) -> tuple[Callable[[], object], list[int]]:
    calls: list[int] = []
    it: Iterator[object] = iter(outcomes)

    def fn() -> object:
        calls.append(1)
        outcome = next(it)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    return fn, calls


def _policy(sleeps: list[float], **kw: object) -> Backoff:
    return Backoff(random=lambda: 0.5, sleep=sleeps.append, **kw)  # type: ignore[arg-type]


def test_retries_transient_errors_then_returns_the_result() -> None:
    sleeps: list[float] = []
    events: list[RetryEvent] = []
    fn, calls = _scripted([_http(503), _http(429), _http(403, "userRateLimitExceeded"), "ok"])
    result = call_with_retries(fn, policy=_policy(sleeps, base=1.0, cap=32.0), on_retry=events.append)
    assert result == "ok"
    assert len(calls) == 4
    # full jitter with random() = 0.5: 0.5 * 1, 0.5 * 2, 0.5 * 4
    assert sleeps == [0.5, 1.0, 2.0]
    assert [e.attempt for e in events] == [1, 2, 3]
    assert [e.error.code for e in events] == [
        ErrorCode.GOOGLE_UNAVAILABLE,
        ErrorCode.RATE_LIMITED,
        ErrorCode.RATE_LIMITED,
    ]


def test_permanent_error_is_raised_at_once_and_chained() -> None:
    sleeps: list[float] = []
    original = _http(403, "insufficientPermissions")
    fn, calls = _scripted([original, "never"])
    with pytest.raises(SyncError) as caught:
        call_with_retries(fn, policy=_policy(sleeps))
    assert caught.value.code is ErrorCode.INSUFFICIENT_PERMISSIONS
    assert caught.value.__cause__ is original
    assert len(calls) == 1 and sleeps == []


def test_gives_up_after_max_attempts_with_the_last_error() -> None:
    sleeps: list[float] = []
    fn, calls = _scripted([_http(500), _http(502), _http(503), "too late"])
    with pytest.raises(SyncError) as caught:
        call_with_retries(fn, policy=_policy(sleeps, max_attempts=3))
    assert len(calls) == 3
    assert len(sleeps) == 2
    assert caught.value.status == 503
    assert caught.value.retryable  # retryable, but the budget is spent


def test_delay_is_capped() -> None:
    policy = Backoff(base=1.0, cap=8.0, random=lambda: 0.999)
    assert [round(policy.delay(n), 3) for n in range(6)] == [0.999, 1.998, 3.996, 7.992, 7.992, 7.992]
    assert policy.delay(10_000) <= 8.0  # no overflow on silly attempt counts


def test_google_jitter_grows_and_never_retries_immediately() -> None:
    policy = Backoff(base=1.0, cap=32.0, jitter=Jitter.GOOGLE, random=lambda: 0.0)
    assert [policy.delay(n) for n in range(7)] == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 32.0]
    jittered = Backoff(base=1.0, cap=32.0, jitter=Jitter.GOOGLE, random=lambda: 0.25)
    assert jittered.delay(0) == 1.25


def test_retry_after_is_a_floor_but_clamped() -> None:
    sleeps: list[float] = []
    fn, _ = _scripted(
        [_http(429, headers={"retry-after": "20"}), _http(429, headers={"retry-after": "9999"}), 1]
    )
    call_with_retries(fn, policy=_policy(sleeps, max_retry_after=60.0))
    assert sleeps == [20.0, 60.0]


def test_max_attempts_one_means_no_retry() -> None:
    sleeps: list[float] = []
    fn, calls = _scripted([_http(503), "ok"])
    with pytest.raises(SyncError):
        call_with_retries(fn, policy=_policy(sleeps, max_attempts=1))
    assert len(calls) == 1


def test_custom_classifier_decides_what_is_retryable() -> None:
    sleeps: list[float] = []
    fn, calls = _scripted([ValueError("flaky"), "ok"])

    def classify(exc: BaseException) -> SyncError:
        return SyncError(ErrorCode.GOOGLE_UNAVAILABLE, str(exc), retryable=True)

    assert call_with_retries(fn, policy=_policy(sleeps), classify=classify) == "ok"
    assert len(calls) == 2


def test_invalid_policy_is_rejected() -> None:
    with pytest.raises(ValueError):
        Backoff(max_attempts=0)
