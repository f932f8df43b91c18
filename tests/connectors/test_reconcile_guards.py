"""A reconcile never tombstones what is still there, and no reconcile empties an account unconfirmed.

Gmail: a full pull lists the label's newest N threads, while incremental runs add every new
thread; the threads past the window are looked up by id, not tombstoned. Every reconciling
full pull (Gmail expired history or label change, Drive rejected change token) is weighed by
the mass-tombstone guard: past MONOLYTH_MASS_TOMBSTONE_SHARE of the live rows it refuses,
writes no tombstone, keeps the sync state's position and says in the job row how many rows it
would have tombstoned. All against the emulator over HTTP, on SQLite and Postgres.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from monolyth_pipelines.settings import DriveLimits
from monolyth_pipelines.store.schema import connector_sync_state
from tests.connectors import gmail_harness
from tests.connectors.gmail_harness import GmailHarness, comparable, expected_rows
from tests.connectors.harness import DriveHarness
from tests.connectors.harness import expected_rows as expected_drive_rows

make_gmail = gmail_harness.make_gmail
gmail_env = gmail_harness.gmail_env


def _state(harness: Any) -> list[dict[str, Any]]:
    with harness.engine.connect() as conn:
        rows = conn.execute(
            sa.select(connector_sync_state).where(connector_sync_state.c.account_id == harness.account_id)
        )
        return [
            {k: v for k, v in r._mapping.items() if k not in ("updated_at", "sweep_id", "sweep_page_token")}
            for r in rows
        ]


def _deliver_threads(gmail: GmailHarness, count: int, subject: str) -> list[str]:
    return [
        gmail.mailbox.deliver(subject=f"{subject} {i}", labels=["Contracts"])["threadId"]
        for i in range(count)
    ]


def test_threads_past_the_window_survive_an_expired_history(make_gmail: Callable[..., GmailHarness]) -> None:
    gmail = make_gmail(0)
    box = gmail.mailbox
    old = _deliver_threads(gmail, 100, "Contract")
    result, job = gmail.sync()
    assert result.success and len(gmail.rows()) == 100

    _deliver_threads(gmail, 30, "New contract")
    result, job = gmail.sync()
    assert job.meta_json["counters"]["mode"] == "incremental" and job.meta_json["counters"]["inserted"] == 30
    assert len(gmail.rows()) == 130, "new mail is wanted beyond GMAIL_MAX_THREADS"

    # While history is lost: one old thread leaves the label, one is deleted, one is trashed.
    left, deleted, trashed = old[0], old[1], old[2]
    box.relabel(thread_id=left, remove=["Contracts"])
    left_ids = [m["id"] for m in box.thread(left, format="minimal")["messages"]]
    deleted_ids = [m["id"] for m in box.thread(deleted, format="minimal")["messages"]]
    trashed_ids = [m["id"] for m in box.thread(trashed, format="minimal")["messages"]]
    box.delete_thread(deleted)
    box.relabel(thread_id=trashed, add=["TRASH"])
    box.expire_history()

    result, job = gmail.sync()
    assert result.success, job.last_error
    counters = job.meta_json["counters"]
    assert counters["mode"] == "full_after_invalid_cursor"
    # The 30 oldest threads are outside the newest 100 the pull lists; each is looked up.
    assert counters["reconcile_lookups"] == 30
    assert gmail.tombstones() == {
        **dict.fromkeys(left_ids, "left_label"),
        **dict.fromkeys(deleted_ids, "deleted"),
        **dict.fromkeys(trashed_ids, "trashed"),
    }
    # Everything still in the label is live, window or not.
    assert comparable(gmail.rows()) == expected_rows(box, max_threads=1000)
    assert len(gmail.rows()) == 127
    _, job = gmail.sync()
    assert job.meta_json["counters"]["mode"] == "incremental"


def test_an_expired_history_that_would_empty_the_account_waits_for_confirmation(
    make_gmail: Callable[..., GmailHarness],
) -> None:
    gmail = make_gmail(0)
    box = gmail.mailbox
    threads = _deliver_threads(gmail, 20, "Contract")
    gmail.sync()
    live = gmail.rows()
    for thread_id in threads[:15]:
        box.delete_thread(thread_id)
    box.expire_history()
    result, job = gmail.sync()

    assert not result.success and job.status == "failed" and job.attempts == 1
    assert job.last_error.startswith(
        "bad_config: the reconcile of the full pull after Gmail's history expired would tombstone "
        "15 of the account's 20 live rows (75%), more than MONOLYTH_MASS_TOMBSTONE_SHARE=0.5"
    )
    assert "--allow-mass-tombstone" in job.last_error
    assert job.meta_json["mass_tombstone_refused"]["would_tombstone"] == 15
    assert job.meta_json["mass_tombstone_refused"]["live"] == 20
    assert gmail.tombstones() == {} and gmail.rows() == live

    result, job = gmail.sync()
    assert not result.success, "still refused until confirmed"
    result, job = gmail.sync({"allow_mass_tombstone": True})
    assert result.success, job.last_error
    assert set(gmail.tombstones().values()) == {"deleted"} and len(gmail.tombstones()) == 15
    assert comparable(gmail.rows()) == expected_rows(box)


def test_a_label_change_is_guarded_and_keeps_the_cursor_until_confirmed(
    make_gmail: Callable[..., GmailHarness],
) -> None:
    gmail = make_gmail(0)
    box = gmail.mailbox
    _deliver_threads(gmail, 12, "Contract")
    invoice = box.deliver(subject="Invoice 1", labels=["Invoices"])
    gmail.sync()
    contracts = gmail.rows()
    state_before = _state(gmail)

    result, job = gmail.sync({"label": "Invoices"})
    assert not result.success and job.attempts == 1
    assert job.last_error.startswith(
        "bad_config: the label change from 'Contracts' to 'Invoices' would tombstone 12 of the "
        "account's 13 live rows"
    )
    assert job.meta_json["mass_tombstone_refused"]["would_tombstone"] == 12
    assert gmail.tombstones() == {}
    assert set(contracts) <= set(gmail.rows())
    assert [s["cursor"] for s in _state(gmail)] == [s["cursor"] for s in state_before], "cursor kept"

    result, job = gmail.sync({"label": "Invoices", "allow_mass_tombstone": True})
    assert result.success, job.last_error
    # The messages did not move: the setting did. Insights counts them as out of scope, not deleted.
    assert gmail.tombstones() == dict.fromkeys(contracts, "out_of_scope")
    assert set(gmail.rows()) == {invoice["id"]}
    assert comparable(gmail.rows()) == expected_rows(box, label="Invoices")


def test_a_rejected_drive_token_whose_reconcile_would_empty_the_account_is_refused(
    make_drive: Callable[[int], DriveHarness],
) -> None:
    drive = make_drive(1000)
    drive.sync()
    live = drive.rows()
    gone = sorted(live)[: int(len(live) * 0.7)]
    assert len(gone) > 200, "past the 200 files a reconcile looks up one by one"
    for file_id in gone:
        drive.drive.delete(file_id)
    drive.set_sync_state(cursor="not-a-token")

    result, job = drive.sync()
    assert not result.success and job.status == "failed" and job.attempts == 1
    assert job.last_error.startswith("bad_config: the reconcile of the full listing of drive")
    assert f"would tombstone {len(gone)} of the account's {len(live)} live rows" in job.last_error
    assert job.meta_json["mass_tombstone_refused"] == {
        "would_tombstone": len(gone),
        "live": len(live),
        "share": 0.5,
        "what": "the reconcile of the full listing of drive (full_after_invalid_cursor)",
    }
    assert drive.tombstones() == {} and drive.rows() == live

    result, job = drive.sync({"ops": {"google_drive_files": {"config": {"allow_mass_tombstone": True}}}})
    assert result.success, job.last_error
    assert set(drive.tombstones()) == set(gone)
    assert comparable_drive(drive) == expected_drive_rows(drive.drive.files(), DriveLimits())


def comparable_drive(drive: DriveHarness) -> dict[str, dict[str, Any]]:
    from tests.connectors.harness import comparable as drive_comparable

    return drive_comparable(drive.rows())
