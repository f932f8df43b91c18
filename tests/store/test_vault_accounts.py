"""Vault documents belong to one account, even when two accounts of one owner share a file."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from monolyth_pipelines.domain.records import Tombstone, TombstoneReason
from monolyth_pipelines.store import files, vault
from monolyth_pipelines.store.accounts import create_account
from monolyth_pipelines.store.schema import vault_documents
from tests.store.helpers import make_records


def test_two_accounts_sharing_a_file_keep_their_own_documents(engine: sa.Engine) -> None:
    owner = uuid.uuid4()
    with engine.begin() as conn:
        work, home = (
            create_account(conn, owner_id=owner, provider="google_drive", token_json={"token": "x"})
            for _ in range(2)
        )
    shared = make_records(1, prefix="shared")[0]
    for account in (work, home):
        with engine.begin() as conn:
            files.upsert_files(conn, account, "google_drive", [shared])
            # Each account imports its own copy: the other account's document does not count.
            assert not vault.existing_external_ids(
                conn, owner, "google_drive", [shared.external_id], account_id=account
            )
            vault.upsert_document(
                conn,
                vault.VaultDocument(
                    owner_id=owner,
                    source="google_drive",
                    external_id=shared.external_id,
                    title=shared.title,
                    mime="text/plain",
                    content=b"the same file",
                    account_id=account,
                ),
            )
    with engine.connect() as conn:
        docs = conn.execute(sa.select(vault_documents.c.account_id, vault_documents.c.deleted_at)).all()
    assert sorted(str(d.account_id) for d in docs) == sorted([str(work), str(home)])

    # The work account loses access; the home account still has the file.
    with engine.begin() as conn:
        files.tombstone_files(conn, work, [Tombstone(shared.external_id, TombstoneReason.ACCESS_LOST)])
        vault.follow_source_rows(conn, work, "google_drive")
        vault.follow_source_rows(conn, home, "google_drive")
    with engine.connect() as conn:
        state = {
            r.account_id: r.deleted_reason
            for r in conn.execute(sa.select(vault_documents.c.account_id, vault_documents.c.deleted_reason))
        }
    assert state == {work: "access_lost", home: None}
