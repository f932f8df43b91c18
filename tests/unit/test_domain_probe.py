"""The change probe's rules: idle only when Google says so for every corpus; any doubt runs."""

from __future__ import annotations

from monolyth_pipelines.domain.probe import (
    CorpusCursor,
    Verdict,
    combine,
    drive_corpus_verdict,
    drive_notification_verdict,
    gmail_verdict,
    needs_run_without_asking,
    unseen_shared_drives,
)
from monolyth_pipelines.settings import DriveLimits

MY = CorpusCursor("drive", "41", False)
LIMITS = DriveLimits()  # Docs, Sheets, Slides, PDF up to 25 MB
PDF = "application/pdf"


def _page(*changes: dict) -> dict:
    return {"changes": list(changes), "newStartPageToken": "50"}


def _file(file_id: str, mime: str = PDF, size: int | None = 100, **more: object) -> dict:
    file = {"id": file_id, "mimeType": mime, **more}
    return {"fileId": file_id, "file": file | ({"size": str(size)} if size is not None else {})}


def test_a_drive_notification_needs_no_run_when_the_limits_drop_every_change() -> None:
    excluded = _page(
        _file("png", "image/png"),
        _file("big", PDF, 26 * 1024 * 1024),
        _file("gone", PDF, trashed=True),
        {"fileId": "never-stored", "removed": True},
        {"changeType": "drive", "driveId": "d1", "drive": {"name": "renamed"}},
    )
    assert drive_notification_verdict(excluded, LIMITS, stored_live=set()) == Verdict.IDLE
    assert drive_notification_verdict(_page(), LIMITS, stored_live=set()) == Verdict.IDLE


def test_a_drive_notification_needs_a_run_for_anything_the_run_would_write() -> None:
    assert drive_notification_verdict(_page(_file("pdf")), LIMITS, set()) == Verdict.CHANGED
    # A stored file that left the limits (grew, trashed, removed) needs its tombstone.
    left = (_file("big", PDF, 26 * 1024 * 1024), _file("t", trashed=True), {"fileId": "r", "removed": True})
    for change in left:
        assert drive_notification_verdict(_page(change), LIMITS, {change["fileId"]}) == Verdict.CHANGED
    removed_drive = {"changeType": "drive", "driveId": "d1", "removed": True}
    assert drive_notification_verdict(_page(removed_drive), LIMITS, set()) == Verdict.CHANGED
    # An entry the run would count as malformed, and a feed longer than the page read.
    assert drive_notification_verdict(_page({"file": {}}), LIMITS, set()) == Verdict.CHANGED
    longer = {"changes": [_file("png", "image/png")], "nextPageToken": "51"}
    assert drive_notification_verdict(longer, LIMITS, set()) == Verdict.CHANGED
    assert drive_notification_verdict({}, LIMITS, set()) == Verdict.CHANGED


def test_drive_idle_only_when_the_feed_ends_at_the_saved_token() -> None:
    assert drive_corpus_verdict({"newStartPageToken": "41"}) == Verdict.IDLE
    assert drive_corpus_verdict({"changes": [{"fileId": "a"}], "newStartPageToken": "42"}) == Verdict.CHANGED
    # An empty page that is not the last one may hide changes behind it.
    assert drive_corpus_verdict({"changes": [], "nextPageToken": "45"}) == Verdict.CHANGED
    assert drive_corpus_verdict({}) == Verdict.CHANGED


def test_gmail_compares_history_ids_numerically() -> None:
    assert gmail_verdict("1000", {"historyId": "1000"}) == Verdict.IDLE
    assert gmail_verdict("999", {"historyId": "1000"}) == Verdict.CHANGED
    assert gmail_verdict("10000", {"historyId": "9999"}) == Verdict.IDLE, "not a string comparison"
    assert gmail_verdict("1000", {}) == Verdict.UNKNOWN


def test_no_cursor_a_sweep_in_progress_or_a_new_shared_drive_means_a_run() -> None:
    assert needs_run_without_asking([], "drive")
    assert needs_run_without_asking([CorpusCursor("drive", None, False)], "drive")
    assert needs_run_without_asking([MY, CorpusCursor("drive:0Ab", "7", True)], "drive")
    assert not needs_run_without_asking([MY, CorpusCursor("drive:0Ab", "7", False)], "drive")
    assert unseen_shared_drives(["0Ab", "0Cd"], [MY, CorpusCursor("drive:0Ab", "7", False)])
    assert not unseen_shared_drives(["0Ab"], [MY, CorpusCursor("drive:0Ab", "7", False)])


def test_an_account_is_idle_only_when_every_corpus_is() -> None:
    assert combine([Verdict.IDLE, Verdict.IDLE]) == Verdict.IDLE
    assert combine([Verdict.IDLE, Verdict.CHANGED]) == Verdict.CHANGED
    assert combine([Verdict.IDLE, Verdict.UNKNOWN]) == Verdict.UNKNOWN
    assert combine([]) == Verdict.UNKNOWN
