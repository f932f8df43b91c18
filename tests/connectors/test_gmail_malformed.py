"""Gmail pages Google should never send, served over HTTP: a missing historyId fails the run once
as bad_response and keeps the cursor; a thread without id is counted and skipped."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from monolyth_pipelines.store.schema import connector_sync_state
from tests.connectors import gmail_harness
from tests.connectors.gmail_harness import GmailHarness

make_gmail = gmail_harness.make_gmail
gmail_env = gmail_harness.gmail_env


def _cursor(gmail: GmailHarness) -> str | None:
    with gmail.engine.connect() as conn:
        return conn.execute(
            sa.select(connector_sync_state.c.cursor).where(
                connector_sync_state.c.account_id == gmail.account_id
            )
        ).scalar_one_or_none()


def _without(key: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda body: {k: v for k, v in body.items() if k != key}


def test_a_profile_without_history_id_fails_before_anything_is_written(
    make_gmail: Callable[..., GmailHarness],
) -> None:
    gmail = make_gmail(10)
    gmail.emulator.faults.rewrite("gmail.users.getProfile", _without("historyId"))
    result, job = gmail.sync()
    assert not result.success and job.status == "failed" and job.attempts == 1
    assert job.last_error == "bad_response: getProfile: 'historyId' is missing or empty"
    assert gmail.rows(live_only=False) == {} and _cursor(gmail) is None


def test_a_last_history_page_without_history_id_keeps_the_stored_cursor(
    make_gmail: Callable[..., GmailHarness],
) -> None:
    gmail = make_gmail(10)
    first, _ = gmail.sync()
    assert first.success
    before, rows = _cursor(gmail), gmail.rows()
    assert before
    gmail.emulator.faults.rewrite("gmail.users.history.list", _without("historyId"))
    result, job = gmail.sync()
    assert not result.success and job.attempts == 1
    assert job.last_error == "bad_response: history.list: 'historyId' is missing or empty"
    assert _cursor(gmail) == before and gmail.rows() == rows


def test_a_thread_without_id_is_counted_and_skipped(make_gmail: Callable[..., GmailHarness]) -> None:
    gmail = make_gmail(10)

    def strip_first(body: dict[str, Any]) -> dict[str, Any]:
        threads = [dict(t) for t in body["threads"]]
        threads[0].pop("id")
        return {**body, "threads": threads}

    gmail.emulator.faults.rewrite("gmail.users.threads.list", strip_first, calls=[1])
    result, job = gmail.sync()
    assert result.success and job.status == "completed"
    assert job.meta_json["counters"]["skipped"]["malformed_item"] == 1
    assert gmail.rows()
