"""Who can see each Drive document, over HTTP: permissions in the rows, sharing changes as events
through the Changes API, the shared-drive path through permissions.list, and the exposure table."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from monolyth_pipelines.insights import sharing
from monolyth_pipelines.settings import DOCS_MIME
from monolyth_pipelines.store.schema import connector_file_events
from tests.connectors.harness import DriveHarness

OUTSIDER = "outsider@partner.example"


def _events(drive: DriveHarness, job_id: Any | None = None) -> list[dict[str, Any]]:
    e = connector_file_events
    query = sa.select(e).where(e.c.account_id == drive.account_id).order_by(e.c.id)
    if job_id is not None:
        query = query.where(e.c.job_id == job_id)
    with drive.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def _private_doc(drive: DriveHarness) -> str:
    rows = drive.rows()
    return next(
        f["id"]
        for f in drive.drive.files(include_shared_drives=False)
        if f["id"] in rows and f.get("ownedByMe") and rows[f["id"]]["meta_json"]["visibility"] == "private"
    )


def test_sharing_changes_arrive_through_the_change_feed_as_events_and_in_the_exposure_table(
    make_drive: Callable[[int], DriveHarness],
) -> None:
    drive = make_drive(60)
    drive.sync()
    doc = _private_doc(drive)
    before = drive.rows()[doc]

    drive.drive.share(doc, email=OUTSIDER, role="reader")
    drive.emulator.reset_stats()
    result, job = drive.sync()
    assert result.success and job.meta_json["counters"]["mode"] == "incremental"
    # The change feed alone: no sweep, no permissions.list.
    assert drive.emulator.stats(drive.account)["api_calls"] == {"drive.changes.list": 1}
    row = drive.rows()[doc]
    assert row["meta_json"]["visibility"] == "shared_external" and row["meta_json"]["shared"] is True
    assert {"type": "user", "role": "reader", "email": OUTSIDER, "inherited": False} in row["meta_json"][
        "permissions"
    ]
    assert row["modified_at"] == before["modified_at"]
    events = [e for e in _events(drive, job.id) if e["external_id"] == doc]
    # A sharing change alone is one event of its own kind, not also "modified".
    assert [e["event"] for e in events] == ["shared"]
    assert events[0]["changes"] == {
        "visibility": {"old": "private", "new": "shared_external"},
        "gained": [{"type": "user", "role": "reader", "email": OUTSIDER}],
        "lost": [],
    }

    drive.drive.share(doc, type="anyone", role="reader", discoverable=True)
    _, _public_job = drive.sync()
    drive.drive.make_private(doc)
    _, private_job = drive.sync()
    kinds = [(e["event"], e["changes"].get("visibility")) for e in _events(drive) if e["external_id"] == doc]
    assert kinds == [
        ("added", None),
        ("shared", {"old": "private", "new": "shared_external"}),
        ("shared", {"old": "shared_external", "new": "public"}),
        ("unshared", {"old": "public", "new": "private"}),
    ]
    last = next(e for e in _events(drive, private_job.id) if e["external_id"] == doc)
    assert last["changes"]["gained"] == []
    assert {"type": "anyone", "role": "reader", "discoverable": True} in last["changes"]["lost"]
    assert {"type": "user", "role": "reader", "email": OUTSIDER} in last["changes"]["lost"]
    # Emails only for users and groups: the anyone grant names nobody.
    assert all("email" not in g for g in last["changes"]["lost"] if g["type"] == "anyone")
    assert drive.rows()[doc]["meta_json"]["visibility"] == "private"

    today = datetime.now(UTC).date()
    frame = sharing.build_day(drive.engine, today)
    row_of_day = frame[frame["account_id"] == drive.account_id].iloc[0]
    live = drive.rows()
    by_class = Counter(r["meta_json"].get("visibility", "unclassified") for r in live.values())
    for name in sharing.CLASSES:
        assert row_of_day[name] == by_class.get(name, 0), name
    assert row_of_day["live_documents"] == len(live)
    assert row_of_day["newly_shared_external"] == 1
    assert row_of_day["newly_public"] == 1
    assert row_of_day["unshared"] == 1
    with drive.engine.connect() as conn:
        assert sharing.classes_add_up(conn, today, today).passed
        report = sharing.report(conn, today=today, days=7)
    assert doc in report and OUTSIDER in report


def test_a_page_of_my_drive_files_costs_no_extra_request(make_drive: Callable[[int], DriveHarness]) -> None:
    drive = make_drive(1000)
    result, job = drive.sync()
    assert result.success
    calls = drive.emulator.stats(drive.account)["api_calls"]
    assert calls == {"drive.changes.getStartPageToken": 1, "drive.files.list": 1}
    assert job.meta_json["counters"]["permission_lookups"] == 0
    rows = drive.rows()
    classes = Counter(r["meta_json"]["visibility"] for r in rows.values())
    assert set(classes) <= set(sharing.CLASSES) and len(classes) >= 4, classes
    # What Google withholds from a reader is inferred, and said to be.
    partial = [r for r in rows.values() if r["meta_json"].get("permissions_complete") is False]
    assert all(r["meta_json"]["ownedByMe"] is False for r in partial)


def test_shared_drive_files_get_their_permissions_through_permissions_list(
    make_drive: Callable[[int], DriveHarness],
) -> None:
    drive = make_drive(400)
    drive.emulator.reset_stats()
    result, job = drive.sync({"ops": {"google_drive_files": {"config": {"include_shared_drives": True}}}})
    assert result.success
    in_drives = {k: r for k, r in drive.rows().items() if r["meta_json"].get("driveId")}
    assert in_drives
    stats = drive.emulator.stats(drive.account)
    assert stats["api_calls"]["drive.permissions.list"] == len(in_drives)
    assert job.meta_json["counters"]["permission_lookups"] == len(in_drives)
    # Batched: one HTTP request per 100 calls at most (per page of each shared drive).
    assert stats["http_requests"]["batch.drive"] <= len(in_drives) // 100 + 2
    for row in in_drives.values():
        permissions = row["meta_json"]["permissions"]
        assert any(p["inherited"] for p in permissions), permissions
        assert row["meta_json"]["visibility"] in sharing.CLASSES
    expected = drive.drive.permissions(next(iter(in_drives)))
    assert {p["emailAddress"] for p in expected if "emailAddress" in p} == {
        p["email"] for p in next(iter(in_drives.values()))["meta_json"]["permissions"] if "email" in p
    }

    # A change to a shared-drive item's sharing arrives through the drive's feed.
    target = next(iter(in_drives))
    drive.drive.share(target, email=OUTSIDER)
    _, job = drive.sync({"ops": {"google_drive_files": {"config": {"include_shared_drives": True}}}})
    assert drive.rows()[target]["meta_json"]["visibility"] == "shared_external"
    assert [e["event"] for e in _events(drive, job.id) if e["external_id"] == target] == ["shared"]


def test_a_new_document_created_shared_is_added_not_shared(make_drive: Callable[[int], DriveHarness]) -> None:
    drive = make_drive(20)
    drive.sync()
    created = drive.drive.create_file("Offer letter", DOCS_MIME)["id"]
    drive.drive.share(created, type="anyone", role="reader")
    _, job = drive.sync()
    assert [e["event"] for e in _events(drive, job.id) if e["external_id"] == created] == ["added"]
    assert drive.rows()[created]["meta_json"]["visibility"] == "anyone_with_link"
