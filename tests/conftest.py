"""Shared fixtures: every store test runs on real SQLite and on real Postgres.

Postgres comes from ``MONOLYTH_TEST_POSTGRES_URL`` (a database the tests may create schemas in).
Without it the Postgres half is skipped locally; with ``MONOLYTH_REQUIRE_POSTGRES=1`` (set by
``.ci/run``) a missing server fails the run instead, so CI can never pass on SQLite alone.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from monolyth_pipelines.store.engine import make_engine
from monolyth_pipelines.store.migrate import upgrade
from monolyth_pipelines.store.token_crypto import generate_key

# Every test stores its tokens encrypted, as production does: one key for the session (inherited by
# the Dagster daemon and run subprocesses some tests start). Tests of key handling override it.
TEST_TOKEN_KEY = os.environ.setdefault("MONOLYTH_TOKEN_KEYS", generate_key())

# A standby batch run (settings.BatchSettings.standby) is one more run alive whenever an account
# has synced: tests that count runs or wait for a run to end would meet it. It is off for the
# session; tests/orchestration/test_batch_sync.py turns it on where it is the subject.
os.environ.setdefault("MONOLYTH_SYNC_BATCH_STANDBY", "false")

BACKENDS = ["sqlite", "postgres"]


def postgres_admin_url() -> str | None:
    url = os.environ.get("MONOLYTH_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("MONOLYTH_REQUIRE_POSTGRES") == "1":
            pytest.fail("MONOLYTH_REQUIRE_POSTGRES=1 but MONOLYTH_TEST_POSTGRES_URL is not set")
        pytest.skip("MONOLYTH_TEST_POSTGRES_URL not set")
    return url


def _with_search_path(url: str, schema: str) -> str:
    return str(sa.make_url(url).update_query_dict({"options": f"-csearch_path={schema}"}))


@pytest.fixture
def fresh_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a new SQLite file, or a new Postgres schema dropped afterwards."""
    backend = getattr(request, "param", "sqlite")
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'monolyth.db'}"
        return
    admin_url = postgres_admin_url()
    assert admin_url
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = make_engine(admin_url, poolclass=sa.pool.NullPool)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        yield _with_search_path(admin_url, schema)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


@pytest.fixture
def engine(fresh_db_url: str) -> Iterator[sa.Engine]:
    """A migrated database on the backend of the test's parameter."""
    eng = make_engine(fresh_db_url)
    upgrade(eng)
    yield eng
    eng.dispose()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Any test that uses a database runs once per backend, without each test having to say so.
    if "fresh_db_url" in metafunc.fixturenames:
        markers = {m.name for m in metafunc.definition.iter_markers()}
        backends = (
            ["sqlite"]
            if "sqlite_only" in markers
            else ["postgres"]
            if "postgres_only" in markers
            else BACKENDS
        )
        metafunc.parametrize("fresh_db_url", backends, indirect=True, ids=backends)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    # CI reads this line to prove the Postgres half of the suite really ran.
    counts = {}
    for outcome in ("passed", "failed", "skipped", "error"):
        counts[outcome] = sum(
            "[postgres" in report.nodeid for report in terminalreporter.stats.get(outcome, [])
        )
    terminalreporter.write_line(
        "postgres tests: " + ", ".join(f"{n} {outcome}" for outcome, n in counts.items())
    )
