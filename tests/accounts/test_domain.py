"""Connecting a Workspace domain with a service account: google-auth's real service_account
credentials and the real Directory client against the emulator over HTTP, real databases."""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from monolyth_pipelines.accounts import domain
from monolyth_pipelines.cli import main
from monolyth_pipelines.defs import automation
from monolyth_pipelines.defs.local_run import materialize_account
from monolyth_pipelines.defs.partitions import TAG_PROVIDER
from monolyth_pipelines.defs.resources import DatabaseResource, GoogleApiResource
from monolyth_pipelines.google.directory import DIRECTORY_USER_READONLY
from monolyth_pipelines.google.oauth_flow import DRIVE_READONLY
from monolyth_pipelines.store import accounts, domains, events, jobs
from monolyth_pipelines.store.schema import connector_accounts, connector_domains, connector_files
from tests.accounts.domain_world import ADMIN, DOMAIN, DomainWorld

_worker_instance: dg.DagsterInstance | None = None


def _run_request(provider: str, partition_key: str, tags: dict[str, str], database_url: str) -> bool:
    """One run of a sensor's request in a worker process, with its own Dagster instance (the
    sensor needs none of the workers': a completed job is no longer pending)."""
    global _worker_instance
    if _worker_instance is None:
        _worker_instance = dg.DagsterInstance.ephemeral()
    return materialize_account(
        provider,
        uuid.UUID(partition_key),
        instance=_worker_instance,
        tags=tags,
        database_url=database_url,
        # The console's DEBUG lines of 250 runs were ~40% of this test's time and tell nothing here.
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
    ).success


def _run_sensor_requests(
    pool: ProcessPoolExecutor, requests: Sequence[dg.RunRequest], database_url: str
) -> list[bool]:
    """What the daemon does with a tick's run requests: one run of each partition with its tags,
    through the asset ``sync`` materialises, a few at a time as the run queue allows."""
    futures = []
    for request in requests:
        assert request.partition_key is not None
        tags = dict(request.tags)
        futures.append(
            pool.submit(_run_request, tags[TAG_PROVIDER], request.partition_key, tags, database_url)
        )
    return [f.result() for f in futures]


def test_a_domain_of_250_users_becomes_250_connected_accounts_whose_first_syncs_run(
    big_world: DomainWorld, fresh_db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert big_world.connect() == 0
    assert "250 account(s) created" in capsys.readouterr().out
    found = big_world.by_email()
    assert len(found) == 250 and {a.status for a in found.values()} == {"connected"}
    with big_world.engine.connect() as conn:
        connected = [e for e in events.events_for(conn) if e["event"] == "connector_account_connected"]
    assert len({e["account_id"] for e in connected}) == 250
    # Each user's Google id is their Drive permissionId, so an OAuth connect of them is the same row.
    user7 = big_world.emulator.workspace.user(f"user7@{DOMAIN}")
    assert user7 is not None and found[f"user7@{DOMAIN}"].external_user_id == user7.id

    # First syncs, as for any newly connected account: the partition sensor asks for them...
    auto = automation.build_automation(automation.enabled_automations())
    sensors = {s.name: s for s in auto.sensors}
    instance = dg.DagsterInstance.ephemeral()
    db = DatabaseResource()
    with dg.build_sensor_context(instance=instance, resources={"db": db}) as context:
        sensors["connector_account_partitions"](context)
    with big_world.engine.connect() as conn:
        pending = [
            j for a in found.values() for j in jobs.jobs_for_account(conn, a.id) if j.status == "pending"
        ]
    assert len(pending) == 250
    # ...and the Sync-now sensor turns each pending job into one run, a queue's worth a tick, until
    # none is left: every account is synced by impersonation.
    # Processes, not threads: a run is mostly Python (Dagster's event log), so threads would
    # take turns. Forked, so the workers start with everything imported and the test's settings;
    # they never use the parent's pooled connections (and a worker ends with os._exit).
    ran: list[bool] = []
    with ProcessPoolExecutor(max_workers=max(2, os.cpu_count() or 2), mp_context=get_context("fork")) as pool:
        for _ in range(30):
            with dg.build_sensor_context(instance=instance, resources={"db": db}) as context:
                tick = sensors["connector_sync_requests"](context)
            if not tick.run_requests:
                break
            ran += _run_sensor_requests(pool, tick.run_requests, fresh_db_url)
    assert len(ran) == 250 and all(ran)
    with big_world.engine.connect() as conn:
        by_account = {a.id: jobs.jobs_for_account(conn, a.id) for a in found.values()}
        live = dict(
            conn.execute(
                sa.select(connector_files.c.account_id, sa.func.count())
                .where(connector_files.c.deleted_at.is_(None))
                .group_by(connector_files.c.account_id)
            ).all()
        )
    for account_id, account_jobs in by_account.items():
        (job,) = account_jobs  # the sensor's job, claimed by its run: no second row
        assert job.status == "completed", job.last_error
        inserted = (job.meta_json or {})["counters"]["inserted"]
        assert inserted > 0 and live.get(account_id) == inserted
    stats = big_world.emulator.stats(f"user1@{DOMAIN}")
    assert stats["api_calls"]["oauth.token"] == 1  # one JWT-bearer exchange for the run


def test_a_suspended_user_is_disconnected_and_a_new_user_connected_at_the_next_directory_sync(
    world: DomainWorld,
) -> None:
    assert world.connect() == 0
    before = world.by_email()
    assert before[f"user3@{DOMAIN}"].status == "connected"
    world.emulator.workspace.update_user(f"user3@{DOMAIN}", suspended=True)
    world.emulator.workspace.update_user(f"user4@{DOMAIN}", deleted=True)
    world.emulator.workspace.add_user(f"newcomer@{DOMAIN}")
    assert world.sync() == 0
    after = world.by_email()
    assert after[f"user3@{DOMAIN}"].status == "disconnected"
    assert after[f"user4@{DOMAIN}"].status == "disconnected"
    assert after[f"newcomer@{DOMAIN}"].status == "connected"
    assert len(after) == len(before) + 1
    with world.engine.connect() as conn:
        gone = events.events_for(conn, account_id=after[f"user3@{DOMAIN}"].id)
    assert [e["event"] for e in gone][-1] == "connector_account_disconnected"
    # The user comes back: the same row is connected again and asked to sync.
    world.emulator.workspace.update_user(f"user3@{DOMAIN}", suspended=False)
    assert world.sync() == 0
    again = world.by_email()[f"user3@{DOMAIN}"]
    assert again.id == before[f"user3@{DOMAIN}"].id and again.status == "connected"
    with world.engine.connect() as conn:
        assert [j.status for j in jobs.jobs_for_account(conn, again.id)] == ["pending"]


def test_users_query_limits_the_accounts_to_matching_users(world: DomainWorld) -> None:
    assert world.connect("--users-query", "email:user1*") == 0
    assert set(world.by_email()) == {f"user1@{DOMAIN}", *(f"user1{n}@{DOMAIN}" for n in range(10))}


def test_a_domain_that_did_not_delegate_the_scopes_ends_in_error_naming_them(
    world: DomainWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    world.emulator.workspace.delegate(DOMAIN, world.key["client_id"], [DIRECTORY_USER_READONLY])
    assert world.connect() == 1
    out = capsys.readouterr().out
    assert "error: not_delegated" in out and world.key["client_id"] in out
    assert DRIVE_READONLY in out and DIRECTORY_USER_READONLY in out
    with world.engine.connect() as conn:
        (row,) = domains.list_domains(conn)
        assert accounts.list_accounts(conn) == []
    assert row.status == "error" and row.status_reason == "not_delegated"
    assert DRIVE_READONLY in (row.status_message or "")
    # The admin authorises the scopes; the kept key then connects the domain.
    world.emulator.workspace.delegate(
        DOMAIN, world.key["client_id"], [DRIVE_READONLY, DIRECTORY_USER_READONLY]
    )
    assert world.sync() == 0
    assert len(world.by_email()) == 20 and {a.status for a in world.by_email().values()} == {"connected"}


def test_a_key_that_stops_working_puts_every_account_in_needs_reauth_with_one_reason(
    world: DomainWorld, tmp_path: Path
) -> None:
    assert world.connect() == 0
    world.emulator.workspace.revoke_delegation(DOMAIN, world.key["client_id"])
    world.emulator.reset_stats()
    assert world.sync() == 1
    found = world.by_email().values()
    assert {(a.status, a.status_reason) for a in found} == {("error", "needs_reauth")}
    assert len({a.status_message for a in found}) == 1
    # One token request for the whole domain, not one per account.
    assert world.emulator.stats_total()["api_calls"] == {"oauth.token": 1}
    # A new key (delegation restored): the accounts come back.
    new_key = world.emulator.service_account_key(
        "monolyth-sync-2", delegate_to=DOMAIN, scopes=[DRIVE_READONLY, DIRECTORY_USER_READONLY]
    )
    path = tmp_path / "new.json"
    path.write_text(json.dumps(new_key))
    with world.engine.connect() as conn:
        (row,) = domains.list_domains(conn)
    assert main(["accounts", "rotate-domain-key", str(row.id), "--service-account-file", str(path)]) == 0
    assert {a.status for a in world.by_email().values()} == {"connected"}


def test_the_private_key_is_in_no_row_in_clear_and_in_no_log(
    world: DomainWorld,
    fresh_db_url: str,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    assert world.connect() == 0
    world.emulator.workspace.update_user(f"user2@{DOMAIN}", suspended=True)
    assert world.sync() == 0
    pem_line = world.key["private_key"].splitlines()[5]
    found = world.by_email()
    instance = dg.DagsterInstance.ephemeral()
    run = materialize_account(
        "google_drive", found[f"user1@{DOMAIN}"].id, instance=instance, database_url=fresh_db_url
    )
    dagster_log = "".join(str(entry) for entry in instance.all_logs(run.run_id))
    with world.engine.connect() as conn:
        dumped = "".join(
            str(tuple(r)) for t in (connector_accounts, connector_domains) for r in conn.execute(sa.select(t))
        )
        (row,) = domains.list_domains(conn)
        stored_key = domains.domain_key(conn, row.id)
        grant = accounts.get_token_json(conn, found[f"user1@{DOMAIN}"].id)
    assert pem_line not in dumped and "PRIVATE KEY" not in dumped
    # Every grant and the key are ciphertext; the suspended user's account holds none any more.
    assert dumped.count("'enc': 'fernet'") == len(found) - 1 + 1
    # One stored copy: the domain's, which decrypts to the key file; each account's grant names it.
    assert stored_key == world.key
    assert grant is not None and grant["domain_id"] == str(row.id) and grant["service_account"] == world.key
    out = capsys.readouterr()
    assert "job" in dagster_log  # the run's own log is there to search
    for text in (caplog.text, out.out, out.err, dagster_log):
        assert pem_line not in text and "PRIVATE KEY" not in text


def test_connect_domain_as_a_library_function_reports_counts(world: DomainWorld) -> None:
    result = domain.connect_domain(
        world.engine, provider="google_drive", owner_id=world.owner, key_info=world.key, admin_email=ADMIN
    )
    assert (result.status, result.active_users, result.created) == ("connected", 20, 20)
    # users.list at 500 per page: one page for 20 users, plus the JWT-bearer exchange.
    assert result.google_requests == 2
    again = domain.sync_domain(world.engine, result.domain_id)
    assert (again.created, again.reconnected, again.disconnected) == (0, 0, 0)


def test_the_daily_schedule_runs_the_directory_sync_only_when_there_is_a_domain(world: DomainWorld) -> None:
    from monolyth_pipelines.defs import domains as domain_defs

    db = DatabaseResource()
    with dg.build_schedule_context(resources={"db": db}) as context:
        assert isinstance(domain_defs.directory_sync_schedule(context), dg.SkipReason)
    assert world.connect() == 0
    with dg.build_schedule_context(resources={"db": db}) as context:
        assert isinstance(domain_defs.directory_sync_schedule(context), dg.RunRequest)
    world.emulator.workspace.update_user(f"user5@{DOMAIN}", suspended=True)
    world.emulator.workspace.add_user(f"late@{DOMAIN}")
    result = domain_defs.directory_sync_job.execute_in_process(
        instance=dg.DagsterInstance.ephemeral(),
        resources={"db": db, "google": GoogleApiResource()},
    )
    assert result.success
    found = world.by_email()
    assert found[f"user5@{DOMAIN}"].status == "disconnected" and found[f"late@{DOMAIN}"].status == "connected"


def test_a_run_that_finds_the_key_deleted_puts_the_whole_domain_in_needs_reauth(
    world: DomainWorld, fresh_db_url: str
) -> None:
    assert world.connect() == 0
    world.emulator.service_accounts.delete_key(world.key["client_email"], world.key["private_key_id"])
    account = world.by_email()[f"user1@{DOMAIN}"]
    materialize_account(
        "google_drive", account.id, instance=dg.DagsterInstance.ephemeral(), database_url=fresh_db_url
    )
    with world.engine.connect() as conn:
        (job,) = jobs.jobs_for_account(conn, account.id)
    assert job.status == "failed" and "Invalid JWT Signature" in (job.last_error or "")
    found = world.by_email().values()
    assert {(a.status, a.status_reason) for a in found} == {("error", "needs_reauth")}
    assert len({a.status_message for a in found}) == 1


def test_a_gmail_domain_connects_with_the_gmail_scope_and_addresses_as_ids(
    world: DomainWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MONOLYTH_FEATURE_FLAGS", "int_gmail")
    gmail = "https://www.googleapis.com/auth/gmail.readonly"
    key = world.emulator.service_account_key(
        "gmail-sync", delegate_to=DOMAIN, scopes=[gmail, DIRECTORY_USER_READONLY]
    )
    result = domain.connect_domain(
        world.engine, provider="gmail", owner_id=world.owner, key_info=key, admin_email=ADMIN
    )
    assert (result.status, result.created) == ("connected", 20)
    account = world.by_email()[f"user2@{DOMAIN}"]
    assert account.provider == "gmail" and account.external_user_id == f"user2@{DOMAIN}"
    with world.engine.connect() as conn:
        grant = accounts.get_token_json(conn, account.id)
    assert grant is not None and grant["scopes"] == [gmail] and grant["subject"] == f"user2@{DOMAIN}"


def test_the_change_probe_asks_google_by_impersonation_too(world: DomainWorld, fresh_db_url: str) -> None:
    from datetime import timedelta

    from monolyth_pipelines.store.timeutil import utcnow
    from monolyth_pipelines.sync.probe import plan_scheduled_syncs

    assert world.connect() == 0
    account = world.by_email()[f"user1@{DOMAIN}"]
    instance = dg.DagsterInstance.ephemeral()
    assert materialize_account(
        "google_drive", account.id, instance=instance, database_url=fresh_db_url
    ).success
    world.emulator.reset_stats()
    later = utcnow() + timedelta(hours=3)
    plan = plan_scheduled_syncs(
        world.engine, provider="google_drive", kind="drive_import", due_before=later, now=later
    )
    assert account.id in plan.idle and not plan.errors
    # One JWT-bearer exchange and the changes probe, as user1.
    calls = world.emulator.stats(f"user1@{DOMAIN}")["api_calls"]
    assert calls.get("oauth.token") == 1 and calls.get("drive.changes.list", 0) >= 1


def test_rotate_keys_re_encrypts_the_domain_key_so_the_old_fernet_key_can_go(
    world: DomainWorld, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from monolyth_pipelines.store.token_crypto import generate_key

    assert world.connect() == 0
    old = os.environ["MONOLYTH_TOKEN_KEYS"]
    new = generate_key()
    monkeypatch.setenv("MONOLYTH_TOKEN_KEYS", f"{new},{old}")
    assert main(["accounts", "rotate-keys"]) == 0
    assert "1 Workspace domain key(s) re-encrypted" in capsys.readouterr().out
    monkeypatch.setenv("MONOLYTH_TOKEN_KEYS", new)
    with world.engine.connect() as conn:
        (row,) = domains.list_domains(conn)
        assert domains.domain_key(conn, row.id) == world.key
    assert world.sync() == 0
