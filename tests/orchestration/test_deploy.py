"""The shipped instance configurations load, the code location validates, and the deploy/ artefacts an
operator uses hold together: every variable a run reads reaches every run, the compose topology has
what production needs, the image build is pinned and keeps local state out, and the Helm values fit
the chart's schema. `make deploy-check` (deploy/check.py) runs the Docker topology for real."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml
from packaging.requirements import Requirement

from monolyth_pipelines import settings
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
        assert instance.run_launcher.networks == ["host"]
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
    compose = _compose()
    workspace = yaml.safe_load((REPO / "deploy" / "workspace.yaml").read_text())
    [location] = workspace["load_from"]
    server = location["grpc_server"]
    # Host networking: the workspace points at the code server's loopback port, the one it binds.
    assert server["host"] == "127.0.0.1"
    assert server["port"] == {"env": "MONOLYTH_CODE_PORT"}
    assert "MONOLYTH_CODE_PORT" in compose["services"]["code"]["command"]
    assert "MONOLYTH_CODE_PORT" in _template()
    assert _instance()["run_launcher"]["config"]["network"] == "host"


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


DEPLOY = REPO / "deploy"
# Every Dagster process of the deployment; the daemon's environment is what the launcher forwards.
DAGSTER_SERVICES = ("migrate", "code", "webserver", "daemon")
LONG_RUNNING = ("code", "webserver", "daemon", "webhook")
DAGSTER_STORAGE = (
    "DAGSTER_PG_HOST",
    "DAGSTER_PG_PORT",
    "DAGSTER_PG_DB",
    "DAGSTER_PG_USERNAME",
    "DAGSTER_PG_PASSWORD",
)


def _compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def _instance() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "dagster.yaml").read_text())


def _template() -> dict[str, str]:
    pairs = {}
    for line in (DEPLOY / "env.template").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            pairs[name] = value
    return pairs


def _service_env(service: dict[str, Any]) -> set[str]:
    """The variables a compose service's containers get: its env file (modelled by the template)
    plus its own environment."""
    names = set(service.get("environment") or {})
    if any("MONOLYTH_ENV_FILE" in entry for entry in service.get("env_file") or []):
        names |= set(_template())
    return names


def _settings_variables() -> set[str]:
    """Every variable name the settings package (and its checks) reads, from the source."""
    package = REPO / "monolyth_pipelines"
    sources = [*(package / "settings").glob("*.py"), package / "settings_checks.py"]
    found: set[str] = set()
    for path in sources:
        found |= set(re.findall(r'"((?:MONOLYTH|DRIVE|GMAIL|MAX|SUPPORTED)_[A-Z0-9_]+)"', path.read_text()))
    return found


def test_every_variable_settings_reads_is_either_forwarded_to_runs_or_said_why_not() -> None:
    read = _settings_variables()
    classified = set(settings.RUN_VARIABLES) | set(settings.NOT_RUN_VARIABLES)
    assert read - classified == set(), "add these to settings/run_variables.py"
    assert classified - read == set(), "settings/ no longer reads these"
    assert {"MONOLYTH_TOKEN_KEYS", "MONOLYTH_GOOGLE_CLIENT_ID", "MONOLYTH_GOOGLE_CLIENT_SECRET"} <= set(
        settings.RUN_VARIABLES
    )


@pytest.mark.parametrize("name", [*settings.RUN_VARIABLES, *DAGSTER_STORAGE])
def test_a_variable_a_run_needs_is_in_the_template_every_dagster_service_and_the_launcher(name: str) -> None:
    compose = _compose()
    assert name in _template(), "deploy/env.template"
    for service in DAGSTER_SERVICES:
        assert name in _service_env(compose["services"][service]), f"compose service {service}"
    assert name in _instance()["run_launcher"]["config"]["env_vars"], "deploy/dagster.yaml env_vars"


def test_the_launcher_forwards_nothing_the_template_does_not_define() -> None:
    # DockerRunLauncher refuses to start a run when a listed variable is unset in the daemon.
    assert set(_instance()["run_launcher"]["config"]["env_vars"]) <= set(_template())


def test_every_service_is_host_networked_restarted_and_from_one_tagged_image() -> None:
    services = _compose()["services"]
    assert set(LONG_RUNNING) | set(DAGSTER_SERVICES) <= set(services)
    for name, service in services.items():
        assert service["network_mode"] == "host", name
        # The tag must be given (no default, so never an implicit :latest).
        assert re.fullmatch(r"\$\{MONOLYTH_IMAGE:\?[^}]*\}", service["image"]), name
        assert "ports" not in service and "networks" not in service, name
    for name in LONG_RUNNING:
        assert services[name]["restart"] == "unless-stopped", name
        assert services[name]["healthcheck"]["test"], name
    assert services["code"]["healthcheck"]["test"][1:4] == ["dagster", "api", "grpc-health-check"]
    assert services["code"]["environment"]["DAGSTER_CURRENT_IMAGE"] == "${MONOLYTH_IMAGE}"
    assert "webhook serve" in services["webhook"]["command"]
    # Terminate (webserver) and launching / monitoring runs (daemon) talk to the engine.
    for name in ("webserver", "daemon"):
        assert "/var/run/docker.sock:/var/run/docker.sock" in services[name]["volumes"], name


def test_no_secret_is_put_on_a_command_line_or_into_the_image() -> None:
    # An interpolated secret would be in `ps` output and `docker inspect`'s command line.
    secretish = re.compile(r"\$\{?[A-Z_]*(SECRET|PASSWORD|TOKEN_KEYS|DATABASE_URL)")
    for name, service in _compose()["services"].items():
        assert not secretish.search(str(service.get("command", ""))), name
        assert not secretish.search(str(service.get("environment", ""))), name
    ignored = (REPO / ".dockerignore").read_text().split()
    for local_state in (".monolyth", ".venv", ".git", "**/*.env", "**/.env", "bench", "deploy/env.template"):
        assert local_state in ignored
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert re.findall(r"^USER (\S+)", dockerfile, re.MULTILINE)[-1] not in ("root", "0")
    assert "ARG BASE_IMAGE" in dockerfile and "ARG WHEEL_SOURCE" in dockerfile
    assert "--no-index" in dockerfile


def test_the_lock_file_pins_every_dependency_the_image_installs() -> None:
    pins = {}
    for line in (DEPLOY / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"not an exact pin: {line}"
            pins[name] = version
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for raw in [*project["dependencies"], *project["optional-dependencies"]["deploy"]]:
        requirement = Requirement(raw)
        name = requirement.name.lower().replace("_", "-")
        assert name in pins, f"{name} is not in deploy/requirements.lock (make deploy-lock)"
        assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]} does not satisfy {raw}"


# The keys deploy/helm/values.yaml uses, with the type the Dagster chart's values.schema.json
# (helm/dagster/values.schema.json at the 1.13.27 release, generated from the chart's pydantic
# models) allows there. Written down here, not vendored; "[]" is an item of a list.
CHART_SCHEMA: dict[str, Any] = {
    "global": dict,
    "global.postgresqlSecretName": str,
    "postgresql": dict,
    "postgresql.enabled": bool,
    "postgresql.postgresqlHost": str,
    "postgresql.postgresqlUsername": str,
    "postgresql.postgresqlDatabase": str,
    "postgresql.postgresqlScheme": str,
    "postgresql.postgresqlParams": dict,
    "postgresql.postgresqlParams.options": str,
    "postgresql.service": dict,
    "postgresql.service.port": int,
    "generatePostgresqlPasswordSecret": bool,
    "dagster-user-deployments": dict,
    "dagster-user-deployments.enabled": bool,
    "dagster-user-deployments.deployments": list,
    "dagster-user-deployments.deployments[]": dict,
    "dagster-user-deployments.deployments[].name": str,
    "dagster-user-deployments.deployments[].image": dict,
    "dagster-user-deployments.deployments[].image.repository": str,
    "dagster-user-deployments.deployments[].image.tag": str,
    "dagster-user-deployments.deployments[].image.pullPolicy": ("Always", "IfNotPresent", "Never"),
    "dagster-user-deployments.deployments[].dagsterApiGrpcArgs": list,
    "dagster-user-deployments.deployments[].dagsterApiGrpcArgs[]": str,
    "dagster-user-deployments.deployments[].port": int,
    "dagster-user-deployments.deployments[].envSecrets": list,
    "dagster-user-deployments.deployments[].envSecrets[]": dict,
    "dagster-user-deployments.deployments[].envSecrets[].name": str,
    "runLauncher": dict,
    "runLauncher.type": ("CeleryK8sRunLauncher", "K8sRunLauncher", "CustomRunLauncher"),
    "runLauncher.config": dict,
    "runLauncher.config.k8sRunLauncher": dict,
    "runLauncher.config.k8sRunLauncher.envSecrets": list,
    "runLauncher.config.k8sRunLauncher.envSecrets[]": dict,
    "runLauncher.config.k8sRunLauncher.envSecrets[].name": str,
    "dagsterWebserver": dict,
    "dagsterWebserver.envSecrets": list,
    "dagsterWebserver.envSecrets[]": dict,
    "dagsterWebserver.envSecrets[].name": str,
    "dagsterDaemon": dict,
    "dagsterDaemon.envSecrets": list,
    "dagsterDaemon.envSecrets[]": dict,
    "dagsterDaemon.envSecrets[].name": str,
    "dagsterDaemon.runCoordinator": dict,
    "dagsterDaemon.runCoordinator.enabled": bool,
    "dagsterDaemon.runCoordinator.type": ("QueuedRunCoordinator", "CustomRunCoordinator"),
    "dagsterDaemon.runCoordinator.config": dict,
    "dagsterDaemon.runCoordinator.config.queuedRunCoordinator": dict,
    "dagsterDaemon.runCoordinator.config.queuedRunCoordinator.maxConcurrentRuns": int,
    "dagsterDaemon.runCoordinator.config.queuedRunCoordinator.tagConcurrencyLimits": list,
    "dagsterDaemon.runCoordinator.config.queuedRunCoordinator.tagConcurrencyLimits[]": dict,
    "dagsterDaemon.runCoordinator.config.queuedRunCoordinator.tagConcurrencyLimits[].key": str,
    # A string, or {applyLimitPerUniqueValue: bool} (TagConcurrencyLimitConfig, extra keys forbidden).
    "dagsterDaemon.runCoordinator.config.queuedRunCoordinator.tagConcurrencyLimits[].value": (str, dict),
    "dagsterDaemon.runCoordinator.config.queuedRunCoordinator.tagConcurrencyLimits[].value"
    ".applyLimitPerUniqueValue": bool,
    "dagsterDaemon.runCoordinator.config.queuedRunCoordinator.tagConcurrencyLimits[].limit": int,
    "dagsterDaemon.runMonitoring": dict,
    "dagsterDaemon.runMonitoring.enabled": bool,
    "dagsterDaemon.runMonitoring.pollIntervalSeconds": int,
    "dagsterDaemon.runMonitoring.startTimeoutSeconds": int,
    "dagsterDaemon.runMonitoring.maxResumeRunAttempts": int,
    "dagsterDaemon.runRetries": dict,
    "dagsterDaemon.runRetries.enabled": bool,
    "telemetry": dict,
    "telemetry.enabled": bool,
}


def _leaves(value: Any, path: str = "") -> list[tuple[str, Any]]:
    found = [(path, value)] if path else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += _leaves(child, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for child in value:
            found += _leaves(child, f"{path}[]")
    return found


def _allowed(value: Any, allowed: Any) -> bool:
    if isinstance(allowed, tuple) and all(isinstance(a, str) for a in allowed):
        return value in allowed
    if allowed is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, allowed)


def test_helm_values_use_only_keys_and_types_the_chart_schema_allows() -> None:
    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    wrong = []
    for path, value in _leaves(values):
        if path not in CHART_SCHEMA:
            wrong.append(f"{path}: not a key of the chart's schema")
        elif not _allowed(value, CHART_SCHEMA[path]):
            wrong.append(f"{path}: {value!r} is not {CHART_SCHEMA[path]}")
    assert not wrong, wrong


def test_helm_values_carry_the_same_queue_limits_and_monitoring_as_the_instance_config() -> None:
    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    instance = _instance()
    queued = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert queued["maxConcurrentRuns"] == instance["concurrency"]["runs"]["max_concurrent_runs"]
    assert queued["tagConcurrencyLimits"] == instance["concurrency"]["runs"]["tag_concurrency_limits"]
    monitoring = values["dagsterDaemon"]["runMonitoring"]
    assert monitoring["pollIntervalSeconds"] == instance["run_monitoring"]["poll_interval_seconds"]
    assert monitoring["maxResumeRunAttempts"] == instance["run_monitoring"]["max_resume_run_attempts"]
