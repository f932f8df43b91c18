"""The Drive fetch loop: a full sweep the first time, the Changes API after that.

Page by page, each page's rows and the cursor that covers them commit in one transaction, so a
run killed after page k leaves pages 1..k stored and the next run resumes at page k+1.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any

from monolyth_pipelines.domain import drive as drive_domain
from monolyth_pipelines.domain import payloads
from monolyth_pipelines.domain.drive import ChangeAction, PriorState, SharingContext, SkipReason
from monolyth_pipelines.domain.records import FileRecord, Tombstone, TombstoneReason
from monolyth_pipelines.errors import ErrorCode, SyncError
from monolyth_pipelines.settings import DriveLimits
from monolyth_pipelines.store import files, sync_state
from monolyth_pipelines.sync.drive_content import EXPORT_AS, DriveContentImport  # noqa: F401
from monolyth_pipelines.sync.drive_listing import DriveListing
from monolyth_pipelines.sync.drive_permissions import DrivePermissions, drive_quota
from monolyth_pipelines.sync.drive_reconcile import UNSEEN_LOOKUPS, DriveReconcile  # noqa: F401
from monolyth_pipelines.sync.guards import MassTombstoneGuard, refuse_mass_tombstone
from monolyth_pipelines.sync.page_checks import (
    bad_response,
    change_items,
    page_list,
    required_token,
    with_ids,
)
from monolyth_pipelines.sync.paged import PagedSync
from monolyth_pipelines.sync.pages import CursorAt, PageWrite, Sweep, begin_sweep, empty_sweep_warning
from monolyth_pipelines.sync.run import LOUD_DROP_THRESHOLD, SyncRun

PROVIDER = "google_drive"
KIND = "drive_import"
MY_DRIVE = "drive"


class DriveSync(DriveReconcile, DriveContentImport, DriveListing, DrivePermissions, PagedSync):
    def __init__(self, run: SyncRun) -> None:
        super().__init__(run)
        assert isinstance(run.limits, DriveLimits)
        self.limits: DriveLimits = run.limits
        self.rescope = False
        self.incomplete: set[str] = set()  # corpora Drive answered with incompleteSearch: true
        self.drive = self.clients.drive()
        self.drive_quota = drive_quota()
        self.sharing = SharingContext(self.account.email)
        # Per run, not per attempt: a step retry carries on with what the earlier attempt used.
        self.budget = self.limits.max_files_per_run - self.counters.seen

    def _page_size(self) -> int:
        return max(1, min(self.limits.page_size, self.budget))

    def pages(self) -> Iterator[PageWrite]:
        self.rescope = self._tombstone_out_of_scope_if_settings_changed()
        corpora: list[tuple[str, str | None]] = [(MY_DRIVE, None)]
        if self.limits.include_shared_drives:
            corpora += [(f"drive:{d}", d) for d in self._shared_drive_ids()]
        for corpus, drive_id in corpora:
            if self.budget <= 0:
                self.counters.limit_reached = True
                break
            yield from self._sync_corpus(corpus, drive_id)
        refused = self.counters.skipped.get(SkipReason.NO_PERMISSION, 0)
        if self.limits.import_to_vault and refused and not self.counters.vault_imported:
            self.counters.warnings.append(
                f"Vault import is on but no content could be fetched ({refused} files refused): "
                "the account's grant may lack a content scope"
            )

    def _tombstone_out_of_scope_if_settings_changed(self) -> bool:
        """Limits or options changed since the last completed run: apply them to stored rows too.

        The Changes API only reports files that changed, so a widened scope would never bring in
        files that already existed, and a narrowed one would leave rows live forever. Rows now out
        of scope are tombstoned with their reason here; the caller then re-lists every corpus
        with a reconcile, which picks up what came into scope (and, for Vault, missing content).
        """
        changed = self.limits.changed_settings(self.run.previous_settings)
        if not changed:
            return False
        self.counters.warnings.append(
            f"settings changed since the last sync ({', '.join(changed)}): full re-list"
        )
        self.counters.mode = "full_after_settings_change"
        with self.run.fenced() as conn:
            refuse_mass_tombstone(conn, self.account_id, self.limits, changed)
            gone = files.tombstone_out_of_scope(
                conn,
                self.account_id,
                supported_mimes=self.limits.supported_mime_types,
                max_size=self.limits.max_file_size_bytes,
                drop_shared_drives=not self.limits.include_shared_drives,
                job_id=self.run.job_id,
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

    def _sync_corpus(self, corpus: str, drive_id: str | None) -> Iterator[PageWrite]:
        with self.engine.connect() as conn:
            state = sync_state.get_state(conn, self.account_id, corpus)
        if self.rescope:
            with self.run.fenced() as conn:
                sync_state.drop_cursor(conn, self.account_id, corpus)
            reconciled = yield from self._full_sweep(corpus, drive_id, force_reconcile=True, restart=True)
        elif state is not None and state.cursor and not state.sweep_in_progress:
            self.counters.mode = self.counters.mode or "incremental"
            if (yield from self._incremental(corpus, drive_id, state.cursor)):
                return
            # Google rejected the stored token: sweep everything and reconcile what vanished.
            self.counters.mode = "full_after_invalid_cursor"
            with self.run.fenced() as conn:
                sync_state.drop_cursor(conn, self.account_id, corpus)
            reconciled = yield from self._full_sweep(corpus, drive_id, force_reconcile=True)
        else:
            self.counters.mode = self.counters.mode or "full"
            reconciled = yield from self._full_sweep(corpus, drive_id, force_reconcile=False)
        if reconciled:
            # Apply what changed during the listing now, not an hour later: the files counted
            # as seen above get their real state in this run.
            with self.engine.connect() as conn:
                cursor = sync_state.get_state(conn, self.account_id, corpus)
            if cursor is not None and cursor.cursor:
                yield from self._incremental(corpus, drive_id, cursor.cursor)

    # --- full sweep -----------------------------------------------------------------------------
    def _full_sweep(
        self, corpus: str, drive_id: str | None, *, force_reconcile: bool, restart: bool = False
    ) -> Generator[PageWrite, None, bool]:
        """List the corpus; True when the listing finished with a reconcile."""
        sweep = self._begin_or_resume(corpus, drive_id, force_reconcile=force_reconcile, restart=restart)
        finished = False
        for records, next_token in self._listing(sweep, drive_id):
            yield self._with_content(sweep.listing_page(records, next_token))
            finished = not next_token
        if not finished:
            return False  # the budget ran out: the sweep goes on from its saved page next run
        if sweep.reconcile and corpus in self.incomplete:
            # Google searched only part of the corpus: what it did not list is not "gone".
            sweep.reconcile = False
            self.counters.warnings.append(
                f"Drive reported an incomplete search of {corpus}: files it did not list are kept, "
                "not tombstoned, until a complete listing"
            )
        if sweep.reconcile:
            self._count_changed_as_seen(drive_id, sweep)
            yield self._explain_unseen(sweep)
        else:
            yield sweep.done()
        warning = empty_sweep_warning(sweep, self.counters.seen, f"full sync of {corpus}", "files")
        swept = self.counters.seen - sweep.seen_at_start
        if warning is not None:
            self.counters.warnings.append(warning)
        elif swept > 0 and self.counters.stored == 0:
            self.counters.warnings.append(
                f"full sync of {corpus} saw {swept} files and skipped every one "
                f"({dict(self.counters.skipped)})"
            )
        return sweep.reconcile

    def _begin_or_resume(
        self, corpus: str, drive_id: str | None, *, force_reconcile: bool, restart: bool
    ) -> Sweep:
        """The corpus's unfinished sweep, or a new one that starts at the current change token."""
        # Reconcile and warnings concern this corpus only: My Drive rows carry no driveId.
        scope = files.meta_scope("driveId", drive_id)
        with self.engine.connect() as conn:
            state = sync_state.get_state(conn, self.account_id, corpus)
            live_before = files.count_live(conn, self.account_id, scope)
        guard = MassTombstoneGuard.of(self.limits)
        if state is not None and state.sweep_in_progress and not restart:
            assert state.sweep_id is not None
            sweep = Sweep(
                corpus,
                state.sweep_id,
                state.sweep_cursor or "",
                state.sweep_reconcile,
                live_before,
                page_token=state.sweep_page_token,
                resumed=True,
                scope=scope,
                seen_at_start=self.counters.seen,
                guard=guard,
            )
            sweep.why = f"the reconcile of the full listing of {corpus}"
            return sweep
        # The start token comes first: whatever changes while we list is replayed next run.
        token_args = {"driveId": drive_id, "supportsAllDrives": True} if drive_id else {}
        start = required_token(
            self._execute(self.drive.changes().getStartPageToken(**token_args)),
            "startPageToken",
            "changes.getStartPageToken",
        )
        with self.run.fenced() as conn:
            sweep = begin_sweep(
                conn,
                self.account_id,
                corpus,
                start_cursor=str(start),
                reconcile=force_reconcile or live_before > 0,
                live_before=live_before,
                scope=scope,
                seen_at_start=self.counters.seen,
                guard=guard,
            )
        sweep.why = f"the reconcile of the full listing of {corpus} ({self.counters.mode})"
        return sweep

    # --- incremental ----------------------------------------------------------------------------
    def _incremental(
        self, corpus: str, drive_id: str | None, cursor: str
    ) -> Generator[PageWrite, None, bool]:
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
                        **drive_domain.corpus_args(drive_id, for_changes=True),
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
            yield self._changes_page(changes, corpus, str(next_token or new_start))
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

    def _changes_page(self, changes: list[dict[str, Any]], corpus: str, cursor: str) -> PageWrite:
        ids = [payloads.item_key(c, "fileId") for c in changes]
        removed_ids = [
            i for i, c in zip(ids, changes, strict=True) if i != payloads.NO_ID and c.get("removed") is True
        ]
        self._count_lookups(
            self._fill_permissions(c.get("file") for c in changes if c.get("removed") is not True)
        )
        with self.engine.connect() as conn:
            prior_rows = files.stored_meta(conn, self.account_id, removed_ids)
        upserts: dict[str, FileRecord] = {}
        tombstones: dict[str, Tombstone] = {}
        drives_removed: list[str] = []
        for file_id, change in zip(ids, changes, strict=True):
            prior = PriorState.from_row(*prior_rows[file_id]) if file_id in prior_rows else None
            decision = drive_domain.decide_change(change, self.limits, prior, self.sharing)
            if decision.invalid is not None:
                self.counters.skip(decision.invalid, decision.file_id or payloads.NO_ID)
            elif decision.action is ChangeAction.UPSERT and decision.record is not None:
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
        return self._with_content(
            PageWrite(
                records=list(upserts.values()),
                tombstones=list(tombstones.values()),
                drives_removed=drives_removed,
                position=CursorAt(corpus, cursor),
            )
        )

    def _with_content(self, page: PageWrite) -> PageWrite:
        if self.limits.import_to_vault and page.records:
            self._import_to_vault(list(page.records))
        return page
