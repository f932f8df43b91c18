"""Gmail when Google misbehaves: failed calls inside batches, quotas, revoked grants, broken runs."""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from monolyth_pipelines.store import accounts, sync_state
from monolyth_pipelines.store.schema import activity_log, connector_files, connector_jobs
from tests import grants
from tests.connectors import gmail_harness
from tests.connectors.gmail_harness import GmailHarness, comparable, expected_rows
from tests.grants import client_secrets_of

make_gmail = gmail_harness.make_gmail
gmail_env = gmail_harness.gmail_env

METADATA_SCOPE = "https://www.googleapis.com/auth/gmail.metadata"


def test_calls_failing_inside_batches_are_requeued_and_the_table_is_clean(
    make_gmail: Callable[..., GmailHarness],
) -> None:
    gmail = make_gmail(120)
    email = gmail.account.email
    scripted = gmail.emulator.faults.script(
        "gmail.users.threads.get", calls=[2, 3, 40], status=503, account=email
    )
    limited = gmail.emulator.faults.script("gmail.users.threads.get", calls=[7], status=429, account=email)
    random_rule = gmail.emulator.faults.error_rate(
        0.2, statuses=(503, 429, 500), endpoint="gmail.*", account=email
    )
    result, job = gmail.sync({"label": "INBOX", "max_threads": 500})
    assert result.success, job.last_error
    fired = scripted.fired + limited.fired + random_rule.fired
    assert fired > 10
    assert job.meta_json["counters"]["retries"] == fired
    assert job.attempts == 1, "healed inside the run, without a Dagster retry"
    assert comparable(gmail.rows()) == expected_rows(gmail.mailbox, label="INBOX", max_threads=500)
    statuses = gmail.stats()["statuses"]["gmail.users.threads.get"]
    assert statuses["200"] == len({r["meta_json"]["threadId"] for r in gmail.rows().values()})


def test_the_pacer_keeps_a_quota_enforcing_server_free_of_429s(
    make_gmail: Callable[..., GmailHarness], monkeypatch: pytest.MonkeyPatch
) -> None:
    # 300 units a second: a window holds 30 threads.get, so batches carry at most 30 calls.
    gmail = make_gmail(80)
    gmail.emulator.quotas.configure(gmail_units_per_second=300)
    monkeypatch.setenv("GMAIL_QUOTA_UNITS_PER_SECOND", "300")
    result, job = gmail.sync({"label": "INBOX", "max_threads": 500})
    assert result.success, job.last_error
    threads = len({r["meta_json"]["threadId"] for r in gmail.rows().values()})
    assert threads > 30
    stats = gmail.stats()
    assert stats["totals"]["responses_429"] == 0 and stats["quota_exceeded"] == {}
    assert job.meta_json["counters"]["retries"] == 0
    # At most 30 calls a batch (the first one also leaves room for the profile and list calls).
    assert math.ceil(threads / 30) <= stats["http_requests"]["batch.gmail"] <= math.ceil(threads / 30) + 1


def test_persistent_server_errors_fail_the_job_after_dagster_retries(
    make_gmail: Callable[..., GmailHarness],
) -> None:
    gmail = make_gmail(30)
    gmail.emulator.faults.script("gmail.users.threads.get", every=True, status=500)
    result, job = gmail.sync()
    assert not result.success
    assert job.status == "failed" and job.last_error.startswith("google_unavailable:")
    assert job.attempts == 3
    logged = [e for e in gmail.events() if e["event"] != "connector_account_connected"]
    assert [e["event"] for e in logged] == ["connector_sync_started", "connector_sync_failed"]
    assert logged[-1]["payload"]["error_code"] == "google_unavailable"


def _all_stored_text(gmail: GmailHarness) -> str:
    parts = []
    with gmail.engine.connect() as conn:
        for table in (connector_jobs, activity_log, connector_files):
            parts += [json.dumps(dict(r._mapping), default=str) for r in conn.execute(sa.select(table))]
    return "\n".join(parts)


def test_a_revoked_grant_marks_the_account_and_leaks_no_secret(
    make_gmail: Callable[..., GmailHarness],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    gmail = make_gmail(20)
    with gmail.engine.connect() as conn:
        token_json = accounts.get_token_json(conn, gmail.account_id)
    assert token_json
    gmail.emulator.revoke(gmail.account)
    result, job = gmail.sync()
    assert not result.success
    assert job.status == "failed" and job.last_error.startswith("auth_revoked:") and job.attempts == 1
    with gmail.engine.connect() as conn:
        assert accounts.get_account(conn, gmail.account_id).status == "error"
    assert gmail.events()[-1]["payload"]["error_code"] == "auth_revoked"
    out, err = capfd.readouterr()
    logs = "\n".join(repr(entry) for entry in gmail.instance.all_logs(result.dagster_run.run_id))
    for haystack in (_all_stored_text(gmail), logs, caplog.text, out, err):
        for secret in (token_json["token"], token_json["refresh_token"], *client_secrets_of(token_json)):
            assert secret not in haystack


def test_a_pull_broken_off_midway_is_finished_by_the_next_run_without_duplicates(
    make_gmail: Callable[..., GmailHarness],
) -> None:
    gmail = make_gmail(120)
    config = {"label": "INBOX", "max_threads": 500}
    expected = expected_rows(gmail.mailbox, label="INBOX", max_threads=500)
    assert len({r["threadId"] for r in expected.values()}) > 50, "the pull must span batches"
    # The first batch lands, then a permanent error stops the run.
    gmail.emulator.faults.script(
        "gmail.users.threads.get", calls=range(51, 1000), status=403, reason="insufficientPermissions"
    )
    result, job = gmail.sync(config)
    assert not result.success and job.last_error.startswith("insufficient_permissions:")
    assert 0 < len(gmail.rows()) < len(expected)
    with gmail.engine.connect() as conn:
        state = sync_state.get_state(conn, gmail.account_id, "gmail")
    assert state is not None and state.sweep_in_progress and state.cursor is None
    history_id = state.sweep_cursor

    gmail.emulator.faults.clear()
    landed = gmail.mailbox.deliver(subject="meanwhile", labels=["INBOX"])  # history replays it next run
    result, job = gmail.sync(config)
    assert result.success, job.last_error
    assert job.meta_json["counters"]["mode"] == "full"
    with gmail.engine.connect() as conn:
        state = sync_state.get_state(conn, gmail.account_id, "gmail")
        duplicates = conn.exec_driver_sql(
            "SELECT count(*) - count(DISTINCT external_id) FROM connector_files"
        ).scalar_one()
    # The pull that finished kept the history id taken before the first attempt began.
    assert state is not None and state.cursor == history_id and not state.sweep_in_progress
    assert duplicates == 0
    assert landed["id"] in gmail.rows()  # listed by the resumed pull
    assert comparable(gmail.rows()) == expected_rows(gmail.mailbox, label="INBOX", max_threads=500)


def test_a_metadata_only_grant_syncs_headers_without_attachments(
    make_gmail: Callable[..., GmailHarness], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GMAIL_ATTACHMENT_MIME_TYPES", "application/pdf")
    # The consent flow asks for gmail.readonly: a metadata-only grant is the emulator's scripted one.
    gmail = make_gmail(60, scopes=(METADATA_SCOPE,), grant=grants.EMULATOR_FILE)
    result, job = gmail.sync()
    assert result.success, job.last_error
    expected = expected_rows(gmail.mailbox)
    for row in expected.values():
        row["attachments"] = row["attachmentPartIds"] = []
    assert comparable(gmail.rows()) == expected
    assert any("gmail.metadata" in w for w in job.meta_json["counters"]["warnings"])
    assert gmail.vault() == {}
    assert "403" not in gmail.stats()["statuses"].get("gmail.users.threads.get", {})
