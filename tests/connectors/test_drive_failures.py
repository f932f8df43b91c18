"""What a user sees when Google misbehaves: retries that heal, failures that say why, no secrets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from monolyth_pipelines.settings import DriveLimits
from monolyth_pipelines.store import accounts, events
from monolyth_pipelines.store.schema import activity_log, connector_files, connector_jobs
from tests.connectors.harness import DriveHarness, comparable, expected_rows
from tests.grants import client_secrets_of


def test_one_call_in_five_failing_still_gives_the_clean_table(
    make_drive: Callable[[int], DriveHarness],
) -> None:
    # Vault mode, so the run makes hundreds of calls (one export or download per file), not three.
    drive = make_drive(400)
    config = {"ops": {"google_drive_files": {"config": {"persistence": "vault"}}}}
    rule = drive.emulator.faults.error_rate(0.2, statuses=(503, 429), account=drive.account.email)
    result, job = drive.sync(config)
    assert result.success and job.status == "completed"
    assert rule.fired > 20
    assert job.meta_json["counters"]["retries"] == rule.fired
    assert comparable(drive.rows()) == expected_rows(drive.drive.files(), DriveLimits())
    # Every stored file got its content, or a reason why not; no fault left a hole.
    counters = job.meta_json["counters"]
    assert counters["vault_imported"] + counters["skipped"].get("export_limit", 0) == len(drive.rows())


def test_persistent_server_errors_fail_the_job_the_event_and_the_run(drive: DriveHarness) -> None:
    drive.emulator.faults.script("drive.files.list", every=True, status=500)
    result, job = drive.sync()
    assert not result.success
    assert job.status == "failed" and job.finished_at is not None
    assert job.last_error.startswith("google_unavailable:")
    # Transient errors are retried by Dagster too: every attempt is counted on the same row.
    assert job.attempts == 3
    with drive.engine.connect() as conn:
        logged = [
            e
            for e in events.events_for(conn, account_id=drive.account_id)
            if e["event"] != "connector_account_connected"
        ]
    assert [e["event"] for e in logged] == ["connector_sync_started", "connector_sync_failed"]
    failed = logged[-1]["payload"]
    assert failed["error_code"] == "google_unavailable" and failed["run_id"] == result.dagster_run.run_id
    assert failed["error_msg"]


def _all_stored_text(drive: DriveHarness) -> str:
    """Everything we persisted except token_json itself, which is where tokens belong."""
    parts = []
    with drive.engine.connect() as conn:
        for table in (connector_jobs, activity_log, connector_files):
            parts += [json.dumps(dict(r._mapping), default=str) for r in conn.execute(sa.select(table))]
        account_cols = [c for c in accounts.connector_accounts.c if c.name != "token_json"]
        parts += [json.dumps(dict(r._mapping), default=str) for r in conn.execute(sa.select(*account_cols))]
    return "\n".join(parts)


def test_a_revoked_grant_marks_the_account_and_leaks_no_secret(
    drive: DriveHarness, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    with drive.engine.connect() as conn:
        token_json = accounts.get_token_json(conn, drive.account_id)
    assert token_json
    secrets = [token_json["token"], token_json["refresh_token"], *client_secrets_of(token_json)]
    assert len(secrets) == 3
    drive.emulator.revoke(drive.account)

    result, job = drive.sync()
    assert not result.success
    assert job.status == "failed" and job.last_error.startswith("auth_revoked:")
    assert job.attempts == 1, "a revoked grant is permanent: no retry"
    with drive.engine.connect() as conn:
        assert accounts.get_account(conn, drive.account_id).status == "error"
        failed = [
            e
            for e in events.events_for(conn, account_id=drive.account_id)
            if e["event"] == "connector_sync_failed"
        ]
    assert [e["payload"]["error_code"] for e in failed] == ["auth_revoked"]

    dagster_logs = "\n".join(repr(entry) for entry in drive.instance.all_logs(result.dagster_run.run_id))
    assert "auth_revoked" in dagster_logs
    out, err = capfd.readouterr()
    for haystack in (_all_stored_text(drive), dagster_logs, caplog.text, out, err):
        for secret in secrets:
            assert secret not in haystack


def test_a_killed_sync_is_finished_by_the_next_run_without_duplicates_or_loss(
    drive: DriveHarness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Slow pages so the process is surely killed between two page commits.
    drive.emulator.faults.latency(0.5, endpoint="drive.files.list")
    env = {
        **os.environ,
        "MONOLYTH_DATABASE_URL": drive.db_url,
        "MONOLYTH_DATA_DIR": str(tmp_path),
        "MONOLYTH_GOOGLE_API_ENDPOINT": drive.base_url,
        "MONOLYTH_GOOGLE_TOKEN_URI": f"{drive.base_url}/token",
    }
    env.pop("DAGSTER_HOME", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "monolyth_pipelines.cli",
            "sync",
            "google_drive",
            "--account",
            str(drive.account_id),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if drive.rows():
                break
            assert proc.poll() is None, "the sync ended before it could be killed"
            time.sleep(0.05)
        else:
            pytest.fail("the first page never landed")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with drive.engine.connect() as conn:
        killed = conn.execute(
            sa.select(connector_jobs).where(connector_jobs.c.account_id == drive.account_id)
        ).one()
    assert killed.status == "running"
    partial = len(drive.rows())

    # The killed run lived in another Dagster instance (the CLI's), so only its silence can tell
    # it dead: the next run takes the job over once the heartbeat is older than the stale timeout.
    monkeypatch.setenv("MONOLYTH_STALE_JOB_SECONDS", "1")
    time.sleep(1.5)
    drive.emulator.faults.clear()
    result, job = drive.sync()
    assert result.success and job.status == "completed" and job.id != killed.id
    expected = expected_rows(drive.drive.files(), DriveLimits())
    assert comparable(drive.rows()) == expected
    assert job.meta_json["counters"]["inserted"] == len(expected) - partial  # resumed, not restarted
    with drive.engine.connect() as conn:
        reaped = conn.execute(sa.select(connector_jobs).where(connector_jobs.c.id == killed.id)).one()
        assert conn.execute(sa.select(sa.func.count()).select_from(connector_files)).scalar_one() == len(
            expected
        )
        failed = [
            e["payload"]
            for e in events.events_for(conn, account_id=drive.account_id)
            if e["event"] == "connector_sync_failed"
        ]
    assert reaped.status == "failed" and reaped.last_error.startswith("run_died")
    assert [f["run_id"] for f in failed] == [killed.run_id]


def test_a_permanent_permission_error_fails_at_once_without_retry(drive: DriveHarness) -> None:
    rule = drive.emulator.faults.script(
        "drive.files.list", every=True, status=403, reason="insufficientPermissions"
    )
    result, job = drive.sync()
    assert not result.success
    assert rule.fired == 1, "a permanent error is not retried, neither per call nor by Dagster"
    assert job.status == "failed" and job.attempts == 1
    assert job.last_error.startswith("insufficient_permissions:")
    with drive.engine.connect() as conn:
        assert accounts.get_account(conn, drive.account_id).status == "connected"


def test_a_failure_after_the_job_completed_does_not_sync_twice(
    drive: DriveHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from monolyth_pipelines.defs import connector_asset

    def broken(*args: object) -> None:
        raise sa.exc.OperationalError("SELECT", {}, Exception("connection reset"))

    monkeypatch.setattr(connector_asset, "materialization_metadata", broken)
    result, job = drive.sync()
    assert result.success and job.status == "completed" and job.attempts == 1
    with drive.engine.connect() as conn:
        logged = [e["event"] for e in events.events_for(conn, account_id=drive.account_id)]
    assert logged.count("connector_sync_completed") == 1 and logged.count("connector_sync_started") == 1


def test_a_step_retry_resumes_and_its_counters_cover_the_whole_run(drive: DriveHarness) -> None:
    # Page 2 of the listing fails six times in a row: the first attempt gives up after page 1,
    # Dagster retries the step, the retry resumes at page 2.
    drive.emulator.faults.script("drive.files.list", calls=range(2, 8), status=503)
    result, job = drive.sync()
    assert result.success and job.status == "completed" and job.attempts == 2
    expected = expected_rows(drive.drive.files(), DriveLimits())
    assert comparable(drive.rows()) == expected
    counters = job.meta_json["counters"]
    assert counters["inserted"] == len(expected)
    assert counters["seen"] == counters["inserted"] + counters["skipped_total"]
    with drive.engine.connect() as conn:
        logged = events.events_for(conn, account_id=drive.account_id)
    completed = [e["payload"] for e in logged if e["event"] == "connector_sync_completed"]
    assert [c["file_count"] for c in completed] == [len(expected)]
    assert [e["event"] for e in logged].count("connector_sync_started") == 1


def test_vault_mode_without_content_access_warns_instead_of_a_quiet_success(
    make_drive: Callable[[int], DriveHarness],
) -> None:
    drive = make_drive(200)
    for endpoint in ("drive.files.export", "drive.files.get_media"):
        drive.emulator.faults.script(endpoint, every=True, status=403, reason="insufficientPermissions")
    result, job = drive.sync({"ops": {"google_drive_files": {"config": {"persistence": "vault"}}}})
    assert result.success, "metadata still syncs"
    counters = job.meta_json["counters"]
    assert counters["vault_imported"] == 0 and counters["skipped"]["no_permission"] > 0
    assert any("no content could be fetched" in w for w in counters["warnings"])
    (check,) = result.get_asset_check_evaluations()
    assert not check.passed
