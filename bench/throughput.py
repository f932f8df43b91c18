"""Benchmark: what an incremental sync costs through the real daemon and run launcher.

``python bench/throughput.py [--accounts 200] [--files 60] [--repeats 3] [--launcher default]``

What runs for real, as an operator runs it: Postgres (the app tables and Dagster's storage, one
database each), the project's dagster.yaml with the pool limits `make dev` sets, ``dagster-daemon
run -w workspace.yaml`` (it starts the code server; sensors on, as they default), the default run
launcher (a process per run), and the emulator in its own process over HTTP. N Drive accounts of
``--files`` files each are connected and fully synced first (in this process, not measured), then:

- single click, ``--repeats`` times: one pending row inserted by SQL, as the app does, on an idle
  deployment (no run alive); row ``created_at`` to ``finished_at``;
- burst, ``--repeats`` times: one pending row for each of the N accounts in one INSERT; machine CPU
  (every process, from /proc/stat) from the insert to the last row closed, divided by N; rows'
  ``created_at`` to ``finished_at``, median and p95; the drain time and the syncs per hour it
  implies. The emulator's own CPU (Google's side in production) is reported apart and included
  in the machine figure.

Targets (issue 23): machine CPU per sync <= 0.5 s; >= 10,000 syncs an hour; a single click <= 10 s;
a burst of 200 drained in <= 120 s. Results: printed, and written to bench/results/throughput.json.
``--launcher docker`` is not built: the deployment's figures come from `make deploy-check`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.freshness import Emulator, cpu_of, wait_until  # noqa: E402
from monolyth_pipelines import providers  # noqa: E402
from monolyth_pipelines.defs.connector_asset import call_retry_policy  # noqa: E402
from monolyth_pipelines.defs.resources import GoogleApiResource  # noqa: E402
from monolyth_pipelines.store import token_crypto  # noqa: E402
from monolyth_pipelines.store.engine import make_engine  # noqa: E402
from monolyth_pipelines.store.migrate import upgrade  # noqa: E402
from monolyth_pipelines.store.schema import connector_accounts, connector_jobs  # noqa: E402
from monolyth_pipelines.sync.one_account import AccountSyncer  # noqa: E402
from monolyth_pipelines.sync.run import RunIdentity  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "throughput.json"
PG = "postgresql://postgres@127.0.0.1:5432"
BIN = Path(sys.executable).parent
TARGETS = {"cpu_per_sync_s": 0.5, "syncs_per_hour": 10_000, "single_click_s": 10.0, "burst_drain_s": 120.0}


def machine_cpu() -> float:
    """CPU seconds every process on the machine has used (all cores), from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def create_database(name: str) -> str:
    admin = sa.create_engine(f"{PG}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return f"{PG}/{name}"


def drop_database(name: str) -> None:
    admin = sa.create_engine(f"{PG}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def connect_and_first_sync(engine: sa.Engine, emu: Emulator) -> list[uuid.UUID]:
    """Every emulator account connected and fully synced once, through the sync path itself."""
    spec = providers.get("google_drive")
    with engine.begin() as conn:
        ring = token_crypto.key_ring(conn.dialect.name)
        rows = [
            {
                "id": uuid.uuid4(),
                "owner_id": uuid.uuid4(),
                "provider": "google_drive",
                "status": "connected",
                # Sealed as accounts.create_account seals it (the key ring of MONOLYTH_TOKEN_KEYS).
                "token_json": token_crypto.encrypt(ring, a["authorized_user"]),
                "external_email": a["email"],
            }
            for a in emu.accounts
        ]
        conn.execute(connector_accounts.insert(), rows)
    google = GoogleApiResource()
    syncer = AccountSyncer(
        engine=engine,
        sync_class=spec.load_sync_class(),
        clients_for=google.clients_for,
        check_endpoints=google.endpoints,
        call_policy=call_retry_policy,
        is_run_alive=lambda _run_id: False,
        stale_after=timedelta(minutes=10),
        log=lambda _msg: None,
    )

    def first(account_id: uuid.UUID) -> None:
        identity = RunIdentity(account_id, spec.provider, spec.kind, f"bench-first-sync-{account_id}")
        outcome = syncer.sync(identity, spec.limits.from_env(), may_retry=False)
        if outcome.meta is None:
            raise RuntimeError(f"first sync of {account_id} failed: {outcome.error}")

    ids = [r["id"] for r in rows]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(first, ids))
    return ids


def insert_clicks(engine: sa.Engine, account_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """What the app does on "Sync now" (docs/sync-now.md), for many accounts in one statement."""
    with engine.begin() as conn:
        rows = conn.execute(
            sa.text(
                "INSERT INTO connector_jobs (account_id, kind, status) "
                "SELECT unnest(CAST(:ids AS uuid[])), 'drive_import', 'pending' "
                "ON CONFLICT DO NOTHING RETURNING id"
            ),
            {"ids": [str(a) for a in account_ids]},
        ).scalars()
        return list(rows)


def closed(engine: sa.Engine, job_ids: list[uuid.UUID]) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(
                    connector_jobs.c.status,
                    connector_jobs.c.created_at,
                    connector_jobs.c.finished_at,
                    connector_jobs.c.run_id,
                    connector_jobs.c.last_error,
                ).where(
                    connector_jobs.c.id.in_(job_ids), connector_jobs.c.status.in_(["completed", "failed"])
                )
            )
        )


def busy(dagster_url: str, engine: sa.Engine) -> bool:
    """A job open, or a run alive other than a batch run (a standby batch run is always alive)."""
    dagster = sa.create_engine(dagster_url)
    with dagster.connect() as conn:
        live = conn.execute(
            sa.text(
                "SELECT count(*) FROM runs r WHERE r.status IN ('QUEUED','NOT_STARTED','STARTING','STARTED') "
                "AND NOT EXISTS (SELECT 1 FROM run_tags t "
                "WHERE t.run_id = r.run_id AND t.key = 'monolyth/batch')"
            )
        ).scalar_one()
    dagster.dispose()
    with engine.connect() as conn:
        open_jobs = conn.execute(
            sa.select(sa.func.count())
            .select_from(connector_jobs)
            .where(connector_jobs.c.status.in_(["pending", "running"]))
        ).scalar_one()
    return bool(live or open_jobs)


def runs_by_job(dagster_url: str) -> dict[str, int]:
    engine = sa.create_engine(dagster_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT pipeline_name, status, count(*) FROM runs GROUP BY 1, 2"))
        found = {f"{name} {status}": count for name, status, count in rows}
    engine.dispose()
    return found


def measure(engine: sa.Engine, emu: Emulator, account_ids: list[uuid.UUID], timeout: float) -> dict[str, Any]:
    cpu0, emu0, t0 = machine_cpu(), cpu_of(emu.proc.pid), time.monotonic()
    job_ids = insert_clicks(engine, account_ids)
    wait_until(lambda: len(closed(engine, job_ids)) == len(job_ids), timeout, f"{len(job_ids)} jobs to close")
    cpu = machine_cpu() - cpu0
    emulator_cpu = cpu_of(emu.proc.pid) - emu0
    wall = time.monotonic() - t0
    rows = closed(engine, job_ids)
    latencies = sorted((r.finished_at - r.created_at).total_seconds() for r in rows)
    drain = (max(r.finished_at for r in rows) - min(r.created_at for r in rows)).total_seconds()
    n = len(rows)
    return {
        "syncs": n,
        "completed": sum(1 for r in rows if r.status == "completed"),
        "runs": len({r.run_id for r in rows}),
        "machine_cpu_s": round(cpu, 2),
        "emulator_cpu_s": round(emulator_cpu, 2),
        "cpu_per_sync_s": round(cpu / n, 3),
        "cpu_per_sync_without_emulator_s": round((cpu - emulator_cpu) / n, 3),
        "wall_s": round(wall, 1),
        "drain_s": round(drain, 1),
        "syncs_per_hour": round(n / drain * 3600) if drain > 0 else None,
        "latency_median_s": round(statistics.median(latencies), 1),
        "latency_p95_s": round(latencies[max(0, int(0.95 * n) - 1)], 1),
        "errors": sorted({r.last_error.split(":")[0] for r in rows if r.last_error}),
    }


def wait_idle(dagster_url: str, engine: sa.Engine, timeout: float = 180) -> None:
    try:
        wait_until(lambda: not busy(dagster_url, engine), timeout, "an idle deployment")
    except RuntimeError:
        raise RuntimeError(f"still busy after {timeout} s: {runs_by_job(dagster_url)}") from None


def scenario(
    args: argparse.Namespace, engine: sa.Engine, emu: Emulator, account_ids: list[uuid.UUID], dagster_url: str
) -> int:
    """Idle cost, single clicks and bursts on a deployment that is up; prints and writes the report."""
    load = os.getloadavg()
    cpu0, t0 = machine_cpu(), time.monotonic()
    time.sleep(60)
    idle_cpu = (machine_cpu() - cpu0) / (time.monotonic() - t0)
    print(f"idle deployment: {idle_cpu:.3f} machine CPU s per second (daemon, code server, standby)")

    singles = []
    for i in range(args.repeats):
        result = measure(engine, emu, [account_ids[i]], 120)
        singles.append(result["latency_median_s"])
        print(f"single click {i + 1}: {result['latency_median_s']} s row -> completed")
        wait_idle(dagster_url, engine)
        time.sleep(5)
    bursts = []
    for i in range(args.repeats):
        result = measure(engine, emu, account_ids, 1800)
        bursts.append(result)
        print(
            f"burst {i + 1} of {result['syncs']}: {result['cpu_per_sync_s']} machine CPU s/sync "
            f"({result['cpu_per_sync_without_emulator_s']} without the emulator), "
            f"{result['syncs_per_hour']} syncs/h, drained in {result['drain_s']} s, "
            f"row -> completed median {result['latency_median_s']} s / p95 {result['latency_p95_s']} s, "
            f"{result['runs']} run(s), {result['completed']} completed"
        )
        wait_idle(dagster_url, engine)
        time.sleep(5)
    best = {
        "single_click_s": max(singles),
        "cpu_per_sync_s": max(b["cpu_per_sync_s"] for b in bursts),
        "syncs_per_hour": min(b["syncs_per_hour"] or 0 for b in bursts),
        "burst_drain_s": max(b["drain_s"] for b in bursts),
    }
    met = {
        "single_click_s": best["single_click_s"] <= TARGETS["single_click_s"],
        "cpu_per_sync_s": best["cpu_per_sync_s"] <= TARGETS["cpu_per_sync_s"],
        "syncs_per_hour": best["syncs_per_hour"] >= TARGETS["syncs_per_hour"],
        "burst_drain_s": best["burst_drain_s"] <= TARGETS["burst_drain_s"],
    }
    report = {
        "bench": "throughput",
        "launcher": args.launcher,
        "accounts": args.accounts,
        "files_per_account": args.files,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_before": load},
        "idle_machine_cpu_s_per_s": round(idle_cpu, 3),
        "batch_settings": {k: os.environ.get(k) for k in os.environ if k.startswith("MONOLYTH_SYNC_BATCH")},
        "single_click_s": singles,
        "bursts": bursts,
        "worst_of_repeats": best,
        "targets": TARGETS,
        "met": met,
        "dagster_runs_by_job": runs_by_job(dagster_url),
    }
    print(json.dumps({"worst_of_repeats": best, "met": met, "runs": report["dagster_runs_by_job"]}, indent=2))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {args.output}")
    return 0 if all(met.values()) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--files", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--launcher", choices=["default", "docker"], default="default")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.launcher == "docker":
        if args.output == RESULTS:
            args.output = RESULTS.with_name("throughput_docker.json")
        return docker_main(args)

    tag = f"{os.getpid()}"
    app_db, dagster_db = f"bench_tp_app_{tag}", f"bench_tp_dagster_{tag}"
    app_url, dagster_url = create_database(app_db), create_database(dagster_db)
    tmp = Path(tempfile.mkdtemp(prefix="bench-throughput-"))
    daemon: subprocess.Popen[bytes] | None = None
    emu = Emulator(tmp, args.accounts, args.files)
    try:
        home = tmp / "dagster"
        home.mkdir()
        config = yaml.safe_load((ROOT / "dagster.yaml").read_text())
        # psycopg2 for Dagster's storage, as deploy/dagster.yaml says why.
        storage_url = dagster_url.replace("postgresql://", "postgresql+psycopg2://", 1)
        config["storage"] = {"postgres": {"postgres_url": storage_url}}
        (home / "dagster.yaml").write_text(yaml.safe_dump(config))
        env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "MONOLYTH_DATABASE_URL": app_url,
            "MONOLYTH_GOOGLE_API_ENDPOINT": emu.url,
            "MONOLYTH_GOOGLE_TOKEN_URI": f"{emu.url}/token",
            "MONOLYTH_TOKEN_KEYS": os.environ.get("MONOLYTH_TOKEN_KEYS") or token_crypto.generate_key(),
            "PYTHONPATH": str(ROOT),
        }
        os.environ.update(
            {
                k: env[k]
                for k in (
                    "MONOLYTH_DATABASE_URL",
                    "MONOLYTH_GOOGLE_API_ENDPOINT",
                    "MONOLYTH_GOOGLE_TOKEN_URI",
                    "MONOLYTH_TOKEN_KEYS",
                )
            }
        )
        engine = make_engine(app_url)
        upgrade(engine)
        started = time.monotonic()
        account_ids = connect_and_first_sync(engine, emu)
        print(f"{len(account_ids)} accounts connected and fully synced in {time.monotonic() - started:.0f} s")
        for pool, limit in (("google_drive", 4), ("gmail", 2)):  # as `make dev` sets them
            subprocess.run(
                [str(BIN / "dagster"), "instance", "concurrency", "set", pool, str(limit)],
                env=env,
                check=True,
                capture_output=True,
            )
        log = (tmp / "daemon.log").open("wb")
        daemon = subprocess.Popen(
            [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        # The partition sensor adds every account's key; then the deployment is idle.
        time.sleep(40)
        wait_idle(dagster_url, engine)
        return scenario(args, engine, emu, account_ids, dagster_url)
    finally:
        if daemon is not None:
            daemon.terminate()
            try:
                daemon.wait(60)
            except subprocess.TimeoutExpired:
                daemon.kill()
        emu.stop()
        time.sleep(2)
        drop_database(app_db)
        drop_database(dagster_db)
        if sys.exc_info()[0] is None:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"kept {tmp} (daemon.log) for the failure above")


class _EmulatorForCheck:
    """What deploy/check.py's Check reads of its emulator (``base``, ``call``, ``stop``)."""

    def __init__(self, emu: Emulator) -> None:
        self.emu, self.base = emu, emu.url

    def call(self, method: str, path: str, body: Any = None) -> Any:
        return self.emu.admin(method, path, body)

    def stop(self) -> None:
        self.emu.stop()


def docker_main(args: argparse.Namespace) -> int:
    """The deployment of deploy/ on Docker (deploy/check.py brings it up: the offline image, the
    compose services, the Docker run launcher), then the same scenario; a run is a container."""
    sys.path.insert(0, str(ROOT / "deploy"))
    import check as deploy_check  # deploy/check.py
    from check_infra import Compose, ensure_base_image

    check = deploy_check.Check()
    tmp = Path(tempfile.mkdtemp(prefix="bench-throughput-docker-"))
    emu = Emulator(tmp, args.accounts, args.files)
    check.emulator = _EmulatorForCheck(emu)  # type: ignore[assignment]
    try:
        check.engine.ensure()
        ensure_base_image(check.workdir)
        check.build()
        check.db.create()
        env_file = check.write_env()
        check.compose = Compose(check.project, env_file, check.write_override(), check.env)
        check.compose.run("up", "-d", "--no-color", timeout=600)
        for service in ("code", "webserver", "webhook"):
            wait_until(lambda s=service: check.health(s) == "healthy", 300, f"{service} healthy")
        wait_until(check.daemon_healthy, 300, "the daemon's heartbeats")
        for name in (
            "MONOLYTH_DATABASE_URL",
            "MONOLYTH_GOOGLE_API_ENDPOINT",
            "MONOLYTH_GOOGLE_TOKEN_URI",
            "MONOLYTH_TOKEN_KEYS",
        ):
            os.environ[name] = check.env[name]
        engine = make_engine(check.db.url)
        started = time.monotonic()
        account_ids = connect_and_first_sync(engine, emu)
        print(f"{len(account_ids)} accounts connected and fully synced in {time.monotonic() - started:.0f} s")
        time.sleep(40)
        dagster_url = f"{check.db.url}?options=-csearch_path%3Ddagster_storage"
        wait_idle(dagster_url, engine)
        return scenario(args, engine, emu, account_ids, dagster_url)
    finally:
        check.teardown()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
