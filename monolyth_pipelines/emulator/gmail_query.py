"""A small subset of Gmail search (``q``), compiled to a predicate over one message.

Supported: ``label:``, ``in:`` (inbox, sent, trash, spam, anywhere), ``is:`` (unread, starred,
important), ``from:``, ``to:``, ``subject:``, ``filename:``, ``has:attachment``,
``after:``/``before:`` (``YYYY/MM/DD`` or epoch seconds), ``-`` to negate, quoted phrases, and
bare words (matched in Subject and the snippet). Like Gmail, an unknown operator never errors: it
is searched as a word, so it usually matches nothing. A thread matches when any message does.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from datetime import UTC, datetime

from monolyth_pipelines.emulator.gmail import Mailbox, Message

MessagePredicate = Callable[[Message], bool]


def _day_ms(value: str) -> int | None:
    if value.isdigit():
        return int(value) * 1000
    for fmt in ("%Y/%m/%d", "%Y-%m-%d", "%m/%d/%Y"):
        try:
            return int(datetime.strptime(value, fmt).replace(tzinfo=UTC).timestamp() * 1000)
        except ValueError:
            continue
    return None


def _label_matcher(box: Mailbox, name: str) -> MessagePredicate:
    wanted = name.lower().replace("-", " ")
    ids = {
        label.id
        for label in box.labels.values()
        if label.id.lower() == name.lower() or label.name.lower().replace("-", " ") == wanted
    }
    return lambda m: any(label in ids for label in m.labels)


def _term(box: Mailbox, term: str) -> MessagePredicate:
    key, sep, value = term.partition(":")
    key = key.lower()
    if sep and value:
        lowered = value.lower()
        if key == "label":
            return _label_matcher(box, value)
        if key == "in":
            if lowered == "anywhere":
                return lambda m: True
            return _label_matcher(box, value.upper())
        if key == "is":
            return _label_matcher(box, value.upper())
        if key in ("from", "to", "subject"):
            header = {"from": "From", "to": "To", "subject": "Subject"}[key]
            return lambda m: lowered in (m.header(header) or "").lower()
        if key == "filename":
            return lambda m: any(lowered in a.filename.lower() for a in m.spec.attachments)
        if key == "has" and lowered == "attachment":
            return lambda m: any(not a.inline for a in m.spec.attachments)
        if key in ("after", "before", "newer", "older"):
            bound = _day_ms(value)
            if bound is not None:
                if key in ("after", "newer"):
                    return lambda m: m.internal_ms >= bound
                return lambda m: m.internal_ms < bound
    needle = term.lower()
    return lambda m: needle in (m.header("Subject") or "").lower() or needle in m.snippet.lower()


def compile_gmail_query(box: Mailbox, q: str | None) -> MessagePredicate | None:
    """The predicate for ``q``, or None when ``q`` is empty (every message matches)."""
    if q is None or not q.strip():
        return None
    try:
        words = shlex.split(q)
    except ValueError:
        words = q.split()
    checks: list[tuple[bool, MessagePredicate]] = []
    for word in words:
        negate = word.startswith("-") and len(word) > 1
        checks.append((negate, _term(box, word[1:] if negate else word)))
    return lambda m: all(check(m) != negate for negate, check in checks)


def mentions_hidden_labels(q: str | None) -> bool:
    """Whether ``q`` itself asks for trash or spam (Gmail then includes them)."""
    lowered = (q or "").lower()
    return any(
        term in lowered for term in ("in:trash", "in:spam", "in:anywhere", "label:trash", "label:spam")
    )
