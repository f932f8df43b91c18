"""The activity events say what happened: how long the whole job took, and how many items it
wrote, as docs/ACTIVITY_EVENTS.md defines them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from monolyth_pipelines.defs import connector_asset
from monolyth_pipelines.settings import DriveLimits
from monolyth_pipelines.store import events
from tests.connectors.harness import DriveHarness, expected_rows


def sync_events(drive: DriveHarness, name: str) -> list[dict[str, Any]]:
    with drive.engine.connect() as conn:
        return [
            e["payload"] for e in events.events_for(conn, account_id=drive.account_id) if e["event"] == name
        ]


def test_duration_covers_the_whole_job_with_its_step_retry_and_wait(
    make_drive: Callable[[int], DriveHarness], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fixed wait: the jittered one (0-3 s over this base) has its own tests
    # (tests/connectors/test_step_retry_backoff.py), and here the wait must be known to be counted.
    monkeypatch.setattr(connector_asset, "step_retry_wait", lambda _attempt, _retry: 1.5)
    drive = make_drive(2500)
    # The second listing page fails past the in-run retries: Dagster retries the step.
    drive.emulator.faults.script("drive.files.list", calls=range(2, 8), status=503)
    result, job = drive.sync()
    assert result.success and job.status == "completed" and job.attempts == 2
    [completed] = sync_events(drive, "connector_sync_completed")
    whole_job_ms = (job.finished_at - job.started_at).total_seconds() * 1000
    assert completed["duration_ms"] >= 1500, "the wait between the attempts is part of the job"
    assert abs(completed["duration_ms"] - whole_job_ms) < 500
    assert job.meta_json["duration_ms"] == completed["duration_ms"]


def test_file_count_is_the_items_written_and_kept_live(make_drive: Callable[[int], DriveHarness]) -> None:
    drive = make_drive(300)
    result, first = drive.sync()
    assert result.success
    expected = expected_rows(drive.drive.files(), DriveLimits())
    counters = first.meta_json["counters"]
    [full] = sync_events(drive, "connector_sync_completed")
    # A first sync: every live row it stored, and nothing it skipped.
    assert full["file_count"] == len(drive.rows()) == len(expected) == counters["inserted"]
    assert counters["skipped_total"] > 0

    stored = sorted(drive.rows())
    for file_id in stored[:3]:
        drive.drive.modify(file_id)
    drive.drive.trash(stored[3])
    result, second = drive.sync()
    assert result.success and second.meta_json["counters"]["mode"] == "incremental"
    counters = second.meta_json["counters"]
    incremental = sync_events(drive, "connector_sync_completed")[-1]
    # Three changed files upserted; the trashed one is a tombstone, not counted.
    assert (
        incremental["file_count"] == 3 == counters["inserted"] + counters["updated"] + counters["unchanged"]
    )
    assert counters["tombstoned_total"] == 1

    result, _ = drive.sync()
    assert sync_events(drive, "connector_sync_completed")[-1]["file_count"] == 0, "nothing changed"
