"""Attachments however deep the MIME tree goes, through the fields mask, over real HTTP."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from monolyth_pipelines.domain.gmail import PART_MASK_DEPTH
from tests.connectors import gmail_harness
from tests.connectors.gmail_harness import GmailHarness, comparable, expected_rows

make_gmail = gmail_harness.make_gmail
gmail_env = gmail_harness.gmail_env

FILES = [
    ("NDA.pdf", "application/pdf", 30_000),  # at the bottom of the forwarded chain
    ("Side letter.pdf", "application/pdf", 2_000),  # mixed in alternative in related
    ("notes.txt", "text/plain", 50),  # at the top
]
ORDER = [FILES[1], FILES[0], FILES[2]]


def _levels(part_id: str) -> int:
    return len(part_id.split(".")) if part_id else 0


def test_attachments_of_forwarded_mail_at_any_depth_in_the_spec_shape(
    make_gmail: Callable[..., GmailHarness], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GMAIL_ATTACHMENT_MIME_TYPES", "application/pdf")
    gmail = make_gmail(0)
    box = gmail.mailbox
    # Two forwards put the PDF 7 levels down, inside the mask; six put it 15 levels down, past it.
    within = box.deliver(subject="Fwd: pack", labels=["Contracts"], layout="forwarded", attachments=FILES)
    beyond = box.deliver(
        subject="Fwd: Fwd: Fwd: pack", labels=["Contracts"], layout="forwarded", forwards=6, attachments=FILES
    )
    flat = box.deliver(subject="Plain pack", labels=["Contracts"], attachments=FILES[:1])

    result, job = gmail.sync()
    assert result.success, job.last_error
    rows = gmail.rows()
    assert comparable(rows) == expected_rows(gmail.mailbox)
    for message in (within, beyond):
        meta = rows[message["id"]]["meta_json"]
        # Exactly the spec's keys; the part ids live beside them.
        # In document order: the body's side letter, the forwarded NDA, the top-level notes.
        assert meta["attachments"] == [
            {"filename": name, "mimeType": mime, "size": size} for name, mime, size in ORDER
        ]
        side, deepest, top = meta["attachmentPartIds"]
        assert side == "0.0.1.1", "mixed inside alternative inside related"
        assert _levels(deepest) == (7 if message is within else 15) and top == "2"
    assert _levels(rows[beyond["id"]]["meta_json"]["attachmentPartIds"][1]) > PART_MASK_DEPTH
    # Only the message the mask cut short is fetched again, unmasked.
    assert gmail.calls("gmail.users.messages.get") == 1
    assert rows[flat["id"]]["meta_json"]["attachmentPartIds"] == ["1"]

    # Selective import reaches the deepest PDFs too, named by their part ids.
    vault = gmail.vault()
    wanted = {
        f"{m['id']}/{rows[m['id']]['meta_json']['attachmentPartIds'][i]}"
        for m in (within, beyond)
        for i in (0, 1)
    } | {f"{flat['id']}/1"}
    assert set(vault) == wanted
    assert all(doc["content"].startswith(b"%PDF") for doc in vault.values())
