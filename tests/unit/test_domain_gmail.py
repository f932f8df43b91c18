"""Gmail message normalisation, attachment discovery and selection, and field masks."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from monolyth_pipelines.domain.gmail import (
    METADATA_HEADERS,
    PART_MASK_DEPTH,
    THREAD_FULL_FIELDS,
    THREAD_METADATA_FIELDS,
    AttachmentRule,
    find_attachments,
    normalise_message,
    parts_cut_off,
    select_attachments,
    thread_full_fields,
    to_message_record,
)
from monolyth_pipelines.settings import GmailLimits


def message(headers: dict[str, str] | list[tuple[str, str]], **extra: Any) -> dict[str, Any]:
    pairs = headers.items() if isinstance(headers, dict) else headers
    payload = {
        "partId": "",
        "mimeType": "text/plain",
        "filename": "",
        "headers": [{"name": n, "value": v} for n, v in pairs],
        "body": {"size": 10},
    }
    payload.update(extra.pop("payload", {}))
    return {
        "id": "18c0ffee",
        "threadId": "18c0ffee",
        "labelIds": ["Label_7", "INBOX"],
        "internalDate": "1764237600000",
        "sizeEstimate": 4321,
        "payload": payload,
        **extra,
    }


BASIC = message(
    {
        "Subject": "Signed NDA \u2013 ACME",
        "From": "legal@acme.com",
        "Date": "Thu, 27 Nov 2025 10:00:00 +0000",
        "Message-ID": "<message-id@example.com>",
    }
)


def test_spec_example_round_trips() -> None:
    assert normalise_message(BASIC) == {
        "subject": "Signed NDA \u2013 ACME",
        "from": "legal@acme.com",
        "date": "2025-11-27T10:00:00Z",
        "messageId": "<message-id@example.com>",
        "attachments": [],
        "fromName": None,
    }


def test_rfc2047_base64_subject_is_decoded() -> None:
    msg = message({"Subject": "=?UTF-8?B?U2lnbmVkIE5EQSDigJMgQUNNRQ==?="})
    assert normalise_message(msg)["subject"] == "Signed NDA \u2013 ACME"


def test_rfc2047_q_subject_with_mixed_charsets_and_plain_text() -> None:
    msg = message({"Subject": "Re: =?iso-8859-1?Q?caf=E9?= und =?UTF-8?Q?na=C3=AFve_Fr=C3=BChst=C3=BCck?="})
    assert normalise_message(msg)["subject"] == "Re: café und naïve Frühstück"


def test_unknown_charset_and_folded_header_never_raise() -> None:
    msg = message({"Subject": "=?x-unknown?Q?Hello?=\r\n =?UTF-8?Q?_World?="})
    subject = normalise_message(msg)["subject"]
    assert subject is not None
    assert "Hello" in subject and "World" in subject


def test_headers_are_case_insensitive() -> None:
    msg = message(
        {"SUBJECT": "Hi", "from": "a@b.com", "message-id": "<x@y>", "DATE": "27 Nov 2025 10:00:00 GMT"}
    )
    normalised = normalise_message(msg)
    assert (normalised["subject"], normalised["from"], normalised["messageId"]) == ("Hi", "a@b.com", "<x@y>")
    assert normalised["date"] == "2025-11-27T10:00:00Z"


def test_display_name_from_keeps_address_in_from_and_name_in_from_name() -> None:
    msg = message({"From": "Legal Team <legal@acme.com>"})
    normalised = normalise_message(msg)
    assert normalised["from"] == "legal@acme.com"
    assert normalised["fromName"] == "Legal Team"


def test_encoded_display_name_with_comma_is_decoded_after_address_parsing() -> None:
    msg = message({"From": "=?UTF-8?Q?M=C3=BCller=2C_J=C3=BCrgen?= <jm@example.de>"})
    normalised = normalise_message(msg)
    assert normalised["from"] == "jm@example.de"
    assert normalised["fromName"] == "Müller, Jürgen"


def test_from_without_address_is_kept_as_name_only() -> None:
    normalised = normalise_message(message({"From": "Mailer Daemon"}))
    assert normalised["from"] is None
    assert normalised["fromName"] == "Mailer Daemon"


def test_missing_subject_and_message_id_are_none() -> None:
    normalised = normalise_message(message({"From": "a@b.com"}))
    assert normalised["subject"] is None
    assert normalised["messageId"] is None


def test_no_date_header_falls_back_to_internal_date() -> None:
    # 1764237600000 ms = 2025-11-27T10:00:00Z
    assert normalise_message(message({"Subject": "x"}))["date"] == "2025-11-27T10:00:00Z"


def test_malformed_date_falls_back_to_internal_date_or_none() -> None:
    assert normalise_message(message({"Date": "not a date"}))["date"] == "2025-11-27T10:00:00Z"
    without_internal = message({"Date": "Mon, 99 Foo 2025"})
    del without_internal["internalDate"]
    assert normalise_message(without_internal)["date"] is None


def test_date_without_zone_is_utc_whatever_the_local_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        msg = message({"Date": "Thu, 27 Nov 2025 10:00:00 -0000"})
        assert normalise_message(msg)["date"] == "2025-11-27T10:00:00Z"
    finally:
        monkeypatch.undo()
        time.tzset()


def test_date_with_offset_is_converted_to_utc() -> None:
    msg = message({"Date": "Thu, 27 Nov 2025 11:30:00 +0100 (CET)"})
    assert normalise_message(msg)["date"] == "2025-11-27T10:30:00Z"


def _part(
    part_id: str,
    mime: str,
    filename: str = "",
    size: int = 0,
    attachment_id: str | None = None,
    parts: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"size": size}
    if attachment_id:
        body["attachmentId"] = attachment_id
    part: dict[str, Any] = {"partId": part_id, "mimeType": mime, "filename": filename, "body": body}
    if parts is not None:
        part["parts"] = parts
    return part


NESTED = message(
    {"Subject": "Contract pack", "From": "legal@acme.com"},
    payload={
        "mimeType": "multipart/mixed",
        "parts": [
            _part(
                "0",
                "multipart/related",
                parts=[
                    _part(
                        "0.0",
                        "multipart/alternative",
                        parts=[
                            _part("0.0.0", "text/plain", size=120),
                            _part("0.0.1", "text/html", size=800),
                        ],
                    ),
                    _part("0.1", "image/png", "logo.png", 2048, "ANGjdJ-inline"),
                ],
            ),
            _part(
                "1",
                "multipart/mixed",
                parts=[
                    _part(
                        "1.0",
                        "multipart/mixed",
                        parts=[
                            _part("1.0.0", "application/pdf", "NDA.pdf", 123456, "ANGjdJ-nda"),
                        ],
                    ),
                ],
            ),
            _part(
                "2",
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                "=?UTF-8?Q?Vertr=C3=A4ge.docx?=",
                5000,
                "ANGjdJ-docx",
            ),
        ],
    },
)


def test_attachments_are_found_at_any_depth_with_exactly_the_spec_keys() -> None:
    attachments = normalise_message(NESTED)["attachments"]
    assert [a["filename"] for a in attachments] == ["logo.png", "NDA.pdf", "Verträge.docx"]
    assert attachments[1] == {"filename": "NDA.pdf", "mimeType": "application/pdf", "size": 123456}
    # The ids selective import needs come from find_attachments, never from the spec shape.
    assert find_attachments(NESTED)[1] == {
        "filename": "NDA.pdf",
        "mimeType": "application/pdf",
        "size": 123456,
        "partId": "1.0.0",
        "attachmentId": "ANGjdJ-nda",
    }
    record = to_message_record(NESTED)
    assert record.meta["attachmentPartIds"] == [a["partId"] for a in find_attachments(NESTED)]


def _chain(levels: int, leaf: dict[str, Any]) -> dict[str, Any]:
    """``leaf`` under ``levels`` container parts: forwarded messages inside mixed parts."""
    part = leaf
    for level in range(levels, 0, -1):
        mime = "message/rfc822" if level % 2 else "multipart/mixed"
        part = {"partId": "x", "mimeType": mime, "filename": "", "body": {"size": 0}, "parts": [part]}
    return part


def test_the_mask_cut_is_detected_exactly_at_its_depth() -> None:
    leaf = {"partId": "deep", "mimeType": "application/pdf", "filename": "deep.pdf", "body": {"size": 7}}
    whole = message({"Subject": "fwd"}, payload=_chain(8, leaf))
    assert normalise_message(whole)["attachments"] == [
        {"filename": "deep.pdf", "mimeType": "application/pdf", "size": 7}
    ]
    assert not parts_cut_off(whole, depth=8), "the leaf is within reach"
    # What a 5-level mask returns: the container at level 5 arrives without its parts.
    cut = message({"Subject": "fwd"}, payload=_chain(8, leaf))
    node = cut["payload"]
    for _ in range(5):
        node = node["parts"][0]
    del node["parts"]
    assert normalise_message(cut)["attachments"] == []
    assert parts_cut_off(cut, depth=5)
    assert not parts_cut_off(message({"Subject": "flat"}, payload=leaf))


def test_inline_image_with_filename_counts_as_attachment() -> None:
    inline = normalise_message(NESTED)["attachments"][0]
    assert inline["mimeType"] == "image/png"
    assert inline["size"] == 2048


def test_single_part_message_that_is_itself_an_attachment() -> None:
    msg = message(
        {"Subject": "scan"},
        payload={
            "mimeType": "application/pdf",
            "filename": "scan.pdf",
            "body": {"size": 99, "attachmentId": "A1"},
        },
    )
    assert normalise_message(msg)["attachments"] == [
        {"filename": "scan.pdf", "mimeType": "application/pdf", "size": 99}
    ]
    assert to_message_record(msg).meta["attachmentPartIds"] == [""]


def test_message_record_fields() -> None:
    record = to_message_record(NESTED, label_ids=["Label_7"])
    assert record.external_id == "18c0ffee"
    assert record.title == "Contract pack"
    assert record.mime == "message/rfc822"
    assert record.size == 4321
    assert record.modified_at == datetime(2025, 11, 27, 10, 0, tzinfo=UTC)
    assert record.url == "https://mail.google.com/mail/u/0/#all/18c0ffee"
    assert record.meta["threadId"] == "18c0ffee"
    assert record.meta["labelIds"] == ["Label_7"]
    assert len(record.meta["attachments"]) == 3
    for key in ("subject", "from", "date", "messageId", "attachments"):
        assert key in record.meta


def test_message_record_uses_message_labels_and_account_link() -> None:
    record = to_message_record(BASIC, account="me@example.com")
    assert record.meta["labelIds"] == ["Label_7", "INBOX"]
    assert record.url == "https://mail.google.com/mail/u/me@example.com/#all/18c0ffee"


LIMITS_RULE = AttachmentRule(
    mime_types=("application/pdf", "image/*"), filename_pattern="*NDA*", max_size_bytes=200_000
)


@pytest.mark.parametrize(
    ("attachment", "selected"),
    [
        ({"filename": "NDA.pdf", "mimeType": "application/pdf", "size": 123456}, True),
        ({"filename": "signed-nda.PDF", "mimeType": "APPLICATION/PDF", "size": 1}, True),
        ({"filename": "nda-scan.png", "mimeType": "image/png", "size": 1}, True),
        ({"filename": "NDA.docx", "mimeType": "application/msword", "size": 1}, False),
        ({"filename": "invoice.pdf", "mimeType": "application/pdf", "size": 1}, False),
        ({"filename": "NDA.pdf", "mimeType": "application/pdf", "size": 200_001}, False),
        ({"filename": "NDA.pdf", "mimeType": "application/pdf", "size": None}, False),
    ],
)
def test_attachment_rule(attachment: dict[str, Any], selected: bool) -> None:
    assert select_attachments(LIMITS_RULE, [attachment]) == ([attachment] if selected else [])


def test_empty_mime_list_selects_nothing_and_limits_build_the_rule() -> None:
    attachments = normalise_message(NESTED)["attachments"]
    assert select_attachments(AttachmentRule(), attachments) == []
    rule = AttachmentRule.from_limits(
        GmailLimits(attachment_mime_types=("application/pdf",), attachment_max_size_mb=1.0)
    )
    assert rule.max_size_bytes == 1_048_576
    assert [a["filename"] for a in select_attachments(rule, attachments)] == ["NDA.pdf"]


def test_field_masks_leave_body_data_out_and_nest_ten_levels() -> None:
    assert "data" not in THREAD_FULL_FIELDS.replace("metadata", "")
    assert THREAD_FULL_FIELDS.count("parts(") == PART_MASK_DEPTH == 10
    assert "body(size,attachmentId)" in THREAD_FULL_FIELDS
    assert "headers(name,value)" in THREAD_FULL_FIELDS
    assert thread_full_fields(2).count("parts(") == 2
    assert THREAD_FULL_FIELDS.count("(") == THREAD_FULL_FIELDS.count(")")
    assert "parts" not in THREAD_METADATA_FIELDS
    assert "headers(name,value)" in THREAD_METADATA_FIELDS
    assert {"Subject", "From", "Date", "Message-ID"} <= set(METADATA_HEADERS)
