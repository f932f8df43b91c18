"""The end of a reconciling Drive sweep: what changed while the listing ran counts as seen, and
the few rows still unseen are looked up one by one to learn why each left."""

from __future__ import annotations

from typing import TYPE_CHECKING

from monolyth_pipelines.domain import drive as drive_domain
from monolyth_pipelines.domain.drive import ChangeAction, PriorState
from monolyth_pipelines.domain.records import FileRecord, Tombstone
from monolyth_pipelines.errors import ErrorCode, SyncError
from monolyth_pipelines.store import files
from monolyth_pipelines.sync.page_checks import page_list
from monolyth_pipelines.sync.pages import PageWrite, Sweep

if TYPE_CHECKING:
    from monolyth_pipelines.sync.drive import DriveSync

# A reconcile looks up at most this many unseen rows one by one to learn why each left.
UNSEEN_LOOKUPS = 200


class DriveReconcile:
    """Mixed into ``DriveSync``: uses its run context, limits and Drive client."""

    def _explain_unseen(self: DriveSync, sweep: Sweep) -> PageWrite:
        """Ask Google why each live row the re-list did not see is gone, while they are few.

        The listing hides trashed and out-of-scope files, so "not seen" alone cannot tell a file
        trashed, grown over the size limit, deleted or unshared while the change token was bad.
        One files.get each gives the real reason (``decide_lookup``); past ``UNSEEN_LOOKUPS`` rows
        the generic ``not_seen_in_full_sync`` stands, to keep the request count bounded.

        What the lookups found goes into the sweep's last page (``Sweep.done``), so the
        mass-tombstone guard weighs the lookups' tombstones and the unseen rest together, and a
        refused run writes none of them. The files a lookup tombstones stay unseen (so the guard
        counts them); the rest count as seen.
        """
        with self.engine.connect() as conn:
            unseen = files.unseen_live_ids(
                conn, self.account_id, sweep.sweep_id, sweep.scope, limit=UNSEEN_LOOKUPS + 1
            )
            prior = files.stored_meta(conn, self.account_id, unseen)
        if not unseen or len(unseen) > UNSEEN_LOOKUPS:
            return sweep.done()
        upserts: list[FileRecord] = []
        tombstones: list[Tombstone] = []
        kept: list[str] = []
        for file_id in unseen:
            try:
                found = self._execute(
                    self.drive.files().get(
                        fileId=file_id, fields=drive_domain.DRIVE_FILE_GET_FIELDS, supportsAllDrives=True
                    )
                )
                status = 200
                self._count_lookups(self._fill_permissions([found]))
            except SyncError as error:
                if error.code not in (ErrorCode.NOT_FOUND, ErrorCode.INSUFFICIENT_PERMISSIONS):
                    raise
                found, status = None, error.status or 404
            before = PriorState.from_row(*prior[file_id]) if file_id in prior else None
            decision = drive_domain.decide_lookup(file_id, status, found, self.limits, before, self.sharing)
            if decision.action is ChangeAction.UPSERT and decision.record is not None:
                upserts.append(decision.record)
            elif decision.tombstone is not None:
                tombstones.append(decision.tombstone)
            else:
                kept.append(file_id)  # an answer we cannot read decides nothing: the row stays
        return sweep.done(records=upserts, tombstones=tombstones, seen=kept)

    def _count_changed_as_seen(self: DriveSync, drive_id: str | None, sweep: Sweep) -> None:
        """Before a reconcile: what changed while the listing ran is not "gone".

        The listing is ordered by modifiedTime, so a file edited meanwhile can jump past it and
        never be listed; tombstoning it would show Insights a deletion that never happened. The
        change feed since the sweep's start token names such files; they count as seen, and the
        feed applied right after the sweep gives them their real state.
        """
        token: str | None = sweep.start_cursor
        while token:
            resp = self._execute(
                self.drive.changes().list(
                    pageToken=token,
                    pageSize=self.limits.page_size,
                    includeRemoved=True,
                    spaces="drive",
                    fields="nextPageToken,newStartPageToken,changes(fileId)",
                    **drive_domain.corpus_args(drive_id, for_changes=True),
                )
            )
            changes = page_list(resp, "changes", "changes.list")
            changed = [str(c["fileId"]) for c in changes if isinstance(c, dict) and c.get("fileId")]
            with self.run.fenced() as conn:
                files.record_sweep_seen(conn, self.account_id, sweep.sweep_id, changed)
            token = resp.get("nextPageToken")
