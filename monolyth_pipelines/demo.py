"""``make demo``: a Drive sync end to end on the emulator, with nothing made up.

Starts the emulator in this process on a free port, adds an account through the library function
``accounts add`` uses (``actions.connect_account``), syncs it twice through Dagster (a full sync,
then an incremental one after a few edits in the emulated Drive) and prints what landed in the tables.
"""

from __future__ import annotations

import os
import uuid

import sqlalchemy as sa

from monolyth_pipelines import settings
from monolyth_pipelines.actions import connect_account, sync_account
from monolyth_pipelines.store.engine import make_engine, redacted_url
from monolyth_pipelines.store.migrate import upgrade
from monolyth_pipelines.store.schema import activity_log, connector_files, connector_jobs


def _sync(engine: sa.Engine, account_id: uuid.UUID) -> bool:
    print(f"$ monolyth-connectors sync google_drive --account {account_id}")
    # Dagster's step-by-step console log is for debugging; the outcome is printed below.
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    outcome = sync_account(engine, "google_drive", account_id, run_config=quiet)
    for line in outcome.lines():
        print(line)
    return outcome.ok


def run_demo(files: int = 2000) -> int:
    from monolyth_pipelines.emulator import GoogleEmulator

    engine = make_engine(settings.database_url())
    upgrade(engine)
    print(f"app database: {redacted_url(str(engine.url))}")
    emulator = GoogleEmulator(seed=7)
    account = emulator.add_account("demo.user@example.com", drive_files=files, gmail_threads=0)
    with emulator.serve() as base_url:
        os.environ["MONOLYTH_GOOGLE_API_ENDPOINT"] = base_url
        os.environ["MONOLYTH_GOOGLE_TOKEN_URI"] = f"{base_url}/token"
        print(f"emulator serving Drive v3, Gmail v1 and OAuth at {base_url} ({files} Drive files)")
        account_id = connect_account(
            engine,
            provider="google_drive",
            owner_id=uuid.uuid4(),
            token_json=account.authorized_user_info(token_uri=f"{base_url}/token"),
        )
        print(f"account added: {account_id}")
        if not _sync(engine, account_id):
            return 1
        drive = emulator.drive(account)
        with engine.connect() as conn:
            synced = (
                conn.execute(
                    sa.select(connector_files.c.external_id)
                    .where(connector_files.c.account_id == account_id)
                    .order_by(connector_files.c.external_id)
                    .limit(2)
                )
                .scalars()
                .all()
            )
        drive.rename(synced[0], "Renamed during the demo")
        drive.trash(synced[1])
        drive.create_file(name="Created during the demo", mime_type=settings.DOCS_MIME)
        print("emulated Drive changed: 1 rename, 1 trash, 1 new Doc")
        if not _sync(engine, account_id):
            return 1
    _summarise(engine, account_id)
    return 0


def _summarise(engine: sa.Engine, account_id: uuid.UUID) -> None:
    with engine.connect() as conn:
        live = conn.execute(
            sa.select(connector_files.c.mime, sa.func.count())
            .where(connector_files.c.account_id == account_id, connector_files.c.deleted_at.is_(None))
            .group_by(connector_files.c.mime)
            .order_by(connector_files.c.mime)
        ).all()
        gone = conn.execute(
            sa.select(connector_files.c.deleted_reason, sa.func.count())
            .where(connector_files.c.account_id == account_id, connector_files.c.deleted_at.is_not(None))
            .group_by(connector_files.c.deleted_reason)
        ).all()
        jobs = conn.execute(
            sa.select(connector_jobs.c.status, connector_jobs.c.attempts, connector_jobs.c.meta_json)
            .where(connector_jobs.c.account_id == account_id)
            .order_by(connector_jobs.c.created_at)
        ).all()
        events = (
            conn.execute(
                sa.select(activity_log.c.event)
                .where(activity_log.c.account_id == account_id)
                .order_by(activity_log.c.created_at)
            )
            .scalars()
            .all()
        )
        sample = conn.execute(
            sa.select(connector_files.c.title, connector_files.c.mime, connector_files.c.modified_at)
            .where(connector_files.c.account_id == account_id, connector_files.c.deleted_at.is_(None))
            .order_by(connector_files.c.modified_at.desc())
            .limit(5)
        ).all()
    print("\nconnector_files, live rows by type:")
    for mime, n in live:
        print(f"  {n:6}  {mime}")
    print("connector_files, tombstones by reason:", dict(gone) or "none")
    print("connector_jobs:")
    for status, attempts, meta in jobs:
        meta = meta or {}
        c = meta.get("counters", {})
        print(
            f"  {status:9} attempts={attempts} mode={c.get('mode')} seen={c.get('seen')} "
            f"inserted={c.get('inserted')} updated={c.get('updated')} tombstoned={c.get('tombstoned')} "
            f"api_calls={meta.get('api_calls')}"
        )
    print("activity_log:", ", ".join(events))
    print("most recently modified:")
    for title, mime, modified in sample:
        print(f"  {modified:%Y-%m-%d %H:%M}  {mime.rsplit('.', 1)[-1]:12}  {title[:70]}")
