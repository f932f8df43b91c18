"""connector_accounts: connecting, disconnecting, token write-back.

Tokens are encrypted here and only here (``store/token_crypto.py``): callers hand in and get back
the authorized-user dict, the column only ever receives ciphertext.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from monolyth_pipelines.store import domains, token_crypto
from monolyth_pipelines.store.errors import InvalidRecordError
from monolyth_pipelines.store.schema import AccountStatus, AccountStatusReason, Provider, connector_accounts
from monolyth_pipelines.store.timeutil import utcnow


@dataclass(frozen=True)
class Account:
    id: uuid.UUID
    owner_id: uuid.UUID
    provider: str
    status: str
    created_at: datetime
    updated_at: datetime
    external_user_id: str | None = None
    external_email: str | None = None
    status_reason: str | None = None
    status_message: str | None = None
    domain_id: uuid.UUID | None = None  # an account of a Workspace domain (connector_domains)

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
    external_user_id: str | None = None,
    external_email: str | None = None,
    status_reason: str | None = None,
    status_message: str | None = None,
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
            token_json=_sealed(conn, token_json),
            created_at=now,
            updated_at=now,
            external_user_id=external_user_id,
            external_email=external_email,
            status_reason=status_reason,
            status_message=status_message,
        )
    )
    return account_id


def _sealed(conn: sa.Connection, token_json: dict[str, Any] | None) -> Any:
    if token_json is None:
        # SQL NULL: a JSON column given None stores the JSON value null, which IS NULL misses.
        return sa.null()
    return token_crypto.encrypt(token_crypto.key_ring(conn.dialect.name), domains.without_key(token_json))


def find_by_identity(
    conn: sa.Connection, *, owner_id: uuid.UUID, provider: str, external_user_id: str
) -> Account | None:
    row = conn.execute(
        sa.select(*_PUBLIC_COLUMNS).where(
            connector_accounts.c.owner_id == owner_id,
            connector_accounts.c.provider == provider,
            connector_accounts.c.external_user_id == external_user_id,
        )
    ).one_or_none()
    return Account(**row._mapping) if row else None


def update_connection(
    conn: sa.Connection,
    account_id: uuid.UUID,
    *,
    token_json: dict[str, Any] | None,
    status: str,
    status_reason: str | None = None,
    status_message: str | None = None,
    external_email: str | None = None,
) -> None:
    """A reconnect: new tokens and the status the connect ended in. An OAuth grant replaces a
    Workspace domain's: the account no longer follows the domain's key or directory."""
    _validate_status(status)
    values: dict[str, Any] = {
        "domain_id": None,
        "token_json": _sealed(conn, token_json),
        "status": status,
        "status_reason": status_reason,
        "status_message": status_message,
        "updated_at": utcnow(),
    }
    if external_email:
        values["external_email"] = external_email
    conn.execute(connector_accounts.update().where(connector_accounts.c.id == account_id).values(**values))


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


def set_status(
    conn: sa.Connection,
    account_id: uuid.UUID,
    status: str,
    *,
    reason: str | None = None,
    message: str | None = None,
    only_from: str | None = None,
) -> bool:
    """Set the status; the reason and message describe an ``error`` and are cleared otherwise.
    With ``only_from``, only while the account is in that status (False otherwise)."""
    _validate_status(status)
    where = [connector_accounts.c.id == account_id]
    if only_from is not None:
        where.append(connector_accounts.c.status == only_from)
    result = conn.execute(
        connector_accounts.update()
        .where(*where)
        .values(status=status, status_reason=reason, status_message=message, updated_at=utcnow())
    )
    return result.rowcount == 1


def mark_needs_reauth(conn: sa.Connection, account_id: uuid.UUID, message: str) -> bool:
    """``connected`` → ``error``/``needs_reauth``. A disconnect in between stays a disconnect."""
    return set_status(
        conn,
        account_id,
        AccountStatus.ERROR.value,
        reason=AccountStatusReason.NEEDS_REAUTH.value,
        message=message,
        only_from=AccountStatus.CONNECTED.value,
    )


def clear_tokens(conn: sa.Connection, account_id: uuid.UUID) -> None:
    conn.execute(
        connector_accounts.update()
        .where(connector_accounts.c.id == account_id)
        .values(token_json=sa.null(), updated_at=utcnow())
    )


def get_token_json(conn: sa.Connection, account_id: uuid.UUID) -> dict[str, Any] | None:
    """The account's decrypted authorized-user dict; ``TokenKeyError`` when no key opens it.
    A Workspace domain's account gets its domain's service-account key joined in (memory only)."""
    stored = conn.execute(
        sa.select(connector_accounts.c.token_json).where(connector_accounts.c.id == account_id)
    ).scalar_one_or_none()
    if stored is None:
        return None
    opened = token_crypto.decrypt(
        token_crypto.key_ring(conn.dialect.name), stored, what=f"the stored tokens of account {account_id}"
    )
    return domains.with_domain_key(conn, opened)


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
    overwrite. The ciphertext hides the refresh token from SQL, so the row is read and decrypted,
    and the update is a compare-and-set on the ciphertext read (a reconnect or key rotation in
    between makes it write nothing; a rotation keeps the same grant, so it is tried again).
    Returns whether it wrote.
    """
    ring = token_crypto.key_ring(conn.dialect.name)
    for _ in range(3):
        stored = conn.execute(
            sa.select(connector_accounts.c.token_json).where(connector_accounts.c.id == account_id)
        ).scalar_one_or_none()
        if stored is None:
            return False
        current = token_crypto.decrypt(ring, stored, what=f"the stored tokens of account {account_id}")
        if current is None or current.get("refresh_token") != expected_refresh_token:
            return False
        result = conn.execute(
            connector_accounts.update()
            .where(connector_accounts.c.id == account_id, _is_stored(stored))
            .values(
                token_json=token_crypto.encrypt(ring, domains.without_key(token_json)), updated_at=utcnow()
            )
        )
        if result.rowcount == 1:
            return True
    return False


def _is_stored(stored: Any) -> sa.ColumnElement[bool]:
    """The column still holds exactly ``stored`` (compare-and-set)."""
    if token_crypto.is_encrypted(stored):
        return connector_accounts.c.token_json["v"].as_string() == stored["v"]
    return connector_accounts.c.token_json["refresh_token"].as_string() == stored.get("refresh_token")


def others_of_google_user(conn: sa.Connection, account: Account, statuses: Iterable[str]) -> list[uuid.UUID]:
    """Other accounts of the same Google user (by address: Drive and Gmail ids differ) in ``statuses``."""
    if not account.external_email:
        return []
    rows = conn.execute(
        sa.select(connector_accounts.c.id).where(
            connector_accounts.c.id != account.id,
            sa.func.lower(connector_accounts.c.external_email) == account.external_email.lower(),
            connector_accounts.c.status.in_(list(statuses)),
        )
    )
    return list(rows.scalars())
