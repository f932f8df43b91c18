"""A Workspace domain on the emulator served over HTTP, and the CLI commands its tests run."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from monolyth_pipelines.cli import main
from monolyth_pipelines.emulator import GoogleEmulator
from monolyth_pipelines.google.directory import DIRECTORY_USER_READONLY
from monolyth_pipelines.google.oauth_flow import DRIVE_READONLY
from monolyth_pipelines.store import accounts
from tests.emulator_env import use_emulator

DOMAIN = "acme.test"
ADMIN = f"admin@{DOMAIN}"


@dataclass
class DomainWorld:
    emulator: GoogleEmulator
    engine: sa.Engine
    owner: uuid.UUID
    key: dict
    key_path: Path

    def connect(self, *extra: str) -> int:
        return main(
            [
                "accounts",
                "connect-domain",
                "--provider",
                "google_drive",
                "--owner",
                str(self.owner),
                "--service-account-file",
                str(self.key_path),
                "--admin-email",
                ADMIN,
                *extra,
            ]
        )

    def sync(self) -> int:
        return main(["accounts", "sync-domain", "--owner", str(self.owner)])

    def by_email(self) -> dict[str, accounts.Account]:
        with self.engine.connect() as conn:
            return {a.external_email: a for a in accounts.list_accounts(conn)}


def domain_world(
    engine: sa.Engine,
    fresh_db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    users: int,
    drive_files: int = 3,
) -> Iterator[DomainWorld]:
    emulator = GoogleEmulator(seed=24)
    # users - 1 plus the admin, who is a user of the domain too.
    emulator.add_domain(DOMAIN, users=users - 1, drive_files=drive_files)
    with emulator.serve() as base_url:
        use_emulator(monkeypatch, base_url, fresh_db_url, tmp_path / "data")
        key = emulator.service_account_key(
            delegate_to=DOMAIN, scopes=[DRIVE_READONLY, DIRECTORY_USER_READONLY]
        )
        key_path = tmp_path / "key.json"
        key_path.write_text(json.dumps(key))
        yield DomainWorld(emulator, engine, uuid.uuid4(), key, key_path)
