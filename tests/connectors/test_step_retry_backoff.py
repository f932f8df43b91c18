"""Dagster's step retries back off: each transient failure that outlived the in-run retries waits
longer than the one before, by a random amount, so runs failing together in a Google outage do
not all come back at the same second."""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg
import pytest

from monolyth_pipelines.defs.connector_asset import step_retry_wait
from monolyth_pipelines.settings import RetrySettings
from tests.connectors.harness import DriveHarness

BASE = 0.4
# Every files.list call of two attempts fails (MONOLYTH_RETRY_MAX_ATTEMPTS=6 calls each); the
# third attempt, Dagster's second and last retry, succeeds.
TWO_FAILED_ATTEMPTS = range(1, 13)


def retry_waits(instance: dg.DagsterInstance, run_id: str) -> list[tuple[float, float]]:
    """(seconds Dagster was asked to wait, seconds it waited) for each step retry of the run."""
    asked: list[tuple[float, float]] = []
    restarts: list[float] = []
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type_value == "STEP_UP_FOR_RETRY":
            asked.append((event.event_specific_data.seconds_to_wait, entry.timestamp))
        elif event.event_type_value == "STEP_RESTARTED":
            restarts.append(entry.timestamp)
    assert len(restarts) == len(asked)
    return [(wait, restarted - at) for (wait, at), restarted in zip(asked, restarts, strict=True)]


def sync_failing_twice(drive: DriveHarness) -> list[tuple[float, float]]:
    drive.emulator.faults.clear()
    drive.emulator.faults.script("drive.files.list", calls=TWO_FAILED_ATTEMPTS, status=503)
    result, job = drive.sync()
    assert result.success and job.status == "completed" and job.attempts == 3
    return retry_waits(drive.instance, result.run_id)


def test_two_consecutive_transient_failures_wait_longer_the_second_time_with_jitter(
    make_drive: Callable[[int], DriveHarness], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MONOLYTH_STEP_RETRY_WAIT_SECONDS", str(BASE))
    first_account, second_account = make_drive(50), make_drive(50)
    waits = sync_failing_twice(first_account)
    [(first, waited_first), (second, waited_second)] = waits
    assert second > first, "the second retry waits longer"
    # Exponential backoff, +/- the base: 0-2x the base, then 2-4x.
    assert 0 <= first <= 2 * BASE <= second <= 4 * BASE
    assert waited_first >= first and waited_second >= second, "Dagster really waited"
    # Not the fixed 1x / 3x of plain exponential backoff, and not what another run waits.
    assert (first, second) != pytest.approx((BASE, 3 * BASE), abs=1e-6)
    other = [wait for wait, _ in sync_failing_twice(second_account)]
    assert other != pytest.approx([first, second], abs=1e-6), "two runs failing together retry apart"


def test_the_step_retry_wait_is_capped() -> None:
    retry = RetrySettings(step_retry_wait_seconds=10, step_retry_cap_seconds=25)
    waits = [step_retry_wait(2, retry) for _ in range(50)]
    assert max(waits) == 25, "20-40 s, capped at 25"
    assert min(waits) >= 20
    assert all(0 <= step_retry_wait(1, retry) <= 20 for _ in range(50))
    assert step_retry_wait(1, RetrySettings(step_retry_wait_seconds=0)) == 0
