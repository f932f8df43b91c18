"""vault_documents: content imported under Option B (Drive) and selective import (Gmail)."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from monolyth_pipelines.store.errors import InvalidRecordError
from monolyth_pipelines.store.schema import vault_documents
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
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    now = utcnow()
    stmt = insert(vault_documents).values(
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
