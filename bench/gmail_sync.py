"""Benchmark: a Gmail full sync of 10,000 threads of 3 messages under the emulator's quota.

``python bench/gmail_sync.py [--threads N] [--messages M] [--units-per-second U] [--database-url URL]``

The emulator runs in its own process with a mailbox of N threads of M messages, all in the
``Contracts`` label, and enforces a per-user Gmail quota of U units per second (by default the
figure that makes the sync's units take about a minute). The connector gets the same U for its
pacer and runs as in production: the ``gmail_messages`` asset, materialised in this process with
the real resources, against Postgres when ``--database-url`` / ``MONOLYTH_BENCH_POSTGRES_URL`` /
``MONOLYTH_TEST_POSTGRES_URL`` is given (a throwaway schema, dropped afterwards), else SQLite.

Printed and written to ``bench/results/gmail_sync.json``: HTTP requests, 429s received, the wall
time, the quota's lower bound (units spent / U) and the ratio of the two, with the targets:
no 429, HTTP requests <= 25 + ceil(N/50), wall time <= 1.15 x the lower bound.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import dagster as dg  # noqa: E402
import psutil  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from monolyth_pipelines.defs.local_run import materialize_account  # noqa: E402
from monolyth_pipelines.emulator import GoogleEmulator  # noqa: E402
from monolyth_pipelines.settings import GmailLimits  # noqa: E402
from monolyth_pipelines.store import accounts, jobs  # noqa: E402
from monolyth_pipelines.store.engine import make_engine  # noqa: E402
from monolyth_pipelines.store.migrate import upgrade  # noqa: E402
from monolyth_pipelines.store.token_crypto import generate_key  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "gmail_sync.json"
EMAIL = "bench@example.com"
LABEL = "Contracts"
TARGET_RATIO = 1.15
# The connector's pacer names (GmailLimits.method_costs) and the emulator's endpoint names.
ENDPOINTS = {
    "getProfile": "gmail.users.getProfile",
    "labels.list": "gmail.users.labels.list",
    "threads.list": "gmail.users.threads.list",
    "threads.get": "gmail.users.threads.get",
    "messages.get": "gmail.users.messages.get",
    "history.list": "gmail.users.history.list",
    "attachments.get": "gmail.users.messages.attachments.get",
}


# --- the emulator process ---------------------------------------------------------------------
def serve_emulator(threads: int, messages: int, info_file: Path) -> None:
    """Build the mailbox, serve it, write {base_url, token_uri, authorized_user} and wait."""
    emulator = GoogleEmulator(seed=6)
    account = emulator.add_account(EMAIL)
    box = emulator.gmail(account)
    start = datetime(2024, 1, 1, tzinfo=UTC).timestamp()
    for number in range(threads):
        moment = start + number * 600
        first = box.deliver(subject=f"Contract {number}", labels=("INBOX", LABEL), internal_date=moment)
        for reply in range(1, messages):
            box.deliver(
                subject=f"Re: Contract {number}",
                thread_id=first["threadId"],
                labels=("INBOX", LABEL),
                internal_date=moment + reply * 60,
            )
    base_url = emulator.start()
    info = {
        "base_url": base_url,
        "token_uri": f"{base_url}/token",
        "authorized_user": account.authorized_user_info(token_uri=f"{base_url}/token"),
    }
    partial = info_file.with_suffix(".tmp")
    partial.write_text(json.dumps(info))
    partial.rename(info_file)
    try:
        while True:
            time.sleep(3600)
    finally:
        emulator.stop()


def start_emulator(
    threads: int, messages: int, workdir: Path
) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    info_file = workdir / "emulator.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--serve-emulator",
            str(info_file),
            "--threads",
            str(threads),
            "--messages",
            str(messages),
        ],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 600
    while not info_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the emulator did not start")
        time.sleep(0.2)
    return proc, json.loads(info_file.read_text())


def admin(base: str, path: str, body: dict[str, Any] | None = None, method: str | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        f"{base}/_emulator/{path}", data=data, method=method or ("POST" if data is not None else "GET")
    )
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=600) as resp:
        return json.loads(resp.read() or b"null")


# --- the database -----------------------------------------------------------------------------
def database(url: str | None, workdir: Path) -> tuple[str, str, Any]:
    """(url for the run, backend name, cleanup)."""
    if not url:
        return f"sqlite:///{workdir / 'bench.db'}", "sqlite", lambda: None
    schema = f"bench_gmail_{uuid.uuid4().hex[:8]}"
    admin_engine = make_engine(url, poolclass=sa.pool.NullPool)
    with admin_engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")

    def drop() -> None:
        with admin_engine.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")

    return str(sa.make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})), "postgresql", drop


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=3, help="messages per thread")
    parser.add_argument(
        "--units-per-second",
        type=float,
        default=None,
        help="the per-user quota, for the emulator and the connector's pacer alike "
        "(default: the sync's units over about a minute, in whole batches: 2000 for 10,000 threads)",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("MONOLYTH_BENCH_POSTGRES_URL") or os.environ.get("MONOLYTH_TEST_POSTGRES_URL"),
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--serve-emulator", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_emulator:
        serve_emulator(args.threads, args.messages, args.serve_emulator)
        return 0

    costs = GmailLimits().method_costs
    list_pages = math.ceil(args.threads / 500)
    expected_units = (
        costs["getProfile"]
        + costs["labels.list"]
        + list_pages * costs["threads.list"]
        + args.threads * costs["threads.get"]
    )
    units_per_second = args.units_per_second or default_quota(expected_units, costs["threads.get"])

    workdir = Path(tempfile.mkdtemp(prefix="bench-gmail-"))
    db_url, backend, cleanup = database(args.database_url, workdir)
    started_emulator = time.perf_counter()
    emulator, info = start_emulator(args.threads, args.messages, workdir)
    corpus_seconds = time.perf_counter() - started_emulator
    base = info["base_url"]
    # The throwaway database's tokens are encrypted like production ones, with a throwaway key.
    os.environ.setdefault("MONOLYTH_TOKEN_KEYS", generate_key())
    os.environ.update(
        MONOLYTH_FEATURE_FLAGS="int_gmail",
        MONOLYTH_GOOGLE_API_ENDPOINT=base,
        MONOLYTH_GOOGLE_TOKEN_URI=info["token_uri"],
        GMAIL_LABEL=LABEL,
        GMAIL_MAX_THREADS=str(args.threads),
        GMAIL_QUOTA_UNITS_PER_SECOND=str(units_per_second),
        GMAIL_QUOTA_COSTS=",".join(f"{name}={units}" for name, units in costs.items()),
    )
    try:
        admin(
            base,
            "quotas",
            {
                "gmail_units_per_second": units_per_second,
                "gmail_costs": {ENDPOINTS[name]: units for name, units in costs.items() if name in ENDPOINTS},
            },
        )
        engine = make_engine(db_url)
        upgrade(engine)
        with engine.begin() as conn:
            account_id = accounts.create_account(
                conn, owner_id=uuid.uuid4(), provider="gmail", token_json=info["authorized_user"]
            )
        admin(base, "stats/reset", {})
        with dg.instance_for_test() as instance:
            started = time.perf_counter()
            result = materialize_account("gmail", account_id, instance=instance, database_url=db_url)
            wall = time.perf_counter() - started
        with engine.connect() as conn:
            job = jobs.jobs_for_account(conn, account_id)[-1]
            rows = conn.execute(sa.text("SELECT count(*) FROM connector_files")).scalar_one()
        if not result.success:
            raise SystemExit(f"sync failed: {job.last_error}")
        stats = admin(base, "stats")["accounts"][EMAIL]
        engine.dispose()
    finally:
        emulator.terminate()
        emulator.wait()
        cleanup()

    http_requests = stats["totals"]["http_requests"]
    responses_429 = stats["totals"]["responses_429"]
    units = stats["quota_units"]["gmail"]
    bound = units / units_per_second
    allowed_requests = 25 + math.ceil(args.threads / 50)
    figures = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {psutil.cpu_count()} cpus, python {platform.python_version()}",
        "database": backend,
        "threads": args.threads,
        "messages_per_thread": args.messages,
        "rows_stored": rows,
        "quota_units_per_second": units_per_second,
        "unit_costs": costs,
        "batch_size": GmailLimits().batch_size,
        "corpus_and_emulator_start_seconds": round(corpus_seconds, 1),
        "http_requests": http_requests,
        "http_requests_by_endpoint": stats["http_requests"],
        "api_calls": stats["totals"]["api_calls"],
        "responses_429": responses_429,
        "quota_units_spent": units,
        "quota_lower_bound_seconds": round(bound, 2),
        "wall_seconds": round(wall, 2),
        "job_duration_seconds": round(job.meta_json["duration_ms"] / 1000, 2),
        "ratio_wall_to_lower_bound": round(wall / bound, 3),
        "connector_retries": job.meta_json["counters"]["retries"],
    }
    figures["targets"] = {
        "no 429 received": responses_429 == 0,
        f"HTTP requests <= 25 + ceil(N/50) = {allowed_requests}": http_requests <= allowed_requests,
        f"wall time <= {TARGET_RATIO} x quota lower bound": wall <= TARGET_RATIO * bound,
        "every message stored": rows == args.threads * args.messages,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    return 0 if all(figures["targets"].values()) else 1


def default_quota(units: int, batch_call_units: int) -> float:
    """About a minute's worth of the sync's units, rounded up to whole batches of 50 a second.

    Google's per-second window holds whole batches only (a batch's calls run together), so
    a quota between two multiples of a batch's units leaves the remainder unusable; see
    docs/gmail.md. For 10,000 threads at 10 units a thread: 100,202 units, 2,000 units/s.
    """
    batch_units = 50 * batch_call_units
    return float(math.ceil(units / 60 / batch_units) * batch_units)


if __name__ == "__main__":
    raise SystemExit(main())
