"""Bad input never costs data: invalid settings and mass tombstones are refused before any write."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from monolyth_pipelines.settings import PDF_MIME, DriveLimits
from monolyth_pipelines.store import events
from monolyth_pipelines.store.schema import connector_jobs, connector_sync_state
from tests.connectors.harness import DriveHarness, comparable, expected_rows

# With the emulator's seed 11, 523 files hold exactly 253 the default limits keep: the report's account.
REPORTED_FILES = 523


def _config(**values: object) -> dict[str, Any]:
    return {"ops": {"google_drive_files": {"config": values}}}


def _state(drive: DriveHarness) -> list[dict[str, Any]]:
    with drive.engine.connect() as conn:
        rows = conn.execute(
            sa.select(connector_sync_state).where(connector_sync_state.c.account_id == drive.account_id)
        )
        return [dict(r._mapping) for r in rows]


def _events(drive: DriveHarness) -> list[str]:
    with drive.engine.connect() as conn:
        return [e["event"] for e in events.events_for(conn, account_id=drive.account_id)]


def _job_count(drive: DriveHarness) -> int:
    with drive.engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.count())
            .select_from(connector_jobs)
            .where(connector_jobs.c.account_id == drive.account_id)
        ).scalar_one()


def test_the_reported_typo_in_supported_mime_types_tombstones_nothing_and_keeps_the_cursor(
    make_drive: Callable[[int], DriveHarness], monkeypatch: pytest.MonkeyPatch
) -> None:
    drive = make_drive(REPORTED_FILES)
    first, _ = drive.sync()
    assert first.success and len(drive.rows()) == 253
    rows_before, state_before = drive.rows(), _state(drive)
    events_before = _events(drive)

    monkeypatch.setenv("SUPPORTED_MIME_TYPES", ",")
    result, job = drive.sync()

    assert not result.success
    assert job.status == "failed" and job.attempts == 1, "a bad setting is not retried"
    assert job.last_error.startswith("bad_config: SUPPORTED_MIME_TYPES: is empty")
    assert drive.tombstones() == {} and drive.rows() == rows_before
    assert _state(drive) == state_before, "the cursor is kept"
    assert _events(drive) == [*events_before, "connector_sync_started", "connector_sync_failed"]


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("DRIVE_PERSISTENCE", "vualt", "DRIVE_PERSISTENCE: must be one of metadata, vault, got 'vualt'"),
        ("MAX_FILES_PER_RUN", "0", "MAX_FILES_PER_RUN: must be at least 1, got 0"),
        ("MAX_FILE_SIZE_MB", "-5", "MAX_FILE_SIZE_MB: must be greater than 0"),
        ("SUPPORTED_MIME_TYPES", "pdf", "SUPPORTED_MIME_TYPES: 'pdf' is not a MIME type"),
        ("MONOLYTH_STALE_JOB_SECONDS", "0", "MONOLYTH_STALE_JOB_SECONDS: must be greater than 0"),
        ("MONOLYTH_MASS_TOMBSTONE_SHARE", "1.5", "MONOLYTH_MASS_TOMBSTONE_SHARE: must be at most 1"),
    ],
)
def test_a_bad_environment_value_fails_once_as_bad_config_and_writes_only_the_job(
    make_drive: Callable[[int], DriveHarness],
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    problem: str,
) -> None:
    drive = make_drive(50)
    monkeypatch.setenv(variable, value)
    result, job = drive.sync()
    assert not result.success
    assert job.status == "failed" and job.attempts == 1
    assert job.last_error.startswith(f"bad_config: {problem}")
    assert drive.rows(live_only=False) == {} and _state(drive) == []
    assert drive.api_requests() == 0, "nothing was asked of Google either"


def test_bad_launchpad_config_is_named_by_its_config_path(drive: DriveHarness) -> None:
    result, job = drive.sync(_config(max_files_per_run=-1))
    assert not result.success and job.attempts == 1
    assert job.last_error.startswith(
        "bad_config: ops.google_drive_files.config.max_files_per_run: must be at least 1, got -1"
    )
    result, job = drive.sync(_config(supported_mime_types=[]))
    assert job.last_error.startswith(
        "bad_config: ops.google_drive_files.config.supported_mime_types: is empty"
    )
    assert drive.rows(live_only=False) == {}


def test_a_settings_change_that_would_tombstone_most_rows_waits_for_confirmation(
    make_drive: Callable[[int], DriveHarness],
) -> None:
    drive = make_drive(400)
    drive.sync()
    live = drive.rows()
    not_pdf = {k for k, v in live.items() if v["mime"] != PDF_MIME}
    assert len(not_pdf) > len(live) / 2
    state_before, jobs_before = _state(drive), _job_count(drive)

    result, job = drive.sync(_config(supported_mime_types=[PDF_MIME]))
    assert not result.success and job.status == "failed" and job.attempts == 1
    assert job.last_error.startswith("bad_config: the settings change (supported_mime_types) would tombstone")
    assert f"{len(not_pdf)} of the account's {len(live)} live rows" in job.last_error
    assert "--allow-mass-tombstone" in job.last_error
    assert drive.rows() == live and drive.tombstones() == {} and _state(drive) == state_before
    assert _job_count(drive) == jobs_before + 1

    # Still refused next time (the last completed run's settings did not change) until confirmed.
    result, job = drive.sync(_config(supported_mime_types=[PDF_MIME]))
    assert not result.success
    result, job = drive.sync(_config(supported_mime_types=[PDF_MIME], allow_mass_tombstone=True))
    assert result.success and job.status == "completed"
    assert set(drive.tombstones()) == not_pdf
    assert comparable(drive.rows()) == expected_rows(
        drive.drive.files(), DriveLimits(supported_mime_types=(PDF_MIME,))
    )


def test_a_small_settings_change_needs_no_confirmation(make_drive: Callable[[int], DriveHarness]) -> None:
    drive = make_drive(400)
    drive.sync()
    narrowed = [m for m in DriveLimits().supported_mime_types if m != PDF_MIME]
    pdfs = {k for k, v in drive.rows().items() if v["mime"] == PDF_MIME}
    assert 0 < len(pdfs) < len(drive.rows()) / 2
    result, _ = drive.sync(_config(supported_mime_types=narrowed))
    assert result.success and set(drive.tombstones()) == pdfs
