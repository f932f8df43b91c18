"""A Drive full listing as a pipeline: while the writer stores page k, a fetch thread gets page
k+1 from Google and turns it into rows.

The listing waits on Google and the writes on the database, so overlapping them is most of a full
sync's speed; the fetch thread also does the CPU work a page needs before the write (checks,
normalising, hashing), which the writer would otherwise do while Google and the database idle. At
most two pages are in memory. Counters are changed by the writer's thread only, but for the
retries the fetch thread's own Google calls count.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from monolyth_pipelines.domain import drive as drive_domain
from monolyth_pipelines.errors import ErrorCode, SyncError
from monolyth_pipelines.store import file_rows
from monolyth_pipelines.sync.drive_permissions import PermissionLookups
from monolyth_pipelines.sync.page_checks import page_list, with_ids
from monolyth_pipelines.sync.pages import Sweep, begin_sweep

if TYPE_CHECKING:
    from monolyth_pipelines.sync.drive import DriveSync


@dataclass
class ListedPage:
    """One files.list page, read and turned into rows; what the writer still has to count."""

    listed: int
    records: file_rows.PreparedRecords
    next_token: str | None
    incomplete_search: bool
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (reason, id) in page order
    lookups: PermissionLookups = field(default_factory=PermissionLookups)


class DriveListing:
    """Mixed into ``DriveSync``: uses its run context, limits, budget and Drive client."""

    def _read_listing_page(
        self: DriveSync, query: str, drive_id: str | None, token: str | None, page_size: int, number: int
    ) -> ListedPage:
        """Fetch one page and prepare its rows; pure but for the request, so any thread may."""
        resp = self._execute(
            self.drive.files().list(
                q=query,
                pageSize=page_size,
                pageToken=token,
                orderBy="modifiedTime desc",
                fields=drive_domain.DRIVE_FILES_LIST_FIELDS,
                **drive_domain.corpus_args(drive_id),
            )
        )
        raw = page_list(resp, "files", "files.list")
        skipped: list[tuple[str, str]] = []
        listed = with_ids(
            raw, "id", lambda reason, key: skipped.append((reason, key)), f"files.list page {number}"
        )
        lookups = self._fill_permissions(listed)
        records, not_stored = drive_domain.read_listing(listed, self.limits, self.sharing)
        return ListedPage(
            listed=len(raw),
            records=file_rows.prepare(records),
            next_token=resp.get("nextPageToken") or None,
            incomplete_search=resp.get("incompleteSearch") is True,
            skipped=skipped + [(str(reason), key) for reason, key in not_stored],
            lookups=lookups,
        )

    def _listing(
        self: DriveSync, sweep: Sweep, drive_id: str | None
    ) -> Iterator[tuple[file_rows.PreparedRecords, str | None]]:
        """The sweep's files.list pages (rows, next token) from where it stands, within the run's
        budget; a resumed position Google refuses restarts the listing from the top."""
        query = drive_domain.build_list_query(self.limits)
        # Not with Option B, whose content downloads share the HTTP connection (httplib2 is not
        # thread-safe).
        prefetch = ThreadPoolExecutor(max_workers=1) if not self.limits.import_to_vault else None
        pending: Future[ListedPage] | None = None
        page_token = sweep.page_token
        try:
            while True:
                if self.budget <= 0:
                    self.counters.limit_reached = True
                    return
                number = self.counters.pages + 1
                if pending is not None:
                    page, pending = pending.result(), None
                else:
                    try:
                        page = self._read_listing_page(query, drive_id, page_token, self._page_size(), number)
                    except SyncError as error:
                        if not (sweep.resumed and page_token) or error.code not in (
                            ErrorCode.CURSOR_INVALID,
                            ErrorCode.BAD_REQUEST,
                        ):
                            raise
                        self._restart_listing(sweep, error)
                        page_token = None
                        continue
                self.budget -= page.listed
                self.counters.seen += page.listed
                for reason, key in page.skipped:
                    self.counters.skip(reason, key)
                self._count_lookups(page.lookups)
                if page.incomplete_search:
                    self.counters.incomplete_search += 1
                    self.incomplete.add(sweep.corpus)
                if prefetch is not None and page.next_token and self.budget > 0:
                    pending = prefetch.submit(
                        self._read_listing_page,
                        query,
                        drive_id,
                        page.next_token,
                        self._page_size(),
                        number + 1,
                    )
                yield page.records, page.next_token
                if not page.next_token:
                    return
                page_token = page.next_token
        finally:
            if prefetch is not None:
                prefetch.shutdown(wait=True, cancel_futures=True)

    def _restart_listing(self: DriveSync, sweep: Sweep, error: SyncError) -> None:
        """The position saved by an earlier run was refused (expired, or the query changed):
        list again from the top, and reconcile at the end."""
        self.counters.warnings.append(
            f"saved listing position of {sweep.corpus} was rejected ({error.code}); listing restarts"
        )
        assert sweep.start_cursor
        reconcile = sweep.reconcile or sweep.live_before > 0
        with self.run.fenced() as conn:
            fresh = begin_sweep(
                conn,
                self.account_id,
                sweep.corpus,
                start_cursor=sweep.start_cursor,
                reconcile=reconcile,
                live_before=sweep.live_before,
            )
        sweep.sweep_id, sweep.reconcile, sweep.resumed, sweep.page_token = (
            fresh.sweep_id,
            reconcile,
            False,
            None,
        )
