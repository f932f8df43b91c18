"""``accounts disconnect --purge`` purges everything about the account, Insights included, and
cannot deadlock with a page of its run still in flight (Postgres)."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from monolyth_pipelines.accounts import disconnect as disconnect_module
from monolyth_pipelines.accounts.disconnect import disconnect
from monolyth_pipelines.defs.local_run import local_instance, materialize_account
from monolyth_pipelines.domain.records import Tombstone, TombstoneReason
from monolyth_pipelines.insights.build import build_day
from monolyth_pipelines.settings import DriveLimits
from monolyth_pipelines.store import jobs
from monolyth_pipelines.store.errors import JobLostError
from monolyth_pipelines.store.schema import (
    connector_accounts,
    connector_files,
    insights_account_usage_daily,
    insights_document_activity_daily,
    insights_sync_runs_daily,
)
from monolyth_pipelines.sync.pages import PageWrite
from monolyth_pipelines.sync.run import RunIdentity, SyncRun
from tests.accounts.conftest import OAuthWorld


def _count(engine: sa.Engine, table: sa.Table, account_id: uuid.UUID) -> int:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.count()).select_from(table).where(table.c.account_id == account_id)
        ).scalar_one()


def _completed_runs(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(insights_sync_runs_daily.c.runs_completed), 0))
        ).scalar_one()


def _account_row(engine: sa.Engine, account_id: uuid.UUID) -> tuple[Any, str]:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(connector_accounts.c.token_json, connector_accounts.c.status).where(
                connector_accounts.c.id == account_id
            )
        ).one()


def test_a_purge_deletes_the_accounts_insights_rows_and_rebuilds_the_days_totals(
    oauth_world: OAuthWorld,
) -> None:
    engine, instance = oauth_world.engine, local_instance()
    ada = oauth_world.connect().account_id
    oauth_world.emulator.consent_as("bob@example.com")
    bob = oauth_world.connect().account_id
    for account_id in (ada, bob):
        assert materialize_account("google_drive", account_id, instance=instance).success
    today = datetime.now(UTC).date()
    build_day(engine, today)
    assert _count(engine, insights_account_usage_daily, ada) == 1
    assert _count(engine, insights_document_activity_daily, ada) > 0  # titles of ada's documents
    assert _completed_runs(engine) == 2

    disconnect(engine, ada, purge=True)

    assert _count(engine, insights_account_usage_daily, ada) == 0
    assert _count(engine, insights_document_activity_daily, ada) == 0
    assert _completed_runs(engine) == 1, "the day's totals no longer count the purged account's run"
    assert _count(engine, insights_account_usage_daily, bob) == 1
    # A later rebuild of the day does not bring the purged account back as a row of zeros.
    build_day(engine, today)
    assert _count(engine, insights_account_usage_daily, ada) == 0
    assert _count(engine, insights_account_usage_daily, bob) == 1
    assert _completed_runs(engine) == 1


def test_a_purge_that_fails_leaves_the_account_disconnected_and_can_be_run_again(
    oauth_world: OAuthWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = oauth_world.engine
    ada = oauth_world.connect().account_id
    assert materialize_account("google_drive", ada, instance=local_instance()).success

    def broken(*_args: object) -> Any:
        raise RuntimeError("the purge was interrupted")

    monkeypatch.setattr(disconnect_module, "purge_account_data", broken)
    with pytest.raises(RuntimeError):
        disconnect(engine, ada, purge=True)
    assert _account_row(engine, ada) == (None, "disconnected"), "not connected with a revoked grant"
    assert _count(engine, connector_files, ada) > 0
    monkeypatch.undo()
    disconnect(engine, ada, purge=True)
    assert _count(engine, connector_files, ada) == 0


class PageInFlight(SyncRun):
    """A run whose page has written its rows and holds their locks when it reaches its fence;
    it goes on once its job is closed (or after a few seconds)."""

    reached = threading.Event()

    def heartbeat(self, conn: sa.Connection) -> None:
        self.reached.set()
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            with self.engine.connect() as other:
                job = jobs.get_job(other, self.job_id)
            if job is not None and job.status != "running":
                break
            time.sleep(0.05)
        super().heartbeat(conn)


@pytest.mark.postgres_only
def test_disconnect_purge_with_a_page_in_flight_neither_deadlocks_nor_leaves_the_account_connected(
    oauth_world: OAuthWorld,
) -> None:
    engine = oauth_world.engine
    ada = oauth_world.connect().account_id
    assert materialize_account("google_drive", ada, instance=local_instance()).success
    stored = sorted(_ids(engine, ada))
    run = PageInFlight(
        engine, RunIdentity(ada, "google_drive", "drive_import", run_id="in-flight"), limits=DriveLimits()
    )
    run.start()
    outcome: dict[str, BaseException | None] = {}

    def page() -> None:
        try:
            run.commit_page(PageWrite(tombstones=[Tombstone(i, TombstoneReason.TRASHED) for i in stored]))
            outcome["page"] = None
        except BaseException as exc:
            outcome["page"] = exc

    def purge() -> None:
        try:
            disconnect(engine, ada, purge=True)
            outcome["purge"] = None
        except BaseException as exc:
            outcome["purge"] = exc

    writer = threading.Thread(target=page)
    writer.start()
    assert PageInFlight.reached.wait(10), "the page reached its fence holding its row locks"
    purger = threading.Thread(target=purge)
    purger.start()
    purger.join(30)
    writer.join(30)
    assert not purger.is_alive() and not writer.is_alive()

    assert outcome["purge"] is None, f"the purge failed: {outcome['purge']!r}"
    assert isinstance(outcome["page"], JobLostError), f"the page met {outcome['page']!r}"
    assert _account_row(engine, ada) == (None, "disconnected")
    assert _count(engine, connector_files, ada) == 0


def _ids(engine: sa.Engine, account_id: uuid.UUID) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(connector_files.c.external_id).where(connector_files.c.account_id == account_id)
            ).scalars()
        )
