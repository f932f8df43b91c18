"""Tokens at rest: nothing readable in the database or Dagster's files; key rotation; key errors."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from monolyth_pipelines import settings
from monolyth_pipelines.cli import main
from monolyth_pipelines.defs.local_run import local_instance, materialize_account
from monolyth_pipelines.store import accounts, jobs
from monolyth_pipelines.store.engine import make_engine
from monolyth_pipelines.store.migrate import upgrade
from monolyth_pipelines.store.token_crypto import KEY_FILE_NAME, generate_key
from tests.accounts.conftest import OAuthWorld


def _tokens(world: OAuthWorld, account_id: uuid.UUID) -> dict:
    with world.engine.connect() as conn:
        token = accounts.get_token_json(conn, account_id)
    assert token
    return token


def _sync_status(account_id: uuid.UUID, world: OAuthWorld) -> jobs.Job:
    result = materialize_account("google_drive", account_id, instance=local_instance())
    with world.engine.connect() as conn:
        return next(
            j for j in jobs.jobs_for_account(conn, account_id) if j.run_id == result.dagster_run.run_id
        )


def test_no_table_and_no_dagster_file_holds_a_token_or_the_client_secret(
    oauth_world: OAuthWorld, fresh_db_url: str
) -> None:
    connected = oauth_world.connect()
    first = _tokens(oauth_world, connected.account_id)
    assert _sync_status(connected.account_id, oauth_world).status == "completed"
    oauth_world.emulator.expire_access_tokens("ada@example.com")
    assert _sync_status(connected.account_id, oauth_world).status == "completed"
    refreshed = _tokens(oauth_world, connected.account_id)
    assert refreshed["token"] != first["token"]  # the refresh was written back (encrypted)
    secrets = {first["token"], first["refresh_token"], refreshed["token"], oauth_world.client_secret}

    with oauth_world.engine.connect() as conn:
        for table in sa.inspect(conn).get_table_names():
            for row in conn.execute(sa.text(f'SELECT * FROM "{table}"')):
                text = json.dumps([str(v) for v in row], default=str)
                assert not [s for s in secrets if s in text], f"a secret is readable in {table}"
    scanned = [p for p in (settings.data_dir() / "dagster").rglob("*") if p.is_file()]
    if fresh_db_url.startswith("sqlite"):
        scanned.append(Path(sa.make_url(fresh_db_url).database or ""))
    assert scanned
    for path in scanned:
        data = path.read_bytes()
        assert not [s for s in secrets if s.encode() in data], f"a secret is readable in {path}"


def test_rotating_keys_reencrypts_every_row_and_the_old_key_can_go(
    oauth_world: OAuthWorld, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ada = oauth_world.connect()
    oauth_world.emulator.consent_as("bob@example.com")
    bob = oauth_world.connect()
    before = {a: _tokens(oauth_world, a) for a in (ada.account_id, bob.account_id)}
    old_key, new_key = settings.token_keys()[0], generate_key()

    monkeypatch.setenv("MONOLYTH_TOKEN_KEYS", f"{new_key},{old_key}")
    assert main(["accounts", "rotate-keys", "--batch-size", "1"]) == 0
    assert "re-encrypted 2 account(s)" in capsys.readouterr().out
    # Resumable: a second pass finds nothing left to do.
    assert main(["accounts", "rotate-keys"]) == 0
    assert "re-encrypted 0 account(s) with the first key; 2 already were" in capsys.readouterr().out

    monkeypatch.setenv("MONOLYTH_TOKEN_KEYS", new_key)
    assert {a: _tokens(oauth_world, a) for a in before} == before
    assert _sync_status(ada.account_id, oauth_world).status == "completed"

    # Only the dropped key: one clear line, no traceback, and a sync fails with a clear code.
    monkeypatch.setenv("MONOLYTH_TOKEN_KEYS", old_key)
    capsys.readouterr()
    assert main(["accounts", "rotate-keys"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert "MONOLYTH_TOKEN_KEYS" in err
    failed = _sync_status(bob.account_id, oauth_world)
    assert failed.status == "failed" and (failed.last_error or "").startswith("token_key_unavailable")


def test_a_missing_key_is_one_clear_line(
    oauth_world: OAuthWorld,
    fresh_db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    oauth_world.connect()
    monkeypatch.delenv("MONOLYTH_TOKEN_KEYS")
    capsys.readouterr()
    assert main(["accounts", "rotate-keys"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ")
    if fresh_db_url.startswith("postgresql"):
        assert err.count("\n") == 1 and "accounts keygen" in last  # refused: says how to make a key
    else:
        assert "cannot be decrypted" in last  # a new local key was made, and it is not the one used


@pytest.mark.sqlite_only
def test_the_embedded_database_makes_a_local_key_once(
    fresh_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("MONOLYTH_TOKEN_KEYS")
    monkeypatch.setenv("MONOLYTH_DATA_DIR", str(tmp_path / "data"))
    engine = make_engine(fresh_db_url)
    upgrade(engine)
    with engine.begin() as conn:
        first = accounts.create_account(
            conn, owner_id=uuid.uuid4(), provider="google_drive", token_json={"refresh_token": "1//r"}
        )
        accounts.create_account(conn, owner_id=uuid.uuid4(), provider="google_drive", token_json={"x": "y"})
    key_file = tmp_path / "data" / KEY_FILE_NAME
    assert key_file.exists() and oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert capsys.readouterr().err.count("created a token encryption key") == 1
    with engine.connect() as conn:
        assert accounts.get_token_json(conn, first) == {"refresh_token": "1//r"}
    engine.dispose()


@pytest.mark.postgres_only
def test_migration_0004_on_postgres_without_a_key_refuses_and_changes_nothing(
    fresh_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from monolyth_pipelines.store.migrate import current_revision
    from monolyth_pipelines.store.token_crypto import TokenKeyError

    engine = make_engine(fresh_db_url)
    upgrade(engine, "0002")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO connector_accounts (id, owner_id, provider, status, token_json) VALUES "
            "(gen_random_uuid(), gen_random_uuid(), 'google_drive', 'connected', "
            """'{"refresh_token": "1//plain"}'::jsonb)"""
        )
    monkeypatch.delenv("MONOLYTH_TOKEN_KEYS")
    with pytest.raises(TokenKeyError, match="accounts keygen"):
        upgrade(engine)
    assert current_revision(engine) == "0002"
    with engine.connect() as conn:
        assert (
            "1//plain" in conn.exec_driver_sql("SELECT token_json::text FROM connector_accounts").scalar_one()
        )
    monkeypatch.setenv("MONOLYTH_TOKEN_KEYS", generate_key())
    upgrade(engine)
    with engine.connect() as conn:
        assert (
            "1//plain"
            not in conn.exec_driver_sql("SELECT token_json::text FROM connector_accounts").scalar_one()
        )
    engine.dispose()
