"""`make deploy-check`: the production topology of deploy/ on Docker, exercised end to end.

Installs what it needs (Docker engine, docker-compose, debootstrap) when absent, builds the image
offline, brings deploy/docker-compose.yml up against the machine's Postgres (a throwaway database)
and the Google emulator, runs the scenario through the deployed processes only (the app's side is
SQL rows, the consent page and HTTP calls; Dagster's side is the webserver's GraphQL API), prints
one PASS/FAIL line per step, the figures, then `deploy-check: P/T steps passed`, tears everything
down and exits 0 only when every step passed. docs/operations.md describes what it covers.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import traceback
import urllib.request
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from check_infra import (
    DEPLOY,
    REPO,
    Compose,
    CpuSampler,
    Databases,
    Emulator,
    Engine,
    build_image,
    ensure_base_image,
    free_port,
    new_workdir,
    sh,
    wait_until,
)

PY = sys.executable
CLI = str(Path(PY).with_name("monolyth-connectors"))
REPOSITORY = {"repositoryLocationName": "monolyth_pipelines", "repositoryName": "__repository__"}
SYNC_TIMEOUT = 240.0
# The check's instance differs from deploy/dagster.yaml only here: run monitoring polls every 5 s
# instead of 60 s so a killed container is noticed within the check (production keeps 60 s).
MONITORING_OVERRIDES = {"poll_interval_seconds": 5, "cancel_timeout_seconds": 60}


class Check:
    def __init__(self) -> None:
        self.workdir = new_workdir()
        self.engine = Engine(self.workdir)
        self.db = Databases()
        self.emulator: Emulator | None = None
        self.compose: Compose | None = None
        self.sampler = CpuSampler()
        stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
        sha = sh("git", "-C", str(REPO), "rev-parse", "--short", "HEAD", check=False).stdout.strip()
        sha = sha or "nogit"
        self.tag = f"monolyth_pipelines:check-{sha}-{stamp}-{os.getpid()}"
        self.project = f"monolythcheck{os.getpid()}"
        self.results: list[tuple[str, bool, str]] = []
        self.figures: dict[str, str] = {}
        self.env: dict[str, str] = {}
        self.owners: dict[str, str] = {}  # label -> owner id
        self.accounts: dict[str, str] = {}  # label -> account id
        self.t_up = 0.0
        self.image_built = False
        self.insights_run: str | None = None

    # --- plumbing -----------------------------------------------------------------------------
    def step(self, name: str, fn: Callable[[], str | None]) -> bool:
        started = time.monotonic()
        try:
            detail = fn() or ""
            ok = True
        except Exception as exc:  # a failed step is reported, and the next steps still run
            detail = f"{type(exc).__name__}: {exc}"
            if os.environ.get("DEPLOY_CHECK_TRACE"):
                traceback.print_exc()
            ok = False
        took = time.monotonic() - started
        self.results.append((name, ok, detail))
        suffix = f": {detail}" if detail else ""
        print(f"{'PASS' if ok else 'FAIL'} {name} ({took:.0f} s){suffix}", flush=True)
        return ok

    def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        port = self.env["MONOLYTH_WEBSERVER_PORT"]
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/graphql",
            data=json.dumps({"query": query, "variables": variables}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=120) as answer:
            body = json.loads(answer.read())
        if body.get("errors"):
            raise RuntimeError(f"GraphQL errors: {body['errors']}")
        return body["data"]

    def job(self, job_id: str) -> dict[str, Any]:
        [(status, last_error, run_id, requested_by)] = self.db.rows(
            "SELECT status, last_error, run_id, meta_json->>'requested_by' FROM connector_jobs WHERE id = %s",
            job_id,
        )
        return {"status": status, "last_error": last_error, "run_id": run_id, "requested_by": requested_by}

    def runs_of_job(self, job_id: str) -> list[tuple[str, str, str | None]]:
        """(run id, status, container id) of every Dagster run launched for the job (its run tag)
        or holding it (the batch run of an account synced before: the row's run_id)."""
        return self.db.rows(
            "SELECT r.run_id, r.status, c.value FROM dagster_storage.runs r "
            "LEFT JOIN dagster_storage.run_tags c ON c.run_id = r.run_id AND c.key = 'docker/container_id' "
            "WHERE r.run_id IN (SELECT t.run_id FROM dagster_storage.run_tags t "
            "WHERE t.key = 'monolyth/job_id' AND t.value = %s "
            "UNION SELECT j.run_id FROM connector_jobs j WHERE j.id = %s::uuid AND j.run_id IS NOT NULL)",
            job_id,
            job_id,
        )

    def sync_now(self, label: str) -> str:
        return str(self.db.one(
            "INSERT INTO connector_jobs (account_id, kind, status) VALUES (%s, 'drive_import', 'pending') "
            "RETURNING id",
            self.accounts[label],
        ))

    def wait_job(
        self, job_id: str, status: str = "completed", timeout: float = SYNC_TIMEOUT
    ) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            row = self.job(job_id)
            if row["status"] == "failed" and status != "failed":
                raise RuntimeError(f"job {job_id} failed: {row['last_error']}")
            return row if row["status"] == status else None

        return wait_until(f"job {job_id} {status}", done, timeout)

    def through_one_container(self, job_id: str) -> str:
        runs = self.runs_of_job(job_id)
        if len(runs) != 1:
            raise AssertionError(f"job {job_id} has {len(runs)} runs, expected one")
        run_id, _, container = runs[0]
        if not container:
            raise AssertionError(f"run {run_id} has no docker/container_id tag: not a run container")
        batch = self.db.one(
            "SELECT value FROM dagster_storage.run_tags WHERE key = 'monolyth/batch' AND run_id = %s", run_id
        )
        if not batch:  # a batch run stays up for the next rows (standby); its job row is the outcome
            wait_until(f"run {run_id} success", lambda: self.runs_of_job(job_id)[0][1] == "SUCCESS", 60)
        return container

    def first_job(self, label: str, timeout: float = 120) -> str:
        return str(wait_until(
            f"a job for {label}",
            lambda: self.db.one(
                "SELECT id FROM connector_jobs WHERE account_id = %s ORDER BY created_at LIMIT 1",
                self.accounts[label],
            ),
            timeout,
        ))

    def files(self, label: str) -> list[tuple[Any, ...]]:
        return self.db.rows(
            "SELECT external_id, title, mime, size, modified_at, url, content_hash, deleted_reason, "
            "deleted_at IS NULL FROM connector_files WHERE account_id = %s ORDER BY external_id",
            self.accounts[label],
        )

    def running_container(self, label: str, job_id: str) -> tuple[str, str]:
        def ready() -> tuple[str, str] | None:
            runs = self.runs_of_job(job_id)
            if not runs or self.job(job_id)["status"] != "running" or not runs[0][2]:
                return None
            state = sh("docker", "inspect", "-f", "{{.State.Running}}", runs[0][2], check=False).stdout
            return (runs[0][0], runs[0][2]) if state.strip() == "true" else None

        found = wait_until(f"{label}'s run container mid-sync", ready, SYNC_TIMEOUT)
        time.sleep(3)
        return found

    # --- setup --------------------------------------------------------------------------------
    def build(self) -> str:
        started = time.monotonic()
        build_image(PY, self.tag)
        self.image_built = True
        return f"{self.tag} in {time.monotonic() - started:.0f} s"

    def write_env(self) -> Path:
        emu = self.emulator
        assert emu is not None
        client = emu.call("POST", "oauth/clients", {})
        section = client.get("installed") or client.get("web") or client
        from cryptography.fernet import Fernet

        values = {
            "MONOLYTH_IMAGE": self.tag,
            "DOCKER_GID": str(os.stat("/var/run/docker.sock").st_gid),
            "MONOLYTH_CODE_PORT": str(free_port()),
            "MONOLYTH_WEBSERVER_PORT": str(free_port()),
            "MONOLYTH_WEBHOOK_PORT": str(free_port()),
            "DAGSTER_PG_HOST": "127.0.0.1",
            "DAGSTER_PG_PORT": "5432",
            "DAGSTER_PG_DB": self.db.name,
            "DAGSTER_PG_USERNAME": "postgres",
            "DAGSTER_PG_PASSWORD": "",
            "MONOLYTH_DATABASE_URL": self.db.url,
            "MONOLYTH_TOKEN_KEYS": Fernet.generate_key().decode(),
            "MONOLYTH_GOOGLE_CLIENT_ID": section["client_id"],
            "MONOLYTH_GOOGLE_CLIENT_SECRET": section["client_secret"],
            "MONOLYTH_GOOGLE_API_ENDPOINT": emu.base,
            "MONOLYTH_GOOGLE_TOKEN_URI": f"{emu.base}/token",
            "MONOLYTH_WEBHOOK_SECRET": uuid.uuid4().hex,
        }
        values["MONOLYTH_WEBHOOK_URL"] = f"http://127.0.0.1:{values['MONOLYTH_WEBHOOK_PORT']}"
        lines, seen = [], set()
        for line in (DEPLOY / "env.template").read_text().splitlines():
            name = line.split("=", 1)[0]
            if line and not line.startswith("#") and "=" in line:
                seen.add(name)
                line = f"{name}={values.get(name, line.split('=', 1)[1])}"
            lines.append(line)
        unknown = set(values) - seen
        if unknown:
            raise AssertionError(f"deploy/env.template lacks {sorted(unknown)}")
        path = self.workdir / "monolyth.env"
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o600)
        self.env = values
        return path

    def write_override(self) -> Path:
        instance = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
        instance["run_monitoring"].update(MONITORING_OVERRIDES)
        home = self.workdir / "dagster.yaml"
        home.write_text(yaml.safe_dump(instance, sort_keys=False))
        home.chmod(0o644)
        self.workdir.chmod(0o755)
        mount = [f"{home}:/opt/dagster/home/dagster.yaml:ro"]
        services = ("migrate", "code", "webserver", "daemon")
        override = {"services": {name: {"volumes": mount} for name in services}}
        path = self.workdir / "override.yml"
        path.write_text(yaml.safe_dump(override))
        return path

    def up(self) -> str:
        self.db.create()
        self.emulator = Emulator(CLI, self.workdir, accounts=4, drive_files=60)
        env_file = self.write_env()
        self.compose = Compose(self.project, env_file, self.write_override(), self.env)
        self.sampler.start()
        self.t_up = time.monotonic()
        self.compose.run("up", "-d", "--no-color", timeout=600)
        for service in ("code", "webserver", "webhook"):
            wait_until(f"{service} healthy", lambda s=service: self.health(s) == "healthy", 240, 2)
        # The daemon's own health check runs every minute; its heartbeats say the same sooner.
        wait_until("the daemon's heartbeats", self.daemon_healthy, 240, 2)
        migrate = self.container("migrate")
        code = sh("docker", "inspect", "-f", "{{.State.ExitCode}}", migrate).stdout.strip()
        if code != "0":
            raise AssertionError(f"migrate exited {code}")
        return f"migrate done, 4 services healthy {time.monotonic() - self.t_up:.0f} s after up"

    def daemon_healthy(self) -> bool:
        self.health("daemon")
        data = self.graphql("""{ instance { daemonHealth { allDaemonStatuses {
            daemonType healthy required } } } }""")
        statuses = data["instance"]["daemonHealth"]["allDaemonStatuses"]
        return all(s["healthy"] for s in statuses if s["required"])

    def container(self, service: str) -> str:
        assert self.compose is not None
        ids = self.compose.run("ps", "-a", "-q", service).stdout.split()
        if not ids:
            raise AssertionError(f"no container for {service}")
        return ids[0]

    def health(self, service: str) -> str:
        cid = self.container(service)
        out = sh("docker", "inspect", "-f", "{{.State.Health.Status}}", cid, check=False).stdout.strip()
        if out == "unhealthy":
            raise AssertionError(f"{service} is unhealthy")
        return out

    # --- the scenario --------------------------------------------------------------------------
    def connect(self, label: str, email: str) -> str:
        """The app's consent flow with the deployment's client: `accounts connect` in a container of
        the image, the emulator's consent page answering as the user."""
        assert self.compose is not None and self.emulator is not None
        owner = str(uuid.uuid4())
        callback = free_port()
        # The consent page answers as the login hint's user, so several connects can run at once.
        proc = self.compose.popen(
            "run", "--rm", "-T", "cli", "accounts", "connect", "--provider", "google_drive",
            "--owner", owner, "--no-browser", "--port", str(callback), "--timeout", "120",
            "--login-hint", email,
        )
        assert proc.stdout is not None
        output = []
        url = None
        for line in proc.stdout:
            output.append(line)
            if line.startswith("http") and "/o/oauth2/auth" in line:
                url = line.strip()
                break
        if url is None:
            proc.wait(30)
            raise AssertionError("no consent URL: " + " | ".join(output[-5:]))
        with urllib.request.urlopen(url, timeout=60) as answer:  # consent, then the 302 to the callback
            answer.read()
        rest, _ = proc.communicate(timeout=120)
        found = re.search(r"^([0-9a-f-]{36}) connected", rest, re.MULTILINE)
        if proc.returncode != 0 or not found:
            raise AssertionError(f"accounts connect exited {proc.returncode}: {rest.strip()[-300:]}")
        account_id = found.group(1)
        self.owners[label], self.accounts[label] = owner, account_id
        return account_id

    def stored_grant(self, label: str) -> dict[str, Any]:
        os.environ["MONOLYTH_TOKEN_KEYS"] = self.env["MONOLYTH_TOKEN_KEYS"]
        from monolyth_pipelines.store import token_crypto

        stored = self.db.one("SELECT token_json FROM connector_accounts WHERE id = %s", self.accounts[label])
        grant = token_crypto.decrypt(token_crypto.key_ring("postgresql"), stored)
        assert grant is not None
        return grant

    def step_connect(self) -> str:
        people = (("alice", "user1@example.com"), ("bob", "user2@example.com"), ("twin", "user3@example.com"))
        with ThreadPoolExecutor(len(people)) as pool:
            for done in [pool.submit(self.connect, label, email) for label, email in people]:
                done.result()
        for label in self.accounts:
            grant = self.stored_grant(label)
            if grant.get("client_secret"):
                raise AssertionError(f"{label}'s row stores a client secret")
            if grant.get("client_id") not in (None, self.env["MONOLYTH_GOOGLE_CLIENT_ID"]):
                raise AssertionError(f"{label}'s grant is not the deployment client's")
        return "3 accounts connected through the consent page; rows hold no client secret"

    def step_first_sync(self) -> str:
        first = None
        for label in ("alice", "bob", "twin"):
            job_id = self.first_job(label)
            self.wait_job(job_id)
            first = first or time.monotonic() - self.t_up
            self.through_one_container(job_id)
        self.figures["up -> first completed sync"] = f"{first:.1f} s"
        self.launch_insights()
        counts = {label: len(self.files(label)) for label in ("alice", "bob", "twin")}
        if not all(counts.values()):
            raise AssertionError(f"no connector_files rows: {counts}")
        return f"first syncs completed in run containers, rows {counts}"

    def step_sync_now(self) -> str:
        started = time.monotonic()
        job_id = self.sync_now("alice")
        self.wait_job(job_id)
        took = time.monotonic() - started
        container = self.through_one_container(job_id)
        self.figures["Sync now: pending row -> completed"] = f"{took:.1f} s"
        return f"job {job_id[:8]} completed in container {container[:12]} after {took:.1f} s"

    def step_schedule(self) -> str:
        assert self.emulator is not None
        # Push is on in this deployment, so the changed account's channel is made to lose its
        # notification (expired at the emulator): the schedule with its probe is the safety net
        # for exactly that. Channels are registered first so no daemon tick adds one meanwhile.
        self.push_channels_tick()
        for channel in self.emulator.call("GET", "push")["drive_channels"]:
            if channel["email"] == "user1@example.com":
                self.emulator.call("POST", "push/expire", {"channel_id": channel["id"]})
        for label in ("alice", "bob"):
            self.db.execute(
                "UPDATE connector_jobs SET created_at = created_at - interval '8 hours', "
                "started_at = started_at - interval '8 hours', "
                "finished_at = finished_at - interval '8 hours' "
                "WHERE account_id = %s", self.accounts[label])
            self.db.execute(
                "UPDATE connector_sync_state SET last_checked_at = now() - interval '8 hours' "
                "WHERE account_id = %s", self.accounts[label])
        before = {label: self.db.one("SELECT count(*) FROM connector_jobs WHERE account_id = %s",
                                     self.accounts[label]) for label in ("alice", "bob")}
        self.emulator.call("POST", "accounts/user1@example.com/drive/create_file",
                           {"name": "scheduled change.pdf", "mime_type": "application/pdf", "size": 2048})
        data = self.graphql(
            """mutation($selector: ScheduleSelector!, $ts: Float) {
                 scheduleDryRun(selectorData: $selector, timestamp: $ts) {
                   __typename
                   ... on DryRunInstigationTick { evaluationResult { skipReason error { message } } }
                   ... on PythonError { message } } }""",
            selector={**REPOSITORY, "scheduleName": "google_drive_scheduled_sync"}, ts=time.time(),
        )["scheduleDryRun"]
        result = data.get("evaluationResult") or {}
        if data["__typename"] != "DryRunInstigationTick" or result.get("error"):
            raise AssertionError(f"schedule evaluation failed: {data}")
        job_id = str(wait_until("the scheduled job", lambda: self.db.one(
            "SELECT id FROM connector_jobs WHERE account_id = %s AND meta_json->>'requested_by' = 'schedule'",
            self.accounts["alice"]), 30))
        self.wait_job(job_id)
        self.through_one_container(job_id)
        after_bob = self.db.one(
            "SELECT count(*) FROM connector_jobs WHERE account_id = %s", self.accounts["bob"]
        )
        checked = self.db.one(
            "SELECT max(last_checked_at) > now() - interval '10 minutes' FROM connector_sync_state "
            "WHERE account_id = %s", self.accounts["bob"])
        if after_bob != before["bob"] or not checked:
            raise AssertionError(f"idle account: {after_bob - before['bob']} new jobs, probed: {checked}")
        return "changed account: one scheduled job, one run, completed; idle account: probed, no job"

    def push_channels_tick(self) -> None:
        """One evaluation of `connector_push_channels` by the code server (GraphQL sensorDryRun):
        the daemon ticks it every 5 minutes only; its effect is channels, not runs."""
        data = self.graphql(
            """mutation($selector: SensorSelector!, $cursor: String) {
                 sensorDryRun(selectorData: $selector, cursor: $cursor) {
                   __typename
                   ... on DryRunInstigationTick { evaluationResult { skipReason error { message } } }
                   ... on PythonError { message } } }""",
            selector={**REPOSITORY, "sensorName": "connector_push_channels"}, cursor=None,
        )["sensorDryRun"]
        result = data.get("evaluationResult") or {}
        if data["__typename"] != "DryRunInstigationTick" or result.get("error"):
            raise AssertionError(f"push-channel sensor evaluation failed: {data}")

    def step_push(self) -> str:
        assert self.emulator is not None
        self.push_channels_tick()
        wait_until("bob's push channel", lambda: self.db.one(
            "SELECT count(*) FROM connector_push_channels WHERE account_id = %s", self.accounts["bob"]), 30)
        since = self.db.one("SELECT now()")
        self.emulator.call("POST", "accounts/user2@example.com/drive/create_file",
                           {"name": "pushed change.pdf", "mime_type": "application/pdf", "size": 4096})
        job_id = str(wait_until("the push job", lambda: self.db.one(
            "SELECT id FROM connector_jobs WHERE account_id = %s AND created_at >= %s",
            self.accounts["bob"], since), 60))
        self.wait_job(job_id)
        self.through_one_container(job_id)
        time.sleep(5)
        jobs = self.db.one("SELECT count(*) FROM connector_jobs WHERE account_id = %s AND created_at >= %s",
                           self.accounts["bob"], since)
        # The row says who asked (its meta_json keeps requested_by after the run); the run is the
        # provider's batch run, since bob was synced before.
        trigger = self.job(job_id)["requested_by"]
        titles = [r[1] for r in self.files("bob")]
        if jobs != 1 or trigger != "push" or "pushed change.pdf" not in titles:
            raise AssertionError(f"{jobs} jobs, run trigger {trigger}, file synced: "
                                 f"{'pushed change.pdf' in titles}")
        return "notification -> receiver -> one pending job -> one run -> completed, the new file stored"

    def launch_insights(self) -> None:
        """Launched through the webserver as soon as the first syncs are in; checked by its step,
        so its queueing and container start overlap the steps in between."""
        day = datetime.now(UTC).date().isoformat()
        data = self.graphql(
            """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
                 __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
                 ... on RunConfigValidationInvalid { errors { message } } } }""",
            params={"selector": {**REPOSITORY, "jobName": "insights_job"},
                    "executionMetadata": {"tags": [{"key": "dagster/partition", "value": day}]}},
        )["launchRun"]
        if data["__typename"] != "LaunchRunSuccess":
            raise AssertionError(f"launchRun: {data}")
        self.insights_run = data["run"]["runId"]

    def step_insights(self) -> str:
        day = datetime.now(UTC).date().isoformat()
        run_id = self.insights_run
        if not run_id:
            raise AssertionError("the insights run was not launched")

        def finished() -> str | None:
            status = self.db.one("SELECT status FROM dagster_storage.runs WHERE run_id = %s", run_id)
            return status if status in ("SUCCESS", "FAILURE", "CANCELED") else None

        status = wait_until("the insights run", finished, SYNC_TIMEOUT)
        container = self.db.one("SELECT value FROM dagster_storage.run_tags WHERE run_id = %s "
                                "AND key = 'docker/container_id'", run_id)
        completed = self.db.one(
            "SELECT sum(runs_completed) FROM insights_sync_runs_daily WHERE day = %s", day
        )
        if status != "SUCCESS" or not container or not completed:
            raise AssertionError(f"insights run {status}, container {container}, runs_completed {completed}")
        return f"insights_job for {day} in a run container: {completed} completed runs counted"

    def slow_first_sync(self, label: str, email: str, latency: float) -> tuple[str, str, str]:
        """Connect an account whose listing Google answers slowly, so its first sync is still
        running in its container when the step acts on it: (job id, run id, container)."""
        assert self.emulator is not None
        self.emulator.call("POST", "faults", {"kind": "latency", "seconds": latency,
                                              "endpoint": "drive.files.list", "account": email})
        self.connect(label, email)
        job_id = self.first_job(label)
        return (job_id, *self.running_container(label, job_id))

    def step_kill(self) -> str:
        job_id, run_id, container = self.slow_first_sync("victim", "user3@example.com", 45.0)
        sh("docker", "kill", container)
        killed = time.monotonic()
        wait_until("run monitoring to fail the run", lambda: self.db.one(
            "SELECT status FROM dagster_storage.runs WHERE run_id = %s", run_id) == "FAILURE", 120)
        detected = time.monotonic() - killed
        row = self.wait_job(job_id, "failed", 120)
        self.emulator.call("DELETE", "faults")
        if not row["last_error"]:
            raise AssertionError("the failed job has no reason")
        again = self.sync_now("victim")
        self.wait_job(again)
        self.through_one_container(again)
        victim, clean = self.files("victim"), self.files("twin")
        if victim != clean:
            raise AssertionError(f"rows differ from the clean run: {len(victim)} vs {len(clean)}")
        reason = row["last_error"].split(":")[0]
        return (f"run failed {detected:.0f} s after the kill, job failed ({reason}); the next sync's "
                f"{len(victim)} rows equal a clean run's")

    def step_daemon_restart(self) -> str:
        assert self.compose is not None
        jobs = [self.sync_now(label) for label in ("alice", "bob", "twin")]
        wait_until("a run launched", lambda: any(self.runs_of_job(j) for j in jobs), 60, 0.5)
        states = [self.job(j)["status"] for j in jobs]
        self.compose.run("restart", "daemon", timeout=120)
        for job_id in jobs:
            self.wait_job(job_id, timeout=SYNC_TIMEOUT + 60)
        for job_id in jobs:
            runs = self.runs_of_job(job_id)
            # A (standby) batch run syncs many jobs of each account: count this job's completions,
            # those of its account in its run since it was asked for.
            events = self.db.one(
                "SELECT count(*) FROM activity_log e JOIN connector_jobs j ON j.id = %s::uuid "
                "WHERE e.event = 'connector_sync_completed' AND e.run_id = ANY(%s) "
                "AND e.account_id = j.account_id AND e.created_at >= j.created_at",
                job_id, [r[0] for r in runs])
            if len(runs) != 1 or events != 1:
                raise AssertionError(f"job {job_id}: {len(runs)} runs, {events} completions")
        return f"restarted with jobs {states}; each of the 3 completed once, in one run"

    def step_terminate(self) -> str:
        job_id, run_id, container = self.slow_first_sync("carol", "user4@example.com", 60.0)
        data = self.graphql(
            """mutation($runId: String!) { terminateRun(runId: $runId) {
                 __typename ... on TerminateRunFailure { message } ... on PythonError { message } } }""",
            runId=run_id,
        )["terminateRun"]
        if data["__typename"] != "TerminateRunSuccess":
            raise AssertionError(f"terminateRun: {data}")
        wait_until("the run container to stop", lambda: sh(
            "docker", "inspect", "-f", "{{.State.Running}}", container).stdout.strip() == "false", 60)
        wait_until("the run canceled", lambda: self.db.one(
            "SELECT status FROM dagster_storage.runs WHERE run_id = %s", run_id) == "CANCELED", 120)
        row = self.wait_job(job_id, "failed", 120)
        self.emulator.call("DELETE", "faults")
        if not row["last_error"] or "cancel" not in row["last_error"].lower():
            raise AssertionError(f"job closed with {row['last_error']!r}")
        return f"container stopped, run CANCELED, job failed: {row['last_error'][:80]}"

    def step_secrets(self) -> str:
        secrets = {"client secret": self.env["MONOLYTH_GOOGLE_CLIENT_SECRET"],
                   "token key": self.env["MONOLYTH_TOKEN_KEYS"],
                   "webhook secret": self.env["MONOLYTH_WEBHOOK_SECRET"]}
        for label in self.accounts:
            grant = self.stored_grant(label)
            secrets[f"{label} refresh token"] = grant["refresh_token"]
            if grant.get("token"):
                secrets[f"{label} access token"] = grant["token"]
        assert self.compose is not None
        places: dict[str, bytes] = {}
        containers = set(self.compose.container_ids()) | set(
            sh("docker", "ps", "-a", "-q", "--no-trunc", "--filter", "label=dagster/run_id").stdout.split())
        for cid in containers:
            logs = subprocess.run(["docker", "logs", cid], capture_output=True, timeout=60)
            places[f"logs of {cid[:12]}"] = logs.stdout + logs.stderr
        places["docker history"] = sh("docker", "history", "--no-trunc", self.tag).stdout.encode()
        places["event log"] = "\n".join(
            str(r[0]) for r in self.db.rows("SELECT event FROM dagster_storage.event_logs")).encode()
        places["run tags and config"] = "\n".join(
            str(r) for r in self.db.rows("SELECT run_body FROM dagster_storage.runs")).encode()
        leaks = [f"{what} in {where}" for where, blob in places.items()
                 for what, value in secrets.items() if value.encode() in blob]
        leaks += self.scan_image_files(secrets)
        if leaks:
            raise AssertionError("; ".join(leaks))
        return (f"{len(secrets)} secrets in none of {len(containers)} containers' logs, the image's "
                "history and files, Dagster's event log and runs")

    def scan_image_files(self, secrets: dict[str, str]) -> list[str]:
        cid = sh("docker", "create", self.tag).stdout.strip()
        try:
            export = subprocess.Popen(["docker", "export", cid], stdout=subprocess.PIPE)
            assert export.stdout is not None
            needles = {what: value.encode() for what, value in secrets.items()}
            keep = max(len(v) for v in needles.values())
            found, tail = set(), b""
            while chunk := export.stdout.read(1 << 20):
                window = tail + chunk
                found.update(what for what, value in needles.items() if value in window)
                tail = window[-keep:]
            export.wait()
        finally:
            sh("docker", "rm", "-f", cid, check=False)
        return [f"{what} in the image's files" for what in sorted(found)]

    # --- teardown -----------------------------------------------------------------------------
    def cpu_figures(self) -> None:
        ids = sh("docker", "ps", "-a", "-q", "--no-trunc", "--filter", "label=dagster/run_id",
                 check=False).stdout.split()
        seconds = sorted(self.sampler.usage[c] for c in ids if c in self.sampler.usage)
        if seconds:
            self.figures["CPU seconds per run container"] = (
                f"mean {sum(seconds) / len(seconds):.1f}, min {seconds[0]:.1f}, max {seconds[-1]:.1f} "
                f"over {len(seconds)} containers")

    def teardown(self) -> str:
        self.sampler.stop()
        problems = []
        if self.compose is not None:
            done = self.compose.run("--profile", "cli", "down", "--remove-orphans", "-t", "20",
                                    timeout=300, check=False)
            if done.returncode:
                problems.append(f"compose down: {done.stderr.strip()[-200:]}")
        runs = sh("docker", "ps", "-a", "-q", "--filter", f"ancestor={self.tag}", check=False).stdout.split()
        if runs and self.image_built:
            sh("docker", "rm", "-f", *runs, check=False)
        if self.image_built and sh("docker", "rmi", "-f", self.tag, check=False).returncode:
            problems.append(f"could not remove {self.tag}")
        if self.emulator is not None:
            self.emulator.stop()
        try:
            self.db.drop()
        except Exception as exc:
            problems.append(f"drop database: {exc}")
        self.engine.stop()
        if problems:
            raise RuntimeError("; ".join(problems))
        return f"containers, {self.tag}, database {self.db.name} removed"


def main() -> int:
    started = time.monotonic()
    check = Check()
    scenario = [
        ("connect through the consent page with the deployment client", check.step_connect),
        ("first syncs through run containers", check.step_first_sync),
        ("Sync now: pending row -> sensor -> run container -> completed", check.step_sync_now),
        ("schedule with the change probe: idle account no run, changed one a run", check.step_schedule),
        ("Drive push notification -> receiver -> one job -> one run", check.step_push),
        ("insights build in a launched run", check.step_insights),
        ("docker kill mid-sync -> run monitoring -> job failed -> next sync identical", check.step_kill),
        ("daemon restarted mid-queue -> every job completes once", check.step_daemon_restart),
        ("Terminate through the webserver's GraphQL API", check.step_terminate),
        ("no secret in logs, image or event log", check.step_secrets),
    ]
    try:
        ready = (
            check.step("Docker engine", check.engine.ensure)
            and check.step("base image", lambda: ensure_base_image(check.workdir))
            and check.step("image build (offline, wheels from deploy/requirements.lock)", check.build)
            and check.step("up: migrate, code server, webserver, daemon, webhook receiver", check.up)
        )
        for name, fn in scenario:
            if ready:
                check.step(name, fn)
            else:
                check.results.append((name, False, "not run: the deployment did not come up"))
                print(f"FAIL {name}: not run", flush=True)
        check.cpu_figures()
    finally:
        check.step("teardown", check.teardown)
    for name, value in check.figures.items():
        print(f"figure: {name}: {value}")
    print(f"figure: deploy-check total: {time.monotonic() - started:.0f} s")
    passed = sum(ok for _, ok, _ in check.results)
    print(f"deploy-check: {passed}/{len(check.results)} steps passed")
    return 0 if passed == len(check.results) else 1


if __name__ == "__main__":
    sys.exit(main())
