"""Gmail pieces without a server: thread decisions, stored shape, settings, the quota gate."""

from __future__ import annotations

from typing import Any

import pytest

from monolyth_pipelines.domain.gmail import attachment_external_id, decide_thread, to_message_record
from monolyth_pipelines.domain.records import Tombstone, TombstoneReason
from monolyth_pipelines.google.pacing import Pacer, QuotaGate
from monolyth_pipelines.settings import GmailLimits

LABEL = "Label_1"


def msg(message_id: str, *labels: str, **extra: Any) -> dict[str, Any]:
    return {"id": message_id, "threadId": "t", "labelIds": list(labels), **extra}


def ids(messages: list[Any]) -> list[str]:
    return [m["id"] for m in messages]


def test_a_thread_with_the_label_keeps_every_visible_message_and_retires_trashed_ones() -> None:
    decision = decide_thread(
        {"messages": [msg("a", LABEL), msg("b", "INBOX"), msg("c", LABEL, "TRASH")]}, LABEL
    )
    assert ids(decision.keep) == ["a", "b"]  # a reply without the label still belongs to the thread
    assert decision.tombstones == [Tombstone("c", TombstoneReason.TRASHED)]


def test_a_thread_that_lost_the_label_is_retired_message_by_message() -> None:
    decision = decide_thread({"messages": [msg("a", "INBOX"), msg("b", "SPAM")]}, LABEL)
    assert decision.keep == []
    assert decision.tombstones == [
        Tombstone("a", TombstoneReason.LEFT_LABEL),
        Tombstone("b", TombstoneReason.TRASHED),
    ]


def test_the_label_only_on_trashed_messages_does_not_count() -> None:
    decision = decide_thread({"messages": [msg("a", LABEL, "TRASH"), msg("b", "INBOX")]}, LABEL)
    assert decision.keep == []
    assert decision.tombstones == [
        Tombstone("a", TombstoneReason.TRASHED),
        Tombstone("b", TombstoneReason.LEFT_LABEL),
    ]


def test_a_vanished_thread_decides_nothing() -> None:
    assert decide_thread(None, LABEL).keep == [] and decide_thread(None, LABEL).tombstones == []
    assert decide_thread({"id": "t"}, LABEL).keep == []


def test_the_stored_row_leaves_the_unstable_attachment_id_out() -> None:
    message = msg(
        "m1",
        LABEL,
        payload={
            "mimeType": "multipart/mixed",
            "headers": [{"name": "Subject", "value": "x"}],
            "parts": [
                {
                    "partId": "1",
                    "mimeType": "application/pdf",
                    "filename": "a.pdf",
                    "body": {"size": 3, "attachmentId": "ANG-1"},
                }
            ],
        },
    )
    again = {**message, "payload": {**message["payload"], "parts": [{**message["payload"]["parts"][0]}]}}
    again["payload"]["parts"][0]["body"] = {"size": 3, "attachmentId": "ANG-2"}  # Gmail's next fetch
    first, second = to_message_record(message), to_message_record(again)
    assert first.meta["attachments"] == [{"filename": "a.pdf", "mimeType": "application/pdf", "size": 3}]
    assert first.meta["attachmentPartIds"] == ["1"]
    assert first == second
    assert attachment_external_id("m1", {"partId": first.meta["attachmentPartIds"][0]}) == "m1/1"
    assert attachment_external_id("m1", {"partId": "", "filename": "whole.pdf"}) == "m1/whole.pdf"


def test_limits_read_costs_batch_size_and_attachment_switch_from_the_environment() -> None:
    limits = GmailLimits.from_env(
        {
            "GMAIL_QUOTA_UNITS_PER_SECOND": "100",
            "GMAIL_QUOTA_COSTS": "threads.get=40, attachments.get=20",
            "GMAIL_BATCH_SIZE": "25",
            "GMAIL_ATTACHMENT_METADATA": "false",
        }
    )
    assert limits.quota_units_per_second == 100.0 and limits.batch_size == 25
    assert limits.method_costs["threads.get"] == 40 and limits.method_costs["attachments.get"] == 20
    assert limits.method_costs["threads.list"] == 10  # the others keep their defaults
    assert limits.attachment_metadata is False
    assert GmailLimits.from_env({}).attachment_metadata is True
    with pytest.raises(ValueError, match="GMAIL_QUOTA_COSTS"):
        GmailLimits.from_env({"GMAIL_QUOTA_COSTS": "threads.get"})


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)


def test_a_batch_counts_in_the_window_until_a_second_after_its_answer() -> None:
    clock = FakeClock()
    pacer = Pacer(1000, capacity=1000, costs={"threads.get": 10}, clock=clock, sleep=clock.sleep)
    quota = QuotaGate(pacer, clock=clock, sleep=clock.sleep)
    with quota.spend("threads.get", 50, batch=True):  # 500 units, sent at 100.0
        clock.now += 0.3  # Google takes 0.3 s to run them: they count until 101.3 at the latest
    with quota.spend("threads.get", 50, batch=True):
        pass
    sent = clock.now
    with quota.spend("threads.get", 50, batch=True):
        pass
    # The pacer alone would have sent the third batch at 101.0, one window after the first was
    # sent; the gate waits for a window after the first was answered.
    assert sent < 101.0
    assert clock.now == pytest.approx(101.3)


def test_single_calls_between_batches_come_out_of_the_next_batch() -> None:
    clock = FakeClock()
    pacer = Pacer(
        2000, costs={"threads.list": 10, "threads.get": 10, "labels.list": 1}, clock=clock, sleep=clock.sleep
    )
    quota = QuotaGate(pacer, clock=clock, sleep=clock.sleep)
    assert quota.loose_calls("threads.get") == 0
    with quota.spend("threads.list"):
        pass
    with quota.spend("labels.list"):
        pass
    assert quota.loose_calls("threads.get") == 2  # 11 units: two 10-unit calls' worth
    with quota.spend("threads.get", 48, batch=True):
        pass
    assert quota.loose_calls("threads.get") == 0
