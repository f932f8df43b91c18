"""The Drive fetch loop: a full sweep the first time, the Changes API after that.

Page by page, each page's rows and the cursor that covers them commit in one transaction, so a
run killed after page k leaves pages 1..k stored and the next run resumes at page k+1.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from monolyth_pipelines.domain import drive as drive_domain
from monolyth_pipelines.domain.drive import ChangeAction, PriorState, SkipReason
from monolyth_pipelines.domain.records import FileRecord, Tombstone, TombstoneReason
from monolyth_pipelines.google.errors import ErrorCode, SyncError
from monolyth_pipelines.settings import DOCS_MIME, PDF_MIME, SHEETS_MIME, SLIDES_MIME, DriveLimits
from monolyth_pipelines.store import files, jobs, sync_state, vault
from monolyth_pipelines.sync.guards import refuse_mass_tombstone
from monolyth_pipelines.sync.page_checks import (
    bad_response,
    change_items,
    page_list,
    required_token,
    with_ids,
)
from monolyth_pipelines.sync.run import LOUD_DROP_THRESHOLD, PagedSync

PROVIDER = "google_drive"
KIND = "drive_import"
MY_DRIVE = "drive"

# Option B: what each supported type is exported as (Google-native) or downloaded (binary).
EXPORT_AS = {DOCS_MIME: "text/plain", SLIDES_MIME: "text/plain", SHEETS_MIME: "text/csv"}
DOWNLOADED = {PDF_MIME}
VAULT_HEARTBEAT_EVERY = 20
# A reconcile looks up at most this many unseen rows one by one to learn why each left.
UNSEEN_LOOKUPS = 200


@dataclass
class DriveSync(PagedSync):
    limits: DriveLimits

    def __post_init__(self) -> None:
        super().__post_init__()
        self.rescope = False
        self.drive = self.clients.drive()
        # Per run, not per attempt: a step retry carries on with what the earlier attempt used.
        self.budget = self.limits.max_files_per_run - self.counters.seen

    def _page_size(self) -> int:
        return max(1, min(self.limits.page_size, self.budget))

    # --- entry ----------------------------------------------------------------------------------
    def sync(self) -> None:
        self.rescope = self._tombstone_out_of_scope_if_settings_changed()
        corpora: list[tuple[str, str | None]] = [(MY_DRIVE, None)]
        if self.limits.include_shared_drives:
            corpora += [(f"drive:{d}", d) for d in self._shared_drive_ids()]
        for corpus, drive_id in corpora:
            if self.budget <= 0:
                self.counters.limit_reached = True
                break
            self._sync_corpus(corpus, drive_id)
        refused = self.counters.skipped.get(SkipReason.NO_PERMISSION, 0)
        if self.limits.import_to_vault and refused and not self.counters.vault_imported:
            self.counters.warnings.append(
                f"Vault import is on but no content could be fetched ({refused} files refused): "
                "the account's grant may lack a content scope"
            )

    def _scope_settings(self) -> dict[str, Any]:
        return {
            "supported_mime_types": sorted(self.limits.supported_mime_types),
            "max_file_size_mb": self.limits.max_file_size_mb,
            "include_shared_drives": self.limits.include_shared_drives,
            "persistence": "vault" if self.limits.import_to_vault else "metadata",
        }

    def _tombstone_out_of_scope_if_settings_changed(self) -> bool:
        """Limits or options changed since the last completed run: apply them to stored rows too.

        The Changes API only reports files that changed, so a widened scope would never bring in
        files that already existed, and a narrowed one would leave rows live forever. Rows now out
        of scope are tombstoned with their reason here; the caller then re-lists every corpus
        with a reconcile, which picks up what came into scope (and, for Vault, missing content).
        """
        with self.engine.connect() as conn:
            previous = jobs.last_completed_job(conn, self.account_id, KIND)
        before = ((previous.meta_json or {}).get("settings") or {}) if previous else {}
        now = self._scope_settings()
        if not before or all(
            sorted(before.get(k) or []) == v if k == "supported_mime_types" else before.get(k) == v
            for k, v in now.items()
        ):
            return False
        changed = sorted(k for k, v in now.items() if before.get(k) != v and k != "supported_mime_types")
        if sorted(before.get("supported_mime_types") or []) != now["supported_mime_types"]:
            changed.append("supported_mime_types")
        self.counters.warnings.append(
            f"settings changed since the last sync ({', '.join(sorted(changed))}): full re-list"
        )
        self.counters.mode = "full_after_settings_change"
        with self.run.fenced() as conn:
            refuse_mass_tombstone(conn, self.account_id, self.limits, sorted(changed))
            gone = files.tombstone_out_of_scope(
                conn,
                self.account_id,
                supported_mimes=self.limits.supported_mime_types,
                max_size=self.limits.max_file_size_bytes,
                drop_shared_drives=not self.limits.include_shared_drives,
            )
        self.counters.tombstoned.update(gone)
        return True

    def _shared_drive_ids(self) -> list[str]:
        ids: list[str] = []
        page_token: str | None = None
        while True:
            resp = self._execute(
                self.drive.drives().list(
                    pageSize=100, pageToken=page_token, fields="nextPageToken,drives(id)"
                )
            )
            drives = page_list(resp, "drives", "drives.list", required=False)
            ids += [str(d["id"]) for d in with_ids(drives, "id", self.counters.skip, "drives.list")]
            page_token = resp.get("nextPageToken")
            if not page_token:
                return ids

    def _sync_corpus(self, corpus: str, drive_id: str | None) -> None:
        with self.engine.connect() as conn:
            state = sync_state.get_state(conn, self.account_id, corpus)
        if self.rescope:
            with self.run.fenced() as conn:
                sync_state.drop_cursor(conn, self.account_id, corpus)
            reconciled = self._full_sweep(corpus, drive_id, force_reconcile=True, restart=True)
        elif state is not None and state.cursor and not state.sweep_in_progress:
            self.counters.mode = self.counters.mode or "incremental"
            if self._incremental(corpus, drive_id, state.cursor):
                return
            # Google rejected the stored token: sweep everything and reconcile what vanished.
            self.counters.mode = "full_after_invalid_cursor"
            with self.run.fenced() as conn:
                sync_state.drop_cursor(conn, self.account_id, corpus)
            reconciled = self._full_sweep(corpus, drive_id, force_reconcile=True)
        else:
            self.counters.mode = self.counters.mode or "full"
            reconciled = self._full_sweep(corpus, drive_id, force_reconcile=False)
        if reconciled:
            # Apply what changed during the listing now, not an hour later: the files counted
            # as seen above get their real state in this run.
            with self.engine.connect() as conn:
                cursor = sync_state.get_state(conn, self.account_id, corpus)
            if cursor is not None and cursor.cursor:
                self._incremental(corpus, drive_id, cursor.cursor)

    # --- full sweep -----------------------------------------------------------------------------
    @staticmethod
    def _corpus_args(drive_id: str | None, *, for_changes: bool = False) -> dict[str, Any]:
        """One corpus per token: My Drive alone, or one shared drive alone, never both in one feed.

        Shared-drive items reach the user's feed only with includeItemsFromAllDrives, which stays
        off there: with shared drives on nothing is counted twice, and off, nothing leaks in.
        """
        if drive_id:
            args: dict[str, Any] = {
                "driveId": drive_id,
                "includeItemsFromAllDrives": True,
                "supportsAllDrives": True,
            }
            return args if for_changes else {**args, "corpora": "drive"}
        args = {"supportsAllDrives": True, "includeItemsFromAllDrives": False}
        return args if for_changes else {**args, "corpora": "user"}

    def _full_sweep(
        self, corpus: str, drive_id: str | None, *, force_reconcile: bool, restart: bool = False
    ) -> bool:
        """List the corpus; True when the listing finished with a reconcile."""
        # Reconcile and warnings concern this corpus only: My Drive rows carry no driveId.
        scope = files.meta_scope("driveId", drive_id)
        with self.engine.connect() as conn:
            state = sync_state.get_state(conn, self.account_id, corpus)
            live_before = files.count_live(conn, self.account_id, scope)
        resumed = state is not None and state.sweep_in_progress and not restart
        if resumed:
            assert state is not None
            sweep_id, page_token, reconcile = state.sweep_id, state.sweep_page_token, state.sweep_reconcile
        else:
            # The start token comes first: whatever changes while we list is replayed next run.
            token_args = {"driveId": drive_id, "supportsAllDrives": True} if drive_id else {}
            start = required_token(
                self._execute(self.drive.changes().getStartPageToken(**token_args)),
                "startPageToken",
                "changes.getStartPageToken",
            )
            reconcile = force_reconcile or live_before > 0
            with self.run.fenced() as conn:
                sweep_id = sync_state.begin_sweep(
                    conn, self.account_id, corpus, sweep_cursor=str(start), reconcile=reconcile
                )
            page_token = None
        assert sweep_id is not None
        query = drive_domain.build_list_query(self.limits)
        seen_before = self.counters.seen
        incomplete = False

        def list_page(token: str | None, page_size: int) -> dict[str, Any]:
            return self._execute(
                self.drive.files().list(
                    q=query,
                    pageSize=page_size,
                    pageToken=token,
                    orderBy="modifiedTime desc",
                    fields=drive_domain.DRIVE_FILES_LIST_FIELDS,
                    **self._corpus_args(drive_id),
                )
            )

        # While a page is written, the next one is already being fetched: the listing is
        # latency-bound and the writes database-bound, so overlapping them nearly halves the
        # wall time. At most two pages are in memory. Not with Option B, whose content
        # downloads share the HTTP connection (httplib2 is not thread-safe).
        prefetch = ThreadPoolExecutor(max_workers=1) if not self.limits.import_to_vault else None
        pending: Future[dict[str, Any]] | None = None
        try:
            while True:
                if self.budget <= 0:
                    self.counters.limit_reached = True
                    return False  # the sweep goes on from its saved page next run
                if pending is not None:
                    resp = pending.result()
                    pending = None
                else:
                    try:
                        resp = list_page(page_token, self._page_size())
                    except SyncError as error:
                        if not (resumed and page_token) or error.code not in (
                            ErrorCode.CURSOR_INVALID,
                            ErrorCode.BAD_REQUEST,
                        ):
                            raise
                        # The position saved by an earlier run was refused (expired, or the
                        # query changed): list again from the top, and reconcile at the end.
                        self.counters.warnings.append(
                            f"saved listing position of {corpus} was rejected ({error.code}); "
                            "listing restarts"
                        )
                        assert state is not None and state.sweep_cursor is not None
                        reconcile = reconcile or live_before > 0
                        with self.run.fenced() as conn:
                            sweep_id = sync_state.begin_sweep(
                                conn,
                                self.account_id,
                                corpus,
                                sweep_cursor=state.sweep_cursor,
                                reconcile=reconcile,
                            )
                        page_token, resumed = None, False
                        continue
                raw = page_list(resp, "files", "files.list")
                self.budget -= len(raw)
                self.counters.seen += len(raw)
                listed = with_ids(raw, "id", self.counters.skip, f"files.list page {self.counters.pages + 1}")
                if resp.get("incompleteSearch") is True:
                    # Google searched only part of the corpus: what it left out is not "gone".
                    self.counters.incomplete_search += 1
                    incomplete = True
                next_token = resp.get("nextPageToken") or None
                if prefetch is not None and next_token and self.budget > 0:
                    pending = prefetch.submit(list_page, next_token, self._page_size())
                records: list[FileRecord] = []
                for item in listed:
                    skip = drive_domain.classify_drive_file(item, self.limits)
                    if skip is None:
                        records.append(drive_domain.to_file_record(item))
                    else:
                        self.counters.skip(skip, item["id"])
                progress = functools.partial(
                    self._sweep_progress,
                    corpus,
                    sweep_id,
                    reconcile,
                    [r.external_id for r in records],
                    next_token,
                )
                self._store_page(records, extra=progress)
                if not next_token:
                    break
                page_token = next_token
        finally:
            if prefetch is not None:
                prefetch.shutdown(wait=True, cancel_futures=True)

        if incomplete and reconcile:
            reconcile = False
            self.counters.warnings.append(
                f"Drive reported an incomplete search of {corpus}: files it did not list are kept, "
                "not tombstoned, until a complete listing"
            )

        def finish(conn: sa.Connection) -> None:
            if reconcile:
                gone = files.tombstone_unseen(
                    conn, self.account_id, sweep_id, TombstoneReason.NOT_SEEN_IN_FULL_SYNC.value, scope=scope
                )
                if gone:
                    self.counters.tombstoned[TombstoneReason.NOT_SEEN_IN_FULL_SYNC.value] += gone
            sync_state.finish_sweep(conn, self.account_id, corpus)

        if reconcile:
            self._count_changed_as_seen(drive_id, sweep_id, corpus)
            self._explain_unseen(scope, sweep_id)
        self._commit_page(finish)
        self.counters.pages -= 1  # the finishing commit is not a page
        swept = self.counters.seen - seen_before
        if swept == 0 and live_before >= LOUD_DROP_THRESHOLD:
            self.counters.warnings.append(
                f"full sync of {corpus} saw 0 files where the account held {live_before} live files"
            )
        elif swept > 0 and self.counters.stored == 0:
            self.counters.warnings.append(
                f"full sync of {corpus} saw {swept} files and skipped every one "
                f"({dict(self.counters.skipped)})"
            )
        return reconcile

    def _explain_unseen(self, scope: sa.ColumnElement[bool], sweep_id: uuid.UUID) -> None:
        """Ask Google why each live row the re-list did not see is gone, while they are few.

        The listing hides trashed and out-of-scope files, so "not seen" alone cannot tell a file
        trashed, grown over the size limit, deleted or unshared while the change token was bad.
        One files.get each gives the real reason (``decide_lookup``); past ``UNSEEN_LOOKUPS`` rows
        the generic ``not_seen_in_full_sync`` stands, to keep the request count bounded.
        """
        with self.engine.connect() as conn:
            unseen = files.unseen_live_ids(conn, self.account_id, sweep_id, scope, limit=UNSEEN_LOOKUPS + 1)
            prior = files.stored_meta(conn, self.account_id, unseen)
        if not unseen or len(unseen) > UNSEEN_LOOKUPS:
            return
        upserts: list[FileRecord] = []
        tombstones: list[Tombstone] = []
        for file_id in unseen:
            try:
                found = self._execute(
                    self.drive.files().get(
                        fileId=file_id, fields=drive_domain.DRIVE_FILE_GET_FIELDS, supportsAllDrives=True
                    )
                )
                status = 200
            except SyncError as error:
                if error.code not in (ErrorCode.NOT_FOUND, ErrorCode.INSUFFICIENT_PERMISSIONS):
                    raise
                found, status = None, error.status or 404
            before = PriorState.from_row(*prior[file_id]) if file_id in prior else None
            decision = drive_domain.decide_lookup(file_id, status, found, self.limits, before)
            if decision.action is ChangeAction.UPSERT and decision.record is not None:
                upserts.append(decision.record)
            elif decision.tombstone is not None:
                tombstones.append(decision.tombstone)

        def write(conn: sa.Connection) -> None:
            self._write_records(conn, upserts)
            self.counters.tombstoned.update(files.tombstone_files(conn, self.account_id, tombstones))
            files.record_sweep_seen(conn, self.account_id, sweep_id, unseen)

        self._commit_page(write)
        self.counters.pages -= 1  # not a listing page

    def _count_changed_as_seen(self, drive_id: str | None, sweep_id: uuid.UUID, corpus: str) -> None:
        """Before a reconcile: what changed while the listing ran is not "gone".

        The listing is ordered by modifiedTime, so a file edited meanwhile can jump past it and
        never be listed; tombstoning it would show Insights a deletion that never happened. The
        change feed since the sweep's start token names such files; they count as seen, and the
        feed applied right after the sweep gives them their real state.
        """
        with self.engine.connect() as conn:
            state = sync_state.get_state(conn, self.account_id, corpus)
        token = state.sweep_cursor if state else None
        while token:
            resp = self._execute(
                self.drive.changes().list(
                    pageToken=token,
                    pageSize=self.limits.page_size,
                    includeRemoved=True,
                    spaces="drive",
                    fields="nextPageToken,newStartPageToken,changes(fileId)",
                    **self._corpus_args(drive_id, for_changes=True),
                )
            )
            changes = page_list(resp, "changes", "changes.list")
            changed = [str(c["fileId"]) for c in changes if isinstance(c, dict) and c.get("fileId")]
            with self.run.fenced() as conn:
                files.record_sweep_seen(conn, self.account_id, sweep_id, changed)
            token = resp.get("nextPageToken")

    def _sweep_progress(
        self,
        corpus: str,
        sweep_id: uuid.UUID,
        reconcile: bool,
        ids: list[str],
        next_token: str | None,
        conn: sa.Connection,
    ) -> None:
        if reconcile:
            files.record_sweep_seen(conn, self.account_id, sweep_id, ids)
        sync_state.save_sweep_page(conn, self.account_id, corpus, next_token)

    # --- incremental ----------------------------------------------------------------------------
    def _incremental(self, corpus: str, drive_id: str | None, cursor: str) -> bool:
        """Apply the Changes feed from ``cursor``; False when Google rejected the cursor."""
        page_token = cursor
        while True:
            if self.budget <= 0:
                self.counters.limit_reached = True
                return True
            try:
                resp = self._execute(
                    self.drive.changes().list(
                        pageToken=page_token,
                        pageSize=self._page_size(),
                        includeRemoved=True,
                        spaces="drive",
                        fields=drive_domain.DRIVE_CHANGES_LIST_FIELDS,
                        **self._corpus_args(drive_id, for_changes=True),
                    )
                )
            except SyncError as error:
                if error.code in (ErrorCode.CURSOR_INVALID, ErrorCode.BAD_REQUEST, ErrorCode.NOT_FOUND):
                    self.counters.warnings.append(
                        f"stored change token for {corpus} was rejected ({error.code})"
                    )
                    return False
                raise
            raw = page_list(resp, "changes", "changes.list")
            self.budget -= len(raw)
            self.counters.seen += len(raw)
            changes = change_items(raw, self.counters.skip, f"changes.list of {corpus}")
            next_token = resp.get("nextPageToken") or None
            new_start = resp.get("newStartPageToken") or None
            if next_token is None and new_start is None:
                raise bad_response("changes.list", "the page has neither nextPageToken nor newStartPageToken")
            self._apply_changes(changes, corpus, str(next_token or new_start))
            if new_start or not next_token:
                self._warn_if_most_left(corpus)
                return True
            page_token = next_token

    def _warn_if_most_left(self, corpus: str) -> None:
        gone = sum(self.counters.tombstoned.values())
        with self.engine.connect() as conn:
            live = files.count_live(conn, self.account_id)
        if gone >= LOUD_DROP_THRESHOLD and gone > live:
            self.counters.warnings.append(
                f"{gone} items of {corpus} left in one run and {live} remain live: "
                "check the account's access before trusting this"
            )

    def _apply_changes(self, changes: list[dict[str, Any]], corpus: str, cursor: str) -> None:
        removed_ids = [c["fileId"] for c in changes if c.get("removed") and c.get("fileId")]
        with self.engine.connect() as conn:
            prior_rows = files.stored_meta(conn, self.account_id, removed_ids)
        upserts: dict[str, FileRecord] = {}
        tombstones: dict[str, Tombstone] = {}
        drives_removed: list[str] = []
        for change in changes:
            file_id = change.get("fileId")
            prior = PriorState.from_row(*prior_rows[file_id]) if file_id in prior_rows else None
            decision = drive_domain.decide_change(change, self.limits, prior)
            if decision.action is ChangeAction.UPSERT and decision.record is not None:
                upserts[decision.record.external_id] = decision.record
                tombstones.pop(decision.record.external_id, None)
            elif decision.action is ChangeAction.TOMBSTONE and decision.tombstone is not None:
                tombstones[decision.tombstone.external_id] = decision.tombstone
                upserts.pop(decision.tombstone.external_id, None)
                # Out of scope by type or size is also a skip; trash is only a tombstone.
                if decision.reason in (TombstoneReason.UNSUPPORTED_TYPE, TombstoneReason.TOO_LARGE):
                    self.counters.skip(decision.reason.value, decision.tombstone.external_id)
            elif decision.action is ChangeAction.DRIVE_REMOVED and decision.drive_id:
                drives_removed.append(decision.drive_id)

        def extra(conn: sa.Connection) -> None:
            self.counters.tombstoned.update(
                files.tombstone_files(conn, self.account_id, list(tombstones.values()))
            )
            for drive_id in drives_removed:
                self.counters.tombstoned[TombstoneReason.ACCESS_LOST.value] += files.tombstone_drive(
                    conn, self.account_id, drive_id, TombstoneReason.ACCESS_LOST.value
                )
            sync_state.advance_cursor(conn, self.account_id, corpus, cursor)

        self._store_page(list(upserts.values()), extra=extra)

    # --- persistence ----------------------------------------------------------------------------
    def _store_page(self, records: list[FileRecord], *, extra: Callable[[sa.Connection], Any]) -> None:
        if self.limits.import_to_vault and records:
            self._import_to_vault(records)

        def write(conn: sa.Connection) -> None:
            self._write_records(conn, records)
            extra(conn)

        self._commit_page(write)

    def _import_to_vault(self, records: list[FileRecord]) -> None:
        """Option B: content for the rows this page will write, or that Vault lacks.

        Runs before the page commits, so a crash re-plans the same rows and re-imports them
        (an idempotent upsert) instead of leaving rows whose content never arrived.
        """
        with self.engine.connect() as conn:
            planned = files.upsert_files(conn, self.account_id, PROVIDER, records, dry_run=True)
            have = vault.existing_external_ids(
                conn, self.owner_id, PROVIDER, [r.external_id for r in records], account_id=self.account_id
            )
        wanted = set(planned.written_ids) | {r.external_id for r in records if r.external_id not in have}
        for record in records:
            if record.external_id not in wanted:
                continue
            content = self._fetch_content(record)
            if content is None:
                continue
            with self.run.fenced() as conn:
                vault.upsert_document(
                    conn,
                    vault.VaultDocument(
                        owner_id=self.owner_id,
                        source=PROVIDER,
                        external_id=record.external_id,
                        title=record.title,
                        mime=EXPORT_AS.get(record.mime or "", record.mime),
                        content=content,
                        account_id=self.account_id,
                    ),
                )
                self.counters.vault_imported += 1
                # Downloads can take longer than a page of metadata: keep the heartbeat fresh so
                # the reaper never mistakes this run for a dead one.
                if self.counters.vault_imported % VAULT_HEARTBEAT_EVERY == 0:
                    self.run.heartbeat(conn)

    def _fetch_content(self, record: FileRecord) -> bytes | None:
        mime = record.mime or ""
        try:
            if mime in EXPORT_AS:
                data = self._execute(
                    self.drive.files().export_media(fileId=record.external_id, mimeType=EXPORT_AS[mime])
                )
            elif mime in DOWNLOADED:
                data = self._execute(
                    self.drive.files().get_media(fileId=record.external_id, supportsAllDrives=True)
                )
            else:
                return None
        except SyncError as error:
            if error.code == ErrorCode.EXPORT_TOO_LARGE:
                self.counters.skip(SkipReason.EXPORT_LIMIT, record.external_id)
                return None
            if error.code in (ErrorCode.INSUFFICIENT_PERMISSIONS, ErrorCode.NOT_FOUND):
                self.counters.skip(SkipReason.NO_PERMISSION, record.external_id)
                return None
            raise
        if isinstance(data, str):
            data = data.encode()
        if len(data) > self.limits.max_file_size_bytes:
            self.counters.skip(SkipReason.TOO_LARGE, record.external_id)
            return None
        return bytes(data)
