"""The Drive connector end to end: the real client, the emulator over HTTP, SQLite and Postgres."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from monolyth_pipelines.settings import DOCS_MIME, PDF_MIME, SHEETS_MIME, DriveLimits
from monolyth_pipelines.store import events
from monolyth_pipelines.store.events import PAYLOAD_KEYS, Event
from tests.connectors.harness import DriveHarness, comparable, expected_rows


def test_full_sync_equals_the_corpus_after_limits(drive: DriveHarness) -> None:
    result, job = drive.sync()
    assert result.success
    expected = expected_rows(drive.drive.files(), DriveLimits())
    assert len(expected) > 1000, "the corpus should span several pages"
    assert comparable(drive.rows()) == expected

    counters = job.meta_json["counters"]
    assert job.status == "completed" and job.attempts == 1 and job.last_error is None
    assert job.run_id == result.dagster_run.run_id
    assert counters["mode"] == "full"
    assert counters["inserted"] == len(expected)
    assert counters["skipped"]["too_large"] == counters["skipped_total"] > 0
    assert set(counters["skipped_ids"]["too_large"]) <= {f["id"] for f in drive.drive.files()}
    # One start token plus one request per 1000-file page.
    assert job.meta_json["api_calls"] == drive.api_requests() == 1 + -(-counters["seen"] // 1000)

    with drive.engine.connect() as conn:
        logged = events.events_for(conn, account_id=drive.account_id)
    assert [e["event"] for e in logged] == [
        Event.ACCOUNT_CONNECTED,
        Event.SYNC_STARTED,
        Event.SYNC_COMPLETED,
    ]
    for event in logged:
        assert set(event["payload"]) == PAYLOAD_KEYS[Event(event["event"])]
    started, completed = logged[1]["payload"], logged[2]["payload"]
    assert started["run_id"] == completed["run_id"] == job.run_id
    assert completed["file_count"] == len(expected)
    assert completed["account_id"] == str(drive.account_id)

    metadata = result.asset_materializations_for_node("google_drive_files")[0].metadata
    assert metadata["inserted"].value == len(expected)
    assert metadata["api_calls"].value == job.meta_json["api_calls"]
    assert len(metadata["preview"].value.records) == 10


def test_second_run_without_changes_writes_nothing_and_makes_at_most_two_requests(
    drive: DriveHarness,
) -> None:
    drive.sync()
    before = {k: v["updated_at"] for k, v in drive.rows().items()}
    drive.emulator.reset_stats()
    result, job = drive.sync()
    assert result.success and job.status == "completed"
    assert drive.api_requests() <= 2
    assert job.meta_json["counters"]["mode"] == "incremental"
    assert job.meta_json["counters"]["inserted"] == job.meta_json["counters"]["updated"] == 0
    assert {k: v["updated_at"] for k, v in drive.rows().items()} == before


def _pick(files: list[dict], n: int, **conditions: object) -> list[str]:
    picked = [
        f["id"]
        for f in files
        if f["mimeType"] in (DOCS_MIME, PDF_MIME, SHEETS_MIME)
        and not f.get("trashed")
        and int(f.get("size", 0)) < 1_000_000
        and not f.get("driveId")
        and all(f.get(k) == v for k, v in conditions.items())
    ]
    assert len(picked) >= n
    return picked[:n]


def test_incremental_run_applies_exactly_the_mutations(drive: DriveHarness) -> None:
    drive.sync()
    files = drive.drive.files()
    taken: set[str] = set()

    def pick(n: int, **conditions: object) -> list[str]:
        ids = _pick([f for f in files if f["id"] not in taken], n, **conditions)
        taken.update(ids)
        return ids

    d = drive.drive
    created = [d.create_file(name=f"New doc {i}", mime_type=DOCS_MIME)["id"] for i in range(10)]
    for file_id in pick(10):
        d.modify(file_id)
    renamed = pick(5)
    for file_id in renamed:
        d.rename(file_id, f"Renamed {file_id}")
    trashed = pick(5, ownedByMe=True)
    for file_id in trashed:
        d.trash(file_id)
    for file_id in trashed[:2]:
        d.untrash(file_id)
    deleted = pick(5, ownedByMe=True)
    for file_id in deleted:
        d.delete(file_id)
    lost = pick(5, ownedByMe=False)
    for file_id in lost:
        d.lose_access(file_id)
    old_date = datetime.now(UTC) - timedelta(days=400)
    old_uploads = [
        d.create_file(name=f"Old scan {i}.pdf", mime_type=PDF_MIME, size=5000, modified_time=old_date)["id"]
        for i in range(3)
    ]

    drive.emulator.reset_stats()
    result, job = drive.sync()
    assert result.success
    counters = job.meta_json["counters"]
    assert counters["mode"] == "incremental"
    assert counters["inserted"] == 13  # 10 created + 3 uploaded with an old date
    # Trashed and restored between two runs: the feed shows only the restored state (a new version).
    assert counters["updated"] == 10 + 5 + 2  # modified, renamed, trashed-then-restored
    assert counters["restored"] == 0
    assert counters["tombstoned"] == {"trashed": 3, "deleted": 5, "access_lost": 5}
    assert drive.api_requests() == 1

    assert comparable(drive.rows()) == expected_rows(drive.drive.files(), DriveLimits())
    tombstones = drive.tombstones()
    assert {i: tombstones[i] for i in trashed[2:]} == dict.fromkeys(trashed[2:], "trashed")
    assert {i: tombstones[i] for i in deleted} == dict.fromkeys(deleted, "deleted")
    assert {i: tombstones[i] for i in lost} == dict.fromkeys(lost, "access_lost")
    assert set(created + old_uploads) <= set(drive.rows())
    assert all(drive.rows()[i]["title"] == f"Renamed {i}" for i in renamed)

    # Restoring an item that was tombstoned brings its row back to life.
    d.untrash(trashed[2])
    _, job = drive.sync()
    assert job.meta_json["counters"]["restored"] == 1
    assert trashed[2] in drive.rows() and trashed[2] not in drive.tombstones()


def test_a_change_made_during_the_first_listing_is_picked_up_next_run(drive: DriveHarness) -> None:
    # Stop the first full listing after one page, as a slow listing would be overtaken by an edit.
    first, job = drive.sync({"ops": {"google_drive_files": {"config": {"max_files_per_run": 1000}}}})
    assert first.success and job.meta_json["counters"]["limit_reached"]
    listed = drive.rows()
    assert len(listed) < len(expected_rows(drive.drive.files(), DriveLimits()))
    edited = next(iter(listed))
    drive.drive.rename(edited, "Edited while the listing ran")

    second, job = drive.sync()  # finishes the listing from its saved page
    assert second.success and job.meta_json["counters"]["mode"] == "full"
    assert drive.rows()[edited]["title"] != "Edited while the listing ran"
    third, job = drive.sync()  # replays the changes since the token taken before the listing
    assert third.success and job.meta_json["counters"]["mode"] == "incremental"
    assert drive.rows()[edited]["title"] == "Edited while the listing ran"
    assert comparable(drive.rows()) == expected_rows(drive.drive.files(), DriveLimits())


def test_a_rejected_change_token_falls_back_to_a_full_sweep_and_reconcile(drive: DriveHarness) -> None:
    drive.sync()
    gone = next(iter(drive.rows()))
    drive.drive.delete(gone)
    drive.set_sync_state(cursor="not-a-token")
    result, job = drive.sync()
    assert result.success
    counters = job.meta_json["counters"]
    assert counters["mode"] == "full_after_invalid_cursor"
    assert counters["inserted"] == 0
    # The deletion is found by the re-list; a lookup gives it its reason (deleted, or access lost
    # when someone else owned the file: Google answers 404 to both).
    reason = drive.tombstones()[gone]
    assert reason in ("deleted", "access_lost")
    assert counters["tombstoned"] == {reason: 1}
    assert drive.tombstones() == {gone: reason}
    assert comparable(drive.rows()) == expected_rows(drive.drive.files(), DriveLimits())
    with drive.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM connector_sweep_seen").scalar_one() == 0
        duplicates = conn.exec_driver_sql(
            "SELECT count(*) - count(DISTINCT external_id) FROM connector_files"
        ).scalar_one()
    assert duplicates == 0


def test_vault_option_imports_content_within_the_limits(make_drive: Callable[[int], DriveHarness]) -> None:
    from monolyth_pipelines.store.schema import vault_documents

    drive = make_drive(300)
    config = {"ops": {"google_drive_files": {"config": {"persistence": "vault"}}}}
    result, job = drive.sync(config)
    assert result.success
    counters = job.meta_json["counters"]
    assert job.meta_json["settings"]["persistence"] == "vault"
    with drive.engine.connect() as conn:
        docs = conn.execute(sa.select(vault_documents)).all()
    rows = drive.rows()
    assert counters["vault_imported"] == len(docs) > 0
    assert {d.external_id for d in docs} <= set(rows)
    assert all(d.source == "google_drive" and d.size == len(d.content) for d in docs)
    by_mime = {rows[d.external_id]["mime"]: d.mime for d in docs}
    assert by_mime.get(DOCS_MIME, "text/plain") == "text/plain"
    assert by_mime.get(SHEETS_MIME, "text/csv") == "text/csv"
    not_imported = set(rows) - {d.external_id for d in docs}
    assert not_imported <= set(counters["skipped_ids"].get("export_limit", []))
    # A second run fetches no content again.
    drive.emulator.reset_stats()
    _, job = drive.sync(config)
    assert job.meta_json["counters"]["vault_imported"] == 0
    assert drive.api_requests() <= 2

    # Content follows its file: marked when the file leaves, unmarked when it comes back.
    imported = sorted(d.external_id for d in docs)
    drive.drive.delete(imported[0])
    drive.drive.trash(imported[1])
    drive.sync(config)
    with drive.engine.connect() as conn:
        marks = dict(
            conn.execute(sa.select(vault_documents.c.external_id, vault_documents.c.deleted_reason)).all()
        )
    assert {imported[0]: marks[imported[0]], imported[1]: marks[imported[1]]} == {
        imported[0]: "deleted",
        imported[1]: "trashed",
    }
    assert sum(reason is not None for reason in marks.values()) == 2
    drive.drive.untrash(imported[1])
    drive.sync(config)
    with drive.engine.connect() as conn:
        back = conn.execute(
            sa.select(vault_documents.c.deleted_at).where(vault_documents.c.external_id == imported[1])
        ).scalar_one()
    assert back is None


def test_losing_most_of_an_account_at_once_is_not_a_quiet_success(drive: DriveHarness) -> None:
    first, _ = drive.sync()
    assert [c.passed for c in first.get_asset_check_evaluations()] == [True]
    for f in drive.drive.files(include_shared_drives=False):
        if f["id"] in drive.drive.removed_ids():
            continue  # went with a deleted folder
        if f.get("ownedByMe") is False:
            drive.drive.lose_access(f["id"])
        else:
            drive.drive.delete(f["id"])
    result, job = drive.sync()
    assert result.success, "the data is right; the run must warn, not fail"
    warnings = job.meta_json["counters"]["warnings"]
    assert len(warnings) == 1 and "left in one run" in warnings[0]
    (check,) = result.get_asset_check_evaluations()
    assert not check.passed and check.severity.value == "WARN"
    assert drive.rows() == {}


def test_shared_drives_get_one_change_token_each(drive: DriveHarness) -> None:
    from monolyth_pipelines.store import sync_state

    config = {"ops": {"google_drive_files": {"config": {"include_shared_drives": True}}}}
    result, _ = drive.sync(config)
    assert result.success
    limits = DriveLimits(include_shared_drives=True)
    assert comparable(drive.rows()) == expected_rows(drive.drive.files(), limits)
    shared = drive.drive.shared_drive_ids()
    assert shared
    with drive.engine.connect() as conn:
        corpora = {s.corpus: s.cursor for s in sync_state.list_states(conn, drive.account_id)}
    assert set(corpora) == {"drive"} | {f"drive:{d}" for d in shared}
    assert all(corpora.values())

    in_shared = next(f for f in drive.drive.files() if f.get("driveId") and f["id"] in drive.rows())
    drive.drive.rename(in_shared["id"], "Renamed in a shared drive")
    _, job = drive.sync(config)
    assert job.meta_json["counters"]["updated"] == 1
    assert drive.rows()[in_shared["id"]]["title"] == "Renamed in a shared drive"
    assert drive.rows()[in_shared["id"]]["meta_json"]["owners"] == []


def test_an_expired_access_token_is_refreshed_and_written_back(drive: DriveHarness) -> None:
    from monolyth_pipelines.store import accounts

    with drive.engine.connect() as conn:
        before = accounts.get_token_json(conn, drive.account_id)
    drive.emulator.expire_access_tokens(drive.account)
    result, job = drive.sync()
    assert result.success and job.status == "completed"
    with drive.engine.connect() as conn:
        after = accounts.get_token_json(conn, drive.account_id)
    assert before and after
    assert after["token"] != before["token"] and after["refresh_token"] == before["refresh_token"]
    # The written-back token works: the next run needs no refresh and succeeds.
    assert drive.sync()[0].success


def _config(**values: object) -> dict:
    return {"ops": {"google_drive_files": {"config": values}}}


def test_changed_limits_apply_to_files_that_did_not_change(drive: DriveHarness) -> None:
    drive.sync()
    pdfs_before = {k for k, v in drive.rows().items() if v["mime"] == PDF_MIME}
    assert pdfs_before

    # Narrowed: PDFs no longer supported. Their rows leave with that reason, though no PDF changed.
    narrowed = [m for m in DriveLimits().supported_mime_types if m != PDF_MIME]
    result, job = drive.sync(_config(supported_mime_types=narrowed))
    assert result.success and job.meta_json["counters"]["mode"] == "full_after_settings_change"
    assert {k for k, r in drive.tombstones().items() if r == "unsupported_type"} == pdfs_before
    assert comparable(drive.rows()) == expected_rows(
        drive.drive.files(), DriveLimits(supported_mime_types=tuple(narrowed))
    )

    # Widened again, with a larger size limit: existing files come in without having changed.
    result, job = drive.sync(_config(max_file_size_mb=1000.0))
    assert result.success
    assert job.meta_json["counters"]["restored"] == len(pdfs_before)
    assert comparable(drive.rows()) == expected_rows(
        drive.drive.files(), DriveLimits(max_file_size_mb=1000.0)
    )
    # Same settings again: back to a one-request incremental run.
    drive.emulator.reset_stats()
    _, job = drive.sync(_config(max_file_size_mb=1000.0))
    assert job.meta_json["counters"]["mode"] == "incremental" and drive.api_requests() == 1


def test_a_rejected_saved_listing_position_restarts_the_listing(drive: DriveHarness) -> None:
    first, job = drive.sync(_config(max_files_per_run=1000))
    assert first.success and job.meta_json["counters"]["limit_reached"]
    drive.set_sync_state(sweep_page_token="expired-token")
    result, job = drive.sync()
    assert result.success and job.status == "completed"
    assert any("listing restarts" in w for w in job.meta_json["counters"]["warnings"])
    assert comparable(drive.rows()) == expected_rows(drive.drive.files(), DriveLimits())
    assert drive.sync()[1].meta_json["counters"]["mode"] == "incremental"


def test_switching_shared_drives_off_tombstones_their_rows(drive: DriveHarness) -> None:
    drive.sync(_config(include_shared_drives=True))
    shared_rows = {k for k, v in drive.rows().items() if v["meta_json"].get("driveId")}
    assert shared_rows
    result, _ = drive.sync(_config(include_shared_drives=False))
    assert result.success
    assert {k for k, r in drive.tombstones().items() if r == "out_of_scope"} == shared_rows
    assert comparable(drive.rows()) == expected_rows(drive.drive.files(), DriveLimits())


def test_a_file_edited_during_a_reconciling_listing_is_never_tombstoned(drive: DriveHarness) -> None:
    drive.sync()
    drive.set_sync_state(cursor="not-a-token")
    # The reconciling re-list stops after one page (newest first)...
    first, job = drive.sync(_config(max_files_per_run=1000))
    assert first.success and job.meta_json["counters"]["limit_reached"]
    # ...and the oldest file, not listed yet, is edited: it jumps ahead of the listing.
    expected = expected_rows(drive.drive.files(), DriveLimits())
    victim = min(expected, key=lambda k: expected[k]["modified_at"])
    drive.drive.rename(victim, "Edited while the re-list ran")
    result, job = drive.sync()
    assert result.success
    assert victim not in drive.tombstones()
    assert drive.rows()[victim]["title"] == "Edited while the re-list ran"
    assert job.meta_json["counters"]["tombstoned"] == {}
    assert comparable(drive.rows()) == expected_rows(drive.drive.files(), DriveLimits())


def test_a_reconcile_gives_each_missing_file_its_real_reason(drive: DriveHarness) -> None:
    drive.sync()
    stored = sorted(drive.rows())
    # While the change token is bad: one file trashed, one grown past the size limit, one deleted.
    drive.drive.trash(stored[0])
    drive.drive.modify(stored[1], size=60 * 1024 * 1024)
    drive.drive.delete(stored[2])
    drive.set_sync_state(cursor="not-a-token")
    result, job = drive.sync()
    assert result.success and job.meta_json["counters"]["mode"] == "full_after_invalid_cursor"
    tombstones = drive.tombstones()
    assert tombstones[stored[0]] == "trashed"
    assert tombstones[stored[1]] == "too_large"
    assert tombstones[stored[2]] in ("deleted", "access_lost")
    assert "not_seen_in_full_sync" not in tombstones.values()
    assert comparable(drive.rows()) == expected_rows(drive.drive.files(), DriveLimits())
