"""``monolyth-connectors insights build | show`` on a database with runs and files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from monolyth_pipelines.cli import main
from monolyth_pipelines.store.files import upsert_files
from monolyth_pipelines.store.schema import insights_sync_runs_daily
from tests.store.helpers import make_records, new_account
from tests.test_insights_dagster import one_run


@pytest.fixture
def cli_db(fresh_db_url: str, engine: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("MONOLYTH_DATABASE_URL", fresh_db_url)
    monkeypatch.setenv("MONOLYTH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    return fresh_db_url


def test_build_then_show_prints_outcomes_accounts_and_documents(
    cli_db: str, engine: sa.Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    account = new_account(engine)
    with engine.begin() as conn:
        upsert_files(conn, account, "google_drive", make_records(3, title="Quarterly plan"))
    one_run(engine, account, "completed")
    one_run(engine, account, "failed", "auth_revoked: the grant was revoked")
    today = datetime.now(UTC).date()

    assert main(["insights", "build", "--since", (today - timedelta(days=1)).isoformat()]) == 0
    out = capsys.readouterr().out
    assert f"{today - timedelta(days=1)}: built" in out and f"{today}: built" in out
    with engine.connect() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(insights_sync_runs_daily)).scalar_one() == 1
        )

    assert main(["insights", "show", "--days", "2", "--provider", "google_drive"]) == 0
    shown = capsys.readouterr().out
    assert "Run outcomes per day:" in shown and "50%" in shown
    assert str(account) in shown
    assert "Quarterly plan 0" in shown

    assert main(["insights", "show", "--provider", "gmail"]) == 0
    assert "(nothing yet)" in capsys.readouterr().out


def test_build_refuses_a_bad_or_future_day(cli_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["insights", "build", "--day", "yesterday"])
    assert main(["insights", "build", "--day", "2999-01-01"]) == 2
    assert "future" in capsys.readouterr().err
