"""Reliability drills: a Drive sync meets one fault each, and must hold.

``python bench/drills.py [--files N] [--database-url URL] [--seed S]``

Postgres (``--database-url``, else ``MONOLYTH_BENCH_POSTGRES_URL`` / ``MONOLYTH_TEST_POSTGRES_URL``,
else the local server): a throwaway database is created and dropped. The Google emulator runs in
its own process (``monolyth-connectors emulator serve``), driven over its admin API. Each sync is
the ``google_drive_files`` asset materialised in this process with the real resources (the kill
drill runs the CLI in a child process, so that it can be killed). "Identical" compares every
``connector_files`` column a user reads with a clean sync of the same Google account into a
second connector account.

Drills (one row each, written to ``bench/results/drills.json``):

* ``google_errors``: 20% of Google calls answer 429/500/503 → the tables equal a clean run's.
* ``kill_9``: the sync process is killed with SIGKILL after a random page; a new run after
  ``MONOLYTH_STALE_JOB_SECONDS`` takes the job over → identical, nothing fetched twice.
* ``database_connections_killed``: from page 1 on, for 1.5 s, Postgres terminates the run's
  connections every 50 ms (``pg_terminate_backend``, found by their ``application_name``), idle
  ones and ones in the middle of a page commit → the run completes. The shared server is not
  restarted: other work uses it. A restart does the same to a run's connections (and refuses
  new ones for a moment, which the same retries ride out).
* ``token_revoked``: the grant is revoked after page 1 → job ``failed`` ``auth_revoked``, account
  ``error``, one refresh attempt and no retry beyond it.
* ``database_read_only``: the database turns read-only after page 1
  (``ALTER DATABASE .. SET default_transaction_read_only``, then its sessions are ended) → the run
  fails with ``database_unwritable``, the rows are exactly the committed pages', and once the
  database is writable again the next run completes them → identical.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import dagster as dg  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from monolyth_pipelines.defs.local_run import materialize_account  # noqa: E402
from monolyth_pipelines.store import accounts, jobs  # noqa: E402
from monolyth_pipelines.store.engine import make_engine  # noqa: E402
from monolyth_pipelines.store.migrate import upgrade  # noqa: E402
from monolyth_pipelines.store.schema import connector_files, vault_documents  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "drills.json"
STALE_SECONDS = 3
ENV = {
    # Fast backoff so that a drill takes seconds; the production defaults are in README.md.
    "MONOLYTH_RETRY_BASE_SECONDS": "0.05",
    "MONOLYTH_RETRY_CAP_SECONDS": "1",
    "MONOLYTH_STEP_RETRY_WAIT_SECONDS": "1",
    "MONOLYTH_DB_RETRY_BASE_SECONDS": "0.2",
    "MONOLYTH_DB_RETRY_CAP_SECONDS": "2",
    "MONOLYTH_STALE_JOB_SECONDS": str(STALE_SECONDS),
    "MAX_FILES_PER_RUN": "1000000",
}
VAULT = {"ops": {"google_drive_files": {"config": {"persistence": "vault"}}}}


# --- the emulator, in its own process ---------------------------------------------------------
class Emulator:
    def __init__(self, workdir: Path) -> None:
        info_file = workdir / "accounts.json"
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "monolyth_pipelines.cli", "emulator", "serve", "--port", "0"),
                *("--accounts", "0", "--accounts-file", str(info_file)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while not info_file.exists() or not info_file.stat().st_size:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the emulator did not start")
            time.sleep(0.1)
        time.sleep(0.2)
        info = json.loads(info_file.read_text())
        self.base, self.token_uri = info["base_url"], info["token_uri"]

    def admin(self, path: str, body: dict[str, Any] | None = None, method: str | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            f"{self.base}/_emulator/{path}", data=data, method=method or ("POST" if data else "GET")
        )
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=600) as resp:
            return json.loads(resp.read() or b"null")

    def add_account(self, email: str, files: int) -> dict[str, Any]:
        made = self.admin(f"accounts?token_uri={self.token_uri}", {"email": email, "drive_files": files})
        return dict(made["authorized_user"])

    def fault(self, **rule: Any) -> None:
        self.admin("faults", rule)

    def clear_faults(self) -> None:
        self.admin("faults", method="DELETE")

    def totals(self) -> dict[str, Any]:
        return dict(self.admin("stats")["total"])

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


# --- the database -----------------------------------------------------------------------------
class Database:
    """A throwaway Postgres database, with the connector schema."""

    def __init__(self, admin_url: str, name: str) -> None:
        self.admin = make_engine(admin_url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
        self.name = name
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        self.url = str(sa.make_url(admin_url).set(database=name))
        self.engine = make_engine(self.url)
        upgrade(self.engine)

    def run_url(self, app_name: str) -> str:
        return str(sa.make_url(self.url).update_query_dict({"application_name": app_name}))

    def terminate(self, app_name: str) -> int:
        with self.admin.connect() as conn:
            return int(
                conn.execute(
                    sa.text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = :db AND application_name = :app"
                    ),
                    {"db": self.name, "app": app_name},
                ).scalar_one()
            )

    def read_only(self, on: bool) -> None:
        with self.admin.connect() as conn:
            verb = "SET default_transaction_read_only = on" if on else "RESET default_transaction_read_only"
            conn.exec_driver_sql(f'ALTER DATABASE "{self.name}" {verb}')

    def drop(self) -> None:
        self.engine.dispose()
        with self.admin.connect() as conn:
            conn.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                f"WHERE datname = '{self.name}' AND pid <> pg_backend_pid()"
            )
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{self.name}"')
        self.admin.dispose()


# --- helpers ----------------------------------------------------------------------------------
def connect(db: Database, token_json: dict[str, Any]) -> uuid.UUID:
    with db.engine.begin() as conn:
        return accounts.create_account(
            conn, owner_id=uuid.uuid4(), provider="google_drive", token_json=token_json
        )


def table(db: Database, account_id: uuid.UUID) -> list[tuple[Any, ...]]:
    """What a user reads of an account's rows, comparable across two accounts."""
    c = connector_files.c
    with db.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                c.external_id, c.title, c.mime, c.size, c.modified_at, c.url, c.meta_json, c.deleted_reason
            )
            .where(c.account_id == account_id, c.deleted_at.is_(None))
            .order_by(c.external_id)
        ).all()
    return [(*r[:6], json.dumps(r.meta_json, sort_keys=True), r.deleted_reason) for r in rows]


def vault_table(db: Database, account_id: uuid.UUID) -> list[tuple[Any, ...]]:
    v = vault_documents.c
    with db.engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.select(v.external_id, v.title, v.mime, v.size, sa.func.md5(v.content))
                .where(v.account_id == account_id)
                .order_by(v.external_id)
            )
        ]


def job_rows(db: Database, account_id: uuid.UUID) -> list[jobs.Job]:
    with db.engine.connect() as conn:
        return jobs.jobs_for_account(conn, account_id)


def account_status(db: Database, account_id: uuid.UUID) -> str:
    with db.engine.connect() as conn:
        account = accounts.get_account(conn, account_id)
    assert account is not None
    return str(account.status)


def sync(
    instance: dg.DagsterInstance, account_id: uuid.UUID, url: str, config: dict[str, Any] | None = None
) -> dg.ExecuteInProcessResult:
    return materialize_account(
        "google_drive", account_id, instance=instance, database_url=url, run_config=config
    )


def logged_errors(instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult) -> str:
    return "\n".join(str(e.user_message) for e in instance.all_logs(result.dagster_run.run_id))


def at_page(db: Database, account_id: uuid.UUID, page: int, action: Callable[[], None]) -> threading.Thread:
    """Run ``action`` once the account's running job has committed ``page`` pages."""

    since = datetime.now(UTC)

    def watch() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            held = job_rows(db, account_id)
            running = [j for j in held if j.status == "running"]
            if running and ((running[0].meta_json or {}).get("counters") or {}).get("pages", 0) >= page:
                action()
                return
            if not running and held and held[-1].created_at.astimezone(UTC) >= since:
                return  # the run ended before that page: the drill reports what happened
            time.sleep(0.02)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


# --- the drills -------------------------------------------------------------------------------
class Drills:
    def __init__(
        self, emu: Emulator, db: Database, instance: dg.DagsterInstance, files: int, seed: int
    ) -> None:
        self.emu, self.db, self.instance, self.files = emu, db, instance, files
        self.rng = random.Random(seed)
        self.workdir = Path(tempfile.mkdtemp(prefix="drills-"))

    def account(
        self, name: str, files: int | None = None
    ) -> tuple[str, dict[str, Any], uuid.UUID, uuid.UUID]:
        email = f"{name}-{uuid.uuid4().hex[:6]}@example.com"
        token = self.emu.add_account(email, files or self.files)
        return email, token, connect(self.db, token), connect(self.db, token)

    def clean(self, twin: uuid.UUID, config: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        result = sync(self.instance, twin, self.db.url, config)
        assert result.success, "the clean reference run failed"
        return table(self.db, twin)

    def google_errors(self) -> dict[str, Any]:
        email, _, drilled, twin = self.account("errors", files=max(200, self.files // 10))
        self.emu.fault(kind="error_rate", rate=0.2, statuses=[429, 500, 503], account=email)
        before = self.emu.totals()["totals"]["faults_injected"]
        result = sync(self.instance, drilled, self.db.url, VAULT)
        injected = self.emu.totals()["totals"]["faults_injected"] - before
        self.emu.clear_faults()
        job = job_rows(self.db, drilled)[-1]
        identical = table(self.db, drilled) == self.clean(twin, VAULT)
        same_vault = vault_table(self.db, drilled) == vault_table(self.db, twin)
        return {
            "held": result.success and identical and same_vault and injected > 0,
            "outcome": f"{job.status}, attempts {job.attempts}",
            "detail": f"{injected} errors injected, {job.meta_json['counters']['retries']} retried; "
            f"{len(table(self.db, drilled))} rows and Vault identical to a clean run: "
            f"{identical and same_vault}",
        }

    def kill_9(self) -> dict[str, Any]:
        email, _, drilled, twin = self.account("kill")
        self.emu.fault(kind="latency", seconds=0.4, endpoint="drive.files.list", account=email)
        page = self.rng.randint(1, 2)
        env = {
            **os.environ,
            "MONOLYTH_DATABASE_URL": self.db.url,
            "MONOLYTH_DATA_DIR": str(self.workdir / "cli"),
            "MONOLYTH_GOOGLE_API_ENDPOINT": self.emu.base,
            "MONOLYTH_GOOGLE_TOKEN_URI": self.emu.token_uri,
        }
        env.pop("DAGSTER_HOME", None)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "monolyth_pipelines.cli",
                "sync",
                "google_drive",
                "--account",
                str(drilled),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        at_page(self.db, drilled, page, lambda: proc.send_signal(signal.SIGKILL)).join(timeout=300)
        proc.kill()
        proc.wait()
        killed = job_rows(self.db, drilled)[-1]
        partial = len(table(self.db, drilled))
        self.emu.clear_faults()
        time.sleep(STALE_SECONDS + 0.5)
        result = sync(self.instance, drilled, self.db.url)
        killed_after, resumed = job_rows(self.db, drilled)[-2:]
        identical = table(self.db, drilled) == self.clean(twin)
        inserted = resumed.meta_json["counters"]["inserted"]
        return {
            "held": result.success
            and identical
            and killed.status == "running"
            and killed_after.status == "failed"
            and (killed_after.last_error or "").startswith("run_died")
            and inserted == len(table(self.db, drilled)) - partial,
            "outcome": f"killed after page {page}; next run {resumed.status}",
            "detail": f"{partial} rows before the kill; the killed job closed {killed_after.status} "
            f"({(killed_after.last_error or '').split(':')[0]}); the next run inserted {inserted} more; "
            f"identical to a clean run: {identical}",
        }

    def database_connections_killed(self) -> dict[str, Any]:
        email, _, drilled, twin = self.account("dbkill")
        self.emu.fault(kind="latency", seconds=0.3, endpoint="drive.files.list", account=email)
        app = f"drill-{uuid.uuid4().hex[:8]}"
        killed: list[int] = []

        def outage() -> None:
            # For 1.5 s the run's connections die as soon as they exist, in the middle of page
            # commits too: a restart or failover as the run sees it.
            until = time.monotonic() + 1.5
            while time.monotonic() < until:
                killed.append(self.db.terminate(app))
                time.sleep(0.05)

        watcher = at_page(self.db, drilled, 1, outage)
        started = time.monotonic()
        result = sync(self.instance, drilled, self.db.run_url(app))
        seconds = time.monotonic() - started
        watcher.join(5)
        self.emu.clear_faults()
        job = job_rows(self.db, drilled)[-1]
        identical = table(self.db, drilled) == self.clean(twin)
        counters = job.meta_json["counters"]
        return {
            "held": result.success and identical and job.status == "completed" and sum(killed) > 0,
            "outcome": f"{job.status}, attempts {job.attempts}",
            "detail": f"{sum(killed)} connections terminated over 1.5 s; "
            f"{counters['database_retries']} page commits written again; {seconds:.1f} s; "
            f"identical to a clean run: {identical}",
        }

    def token_revoked(self) -> dict[str, Any]:
        email, _, drilled, _ = self.account("revoked")
        self.emu.fault(kind="latency", seconds=0.3, endpoint="drive.files.list", account=email)
        before: dict[str, Any] = {}

        def revoke() -> None:
            before.update(self.emu.totals())
            self.emu.admin(f"accounts/{email}/revoke", {})

        at_page(self.db, drilled, 1, revoke)
        result = sync(self.instance, drilled, self.db.url)
        after = self.emu.totals()
        self.emu.clear_faults()
        job = job_rows(self.db, drilled)[-1]
        refreshes = after["api_calls"].get("oauth.token", 0) - before["api_calls"].get("oauth.token", 0)
        unauthorised = sum(
            codes.get("401", 0) - before["statuses"].get(ep, {}).get("401", 0)
            for ep, codes in after["statuses"].items()
        )
        status = account_status(self.db, drilled)
        return {
            "held": not result.success
            and job.status == "failed"
            and (job.last_error or "").startswith("auth_revoked")
            and status == "error"
            and job.attempts == 1
            and refreshes <= 1
            and unauthorised <= 1,
            "outcome": f"{job.status} ({(job.last_error or '').split(':')[0]}), account {status}",
            "detail": f"after the revocation: {unauthorised} call answered 401, {refreshes} refresh "
            f"attempt, {job.attempts} attempt; {len(table(self.db, drilled))} rows of the pages before "
            "it kept",
        }

    def database_read_only(self) -> dict[str, Any]:
        email, _, drilled, twin = self.account("readonly")
        self.emu.fault(kind="latency", seconds=0.3, endpoint="drive.files.list", account=email)
        app = f"drill-{uuid.uuid4().hex[:8]}"

        def freeze() -> None:
            self.db.read_only(True)
            self.db.terminate(app)  # sessions opened from now on are read-only

        at_page(self.db, drilled, 1, freeze)
        try:
            result = sync(self.instance, drilled, self.db.run_url(app))
            message = logged_errors(self.instance, result)
        finally:
            self.db.read_only(False)
            self.db.engine.dispose()
        stuck = job_rows(self.db, drilled)[-1]
        committed = ((stuck.meta_json or {}).get("counters") or {}).get("inserted")
        rows = len(table(self.db, drilled))
        self.emu.clear_faults()
        time.sleep(STALE_SECONDS + 0.5)
        again = sync(self.instance, drilled, self.db.url)
        identical = table(self.db, drilled) == self.clean(twin)
        return {
            "held": not result.success
            and "database_unwritable" in message
            and rows == committed
            and again.success
            and identical,
            "outcome": "failed: database_unwritable",
            "detail": f"{rows} rows = the {committed} the last committed page recorded "
            "(nothing half-written); "
            f"job row left {stuck.status} (the database refused the write) and taken over by the next "
            f"run, which completed: identical to a clean run: {identical}",
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=6000, help="Drive files per drilled account")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("MONOLYTH_BENCH_POSTGRES_URL")
        or os.environ.get("MONOLYTH_TEST_POSTGRES_URL")
        or "postgresql://postgres@127.0.0.1:5432/postgres",
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="drills-emu-"))
    emu = Emulator(workdir)
    os.environ.update(ENV, MONOLYTH_GOOGLE_API_ENDPOINT=emu.base, MONOLYTH_GOOGLE_TOKEN_URI=emu.token_uri)
    db = Database(args.database_url, f"drills_{uuid.uuid4().hex[:8]}")
    rows: list[dict[str, Any]] = []
    try:
        with dg.instance_for_test() as instance:
            drills = Drills(emu, db, instance, args.files, args.seed)
            print(f"{'drill':<30} {'held':<5} {'seconds':>8}  outcome / detail", flush=True)
            for name in (
                "google_errors",
                "kill_9",
                "database_connections_killed",
                "token_revoked",
                "database_read_only",
            ):
                started = time.monotonic()
                try:
                    row = getattr(drills, name)()
                except Exception as exc:  # a drill that breaks is a drill that did not hold
                    row = {"held": False, "outcome": "drill error", "detail": f"{type(exc).__name__}: {exc}"}
                row = {"drill": name, **row, "seconds": round(time.monotonic() - started, 1)}
                rows.append(row)
                print(
                    f"{name:<30} {'yes' if row['held'] else 'NO':<5} {row['seconds']:>8}  "
                    f"{row['outcome']}; {row['detail']}",
                    flush=True,
                )
    finally:
        db.drop()
        emu.stop()
    report = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "database": "postgres (throwaway database)",
        "files_per_account": args.files,
        "all_held": all(r["held"] for r in rows),
        "drills": rows,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"all held: {report['all_held']} -> {RESULTS.relative_to(ROOT)}")
    return 0 if report["all_held"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
