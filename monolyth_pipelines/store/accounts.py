"""connector_accounts: connecting, disconnecting, token write-back."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from monolyth_pipelines.store.errors import InvalidRecordError
from monolyth_pipelines.store.schema import AccountStatus, Provider, connector_accounts
from monolyth_pipelines.store.timeutil import utcnow


@dataclass(frozen=True)
class Account:
    id: uuid.UUID
    owner_id: uuid.UUID
    provider: str
    status: str
    created_at: datetime
    updated_at: datetime

    def __repr__(self) -> str:  # token_json deliberately absent: it must never reach a log
        return f"Account(id={self.id}, provider={self.provider}, status={self.status})"


_PUBLIC_COLUMNS = [c for c in connector_accounts.c if c.name != "token_json"]


def _validate_status(status: str) -> str:
    if status not in {s.value for s in AccountStatus}:
        raise InvalidRecordError("status", f"unknown account status {status!r}")
    return status


def create_account(
    conn: sa.Connection,
    *,
    owner_id: uuid.UUID,
    provider: str,
    token_json: dict[str, Any] | None,
    status: str = AccountStatus.CONNECTED,
    account_id: uuid.UUID | None = None,
) -> uuid.UUID:
    if provider not in {p.value for p in Provider}:
        raise InvalidRecordError("provider", f"unknown provider {provider!r}")
    _validate_status(status)
    account_id = account_id or uuid.uuid4()
    now = utcnow()
    conn.execute(
        connector_accounts.insert().values(
            id=account_id,
            owner_id=owner_id,
            provider=provider,
            status=status,
            token_json=token_json,
            created_at=now,
            updated_at=now,
        )
    )
    return account_id


def get_account(conn: sa.Connection, account_id: uuid.UUID) -> Account | None:
    row = conn.execute(sa.select(*_PUBLIC_COLUMNS).where(connector_accounts.c.id == account_id)).one_or_none()
    return Account(**row._mapping) if row else None


def list_accounts(
    conn: sa.Connection, *, provider: str | None = None, statuses: Iterable[str] | None = None
) -> list[Account]:
    query = sa.select(*_PUBLIC_COLUMNS).order_by(connector_accounts.c.created_at, connector_accounts.c.id)
    if provider:
        query = query.where(connector_accounts.c.provider == provider)
    if statuses is not None:
        query = query.where(connector_accounts.c.status.in_(list(statuses)))
    return [Account(**row._mapping) for row in conn.execute(query)]


def set_status(conn: sa.Connection, account_id: uuid.UUID, status: str) -> bool:
    _validate_status(status)
    result = conn.execute(
        connector_accounts.update()
        .where(connector_accounts.c.id == account_id)
        .values(status=status, updated_at=utcnow())
    )
    return result.rowcount == 1


def get_token_json(conn: sa.Connection, account_id: uuid.UUID) -> dict[str, Any] | None:
    return conn.execute(
        sa.select(connector_accounts.c.token_json).where(connector_accounts.c.id == account_id)
    ).scalar_one_or_none()


def save_token_json(
    conn: sa.Connection,
    account_id: uuid.UUID,
    token_json: dict[str, Any],
    *,
    expected_refresh_token: str | None,
) -> bool:
    """Write refreshed tokens back, unless the account was reconnected meanwhile.

    The write only happens while the stored refresh token is still the one the run started
    with: a user who reconnects during a sync gets a new grant, which a stale copy must not
    overwrite. Returns whether it wrote.
    """
    result = conn.execute(
        connector_accounts.update()
        .where(
            connector_accounts.c.id == account_id,
            connector_accounts.c.token_json["refresh_token"].as_string() == expected_refresh_token,
        )
        .values(token_json=token_json, updated_at=utcnow())
    )
    return result.rowcount == 1
