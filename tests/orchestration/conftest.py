"""Fixtures for the orchestration tests: a real Dagster instance beside a real app database.

The Dagster instance follows the app database's backend: the SQLite half of each test uses
Dagster's SQLite storage, the Postgres half uses dagster-postgres in a schema of its own (created
and dropped here), so every must-show runs on both storages without a 2x2 matrix.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml

from monolyth_pipelines.defs import automation
from monolyth_pipelines.defs.resources import DatabaseResource
from monolyth_pipelines.emulator import EmulatedAccount, GoogleEmulator
from monolyth_pipelines.store.engine import make_engine
from tests import grants
from tests.conftest import _with_search_path, postgres_admin_url

if TYPE_CHECKING:
    from tests.orchestration.deployment import Deployment

REPO = Path(__file__).resolve().parents[2]
# dagster-postgres sends `NOTIFY run_events, :id` with every run event; psycopg 3 binds that
# server-side and Postgres rejects it, so Dagster's own storage runs on psycopg2 (its dependency),
# as deploy/dagster.yaml configures it. The app tables stay on psycopg 3.
DAGSTER_PG_DRIVER = "postgresql+psycopg2"


def project_concurrency() -> dict[str, Any]:
    """The run-queue limits of the project's dagster.yaml, so the tests use the shipped ones."""
    return yaml.safe_load((REPO / "dagster.yaml").read_text())["concurrency"]


def project_pool_limits() -> dict[str, int]:
    """The pool limits `make dev` sets on the local instance (`dagster instance concurrency set`)."""
    found = re.findall(r"dagster instance concurrency set (\S+) (\d+)", (REPO / "Makefile").read_text())
    return {pool: int(limit) for pool, limit in found}


def set_project_pool_limits(instance: dg.DagsterInstance) -> None:
    """What `dagster instance concurrency set` does (dagster/_cli/instance.py), for each pool."""
    for pool, limit in project_pool_limits().items():
        instance.event_log_storage.set_concurrency_slots(pool, limit)


@pytest.fixture
def backend(fresh_db_url: str) -> str:
    return "sqlite" if fresh_db_url.startswith("sqlite") else "postgres"


@pytest.fixture
def dagster_pg_url(backend: str) -> Iterator[str | None]:
    """A Postgres URL whose search_path is a fresh schema for Dagster's own tables."""
    if backend != "postgres":
        yield None
        return
    admin_url = postgres_admin_url()
    assert admin_url
    schema = f"dagster_{uuid.uuid4().hex[:12]}"
    admin = make_engine(admin_url, poolclass=sa.pool.NullPool)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        url = sa.make_url(_with_search_path(admin_url, schema)).set(drivername=DAGSTER_PG_DRIVER)
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


@pytest.fixture
def instance(backend: str, dagster_pg_url: str | None) -> Iterator[dg.DagsterInstance]:
    overrides: dict[str, Any] = {"concurrency": project_concurrency()}
    if dagster_pg_url:
        overrides["storage"] = {"postgres": {"postgres_url": dagster_pg_url}}
    with dg.instance_for_test(overrides=overrides) as inst:
        yield inst


@pytest.fixture
def db(fresh_db_url: str, engine: sa.Engine) -> DatabaseResource:
    """The app database resource the sensors get (``engine`` makes sure it is migrated)."""
    return DatabaseResource(url=fresh_db_url)


@pytest.fixture
def automations() -> list[automation.ProviderAutomation]:
    return automation.enabled_automations()


@pytest.fixture
def auto(automations: list[automation.ProviderAutomation]) -> automation.AutomationDefs:
    return automation.build_automation(automations)


def apply_partition_requests(instance: dg.DagsterInstance, result: dg.SensorResult) -> None:
    """What the sensor daemon does with a SensorResult's partition requests (not done on direct calls)."""
    for req in result.dynamic_partitions_requests or []:
        assert isinstance(req, dg.AddDynamicPartitionsRequest), "partition keys are never deleted"
        instance.add_dynamic_partitions(req.partitions_def_name, list(req.partition_keys))


@dataclass
class Google:
    emu: GoogleEmulator
    base_url: str

    def account(self, email: str, files: int) -> EmulatedAccount:
        return self.emu.add_account(email, drive_files=files)

    def connect(
        self, engine: sa.Engine, account: EmulatedAccount, provider: str = "google_drive"
    ) -> uuid.UUID:
        """Through the consent flow of the deployment's OAuth client, as production connects."""
        return grants.connect(engine, self.emu, account.email, provider)


@pytest.fixture
def google(monkeypatch: pytest.MonkeyPatch) -> Iterator[Google]:
    emu = GoogleEmulator(seed=11)
    # Accounts connect through the deployment's OAuth client, as in production.
    with grants.serve_as_deployment(emu, monkeypatch) as base_url:
        yield Google(emu, base_url)


@pytest.fixture
def app_env(monkeypatch: pytest.MonkeyPatch, fresh_db_url: str, engine: sa.Engine) -> sa.Engine:
    """The code location's DatabaseResource() reads MONOLYTH_DATABASE_URL, in sensors and in run workers."""
    monkeypatch.setenv("MONOLYTH_DATABASE_URL", fresh_db_url)
    monkeypatch.setenv("MONOLYTH_RETRY_BASE_SECONDS", "0.01")
    monkeypatch.setenv("MONOLYTH_RETRY_CAP_SECONDS", "0.05")
    monkeypatch.setenv("MONOLYTH_STEP_RETRY_WAIT_SECONDS", "0")
    return engine


@pytest.fixture
def inline(dagster_pg_url: str | None, app_env: sa.Engine) -> Iterator[Deployment]:
    from tests.orchestration.deployment import deployment  # it imports this module

    with deployment(dagster_pg_url, mode="inline") as dep:
        yield dep


@pytest.fixture
def workers(dagster_pg_url: str | None, app_env: sa.Engine) -> Iterator[Deployment]:
    from tests.orchestration.deployment import deployment

    with deployment(dagster_pg_url, mode="subprocess") as dep:
        yield dep
