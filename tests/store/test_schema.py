"""The schema has one source of truth: store/schema.py. Migrations and sql/ must match it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from monolyth_pipelines.store.ddl import postgres_ddl
from monolyth_pipelines.store.engine import make_engine
from monolyth_pipelines.store.migrate import VERSION_TABLE, head_revision, upgrade
from monolyth_pipelines.store.schema import metadata
from tests.store.helpers import make_records, new_account

ROOT = Path(__file__).resolve().parents[2]


def test_sql_folder_is_the_ddl_the_code_generates() -> None:
    committed = (ROOT / "sql" / "schema.sql").read_text()
    assert committed == postgres_ddl(), (
        "sql/schema.sql is stale: run `monolyth-connectors db sql > sql/schema.sql`"
    )


def test_migrations_build_exactly_the_code_schema(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"version_table": VERSION_TABLE, "compare_type": True}
        )
        assert compare_metadata(context, metadata) == []


def _pg_snapshot(conn: sa.Connection) -> dict[str, list[tuple[str, ...]]]:
    schema = conn.exec_driver_sql("SELECT current_schema()").scalar_one()
    columns = conn.exec_driver_sql(
        "SELECT table_name, column_name, data_type, is_nullable, coalesce(column_default, '') "
        "FROM information_schema.columns WHERE table_schema = current_schema() AND table_name <> %s "
        "ORDER BY 1, 2",
        (VERSION_TABLE,),
    ).all()
    indexes = conn.exec_driver_sql(
        "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
        "AND tablename <> %s ORDER BY 1, 2",
        (VERSION_TABLE,),
    ).all()
    constraints = conn.exec_driver_sql(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE connamespace = current_schema()::regnamespace AND conrelid::regclass::text <> %s "
        "ORDER BY 1, 2",
        (VERSION_TABLE,),
    ).all()
    strip = re.compile(rf"\b{re.escape(schema)}\.")
    return {
        "columns": [tuple(map(str, row)) for row in columns],
        "indexes": [tuple(strip.sub("", str(v)) for v in row) for row in indexes],
        "constraints": [tuple(strip.sub("", str(v)) for v in row) for row in constraints],
    }


@pytest.mark.postgres_only
def test_sql_folder_applied_by_hand_equals_the_migrated_schema(fresh_db_url: str, tmp_path: Path) -> None:
    migrated = make_engine(fresh_db_url)
    upgrade(migrated)
    by_hand_url = fresh_db_url.replace("search_path%3D", "search_path%3Dhand_").replace(
        "search_path=", "search_path=hand_"
    )
    hand_schema = re.search(r"search_path(?:=|%3D)(\w+)", by_hand_url)
    assert hand_schema
    with migrated.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {hand_schema.group(1)}")
    try:
        by_hand = make_engine(by_hand_url)
        with by_hand.begin() as conn:
            conn.exec_driver_sql((ROOT / "sql" / "schema.sql").read_text())
        with migrated.connect() as a, by_hand.connect() as b:
            snapshot = _pg_snapshot(a)
            assert snapshot["columns"], "no tables found"
            assert snapshot == _pg_snapshot(b)
        # The spec's columns and types, as psql's \d connector_files shows them.
        with migrated.connect() as conn:
            types = dict(
                conn.exec_driver_sql(
                    "SELECT column_name, data_type FROM information_schema.columns "
                    "WHERE table_schema = current_schema() AND table_name = 'connector_files'"
                ).all()
            )
        assert {
            k: types[k] for k in ("id", "account_id", "meta_json", "size", "modified_at", "external_id")
        } == {
            "id": "uuid",
            "account_id": "uuid",
            "meta_json": "jsonb",
            "size": "bigint",
            "modified_at": "timestamp with time zone",
            "external_id": "text",
        }
        by_hand.dispose()
    finally:
        with migrated.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {hand_schema.group(1)} CASCADE")
        migrated.dispose()


def test_upgrade_twice_changes_nothing_and_keeps_rows(engine: sa.Engine) -> None:
    account = new_account(engine)
    from monolyth_pipelines.store.files import upsert_files

    with engine.begin() as conn:
        upsert_files(conn, account, "google_drive", make_records(3))
    inspector_before = _portable_snapshot(engine)
    assert upgrade(engine) == (head_revision(), head_revision())
    assert _portable_snapshot(engine) == inspector_before
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM connector_files").scalar_one() == 3


def _portable_snapshot(engine: sa.Engine) -> dict[str, object]:
    inspector = sa.inspect(engine)
    return {
        table: (
            [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)],
            sorted(ix["name"] for ix in inspector.get_indexes(table)),
        )
        for table in sorted(inspector.get_table_names())
    }


def test_cli_db_upgrade_is_idempotent(fresh_db_url: str) -> None:
    env = {**os.environ, "MONOLYTH_DATABASE_URL": fresh_db_url}
    cmd = [sys.executable, "-m", "monolyth_pipelines.cli", "db", "upgrade"]
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    assert f"to {head_revision()}" in first.stdout
    assert "nothing to do" in second.stdout


def test_upgrading_a_database_that_holds_rows_keeps_them(
    fresh_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uuid

    from monolyth_pipelines.store import accounts, vault

    engine = make_engine(fresh_db_url)
    upgrade(engine, "0001")
    # connector_accounts as revision 0001 had it, with its token in the clear.
    account = uuid.uuid4()
    plain = {"token": "ya29.plain-access", "refresh_token": "1//plain-refresh", "client_secret": "GOCSPX-x"}
    accounts_0001 = sa.table(
        "connector_accounts",
        sa.column("id", sa.Uuid()),
        sa.column("owner_id", sa.Uuid()),
        sa.column("provider", sa.Text()),
        sa.column("status", sa.Text()),
        sa.column("token_json", sa.JSON()),
    )
    with engine.begin() as conn:
        conn.execute(
            accounts_0001.insert().values(
                id=account,
                owner_id=uuid.uuid4(),
                provider="google_drive",
                status="connected",
                token_json=plain,
            )
        )
    owner = uuid.uuid4()
    # vault_documents as revision 0001 had it: the code's table has columns 0001 lacks.
    vault_0001 = sa.table(
        "vault_documents",
        sa.column("id", sa.Uuid()),
        sa.column("owner_id", sa.Uuid()),
        sa.column("source", sa.Text()),
        sa.column("external_id", sa.Text()),
        sa.column("title", sa.Text()),
        sa.column("content", sa.LargeBinary()),
    )
    with engine.begin() as conn:
        conn.execute(
            vault_0001.insert().values(
                id=uuid.uuid4(),
                owner_id=owner,
                source="google_drive",
                external_id="f1",
                title="Doc",
                content=b"x",
            )
        )
    from monolyth_pipelines.store import file_events
    from monolyth_pipelines.store.files import upsert_files

    # Revision 0001 has no connector_file_events: the rows as code of that time wrote them.
    monkeypatch.setattr(file_events, "RECORDING", False)
    with engine.begin() as conn:
        upsert_files(conn, account, "google_drive", make_records(5))
    assert upgrade(engine) == ("0001", head_revision())
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM connector_files").scalar_one() == 5
        assert conn.exec_driver_sql("SELECT title, deleted_at FROM vault_documents").all() == [("Doc", None)]
        assert vault.existing_external_ids(conn, owner, "google_drive", ["f1"]) == {"f1"}
        # Migration 0004 encrypted the plain token: the column no longer holds any of it.
        stored = conn.exec_driver_sql("SELECT CAST(token_json AS TEXT) FROM connector_accounts").scalar_one()
        assert all(secret not in stored for secret in plain.values())
        assert accounts.get_token_json(conn, account) == plain
    engine.dispose()
