"""Tokens go only where the deployment says, errors carry no data, rotated tokens commit durably."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from monolyth_pipelines.domain import drive as drive_domain
from monolyth_pipelines.store import accounts, jobs
from monolyth_pipelines.store.schema import activity_log, connector_files, connector_jobs
from tests.connectors.harness import DriveHarness

TITLE = "Q3 layoffs plan - CONFIDENTIAL"
TOKEN = "ya29.a0AfB_leaked-access-token-1234567890"


def _stored_text(drive: DriveHarness) -> str:
    with drive.engine.connect() as conn:
        return "\n".join(
            json.dumps(dict(r._mapping), default=str)
            for table in (connector_jobs, activity_log)
            for r in conn.execute(sa.select(table))
        )


def _dagster_log(drive: DriveHarness, run_id: str) -> str:
    return "\n".join(repr(entry) for entry in drive.instance.all_logs(run_id))


def _explode(*_args: Any, **_kwargs: Any) -> Any:
    raise ValueError(f"cannot normalise {TITLE!r} (Authorization: Bearer {TOKEN})")


def test_an_exception_quoting_a_title_and_a_token_reaches_no_row_or_event(
    drive: DriveHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(drive_domain, "to_file_record", _explode)
    result, job = drive.sync()
    assert not result.success and job.status == "failed"
    assert job.last_error.startswith("internal: Unexpected error: ValueError at ")
    logs = _dagster_log(drive, result.dagster_run.run_id)
    assert "ValueError" in logs
    for haystack in (_stored_text(drive), logs):
        assert TITLE not in haystack and TOKEN not in haystack and "layoffs" not in haystack


def test_when_recording_the_failure_fails_too_the_event_log_stays_clean(
    drive: DriveHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(drive_domain, "to_file_record", _explode)

    def finish_fails(*_args: Any, **_kwargs: Any) -> bool:
        raise RuntimeError(f"server closed the connection while writing {TITLE!r}")

    monkeypatch.setattr(jobs, "finish_job", finish_fails)
    result, _ = drive.sync()
    assert not result.success
    logs = _dagster_log(drive, result.dagster_run.run_id)
    assert "recording the failure also failed: Unexpected error: RuntimeError" in logs
    assert TITLE not in logs and TOKEN not in logs and "layoffs" not in logs


@pytest.mark.parametrize("field", ["api_endpoint", "token_uri"])
def test_run_config_cannot_send_tokens_to_another_host(drive: DriveHarness, field: str) -> None:
    config = {"resources": {"google": {"config": {field: "http://127.0.0.1:9/collect"}}}}
    result, job = drive.sync(config)
    assert not result.success and job.status == "failed" and job.attempts == 1
    assert job.last_error.startswith(
        f"bad_config: resources.google.config.{field}: Google endpoints come from"
    )
    assert drive.api_requests() == 0 and drive.rows(live_only=False) == {}


def test_an_endpoint_the_deployment_allows_is_accepted(
    drive: DriveHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MONOLYTH_GOOGLE_ENDPOINT_ALLOWLIST", drive.base_url)
    monkeypatch.setenv("MONOLYTH_GOOGLE_API_ENDPOINT", "http://127.0.0.1:9")
    result, job = drive.sync({"resources": {"google": {"config": {"api_endpoint": drive.base_url}}}})
    assert result.success and job.status == "completed" and drive.rows()


@pytest.fixture
def commits() -> Iterator[list[tuple[bool, str]]]:
    """(did the transaction write token_json, synchronous_commit at its COMMIT) per commit."""
    seen: list[tuple[bool, str]] = []
    wrote_token: set[int] = set()

    def before(conn: sa.Connection, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE CONNECTOR_ACCOUNTS") and "token_json" in statement:
            wrote_token.add(id(conn.connection.dbapi_connection))

    def on_commit(conn: sa.Connection) -> None:
        if conn.dialect.name != "postgresql":
            return
        raw = conn.connection.dbapi_connection
        assert raw is not None
        with raw.cursor() as cur:
            cur.execute("SHOW synchronous_commit")
            setting = cur.fetchone()[0]
        seen.append((id(raw) in wrote_token, setting))
        wrote_token.discard(id(raw))

    sa.event.listen(sa.Engine, "before_cursor_execute", before)
    sa.event.listen(sa.Engine, "commit", on_commit)
    yield seen
    sa.event.remove(sa.Engine, "before_cursor_execute", before)
    sa.event.remove(sa.Engine, "commit", on_commit)


@pytest.mark.postgres_only
def test_a_page_commit_carrying_a_refreshed_token_is_synchronous(
    drive: DriveHarness, commits: list[tuple[bool, str]]
) -> None:
    drive.emulator.oauth.expire(drive.account.email)  # the first call refreshes the access token
    with drive.engine.connect() as conn:
        before = accounts.get_token_json(conn, drive.account_id)
    result, _ = drive.sync()
    assert result.success
    with drive.engine.connect() as conn:
        assert accounts.get_token_json(conn, drive.account_id)["token"] != before["token"]  # type: ignore[index]
        assert conn.execute(sa.select(sa.func.count()).select_from(connector_files)).scalar_one() > 0
    with_token = [setting for wrote, setting in commits if wrote]
    assert with_token == ["on"], commits
    # The other page commits keep the cheap asynchronous flush.
    assert any(setting == "off" for wrote, setting in commits if not wrote)
