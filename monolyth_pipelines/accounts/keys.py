"""``accounts rotate-keys``: re-encrypt every stored grant with the first key of the ring.

Resumable and safe beside running syncs: rows already under the first key are skipped, and each
row is rewritten only if it still holds the ciphertext read (compare-and-set), so a token a sync
refreshed meanwhile (written with the first key) is never overwritten by a stale copy. Batches
of ``batch_size`` rows, each batch one transaction and one statement. The Workspace domains'
service-account keys (connector_domains.key_json, a few rows) are rotated the same way, first.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from cryptography.fernet import MultiFernet

from monolyth_pipelines.store import token_crypto
from monolyth_pipelines.store.schema import connector_accounts, connector_domains
from monolyth_pipelines.store.timeutil import utcnow


@dataclass
class RotateResult:
    rotated: int = 0
    already_current: int = 0
    changed_meanwhile: int = 0
    domain_keys: int = 0  # service-account keys of Workspace domains re-encrypted


def rotate_keys(engine: sa.Engine, *, batch_size: int = 200) -> RotateResult:
    dialect = engine.dialect.name
    ring = token_crypto.key_ring(dialect)
    result = RotateResult()
    result.domain_keys = _rotate_domain_keys(engine, ring)
    c = connector_accounts.c
    last_id = None
    while True:
        with engine.begin() as conn:
            query = (
                sa.select(c.id, c.token_json).where(c.token_json.isnot(None)).order_by(c.id).limit(batch_size)
            )
            if last_id is not None:
                query = query.where(c.id > last_id)
            rows = conn.execute(query).all()
            if not rows:
                return result
            last_id = rows[-1].id
            encrypted, plain = [], []
            for row in rows:
                if token_crypto.is_under_primary(dialect, row.token_json):
                    result.already_current += 1
                    continue
                new = token_crypto.rotate(ring, row.token_json)
                if token_crypto.is_encrypted(row.token_json):
                    encrypted.append({"row_id": row.id, "old_v": row.token_json["v"], "new": new})
                else:
                    plain.append({"row_id": row.id, "new": new})
            now = utcnow()
            if encrypted:
                written = conn.execute(
                    connector_accounts.update()
                    .where(
                        c.id == sa.bindparam("row_id"), c.token_json["v"].as_string() == sa.bindparam("old_v")
                    )
                    .values(token_json=sa.bindparam("new"), updated_at=now),
                    encrypted,
                ).rowcount
                _count(result, len(encrypted), written)
            if plain:
                written = conn.execute(
                    connector_accounts.update()
                    .where(c.id == sa.bindparam("row_id"), c.token_json["enc"].as_string().is_(None))
                    .values(token_json=sa.bindparam("new"), updated_at=now),
                    plain,
                ).rowcount
                _count(result, len(plain), written)


def _count(result: RotateResult, attempted: int, written: int) -> None:
    # Some drivers report -1 for executemany; then every attempted row counts as rotated (a row
    # changed meanwhile was written with the first key anyway).
    written = attempted if written < 0 else written
    result.rotated += written
    result.changed_meanwhile += attempted - written


def _rotate_domain_keys(engine: sa.Engine, ring: MultiFernet) -> int:
    d = connector_domains.c
    dialect = engine.dialect.name
    with engine.begin() as conn:
        rows = [
            r
            for r in conn.execute(sa.select(d.id, d.key_json))
            if not token_crypto.is_under_primary(dialect, r.key_json)
        ]
        if not rows:
            return 0
        written = conn.execute(
            connector_domains.update()
            .where(d.id == sa.bindparam("row_id"), d.key_json["v"].as_string() == sa.bindparam("old_v"))
            .values(key_json=sa.bindparam("new"), updated_at=utcnow()),
            [
                {"row_id": r.id, "old_v": r.key_json["v"], "new": token_crypto.rotate(ring, r.key_json)}
                for r in rows
            ],
        ).rowcount
    return len(rows) if written < 0 else written
