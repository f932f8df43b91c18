from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import dagster as dg
import sqlalchemy as sa

from monolyth_pipelines.defs import automation
from monolyth_pipelines.defs.resources import DatabaseResource
from monolyth_pipelines.store import accounts, events, jobs
from monolyth_pipelines.store.events import Event
from monolyth_pipelines.store.schema import AccountStatus, JobStatus, connector_jobs
from monolyth_pipelines.store.timeutil import utcnow


def connect_account(
    engine: sa.Engine,
    provider: str = "google_drive",
    *,
    status: str = AccountStatus.CONNECTED,
    token_json: dict | None = None,
) -> uuid.UUID:
    with engine.begin() as conn:
        account_id = accounts.create_account(
            conn,
            owner_id=uuid.uuid4(),
            provider=provider,
            token_json=token_json or {"token": "x"},
            status=status,
        )
        if status == AccountStatus.CONNECTED:
            events.log_event(
                conn, Event.ACCOUNT_CONNECTED, {"provider": provider, "account_id": account_id, "scopes": []}
            )
    return account_id


def set_account_status(engine: sa.Engine, account_id: uuid.UUID, status: str) -> None:
    with engine.begin() as conn:
        accounts.set_status(conn, account_id, status)


def sync_now(engine: sa.Engine, account_id: uuid.UUID, kind: str = "drive_import") -> uuid.UUID | None:
    """What the app does on a click: INSERT ... ON CONFLICT DO NOTHING (docs/sync-now.md)."""
    sql = (
        "INSERT INTO connector_jobs (account_id, kind, status) VALUES (:a, :k, 'pending') "
        "ON CONFLICT DO NOTHING RETURNING id"
    )
    with engine.begin() as conn:
        # The app binds the uuid natively; SQLite stores it as 32 hex characters.
        account = account_id if conn.dialect.name == "postgresql" else account_id.hex
        row = conn.execute(sa.text(sql), {"a": account, "k": kind}).one_or_none()
    if row is None:
        return None
    return row[0] if isinstance(row[0], uuid.UUID) else uuid.UUID(str(row[0]))


def all_jobs(engine: sa.Engine, account_id: uuid.UUID) -> list[jobs.Job]:
    with engine.connect() as conn:
        return jobs.jobs_for_account(conn, account_id)


def get_job(engine: sa.Engine, job_id: uuid.UUID) -> jobs.Job:
    with engine.connect() as conn:
        job = jobs.get_job(conn, job_id)
    assert job is not None
    return job


def events_of(engine: sa.Engine, account_id: uuid.UUID, event: str | None = None) -> list[dict]:
    with engine.connect() as conn:
        found = events.events_for(conn, account_id=account_id)
    return [e for e in found if event is None or e["event"] == event]


def add_finished_job(
    engine: sa.Engine,
    account_id: uuid.UUID,
    *,
    created_at: datetime,
    status: str = JobStatus.COMPLETED,
    kind: str = "drive_import",
) -> uuid.UUID:
    job_id = uuid.uuid4()
    with engine.begin() as conn:
        conn.execute(
            connector_jobs.insert().values(
                id=job_id,
                account_id=account_id,
                kind=kind,
                status=status,
                attempts=1,
                created_at=created_at,
                updated_at=created_at,
                started_at=created_at,
                finished_at=created_at + timedelta(minutes=1),
            )
        )
    return job_id


def set_job(engine: sa.Engine, job_id: uuid.UUID, **values: object) -> None:
    with engine.begin() as conn:
        conn.execute(connector_jobs.update().where(connector_jobs.c.id == job_id).values(**values))


def tick(sensor: dg.SensorDefinition, instance: dg.DagsterInstance, db: DatabaseResource) -> Any:
    """One evaluation of a sensor, as the daemon would run it (minus applying its results)."""
    with dg.build_sensor_context(instance=instance, resources={"db": db}) as context:
        return sensor(context)


def sensor_named(auto: automation.AutomationDefs, name: str) -> dg.SensorDefinition:
    return next(s for s in auto.sensors if s.name == name)


def now() -> datetime:
    return utcnow()
