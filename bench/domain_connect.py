"""Benchmark: connecting a Workspace domain of N users (default 10,000) in one command.

``python bench/domain_connect.py [--users N] [--postgres URL]`` serves an emulated domain of N
users (the admin included) in-process, then runs ``accounts.domain.connect_domain`` against it
over HTTP with the real google-auth service-account credentials and the real Directory client,
into a fresh app database (a SQLite file; and, with ``--postgres`` or
``MONOLYTH_TEST_POSTGRES_URL``, a fresh Postgres schema too). Then it runs the directory sync
twice: once unchanged (``sync_steady``), once after 1% of the users were suspended and 1% added
(``sync_churn``). For each it reports wall time, the Google requests made (JWT-bearer exchanges
and users.list pages, as the emulator counted them) and the app-database statements
(``before_cursor_execute``). Figures go to stdout and to ``bench/results/domain_connect.json``.
Target: N users connected with N/500 + 1 Google requests and a statement count that grows with
pages, not users.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT))

from monolyth_pipelines.accounts import domain  # noqa: E402
from monolyth_pipelines.emulator import GoogleEmulator  # noqa: E402
from monolyth_pipelines.google.directory import DIRECTORY_USER_READONLY  # noqa: E402
from monolyth_pipelines.google.oauth_flow import DRIVE_READONLY  # noqa: E402
from monolyth_pipelines.settings import GoogleEndpoints  # noqa: E402
from monolyth_pipelines.store import token_crypto  # noqa: E402
from monolyth_pipelines.store.engine import make_engine  # noqa: E402
from monolyth_pipelines.store.migrate import upgrade  # noqa: E402

DOMAIN = "bench.test"


@contextmanager
def counted(engine: sa.Engine) -> Iterator[dict[str, int]]:
    box = {"statements": 0}

    def count(*_: Any) -> None:
        box["statements"] += 1

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        yield box
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)


@contextmanager
def databases(postgres: str | None) -> Iterator[list[tuple[str, str]]]:
    with tempfile.TemporaryDirectory() as tmp:
        found = [("sqlite", f"sqlite:///{tmp}/bench.db")]
        schema = f"bench_domain_{uuid.uuid4().hex[:8]}"
        admin = None
        if postgres:
            admin = make_engine(postgres, poolclass=sa.pool.NullPool)
            with admin.begin() as conn:
                conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
            url = str(sa.make_url(postgres).update_query_dict({"options": f"-csearch_path={schema}"}))
            found.append(("postgres", url))
        try:
            yield found
        finally:
            if admin is not None:
                with admin.begin() as conn:
                    conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')


def google_requests(emu: GoogleEmulator) -> dict[str, Any]:
    total = emu.stats_total()
    return {"total": total["totals"]["http_requests"], "by_endpoint": dict(total["api_calls"])}


def step(name: str, emu: GoogleEmulator, engine: sa.Engine, run: Any) -> dict[str, Any]:
    emu.reset_stats()
    with counted(engine) as box:
        started = time.perf_counter()
        result = run()
        seconds = time.perf_counter() - started
    figures = {
        "seconds": round(seconds, 2),
        "status": result.status,
        "active_users": result.active_users,
        "created": result.created,
        "reconnected": result.reconnected,
        "disconnected": result.disconnected,
        "google_requests": google_requests(emu),
        "db_statements": box["statements"],
    }
    print(f"  {name}: {json.dumps(figures)}", flush=True)
    return figures


def bench_backend(backend: str, url: str, users: int, seed: int) -> dict[str, Any]:
    emu = GoogleEmulator(seed=seed)
    started = time.perf_counter()
    emu.add_domain(DOMAIN, users=users - 1)
    built = time.perf_counter() - started
    engine = make_engine(url)
    upgrade(engine)
    owner = uuid.uuid4()
    out: dict[str, Any] = {"domain_built_seconds": round(built, 2)}
    print(f"{backend}: {users} users (emulated domain built in {built:.1f} s)", flush=True)
    with emu.serve() as base:
        endpoints = GoogleEndpoints(api_base=base, token_uri=f"{base}/token")
        key = emu.service_account_key(delegate_to=DOMAIN, scopes=[DRIVE_READONLY, DIRECTORY_USER_READONLY])
        out["connect"] = step(
            "connect",
            emu,
            engine,
            lambda: domain.connect_domain(
                engine,
                provider="google_drive",
                owner_id=owner,
                key_info=key,
                admin_email=f"admin@{DOMAIN}",
                endpoints=endpoints,
            ),
        )
        with engine.connect() as conn:
            domain_id = conn.exec_driver_sql("SELECT id FROM connector_domains").scalar_one()
        domain_id = domain_id if isinstance(domain_id, uuid.UUID) else uuid.UUID(str(domain_id))
        out["sync_steady"] = step(
            "sync_steady", emu, engine, lambda: domain.sync_domain(engine, domain_id, endpoints=endpoints)
        )
        churn = max(1, users // 100)
        for n in range(1, churn + 1):
            emu.workspace.update_user(f"user{n}@{DOMAIN}", suspended=True)
        emu.workspace.add_users(DOMAIN, churn, prefix="joiner")
        out["churn_users"] = churn
        out["sync_churn"] = step(
            "sync_churn", emu, engine, lambda: domain.sync_domain(engine, domain_id, endpoints=endpoints)
        )
    engine.dispose()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--postgres", default=os.environ.get("MONOLYTH_TEST_POSTGRES_URL"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault("MONOLYTH_TOKEN_KEYS", token_crypto.generate_key())
    results: dict[str, Any] = {
        "bench": "domain_connect",
        "users": args.users,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "backends": {},
    }
    with databases(args.postgres) as found:
        for backend, url in found:
            results["backends"][backend] = bench_backend(backend, url, args.users, args.seed)
    out = ROOT / "bench" / "results" / "domain_connect.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
