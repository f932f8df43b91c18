from __future__ import annotations

from collections.abc import Callable, Iterator

import dagster as dg
import pytest
import sqlalchemy as sa

from monolyth_pipelines.emulator import GoogleEmulator
from tests import grants
from tests.connectors.harness import DriveHarness, connect_account

DRIVE_FILES = 2500


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONOLYTH_RETRY_BASE_SECONDS", "0.001")
    monkeypatch.setenv("MONOLYTH_RETRY_CAP_SECONDS", "0.01")
    monkeypatch.setenv("MONOLYTH_STEP_RETRY_WAIT_SECONDS", "0")


@pytest.fixture
def emulator() -> GoogleEmulator:
    return GoogleEmulator(seed=11)


@pytest.fixture
def served(emulator: GoogleEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    # Accounts connect through the deployment's OAuth client, as in production.
    with grants.serve_as_deployment(emulator, monkeypatch) as base_url:
        yield base_url


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as inst:
        yield inst


@pytest.fixture
def make_drive(
    emulator: GoogleEmulator,
    served: str,
    engine: sa.Engine,
    fresh_db_url: str,
    instance: dg.DagsterInstance,
    fast_retries: None,
) -> Callable[[int], DriveHarness]:
    def make(files: int, *, grant: str = grants.CONSENT) -> DriveHarness:
        account = emulator.add_account(f"user{len(emulator.accounts)}@example.com", drive_files=files)
        account_id = connect_account(engine, account, served, grant=grant)
        return DriveHarness(emulator, account, served, engine, fresh_db_url, instance, account_id)

    return make


@pytest.fixture
def drive(make_drive: Callable[[int], DriveHarness]) -> DriveHarness:
    """An account whose Drive spans several 1000-file pages."""
    return make_drive(DRIVE_FILES)
