"""Property tests: whatever Google sends, the Drive and Gmail normalisers never crash, every item
they refuse has a named reason, and every record they accept is written by the real store
(SQLite and Postgres: lone surrogates, NUL, huge numbers and oversize text included)."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Mapping
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monolyth_pipelines.domain import drive as drive_domain
from monolyth_pipelines.domain import gmail as gmail_domain
from monolyth_pipelines.domain import payloads
from monolyth_pipelines.domain.drive import ChangeAction, SkipReason
from monolyth_pipelines.domain.records import FileRecord
from monolyth_pipelines.settings import DriveLimits
from monolyth_pipelines.store import accounts, files
from tests.fuzz_payloads import drive_files, gmail_messages, hostile

NAMED = {payloads.MALFORMED_ITEM, payloads.INVALID_FIELD}
DB_SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
ids = itertools.count()


@pytest.fixture
def account(engine: sa.Engine) -> uuid.UUID:
    with engine.begin() as conn:
        return accounts.create_account(conn, owner_id=uuid.uuid4(), provider="google_drive", token_json={})


def store(engine: sa.Engine, account: uuid.UUID, records: list[FileRecord]) -> None:
    with engine.begin() as conn:
        files.upsert_files(conn, account, "google_drive", records)


@given(st.lists(drive_files(), max_size=6))
@DB_SETTINGS
def test_drive_files_are_stored_or_skipped_by_name(
    engine: sa.Engine, account: uuid.UUID, listed: list[Any]
) -> None:
    records, skipped = [], []
    for item in listed:
        if isinstance(item, dict) and "id" in item and payloads.usable_id(item["id"]):
            item["id"] = f"{item['id']}-{next(ids)}"  # distinct rows per example
        skip = drive_domain.classify_drive_file(item, DriveLimits())
        if skip is None:
            records.append(drive_domain.to_file_record(item))
        else:
            assert isinstance(skip, SkipReason)
            skipped.append((skip, payloads.item_key(item)))
    assert len(records) + len(skipped) == len(listed)
    store(engine, account, records)  # the real store takes every accepted record


@given(drive_files(), st.one_of(st.booleans(), hostile), st.one_of(st.just("f"), hostile))
@DB_SETTINGS
def test_drive_changes_are_applied_or_skipped_by_name(
    engine: sa.Engine, account: uuid.UUID, file: Any, removed: Any, file_id: Any
) -> None:
    change = {
        "kind": "drive#change",
        "changeType": "file",
        "fileId": file_id,
        "removed": removed,
        "file": file,
    }
    decision = drive_domain.decide_change(change, DriveLimits())
    if decision.invalid is not None:
        assert decision.invalid in NAMED and decision.action is ChangeAction.IGNORE
    if decision.record is not None:
        store(engine, account, [decision.record])
    if decision.tombstone is not None:
        with engine.begin() as conn:
            files.tombstone_files(conn, account, [decision.tombstone])
    assert drive_domain.decide_change(file, DriveLimits()).action in set(ChangeAction)


@given(hostile)
def test_the_drive_normaliser_takes_any_object(file: Any) -> None:
    if isinstance(file, Mapping):
        assert set(drive_domain.normalise_drive_file(file)) == {
            "id",
            "name",
            "mimeType",
            "modifiedTime",
            "owners",
            "webViewLink",
        }


@given(st.lists(gmail_messages(), max_size=4), st.one_of(st.none(), hostile))
@DB_SETTINGS
def test_gmail_messages_are_stored_or_skipped_by_name(
    engine: sa.Engine, account: uuid.UUID, messages: list[Any], junk: Any
) -> None:
    for message in messages:
        if isinstance(message, dict) and payloads.usable_id(message.get("id")):
            message["id"] = f"{message['id']}-{next(ids)}"
    thread, bad = payloads.split_thread({"id": "t", "messages": messages})
    assert thread is not None and len(thread["messages"]) + len(bad) == len(messages)
    assert {reason for reason, _ in bad} <= NAMED
    decision = gmail_domain.decide_thread(thread, "Label_1")
    records = [gmail_domain.to_message_record(m) for m in decision.keep]
    for record in records:
        assert all(set(a) == {"filename", "mimeType", "size"} for a in record.meta["attachments"])
        assert len(record.meta["attachmentPartIds"]) == len(record.meta["attachments"])
    store(engine, account, records)
    # A thread answer that is not an object, or whose messages are not a list, is one bad item.
    _, bad = payloads.split_thread(junk)
    assert len(bad) <= 1 and {reason for reason, _ in bad} <= NAMED


@given(st.one_of(gmail_messages(), hostile))
def test_the_gmail_normaliser_takes_any_object(message: Any) -> None:
    if isinstance(message, Mapping):
        normalised = gmail_domain.normalise_message(message)
        assert all(set(a) == {"filename", "mimeType", "size"} for a in normalised["attachments"])
        gmail_domain.parts_cut_off(message)
