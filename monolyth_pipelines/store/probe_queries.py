"""The change probe's reads and writes: which accounts are due a probe, and recording a check.

Both are set-based: one statement for the due accounts with their cursors, one UPDATE per chunk
of checked accounts, whatever the number of accounts.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from monolyth_pipelines.domain.probe import CorpusCursor
from monolyth_pipelines.store import accounts, domains, token_crypto
from monolyth_pipelines.store.jobs import OPEN_STATUSES
from monolyth_pipelines.store.schema import (
    TIMESTAMPTZ,
    AccountStatus,
    connector_accounts,
    connector_jobs,
    connector_push_channels,
    connector_sync_state,
)

# Bound parameters per IN list, well under SQLite's and Postgres' limits.
CHUNK = 2000


@dataclass(frozen=True)
class ProbeCandidate:
    account_id: uuid.UUID
    provider: str
    token_json: dict[str, Any] | None
    corpora: tuple[CorpusCursor, ...]

    def __repr__(self) -> str:  # token_json deliberately absent: it must never reach a log
        return f"ProbeCandidate(account_id={self.account_id}, corpora={len(self.corpora)})"


def chunks(ids: Sequence[uuid.UUID], size: int = CHUNK) -> Iterator[list[uuid.UUID]]:
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


def due_accounts(
    conn: sa.Connection,
    *,
    provider: str,
    kind: str,
    due_before: datetime,
    push_due_before: datetime,
    now: datetime,
) -> list[ProbeCandidate]:
    """Connected accounts of ``provider`` with no open job, no job and no probe since their cutoff.

    The cutoff is ``due_before`` (the polling cadence), or the older ``push_due_before`` (the
    safety-net cadence) for an account holding a live push channel: push brings its changes.
    """
    acct = connector_accounts
    live_channel = (
        sa.select(sa.literal(1))
        .where(connector_push_channels.c.account_id == acct.c.id, connector_push_channels.c.expires_at > now)
        .exists()
    )
    cutoff = sa.case(
        (live_channel, sa.literal(push_due_before, TIMESTAMPTZ)), else_=sa.literal(due_before, TIMESTAMPTZ)
    )
    busy = (
        sa.select(sa.literal(1))
        .where(
            connector_jobs.c.account_id == acct.c.id,
            connector_jobs.c.kind == kind,
            sa.or_(connector_jobs.c.status.in_(OPEN_STATUSES), connector_jobs.c.created_at >= cutoff),
        )
        .exists()
    )
    checked_since = (
        sa.select(sa.literal(1))
        .where(
            connector_sync_state.c.account_id == acct.c.id,
            connector_sync_state.c.last_checked_at >= cutoff,
        )
        .exists()
    )
    due = (
        sa.select(acct.c.id, acct.c.token_json, acct.c.created_at)
        .where(
            acct.c.provider == provider, acct.c.status == AccountStatus.CONNECTED.value, ~busy, ~checked_since
        )
        .subquery("due")
    )
    state = connector_sync_state
    rows = conn.execute(
        sa.select(due.c.id, due.c.token_json, state.c.corpus, state.c.cursor, state.c.sweep_id)
        .select_from(due.outerjoin(state, state.c.account_id == due.c.id))
        .order_by(due.c.created_at, due.c.id, state.c.corpus)
    )
    found: list[ProbeCandidate] = []
    ring = token_crypto.key_ring(conn.dialect.name)
    domain_keys: dict[str, Any] = {}
    current: uuid.UUID | None = None
    token: dict[str, Any] | None = None
    corpora: list[CorpusCursor] = []
    for row in rows:
        if row.id != current:
            if current is not None:
                found.append(ProbeCandidate(current, provider, token, tuple(corpora)))
            opened = domains.with_domain_key(conn, _opened(ring, row.token_json), domain_keys)
            current, token, corpora = row.id, opened, []
        if row.corpus is not None:
            corpora.append(CorpusCursor(row.corpus, row.cursor, row.sweep_id is not None))
    if current is not None:
        found.append(ProbeCandidate(current, provider, token, tuple(corpora)))
    return found


def _opened(ring: Any, stored: Any) -> dict[str, Any] | None:
    """The decrypted tokens, or None when no key opens them: such an account gets its run, whose
    job then reports the key problem (token_key_unavailable)."""
    try:
        return token_crypto.decrypt(ring, stored)
    except token_crypto.TokenKeyError:
        return None


def mark_checked(conn: sa.Connection, account_ids: Sequence[uuid.UUID], at: datetime) -> int:
    """Record that the probe found these accounts unchanged at ``at`` (every corpus of each)."""
    updated = 0
    for chunk in chunks(list(account_ids)):
        result = conn.execute(
            connector_sync_state.update()
            .where(connector_sync_state.c.account_id.in_(chunk))
            .values(last_checked_at=at)
        )
        updated += result.rowcount
    return updated


def last_checked(conn: sa.Connection, account_id: uuid.UUID) -> datetime | None:
    return conn.execute(
        sa.select(sa.func.max(connector_sync_state.c.last_checked_at)).where(
            connector_sync_state.c.account_id == account_id
        )
    ).scalar_one_or_none()


def save_refreshed_tokens(
    conn: sa.Connection, refreshed: Sequence[tuple[uuid.UUID, dict[str, Any], str | None]]
) -> int:
    """Write back, encrypted, tokens the probes refreshed; a reconnected account is left alone.

    Each item is (account id, new token_json, the refresh token the probe started with), as in
    ``accounts.save_token_json``. One read per chunk and one executemany, each row a
    compare-and-set on the ciphertext read (a reconnect or key rotation in between writes nothing).
    """
    if not refreshed:
        return 0
    acct = connector_accounts
    ring = token_crypto.key_ring(conn.dialect.name)
    stored: dict[uuid.UUID, Any] = {}
    for chunk in chunks([account_id for account_id, _, _ in refreshed]):
        stored.update(conn.execute(sa.select(acct.c.id, acct.c.token_json).where(acct.c.id.in_(chunk))).all())
    now = datetime.now(tz=UTC)
    params, written = [], 0
    for account_id, token_json, started_with in refreshed:
        current = stored.get(account_id)
        if current is not None and not token_crypto.is_encrypted(current):
            # A row no migration has encrypted yet (rare): the one-row path encrypts it.
            written += accounts.save_token_json(
                conn, account_id, token_json, expected_refresh_token=started_with
            )
            continue
        if current is None or (_opened(ring, current) or {}).get("refresh_token") != started_with:
            continue
        params.append(
            {
                "b_id": account_id,
                "b_v": current["v"],
                "b_token": token_crypto.encrypt(ring, domains.without_key(token_json)),
                "b_now": now,
            }
        )
    if not params:
        return written
    stmt = (
        acct.update()
        .where(acct.c.id == sa.bindparam("b_id"), acct.c.token_json["v"].as_string() == sa.bindparam("b_v"))
        .values(token_json=sa.bindparam("b_token"), updated_at=sa.bindparam("b_now"))
    )
    return written + conn.execute(stmt, params).rowcount
