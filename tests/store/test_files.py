from __future__ import annotations

import dataclasses

import pytest
import sqlalchemy as sa

from monolyth_pipelines.domain.records import Tombstone, TombstoneReason
from monolyth_pipelines.store.errors import InvalidRecordError
from monolyth_pipelines.store.files import count_live, tombstone_files, upsert_files
from monolyth_pipelines.store.schema import connector_files
from tests.store.helpers import make_records, new_account


def _row_versions(conn: sa.Connection) -> dict[str, object]:
    """A per-row fingerprint that changes whenever the database rewrites the row."""
    if conn.dialect.name == "postgresql":
        rows = conn.exec_driver_sql("SELECT external_id, xmin::text FROM connector_files")
    else:
        rows = conn.exec_driver_sql("SELECT external_id, updated_at || rowid FROM connector_files")
    return dict(rows.all())


def test_upserting_the_same_rows_twice_writes_nothing_the_second_time(engine: sa.Engine) -> None:
    account = new_account(engine)
    records = make_records(10_000)
    with engine.begin() as conn:
        first = upsert_files(conn, account, "google_drive", records)
    assert (first.inserted, first.updated, first.unchanged) == (10_000, 0, 0)
    with engine.connect() as conn:
        before = _row_versions(conn)

    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            changes_before = conn.exec_driver_sql("SELECT total_changes()").scalar_one()
        second = upsert_files(conn, account, "google_drive", records)
        if conn.dialect.name == "sqlite":
            assert conn.exec_driver_sql("SELECT total_changes()").scalar_one() == changes_before
    assert (second.inserted, second.updated, second.unchanged) == (0, 0, 10_000)
    with engine.connect() as conn:
        assert _row_versions(conn) == before

    changed = [
        dataclasses.replace(r, title=r.title + " (edited)") if i % 100 == 0 else r
        for i, r in enumerate(records)
    ]
    with engine.begin() as conn:
        third = upsert_files(conn, account, "google_drive", changed)
    assert (third.inserted, third.updated, third.unchanged) == (0, 100, 9_900)
    with engine.connect() as conn:
        after = _row_versions(conn)
        assert sum(after[k] != before[k] for k in before) == 100
        assert (
            conn.execute(
                sa.select(connector_files.c.title).where(connector_files.c.external_id == "f0")
            ).scalar_one()
            == "Doc 0 (edited)"
        )


def test_a_row_without_external_id_rejects_the_whole_batch(engine: sa.Engine) -> None:
    account = new_account(engine)
    records = make_records(5)
    records[3] = dataclasses.replace(records[3], external_id="")
    with pytest.raises(InvalidRecordError, match="external_id") as info, engine.begin() as conn:
        upsert_files(conn, account, "google_drive", records)
    assert info.value.field == "external_id"
    assert info.value.index == 3
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(connector_files)).scalar_one() == 0


def test_tombstoned_rows_keep_history_and_come_back_when_seen_again(engine: sa.Engine) -> None:
    account = new_account(engine)
    records = make_records(4)
    with engine.begin() as conn:
        upsert_files(conn, account, "google_drive", records)
        marked = tombstone_files(
            conn,
            account,
            [Tombstone("f1", TombstoneReason.TRASHED), Tombstone("f2", TombstoneReason.DELETED)],
        )
        assert marked == {"trashed": 1, "deleted": 1}
        # A second tombstone keeps the first reason: the item left once, for that reason.
        assert not tombstone_files(conn, account, [Tombstone("f1", TombstoneReason.ACCESS_LOST)])
        assert count_live(conn, account) == 2
        reasons = dict(
            conn.execute(
                sa.select(connector_files.c.external_id, connector_files.c.deleted_reason).where(
                    connector_files.c.deleted_at.is_not(None)
                )
            ).all()
        )
        assert reasons == {"f1": "trashed", "f2": "deleted"}

    with engine.begin() as conn:
        again = upsert_files(conn, account, "google_drive", records[1:2])
        assert (again.updated, again.restored) == (1, 1)
        assert count_live(conn, account) == 3


def test_nul_characters_from_google_cannot_fail_a_batch(engine: sa.Engine) -> None:
    # A mail subject with an encoded NUL (=?UTF-8?Q?a=00b?=) must not make Postgres refuse the page.
    account = new_account(engine)
    record = dataclasses.replace(
        make_records(1)[0], title="Invoice\x00 123", meta={"subject": "Invoice\x00 123", "parts": ["a\x00"]}
    )
    with engine.begin() as conn:
        counts = upsert_files(conn, account, "gmail", [record])
    assert counts.inserted == 1
    with engine.connect() as conn:
        row = conn.execute(sa.select(connector_files)).one()
    assert row.title == "Invoice 123" and row.meta_json == {"subject": "Invoice 123", "parts": ["a"]}
    with engine.begin() as conn:
        assert upsert_files(conn, account, "gmail", [record]).unchanged == 1
