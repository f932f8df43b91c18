"""What a change probe's answers mean: pure rules, no I/O (the I/O is sync/probe.py).

A probe asks Google, per corpus the account syncs, whether anything happened since the saved
cursor. Any doubt (no cursor yet, a sweep half done, an unreadable answer, an error) means "run":
a probe may cost a needless run, never a missed change.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from monolyth_pipelines.domain.drive import ChangeAction, decide_change
from monolyth_pipelines.settings import DriveLimits


class Verdict(StrEnum):
    IDLE = "idle"  # nothing new at Google: no run, last_checked_at moves
    CHANGED = "changed"
    UNKNOWN = "unknown"  # no cursor, sweep in progress, error, or out of time: run as before probes


@dataclass(frozen=True)
class CorpusCursor:
    corpus: str  # 'drive', 'drive:<driveId>', 'gmail'
    cursor: str | None
    sweep_in_progress: bool


def shared_drive_id(corpus: str) -> str | None:
    return corpus.partition(":")[2] or None if corpus.startswith("drive:") else None


def needs_run_without_asking(corpora: Iterable[CorpusCursor], main_corpus: str) -> bool:
    """True when the saved state alone says a run is needed (the probe would learn nothing)."""
    corpora = list(corpora)
    if not any(c.corpus == main_corpus for c in corpora):
        return True
    return any(c.cursor is None or c.sweep_in_progress for c in corpora)


def drive_corpus_verdict(changes_page: Mapping[str, Any]) -> Verdict:
    """A ``changes.list`` page read from the saved token with pageSize=1.

    Idle only when Google says the feed ends here: no change and a ``newStartPageToken``. A page
    with a ``nextPageToken`` may be empty yet have changes behind it.
    """
    if changes_page.get("changes"):
        return Verdict.CHANGED
    if changes_page.get("nextPageToken") or not changes_page.get("newStartPageToken"):
        return Verdict.CHANGED
    return Verdict.IDLE


def drive_notification_verdict(
    changes_page: Mapping[str, Any], limits: DriveLimits, stored_live: Collection[str]
) -> Verdict:
    """Does a Drive notification need a run? ``changes_page`` is one ``changes.list`` page from the
    saved token; ``stored_live`` the ids among its changes we hold live rows of.

    Idle only when the page ends the feed and every change is one the run would drop: a file the
    limits exclude (type, size, trash) or a removal, of nothing we store. A change in scope, a
    stored file going out of scope, a shared drive removed, or an entry the run would count as
    malformed all need the run; so does a feed longer than the page.
    """
    if changes_page.get("nextPageToken") or not changes_page.get("newStartPageToken"):
        return Verdict.CHANGED
    changes = changes_page.get("changes") or []
    if not isinstance(changes, list):
        return Verdict.CHANGED
    for change in changes:
        decision = decide_change(change, limits)
        if decision.invalid or decision.action in (ChangeAction.UPSERT, ChangeAction.DRIVE_REMOVED):
            return Verdict.CHANGED
        if decision.file_id is not None and decision.file_id in stored_live:
            return Verdict.CHANGED
    return Verdict.IDLE


def unseen_shared_drives(drive_ids: Iterable[str], corpora: Iterable[CorpusCursor]) -> bool:
    """A shared drive the account can see but has never synced: the run must list it."""
    known = {shared_drive_id(c.corpus) for c in corpora}
    return any(d not in known for d in drive_ids)


def gmail_verdict(saved_history_id: str, profile: Mapping[str, Any]) -> Verdict:
    """``users.getProfile``'s historyId against the saved one: equal (or older) means no change."""
    current = str(profile.get("historyId") or "")
    if not current.isdigit() or not saved_history_id.isdigit():
        return Verdict.UNKNOWN
    return Verdict.IDLE if int(current) <= int(saved_history_id) else Verdict.CHANGED


def combine(verdicts: Iterable[Verdict]) -> Verdict:
    """An account is idle only when every corpus is."""
    verdicts = list(verdicts)
    if not verdicts:
        return Verdict.UNKNOWN
    if Verdict.CHANGED in verdicts:
        return Verdict.CHANGED
    if Verdict.UNKNOWN in verdicts:
        return Verdict.UNKNOWN
    return Verdict.IDLE
