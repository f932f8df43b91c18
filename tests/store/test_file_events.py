"""connector_file_events: each store write that changes a row logs exactly one event for it."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from monolyth_pipelines.domain.records import Tombstone, TombstoneReason
from monolyth_pipelines.store.files import (
    record_sweep_seen,
    tombstone_drive,
    tombstone_files,
    tombstone_out_of_scope,
    tombstone_unseen,
    upsert_files,
)
from monolyth_pipelines.store.schema import connector_file_events
from tests.store.helpers import T0, make_records, new_account


def logged(engine: sa.Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(connector_file_events).order_by(connector_file_events.c.id))
        return [dict(row._mapping) for row in rows]


def test_an_upsert_logs_added_modified_renamed_and_nothing_for_unchanged_rows(engine: sa.Engine) -> None:
    account = new_account(engine)
    job = uuid.uuid4()
    records = make_records(3)
    with engine.begin() as conn:
        upsert_files(conn, account, "google_drive", records, job_id=job)
    first = logged(engine)
    assert [(e["external_id"], e["event"], e["job_id"]) for e in first] == [
        ("f0", "added", job),
        ("f1", "added", job),
        ("f2", "added", job),
    ]
    assert first[0]["changes"] == {
        "title": {"old": None, "new": "Doc 0"},
        "size": {"old": None, "new": 1000},
        "modified_at": {"old": None, "new": "2026-01-01T00:00:00"},
    }
    assert first[0]["occurred_at"] == T0
    assert first[0]["observed_at"] is not None

    edited = [
        dataclasses.replace(records[0], size=2000, modified_at=T0 + timedelta(days=1, milliseconds=250)),
        dataclasses.replace(records[1], title="Renamed"),
        records[2],  # unchanged: no event
    ]
    with engine.begin() as conn:
        counts = upsert_files(conn, account, "google_drive", edited, job_id=job)
    assert (counts.updated, counts.unchanged) == (2, 1)
    second = logged(engine)[3:]
    assert [(e["external_id"], e["event"]) for e in second] == [("f0", "modified"), ("f1", "renamed")]
    assert second[0]["changes"] == {
        "size": {"old": 1000, "new": 2000},
        "modified_at": {"old": "2026-01-01T00:00:00", "new": "2026-01-02T00:00:00.25"},
    }
    assert second[0]["occurred_at"] == T0 + timedelta(days=1, milliseconds=250)
    assert second[1]["changes"] == {"title": {"old": "Doc 1", "new": "Renamed"}}

    with engine.begin() as conn:
        upsert_files(conn, account, "google_drive", edited, job_id=job)
    assert len(logged(engine)) == 5, "an unchanged item writes nothing"


def test_tombstones_and_restores_log_their_kind_and_reason(engine: sa.Engine) -> None:
    drive = new_account(engine)
    mail = new_account(engine, provider="gmail")
    records = make_records(6)
    records[5] = dataclasses.replace(records[5], meta={"driveId": "d1"})
    with engine.begin() as conn:
        upsert_files(conn, drive, "google_drive", records)
        upsert_files(conn, mail, "gmail", make_records(2, prefix="m"))
    start = len(logged(engine))
    with engine.begin() as conn:
        tombstone_files(
            conn,
            drive,
            [Tombstone("f0", TombstoneReason.TRASHED), Tombstone("f1", TombstoneReason.ACCESS_LOST)],
        )
        tombstone_files(conn, drive, [Tombstone("f0", TombstoneReason.DELETED)])  # already gone: nothing
        assert tombstone_drive(conn, drive, "d1", TombstoneReason.ACCESS_LOST.value) == 1
        assert tombstone_out_of_scope(
            conn, drive, supported_mimes=["application/pdf"], max_size=1003, drop_shared_drives=False
        ) == {"too_large": 1}
        sweep = uuid.uuid4()
        record_sweep_seen(conn, drive, sweep, ["f2", "f3"])
        assert tombstone_unseen(conn, drive, sweep, TombstoneReason.NOT_SEEN_IN_FULL_SYNC.value) == 0
        tombstone_files(conn, mail, [Tombstone("m0", TombstoneReason.LEFT_LABEL)])
    gone = logged(engine)[start:]
    assert [(e["external_id"], e["event"], e["reason"]) for e in gone] == [
        ("f0", "trashed", "trashed"),
        ("f1", "access_lost", "access_lost"),
        ("f5", "access_lost", "access_lost"),
        ("f4", "moved_out_of_scope", "too_large"),
        ("m0", "unlabelled", "left_label"),
    ]
    assert all(e["changes"] == {} and e["occurred_at"] is None for e in gone)

    with engine.begin() as conn:
        upsert_files(conn, drive, "google_drive", records[:1])
        upsert_files(conn, mail, "gmail", make_records(1, prefix="m"))
    back = logged(engine)[start + len(gone) :]
    assert [(e["external_id"], e["event"], e["reason"], e["changes"]) for e in back] == [
        ("f0", "restored", "trashed", {}),
        ("m0", "labelled", "left_label", {}),
    ]


def test_a_failed_page_leaves_neither_rows_nor_events(engine: sa.Engine) -> None:
    account = new_account(engine)
    try:
        with engine.begin() as conn:
            upsert_files(conn, account, "google_drive", make_records(3))
            tombstone_files(conn, account, [Tombstone("f0", TombstoneReason.TRASHED)])
            raise RuntimeError("crash before the commit")
    except RuntimeError:
        pass
    assert logged(engine) == []
