"""ActivityLog events: the names and payload keys of docs/ACTIVITY_EVENTS.md, enforced on write."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from monolyth_pipelines.store.errors import InvalidRecordError
from monolyth_pipelines.store.schema import activity_log, connector_accounts
from monolyth_pipelines.store.timeutil import utcnow


class Event(StrEnum):
    ACCOUNT_CONNECTED = "connector_account_connected"
    ACCOUNT_DISCONNECTED = "connector_account_disconnected"
    SYNC_STARTED = "connector_sync_started"
    SYNC_COMPLETED = "connector_sync_completed"
    SYNC_FAILED = "connector_sync_failed"


# Exactly the spec's keys: Insights and Playbooks parse these payloads.
PAYLOAD_KEYS: dict[Event, frozenset[str]] = {
    Event.ACCOUNT_CONNECTED: frozenset({"provider", "account_id", "scopes"}),
    Event.ACCOUNT_DISCONNECTED: frozenset({"provider", "account_id"}),
    Event.SYNC_STARTED: frozenset({"provider", "account_id", "run_id"}),
    Event.SYNC_COMPLETED: frozenset({"provider", "account_id", "run_id", "file_count", "duration_ms"}),
    Event.SYNC_FAILED: frozenset({"provider", "account_id", "run_id", "error_code", "error_msg"}),
}


def log_event(conn: sa.Connection, event: Event | str, payload: dict[str, Any]) -> uuid.UUID:
    """Append one event. ``payload`` must carry exactly the event's keys."""
    try:
        event = Event(event)
    except ValueError:
        raise InvalidRecordError("event", f"unknown event {event!r}") from None
    keys = set(payload)
    if keys != PAYLOAD_KEYS[event]:
        missing = sorted(PAYLOAD_KEYS[event] - keys)
        extra = sorted(keys - PAYLOAD_KEYS[event])
        raise InvalidRecordError("payload", f"{event.value} needs keys missing={missing} unexpected={extra}")
    account_id = uuid.UUID(str(payload["account_id"]))
    payload = {**payload, "account_id": str(account_id)}
    owner_id = conn.execute(
        sa.select(connector_accounts.c.owner_id).where(connector_accounts.c.id == account_id)
    ).scalar_one_or_none()
    event_id = uuid.uuid4()
    conn.execute(
        activity_log.insert().values(
            id=event_id,
            event=event.value,
            owner_id=owner_id,
            account_id=account_id,
            provider=payload["provider"],
            run_id=payload.get("run_id"),
            payload=payload,
            created_at=utcnow(),
        )
    )
    return event_id


def events_for(
    conn: sa.Connection, *, account_id: uuid.UUID | None = None, run_id: str | None = None
) -> list[dict[str, Any]]:
    query = sa.select(activity_log).order_by(activity_log.c.created_at, activity_log.c.id)
    if account_id is not None:
        query = query.where(activity_log.c.account_id == account_id)
    if run_id is not None:
        query = query.where(activity_log.c.run_id == run_id)
    return [dict(row._mapping) for row in conn.execute(query)]
