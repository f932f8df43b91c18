"""Re-auth, disconnect and the CLI connect, over the emulator's HTTP and Dagster's local instance."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import requests
import sqlalchemy as sa

from monolyth_pipelines.cli import main
from monolyth_pipelines.defs import automation
from monolyth_pipelines.defs.local_run import local_instance, materialize_account
from monolyth_pipelines.defs.resources import DatabaseResource
from monolyth_pipelines.store import accounts, jobs
from monolyth_pipelines.store.schema import (
    connector_accounts,
    connector_files,
    connector_jobs,
    connector_sync_state,
    vault_documents,
)
from tests.accounts.conftest import OAuthWorld
from tests.orchestration.helpers import sync_now, tick


def _sync(world: OAuthWorld, account_id: uuid.UUID, instance: dg.DagsterInstance) -> jobs.Job:
    result = materialize_account("google_drive", account_id, instance=instance)
    with world.engine.connect() as conn:
        return next(
            j for j in jobs.jobs_for_account(conn, account_id) if j.run_id == result.dagster_run.run_id
        )


def _account(world: OAuthWorld, account_id: uuid.UUID) -> accounts.Account:
    with world.engine.connect() as conn:
        account = accounts.get_account(conn, account_id)
    assert account is not None
    return account


def _revoke_on_next_api_call(world: OAuthWorld, email: str) -> None:
    """Revoke the grant at the emulator while a sync is under way: as its next API call arrives."""
    oauth = world.emulator.oauth
    lookup = oauth.lookup
    armed = [True]

    def looking_up(token: str | None) -> Any:
        if armed[0] and token:
            armed[0] = False
            world.emulator.revoke(email)
        return lookup(token)

    oauth.lookup = looking_up  # type: ignore[method-assign]


def test_a_grant_revoked_during_a_sync_needs_reauth_until_a_reconnect(
    oauth_world: OAuthWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    instance = local_instance()
    connected = oauth_world.connect()
    assert _sync(oauth_world, connected.account_id, instance).status == "completed"

    _revoke_on_next_api_call(oauth_world, "ada@example.com")
    oauth_world.emulator.reset_stats()
    failed = _sync(oauth_world, connected.account_id, instance)
    assert failed.status == "failed" and failed.last_error and failed.last_error.startswith("auth_revoked")
    assert failed.attempts == 1  # not retried: only a reconnect helps
    token_calls = oauth_world.emulator.stats_total()["api_calls"].get("oauth.token", 0)
    assert token_calls <= 2
    account = _account(oauth_world, connected.account_id)
    assert (account.status, account.status_reason) == ("error", "needs_reauth")
    assert account.status_message and "reconnect" in account.status_message
    assert main(["accounts", "list"]) == 0
    assert "needs_reauth" in capsys.readouterr().out

    # Neither the schedule nor the Sync-now sensor starts anything for it; the tick says so.
    auto = automation.build_automation(automation.enabled_automations())
    db = DatabaseResource()
    schedule = next(s for s in auto.schedules if s.name == "google_drive_scheduled_sync")
    later = datetime.now(UTC) + timedelta(hours=2)
    with dg.build_schedule_context(
        instance=instance, resources={"db": db}, scheduled_execution_time=later
    ) as context:
        skipped = schedule(context)
    assert "skipped 1 account(s) in error" in (skipped.skip_message or "")
    sync_now(oauth_world.engine, connected.account_id)
    requests_sensor = next(s for s in auto.sensors if s.name == "connector_sync_requests")
    result = tick(requests_sensor, instance, db)
    assert not result.run_requests
    with oauth_world.engine.connect() as conn:
        assert [j.status for j in jobs.jobs_for_account(conn, connected.account_id)][-1] == "failed"

    # Reconnecting (a new consent) puts it back to connected, asks for a sync, and it syncs.
    again = oauth_world.connect()
    assert again.account_id == connected.account_id and again.status == "connected"
    account = _account(oauth_world, connected.account_id)
    assert (account.status, account.status_reason, account.status_message) == ("connected", None, None)
    result = tick(requests_sensor, instance, db)
    # The account synced before: its provider's batch run takes the sync.
    assert [r.job_name for r in result.run_requests] == ["google_drive_batch_sync"]
    assert _sync(oauth_world, connected.account_id, instance).status == "completed"


def test_disconnect_revokes_the_grant_forgets_tokens_and_fails_pending_jobs(
    oauth_world: OAuthWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    connected = oauth_world.connect()
    pending = sync_now(oauth_world.engine, connected.account_id)
    assert main(["accounts", "disconnect", str(connected.account_id)]) == 0
    out = capsys.readouterr().out
    assert "revoked" in out
    assert [(r["email"], r["ok"]) for r in oauth_world.emulator.revocations()] == [("ada@example.com", True)]
    # Over HTTP too, as a test of an emulator served by the CLI would read it.
    assert requests.get(f"{oauth_world.base_url}/_emulator/oauth/revocations", timeout=5).json()[0]["ok"]
    with oauth_world.engine.connect() as conn:
        stored = conn.execute(
            sa.select(connector_accounts.c.token_json, connector_accounts.c.status).where(
                connector_accounts.c.id == connected.account_id
            )
        ).one()
        job = jobs.get_job(conn, pending) if pending else None
    assert stored == (None, "disconnected")
    with oauth_world.engine.connect() as conn:  # SQL NULL, as the app's query finds it, not JSON null
        nulls = conn.execute(sa.text("SELECT count(*) FROM connector_accounts WHERE token_json IS NULL"))
        assert nulls.scalar_one() == 1
    assert job is not None and job.status == "failed" and "disconnected" in (job.last_error or "")


def test_disconnect_purge_leaves_no_row_of_the_accounts_data(oauth_world: OAuthWorld) -> None:
    instance = local_instance()
    connected = oauth_world.connect()
    assert _sync(oauth_world, connected.account_id, instance).status == "completed"

    def counts() -> dict[str, int]:
        with oauth_world.engine.connect() as conn:
            return {
                t.name: conn.execute(
                    sa.select(sa.func.count()).select_from(t).where(t.c.account_id == connected.account_id)
                ).scalar_one()
                for t in (connector_files, connector_sync_state, connector_jobs, vault_documents)
            }

    assert counts()["connector_files"] > 0 and counts()["connector_sync_state"] > 0
    assert main(["accounts", "disconnect", str(connected.account_id), "--purge"]) == 0
    assert counts() == {
        "connector_files": 0,
        "connector_sync_state": 0,
        "connector_jobs": 0,
        "vault_documents": 0,
    }


def test_disconnect_without_purge_keeps_the_data_and_a_reconnect_resumes_from_the_cursor(
    oauth_world: OAuthWorld,
) -> None:
    instance = local_instance()
    connected = oauth_world.connect()
    assert _sync(oauth_world, connected.account_id, instance).status == "completed"
    assert main(["accounts", "disconnect", str(connected.account_id)]) == 0
    oauth_world.connect()
    resumed = _sync(oauth_world, connected.account_id, instance)
    assert resumed.status == "completed"
    assert (resumed.meta_json or {})["counters"]["mode"] == "incremental"


def test_cli_connect_with_the_loopback_redirect(
    oauth_world: OAuthWorld, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []

    def browser(url: str) -> bool:  # the user's browser: consent, then follow the redirect home
        opened.append(url)
        assert requests.get(url, timeout=10).status_code == 200
        return True

    monkeypatch.setattr("webbrowser.open", browser)
    owner = str(uuid.uuid4())
    args = ["accounts", "connect", "--provider", "google_drive", "--owner", owner, "--timeout", "20"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert opened and opened[0] in out and "code_challenge=" in opened[0]
    assert "connected: ada@example.com" in out
    # Twice: the same row, reconnected.
    assert main(args) == 0
    assert "reconnected" in capsys.readouterr().out
    with oauth_world.engine.connect() as conn:
        assert len(accounts.list_accounts(conn)) == 1


def test_cli_connect_with_a_client_secrets_file_and_a_pasted_redirect(
    oauth_world: OAuthWorld,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import json

    secrets_file = tmp_path / "client_secret.json"
    secrets_file.write_text(json.dumps(oauth_world.emulator.oauth_client_secrets()))
    monkeypatch.delenv("MONOLYTH_GOOGLE_CLIENT_ID")
    monkeypatch.delenv("MONOLYTH_GOOGLE_CLIENT_SECRET")

    def paste(prompt: str) -> str:
        url = capsys.readouterr().out.strip().splitlines()[-1]
        answer = requests.get(url, allow_redirects=False, timeout=10)
        return answer.headers["Location"]

    monkeypatch.setattr("builtins.input", paste)
    owner = str(uuid.uuid4())
    argv = ["accounts", "connect", "--provider", "google_drive", "--owner", owner]
    assert main([*argv, "--client-secrets", str(secrets_file), "--paste"]) == 0
    assert "connected: ada@example.com" in capsys.readouterr().out


def test_disconnect_terminates_the_run_holding_its_job(oauth_world: OAuthWorld) -> None:
    from dagster._core.test_utils import create_run_for_test

    from monolyth_pipelines.defs.partitions import TAG_JOB_ID
    from monolyth_pipelines.store.jobs import start_job

    connected = oauth_world.connect()
    job_id = sync_now(oauth_world.engine, connected.account_id)
    assert job_id is not None
    instance = local_instance()
    run = create_run_for_test(
        instance,
        job_name="google_drive_sync",
        status=dg.DagsterRunStatus.STARTED,
        tags={TAG_JOB_ID: str(job_id), "dagster/partition": str(connected.account_id)},
    )
    with oauth_world.engine.begin() as conn:
        start_job(
            conn,
            account_id=connected.account_id,
            kind="drive_import",
            run_id=run.run_id,
            attempt=1,
            job_id=job_id,
        )
    assert main(["accounts", "disconnect", str(connected.account_id)]) == 0
    stopped = instance.get_run_by_id(run.run_id)
    # Termination was asked of Dagster (this test run has no worker process to receive it).
    assert stopped is not None and stopped.status in (
        dg.DagsterRunStatus.CANCELING,
        dg.DagsterRunStatus.CANCELED,
    )
    with oauth_world.engine.connect() as conn:
        job = jobs.get_job(conn, job_id)
    assert job is not None and job.status == "failed" and "disconnected" in (job.last_error or "")


def test_disconnecting_drive_keeps_the_same_users_gmail_syncing(oauth_world: OAuthWorld) -> None:
    from monolyth_pipelines.accounts.disconnect import disconnect

    instance = local_instance()
    drive = oauth_world.connect("google_drive")
    gmail = oauth_world.connect("gmail")  # incremental: the same grant of ada to the client
    result = disconnect(oauth_world.engine, drive.account_id)
    assert not result.revoked and oauth_world.emulator.revocations() == []
    run = materialize_account("gmail", gmail.account_id, instance=instance)
    assert run.success
    # The last account on the grant revokes it at Google.
    assert disconnect(oauth_world.engine, gmail.account_id).revoked
    assert [(r["email"], r["ok"]) for r in oauth_world.emulator.revocations()] == [("ada@example.com", True)]
