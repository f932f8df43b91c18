"""The end of a reconciling Gmail full pull: the window is a view, not a deletion.

A full pull lists the label's newest ``max_threads`` threads, but incremental runs add every new
thread of the label without a cap, so an account holds more threads than the window shows. A
live row the listing did not see is therefore no evidence of anything: its thread is looked up
by id (``threads.get`` in batches, like the listing's own fetches), and its current state decides
(``domain.gmail.decide_thread``): still in the label → kept (and refreshed); out of the label →
``left_label`` (``out_of_scope`` when the configured label changed: the message did not move,
the setting did); in trash or spam → ``trashed``. What is still unseen after that is gone from
the mailbox (its thread answered 404, or the message is no longer in its thread): ``deleted``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from monolyth_pipelines.domain.records import Tombstone, TombstoneReason
from monolyth_pipelines.store import files
from monolyth_pipelines.sync.pages import PageWrite, Sweep

if TYPE_CHECKING:
    from monolyth_pipelines.sync.gmail import GmailSync


class GmailReconcile:
    """Mixed into ``GmailSync``: uses its run context, batcher and thread decisions."""

    def _reconcile(
        self: GmailSync, sweep: Sweep, label_id: str, *, label_changed: bool
    ) -> Iterator[PageWrite]:
        """Look up every thread with a live row the sweep did not see, then end the sweep.

        Threads still in the label are written (and count as seen) page by page; every
        tombstone waits for the sweep's last page, where the mass-tombstone guard weighs them
        together with the rows still unseen, so a refused run writes none of them.
        """
        if not sweep.reconcile:
            yield sweep.done()
            return
        with self.engine.connect() as conn:
            threads = files.unseen_live_meta_values(conn, self.account_id, sweep.sweep_id, "threadId")
        tombstones: list[Tombstone] = []
        calls = (self._thread_call(thread_id) for thread_id in threads)
        for answers in self._batcher("threads.get").run(calls):
            # A 404 (error set) decides nothing here: its rows stay unseen and end as deleted.
            found = [a.response for a in answers if a.error is None]
            records, left = self._threads(found, label_id)
            if label_changed:
                left = [
                    Tombstone(t.external_id, TombstoneReason.OUT_OF_SCOPE)
                    if t.reason is TombstoneReason.LEFT_LABEL
                    else t
                    for t in left
                ]
            tombstones += left
            # Every message still in its thread is there (a malformed one is skipped, not gone).
            leaving = {t.external_id for t in left}
            present = [
                str(m["id"])
                for thread in found
                if isinstance(thread, dict)
                for m in thread.get("messages") or []
                if isinstance(m, dict) and m.get("id") and str(m["id"]) not in leaving
            ]
            if records or present:
                yield PageWrite(records=records, sweep_id=sweep.sweep_id, seen=present)
        self.counters.reconcile_lookups += len(threads)
        sweep.unseen_reason = TombstoneReason.DELETED
        yield sweep.done(tombstones=tombstones)
