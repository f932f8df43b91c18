"""Connecting an account: the OAuth code flow over the emulator's HTTP, create-or-update, scopes."""

from __future__ import annotations

import sqlalchemy as sa

from monolyth_pipelines.accounts import connect
from monolyth_pipelines.google import oauth_flow
from monolyth_pipelines.store import accounts, events
from monolyth_pipelines.store.schema import connector_accounts
from tests.accounts.conftest import REDIRECT_URI, OAuthWorld


def _connected_events(engine: sa.Engine) -> list[dict]:
    with engine.connect() as conn:
        return [e["payload"] for e in events.events_for(conn) if e["event"] == "connector_account_connected"]


def test_the_whole_connect_flow_stores_a_connected_account(oauth_world: OAuthWorld) -> None:
    got = oauth_world.consent()
    assert got["scope"] == oauth_flow.DRIVE_READONLY
    result = connect.exchange_code(
        oauth_world.engine,
        provider="google_drive",
        owner_id=oauth_world.owner,
        code=got["code"],
        redirect_uri=REDIRECT_URI,
        code_verifier=got["code_verifier"],
        state=got["state"],
        expected_state=got["expected_state"],
    )
    assert (result.status, result.created, result.email) == ("connected", True, "ada@example.com")
    with oauth_world.engine.connect() as conn:
        account = accounts.get_account(conn, result.account_id)
        token = accounts.get_token_json(conn, result.account_id)
    assert account is not None and account.status == "connected"
    assert account.external_email == "ada@example.com" and account.external_user_id
    assert token and token["refresh_token"].startswith("1//emuapp")
    assert "client_secret" not in token  # the deployment's configuration holds it
    assert _connected_events(oauth_world.engine) == [
        {
            "provider": "google_drive",
            "account_id": str(result.account_id),
            "scopes": [oauth_flow.DRIVE_READONLY],
        }
    ]


def test_pkce_is_checked_and_a_code_works_once(oauth_world: OAuthWorld) -> None:
    got = oauth_world.consent()
    kwargs = dict(provider="google_drive", owner_id=oauth_world.owner, redirect_uri=REDIRECT_URI)
    try:
        connect.exchange_code(
            oauth_world.engine,
            code=got["code"],
            code_verifier="x" * 64,
            state=got["state"],
            expected_state=got["expected_state"],
            **kwargs,
        )
    except oauth_flow.OAuthFlowError as exc:
        assert "invalid_grant" in str(exc)
    else:
        raise AssertionError("a wrong PKCE verifier was accepted")
    # The failed attempt used the code up, as Google does.
    got = oauth_world.consent()
    states = dict(state=got["state"], expected_state=got["expected_state"])
    result = connect.exchange_code(
        oauth_world.engine, code=got["code"], code_verifier=got["code_verifier"], **states, **kwargs
    )
    assert result.status == "connected"
    try:
        connect.exchange_code(
            oauth_world.engine, code=got["code"], code_verifier=got["code_verifier"], **states, **kwargs
        )
    except oauth_flow.OAuthFlowError:
        pass
    else:
        raise AssertionError("a code was exchanged twice")


def test_connecting_the_same_google_user_twice_updates_one_row(oauth_world: OAuthWorld) -> None:
    first = oauth_world.connect()
    with oauth_world.engine.connect() as conn:
        first_token = accounts.get_token_json(conn, first.account_id)
    second = oauth_world.connect()
    assert second.account_id == first.account_id and not second.created
    with oauth_world.engine.connect() as conn:
        rows = conn.execute(sa.select(connector_accounts.c.id, connector_accounts.c.status)).all()
        token = accounts.get_token_json(conn, first.account_id)
    assert rows == [(first.account_id, "connected")]
    assert token and first_token and token["refresh_token"] != first_token["refresh_token"]
    # Another Google user of the same owner is another account.
    oauth_world.emulator.consent_as("bob@example.com")
    third = oauth_world.connect()
    assert third.account_id != first.account_id and third.email == "bob@example.com"


def test_missing_scopes_store_an_error_and_no_connected_event(oauth_world: OAuthWorld) -> None:
    oauth_world.emulator.consent_as("ada@example.com", granted_scopes=[])
    result = oauth_world.connect()
    assert (result.status, result.reason) == ("error", "missing_scopes")
    with oauth_world.engine.connect() as conn:
        account = accounts.get_account(conn, result.account_id)
    assert account is not None and account.status == "error" and account.status_reason == "missing_scopes"
    assert account.status_message and "drive.readonly" in account.status_message
    assert _connected_events(oauth_world.engine) == []


def test_gmail_scope_is_added_incrementally_to_the_same_grant(oauth_world: OAuthWorld) -> None:
    oauth_world.connect("google_drive")
    gmail = oauth_world.connect("gmail")
    assert gmail.status == "connected" and gmail.email == "ada@example.com"
    assert set(gmail.scopes) == {oauth_flow.DRIVE_READONLY, oauth_flow.GMAIL_READONLY}


def test_a_token_without_the_scope_needs_reauth_but_a_forbidden_item_does_not(
    oauth_world: OAuthWorld,
) -> None:
    from googleapiclient.discovery import build

    from monolyth_pipelines.accounts.reauth import needs_reauth
    from monolyth_pipelines.google.errors import classify_exception

    emulator = oauth_world.emulator
    gmail_only = emulator.add_account("carol@example.com", scopes=(oauth_flow.GMAIL_READONLY,))
    drive = build(
        "drive",
        "v3",
        credentials=gmail_only.credentials(f"{oauth_world.base_url}/token"),
        static_discovery=True,
        client_options={"api_endpoint": f"{oauth_world.base_url}/drive/v3/"},
    )

    def error_of(call: object) -> object:
        try:
            call.execute()  # type: ignore[attr-defined]
        except Exception as exc:
            return classify_exception(exc)
        raise AssertionError("the call succeeded")

    lacking_scope = error_of(drive.files().list())
    assert lacking_scope.code == "insufficient_permissions" and needs_reauth(lacking_scope)
    emulator.faults.script("drive.files.list", every=True, status=403, reason="insufficientPermissions")
    ada = build(
        "drive",
        "v3",
        credentials=emulator.account("ada@example.com").credentials(f"{oauth_world.base_url}/token"),
        static_discovery=True,
        client_options={"api_endpoint": f"{oauth_world.base_url}/drive/v3/"},
    )
    forbidden = error_of(ada.files().list())
    assert forbidden.code == "insufficient_permissions" and not needs_reauth(forbidden)


def test_accounts_add_goes_through_the_same_create_or_update(
    oauth_world: OAuthWorld, tmp_path, capsys
) -> None:
    import json

    from monolyth_pipelines.cli import main

    ada = oauth_world.emulator.account("ada@example.com")
    token_file = tmp_path / "authorized_user.json"
    token_file.write_text(json.dumps(ada.authorized_user_info(f"{oauth_world.base_url}/token")))
    argv = ["accounts", "add", "--provider", "google_drive", "--owner", str(oauth_world.owner)]
    assert main([*argv, "--token-file", str(token_file)]) == 0
    first = capsys.readouterr().out.strip()
    oauth_world.emulator.reauthorize("ada@example.com")
    token_file.write_text(json.dumps(ada.authorized_user_info(f"{oauth_world.base_url}/token")))
    assert main([*argv, "--token-file", str(token_file)]) == 0
    assert capsys.readouterr().out.strip() == first
    with oauth_world.engine.connect() as conn:
        [account] = accounts.list_accounts(conn)
        token = accounts.get_token_json(conn, account.id)
    assert account.external_email == "ada@example.com"
    # A grant of another OAuth client than the deployment's keeps its own (encrypted) client secret.
    assert token and token["client_id"] == ada.client_id and token["client_secret"]
    assert len(_connected_events(oauth_world.engine)) == 2


def test_rows_without_a_client_use_the_deployments_and_rows_with_one_keep_it() -> None:
    from monolyth_pipelines.google.credentials import credentials_from_token_json
    from monolyth_pipelines.settings import OAuthClient

    deployment = OAuthClient("app-client", "app-secret")
    new_row = credentials_from_token_json({"refresh_token": "r", "client_id": "app-client"}, "t", deployment)
    assert (new_row.client_id, new_row.client_secret) == ("app-client", "app-secret")
    old_row = {"refresh_token": "r", "client_id": "own", "client_secret": "own-secret"}
    kept = credentials_from_token_json(old_row, "t", deployment)
    assert (kept.client_id, kept.client_secret) == ("own", "own-secret")


def test_a_redirect_without_the_state_or_with_another_is_refused(oauth_world: OAuthWorld) -> None:
    import pytest

    kwargs = dict(provider="google_drive", owner_id=oauth_world.owner, redirect_uri=REDIRECT_URI)
    for state in (None, "", "someone-elses-state"):
        got = oauth_world.consent()
        with pytest.raises(oauth_flow.OAuthFlowError, match="state"):
            connect.exchange_code(
                oauth_world.engine,
                code=got["code"],
                code_verifier=got["code_verifier"],
                state=state,
                expected_state=got["expected_state"],
                **kwargs,
            )
    with oauth_world.engine.connect() as conn:
        assert accounts.list_accounts(conn) == []
