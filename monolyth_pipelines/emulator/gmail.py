"""One account's mailbox: labels, threads, messages, the history log, mutations and Gmail JSON.

History works as Gmail's does: each mutation appends one record with a higher id (ids grow
with random gaps, as Gmail warns they do), ``historyId`` of a message/thread is that of the
last record touching it, and records older than the retained window are gone, so a
``startHistoryId`` before the window answers 404. A freshly generated mailbox has no history
yet: its window starts at the profile ``historyId`` of the moment it was built.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from monolyth_pipelines.emulator.mime import (
    LAYOUTS,
    AttachmentSpec,
    MessageSpec,
    Part,
    b64url,
    build_tree,
    part_json,
    render_raw,
    size_estimate,
    snippet_of,
)
from monolyth_pipelines.emulator.paging import View
from monolyth_pipelines.emulator.timeutil import to_ms

FORMATS = ("minimal", "full", "raw", "metadata")

# (id, messageListVisibility, labelListVisibility) as labels.list shows Gmail's system labels.
_SYSTEM_LABELS: tuple[tuple[str, str | None, str | None], ...] = (
    ("CHAT", "hide", "labelHide"),
    ("SENT", None, None),
    ("INBOX", None, None),
    ("IMPORTANT", "hide", "labelHide"),
    ("TRASH", "hide", "labelHide"),
    ("DRAFT", None, None),
    ("SPAM", "hide", "labelHide"),
    ("CATEGORY_FORUMS", None, None),
    ("CATEGORY_UPDATES", None, None),
    ("CATEGORY_PERSONAL", None, None),
    ("CATEGORY_PROMOTIONS", None, None),
    ("CATEGORY_SOCIAL", None, None),
    ("STARRED", None, None),
    ("UNREAD", None, None),
)
HIDDEN_LABELS = frozenset({"SPAM", "TRASH"})
HISTORY_TYPES = ("messageAdded", "messageDeleted", "labelAdded", "labelRemoved")


@dataclass(slots=True)
class Label:
    id: str
    name: str
    type: str
    message_list_visibility: str | None = None
    label_list_visibility: str | None = None

    def json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "name": self.name}
        if self.message_list_visibility:
            out["messageListVisibility"] = self.message_list_visibility
        if self.label_list_visibility:
            out["labelListVisibility"] = self.label_list_visibility
        out["type"] = self.type
        return out


@dataclass(slots=True, eq=False)
class Message:
    id: str
    thread_id: str
    internal_ms: int
    labels: list[str]
    history_id: int
    spec: MessageSpec
    deleted: bool = False
    _snippet: str | None = None

    @property
    def snippet(self) -> str:
        if self._snippet is None:
            self._snippet = snippet_of(self.spec)
        return self._snippet

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.spec.headers:
            if key.lower() == lowered:
                return value
        return None


@dataclass(slots=True, eq=False)
class Thread:
    id: str
    messages: list[Message] = field(default_factory=list)
    history_id: int = 0

    def live(self) -> list[Message]:
        return [m for m in self.messages if not m.deleted]

    def last_ms(self) -> int:
        return max((m.internal_ms for m in self.messages if not m.deleted), default=0)

    def label_set(self) -> set[str]:
        return {label for m in self.messages if not m.deleted for label in m.labels}


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    message_id: str
    thread_id: str
    label_ids: tuple[str, ...]  # the message's labels right after the change
    changed: tuple[str, ...] = ()  # labels added or removed (label records only)


@dataclass(frozen=True, slots=True)
class HistoryRecord:
    id: int
    kind: str  # one of HISTORY_TYPES; a relabel adding and removing writes two records
    entries: tuple[HistoryEntry, ...]

    def json(self) -> dict[str, Any]:
        messages = [{"id": e.message_id, "threadId": e.thread_id} for e in self.entries]
        out: dict[str, Any] = {"id": str(self.id), "messages": messages}
        if self.kind == "messageAdded":
            out["messagesAdded"] = [{"message": _entry_message(e)} for e in self.entries]
        elif self.kind == "messageDeleted":
            out["messagesDeleted"] = [{"message": _entry_message(e)} for e in self.entries]
        elif self.kind == "labelAdded":
            out["labelsAdded"] = [
                {"message": _entry_message(e), "labelIds": list(e.changed)} for e in self.entries
            ]
        else:
            out["labelsRemoved"] = [
                {"message": _entry_message(e), "labelIds": list(e.changed)} for e in self.entries
            ]
        return out

    def touches_label(self, label_id: str) -> bool:
        return any(label_id in e.label_ids or label_id in e.changed for e in self.entries)


def _entry_message(entry: HistoryEntry) -> dict[str, Any]:
    out: dict[str, Any] = {"id": entry.message_id, "threadId": entry.thread_id}
    if entry.label_ids:
        out["labelIds"] = list(entry.label_ids)
    return out


def message_id_for(internal_ms: int, counter: int) -> str:
    """Gmail-like ids: 16 hex digits that grow with the receive time."""
    return f"{((internal_ms << 20) | (counter & 0xFFFFF)) & 0xFFFFFFFFFFFFFFFF:016x}"


class Mailbox:
    """The Gmail mailbox of one account. Public methods are the mutation and read API tests use."""

    def __init__(
        self,
        email: str,
        display_name: str,
        *,
        seed_key: str,
        lock: threading.RLock,
        clock: Callable[[], float],
        retention: int | None,
        first_history_id: int = 1000,
    ) -> None:
        self.email = email
        self.display_name = display_name
        self._lock = lock
        self._clock = clock
        self._rng = random.Random("gmail:" + seed_key)
        self.retention = retention
        self.labels: dict[str, Label] = {
            lid: Label(lid, lid, "system", mlv, llv) for lid, mlv, llv in _SYSTEM_LABELS
        }
        self.threads: dict[str, Thread] = {}
        self.messages: dict[str, Message] = {}
        self.history: list[HistoryRecord] = []
        self.history_id = first_history_id
        self.history_floor = first_history_id
        self.push: Any = None  # the emulator's PushHub (emulator/push.py), set by add_account
        self.generation = 0
        self._counter = 0
        self._thread_view: View[Thread] | None = None
        self._message_view: View[Message] | None = None

    # --- ids, time, bookkeeping -----------------------------------------------------------------

    def next_history_id(self) -> int:
        self.history_id += self._rng.randint(1, 7)
        return self.history_id

    def new_message_id(self, internal_ms: int) -> str:
        while True:
            self._counter += 1
            message_id = message_id_for(internal_ms, self._counter)
            if message_id not in self.messages:
                return message_id

    def _now_ms(self) -> int:
        latest = max((m.internal_ms for m in self.messages.values()), default=0)
        return max(int(self._clock() * 1000), latest + 1)

    def add_generated(self, thread: Thread) -> None:
        """Adopt a generated thread (no history records: it predates the retained window)."""
        self.threads[thread.id] = thread
        for message in thread.messages:
            self.messages[message.id] = message
        self.generation += 1

    def seal_generated(self) -> None:
        """Close the corpus: history starts after the newest generated change."""
        self.history_floor = self.history_id

    def _append(self, kind: str, entries: Sequence[HistoryEntry], threads: Iterable[Thread]) -> int:
        record = HistoryRecord(self.next_history_id(), kind, tuple(entries))
        self.history.append(record)
        for thread in threads:
            thread.history_id = record.id
        if self.retention is not None and len(self.history) > self.retention:
            dropped = self.history[: len(self.history) - self.retention]
            del self.history[: len(dropped)]
            self.history_floor = dropped[-1].id
        self.generation += 1
        if self.push is not None:
            labels = {label for e in entries for label in e.label_ids}
            changed = {label for e in entries for label in e.changed}
            self.push.gmail_changed(self.email, kind, labels, changed)
        return record.id

    def _label_id(self, label: str) -> str:
        if label in self.labels:
            return label
        for candidate in self.labels.values():
            if candidate.name == label:
                return candidate.id
        raise KeyError(f"no such label: {label}")

    def _message(self, message_id: str) -> Message:
        message = self.messages.get(message_id)
        if message is None or message.deleted:
            raise KeyError(f"no such message: {message_id}")
        return message

    def _thread(self, thread_id: str) -> Thread:
        thread = self.threads.get(thread_id)
        if thread is None or not thread.live():
            raise KeyError(f"no such thread: {thread_id}")
        return thread

    # --- views for list calls -------------------------------------------------------------------

    def thread_view(self) -> View[Thread]:
        if self._thread_view is None or self._thread_view.generation != self.generation:
            live = [t for t in self.threads.values() if t.live()]
            live.sort(key=lambda t: (t.last_ms(), t.id), reverse=True)  # newest first, as Gmail
            self._thread_view = View(live, lambda t: t.id, self.generation)
        return self._thread_view

    def message_view(self) -> View[Message]:
        if self._message_view is None or self._message_view.generation != self.generation:
            live = [m for m in self.messages.values() if not m.deleted]
            live.sort(key=lambda m: (m.internal_ms, m.id), reverse=True)
            self._message_view = View(live, lambda m: m.id, self.generation)
        return self._message_view

    # --- mutations (the Python API) -------------------------------------------------------------

    def create_label(self, name: str) -> dict[str, Any]:
        with self._lock:
            for label in self.labels.values():
                if label.name == name:
                    raise ValueError(f"label exists: {name}")
            number = 1 + sum(1 for label in self.labels.values() if label.type == "user")
            label_id = f"Label_{number}"
            while label_id in self.labels:
                number += 1
                label_id = f"Label_{number}"
            self.labels[label_id] = Label(label_id, name, "user", "show", "labelShow")
            return self.labels[label_id].json()

    def deliver(
        self,
        *,
        subject: str | None = "Hello",
        sender: str = "Sender <sender@example.org>",
        to: str | None = None,
        body: str | None = None,
        thread_id: str | None = None,
        labels: Sequence[str] = ("INBOX", "UNREAD"),
        attachments: Sequence[AttachmentSpec | tuple[str, str, int]] = (),
        internal_date: datetime | str | float | None = None,
        date_header: str | bool = True,
        extra_headers: Sequence[tuple[str, str]] = (),
        layout: str = "alternative",
        forwards: int = 2,
    ) -> dict[str, Any]:
        """New mail: a new thread, or a reply in ``thread_id``. Returns the message (format=minimal).

        ``subject=None`` leaves the Subject header out; ``date_header`` may be a literal (even a
        malformed one) or False for no Date header. ``attachments`` items are AttachmentSpec or
        ``(filename, mime_type, size)``. Label names are accepted where ids are expected.
        ``layout`` is one of ``mime.LAYOUTS`` (with attachments, plain/alternative become mixed);
        ``forwards`` is how many forwarded messages wrap the first attachment of ``forwarded``.
        """
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}")
        with self._lock:
            internal = to_ms(internal_date) if internal_date is not None else self._now_ms()
            label_ids = [self._label_id(label) for label in labels]
            parent = self._thread(thread_id) if thread_id is not None else None
            message_id = self.new_message_id(internal)
            headers: list[tuple[str, str]] = [
                ("From", sender),
                ("To", to or f"{self.display_name} <{self.email}>"),
            ]
            if subject is not None:
                headers.append(("Subject", subject))
            if date_header is True:
                headers.append(("Date", format_datetime(datetime.fromtimestamp(internal / 1000, UTC))))
            elif isinstance(date_header, str):
                headers.append(("Date", date_header))
            headers.append(("Message-ID", f"<emu.{message_id}@mail.example.org>"))
            if parent is not None:
                previous = parent.live()[-1].header("Message-ID")
                if previous:
                    headers += [("In-Reply-To", previous), ("References", previous)]
            headers += list(extra_headers)
            specs = tuple(a if isinstance(a, AttachmentSpec) else AttachmentSpec(*a) for a in attachments)
            if specs and layout in ("plain", "alternative"):
                layout = "mixed"
            spec = MessageSpec(tuple(headers), layout, self._rng.randrange(2**31), body, specs, forwards)
            thread = parent or Thread(message_id)
            message = Message(message_id, thread.id, internal, label_ids, 0, spec)
            thread.messages.append(message)
            thread.messages.sort(key=lambda m: m.internal_ms)
            self.threads[thread.id] = thread
            self.messages[message_id] = message
            message.history_id = self._append(
                "messageAdded", [HistoryEntry(message_id, thread.id, tuple(label_ids))], [thread]
            )
            return self.message_json(message, "minimal")

    def delete_message(self, message_id: str) -> None:
        """Permanent deletion (not trash): a messageDeleted record; 404 on get afterwards."""
        with self._lock:
            message = self._message(message_id)
            message.deleted = True
            entry = HistoryEntry(message.id, message.thread_id, tuple(message.labels))
            self._append("messageDeleted", [entry], [self.threads[message.thread_id]])

    def delete_thread(self, thread_id: str) -> None:
        with self._lock:
            thread = self._thread(thread_id)
            entries = []
            for message in thread.live():
                message.deleted = True
                entries.append(HistoryEntry(message.id, thread.id, tuple(message.labels)))
            self._append("messageDeleted", entries, [thread])

    def relabel(
        self,
        *,
        message_id: str | None = None,
        thread_id: str | None = None,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Add/remove labels (ids or names) on one message or every message of a thread.

        Writes a labelAdded and/or a labelRemoved record listing only the messages that changed.
        Returns the thread (format=minimal).
        """
        with self._lock:
            if (message_id is None) == (thread_id is None):
                raise ValueError("give exactly one of message_id, thread_id")
            targets = [self._message(message_id)] if message_id else self._thread(thread_id or "").live()
            add_ids = [self._label_id(label) for label in add]
            remove_ids = [self._label_id(label) for label in remove]
            thread = self.threads[targets[0].thread_id]
            added: list[HistoryEntry] = []
            removed: list[HistoryEntry] = []
            for message in targets:
                new_ids = [lid for lid in add_ids if lid not in message.labels]
                message.labels.extend(new_ids)
                gone = [lid for lid in remove_ids if lid in message.labels]
                message.labels[:] = [lid for lid in message.labels if lid not in gone]
                if new_ids:
                    added.append(HistoryEntry(message.id, thread.id, tuple(message.labels), tuple(new_ids)))
                if gone:
                    removed.append(HistoryEntry(message.id, thread.id, tuple(message.labels), tuple(gone)))
            for kind, entries in (("labelAdded", added), ("labelRemoved", removed)):
                if entries:
                    record_id = self._append(kind, entries, [thread])
                    for entry in entries:
                        self.messages[entry.message_id].history_id = record_id
            return self.thread_json(thread, "minimal")

    def expire_history(self) -> None:
        """Forget every history record so far, as Gmail does after about a week."""
        with self._lock:
            self.history.clear()
            self.history_floor = self.history_id

    # --- reads (the Python API) -----------------------------------------------------------------

    def profile(self) -> dict[str, Any]:
        with self._lock:
            live = [m for m in self.messages.values() if not m.deleted]
            return {
                "emailAddress": self.email,
                "messagesTotal": len(live),
                "threadsTotal": len({m.thread_id for m in live}),
                "historyId": str(self.history_id),
            }

    def label_list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [label.json() for label in self.labels.values()]

    def thread(self, thread_id: str, format: str = "full") -> dict[str, Any]:
        with self._lock:
            return self.thread_json(self._thread(thread_id), format)

    def message(self, message_id: str, format: str = "full") -> dict[str, Any]:
        with self._lock:
            return self.message_json(self._message(message_id), format)

    def threads_list(self, label_ids: Sequence[str] = (), format: str = "minimal") -> list[dict[str, Any]]:
        """Visible threads carrying all ``label_ids`` (ids or names), newest first."""
        with self._lock:
            wanted = {self._label_id(label) for label in label_ids}
            return [self.thread_json(t, format) for t in self.thread_view().items if wanted <= t.label_set()]

    def deleted_message_ids(self) -> list[str]:
        """Messages deleted since the corpus was built (404 on get, messagesDeleted in history)."""
        with self._lock:
            return [m.id for m in self.messages.values() if m.deleted]

    def history_records(self) -> list[dict[str, Any]]:
        """The retained history records, oldest first, as history.list shows them."""
        with self._lock:
            return [record.json() for record in self.history]

    def current_history_id(self) -> str:
        with self._lock:
            return str(self.history_id)

    # --- JSON -----------------------------------------------------------------------------------

    def tree(self, message: Message) -> Part:
        return build_tree(message.spec, message.id)

    def message_json(
        self, message: Message, format: str, metadata_headers: Sequence[str] = ()
    ) -> dict[str, Any]:
        out: dict[str, Any] = {"id": message.id, "threadId": message.thread_id}
        if message.labels:
            out["labelIds"] = list(message.labels)
        out["snippet"] = message.snippet
        tree = self.tree(message)
        if format == "full":
            out["payload"] = part_json(tree, message.id)
        elif format == "metadata":
            wanted = {name.lower() for name in metadata_headers}
            headers = [
                {"name": name, "value": value}
                for name, value in tree.headers
                if not wanted or name.lower() in wanted
            ]
            out["payload"] = {"mimeType": tree.mime, "headers": headers}
        out["sizeEstimate"] = size_estimate(tree)
        if format == "raw":
            out["raw"] = b64url(render_raw(tree, message.id))
        out["historyId"] = str(message.history_id)
        out["internalDate"] = str(message.internal_ms)
        return out

    def thread_json(
        self, thread: Thread, format: str, metadata_headers: Sequence[str] = ()
    ) -> dict[str, Any]:
        return {
            "id": thread.id,
            "historyId": str(thread.history_id),
            "messages": [self.message_json(m, format, metadata_headers) for m in thread.live()],
        }
