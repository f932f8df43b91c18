"""The shipped instance configurations load, and the code location validates."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml

from monolyth_pipelines.store.engine import make_engine
from tests.conftest import postgres_admin_url
from tests.orchestration.conftest import REPO


@pytest.fixture
def fresh_pg_database() -> Iterator[sa.URL]:
    """A new database with an empty dagster_storage schema, so deploy/dagster.yaml loads verbatim."""
    admin_url = postgres_admin_url()
    assert admin_url
    name = f"dagster_deploy_{uuid.uuid4().hex[:10]}"
    admin = make_engine(admin_url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.make_url(admin_url).set(database=name)
    db = make_engine(url.render_as_string(hide_password=False), poolclass=sa.pool.NullPool)
    with db.begin() as conn:
        conn.exec_driver_sql("CREATE SCHEMA dagster_storage")
    try:
        yield url
    finally:
        db.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.mark.postgres
def test_production_instance_config_loads_with_postgres_storage_and_docker_launcher(
    fresh_pg_database: sa.URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster._core.run_coordinator import QueuedRunCoordinator

    docker = pytest.importorskip(
        "dagster_docker", reason="dagster-docker==0.29.27 is needed: pip install -e '.[dev,deploy]'"
    )
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

    url = fresh_pg_database
    monkeypatch.setenv("DAGSTER_PG_HOST", url.host or "127.0.0.1")
    monkeypatch.setenv("DAGSTER_PG_PORT", str(url.port or 5432))
    monkeypatch.setenv("DAGSTER_PG_DB", url.database or "")
    monkeypatch.setenv("DAGSTER_PG_USERNAME", url.username or "postgres")
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", url.password or "")
    monkeypatch.setenv("DAGSTER_DOCKER_NETWORK", "monolyth_dagster")
    # A copy, because an instance writes its local artifact folder beside its dagster.yaml.
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")

    instance = dg.DagsterInstance.from_config(str(home))
    try:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        assert isinstance(instance.run_launcher, docker.DockerRunLauncher)
        assert instance.run_launcher.networks == ["monolyth_dagster"]
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        assert instance.run_monitoring_enabled
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
        assert {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in limits

        # A real run writes events (the path psycopg 3 breaks) and dynamic partitions.
        instance.add_dynamic_partitions("google_drive_accounts", ["a1"])

        @dg.asset
        def probe() -> dg.MaterializeResult:
            return dg.MaterializeResult(metadata={"ok": 1})

        assert dg.materialize([probe], instance=instance).success
        assert instance.get_dynamic_partitions("google_drive_accounts") == ["a1"]
    finally:
        instance.dispose()

    # Dagster's tables went into dagster_storage, none into public.
    engine = make_engine(url.render_as_string(hide_password=False), poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        tables = dict(
            conn.exec_driver_sql(
                "SELECT table_schema, count(*) FROM information_schema.tables "
                "WHERE table_schema IN ('public', 'dagster_storage') GROUP BY table_schema"
            ).all()
        )
    engine.dispose()
    assert tables.get("public", 0) == 0
    assert tables["dagster_storage"] >= 20


def test_local_instance_config_loads(tmp_path: Path) -> None:
    shutil.copy(REPO / "dagster.yaml", tmp_path / "dagster.yaml")
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    try:
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
        assert limits[0]["key"] == "dagster/partition"
        assert instance.run_monitoring_enabled
    finally:
        instance.dispose()


def test_compose_and_workspace_agree_with_the_instance_config() -> None:
    compose = yaml.safe_load((REPO / "deploy" / "docker-compose.yml").read_text())
    workspace = yaml.safe_load((REPO / "deploy" / "workspace.yaml").read_text())
    instance = yaml.safe_load((REPO / "deploy" / "dagster.yaml").read_text())
    env = compose["x-dagster-env"]
    assert set(instance["run_launcher"]["config"]["env_vars"]) <= set(env)
    [location] = workspace["load_from"]
    assert location["grpc_server"]["host"] in compose["services"]
    assert env["DAGSTER_DOCKER_NETWORK"] == compose["networks"]["monolyth_dagster"]["name"]


def test_definitions_validate_from_the_workspace(tmp_path: Path) -> None:
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    done = subprocess.run(
        [str(Path(sys.executable).with_name("dagster")), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "All code locations passed validation" in done.stdout + done.stderr
