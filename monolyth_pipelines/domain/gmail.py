"""Gmail v1 metadata: the requests' field masks, message normalisation and attachment rules.

Pure functions only. The normalised shape is connectors-v1.md §3.2 with these decisions:

* ``from`` is the bare address (the spec example is ``legal@acme.com``); the decoded display
  name goes to the extra key ``fromName``. A From header without an address gives
  ``from = None`` and the text in ``fromName``.
* ``date`` is ``YYYY-MM-DDTHH:MM:SSZ`` (UTC) from the Date header; when that is missing or
  unreadable, from ``internalDate`` (when Gmail received the message, which is also what
  Gmail's own UI sorts by); else ``None``.
* ``attachments`` are every MIME part, at any depth (forwarded ``message/rfc822`` parts
  included), with a non-empty filename, including inline images that carry one; each entry has
  exactly the spec keys ``filename``, ``mimeType``, ``size``. The stored row keeps each one's
  Gmail part id beside them, index for index, in ``attachmentPartIds`` (selective import names
  Vault documents by it); ``find_attachments`` also gives the ``attachmentId`` that
  attachments.get needs.
* The ``fields`` mask asks for ``PART_MASK_DEPTH`` levels of parts. A message whose tree goes
  deeper (``parts_cut_off``) is fetched again without a mask, so depth never hides an attachment.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from monolyth_pipelines.domain import payloads
from monolyth_pipelines.domain.email_headers import decode_header_value, parse_from, parse_mail_date
from monolyth_pipelines.domain.records import FileRecord, Tombstone, TombstoneReason
from monolyth_pipelines.domain.timestamps import format_utc_z, from_epoch_millis, parse_rfc3339
from monolyth_pipelines.settings import GmailLimits

MESSAGE_MIME = "message/rfc822"
# An ``attachments`` entry holds exactly these (connectors-v1.md §3.2).
ATTACHMENT_KEYS = ("filename", "mimeType", "size")

# metadataHeaders for format=metadata: exactly the headers normalise_message reads.
METADATA_HEADERS: tuple[str, ...] = ("Subject", "From", "Date", "Message-ID")

# Gmail's own address shape; u/0 is the browser's first signed-in account, so callers that know
# the mailbox address should pass it (u/<address> selects that account whatever its position).
GMAIL_WEB_URL = "https://mail.google.com/mail/u/{account}/#all/{message_id}"

_MESSAGE_SCALARS = "id,threadId,labelIds,internalDate,sizeEstimate,historyId"
_PART_SCALARS = "partId,mimeType,filename,body(size,attachmentId)"


def part_fields(depth: int) -> str:
    """Selector for a MessagePart and ``depth`` levels of nested ``parts``, without body data.

    Nested parts carry no headers: we only read headers from the top-level payload, and
    leaving them out keeps format=full responses small.
    """
    if depth <= 0:
        return _PART_SCALARS
    return f"{_PART_SCALARS},parts({part_fields(depth - 1)})"


# Levels of nested parts the format=full mask asks for. Forwarded mail adds two levels per
# forward (message/rfc822, then the forwarded message's multipart); ten levels hold an
# attachment inside three forwards. Deeper trees are detected and fetched unmasked.
PART_MASK_DEPTH = 10
_CONTAINERS = ("multipart/", MESSAGE_MIME)


def thread_full_fields(depth: int = PART_MASK_DEPTH) -> str:
    """``fields=`` for threads.get format=full: headers and the part tree, never ``body.data``.

    Attachments nested deeper than ``depth`` levels are cut off by the mask.
    """
    payload = f"headers(name,value),{part_fields(depth)}"
    return f"id,historyId,messages({_MESSAGE_SCALARS},payload({payload}))"


THREAD_FULL_FIELDS = thread_full_fields()
THREAD_METADATA_FIELDS = f"id,historyId,messages({_MESSAGE_SCALARS},payload(mimeType,headers(name,value)))"


def _headers(message: Mapping[str, Any]) -> dict[str, str]:
    """Top-level headers by lower-cased name; the first occurrence wins, as mail readers do."""
    payload = message.get("payload")
    found: dict[str, str] = {}
    if not isinstance(payload, Mapping):
        return found
    listed = payload.get("headers")
    for header in listed if isinstance(listed, list) else []:
        if not isinstance(header, Mapping):
            continue
        name, value = header.get("name"), header.get("value")
        if isinstance(name, str) and isinstance(value, str):
            found.setdefault(name.strip().lower(), value)
    return found


def _walk_parts(payload: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every part in document order; iterative so a hostile nesting depth cannot recurse us out."""
    stack: list[Mapping[str, Any]] = [payload]
    while stack:
        part = stack.pop()
        yield part
        children = part.get("parts")
        if isinstance(children, list):
            stack.extend(reversed([c for c in children if isinstance(c, Mapping)]))


def _int_or_none(value: object) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None
    # Negative or past a bigint: not a size any column can hold.
    return number if 0 <= number <= payloads.MAX_SIZE else None


def parts_cut_off(message: Mapping[str, Any], depth: int = PART_MASK_DEPTH) -> bool:
    """True when a mask of ``depth`` levels cut this message's part tree: a container part at
    the last level the mask reaches, whose children were therefore left out."""
    payload = message.get("payload")
    if not isinstance(payload, Mapping):
        return False
    level: list[Mapping[str, Any]] = [payload]
    for _ in range(depth):
        children = [p["parts"] for p in level if isinstance(p.get("parts"), list)]
        level = [c for parts in children for c in parts if isinstance(c, Mapping)]
    return any(
        "parts" not in part and str(part.get("mimeType") or "").lower().startswith(_CONTAINERS)
        for part in level
    )


def find_attachments(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every part with a non-empty filename, at any depth: the spec keys, plus ``partId`` and
    ``attachmentId`` when Gmail sends them (for selective import; never in ``attachments``)."""
    payload = message.get("payload")
    if not isinstance(payload, Mapping):
        return []
    attachments: list[dict[str, Any]] = []
    for part in _walk_parts(payload):
        raw_name = part.get("filename")
        filename = decode_header_value(raw_name) if isinstance(raw_name, str) and raw_name else None
        if not filename:
            continue
        body = part.get("body") if isinstance(part.get("body"), Mapping) else {}
        mime = part.get("mimeType")
        item: dict[str, Any] = {
            "filename": filename,
            "mimeType": mime if isinstance(mime, str) else None,
            "size": _int_or_none(body.get("size")),
        }
        if payloads.usable_id(part.get("partId")) is not None or part.get("partId") == "":
            item["partId"] = str(part["partId"])
        if payloads.usable_id(body.get("attachmentId")) is not None:
            item["attachmentId"] = body["attachmentId"]
        attachments.append(item)
    return attachments


def normalise_message(message: Mapping[str, Any]) -> dict[str, Any]:
    """The spec's shape for one Gmail API Message plus ``fromName``.

    format=metadata carries no MIME parts, so ``attachments`` is ``[]`` for it; use format=full
    with THREAD_FULL_FIELDS when attachment names and sizes matter.
    """
    headers = _headers(message)
    address, display_name = parse_from(headers.get("from"))
    moment = parse_mail_date(headers.get("date")) or from_epoch_millis(message.get("internalDate"))
    message_id = (headers.get("message-id") or "").strip() or None
    return {
        "subject": decode_header_value(headers.get("subject")),
        "from": address,
        "date": format_utc_z(moment) if moment else None,
        "messageId": message_id,
        "attachments": [{k: a[k] for k in ATTACHMENT_KEYS} for a in find_attachments(message)],
        "fromName": display_name,
    }


def message_url(message_id: str, account: str | None = None) -> str:
    return GMAIL_WEB_URL.format(account=quote(account or "0", safe="@"), message_id=quote(message_id))


def to_message_record(
    message: Mapping[str, Any],
    label_ids: Sequence[str] | None = None,
    account: str | None = None,
) -> FileRecord:
    """The ``connector_files`` row for one message.

    ``label_ids`` overrides the message's own ``labelIds`` (history records may be fresher);
    ``account`` is the mailbox address for the web link (see GMAIL_WEB_URL). ``meta`` is the
    normalised shape plus ``attachmentPartIds``, ``threadId`` and ``labelIds``.
    """
    message_id = str(message["id"])
    normalised = normalise_message(message)
    labels = list(label_ids) if label_ids is not None else list(message.get("labelIds") or [])
    # attachmentId is left out of the stored row: Gmail issues a new one on every fetch, so
    # keeping it would make an unchanged message look changed on every full pull.
    part_ids = [a.get("partId") for a in find_attachments(message)]
    meta = payloads.scrub(
        {
            **normalised,
            "attachmentPartIds": part_ids,
            "threadId": message.get("threadId"),
            "labelIds": labels,
        }
    )
    return FileRecord(
        external_id=message_id,
        title=meta["subject"],
        mime=MESSAGE_MIME,
        size=_int_or_none(message.get("sizeEstimate")),
        modified_at=parse_rfc3339(normalised["date"]),
        url=message_url(message_id, account),
        meta=meta,
    )


@dataclass(frozen=True, slots=True)
class AttachmentRule:
    """Which attachments the selective import takes.

    ``mime_types`` are fnmatch patterns (``application/pdf``, ``image/*``), case-insensitive; an
    empty tuple selects nothing, so import is opt-in. ``filename_pattern`` (fnmatch,
    case-insensitive) and ``max_size_bytes`` are extra conditions when set; an attachment with an
    unknown size passes the size check only if no limit is set.
    """

    mime_types: tuple[str, ...] = ()
    filename_pattern: str | None = None
    max_size_bytes: int | None = None

    @classmethod
    def from_limits(cls, limits: GmailLimits) -> AttachmentRule:
        return cls(
            mime_types=tuple(limits.attachment_mime_types),
            filename_pattern=limits.attachment_filename_pattern,
            max_size_bytes=int(limits.attachment_max_size_mb * 1024 * 1024),
        )

    def matches(self, attachment: Mapping[str, Any]) -> bool:
        mime = str(attachment.get("mimeType") or "").lower()
        if not any(fnmatch.fnmatchcase(mime, pattern.lower()) for pattern in self.mime_types):
            return False
        if self.filename_pattern:
            filename = str(attachment.get("filename") or "").lower()
            if not fnmatch.fnmatchcase(filename, self.filename_pattern.lower()):
                return False
        if self.max_size_bytes is not None:
            size = attachment.get("size")
            if not isinstance(size, int) or size > self.max_size_bytes:
                return False
        return True


def select_attachments(
    rule: AttachmentRule, attachments: Iterable[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    """The attachments ``rule`` selects, in their original order."""
    return [attachment for attachment in attachments if rule.matches(attachment)]


def attachment_external_id(message_id: str, attachment: Mapping[str, Any]) -> str:
    """The Vault id of an attachment: stable across fetches, unlike Gmail's attachmentId.

    A message's MIME structure never changes, so its part id names the same part forever.
    """
    part = attachment.get("partId")
    return f"{message_id}/{part if part not in (None, '') else attachment.get('filename')}"


# Threads whose every message carries one of these are not listed by threads.list by default.
HIDDEN_LABELS = frozenset({"TRASH", "SPAM"})


@dataclass(frozen=True, slots=True)
class ThreadDecision:
    keep: list[Mapping[str, Any]]  # messages to store
    tombstones: list[Tombstone]  # messages that leave the live set (ignored if never stored)


def find_label(labels: Sequence[Mapping[str, Any]], wanted: str) -> Mapping[str, Any] | None:
    """The configured label among ``labels.list``'s: names matched exactly, then as ids (INBOX),
    then case-insensitively, because Gmail treats label names case-insensitively."""
    return (
        next((lab for lab in labels if lab.get("name") == wanted), None)
        or next((lab for lab in labels if lab.get("id") == wanted), None)
        or next((lab for lab in labels if str(lab.get("name", "")).casefold() == wanted.casefold()), None)
    )


def decide_thread(thread: Mapping[str, Any] | None, label_id: str) -> ThreadDecision:
    """What the current state of one thread (threads.get) means for the rows of its messages.

    The same rule serves the full pull and history replay, so both converge on one state:
    a thread is in scope when one of its messages outside trash and spam carries the label
    (what threads.list with that label shows); then every such message is stored. Messages in
    trash or spam are tombstoned ``trashed``; all of them are tombstoned ``left_label`` once the
    thread is out of scope. ``None`` (the thread is gone) decides nothing: the deletions come
    with their own history records, or from the reconcile of a full pull.
    """
    if thread is None:
        return ThreadDecision([], [])
    messages = [m for m in thread.get("messages") or [] if isinstance(m, Mapping) and m.get("id")]

    def hidden(message: Mapping[str, Any]) -> bool:
        return bool(HIDDEN_LABELS.intersection(message.get("labelIds") or []))

    visible = [m for m in messages if not hidden(m)]
    in_scope = any(label_id in (m.get("labelIds") or []) for m in visible)
    keep = visible if in_scope else []
    tombstones = [
        Tombstone(str(m["id"]), TombstoneReason.TRASHED if hidden(m) else TombstoneReason.LEFT_LABEL)
        for m in messages
        if not in_scope or hidden(m)
    ]
    return ThreadDecision(keep, tombstones)
