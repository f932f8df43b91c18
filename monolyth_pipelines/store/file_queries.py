"""connector_files, read side: live counts, stored state and the rows a sweep has not seen.

``store.files`` re-exports these, so ``files.count_live`` and the like keep working.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa

from monolyth_pipelines.store.schema import connector_files, connector_sweep_seen

# Rows per statement: 15 bound columns x 1000 stays under SQLite's and psycopg's parameter limits.
CHUNK = 1000


def _chunks(seq: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(seq), size):
        yield seq[start : start + size]


def meta_scope(key: str, value: str | None) -> sa.ColumnElement[bool]:
    """Rows whose meta_json[key] equals ``value`` (absent when None), e.g. one Drive corpus."""
    field = connector_files.c.meta_json[key].as_string()
    return field.is_(None) if value is None else field == value


def unseen_live_ids(
    conn: sa.Connection,
    account_id: uuid.UUID,
    sweep_id: uuid.UUID,
    scope: sa.ColumnElement[bool] | None = None,
    limit: int = 1000,
) -> list[str]:
    """Live rows in ``scope`` that a reconciling sweep has not seen (at most ``limit``)."""
    seen = sa.select(connector_sweep_seen.c.external_id).where(connector_sweep_seen.c.sweep_id == sweep_id)
    query = sa.select(connector_files.c.external_id).where(
        connector_files.c.account_id == account_id,
        connector_files.c.deleted_at.is_(None),
        connector_files.c.external_id.not_in(seen),
    )
    if scope is not None:
        query = query.where(scope)
    return list(conn.execute(query.order_by(connector_files.c.external_id).limit(limit)).scalars())


def _unseen_live(
    account_id: uuid.UUID, sweep_id: uuid.UUID, scope: sa.ColumnElement[bool] | None
) -> list[sa.ColumnElement[bool]]:
    seen = sa.select(connector_sweep_seen.c.external_id).where(connector_sweep_seen.c.sweep_id == sweep_id)
    where = [
        connector_files.c.account_id == account_id,
        connector_files.c.deleted_at.is_(None),
        connector_files.c.external_id.not_in(seen),
    ]
    return [*where, scope] if scope is not None else where


def count_unseen_live(
    conn: sa.Connection,
    account_id: uuid.UUID,
    sweep_id: uuid.UUID,
    scope: sa.ColumnElement[bool] | None = None,
) -> int:
    """How many live rows in ``scope`` a reconciling sweep has not seen: what it would tombstone."""
    query = (
        sa.select(sa.func.count())
        .select_from(connector_files)
        .where(*_unseen_live(account_id, sweep_id, scope))
    )
    return conn.execute(query).scalar_one()


def unseen_live_meta_values(
    conn: sa.Connection, account_id: uuid.UUID, sweep_id: uuid.UUID, key: str
) -> list[str]:
    """The distinct ``meta_json[key]`` of the live rows a sweep has not seen (Gmail: thread ids)."""
    column = connector_files.c.meta_json[key].as_string()
    query = (
        sa.select(column)
        .distinct()
        .where(*_unseen_live(account_id, sweep_id, None), column.is_not(None))
        .order_by(column)
    )
    return [str(v) for v in conn.execute(query).scalars()]


def live_ids_with_meta(
    conn: sa.Connection, account_id: uuid.UUID, key: str, values: Sequence[str]
) -> list[str]:
    """The live rows whose ``meta_json[key]`` is one of ``values`` (Gmail: a thread's messages)."""
    column = connector_files.c.meta_json[key].as_string()
    found: list[str] = []
    for chunk in _chunks(list(dict.fromkeys(values))):
        found += conn.execute(
            sa.select(connector_files.c.external_id).where(
                connector_files.c.account_id == account_id,
                connector_files.c.deleted_at.is_(None),
                column.in_(chunk),
            )
        ).scalars()
    return found


def stored_meta(
    conn: sa.Connection, account_id: uuid.UUID, external_ids: Sequence[str]
) -> dict[str, tuple[dict[str, Any] | None, str | None]]:
    """meta_json and deleted_reason of stored rows, for decisions that depend on what we knew."""
    found: dict[str, tuple[dict[str, Any] | None, str | None]] = {}
    for chunk in _chunks(list(external_ids)):
        rows = conn.execute(
            sa.select(
                connector_files.c.external_id, connector_files.c.meta_json, connector_files.c.deleted_reason
            ).where(connector_files.c.account_id == account_id, connector_files.c.external_id.in_(chunk))
        )
        found.update({row.external_id: (row.meta_json, row.deleted_reason) for row in rows})
    return found


def count_live(
    conn: sa.Connection, account_id: uuid.UUID, scope: sa.ColumnElement[bool] | None = None
) -> int:
    query = (
        sa.select(sa.func.count())
        .select_from(connector_files)
        .where(connector_files.c.account_id == account_id, connector_files.c.deleted_at.is_(None))
    )
    if scope is not None:
        query = query.where(scope)
    return conn.execute(query).scalar_one()


def live_meta_values(conn: sa.Connection, account_id: uuid.UUID, key: str, values: Sequence[str]) -> set[str]:
    """Which of ``values`` some live row holds in ``meta_json[key]`` (e.g. Gmail thread ids)."""
    found: set[str] = set()
    column = connector_files.c.meta_json[key].as_string()
    for chunk in _chunks(list(dict.fromkeys(values))):
        rows = conn.execute(
            sa.select(column)
            .distinct()
            .where(
                connector_files.c.account_id == account_id,
                connector_files.c.deleted_at.is_(None),
                column.in_(chunk),
            )
        )
        found.update(value for (value,) in rows)
    return found
