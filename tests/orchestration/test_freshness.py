"""Freshness at scale: the change probe before scheduled runs, over the emulator's HTTP, through
the real sensor daemon and run queue (SQLite and Postgres)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import dagster as dg
import pytest
import sqlalchemy as sa

from monolyth_pipelines.defs.resources import DatabaseResource
from monolyth_pipelines.emulator import GoogleEmulator
from monolyth_pipelines.store import probe_queries
from monolyth_pipelines.store.schema import JobStatus, connector_files
from tests import grants
from tests.orchestration.deployment import Deployment
from tests.orchestration.helpers import all_jobs, now, set_job

PDF = "application/pdf"


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[GoogleEmulator, str]]:
    emulator = GoogleEmulator(seed=15)
    # Accounts connect through the deployment's OAuth client, as in production.
    with grants.serve_as_deployment(emulator, monkeypatch) as base_url:
        yield emulator, base_url


def connect(
    engine: sa.Engine, emulator: GoogleEmulator, base_url: str, email: str, files: int = 5
) -> uuid.UUID:
    emulator.add_account(email, drive_files=files)
    return grants.connect(engine, emulator, email)


def first_syncs(dep: Deployment, engine: sa.Engine, *accounts: uuid.UUID) -> None:
    dep.tick(2)
    dep.dequeue()
    for account in accounts:
        [job] = all_jobs(engine, account)
        assert job.status == JobStatus.COMPLETED
        # As if it ran two hours ago: every account is due at the next scheduled tick.
        set_job(engine, job.id, created_at=now() - timedelta(hours=2))


def run_schedule(dep: Deployment, db: DatabaseResource, at=None) -> str:
    from monolyth_pipelines.defs import automation

    [schedule] = automation.build_automation(automation.enabled_automations()).schedules
    with dg.build_schedule_context(
        instance=dep.instance, resources={"db": db}, scheduled_execution_time=at or now()
    ) as context:
        result = schedule(context)
    assert isinstance(result, dg.SkipReason)
    return result.skip_message or ""


def last_checked(engine: sa.Engine, account: uuid.UUID):
    with engine.connect() as conn:
        return probe_queries.last_checked(conn, account)


def rows_named(engine: sa.Engine, account: uuid.UUID, title: str) -> int:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.count())
            .select_from(connector_files)
            .where(connector_files.c.account_id == account, connector_files.c.title == title)
        ).scalar_one()


def test_the_schedule_runs_only_changed_accounts_and_records_the_check_of_idle_ones(
    inline: Deployment, emu: tuple[GoogleEmulator, str], app_env: sa.Engine, fresh_db_url: str
) -> None:
    emulator, base_url = emu
    engine = app_env
    idle = connect(engine, emulator, base_url, "idle@example.com")
    changed = connect(engine, emulator, base_url, "changed@example.com")
    first_syncs(inline, engine, idle, changed)
    runs_before = len(inline.runs())
    assert last_checked(engine, idle) is None

    emulator.drive("changed@example.com").create_file("new contract.pdf", PDF, size=1000)
    before = now()
    message = run_schedule(inline, DatabaseResource(url=fresh_db_url))
    assert message.startswith("queued 1 due google_drive account"), message
    assert "1 changed, 1 idle" in message

    # The idle account: no job, no run, and its last-checked time moved to this tick.
    assert [j.status for j in all_jobs(engine, idle)] == [JobStatus.COMPLETED]
    checked = last_checked(engine, idle)
    assert checked is not None and checked >= before - timedelta(seconds=1)
    # The changed one: one pending job, then one run that brings the new file in.
    assert [j.status for j in all_jobs(engine, changed)] == [JobStatus.COMPLETED, JobStatus.PENDING]
    inline.tick(2)
    # One run, the provider's batch (the account was synced before), and it syncs that job only.
    [run] = inline.runs()[runs_before:]
    assert run.job_name == "google_drive_batch_sync"
    inline.dequeue()
    assert rows_named(engine, changed, "new contract.pdf") == 1
    assert all_jobs(engine, changed)[-1].run_id == run.run_id

    # Probed again within the hour: nothing is due, no Google call, nothing queued.
    assert run_schedule(inline, DatabaseResource(url=fresh_db_url)).startswith("queued 0 due")
    assert [j.status for j in all_jobs(engine, idle)] == [JobStatus.COMPLETED]


def test_the_probe_covers_gmail_and_runs_an_account_it_cannot_ask(
    emu: tuple[GoogleEmulator, str], app_env: sa.Engine
) -> None:
    """Gmail: getProfile's historyId against the cursor. A revoked grant: the probe fails, so the
    account gets its run (which reports the error), never a silent skip."""
    from monolyth_pipelines.store import sync_state
    from monolyth_pipelines.sync import probe

    emulator, _ = emu
    engine = app_env
    mailboxes = {}
    for email in ("quiet@example.com", "busy@example.com", "revoked@example.com"):
        emulator.add_account(email, gmail_threads=2)
        account = grants.connect(engine, emulator, email, "gmail")
        with engine.begin() as conn:
            sync_state.advance_cursor(conn, account, "gmail", str(emulator.gmail(email).history_id))
        mailboxes[email] = account
    emulator.gmail("busy@example.com").deliver(subject="new")
    emulator.revoke("revoked@example.com")
    emulator.expire_access_tokens(emulator.account("revoked@example.com"))

    at = now()
    plan = probe.plan_scheduled_syncs(
        engine, provider="gmail", kind="gmail_import", due_before=at - timedelta(minutes=55), now=at
    )
    assert plan.idle == [mailboxes["quiet@example.com"]]
    assert sorted(plan.to_run) == sorted([mailboxes["busy@example.com"], mailboxes["revoked@example.com"]])
    assert dict(plan.verdicts) == {"idle": 1, "changed": 1, "unknown": 1}
    assert dict(plan.errors) == {"auth_revoked": 1}
    assert last_checked(engine, mailboxes["quiet@example.com"]) == at
    assert last_checked(engine, mailboxes["busy@example.com"]) is None
