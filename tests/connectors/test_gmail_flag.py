"""The int_gmail feature flag: without it nothing of Gmail exists, with it everything does."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from monolyth_pipelines.cli import main
from monolyth_pipelines.definitions import build_definitions
from monolyth_pipelines.emulator import GoogleEmulator
from monolyth_pipelines.store import accounts
from monolyth_pipelines.store.schema import connector_files
from tests.connectors import gmail_harness

gmail_env = gmail_harness.gmail_env


def _gmail_names(defs: dg.Definitions) -> dict[str, list[str]]:
    repo = defs.get_repository_def()
    found = {
        "assets": [k.to_user_string() for k in repo.assets_defs_by_key],
        "jobs": list(repo.job_names),
        "schedules": [s.name for s in repo.schedule_defs],
        "sensors": [s.name for s in repo.sensor_defs],
        "resources": list(repo.get_top_level_resources()),
        "partitions": [
            a.partitions_def.name
            for a in repo.assets_defs_by_key.values()
            if isinstance(a.partitions_def, dg.DynamicPartitionsDefinition) and a.partitions_def.name
        ],
    }
    return {kind: [n for n in names if "gmail" in n.lower()] for kind, names in found.items()}


def test_without_the_flag_no_gmail_object_exists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MONOLYTH_FEATURE_FLAGS", raising=False)
    defs = build_definitions()
    dg.Definitions.validate_loadable(defs)
    assert _gmail_names(defs) == {
        "assets": [],
        "jobs": [],
        "schedules": [],
        "sensors": [],
        "resources": [],
        "partitions": [],
    }
    monkeypatch.setenv("MONOLYTH_FEATURE_FLAGS", "some_other_flag")
    assert not any(_gmail_names(build_definitions()).values())


def test_with_the_flag_the_gmail_asset_job_and_schedule_appear(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONOLYTH_FEATURE_FLAGS", "other,int_gmail")
    defs = build_definitions()
    dg.Definitions.validate_loadable(defs)
    names = _gmail_names(defs)
    assert names["assets"] == ["gmail_messages"]
    assert names["jobs"] == ["gmail_batch_sync", "gmail_sync"]
    assert names["schedules"] == ["gmail_scheduled_sync"]
    assert names["partitions"] == ["gmail_accounts"]
    # The sensors and resources serve every provider; none is Gmail's own.
    repo = defs.get_repository_def()
    asset = repo.assets_defs_by_key[dg.AssetKey("gmail_messages")]
    assert {spec.name for spec in asset.check_specs} == {"sync_completeness"}
    assert {"db", "google"} <= set(asset.required_resource_keys)
    assert repo.get_job("gmail_sync").partitions_def.name == "gmail_accounts"
    # Drive is untouched by the flag.
    assert dg.AssetKey("google_drive_files") in repo.assets_defs_by_key


@pytest.fixture
def cli_db(
    engine: sa.Engine, fresh_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> sa.Engine:
    monkeypatch.setenv("MONOLYTH_DATABASE_URL", fresh_db_url)
    monkeypatch.setenv("MONOLYTH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    return engine


def _token_file(tmp_path: Path, emulator: GoogleEmulator, base_url: str, email: str) -> Path:
    path = tmp_path / "authorized_user.json"
    path.write_text(json.dumps(emulator.account(email).authorized_user_info(token_uri=f"{base_url}/token")))
    return path


def test_the_cli_refuses_gmail_without_the_flag_and_names_it(
    cli_db: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("MONOLYTH_FEATURE_FLAGS", raising=False)
    token_file = tmp_path / "token.json"
    token_file.write_text(json.dumps({"refresh_token": "r", "client_id": "c", "client_secret": "s"}))
    with cli_db.begin() as conn:
        existing = accounts.create_account(conn, owner_id=uuid.uuid4(), provider="gmail", token_json={})
    refused = [
        [
            "accounts",
            "add",
            "--provider",
            "gmail",
            "--owner",
            str(uuid.uuid4()),
            "--token-file",
            str(token_file),
        ],
        ["sync", "gmail", "--account", str(existing)],
        ["sync-request", "gmail", "--account", str(existing)],
        ["accounts", "disconnect", str(existing)],
    ]
    for argv in refused:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "int_gmail" in err and "MONOLYTH_FEATURE_FLAGS=int_gmail" in err, argv
    assert main(["accounts", "list"]) == 0
    assert str(existing) not in capsys.readouterr().out
    with cli_db.connect() as conn:
        assert len(accounts.list_accounts(conn, provider="gmail")) == 1  # nothing was added


def test_with_the_flag_the_cli_adds_and_syncs_a_gmail_account(
    cli_db: sa.Engine,
    emulator: GoogleEmulator,
    served: str,
    gmail_env: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emulator.add_account("cli-mail@example.com", gmail_threads=30)
    token_file = _token_file(tmp_path, emulator, served, "cli-mail@example.com")
    owner = str(uuid.uuid4())
    assert (
        main(["accounts", "add", "--provider", "gmail", "--owner", owner, "--token-file", str(token_file)])
        == 0
    )
    account_id = capsys.readouterr().out.strip()
    assert main(["accounts", "list", "--provider", "gmail"]) == 0
    assert account_id in capsys.readouterr().out

    assert main(["sync", "gmail", "--account", account_id]) == 0
    out = capsys.readouterr().out
    assert "completed" in out
    summary = json.loads(out.strip().splitlines()[-1])
    expected = gmail_harness.expected_rows(emulator.gmail("cli-mail@example.com"))
    assert summary["mode"] == "full" and summary["inserted"] == summary["live_items"] == len(expected) > 0
    with cli_db.connect() as conn:
        providers = conn.execute(sa.select(connector_files.c.provider).distinct()).scalars().all()
    assert providers == ["gmail"]

    assert main(["sync", "gmail", "--account", account_id]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["mode"] == "incremental" and summary["inserted"] == 0
