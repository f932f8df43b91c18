"""The change probe's rules: idle only when Google says so for every corpus; any doubt runs."""

from __future__ import annotations

from monolyth_pipelines.domain.probe import (
    CorpusCursor,
    Verdict,
    combine,
    drive_corpus_verdict,
    gmail_verdict,
    needs_run_without_asking,
    unseen_shared_drives,
)

MY = CorpusCursor("drive", "41", False)


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
