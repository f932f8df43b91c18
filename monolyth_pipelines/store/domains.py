"""connector_domains and the accounts of a domain: the one stored service-account key, and the
bulk writes a directory listing makes (one statement per page, never one per user).

The key file is encrypted here and only here; a domain account's own row holds a domain grant
(``google.credentials.domain_grant``: the domain id and the user, no secret), and the key is
joined into it in memory when the row is read (``with_domain_key``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from monolyth_pipelines.google.credentials import SERVICE_ACCOUNT_KEY, domain_grant, is_domain_grant
from monolyth_pipelines.store import token_crypto
from monolyth_pipelines.store.events import Event
from monolyth_pipelines.store.schema import (
    AccountStatus,
    AccountStatusReason,
    activity_log,
    connector_accounts,
    connector_domains,
)
from monolyth_pipelines.store.timeutil import utcnow

_PUBLIC = [c for c in connector_domains.c if c.name != "key_json"]


@dataclass(frozen=True)
class DomainRow:
    id: uuid.UUID
    owner_id: uuid.UUID
    provider: str
    domain: str
    admin_email: str
    client_id: str
    client_email: str
    users_query: str | None
    status: str
    status_reason: str | None
    status_message: str | None
    listed_at: datetime | None
    created_at: datetime
    updated_at: datetime

    def __repr__(self) -> str:  # key_json is not a field: it must never reach a log
        return f"DomainRow(id={self.id}, {self.provider}, {self.domain}, status={self.status})"


@dataclass(frozen=True)
class DomainAccount:
    id: uuid.UUID
    external_user_id: str | None
    external_email: str | None
    status: str
    domain_id: uuid.UUID | None


def _ring(conn: sa.Connection) -> Any:
    return token_crypto.key_ring(conn.dialect.name)


def save_domain(
    conn: sa.Connection,
    *,
    owner_id: uuid.UUID,
    provider: str,
    domain: str,
    admin_email: str,
    key_info: dict[str, Any],
    users_query: str | None,
) -> tuple[uuid.UUID, bool]:
    """Create the domain, or give an existing one (same owner, provider, domain) the new key,
    admin and query. Returns (id, created)."""
    c = connector_domains.c
    existing = conn.execute(
        sa.select(c.id).where(c.owner_id == owner_id, c.provider == provider, c.domain == domain)
    ).scalar_one_or_none()
    values = {
        "admin_email": admin_email,
        "client_id": str(key_info["client_id"]),
        "client_email": key_info["client_email"],
        "key_json": token_crypto.encrypt(_ring(conn), key_info),
        "users_query": users_query,
        "status": AccountStatus.PENDING.value,
        "status_reason": None,
        "status_message": None,
        "updated_at": utcnow(),
    }
    if existing is not None:
        conn.execute(connector_domains.update().where(c.id == existing).values(**values))
        return existing, False
    domain_id = uuid.uuid4()
    conn.execute(
        connector_domains.insert().values(
            id=domain_id, owner_id=owner_id, provider=provider, domain=domain, created_at=utcnow(), **values
        )
    )
    return domain_id, True


def replace_key(conn: sa.Connection, domain_id: uuid.UUID, key_info: dict[str, Any]) -> None:
    conn.execute(
        connector_domains.update()
        .where(connector_domains.c.id == domain_id)
        .values(
            key_json=token_crypto.encrypt(_ring(conn), key_info),
            client_id=str(key_info["client_id"]),
            client_email=key_info["client_email"],
            updated_at=utcnow(),
        )
    )


def get_domain(conn: sa.Connection, domain_id: uuid.UUID) -> DomainRow | None:
    row = conn.execute(sa.select(*_PUBLIC).where(connector_domains.c.id == domain_id)).one_or_none()
    return DomainRow(**row._mapping) if row else None


def list_domains(
    conn: sa.Connection, *, owner_id: uuid.UUID | None = None, provider: str | None = None
) -> list[DomainRow]:
    query = sa.select(*_PUBLIC).order_by(connector_domains.c.created_at, connector_domains.c.id)
    if owner_id is not None:
        query = query.where(connector_domains.c.owner_id == owner_id)
    if provider is not None:
        query = query.where(connector_domains.c.provider == provider)
    return [DomainRow(**row._mapping) for row in conn.execute(query)]


def domain_key(conn: sa.Connection, domain_id: uuid.UUID) -> dict[str, Any]:
    """The decrypted key file; ``TokenKeyError`` when no key of the ring opens it."""
    stored = conn.execute(
        sa.select(connector_domains.c.key_json).where(connector_domains.c.id == domain_id)
    ).scalar_one()
    key = token_crypto.decrypt(_ring(conn), stored, what=f"the service-account key of domain {domain_id}")
    assert key is not None
    return key


def with_domain_key(
    conn: sa.Connection, token_json: dict[str, Any] | None, cache: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """A domain grant with its domain's key joined in (in memory only); other grants unchanged.
    A grant whose domain row is gone comes back without a key: building credentials says so.
    ``cache`` (by domain id) makes reading many accounts of one domain one query."""
    if not is_domain_grant(token_json):
        return token_json
    assert token_json is not None
    cache = {} if cache is None else cache
    domain_id = str(token_json.get("domain_id"))
    if domain_id not in cache:
        try:
            cache[domain_id] = domain_key(conn, uuid.UUID(domain_id))
        except (ValueError, sa.exc.NoResultFound):
            cache[domain_id] = None
    key = cache[domain_id]
    return {**token_json, SERVICE_ACCOUNT_KEY: key} if key else dict(token_json)


def domain_of_grant(token_json: dict[str, Any] | None) -> str | None:
    """The domain id of a domain grant, else None."""
    if token_json is None or not is_domain_grant(token_json):
        return None
    return str(token_json.get("domain_id"))


def without_key(token_json: dict[str, Any]) -> dict[str, Any]:
    """What a row may store: never the key joined in by ``with_domain_key``."""
    if SERVICE_ACCOUNT_KEY in token_json:
        return {k: v for k, v in token_json.items() if k != SERVICE_ACCOUNT_KEY}
    return token_json


def set_status(
    conn: sa.Connection,
    domain_id: uuid.UUID,
    status: str,
    *,
    reason: str | None = None,
    message: str | None = None,
    listed: bool = False,
) -> None:
    values: dict[str, Any] = {
        "status": status,
        "status_reason": reason,
        "status_message": message,
        "updated_at": utcnow(),
    }
    if listed:
        values["listed_at"] = values["updated_at"]
    conn.execute(connector_domains.update().where(connector_domains.c.id == domain_id).values(**values))


# --- the domain's accounts ------------------------------------------------------------------------


def accounts_by_identity(
    conn: sa.Connection, *, owner_id: uuid.UUID, provider: str, identities: Sequence[str]
) -> dict[str, DomainAccount]:
    """The owner's accounts of ``provider`` for these Google identities (one query)."""
    a = connector_accounts.c
    rows = conn.execute(
        sa.select(a.id, a.external_user_id, a.external_email, a.status, a.domain_id).where(
            a.owner_id == owner_id, a.provider == provider, a.external_user_id.in_(list(identities))
        )
    )
    return {r.external_user_id: DomainAccount(**r._mapping) for r in rows}


def domain_accounts(conn: sa.Connection, domain_id: uuid.UUID) -> list[DomainAccount]:
    a = connector_accounts.c
    rows = conn.execute(
        sa.select(a.id, a.external_user_id, a.external_email, a.status, a.domain_id).where(
            a.domain_id == domain_id
        )
    )
    return [DomainAccount(**r._mapping) for r in rows]


@dataclass(frozen=True)
class Member:
    """One active directory user as the domain's account stores it."""

    identity: str  # connector_accounts.external_user_id
    email: str


def _grant_rows(
    conn: sa.Connection, domain_id: uuid.UUID, members: Iterable[Member], scopes: list[str]
) -> dict[str, Any]:
    ring = _ring(conn)
    return {
        m.identity: token_crypto.encrypt(ring, domain_grant(str(domain_id), m.email, scopes)) for m in members
    }


def insert_accounts(
    conn: sa.Connection,
    *,
    owner_id: uuid.UUID,
    provider: str,
    domain_id: uuid.UUID,
    members: Sequence[Member],
    scopes: list[str],
) -> list[uuid.UUID]:
    """New connected accounts, one executemany, and their connected events, another."""
    if not members:
        return []
    now = utcnow()
    grants = _grant_rows(conn, domain_id, members, scopes)
    rows = [
        {
            "id": uuid.uuid4(),
            "owner_id": owner_id,
            "provider": provider,
            "status": AccountStatus.CONNECTED.value,
            "token_json": grants[m.identity],
            "created_at": now,
            "updated_at": now,
            "external_user_id": m.identity,
            "external_email": m.email,
            "domain_id": domain_id,
        }
        for m in members
    ]
    conn.execute(connector_accounts.insert(), rows)
    ids = [r["id"] for r in rows]
    log_connected(conn, owner_id=owner_id, provider=provider, account_ids=ids, scopes=scopes)
    return ids


def reconnect_accounts(
    conn: sa.Connection,
    *,
    provider: str,
    owner_id: uuid.UUID,
    domain_id: uuid.UUID,
    found: Sequence[tuple[uuid.UUID, Member]],
    scopes: list[str],
) -> None:
    """Existing rows (disconnected, in error, or connected by OAuth before) become the domain's
    connected accounts: one executemany, and one for their connected events."""
    if not found:
        return
    grants = _grant_rows(conn, domain_id, [m for _, m in found], scopes)
    now = utcnow()
    conn.execute(
        connector_accounts.update()
        .where(connector_accounts.c.id == sa.bindparam("b_id"))
        .values(
            token_json=sa.bindparam("b_token"),
            external_email=sa.bindparam("b_email"),
            status=AccountStatus.CONNECTED.value,
            status_reason=None,
            status_message=None,
            domain_id=domain_id,
            updated_at=now,
        ),
        [{"b_id": i, "b_token": grants[m.identity], "b_email": m.email} for i, m in found],
    )
    log_connected(
        conn, owner_id=owner_id, provider=provider, account_ids=[i for i, _ in found], scopes=scopes
    )


def log_connected(
    conn: sa.Connection,
    *,
    owner_id: uuid.UUID,
    provider: str,
    account_ids: Sequence[uuid.UUID],
    scopes: list[str],
) -> None:
    """``connector_account_connected`` for many accounts of one owner, in one statement (the
    payload keys of store/events.PAYLOAD_KEYS)."""
    now = utcnow()
    conn.execute(
        activity_log.insert(),
        [
            {
                "id": uuid.uuid4(),
                "event": Event.ACCOUNT_CONNECTED.value,
                "owner_id": owner_id,
                "account_id": account_id,
                "provider": provider,
                "run_id": None,
                "payload": {"provider": provider, "account_id": str(account_id), "scopes": list(scopes)},
                "created_at": now,
            }
            for account_id in account_ids
        ],
    )


def mark_needs_reauth(conn: sa.Connection, domain_id: uuid.UUID, message: str) -> int:
    """Every connected account of the domain → ``error``/``needs_reauth`` with one message, in one
    statement: the key stopped working for all of them at once."""
    a = connector_accounts.c
    return conn.execute(
        connector_accounts.update()
        .where(a.domain_id == domain_id, a.status == AccountStatus.CONNECTED.value)
        .values(
            status=AccountStatus.ERROR.value,
            status_reason=AccountStatusReason.NEEDS_REAUTH.value,
            status_message=message,
            updated_at=utcnow(),
        )
    ).rowcount
