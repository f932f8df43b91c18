"""Pages as data: what a fetch loop hands to ``SyncRun.commit_page``, and the full-sweep
bookkeeping both connectors share (begin or resume, and one finish).

A fetch loop never opens a write transaction for a page itself: it yields a ``PageWrite`` and
the run commits the rows, the tombstones, the sweep's seen ids and the new position together.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from monolyth_pipelines.domain.records import FileRecord, Tombstone, TombstoneReason
from monolyth_pipelines.store import files, jobs, sync_state
from monolyth_pipelines.sync.counters import SyncCounters
from monolyth_pipelines.sync.guards import MassTombstoneGuard, check_mass_tombstone

# Below this many live items a drop to zero is not alarming enough to shout about.
LOUD_DROP_THRESHOLD = 100


@dataclass(frozen=True)
class SweepPage:
    """A listing page of a sweep is stored: resume after ``next_token`` (None: the last page)."""

    corpus: str
    next_token: str | None


@dataclass(frozen=True)
class CursorAt:
    """An incremental page is stored: the feed resumes at ``cursor``."""

    corpus: str
    cursor: str


@dataclass(frozen=True)
class SweepDone:
    """The listing ended: tombstone what a reconciling sweep did not see, make its start cursor current."""

    sweep: Sweep


@dataclass
class PageWrite:
    """One transaction's worth of a sync: rows, tombstones, sweep ids seen and the new position."""

    records: Sequence[FileRecord] = ()
    tombstones: Sequence[Tombstone] = ()
    drives_removed: Sequence[str] = ()  # shared drives the account lost: their rows are access_lost
    sweep_id: uuid.UUID | None = None  # with ``seen``: the reconciling sweep these ids count for
    seen: Sequence[str] = ()
    position: SweepPage | CursorAt | SweepDone | None = None
    counts_as_page: bool = True


@dataclass
class Sweep:
    """A full listing of one corpus, from its ``connector_sync_state`` row."""

    corpus: str
    sweep_id: uuid.UUID
    start_cursor: str  # the change position taken before listing: current once the sweep ends
    reconcile: bool
    live_before: int
    page_token: str | None = None  # where a resumed listing continues
    resumed: bool = False
    scope: sa.ColumnElement[bool] | None = None  # the rows this corpus owns (reconcile, warnings)
    seen_at_start: int = 0
    # The reconcile's limit: more than the guard's share of live rows waits for confirmation.
    guard: MassTombstoneGuard | None = None
    why: str = "the reconcile of a full listing"  # names the reconcile in a refusal
    # Why rows still unseen at the end are gone: Gmail looks every unseen thread up first, so
    # what is left there was deleted; Drive's generic reason stands where Google said nothing.
    unseen_reason: TombstoneReason = TombstoneReason.NOT_SEEN_IN_FULL_SYNC

    def page(self, records: Sequence[FileRecord], tombstones: Sequence[Tombstone] = ()) -> PageWrite:
        """Rows this sweep stored. Only a reconciling sweep notes what it saw: the others
        tombstone nothing at the end."""
        return PageWrite(
            records=records,
            tombstones=tombstones,
            sweep_id=self.sweep_id if self.reconcile else None,
            seen=[r.external_id for r in records] if self.reconcile else (),
        )

    def listing_page(self, records: Sequence[FileRecord], next_token: str | None) -> PageWrite:
        """A listing page and where the listing resumes (None: it ended)."""
        page = self.page(records)
        page.position = SweepPage(self.corpus, next_token)
        return page

    def done(
        self,
        records: Sequence[FileRecord] = (),
        tombstones: Sequence[Tombstone] = (),
        seen: Sequence[str] = (),
    ) -> PageWrite:
        """The end of the listing, with what a reconcile's lookups found (upserts, tombstones with
        their reasons, ids that count as seen): one transaction, guarded as a whole."""
        return PageWrite(
            records=records,
            tombstones=tombstones,
            sweep_id=self.sweep_id if self.reconcile else None,
            seen=[*seen, *(r.external_id for r in records)] if self.reconcile else (),
            position=SweepDone(self),
            counts_as_page=False,
        )


def begin_sweep(
    conn: sa.Connection,
    account_id: uuid.UUID,
    corpus: str,
    *,
    start_cursor: str,
    reconcile: bool,
    live_before: int,
    scope: sa.ColumnElement[bool] | None = None,
    seen_at_start: int = 0,
    guard: MassTombstoneGuard | None = None,
) -> Sweep:
    sweep_id = sync_state.begin_sweep(
        conn, account_id, corpus, sweep_cursor=start_cursor, reconcile=reconcile
    )
    assert sweep_id is not None
    return Sweep(
        corpus,
        sweep_id,
        start_cursor,
        reconcile,
        live_before,
        scope=scope,
        seen_at_start=seen_at_start,
        guard=guard,
    )


def finish_sweep(
    conn: sa.Connection, account_id: uuid.UUID, sweep: Sweep, *, job_id: uuid.UUID | None = None
) -> int:
    """Inside the finishing page's transaction; returns the rows tombstoned as not seen."""
    gone = 0
    if sweep.reconcile:
        gone = files.tombstone_unseen(
            conn,
            account_id,
            sweep.sweep_id,
            sweep.unseen_reason.value,
            scope=sweep.scope,
            job_id=job_id,
        )
    sync_state.finish_sweep(conn, account_id, sweep.corpus)
    return gone


def guard_reconcile(conn: sa.Connection, account_id: uuid.UUID, sweep: Sweep) -> None:
    """Before a reconcile tombstones anything: every live row in scope the sweep has not seen is
    about to go (by a lookup's reason or as unseen). Too many of them refuses the run, and the
    page's transaction rolls back: no tombstone, the sweep stays open, no cursor moves."""
    if not sweep.reconcile or sweep.guard is None:
        return
    live = files.count_live(conn, account_id, sweep.scope)
    would = files.count_unseen_live(conn, account_id, sweep.sweep_id, sweep.scope)
    check_mass_tombstone(sweep.why, would, live, sweep.guard)


def empty_sweep_warning(sweep: Sweep, seen_now: int, what: str, items: str) -> str | None:
    """A sweep that saw nothing where many rows lived must not pass as a quiet success."""
    if seen_now == sweep.seen_at_start and sweep.live_before >= LOUD_DROP_THRESHOLD:
        return f"{what} saw 0 {items} where the account held {sweep.live_before} live {items}"
    return None


def store_page(
    conn: sa.Connection,
    page: PageWrite,
    account_id: uuid.UUID,
    provider: str,
    job_id: uuid.UUID,
    counters: SyncCounters,
) -> None:
    """Everything ``page`` holds, inside the caller's transaction (``SyncRun.commit_page``, which
    adds the job row's fence and heartbeat); what it wrote is added to ``counters``."""
    c = counters
    # First, before any row lock: a purge of the account waits for this page, never the reverse.
    jobs.share_account_pages(conn, account_id)
    if page.records:
        counts = files.upsert_files(conn, account_id, provider, page.records, job_id=job_id)
        c.inserted += counts.inserted
        c.updated += counts.updated
        c.unchanged += counts.unchanged
        c.restored += counts.restored
    if page.sweep_id is not None:
        files.record_sweep_seen(conn, account_id, page.sweep_id, page.seen)
    position = page.position
    if isinstance(position, SweepDone):
        guard_reconcile(conn, account_id, position.sweep)
    if page.tombstones:
        c.tombstoned.update(files.tombstone_files(conn, account_id, list(page.tombstones), job_id=job_id))
    for drive_id in page.drives_removed:
        c.tombstoned[TombstoneReason.ACCESS_LOST.value] += files.tombstone_drive(
            conn, account_id, drive_id, TombstoneReason.ACCESS_LOST.value, job_id=job_id
        )
    if isinstance(position, SweepPage):
        sync_state.save_sweep_page(conn, account_id, position.corpus, position.next_token)
    elif isinstance(position, CursorAt):
        sync_state.advance_cursor(conn, account_id, position.corpus, position.cursor)
    elif isinstance(position, SweepDone):
        gone = finish_sweep(conn, account_id, position.sweep, job_id=job_id)
        if gone:
            c.tombstoned[position.sweep.unseen_reason.value] += gone
    if page.counts_as_page:
        c.pages += 1
