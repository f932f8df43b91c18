"""Benchmark: freshness at scale. N connected Drive accounts (default 10,000, small drives) in the
emulator, 1% of them changing in a simulated hour, with push on and with push off.

``python bench/freshness.py [--accounts 10000] [--change-rate 0.01] [--files 3]``

What runs for real: the emulator (its own process, real HTTP), the webhook receiver (its own
process, ``monolyth-connectors webhook serve``, push mode), the app database (SQLite file), a
Dagster instance, the schedule's evaluation with the change probe, the connector_sync_requests
sensor's evaluation, and each run it asks for (a Dagster run of the account's partition,
``materialize`` in this process, one after another as with a per-provider cap of one).

What it leaves out: what a deployment pays to start each run (a process or container, the
definitions import, Dagster's run start-up and its event writes), and the batching of incremental
jobs into one run per provider that the sensor does in a deployment (defs/batch_sync.py). Its
"CPU seconds of the runs" are the syncs' own work; ``bench/throughput.py`` measures the rest
through the real daemon and launcher (docs/benchmarks.md, "Throughput").

What is simulated: the clock. A simulated hour advances in 15-second steps, the sync-requests
sensor's interval; each step's real processing time is added to the simulated clock 1:1 when
measuring delays (a change at simulated time t, its row committed d real seconds into the step
that ran it at simulated time T: delay = T + d - t). Changes (a new PDF in the account's Drive) land
at uniformly random simulated times. The schedule (with its probe) ticks at the top of the hour:
push off, every account whose last job or check is older than the hour is probed; push on, only
those older than MONOLYTH_PUSH_POLL_HOURS (6 h; the accounts' last jobs are seeded spread over the
7 hours before, so about a sixth are due, as in a steady state). Channels are registered before the
hour starts; their renewal (one watch + one stop per account per MONOLYTH_PUSH_CHANNEL_HOURS) is
added to the per-hour Google requests pro rata, not run. Access tokens outlive the bench, so no
token refresh is counted (with Google's one-hour tokens a probe adds one refresh per account-hour).

Printed and written to ``bench/results/freshness.json``: median and p95 delay from a change in the
emulator to its row in connector_files, runs launched, Google requests in the hour (emulator
stats: every API call, by method), CPU seconds of the daemon side (schedule + probes + sensor
evaluations in this process, plus the receiver process) and of the runs. Targets: push p95 < 120 s;
runs <= 1.2x changed accounts; push off, p95 under the polling cadence (3600 s).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import dagster as dg  # noqa: E402

from monolyth_pipelines.defs import automation  # noqa: E402
from monolyth_pipelines.defs.local_run import materialize_account  # noqa: E402
from monolyth_pipelines.defs.partitions import TAG_JOB_ID  # noqa: E402
from monolyth_pipelines.defs.resources import DatabaseResource  # noqa: E402
from monolyth_pipelines.settings import FreshnessSettings  # noqa: E402
from monolyth_pipelines.store.engine import make_engine  # noqa: E402
from monolyth_pipelines.store.migrate import upgrade  # noqa: E402
from monolyth_pipelines.store.schema import (  # noqa: E402
    connector_accounts,
    connector_files,
    connector_jobs,
    connector_sync_state,
)
from monolyth_pipelines.sync import push  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "freshness.json"
STEP = 15.0  # the sync-requests sensor's interval
HOUR = 3600.0
PDF = "application/pdf"
CLI = [sys.executable, "-m", "monolyth_pipelines.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


def cpu_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.2)


class Emulator:
    def __init__(self, tmp: Path, accounts: int, files: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        accounts_file = tmp / f"accounts-{self.port}.json"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "monolyth_pipelines.emulator",
                "serve",
                "--port",
                str(self.port),
                "--accounts",
                str(accounts),
                "--drive-files",
                str(files),
                "--gmail-threads",
                "0",
                "--token-lifetime",
                "86400",
                "--accounts-file",
                str(accounts_file),
            ],
            stdout=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        wait_until(accounts_file.exists, 900, "the emulator's accounts")
        time.sleep(0.5)
        self.accounts = json.loads(accounts_file.read_text())["accounts"]

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        return http(method, f"{self.url}/_emulator/{path}", body)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def seed(engine: sa.Engine, emu: Emulator, *, push_on: bool) -> dict[str, uuid.UUID]:
    """Every emulator account connected, synced once (cursor = its start page token), last job in the past."""
    now = datetime.now(UTC)
    rng = random.Random(7)
    with ThreadPoolExecutor(16) as pool:
        tokens = list(
            pool.map(lambda a: emu.admin("GET", f"accounts/{a['email']}")["start_page_token"], emu.accounts)
        )
    ids = {a["email"]: uuid.uuid4() for a in emu.accounts}
    accounts, states, jobs = [], [], []
    for account, token in zip(emu.accounts, tokens, strict=True):
        account_id = ids[account["email"]]
        # Push off: every account is due at the hour. Push on: last jobs spread over 7 h, so the
        # safety-net probe (6 h) finds about a sixth due, as it would in a steady state.
        age = timedelta(hours=2) if not push_on else timedelta(hours=rng.uniform(1.05, 7.0))
        accounts.append(
            {
                "id": account_id,
                "owner_id": uuid.uuid4(),
                "provider": "google_drive",
                "status": "connected",
                "token_json": account["authorized_user"],
                "created_at": now - timedelta(days=1),
                "updated_at": now - timedelta(days=1),
            }
        )
        states.append(
            {"account_id": account_id, "corpus": "drive", "cursor": str(token), "updated_at": now - age}
        )
        jobs.append(
            {
                "id": uuid.uuid4(),
                "account_id": account_id,
                "kind": "drive_import",
                "status": "completed",
                "attempts": 1,
                "meta_json": {"requested_by": "first_sync"},
                "created_at": now - age,
                "updated_at": now - age,
                "started_at": now - age,
                "finished_at": now - age,
            }
        )
    with engine.begin() as conn:
        conn.execute(connector_accounts.insert(), accounts)
        conn.execute(connector_sync_state.insert(), states)
        conn.execute(connector_jobs.insert(), jobs)
    return ids


def api_calls(emu: Emulator) -> dict[str, int]:
    return emu.admin("GET", "stats")["total"]["api_calls"]


def run_mode(tmp: Path, args: argparse.Namespace, *, push_on: bool) -> dict[str, Any]:
    mode = "push_on" if push_on else "push_off"
    print(
        f"{mode}: starting the emulator with {args.accounts} accounts of {args.files} files ...", flush=True
    )
    started = time.monotonic()
    emu = Emulator(tmp, args.accounts, args.files)
    db_url = f"sqlite:///{tmp}/{mode}.db"
    engine = make_engine(db_url)
    upgrade(engine)
    ids = seed(engine, emu, push_on=push_on)
    env = {
        "MONOLYTH_DATABASE_URL": db_url,
        "MONOLYTH_GOOGLE_API_ENDPOINT": emu.url,
        "MONOLYTH_GOOGLE_TOKEN_URI": f"{emu.url}/token",
        # The whole fleet in one tick: see docs/operations.md for sizing the probe.
        "MONOLYTH_PROBE_TIME_BUDGET_SECONDS": "900",
        "MONOLYTH_PROBE_REQUESTS_PER_SECOND": "2000",
    }
    receiver = None
    if push_on:
        port = free_port()
        env["MONOLYTH_WEBHOOK_URL"] = f"http://127.0.0.1:{port}"
        receiver = subprocess.Popen(
            [*CLI, "webhook", "serve", "--port", str(port)],
            env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: _up(f"http://127.0.0.1:{port}/healthz"), 60, "the receiver")
    os.environ.update(env)
    if push_on:
        registered = 0
        while True:
            done = push.maintain_channels(engine, ["google_drive"])
            registered += sum(done.registered.values())
            if not done.registered:
                break
        print(f"  {registered} channels registered", flush=True)
    print(f"  set up in {time.monotonic() - started:.0f} s", flush=True)
    emu.admin("POST", "stats/reset")

    rng = random.Random(11)
    emails = list(ids)
    changed = rng.sample(emails, max(1, int(len(emails) * args.change_rate)))
    changes = sorted((rng.uniform(0, HOUR), email) for email in changed)
    pending = {email: (t, f"change-{i}.pdf") for i, (t, email) in enumerate(changes)}
    delays: list[float] = []
    runs = 0
    cpu = {"daemon": 0.0, "runs": 0.0}
    receiver_cpu_before = cpu_of(receiver.pid) if receiver else 0.0
    db = DatabaseResource(url=db_url)
    auto = automation.build_automation(automation.enabled_automations())
    sync_sensor = next(s for s in auto.sensors if s.name == "connector_sync_requests")
    schedule = auto.schedules[0]
    probe_summary = ""
    with dg.instance_for_test() as instance:
        sim = 0.0
        next_change = 0
        end = HOUR + 4 * STEP
        while sim <= end and (sim <= HOUR or any(t <= sim for t, _ in pending.values())):
            step_started = time.monotonic()
            applied_at = datetime.now(UTC)
            step_changed = []
            while next_change < len(changes) and changes[next_change][0] <= sim:
                t, email = changes[next_change]
                body = {"name": pending[email][1], "mime_type": PDF, "size": 1000}
                emu.admin("POST", f"accounts/{email}/drive/create_file", body)
                step_changed.append(ids[email])
                next_change += 1
            if push_on:
                _wait_for_notifications(engine, step_changed, applied_at)
            # The schedule's probes run on a thread pool: the whole process's CPU. The sensor runs
            # on this thread only: its own CPU, so threads a finished Dagster run left behind are
            # not billed to it.
            c0 = time.process_time()
            if sim > 0 and sim % HOUR == 0:
                with dg.build_schedule_context(
                    instance=instance, resources={"db": db}, scheduled_execution_time=datetime.now(UTC)
                ) as context:
                    probe_summary = schedule(context).skip_message
                print(f"  t={sim:5.0f}s schedule: {probe_summary}", flush=True)
            cpu["daemon"] += time.process_time() - c0
            t0 = time.thread_time()
            with dg.build_sensor_context(instance=instance, resources={"db": db}) as context:
                result = sync_sensor(context)
            cpu["daemon"] += time.thread_time() - t0
            for request in result.run_requests or []:
                c1 = time.process_time()
                materialize_account(
                    "google_drive",
                    uuid.UUID(request.partition_key),
                    instance=instance,
                    tags=dict(request.tags),
                    database_url=db_url,
                )
                cpu["runs"] += time.process_time() - c1
                runs += 1
                email = next(e for e, i in ids.items() if str(i) == request.partition_key)
                if email in pending and _row_exists(engine, ids[email], pending[email][1]):
                    t, _ = pending.pop(email)
                    delays.append(sim + (time.monotonic() - step_started) - t)
                assert request.tags[TAG_JOB_ID]
            sim += STEP
        google = api_calls(emu)
    receiver_cpu = (cpu_of(receiver.pid) - receiver_cpu_before) if receiver else 0.0
    if receiver:
        receiver.terminate()
        receiver.wait(30)
    emu.stop()
    for key in env:
        os.environ.pop(key, None)
    cfg = FreshnessSettings()
    renewals = (2 * len(emails) / cfg.channel_hours) if push_on else 0.0
    requests_hour = sum(google.values()) + renewals
    delays.sort()
    row = {
        "mode": mode,
        "accounts": len(emails),
        "changed_accounts": len(changed),
        "changes_synced": len(delays),
        "changes_missed": len(pending),
        "delay_median_s": round(statistics.median(delays), 1) if delays else None,
        "delay_p95_s": round(delays[int(0.95 * (len(delays) - 1))], 1) if delays else None,
        "delay_max_s": round(delays[-1], 1) if delays else None,
        "runs_launched": runs,
        "runs_per_changed_account": round(runs / len(changed), 2),
        "google_requests_per_hour": round(requests_hour),
        "google_requests_by_method": google,
        "channel_renewal_requests_per_hour": round(renewals),
        "cpu_s_per_hour_daemon": round(cpu["daemon"] + receiver_cpu, 1),
        "cpu_s_per_hour_receiver": round(receiver_cpu, 1),
        "cpu_s_per_hour_runs": round(cpu["runs"], 1),
        "schedule": probe_summary,
        "wall_seconds": round(time.monotonic() - started, 1),
    }
    print(
        f"  delay median {row['delay_median_s']} s, p95 {row['delay_p95_s']} s; runs {runs} for "
        f"{len(changed)} changed accounts; Google requests/h {row['google_requests_per_hour']}; CPU s/h "
        f"daemon {row['cpu_s_per_hour_daemon']} (receiver {row['cpu_s_per_hour_receiver']}), runs "
        f"{row['cpu_s_per_hour_runs']}",
        flush=True,
    )
    return row


def _up(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False


def _wait_for_notifications(
    engine: sa.Engine, account_ids: list[uuid.UUID], since: datetime, timeout: float = 5.0
) -> None:
    """Until each account changed in this step has a job queued after the change (by the receiver)."""
    if not account_ids:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            have = conn.execute(
                sa.select(sa.func.count(sa.distinct(connector_jobs.c.account_id))).where(
                    connector_jobs.c.account_id.in_(account_ids), connector_jobs.c.created_at >= since
                )
            ).scalar_one()
        if have >= len(account_ids):
            return
        time.sleep(0.02)


def _row_exists(engine: sa.Engine, account_id: uuid.UUID, title: str) -> bool:
    with engine.connect() as conn:
        return (
            conn.execute(
                sa.select(sa.func.count())
                .select_from(connector_files)
                .where(connector_files.c.account_id == account_id, connector_files.c.title == title)
            ).scalar_one()
            > 0
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--change-rate", type=float, default=0.01, help="share of accounts changing per hour")
    parser.add_argument("--files", type=int, default=3, help="Drive files per account")
    parser.add_argument("--modes", default="push_on,push_off")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for mode in args.modes.split(","):
            rows.append(run_mode(Path(tmp), args, push_on=mode == "push_on"))
    by = {r["mode"]: r for r in rows}
    targets = {}
    if "push_on" in by:
        targets["push_p95_under_120_s"] = (by["push_on"]["delay_p95_s"] or 1e9) < 120
    targets["runs_at_most_1.2x_changed"] = all(r["runs_per_changed_account"] <= 1.2 for r in rows)
    if "push_off" in by:
        targets["probe_only_p95_under_polling_cadence_3600_s"] = (by["push_off"]["delay_p95_s"] or 1e9) < HOUR
    out = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "simulated": "one hour in 15 s steps; real processing time added 1:1 (see the module doc)",
        "results": rows,
        "targets": targets,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(targets, indent=2))
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
