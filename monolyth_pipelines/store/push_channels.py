"""connector_push_channels: the Drive and Gmail notification channels we hold, and the lookups the
webhook receiver and the renewal sensor make."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from monolyth_pipelines.store.schema import (
    AccountStatus,
    connector_accounts,
    connector_push_channels,
    connector_sync_state,
)

CH = connector_push_channels


@dataclass(frozen=True)
class Channel:
    id: str
    account_id: uuid.UUID
    provider: str
    corpus: str
    token_hash: str | None
    resource_id: str
    expires_at: datetime
    created_at: datetime
    last_message_at: datetime | None
    last_message_number: int | None = None

    def __repr__(self) -> str:  # the token hash stays out of logs too
        return f"Channel(id={self.id}, account_id={self.account_id}, corpus={self.corpus})"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(channel: Channel, token: str | None) -> bool:
    if channel.token_hash is None or token is None:
        return False
    return hmac.compare_digest(channel.token_hash, hash_token(token))


def save_channel(
    conn: sa.Connection,
    *,
    channel_id: str,
    account_id: uuid.UUID,
    provider: str,
    corpus: str,
    token: str | None,
    resource_id: str,
    expires_at: datetime,
    now: datetime,
) -> None:
    conn.execute(
        CH.insert().values(
            id=channel_id,
            account_id=account_id,
            provider=provider,
            corpus=corpus,
            token_hash=hash_token(token) if token is not None else None,
            resource_id=resource_id,
            expires_at=expires_at,
            created_at=now,
        )
    )


def confirm_channel(conn: sa.Connection, channel_id: str, *, resource_id: str, expires_at: datetime) -> None:
    """Google accepted the channel: its resource id (channels.stop needs it) and granted expiry."""
    conn.execute(
        CH.update().where(CH.c.id == channel_id).values(resource_id=resource_id, expires_at=expires_at)
    )


def get_channel(conn: sa.Connection, channel_id: str) -> Channel | None:
    row = conn.execute(sa.select(CH).where(CH.c.id == channel_id)).one_or_none()
    return Channel(**row._mapping) if row else None


def gmail_channels(conn: sa.Connection, email: str, now: datetime) -> list[Channel]:
    """The live Gmail watches of a mailbox (its address is the channel's resource id), the latest
    one per account: two owners who connected the same Google user share Google's one watch."""
    rows = conn.execute(
        sa.select(CH)
        .where(CH.c.provider == "gmail", CH.c.resource_id == email.lower(), CH.c.expires_at > now)
        .order_by(CH.c.account_id, CH.c.expires_at.desc())
    )
    latest: dict[uuid.UUID, Channel] = {}
    for row in rows:
        latest.setdefault(row.account_id, Channel(**row._mapping))
    return list(latest.values())


def mailbox_watched_by_others(conn: sa.Connection, channel: Channel, now: datetime) -> bool:
    """Does another connected account hold a live watch on this Gmail channel's mailbox?

    ``users.stop`` ends the mailbox's one watch for every account of that Google user.
    """
    return (
        conn.execute(
            sa.select(sa.literal(1))
            .select_from(CH.join(connector_accounts, connector_accounts.c.id == CH.c.account_id))
            .where(
                CH.c.provider == "gmail",
                CH.c.resource_id == channel.resource_id,
                CH.c.account_id != channel.account_id,
                CH.c.expires_at > now,
                connector_accounts.c.status == AccountStatus.CONNECTED.value,
            )
            .limit(1)
        ).first()
        is not None
    )


def channels_of(conn: sa.Connection, account_id: uuid.UUID) -> list[Channel]:
    return channels_of_accounts(conn, [account_id])


# Ids per IN list: under SQLite's and Postgres's bound-parameter limits with room to spare.
_IDS_PER_QUERY = 1000


def channels_of_accounts(conn: sa.Connection, account_ids: Sequence[uuid.UUID]) -> list[Channel]:
    """The channels of these accounts, a query per thousand accounts."""
    ids = list(dict.fromkeys(account_ids))
    found: list[Channel] = []
    for start in range(0, len(ids), _IDS_PER_QUERY):
        chunk = ids[start : start + _IDS_PER_QUERY]
        rows = conn.execute(
            sa.select(CH).where(CH.c.account_id.in_(chunk)).order_by(CH.c.account_id, CH.c.created_at)
        )
        found += [Channel(**r._mapping) for r in rows]
    return found


def delete_channels(conn: sa.Connection, channel_ids: Sequence[str]) -> None:
    ids = list(channel_ids)
    for start in range(0, len(ids), _IDS_PER_QUERY):
        conn.execute(CH.delete().where(CH.c.id.in_(ids[start : start + _IDS_PER_QUERY])))


def touch(conn: sa.Connection, channel_id: str, now: datetime) -> None:
    conn.execute(CH.update().where(CH.c.id == channel_id).values(last_message_at=now))


def is_new_message(channel: Channel, number: int) -> bool:
    return channel.last_message_number is None or number > channel.last_message_number


def record_message_number(conn: sa.Connection, channel_id: str, number: int) -> bool:
    """Keep ``number`` as the channel's highest message number; False when it is not higher than
    the one kept (a replay, or a message overtaken by a later one). One compare-and-set, so two
    deliveries of one message racing each other count once."""
    result = conn.execute(
        CH.update()
        .where(
            CH.c.id == channel_id,
            sa.or_(CH.c.last_message_number.is_(None), CH.c.last_message_number < number),
        )
        .values(last_message_number=number)
    )
    return result.rowcount == 1


@dataclass(frozen=True)
class CorpusToWatch:
    account_id: uuid.UUID
    corpus: str
    cursor: str


def corpora_needing_channels(
    conn: sa.Connection, *, provider: str, renew_before: datetime, limit: int
) -> list[CorpusToWatch]:
    """Synced corpora of connected accounts with no channel that lasts past ``renew_before``.

    A channel needs a cursor to start from, so an account gets its first channel after its first
    sync; expired or soon-expiring channels are replaced (the caller stops the old ones).
    """
    lasting = (
        sa.select(sa.literal(1))
        .where(
            CH.c.account_id == connector_sync_state.c.account_id,
            CH.c.corpus == connector_sync_state.c.corpus,
            CH.c.expires_at > renew_before,
        )
        .exists()
    )
    rows = conn.execute(
        sa.select(
            connector_sync_state.c.account_id, connector_sync_state.c.corpus, connector_sync_state.c.cursor
        )
        .join(connector_accounts, connector_accounts.c.id == connector_sync_state.c.account_id)
        .where(
            connector_accounts.c.provider == provider,
            connector_accounts.c.status == AccountStatus.CONNECTED.value,
            connector_sync_state.c.cursor.is_not(None),
            ~lasting,
        )
        .order_by(connector_sync_state.c.account_id, connector_sync_state.c.corpus)
        .limit(limit)
    )
    return [CorpusToWatch(r.account_id, r.corpus, r.cursor) for r in rows]


def replaced_channels(conn: sa.Connection, *, renew_before: datetime, limit: int) -> list[Channel]:
    """Channels to stop: those about to expire whose corpus has a newer channel, and every channel
    of an account that is no longer connected."""
    newer = sa.alias(CH, "newer")
    superseded = (
        sa.select(sa.literal(1))
        .where(
            newer.c.account_id == CH.c.account_id,
            newer.c.corpus == CH.c.corpus,
            newer.c.expires_at > CH.c.expires_at,
        )
        .exists()
    )
    rows = conn.execute(
        sa.select(CH)
        .join(connector_accounts, connector_accounts.c.id == CH.c.account_id)
        .where(
            sa.or_(
                connector_accounts.c.status != AccountStatus.CONNECTED.value,
                sa.and_(CH.c.expires_at <= renew_before, superseded),
            )
        )
        .order_by(CH.c.expires_at)
        .limit(limit)
    )
    return [Channel(**r._mapping) for r in rows]


def notified_during_last_run(conn: sa.Connection, *, provider: str, kind: str) -> list[uuid.UUID]:
    """Connected accounts a notification reached after their latest job started, with no job open.

    A notification that arrives while the account's sync runs joins that running job, yet the
    change it announces may come after the sync read the feed; these accounts need one more run.
    """
    from monolyth_pipelines.store.jobs import OPEN_STATUSES
    from monolyth_pipelines.store.schema import connector_jobs

    jobs = connector_jobs
    last_started = (
        sa.select(sa.func.max(jobs.c.started_at))
        .where(jobs.c.account_id == CH.c.account_id, jobs.c.kind == kind)
        .scalar_subquery()
    )
    open_job = (
        sa.select(sa.literal(1))
        .where(jobs.c.account_id == CH.c.account_id, jobs.c.kind == kind, jobs.c.status.in_(OPEN_STATUSES))
        .exists()
    )
    rows = conn.execute(
        sa.select(CH.c.account_id)
        .distinct()
        .join(connector_accounts, connector_accounts.c.id == CH.c.account_id)
        .where(
            CH.c.provider == provider,
            connector_accounts.c.status == AccountStatus.CONNECTED.value,
            CH.c.last_message_at.is_not(None),
            CH.c.last_message_at > sa.func.coalesce(last_started, CH.c.created_at),
            ~open_job,
        )
    )
    return [r[0] for r in rows]
