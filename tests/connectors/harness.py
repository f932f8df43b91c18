"""A Drive account on the emulator, a migrated database and a Dagster instance, wired together."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, ClassVar

import dagster as dg
import sqlalchemy as sa

from monolyth_pipelines.defs.local_run import materialize_account
from monolyth_pipelines.domain.timestamps import parse_rfc3339
from monolyth_pipelines.emulator import EmulatedAccount, GoogleEmulator
from monolyth_pipelines.settings import DriveLimits
from monolyth_pipelines.store import jobs
from monolyth_pipelines.store.schema import connector_files, connector_sync_state
from tests import grants


@dataclass
class AccountHarness:
    """One emulated account connected in the app database, synced through Dagster."""

    emulator: GoogleEmulator
    account: EmulatedAccount
    base_url: str
    engine: sa.Engine
    db_url: str
    instance: dg.DagsterInstance
    account_id: uuid.UUID

    provider: ClassVar[str]

    def materialize(
        self, run_config: dict[str, Any] | None = None
    ) -> tuple[dg.ExecuteInProcessResult, jobs.Job]:
        result = materialize_account(
            self.provider,
            self.account_id,
            instance=self.instance,
            database_url=self.db_url,
            run_config=run_config,
        )
        with self.engine.connect() as conn:
            job = jobs.jobs_for_account(conn, self.account_id)[-1]
        return result, job

    def rows(self, *, live_only: bool = True) -> dict[str, dict[str, Any]]:
        query = sa.select(connector_files).where(connector_files.c.account_id == self.account_id)
        if live_only:
            query = query.where(connector_files.c.deleted_at.is_(None))
        with self.engine.connect() as conn:
            return {row.external_id: dict(row._mapping) for row in conn.execute(query)}

    def tombstones(self) -> dict[str, str]:
        return {k: v["deleted_reason"] for k, v in self.rows(live_only=False).items() if v["deleted_at"]}

    def set_sync_state(self, **values: object) -> None:
        """Overwrite the account's stored sync state, e.g. to make Google reject its cursor."""
        with self.engine.begin() as conn:
            conn.execute(
                connector_sync_state.update()
                .where(connector_sync_state.c.account_id == self.account_id)
                .values(**values)
            )

    def api_requests(self) -> int:
        return self.emulator.stats(self.account)["totals"]["http_requests"]


@dataclass
class DriveHarness(AccountHarness):
    provider: ClassVar[str] = "google_drive"

    @property
    def drive(self) -> Any:
        return self.emulator.drive(self.account)

    def sync(self, run_config: dict[str, Any] | None = None) -> tuple[dg.ExecuteInProcessResult, jobs.Job]:
        return self.materialize(run_config)


def connect_account(
    engine: sa.Engine,
    account: EmulatedAccount,
    base_url: str | None = None,
    *,
    provider: str = "google_drive",
    grant: str = grants.CONSENT,
) -> uuid.UUID:
    """What ``accounts connect`` does, with the deployment's client (``grant``: see tests/grants.py).
    ``base_url`` is the served emulator's (kept for callers that pass it; the emulator knows it)."""
    return grants.connect(engine, account._emulator, account.email, provider, grant=grant)


def expected_rows(drive_files: list[dict[str, Any]], limits: DriveLimits) -> dict[str, dict[str, Any]]:
    """What connector_files must hold for these emulator files under ``limits``: computed from the
    emulator's full File resources independently of the connector's normalisation code."""
    out = {}
    for f in drive_files:
        if f.get("trashed") or f["mimeType"] not in limits.supported_mime_types:
            continue
        if f.get("driveId") and not limits.include_shared_drives:
            continue
        size = int(f["size"]) if "size" in f else None
        if size is not None and size > limits.max_file_size_bytes:
            continue
        out[f["id"]] = {
            "title": f["name"],
            "mime": f["mimeType"],
            "size": size,
            "modified_at": parse_rfc3339(f["modifiedTime"]),
            "url": f.get("webViewLink"),
            "spec": {
                "id": f["id"],
                "name": f["name"],
                "mimeType": f["mimeType"],
                "modifiedTime": f["modifiedTime"],
                "owners": [{"emailAddress": o["emailAddress"]} for o in f.get("owners", [])],
                "webViewLink": f.get("webViewLink"),
            },
        }
    return out


def comparable(rows: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    spec_keys = ("id", "name", "mimeType", "modifiedTime", "owners", "webViewLink")
    return {
        k: {
            "title": r["title"],
            "mime": r["mime"],
            "size": r["size"],
            "modified_at": r["modified_at"],
            "url": r["url"],
            "spec": {key: r["meta_json"].get(key) for key in spec_keys},
        }
        for k, r in rows.items()
    }
