"""Two processes syncing one account at once, each with its own Dagster instance: one writes.

Both are CLI processes (``monolyth-connectors sync``), each with its own data folder and so its
own Dagster instance, as a CLI run and a daemon-launched run would be: neither can ask the other's
instance whether its run is alive, so the database alone must keep them apart.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from monolyth_pipelines.cli_outcome import EXIT_BUSY
from monolyth_pipelines.settings import DriveLimits
from monolyth_pipelines.store import events, jobs
from monolyth_pipelines.store.schema import connector_files
from tests.connectors.harness import DriveHarness, comparable, expected_rows


def test_two_processes_syncing_one_account_end_with_exactly_one_writer(
    make_drive: Callable[[int], DriveHarness], tmp_path: Path
) -> None:
    drive = make_drive(1500)  # two listing pages
    drive.sync()
    # Both runs must re-list and reconcile: the case where a second writer could tombstone.
    drive.set_sync_state(cursor="rejected-by-google")
    drive.emulator.faults.latency(1.0, endpoint="drive.files.list")
    with drive.engine.connect() as conn:
        jobs_before = len(jobs.jobs_for_account(conn, drive.account_id))

    def start(name: str) -> subprocess.Popen[str]:
        env = {
            **os.environ,
            "MONOLYTH_DATABASE_URL": drive.db_url,
            "MONOLYTH_DATA_DIR": str(tmp_path / name),
            "MONOLYTH_GOOGLE_API_ENDPOINT": drive.base_url,
            "MONOLYTH_GOOGLE_TOKEN_URI": f"{drive.base_url}/token",
        }
        env.pop("DAGSTER_HOME", None)
        args = ["-m", "monolyth_pipelines.cli", "sync", "google_drive", "--account", str(drive.account_id)]
        return subprocess.Popen(
            [sys.executable, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    procs = [start("a"), start("b")]
    outputs = [p.communicate(timeout=300) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, EXIT_BUSY], outputs
    refused = next(out for p, (out, _err) in zip(procs, outputs, strict=True) if p.returncode == EXIT_BUSY)
    assert refused.startswith("account busy: job ")

    with drive.engine.connect() as conn:
        new_jobs = jobs.jobs_for_account(conn, drive.account_id)[jobs_before:]
        logged = [e["event"] for e in events.events_for(conn, account_id=drive.account_id)]
        stored = conn.execute(
            sa.select(sa.func.count())
            .select_from(connector_files)
            .where(connector_files.c.account_id == drive.account_id)
        ).scalar_one()
    assert [j.status for j in new_jobs] == ["completed"], "one writer, and no job failed or taken over"
    assert logged.count("connector_sync_started") == 2 and "connector_sync_failed" not in logged
    # Nothing Google still has was tombstoned, and nothing was stored twice.
    assert drive.tombstones() == {}
    expected = expected_rows(drive.drive.files(), DriveLimits())
    assert comparable(drive.rows()) == expected and stored == len(expected)
