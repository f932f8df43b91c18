"""A busy account is a clear refusal at the command line, not a failed sync with two tracebacks."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from monolyth_pipelines.cli import main
from monolyth_pipelines.cli_outcome import EXIT_BUSY
from monolyth_pipelines.emulator import GoogleEmulator
from monolyth_pipelines.store import events, jobs
from monolyth_pipelines.sync.run import RunIdentity, SyncRun
from tests.test_cli import _token_file, cli_env  # noqa: F401 (fixture)


def _hold(engine: sa.Engine, account_id: str, run_id: str) -> jobs.Job:
    """A job held by a run this CLI's Dagster instance has never heard of, alive a moment ago."""
    identity = RunIdentity(
        account_id=uuid.UUID(account_id), provider="google_drive", kind="drive_import", run_id=run_id
    )
    return SyncRun(engine, identity, settings_meta={}).start()


def _add_account(token_file: Path, capfd: pytest.CaptureFixture[str]) -> str:
    args = ["accounts", "add", "--provider", "google_drive", "--owner", str(uuid.uuid4())]
    assert main([*args, "--token-file", str(token_file)]) == 0
    return capfd.readouterr().out.strip().splitlines()[-1]


def _events(engine: sa.Engine, account_id: str) -> list[str]:
    with engine.connect() as conn:
        return [e["event"] for e in events.events_for(conn, account_id=uuid.UUID(account_id))]


def test_a_second_sync_of_a_busy_account_says_who_holds_it_and_until_when(
    cli_env: tuple[GoogleEmulator, str],  # noqa: F811
    engine: sa.Engine,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    emulator, base_url = cli_env
    account_id = _add_account(_token_file(tmp_path, emulator, base_url), capfd)
    held = _hold(engine, account_id, "daemon-run-1")
    before = _events(engine, account_id)
    capfd.readouterr()

    assert main(["sync", "google_drive", "--account", account_id]) == EXIT_BUSY
    out, err = capfd.readouterr()
    lines = out.strip().splitlines()
    assert len(lines) == 1, out
    assert lines[0].startswith(
        f"account busy: job {held.id} is running in run daemon-run-1, last seen alive "
    )
    assert "it is taken over if that run shows no sign of life until " in lines[0]
    assert "(MONOLYTH_STALE_JOB_SECONDS=600)" in lines[0]
    assert "Traceback" not in out + err and "Stack Trace" not in out + err
    # Not a failed sync: no job opened, nothing logged, the holder's row untouched.
    with engine.connect() as conn:
        assert [(j.id, j.status, j.run_id) for j in jobs.jobs_for_account(conn, uuid.UUID(account_id))] == [
            (held.id, "running", "daemon-run-1")
        ]
    assert _events(engine, account_id) == before

    # --verbose shows Dagster's own account of it, stack trace included.
    assert main(["sync", "google_drive", "--account", account_id, "--verbose"]) == EXIT_BUSY
    out, err = capfd.readouterr()
    assert "Stack Trace" in out + err and "account busy" in out + err


def test_a_stale_holder_is_taken_over_as_before(
    cli_env: tuple[GoogleEmulator, str],  # noqa: F811
    engine: sa.Engine,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emulator, base_url = cli_env
    account_id = _add_account(_token_file(tmp_path, emulator, base_url), capfd)
    held = _hold(engine, account_id, "killed-run")
    monkeypatch.setenv("MONOLYTH_STALE_JOB_SECONDS", "1")
    time.sleep(1.5)
    assert main(["sync", "google_drive", "--account", account_id]) == 0
    with engine.connect() as conn:
        reaped = jobs.get_job(conn, held.id)
    assert (
        reaped is not None and reaped.status == "failed" and (reaped.last_error or "").startswith("run_died")
    )
