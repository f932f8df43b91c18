"""vault_documents: content imported under Option B (Drive) and selective import (Gmail)."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

import sqlalchemy as sa

from monolyth_pipelines.store import dialect
from monolyth_pipelines.store.errors import InvalidRecordError
from monolyth_pipelines.store.schema import connector_files, vault_documents
from monolyth_pipelines.store.timeutil import utcnow


@dataclass(frozen=True)
class VaultDocument:
    owner_id: uuid.UUID
    source: str
    external_id: str
    title: str | None
    mime: str | None
    content: bytes
    account_id: uuid.UUID | None = None
    parent_external_id: str | None = None


def upsert_document(conn: sa.Connection, doc: VaultDocument) -> bool:
    """Store or refresh one document; returns True when content or title changed."""
    if not doc.external_id:
        raise InvalidRecordError("external_id", "is required")
    digest = hashlib.sha256(doc.content).hexdigest()
    now = utcnow()
    stmt = dialect.insert(conn, vault_documents).values(
        id=uuid.uuid4(),
        owner_id=doc.owner_id,
        source=doc.source,
        external_id=doc.external_id,
        account_id=doc.account_id,
        parent_external_id=doc.parent_external_id,
        title=doc.title,
        mime=doc.mime,
        size=len(doc.content),
        sha256=digest,
        content=doc.content,
        created_at=now,
        updated_at=now,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["owner_id", "source", "external_id"],
        set_={n: stmt.excluded[n] for n in ("title", "mime", "size", "sha256", "content", "updated_at")},
        where=sa.or_(
            vault_documents.c.sha256 != stmt.excluded.sha256, vault_documents.c.title != stmt.excluded.title
        ),
    )
    return conn.execute(stmt).rowcount == 1


def existing_external_ids(
    conn: sa.Connection, owner_id: uuid.UUID, source: str, external_ids: list[str]
) -> set[str]:
    if not external_ids:
        return set()
    rows = conn.execute(
        sa.select(vault_documents.c.external_id).where(
            vault_documents.c.owner_id == owner_id,
            vault_documents.c.source == source,
            vault_documents.c.external_id.in_(external_ids),
        )
    )
    return {row.external_id for row in rows}


def follow_source_rows(conn: sa.Connection, account_id: uuid.UUID, source: str) -> tuple[int, int]:
    """Mark content whose source item left the account, unmark content whose item is back.

    The source row is the connector_files row of the document (Drive) or of the message it was
    attached to (Gmail). Two statements per run, whatever the number of documents. Returns
    (marked, unmarked).
    """
    source_id = sa.func.coalesce(vault_documents.c.parent_external_id, vault_documents.c.external_id)
    row = sa.select(connector_files.c.deleted_reason).where(
        connector_files.c.account_id == vault_documents.c.account_id,
        connector_files.c.external_id == source_id,
    )
    gone = row.where(connector_files.c.deleted_at.is_not(None))
    live = row.where(connector_files.c.deleted_at.is_(None))
    now = utcnow()
    marked = conn.execute(
        vault_documents.update()
        .where(
            vault_documents.c.account_id == account_id,
            vault_documents.c.source == source,
            vault_documents.c.deleted_at.is_(None),
            gone.exists(),
        )
        .values(deleted_at=now, deleted_reason=gone.scalar_subquery(), updated_at=now)
    ).rowcount
    unmarked = conn.execute(
        vault_documents.update()
        .where(
            vault_documents.c.account_id == account_id,
            vault_documents.c.source == source,
            vault_documents.c.deleted_at.is_not(None),
            live.exists(),
        )
        .values(deleted_at=None, deleted_reason=None, updated_at=now)
    ).rowcount
    return marked, unmarked
