"""The Gmail connector end to end: the real client, the emulator over HTTP, SQLite and Postgres."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from monolyth_pipelines.store import sync_state
from monolyth_pipelines.store.events import PAYLOAD_KEYS, Event
from monolyth_pipelines.store.schema import connector_sweep_seen
from tests.connectors import gmail_harness
from tests.connectors.gmail_harness import GmailHarness, comparable, expected_rows

make_gmail = gmail_harness.make_gmail
gmail_env = gmail_harness.gmail_env

NDA = "Signed NDA \u2013 ÄÖÜ"


def _b_word(text: str) -> str:
    return f"=?UTF-8?B?{base64.b64encode(text.encode()).decode()}?="


def _deliver_awkward_mail(gmail: GmailHarness) -> dict[str, str]:
    """Newest Contracts threads with the cases a mail reader trips on; returns id by case."""
    box = gmail.mailbox
    when = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC).timestamp()
    return {
        "b_subject": box.deliver(subject=_b_word(NDA), labels=["INBOX", "Contracts"], internal_date=when)[
            "id"
        ],
        "latin1_subject": box.deliver(
            subject="=?ISO-8859-1?Q?Caf=E9_r=E9union?=", labels=["Contracts"], internal_date=when + 60
        )["id"],
        "no_subject": box.deliver(subject=None, labels=["Contracts"], internal_date=when + 120)["id"],
        "no_date": box.deliver(
            subject="Undated", date_header=False, labels=["Contracts"], internal_date=when + 180
        )["id"],
        "bad_date": box.deliver(
            subject="Badly dated",
            date_header="yesterday afternoon",
            labels=["Contracts"],
            internal_date=when + 240,
        )["id"],
        "deep": box.deliver(
            subject="Fwd: contract pack",
            sender='"Doe, Jane" <jane.doe@acme.example>',
            labels=["Contracts"],
            layout="deep",
            attachments=[("NDA.pdf", "application/pdf", 12_345), ("Exhibit A.pdf", "application/pdf", 2_222)],
            internal_date=when + 300,
        )["id"],
    }


def test_full_sync_equals_the_last_n_threads_of_the_label(make_gmail: Callable[..., GmailHarness]) -> None:
    gmail = make_gmail(60)
    ids = _deliver_awkward_mail(gmail)
    all_in_label = expected_rows(gmail.mailbox, max_threads=1000)
    expected = expected_rows(gmail.mailbox, max_threads=10)
    assert len({r["threadId"] for r in all_in_label.values()}) > 10, "the cut at N must matter"

    result, job = gmail.sync({"max_threads": 10})
    assert result.success, job.last_error
    rows = gmail.rows()
    assert comparable(rows) == expected
    assert len({r["meta_json"]["threadId"] for r in rows.values()}) == 10

    # The awkward cases, checked against literals rather than any decoder.
    assert rows[ids["b_subject"]]["title"] == NDA
    assert rows[ids["latin1_subject"]]["title"] == "Café réunion"
    assert rows[ids["no_subject"]]["title"] is None
    assert rows[ids["no_subject"]]["meta_json"]["subject"] is None
    for case in ("no_date", "bad_date"):  # the receive time stands in for an unreadable Date
        offset = {"no_date": 180, "bad_date": 240}[case]
        assert rows[ids[case]]["meta_json"]["date"] == f"2026-03-04T05:{6 + offset // 60:02d}:07Z"
    deep = rows[ids["deep"]]["meta_json"]
    assert deep["from"] == "jane.doe@acme.example" and deep["fromName"] == "Doe, Jane"
    assert deep["attachments"] == [
        {"filename": "NDA.pdf", "mimeType": "application/pdf", "size": 12_345},
        {"filename": "Exhibit A.pdf", "mimeType": "application/pdf", "size": 2_222},
    ]
    assert deep["attachmentPartIds"] == ["1.1.0", "2"]
    assert (
        rows[ids["deep"]]["url"] == f"https://mail.google.com/mail/u/{gmail.account.email}/#all/{ids['deep']}"
    )

    counters = job.meta_json["counters"]
    assert job.status == "completed" and job.kind == "gmail_import" and job.attempts == 1
    assert counters["mode"] == "full" and counters["inserted"] == len(expected) == counters["seen"]
    assert (
        job.meta_json["settings"]["label"] == "Contracts" and job.meta_json["settings"]["max_threads"] == 10
    )
    # getProfile, labels.list, one threads.list page, one batch of threads.get.
    assert gmail.stats()["http_requests"] == {
        "gmail.users.getProfile": 1,
        "gmail.users.labels.list": 1,
        "gmail.users.threads.list": 1,
        "batch.gmail": 1,
    }
    assert job.meta_json["api_calls"] == 4
    assert gmail.stats()["api_calls"]["gmail.users.threads.get"] == 10

    logged = gmail.events()
    assert [e["event"] for e in logged] == [Event.ACCOUNT_CONNECTED, Event.SYNC_STARTED, Event.SYNC_COMPLETED]
    for event in logged:
        assert set(event["payload"]) == PAYLOAD_KEYS[Event(event["event"])]
        assert event["provider"] == "gmail"
    assert logged[2]["payload"]["file_count"] == len(expected)
    assert logged[2]["payload"]["run_id"] == job.run_id == result.dagster_run.run_id

    metadata = result.asset_materializations_for_node("gmail_messages")[0].metadata
    assert metadata["inserted"].value == len(expected) and metadata["mode"].value == "full"
    with gmail.engine.connect() as conn:
        state = sync_state.get_state(conn, gmail.account_id, "gmail")
    # The cursor is the history id taken before the listing.
    assert state is not None and state.cursor == gmail.mailbox.current_history_id()


def test_second_run_without_changes_writes_nothing(make_gmail: Callable[..., GmailHarness]) -> None:
    gmail = make_gmail(40)
    gmail.sync()
    before = {k: v["updated_at"] for k, v in gmail.rows().items()}
    assert before
    gmail.emulator.reset_stats()
    result, job = gmail.sync()
    assert result.success and job.status == "completed"
    counters = job.meta_json["counters"]
    assert counters["mode"] == "incremental"
    assert counters["inserted"] == counters["updated"] == counters["tombstoned_total"] == 0
    assert {k: v["updated_at"] for k, v in gmail.rows().items()} == before
    assert gmail.stats()["http_requests"] == {"gmail.users.history.list": 1}


def _stored_threads(gmail: GmailHarness) -> dict[str, list[str]]:
    """Message ids of each stored thread, as the mailbox has them now."""
    thread_ids = dict.fromkeys(r["meta_json"]["threadId"] for r in gmail.rows().values())
    return {t: [m["id"] for m in gmail.mailbox.thread(t, format="minimal")["messages"]] for t in thread_ids}


def test_incremental_run_applies_exactly_the_changes(make_gmail: Callable[..., GmailHarness]) -> None:
    gmail = make_gmail(80)
    box = gmail.mailbox
    gmail.sync()
    stored = _stored_threads(gmail)
    singles = iter(t for t, messages in stored.items() if len(messages) == 1)
    multi = next(t for t, messages in stored.items() if len(messages) >= 2)

    new_thread = box.deliver(
        subject="New NDA", labels=["INBOX", "Contracts"], attachments=[("n.pdf", "application/pdf", 900)]
    )
    replied = next(singles)
    reply = box.deliver(subject="Re: thanks", thread_id=replied, labels=["INBOX"])  # the thread has the label
    box.deliver(subject="Lunch?", labels=["INBOX"])  # not in the label: not ours
    deleted_message = stored[multi][0]
    box.delete_message(deleted_message)
    deleted_thread = next(singles)
    box.delete_thread(deleted_thread)
    left = next(singles)
    box.relabel(thread_id=left, remove=["Contracts"])
    trashed = next(singles)
    box.relabel(thread_id=trashed, add=["TRASH"])
    starred_message = stored[next(singles)][0]
    box.relabel(message_id=starred_message, add=["STARRED"])
    joined = next(
        t["id"]
        for t in box.threads_list(format="minimal")
        if t["id"] not in stored
        and not {"TRASH", "SPAM"} & {lab for m in t["messages"] for lab in m.get("labelIds", [])}
    )
    joined_ids = [m["id"] for m in box.thread(joined, format="minimal")["messages"]]
    box.relabel(thread_id=joined, add=["Contracts"])

    gmail.emulator.reset_stats()
    result, job = gmail.sync()
    assert result.success, job.last_error
    counters = job.meta_json["counters"]
    assert counters["mode"] == "incremental"
    assert counters["inserted"] == 1 + 1 + len(joined_ids)  # new thread, reply, joined thread
    assert counters["updated"] == 1  # the starred message's labels
    assert counters["restored"] == 0
    assert counters["tombstoned"] == {
        "deleted": 2,
        "left_label": 1,
        "trashed": 1,
    }
    assert comparable(gmail.rows()) == expected_rows(box, max_threads=1000)
    tombstones = gmail.tombstones()
    assert tombstones[deleted_message] == "deleted"
    assert tombstones[stored[deleted_thread][0]] == "deleted"
    assert tombstones[stored[left][0]] == "left_label"
    assert tombstones[stored[trashed][0]] == "trashed"
    assert {new_thread["id"], reply["id"], *joined_ids} <= set(gmail.rows())
    assert "STARRED" in gmail.rows()[starred_message]["meta_json"]["labelIds"]
    # One history page, one label lookup, one profile for the links, one batch of threads.get.
    assert gmail.stats()["http_requests"] == {
        "gmail.users.history.list": 1,
        "gmail.users.labels.list": 1,
        "gmail.users.getProfile": 1,
        "batch.gmail": 1,
    }
    with gmail.engine.connect() as conn:
        state = sync_state.get_state(conn, gmail.account_id, "gmail")
    assert state is not None and state.cursor == box.current_history_id()

    # Back in the label, a thread comes back to life.
    box.relabel(thread_id=left, add=["Contracts"])
    _, job = gmail.sync()
    assert job.meta_json["counters"]["restored"] == 1
    assert stored[left][0] in gmail.rows()


def test_expired_history_falls_back_to_a_full_pull_without_duplicates(
    make_gmail: Callable[..., GmailHarness],
) -> None:
    gmail = make_gmail(60)
    box = gmail.mailbox
    gmail.sync()
    gone_thread = next(iter(gmail.rows().values()))["meta_json"]["threadId"]
    gone = [m["id"] for m in box.thread(gone_thread, format="minimal")["messages"]]
    box.delete_thread(gone_thread)
    fresh = box.deliver(subject="Fresh contract", labels=["Contracts"])
    box.expire_history()

    result, job = gmail.sync()
    assert result.success, job.last_error
    counters = job.meta_json["counters"]
    assert counters["mode"] == "full_after_invalid_cursor"
    assert counters["inserted"] == 1
    # The reconcile looked the unseen thread up: gone from the mailbox, so deleted.
    assert counters["tombstoned"] == {"deleted": len(gone)}
    assert any("no longer kept" in w for w in counters["warnings"])
    assert gmail.tombstones() == dict.fromkeys(gone, "deleted")
    assert fresh["id"] in gmail.rows()
    assert comparable(gmail.rows()) == expected_rows(box)
    with gmail.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(connector_sweep_seen)).scalar_one() == 0
        duplicates = conn.exec_driver_sql(
            "SELECT count(*) - count(DISTINCT external_id) FROM connector_files"
        ).scalar_one()
    assert duplicates == 0
    # And the run after that is incremental again.
    _, job = gmail.sync()
    assert job.meta_json["counters"]["mode"] == "incremental"


def test_selected_attachments_land_in_vault_once(
    make_gmail: Callable[..., GmailHarness], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GMAIL_ATTACHMENT_MIME_TYPES", "application/pdf")
    monkeypatch.setenv("GMAIL_ATTACHMENT_MAX_SIZE_MB", "0.1")
    gmail = make_gmail(0)
    box = gmail.mailbox
    pdf = box.deliver(
        subject="Pack",
        labels=["Contracts"],
        layout="deep",
        attachments=[("NDA.pdf", "application/pdf", 30_000), ("notes.docx", "application/msword", 4_000)],
    )
    reply = box.deliver(
        subject="Re: Pack",
        thread_id=pdf["threadId"],
        labels=["Contracts"],
        attachments=[("Signed NDA.pdf", "application/pdf", 20_000), ("scan.pdf", "application/pdf", 500_000)],
    )
    box.deliver(subject="Elsewhere", labels=["INBOX"], attachments=[("other.pdf", "application/pdf", 1_000)])

    result, job = gmail.sync()
    assert result.success, job.last_error
    docs = gmail.vault()
    assert set(docs) == {f"{pdf['id']}/1.1.0", f"{reply['id']}/1"}  # the deep PDF and the small reply PDF
    assert job.meta_json["counters"]["vault_imported"] == 2
    assert gmail.calls("gmail.users.messages.attachments.get") == 2
    for vault_id, doc in docs.items():
        message_id = vault_id.split("/")[0]
        assert doc["source"] == "gmail" and doc["parent_external_id"] == message_id
        assert doc["mime"] == "application/pdf" and doc["size"] == len(doc["content"])
        assert doc["content"].startswith(b"%PDF")
    assert {d["title"]: d["size"] for d in docs.values()} == {"NDA.pdf": 30_000, "Signed NDA.pdf": 20_000}

    # New mail in the thread refetches the thread, but nothing already imported is fetched again,
    # and neither is anything after a full pull.
    box.deliver(subject="Re: Re: Pack", thread_id=pdf["threadId"], labels=["Contracts"])
    gmail.emulator.reset_stats()
    _, job = gmail.sync()
    assert job.meta_json["counters"]["mode"] == "incremental" and job.meta_json["counters"]["inserted"] == 1
    assert gmail.calls("gmail.users.messages.attachments.get") == 0
    box.deliver(subject="Unrelated", labels=["INBOX"])
    box.expire_history()  # the cursor now predates what Gmail keeps
    _, job = gmail.sync()
    assert job.meta_json["counters"]["mode"] == "full_after_invalid_cursor"
    assert gmail.calls("gmail.users.messages.attachments.get") == 0
    assert job.meta_json["counters"]["vault_imported"] == 0 and len(gmail.vault()) == 2


def test_a_missing_label_fails_with_its_own_code_unretried(make_gmail: Callable[..., GmailHarness]) -> None:
    gmail = make_gmail(20)
    result, job = gmail.sync({"label": "No Such Label"})
    assert not result.success
    assert job.status == "failed" and job.attempts == 1
    assert job.last_error.startswith("label_not_found:") and "No Such Label" in job.last_error
    failed = gmail.events()[-1]
    assert failed["event"] == Event.SYNC_FAILED and failed["payload"]["error_code"] == "label_not_found"
    assert gmail.rows() == {}
    with gmail.engine.connect() as conn:
        assert sync_state.get_state(conn, gmail.account_id, "gmail") is None
    assert "gmail.users.getProfile" not in gmail.stats()["api_calls"]


def test_changing_the_label_pulls_the_new_label_and_retires_the_old(
    make_gmail: Callable[..., GmailHarness],
) -> None:
    gmail = make_gmail(60)
    gmail.sync()
    contracts = set(gmail.rows())
    # Retiring most of the account's rows waits for confirmation (tests/connectors/test_reconcile_guards.py).
    result, job = gmail.sync({"label": "Invoices", "allow_mass_tombstone": True})
    assert result.success, job.last_error
    assert job.meta_json["counters"]["mode"] == "full"
    assert comparable(gmail.rows()) == expected_rows(gmail.mailbox, label="Invoices")
    assert set(gmail.tombstones()) == contracts - set(gmail.rows())
