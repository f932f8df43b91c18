"""Tokens a change probe refreshed are written back encrypted, and never over a reconnect."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa

from monolyth_pipelines.store import accounts, probe_queries, token_crypto
from monolyth_pipelines.store.schema import connector_accounts
from tests.store.helpers import new_account


def _store(engine: sa.Engine, account: uuid.UUID, token_json: dict[str, Any], *, encrypted: bool) -> None:
    with engine.begin() as conn:
        ring = token_crypto.key_ring(conn.dialect.name)
        value = token_crypto.encrypt(ring, token_json) if encrypted else token_json
        conn.execute(
            connector_accounts.update().where(connector_accounts.c.id == account).values(token_json=value)
        )


def _column(engine: sa.Engine, account: uuid.UUID) -> str:
    with engine.connect() as conn:
        return str(
            conn.execute(
                sa.select(connector_accounts.c.token_json).where(connector_accounts.c.id == account)
            ).scalar_one()
        )


def test_probe_refreshed_tokens_are_stored_encrypted_and_never_overwrite_a_reconnect(
    engine: sa.Engine,
) -> None:
    refreshed, reconnected, plain = (new_account(engine) for _ in range(3))
    _store(engine, refreshed, {"token": "old", "refresh_token": "r1"}, encrypted=True)
    # The user reconnected (a new grant, r2) after the probe started with r1.
    _store(engine, reconnected, {"token": "new", "refresh_token": "r2"}, encrypted=True)
    # A row written before encryption existed still takes the refresh, encrypted.
    _store(engine, plain, {"token": "old", "refresh_token": "r1"}, encrypted=False)

    with engine.begin() as conn:
        written = probe_queries.save_refreshed_tokens(
            conn,
            [
                (refreshed, {"token": "ya29.fresh-secret", "refresh_token": "r1"}, "r1"),
                (reconnected, {"token": "ya29.stale-secret", "refresh_token": "r1"}, "r1"),
                (plain, {"token": "ya29.plain-secret", "refresh_token": "r1"}, "r1"),
            ],
        )
    assert written == 2
    with engine.connect() as conn:
        assert accounts.get_token_json(conn, refreshed) == {
            "token": "ya29.fresh-secret",
            "refresh_token": "r1",
        }
        assert accounts.get_token_json(conn, reconnected) == {"token": "new", "refresh_token": "r2"}
        assert accounts.get_token_json(conn, plain) == {"token": "ya29.plain-secret", "refresh_token": "r1"}
    for account in (refreshed, reconnected, plain):
        assert "secret" not in _column(engine, account)
        assert "refresh_token" not in _column(engine, account)
