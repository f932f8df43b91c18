"""Which stored rows a set of limits excludes, shared by the tombstoning and the mass-tombstone guard.

Counting and tombstoning read the same rules, so the number a refusal quotes is the number of
rows the confirmed run then tombstones.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import sqlalchemy as sa

from monolyth_pipelines.domain.records import TombstoneReason
from monolyth_pipelines.store.file_queries import meta_scope
from monolyth_pipelines.store.schema import connector_files


def out_of_scope_rules(
    *, supported_mimes: Sequence[str], max_size: int, drop_shared_drives: bool
) -> list[tuple[TombstoneReason, sa.ColumnElement[bool]]]:
    """Each reason with the condition of the rows it applies to, in the order they are applied."""
    rules: list[tuple[TombstoneReason, sa.ColumnElement[bool]]] = [
        (TombstoneReason.UNSUPPORTED_TYPE, connector_files.c.mime.not_in(list(supported_mimes))),
        (TombstoneReason.TOO_LARGE, connector_files.c.size > max_size),
    ]
    if drop_shared_drives:
        rules.append((TombstoneReason.OUT_OF_SCOPE, meta_scope("driveId", None) == sa.false()))
    return rules


def count_out_of_scope(
    conn: sa.Connection,
    account_id: uuid.UUID,
    *,
    supported_mimes: Sequence[str],
    max_size: int,
    drop_shared_drives: bool,
) -> tuple[int, int]:
    """(live rows the limits would tombstone, live rows) of one account, in one query."""
    rules = out_of_scope_rules(
        supported_mimes=supported_mimes, max_size=max_size, drop_shared_drives=drop_shared_drives
    )
    excluded = sa.or_(*(condition for _reason, condition in rules))
    row = conn.execute(
        sa.select(
            sa.func.count(sa.case((excluded, 1))),
            sa.func.count(),
        ).where(connector_files.c.account_id == account_id, connector_files.c.deleted_at.is_(None))
    ).one()
    return int(row[0]), int(row[1])
