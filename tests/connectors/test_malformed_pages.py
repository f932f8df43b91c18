"""Pages Google should never send, served over HTTP by the emulator: each fails once, clearly,
or is counted and skipped; none becomes a bare KeyError or a cursor stored as "None"."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from monolyth_pipelines.settings import DriveLimits
from monolyth_pipelines.store.schema import connector_sync_state
from tests.connectors.harness import DriveHarness, comparable, expected_rows


def _cursors(drive: DriveHarness) -> list[tuple[Any, ...]]:
    with drive.engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.select(
                    connector_sync_state.c.corpus,
                    connector_sync_state.c.cursor,
                    connector_sync_state.c.sweep_cursor,
                    connector_sync_state.c.sweep_page_token,
                ).where(connector_sync_state.c.account_id == drive.account_id)
            )
        ]


def test_files_null_on_a_listing_page_fails_once_naming_the_field(drive: DriveHarness) -> None:
    rule = drive.emulator.faults.rewrite("drive.files.list", lambda body: {**body, "files": None}, calls=[2])
    result, job = drive.sync()
    assert rule.fired == 1
    assert not result.success and job.status == "failed" and job.attempts == 1
    assert job.last_error == "bad_response: files.list: 'files' is null, not a list"
    # The first page stays stored, and the listing resumes from the page that was refused.
    first_page = drive.rows()
    assert len(first_page) > 0 and drive.tombstones() == {}
    assert all(value != "None" for row in _cursors(drive) for value in row)
    result, job = drive.sync()
    assert result.success
    assert comparable(drive.rows()) == expected_rows(drive.drive.files(), DriveLimits())


def test_an_item_without_id_is_counted_and_skipped(make_drive: Callable[[int], DriveHarness]) -> None:
    drive = make_drive(60)

    def strip_first_id(body: dict[str, Any]) -> dict[str, Any]:
        files = [dict(f) for f in body["files"]]
        files[0].pop("id")
        return {**body, "files": files}

    listed = drive.drive.files()
    drive.emulator.faults.rewrite("drive.files.list", strip_first_id, calls=[1])
    result, job = drive.sync()
    assert result.success and job.status == "completed"
    counters = job.meta_json["counters"]
    assert counters["skipped"]["malformed_item"] == 1
    assert counters["skipped_ids"]["malformed_item"] == ["files.list page 1#0"]
    expected = expected_rows(listed, DriveLimits())
    assert len(drive.rows()) == len(expected) - 1 and set(drive.rows()) < set(expected)


def test_a_missing_start_page_token_fails_before_anything_is_listed(drive: DriveHarness) -> None:
    drive.emulator.faults.rewrite("drive.changes.getStartPageToken", lambda body: {"kind": body.get("kind")})
    result, job = drive.sync()
    assert not result.success and job.attempts == 1
    assert job.last_error == "bad_response: changes.getStartPageToken: 'startPageToken' is missing or empty"
    assert drive.rows(live_only=False) == {} and _cursors(drive) == []


def test_a_changes_page_without_any_token_keeps_the_stored_cursor(
    make_drive: Callable[[int], DriveHarness],
) -> None:
    drive = make_drive(40)
    drive.sync()
    before = _cursors(drive)
    assert before and before[0][1] is not None

    def no_tokens(body: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in body.items() if k not in ("nextPageToken", "newStartPageToken")}

    drive.emulator.faults.rewrite("drive.changes.list", no_tokens)
    result, job = drive.sync()
    assert not result.success and job.attempts == 1
    assert job.last_error == (
        "bad_response: changes.list: the page has neither nextPageToken nor newStartPageToken"
    )
    assert _cursors(drive) == before, "never a cursor stored as 'None'"


def test_an_incomplete_search_is_counted_warned_and_tombstones_nothing(
    make_drive: Callable[[int], DriveHarness],
) -> None:
    drive = make_drive(80)
    drive.sync()
    live = set(drive.rows())
    drive.set_sync_state(cursor="rejected-token")  # forces a re-list with a reconcile

    def incomplete(body: dict[str, Any]) -> dict[str, Any]:
        return {**body, "incompleteSearch": True, "files": body["files"][:5]}

    drive.emulator.faults.rewrite("drive.files.list", incomplete, calls=[1])
    result, job = drive.sync()
    assert result.success
    counters = job.meta_json["counters"]
    assert counters["incomplete_search"] == 1
    assert drive.tombstones() == {} and set(drive.rows()) == live
    (check,) = result.get_asset_check_evaluations()
    assert not check.passed and "incomplete search" in (check.description or "")
