"""ActivityLog events: the names and payload keys of docs/ACTIVITY_EVENTS.md, enforced on write."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
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


def _checked(event: Event | str, payload: dict[str, Any]) -> tuple[Event, dict[str, Any]]:
    """The event and its payload with ``account_id`` as text, or ``InvalidRecordError``."""
    try:
        event = Event(event)
    except ValueError:
        raise InvalidRecordError("event", f"unknown event {event!r}") from None
    keys = set(payload)
    if keys != PAYLOAD_KEYS[event]:
        missing = sorted(PAYLOAD_KEYS[event] - keys)
        extra = sorted(keys - PAYLOAD_KEYS[event])
        raise InvalidRecordError("payload", f"{event.value} needs keys missing={missing} unexpected={extra}")
    return event, {**payload, "account_id": str(uuid.UUID(str(payload["account_id"])))}


def _row(event: Event, payload: dict[str, Any], owner_id: uuid.UUID | None, at: datetime) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "event": event.value,
        "owner_id": owner_id,
        "account_id": uuid.UUID(payload["account_id"]),
        "provider": payload["provider"],
        "run_id": payload.get("run_id"),
        "payload": payload,
        "created_at": at,
    }


def log_event(conn: sa.Connection, event: Event | str, payload: dict[str, Any]) -> uuid.UUID:
    """Append one event. ``payload`` must carry exactly the event's keys."""
    event, payload = _checked(event, payload)
    owner_id = conn.execute(
        sa.select(connector_accounts.c.owner_id).where(
            connector_accounts.c.id == uuid.UUID(payload["account_id"])
        )
    ).scalar_one_or_none()
    row = _row(event, payload, owner_id, utcnow())
    conn.execute(activity_log.insert().values(**row))
    return row["id"]


def log_events(
    conn: sa.Connection,
    event: Event | str,
    owned_payloads: Sequence[tuple[uuid.UUID | None, dict[str, Any]]],
    *,
    at: datetime | None = None,
) -> None:
    """Append many events of one kind in one statement; the caller knows each account's owner
    (``(owner_id, payload)``), so nothing is read per event. Same key check as ``log_event``."""
    if not owned_payloads:
        return
    at = at or utcnow()
    rows = []
    for owner_id, payload in owned_payloads:
        checked, payload = _checked(event, payload)
        rows.append(_row(checked, payload, owner_id, at))
    conn.execute(activity_log.insert(), rows)


def events_for(
    conn: sa.Connection, *, account_id: uuid.UUID | None = None, run_id: str | None = None
) -> list[dict[str, Any]]:
    query = sa.select(activity_log).order_by(activity_log.c.created_at, activity_log.c.id)
    if account_id is not None:
        query = query.where(activity_log.c.account_id == account_id)
    if run_id is not None:
        query = query.where(activity_log.c.run_id == run_id)
    return [dict(row._mapping) for row in conn.execute(query)]
