"""The page loops fed fuzzed Google answers over real HTTP (the emulator's ``rewrite`` fault):
the run completes, every bad item is counted under a named reason, the other items are stored.
Non-JSON bodies are retried as ``bad_response`` and then heal or fail with that code."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monolyth_pipelines.domain import payloads
from monolyth_pipelines.domain.drive import SkipReason
from monolyth_pipelines.settings import DriveLimits
from tests.connectors import gmail_harness
from tests.connectors.gmail_harness import GmailHarness
from tests.connectors.gmail_harness import expected_rows as expected_mail
from tests.connectors.harness import DriveHarness, expected_rows
from tests.fuzz_payloads import drive_files, gmail_messages, hostile

make_gmail = gmail_harness.make_gmail
gmail_env = gmail_harness.gmail_env

NAMED = {r.value for r in SkipReason}
PAGES = settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
fuzz_ids = itertools.count()


def unique(items: list[Any], prefix: str) -> list[Any]:
    """Give each fuzzed item that has a usable id one of its own, so none collides."""
    for item in items:
        if isinstance(item, dict) and payloads.usable_id(item.get("id")):
            item["id"] = f"{prefix}{next(fuzz_ids)}"
    return items


@given(items=st.lists(drive_files(), min_size=1, max_size=8))
@PAGES
def test_a_fuzzed_listing_page_stores_the_good_files_and_names_every_bad_one(
    make_drive: Callable[[int], DriveHarness], items: list[Any]
) -> None:
    drive = make_drive(40)
    unique(items, "fz")
    drive.emulator.faults.rewrite(
        "drive.files.list",
        lambda body: {**body, "files": [*body["files"], *items]},
        account=drive.account.email,
    )
    result, job = drive.sync()
    assert result.success, job.last_error
    counters = job.meta_json["counters"]
    rows = drive.rows()
    assert set(expected_rows(drive.drive.files(), DriveLimits())) <= set(rows)
    # Every item is stored or skipped under a named reason: none is lost without a count.
    assert counters["seen"] == counters["inserted"] + counters["skipped_total"]
    assert set(counters["skipped"]) <= NAMED
    bad = sum(1 for i in items if not isinstance(i, dict) or payloads.drive_file_problem(i))
    assert counters["skipped"].get("malformed_item", 0) + counters["skipped"].get("invalid_field", 0) == bad


@given(
    entries=st.lists(st.one_of(drive_files().map(lambda f: {"fileId": "x", "file": f}), hostile), max_size=6)
)
@PAGES
def test_a_fuzzed_change_page_applies_the_good_changes(
    make_drive: Callable[[int], DriveHarness], entries: list[Any]
) -> None:
    drive = make_drive(20)
    assert drive.sync()[0].success
    edited = sorted(drive.rows())[0]
    drive.drive.rename(edited, "Renamed after fuzz")
    for entry in entries:
        if isinstance(entry, dict) and isinstance(entry.get("file"), dict):
            entry["fileId"] = f"chg{next(fuzz_ids)}"
            entry["file"]["id"] = entry["fileId"]
    drive.emulator.faults.rewrite(
        "drive.changes.list",
        lambda body: {**body, "changes": [*entries, *body["changes"]]},
        account=drive.account.email,
    )
    result, job = drive.sync()
    assert result.success, job.last_error
    assert drive.rows()[edited]["title"] == "Renamed after fuzz"
    assert set(job.meta_json["counters"]["skipped"]) <= NAMED


@given(messages=st.lists(gmail_messages(), min_size=1, max_size=4))
@PAGES
def test_fuzzed_thread_answers_store_the_good_messages(
    make_gmail: Callable[..., GmailHarness], messages: list[Any]
) -> None:
    gmail = make_gmail(6)
    unique(messages, "fzm")
    for message in messages:
        if isinstance(message, dict) and isinstance(message.get("threadId"), str):
            message["labelIds"] = message.get("labelIds")

    def inject(body: dict[str, Any]) -> dict[str, Any]:
        return {**body, "messages": [*body["messages"], *messages]}

    gmail.emulator.faults.rewrite("gmail.users.threads.get", inject, calls=[1], account=gmail.account.email)
    result, job = gmail.sync()
    assert result.success, job.last_error
    counters = job.meta_json["counters"]
    assert set(expected_mail(gmail.mailbox)) <= set(gmail.rows())
    assert set(counters["skipped"]) <= NAMED
    bad = sum(1 for m in messages if payloads.gmail_message_problem(m))
    assert counters["skipped"].get("malformed_item", 0) + counters["skipped"].get("invalid_field", 0) == bad


@pytest.mark.parametrize("body", [b"<html><body>502 Bad Gateway</body></html>", b'{"files": [\xff\xfe'])
def test_a_body_that_is_not_json_is_retried_as_bad_response(
    make_drive: Callable[[int], DriveHarness], body: bytes
) -> None:
    drive = make_drive(40)
    rule = drive.emulator.faults.rewrite("drive.files.list", lambda _: body, calls=[1])
    result, job = drive.sync()
    assert rule.fired == 1
    assert result.success and job.status == "completed" and job.meta_json["counters"]["retries"] == 1
    assert set(expected_rows(drive.drive.files(), DriveLimits())) == set(drive.rows())

    drive.emulator.faults.clear()
    drive.emulator.faults.rewrite("drive.changes.list", lambda _: body)
    result, job = drive.sync()
    assert not result.success
    assert job.status == "failed" and job.last_error.startswith("bad_response: Google answered with a body")
