"""An emulator with an app OAuth client, and the deployment configured to use both."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from monolyth_pipelines.accounts import connect
from monolyth_pipelines.emulator import GoogleEmulator
from tests import grants
from tests.accounts.domain_world import DomainWorld, domain_world
from tests.emulator_env import use_emulator
from tests.grants import REDIRECT_URI

__all__ = ["REDIRECT_URI", "OAuthWorld"]


@dataclass
class OAuthWorld:
    emulator: GoogleEmulator
    base_url: str
    engine: sa.Engine
    client_id: str
    client_secret: str
    owner: uuid.UUID

    def consent(self, provider: str = "google_drive", login_hint: str | None = None) -> dict[str, str]:
        """The browser's part: open the consent URL, get redirected back with a code."""
        got = grants.consent(provider, login_hint)
        assert got.state == got.request.state
        return {
            "code": got.code,
            "state": got.state or "",
            "scope": got.scope,
            "code_verifier": got.request.code_verifier,
            "expected_state": got.request.state,
        }

    def connect(self, provider: str = "google_drive", login_hint: str | None = None) -> connect.ConnectResult:
        return grants.exchange(
            self.engine, grants.consent(provider, login_hint), provider=provider, owner_id=self.owner
        )


@pytest.fixture
def oauth_world(
    engine: sa.Engine, fresh_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[OAuthWorld]:
    emulator = GoogleEmulator(seed=13)
    emulator.add_account("ada@example.com", drive_files=40, gmail_threads=5)
    emulator.add_account("bob@example.com", drive_files=10)
    with emulator.serve() as base_url:
        client = grants.use_deployment_client(emulator, monkeypatch)
        use_emulator(monkeypatch, base_url, fresh_db_url, tmp_path / "data")
        monkeypatch.setenv("MONOLYTH_FEATURE_FLAGS", "int_gmail")
        emulator.consent_as("ada@example.com")
        yield OAuthWorld(emulator, base_url, engine, client.client_id, client.client_secret, uuid.uuid4())


@pytest.fixture
def world(
    engine: sa.Engine, fresh_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[DomainWorld]:
    yield from domain_world(engine, fresh_db_url, tmp_path, monkeypatch, users=20)


@pytest.fixture
def big_world(
    engine: sa.Engine, fresh_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[DomainWorld]:
    # Two files a user: the test is about 250 first syncs running, not about their size.
    yield from domain_world(engine, fresh_db_url, tmp_path, monkeypatch, users=250, drive_files=2)
