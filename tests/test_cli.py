"""The console script as a person (or the app team's acceptance checks) drives it."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from monolyth_pipelines.cli import main
from monolyth_pipelines.emulator import GoogleEmulator
from monolyth_pipelines.store import events, jobs

UUID_RE = re.compile(r"^[0-9a-f-]{36}$")


@pytest.fixture
def cli_env(
    engine: sa.Engine, fresh_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[GoogleEmulator, str]]:
    emulator = GoogleEmulator(seed=5)
    emulator.add_account("cli@example.com", drive_files=300)
    with emulator.serve() as base_url:
        monkeypatch.setenv("MONOLYTH_DATABASE_URL", fresh_db_url)
        monkeypatch.setenv("MONOLYTH_DATA_DIR", str(tmp_path / "data"))
        monkeypatch.delenv("DAGSTER_HOME", raising=False)
        monkeypatch.delenv("MONOLYTH_FEATURE_FLAGS", raising=False)
        monkeypatch.setenv("MONOLYTH_GOOGLE_API_ENDPOINT", base_url)
        monkeypatch.setenv("MONOLYTH_GOOGLE_TOKEN_URI", f"{base_url}/token")
        monkeypatch.setenv("MONOLYTH_RETRY_BASE_SECONDS", "0.001")
        monkeypatch.setenv("MONOLYTH_STEP_RETRY_WAIT_SECONDS", "0")
        yield emulator, base_url


def _token_file(tmp_path: Path, emulator: GoogleEmulator, base_url: str) -> Path:
    path = tmp_path / "authorized_user.json"
    info = emulator.account("cli@example.com").authorized_user_info(token_uri=f"{base_url}/token")
    path.write_text(json.dumps(info))
    return path


def _add_drive_account(token_file: Path, capsys: pytest.CaptureFixture[str]) -> str:
    owner = str(uuid.uuid4())
    assert (
        main(
            [
                "accounts",
                "add",
                "--provider",
                "google_drive",
                "--owner",
                owner,
                "--token-file",
                str(token_file),
            ]
        )
        == 0
    )
    return capsys.readouterr().out.strip()


def test_accounts_add_list_sync_disconnect(
    cli_env: tuple[GoogleEmulator, str], engine: sa.Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    emulator, base_url = cli_env
    token_file = _token_file(tmp_path, emulator, base_url)
    account_id = _add_drive_account(token_file, capsys)
    assert UUID_RE.match(account_id)

    assert main(["accounts", "list"]) == 0
    listing = capsys.readouterr().out
    assert account_id in listing and "connected" in listing
    assert json.loads(token_file.read_text())["refresh_token"] not in listing

    assert main(["sync", "google_drive", "--account", account_id]) == 0
    out = capsys.readouterr().out
    assert "completed" in out
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["mode"] == "full" and summary["inserted"] == summary["live_items"] > 0

    assert main(["accounts", "disconnect", account_id]) == 0
    assert main(["accounts", "disconnect", account_id]) == 0
    assert "already disconnected" in capsys.readouterr().out
    with engine.connect() as conn:
        logged = [e["event"] for e in events.events_for(conn, account_id=uuid.UUID(account_id))]
        connected = events.events_for(conn, account_id=uuid.UUID(account_id))[0]["payload"]
    assert logged == [
        "connector_account_connected",
        "connector_sync_started",
        "connector_sync_completed",
        "connector_account_disconnected",
    ]
    assert connected["scopes"] and connected["provider"] == "google_drive"

    # A disconnected account is not synced: the job says why and the command fails.
    assert main(["sync", "google_drive", "--account", account_id]) == 1
    assert "disconnected" in capsys.readouterr().out


def test_sync_exits_non_zero_when_the_grant_was_revoked(
    cli_env: tuple[GoogleEmulator, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    emulator, base_url = cli_env
    token_file = _token_file(tmp_path, emulator, base_url)
    account_id = _add_drive_account(token_file, capsys)
    emulator.revoke(emulator.account("cli@example.com"))
    assert main(["sync", "google_drive", "--account", account_id]) == 1
    out = capsys.readouterr().out
    assert "failed" in out and "auth_revoked" in out
    assert json.loads(token_file.read_text())["refresh_token"] not in out


def test_sync_request_coalesces_two_clicks(
    cli_env: tuple[GoogleEmulator, str], engine: sa.Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    emulator, base_url = cli_env
    token_file = _token_file(tmp_path, emulator, base_url)
    account_id = _add_drive_account(token_file, capsys)
    assert main(["sync-request", "google_drive", "--account", account_id]) == 0
    first = capsys.readouterr().out.strip()
    assert main(["sync-request", "google_drive", "--account", account_id]) == 0
    second = capsys.readouterr().out.strip()
    assert UUID_RE.match(first) and second.startswith(first) and "already pending" in second
    with engine.connect() as conn:
        assert [j.status for j in jobs.jobs_for_account(conn, uuid.UUID(account_id))] == ["pending"]


@pytest.mark.sqlite_only
def test_bad_input_gets_a_clear_error_and_no_secret_echo(
    cli_env: tuple[GoogleEmulator, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"token": "ya29.secret-access-token", "client_id": "x"}))
    assert (
        main(
            [
                "accounts",
                "add",
                "--provider",
                "google_drive",
                "--owner",
                str(uuid.uuid4()),
                "--token-file",
                str(bad),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "refresh_token" in err and "client_secret" in err
    assert "ya29.secret-access-token" not in err
    assert (
        main(
            ["accounts", "add", "--provider", "gmail", "--owner", str(uuid.uuid4()), "--token-file", str(bad)]
        )
        == 2
    )
    assert "int_gmail" in capsys.readouterr().err
