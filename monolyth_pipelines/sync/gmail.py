"""The Gmail fetch loop: the last N threads of one label, then the mailbox history.

* **First run** (no cursor): the label is resolved by name (labels.list), the mailbox historyId
  is taken (getProfile) *before* anything is listed, then threads.list pages feed threads.get
  calls sent in batch requests; each batch's messages are written as it arrives. The historyId
  becomes the cursor when the pull ends, so whatever changed while it ran is replayed next run.
* **Later runs**: history.list from the cursor. The threads the records touch (new mail,
  deletions, label changes) are fetched again and their current state decides every row
  (``domain.gmail.decide_thread``), so a replayed page converges instead of double-applying.
  Each history page's rows and the cursor after it commit in one transaction.
* **Cursor too old** (history.list 404), **label changed**: a full pull that records what it
  sees, then looks up by id every thread of a live row it did not see (``sync.gmail_reconcile``):
  the window of N threads is a view, and only a thread gone from the label or the mailbox is
  tombstoned, with that reason. The mass-tombstone guard (``sync.guards``) weighs the result.

Every call is paced under the per-user quota (``google.pacing.Pacer``); batched calls that fail
inside a batch (the client retries no inner call) are re-queued with backoff.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Mapping
from typing import Any

from googleapiclient.http import HttpRequest

from monolyth_pipelines.domain import payloads
from monolyth_pipelines.domain.gmail import (
    METADATA_HEADERS,
    THREAD_FULL_FIELDS,
    THREAD_METADATA_FIELDS,
    AttachmentRule,
    decide_thread,
    find_label,
    parts_cut_off,
    to_message_record,
)
from monolyth_pipelines.domain.records import FileRecord, Tombstone, TombstoneReason
from monolyth_pipelines.errors import ErrorCode, SyncError
from monolyth_pipelines.google.batching import BatchCall, Batcher
from monolyth_pipelines.google.credentials import scopes_of
from monolyth_pipelines.google.pacing import Pacer, QuotaGate
from monolyth_pipelines.settings import GmailLimits
from monolyth_pipelines.store import files, sync_state
from monolyth_pipelines.sync.gmail_attachments import GmailAttachments
from monolyth_pipelines.sync.gmail_reconcile import GmailReconcile
from monolyth_pipelines.sync.guards import MassTombstoneGuard
from monolyth_pipelines.sync.page_checks import page_list, required_token, with_ids
from monolyth_pipelines.sync.paged import PagedSync
from monolyth_pipelines.sync.pages import CursorAt, PageWrite, begin_sweep, empty_sweep_warning
from monolyth_pipelines.sync.run import SyncRun

PROVIDER = "gmail"
KIND = "gmail_import"
CORPUS = "gmail"

# Google refuses a batch of more than 100 calls outright; GmailLimits.batch_size (50, Google's
# advice for Gmail) is normally the tighter bound.
MAX_BATCH_CALLS = 100
PAGE_SIZE = 500  # the maximum for threads.list and history.list

HISTORY_FIELDS = (
    "nextPageToken,historyId,history(id,"
    "messagesAdded(message(id,threadId,labelIds)),messagesDeleted(message(id,threadId,labelIds)),"
    "labelsAdded(labelIds,message(id,threadId,labelIds)),labelsRemoved(labelIds,message(id,threadId,labelIds)))"
)
_HISTORY_KINDS = ("messagesAdded", "labelsAdded", "labelsRemoved", "messagesDeleted")
# Scopes that allow format=full; gmail.metadata alone allows headers only.
_FULL_FORMAT_SCOPES = frozenset(
    {
        "https://mail.google.com/",
        "https://www.googleapis.com/auth/gmail.readonly",
        "https://www.googleapis.com/auth/gmail.modify",
    }
)


class GmailSync(GmailReconcile, GmailAttachments, PagedSync):
    def __init__(self, run: SyncRun, pacer: Pacer | None = None) -> None:
        super().__init__(run)
        assert isinstance(run.limits, GmailLimits)
        self.limits: GmailLimits = run.limits
        # Resource objects are rebuilt from the discovery document on every access: build once.
        self.users = self.clients.gmail().users()
        self.threads_api = self.users.threads()
        self.quota = QuotaGate(pacer or Pacer.for_gmail(self.limits))
        self.rule = AttachmentRule.from_limits(self.limits)
        scopes = set(scopes_of(self.account.token_json or {}))
        # A gmail.metadata grant refuses format=full; the sync still works, without attachments.
        metadata_grant = bool(scopes) and not scopes & _FULL_FORMAT_SCOPES
        wants_parts = self.limits.attachment_metadata or bool(self.rule.mime_types)
        self.full_format = wants_parts and not metadata_grant
        if self.rule.mime_types and metadata_grant:
            self.counters.warnings.append(
                "attachments cannot be imported with the gmail.metadata scope; reconnect with gmail.readonly"
            )
            self.rule = AttachmentRule()
        self._label_id: str | None = None
        self._address: str | None = None

    # --- plumbing -------------------------------------------------------------------------------
    def _call(self, request: HttpRequest, method: str) -> dict[str, Any]:
        return self._execute(request, around=lambda: self.quota.spend(method))

    def _batcher(self, method: str, **kwargs: Any) -> Batcher:
        # A batch larger than one quota window cannot go out without overrunning it.
        size = min(self.limits.batch_size, MAX_BATCH_CALLS, self.quota.pacer.max_calls_per_window(method))
        return Batcher(
            self.clients.gmail_batch,
            self.quota,
            self.policy,
            self._add_retries,
            method,
            max(1, size),
            **kwargs,
        )

    def _add_retries(self, calls: int) -> None:
        self.counters.retries += calls

    def _profile(self) -> dict[str, Any]:
        profile = self._call(
            self.users.getProfile(userId="me", fields="emailAddress,historyId"), "getProfile"
        )
        self._address = profile.get("emailAddress")
        return profile

    def _mailbox_address(self) -> str | None:
        """For the rows' web links; fetched only when a run has rows to write."""
        if self._address is None:
            self._profile()
        return self._address

    def _label(self) -> str:
        """The configured label's id (``domain.gmail.find_label``)."""
        if self._label_id is None:
            wanted = self.limits.label
            labels = self._call(
                self.users.labels().list(userId="me", fields="labels(id,name)"), "labels.list"
            ).get("labels", [])
            match = find_label(labels, wanted)
            if match is None:
                raise SyncError(
                    ErrorCode.LABEL_NOT_FOUND,
                    f"the Gmail label {wanted!r} does not exist in this mailbox ({len(labels)} labels)",
                )
            self._label_id = str(match["id"])
        return self._label_id

    # --- entry ----------------------------------------------------------------------------------
    def pages(self) -> Iterator[PageWrite]:
        with self.engine.connect() as conn:
            state = sync_state.get_state(conn, self.account_id, CORPUS)
        # Also on a resumed pull: a refused or dead label-change pull is still one.
        label_changed = bool(self.limits.changed_settings(self.run.previous_settings))
        previous_label = self.run.previous_settings.get("label")
        why = (
            f"the label change from {previous_label!r} to {self.limits.label!r}"
            if label_changed
            else "the reconcile of a full pull"
        )
        if state is None or not state.cursor or state.sweep_in_progress:
            self.counters.mode = "full"
            yield from self._full_pull(force_reconcile=False, why=why, label_changed=label_changed)
            return
        if label_changed:
            # The stored rows belong to another label: pull this one and reconcile. The cursor
            # stays until the pull ends, so a refused pull leaves it where it was.
            self.counters.warnings.append(
                f"label changed from {previous_label!r} to {self.limits.label!r}: full pull"
            )
            self.counters.mode = "full"
        else:
            self.counters.mode = "incremental"
            if (yield from self._incremental(state.cursor)):
                return
            self.counters.mode = "full_after_invalid_cursor"
            why = "the reconcile of the full pull after Gmail's history expired"
            with self.run.fenced() as conn:
                sync_state.drop_cursor(conn, self.account_id, CORPUS)
        yield from self._full_pull(force_reconcile=True, why=why, label_changed=label_changed)

    # --- full pull ------------------------------------------------------------------------------
    def _full_pull(self, *, force_reconcile: bool, why: str, label_changed: bool) -> Iterator[PageWrite]:
        with self.engine.connect() as conn:
            state = sync_state.get_state(conn, self.account_id, CORPUS)
            live_before = files.count_live(conn, self.account_id)
        label_id = self._label()
        if state is not None and state.sweep_in_progress and state.sweep_cursor:
            # A pull that died: its history id still predates everything listed since, so the
            # listing simply starts over (unchanged rows are not rewritten). It starts a fresh
            # sweep that reconciles whenever rows exist: the rows may come from the dead pull of
            # another label, and only a complete listing can tell which still belong.
            history_id = state.sweep_cursor
        else:
            history_id = required_token(self._profile(), "historyId", "getProfile")
        with self.run.fenced() as conn:
            sweep = begin_sweep(
                conn,
                self.account_id,
                CORPUS,
                start_cursor=history_id,
                reconcile=force_reconcile or live_before > 0,
                live_before=live_before,
                seen_at_start=self.counters.seen,
                guard=MassTombstoneGuard.of(self.limits),
            )
        sweep.why = why
        calls = (self._thread_call(thread_id) for thread_id in self._list_threads(label_id))
        for answers in self._batcher("threads.get").run(calls):
            records, tombstones = self._threads([a.response for a in answers], label_id)
            yield sweep.page(records, tombstones)
        yield from self._reconcile(sweep, label_id, label_changed=label_changed)
        warning = empty_sweep_warning(
            sweep, self.counters.seen, f"full pull of label {self.limits.label!r}", "messages"
        )
        if warning is not None:
            self.counters.warnings.append(warning)

    def _list_threads(self, label_id: str) -> Iterator[str]:
        """The label's newest ``max_threads`` thread ids, one list page at a time, on demand."""
        remaining = self.limits.max_threads
        page_token: str | None = None
        while remaining > 0:
            resp = self._call(
                self.threads_api.list(
                    userId="me",
                    labelIds=[label_id],
                    maxResults=min(PAGE_SIZE, remaining),
                    pageToken=page_token,
                    fields="nextPageToken,threads(id)",
                ),
                "threads.list",
            )
            threads = page_list(resp, "threads", "threads.list", required=False)
            kept = with_ids(threads, "id", self.counters.skip, "threads.list")
            ids = [str(t["id"]) for t in kept][:remaining]
            remaining -= len(ids)
            yield from ids
            page_token = resp.get("nextPageToken")
            if not page_token:
                return

    def _thread_call(self, thread_id: str) -> BatchCall:
        threads = self.threads_api
        if self.full_format:
            # Names and sizes of attachments need the part tree; the mask leaves body data out.
            def build() -> HttpRequest:
                return threads.get(userId="me", id=thread_id, format="full", fields=THREAD_FULL_FIELDS)
        else:

            def build() -> HttpRequest:
                return threads.get(
                    userId="me",
                    id=thread_id,
                    format="metadata",
                    metadataHeaders=list(METADATA_HEADERS),
                    fields=THREAD_METADATA_FIELDS,
                )

        return BatchCall(thread_id, build)

    # --- incremental ----------------------------------------------------------------------------
    def _incremental(self, cursor: str) -> Generator[PageWrite, None, bool]:
        """Apply history.list from ``cursor``; False when Gmail no longer has that history."""
        page_token: str | None = None
        position = cursor
        while True:
            try:
                resp = self._call(
                    self.users.history().list(
                        userId="me",
                        startHistoryId=cursor,
                        maxResults=PAGE_SIZE,
                        pageToken=page_token,
                        fields=HISTORY_FIELDS,
                    ),
                    "history.list",
                )
            except SyncError as error:
                if error.code is ErrorCode.CURSOR_INVALID:
                    self.counters.warnings.append(f"stored history id {cursor} is no longer kept by Gmail")
                    return False
                raise
            records = page_list(resp, "history", "history.list", required=False)
            next_token = resp.get("nextPageToken")
            # Gmail's advice: after the last page store the returned historyId; until then, the
            # last record applied is where a crashed run resumes.
            if not next_token:
                position = required_token(resp, "historyId", "history.list")
            elif records and isinstance(records[-1], dict) and records[-1].get("id"):
                position = str(records[-1]["id"])
            yield from self._apply_history(records, position)
            if not next_token:
                return True
            page_token = next_token

    def _apply_history(self, records: list[dict[str, Any]], after: str) -> Iterator[PageWrite]:
        deleted: list[str] = []
        wanted: dict[str, None] = {}  # thread ids to fetch again, in first-seen order
        maybe: set[str] = set()  # threads that matter only if we store them already
        # No records, no label lookup: a run with nothing new costs one history.list call.
        label_id = self._label() if records else ""
        for record in (r for r in records if isinstance(r, dict)):
            for kind in _HISTORY_KINDS:
                entries = record.get(kind) if isinstance(record, Mapping) else None
                for item in entries if isinstance(entries, list) else []:
                    message = (item.get("message") if isinstance(item, Mapping) else None) or {}
                    if not isinstance(message, Mapping) or payloads.gmail_message_problem(message):
                        self.counters.skip(payloads.MALFORMED_ITEM, payloads.item_key(message))
                        continue
                    if kind == "messagesDeleted" and message.get("id"):
                        deleted.append(str(message["id"]))
                    thread_id = message.get("threadId")
                    if not thread_id:
                        continue
                    changed = item.get("labelIds")
                    changed = changed if isinstance(changed, list) else ()
                    labels = {*(message.get("labelIds") or ()), *changed}
                    # New mail whose labels history left out could be in the label: look.
                    if label_id in labels or (kind == "messagesAdded" and "labelIds" not in message):
                        wanted[str(thread_id)] = None
                    else:
                        maybe.add(str(thread_id))
        self.counters.seen += len(deleted)
        if maybe - wanted.keys():
            with self.engine.connect() as conn:
                stored = files.live_meta_values(
                    conn, self.account_id, "threadId", sorted(maybe - wanted.keys())
                )
            wanted.update(dict.fromkeys(sorted(stored)))

        calls = (self._thread_call(thread_id) for thread_id in wanted)
        for answers in self._batcher("threads.get").run(calls):
            records, tombstones = self._threads([a.response for a in answers], label_id)
            yield PageWrite(records=records, tombstones=tombstones)
        yield PageWrite(
            tombstones=[Tombstone(m, TombstoneReason.DELETED) for m in deleted],
            position=CursorAt(CORPUS, after),
        )

    # --- persistence ----------------------------------------------------------------------------
    def _threads(
        self, threads: list[Mapping[str, Any] | None], label_id: str
    ) -> tuple[list[FileRecord], list[Tombstone]]:
        """One batch of threads.get answers: its rows and tombstones, attachments already in Vault."""
        kept: list[Mapping[str, Any]] = []
        tombstones: list[Tombstone] = []
        for answer in threads:
            thread, bad = payloads.split_thread(answer)
            for reason, message_id in bad:
                self.counters.skip(reason, message_id)
            decision = decide_thread(thread, label_id)
            kept += decision.keep
            tombstones += decision.tombstones
            self.counters.seen += len((thread or {}).get("messages") or []) + len(bad)
        if self.full_format:
            kept = [self._whole_message(m) if parts_cut_off(m) else m for m in kept]
        address = self._mailbox_address() if kept else None
        records: list[FileRecord] = [to_message_record(m, account=address) for m in kept]
        # Before the commit: a crash then re-plans the same messages, and Vault keeps what landed.
        self._import_attachments(kept)
        return records, tombstones
