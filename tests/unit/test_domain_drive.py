"""Drive normalisation, query building and change decisions (pure functions, real payload shapes)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from monolyth_pipelines.domain.drive import (
    DRIVE_CHANGES_LIST_FIELDS,
    DRIVE_FILES_LIST_FIELDS,
    ChangeAction,
    PriorState,
    SkipReason,
    build_list_query,
    classify_drive_file,
    decide_change,
    decide_lookup,
    normalise_drive_file,
    quote_query_value,
    to_file_record,
)
from monolyth_pipelines.domain.records import Tombstone, TombstoneReason
from monolyth_pipelines.settings import DOCS_MIME, PDF_MIME, DriveLimits

LIMITS = DriveLimits(max_file_size_mb=1.0)  # 1 MiB = 1_048_576 bytes

DOC = {
    "id": "doc-1",
    "name": "Q3 plan",
    "mimeType": DOCS_MIME,
    "modifiedTime": "2025-11-27T12:34:56Z",
    "owners": [{"emailAddress": "owner@example.com", "displayName": "Owner"}],
    "webViewLink": "https://docs.google.com/document/d/doc-1/edit",
    "trashed": False,
    "version": "42",
    "ownedByMe": True,
    "parents": ["root-folder"],
}

PDF = {
    "id": "pdf-1",
    "name": "NDA.pdf",
    "mimeType": PDF_MIME,
    "modifiedTime": "2025-11-27T12:34:56.789Z",
    "size": "123456",
    "md5Checksum": "0cc175b9c0f1b6a831c399e269772661",
    "owners": [{"emailAddress": "legal@acme.com"}],
    "webViewLink": "https://drive.google.com/file/d/pdf-1/view",
    "trashed": False,
    "version": "7",
}

SHARED_DRIVE_SHEET = {
    "id": "sheet-1",
    "name": "Budget",
    "mimeType": "application/vnd.google-apps.spreadsheet",
    "modifiedTime": "2025-11-27T12:34:56+02:00",
    "driveId": "0AExampleSharedDrive",
    "trashed": False,
}


# --- fields selectors ------------------------------------------------------------------------


def test_list_fields_name_every_needed_field_and_never_a_wildcard() -> None:
    assert DRIVE_FILES_LIST_FIELDS.startswith("nextPageToken,incompleteSearch,files(")
    for needed in (
        "id",
        "name",
        "mimeType",
        "modifiedTime",
        "size",
        "owners(emailAddress)",
        "webViewLink",
        "trashed",
        "driveId",
        "version",
        "md5Checksum",
    ):
        assert needed in DRIVE_FILES_LIST_FIELDS
    assert "*" not in DRIVE_FILES_LIST_FIELDS
    assert "*" not in DRIVE_CHANGES_LIST_FIELDS


def test_changes_fields_ask_for_removal_and_the_next_start_token() -> None:
    assert DRIVE_CHANGES_LIST_FIELDS.startswith("nextPageToken,newStartPageToken,changes(")
    for needed in ("changeType", "removed", "fileId", "time", "driveId", "file(id,name,mimeType"):
        assert needed in DRIVE_CHANGES_LIST_FIELDS
    assert DRIVE_CHANGES_LIST_FIELDS.count("(") == DRIVE_CHANGES_LIST_FIELDS.count(")")


# --- query -----------------------------------------------------------------------------------


def test_list_query_ors_supported_types_and_excludes_trash() -> None:
    limits = DriveLimits(supported_mime_types=(DOCS_MIME, PDF_MIME))
    assert build_list_query(limits) == (
        f"(mimeType = '{DOCS_MIME}' or mimeType = '{PDF_MIME}') and trashed = false"
    )


def test_list_query_deduplicates_types() -> None:
    limits = DriveLimits(supported_mime_types=(PDF_MIME, PDF_MIME))
    assert build_list_query(limits) == f"(mimeType = '{PDF_MIME}') and trashed = false"


def test_query_values_escape_backslash_and_single_quote() -> None:
    assert quote_query_value("it's") == r"'it\'s'"
    assert quote_query_value("a\\b") == r"'a\\b'"
    # Backslash first: otherwise the quote's escape would itself be doubled.
    assert quote_query_value("\\'") == r"'\\\''"
    limits = DriveLimits(supported_mime_types=("x/it's",))
    assert build_list_query(limits) == r"(mimeType = 'x/it\'s') and trashed = false"


def test_empty_type_list_is_a_config_error_not_a_full_drive_listing() -> None:
    with pytest.raises(ValueError, match="supported_mime_types"):
        build_list_query(DriveLimits(supported_mime_types=()))


# --- normalisation ---------------------------------------------------------------------------


def test_google_doc_normalises_to_exactly_the_spec_shape() -> None:
    assert normalise_drive_file(DOC) == {
        "id": "doc-1",
        "name": "Q3 plan",
        "mimeType": DOCS_MIME,
        "modifiedTime": "2025-11-27T12:34:56Z",
        "owners": [{"emailAddress": "owner@example.com"}],
        "webViewLink": "https://docs.google.com/document/d/doc-1/edit",
    }


def test_google_doc_record_has_no_size_and_utc_modified_time() -> None:
    record = to_file_record(DOC)
    assert record.external_id == "doc-1"
    assert record.title == "Q3 plan"
    assert record.mime == DOCS_MIME
    assert record.size is None
    assert record.modified_at == datetime(2025, 11, 27, 12, 34, 56, tzinfo=UTC)
    assert record.url == DOC["webViewLink"]
    assert record.meta["version"] == "42"
    assert record.meta["ownedByMe"] is True
    assert "driveId" not in record.meta


def test_pdf_size_string_becomes_int_and_fractional_seconds_are_kept() -> None:
    record = to_file_record(PDF)
    assert record.size == 123456
    assert record.modified_at == datetime(2025, 11, 27, 12, 34, 56, 789000, tzinfo=UTC)
    assert record.modified_at.tzinfo is not None
    assert record.meta["md5Checksum"] == PDF["md5Checksum"]
    assert record.meta["owners"] == [{"emailAddress": "legal@acme.com"}]


def test_shared_drive_item_has_no_owners_and_keeps_drive_id() -> None:
    normalised = normalise_drive_file(SHARED_DRIVE_SHEET)
    assert normalised["owners"] == []
    assert normalised["webViewLink"] is None
    record = to_file_record(SHARED_DRIVE_SHEET)
    assert record.url is None
    assert record.meta["driveId"] == "0AExampleSharedDrive"
    # +02:00 offset converted to UTC.
    assert record.modified_at == datetime(2025, 11, 27, 10, 34, 56, tzinfo=UTC)


def test_meta_keeps_spec_keys_verbatim() -> None:
    meta = to_file_record(PDF).meta
    for key, value in normalise_drive_file(PDF).items():
        assert meta[key] == value


@pytest.mark.parametrize("bad", [None, "", "yesterday", "2025-11-27", "2025-13-45T99:00:00Z"])
def test_unparseable_modified_time_costs_only_that_field(bad: str | None) -> None:
    record = to_file_record({**PDF, "modifiedTime": bad})
    assert record.modified_at is None
    assert record.external_id == "pdf-1"


# --- classification --------------------------------------------------------------------------


def test_in_scope_file_is_not_skipped() -> None:
    assert classify_drive_file(PDF, LIMITS) is None
    assert classify_drive_file(DOC, LIMITS) is None


def test_unsupported_type_is_skipped() -> None:
    image = {**PDF, "mimeType": "image/png"}
    assert classify_drive_file(image, LIMITS) is SkipReason.UNSUPPORTED_TYPE


def test_size_limit_is_inclusive_and_missing_size_is_not_too_large() -> None:
    assert classify_drive_file({**PDF, "size": str(1_048_576)}, LIMITS) is None
    assert classify_drive_file({**PDF, "size": str(1_048_577)}, LIMITS) is SkipReason.TOO_LARGE
    no_size = {k: v for k, v in PDF.items() if k != "size"}
    assert classify_drive_file(no_size, LIMITS) is None


def test_trashed_wins_over_other_reasons() -> None:
    assert classify_drive_file({**PDF, "trashed": True, "size": "999999999"}, LIMITS) is SkipReason.TRASHED


def test_skip_reason_values_are_the_counter_names() -> None:
    assert {r.value for r in SkipReason} == {
        "unsupported_type",
        "too_large",
        "trashed",
        "export_limit",
        "no_permission",
    }


# --- change decisions ------------------------------------------------------------------------


def _file_change(file: dict) -> dict:
    return {
        "changeType": "file",
        "fileId": file["id"],
        "removed": False,
        "time": "2025-11-28T00:00:00Z",
        "file": file,
    }


def _removed(file_id: str = "pdf-1") -> dict:
    return {"changeType": "file", "fileId": file_id, "removed": True, "time": "2025-11-28T00:00:00Z"}


def test_live_in_scope_change_upserts_the_record() -> None:
    decision = decide_change(_file_change(PDF), LIMITS)
    assert decision.action is ChangeAction.UPSERT
    assert decision.record == to_file_record(PDF)
    assert decision.tombstone is None


def test_trashed_file_change_tombstones_as_trashed() -> None:
    decision = decide_change(_file_change({**PDF, "trashed": True}), LIMITS)
    assert decision.action is ChangeAction.TOMBSTONE
    assert decision.tombstone == Tombstone("pdf-1", TombstoneReason.TRASHED)


def test_file_that_changed_type_out_of_scope_is_tombstoned_unsupported() -> None:
    decision = decide_change(_file_change({**PDF, "mimeType": "application/zip"}), LIMITS)
    assert decision.tombstone == Tombstone("pdf-1", TombstoneReason.UNSUPPORTED_TYPE)


def test_file_that_grew_over_the_limit_is_tombstoned_too_large() -> None:
    decision = decide_change(_file_change({**PDF, "size": "5000000"}), LIMITS)
    assert decision.tombstone == Tombstone("pdf-1", TombstoneReason.TOO_LARGE)


def test_restored_from_trash_upserts_again() -> None:
    prior = PriorState.from_row({"ownedByMe": True}, "trashed")
    decision = decide_change(_file_change(PDF), LIMITS, prior)
    assert decision.action is ChangeAction.UPSERT


def test_removed_after_being_trashed_is_deleted() -> None:
    prior = PriorState.from_row(to_file_record(PDF).meta, TombstoneReason.TRASHED.value)
    decision = decide_change(_removed(), LIMITS, prior)
    assert decision.tombstone == Tombstone("pdf-1", TombstoneReason.DELETED)


def test_removed_own_my_drive_file_is_deleted() -> None:
    prior = PriorState.from_row(to_file_record(DOC).meta, None)
    decision = decide_change(_removed("doc-1"), LIMITS, prior)
    assert decision.tombstone == Tombstone("doc-1", TombstoneReason.DELETED)


def test_removed_file_owned_by_someone_else_is_access_lost_and_may_be_looked_up() -> None:
    prior = PriorState.from_row({**to_file_record(PDF).meta, "ownedByMe": False}, None)
    decision = decide_change(_removed(), LIMITS, prior)
    assert decision.tombstone == Tombstone("pdf-1", TombstoneReason.ACCESS_LOST)


def test_removed_unknown_file_defaults_to_access_lost() -> None:
    decision = decide_change(_removed("never-seen"), LIMITS)
    assert decision.tombstone == Tombstone("never-seen", TombstoneReason.ACCESS_LOST)


def test_removed_shared_drive_file_is_access_lost_even_if_flagged_owned() -> None:
    prior = PriorState(owned_by_me=True, drive_id="0AExampleSharedDrive")
    decision = decide_change(_removed("sheet-1"), LIMITS, prior)
    assert decision.tombstone == Tombstone("sheet-1", TombstoneReason.ACCESS_LOST)


def test_lookup_finding_the_file_overrides_the_inference() -> None:
    live = decide_lookup("pdf-1", 200, PDF, LIMITS)
    assert live.action is ChangeAction.UPSERT
    trashed = decide_lookup("pdf-1", 200, {**PDF, "trashed": True}, LIMITS)
    assert trashed.tombstone == Tombstone("pdf-1", TombstoneReason.TRASHED)


def test_lookup_404_keeps_access_lost_and_stops_asking() -> None:
    decision = decide_lookup("pdf-1", 404, None, LIMITS)
    assert decision.tombstone == Tombstone("pdf-1", TombstoneReason.ACCESS_LOST)
    trashed_before = decide_lookup("pdf-1", 404, None, LIMITS, PriorState(trashed=True))
    assert trashed_before.tombstone == Tombstone("pdf-1", TombstoneReason.DELETED)


def test_removed_shared_drive_asks_the_sync_to_drop_its_files() -> None:
    change = {"changeType": "drive", "driveId": "0ADrive", "removed": True, "time": "2025-11-28T00:00:00Z"}
    decision = decide_change(change, LIMITS)
    assert decision.action is ChangeAction.DRIVE_REMOVED
    assert decision.drive_id == "0ADrive"
    assert decision.reason is TombstoneReason.ACCESS_LOST
    assert decision.tombstone is None  # nothing at file level


def test_renamed_shared_drive_is_ignored() -> None:
    change = {"changeType": "drive", "driveId": "0ADrive", "removed": False, "drive": {"name": "New"}}
    assert decide_change(change, LIMITS).action is ChangeAction.IGNORE


def test_change_without_file_and_not_removed_changes_nothing() -> None:
    decision = decide_change({"changeType": "file", "fileId": "x", "removed": False}, LIMITS)
    assert decision.action is ChangeAction.IGNORE
