"""shared / unshared events: the Postgres page statement and the SQLite path log the same events
as ``domain.permissions.sharing_change`` says, and a change of sharing alone logs nothing else."""

from __future__ import annotations

import dataclasses
import random
import uuid
from typing import Any

import sqlalchemy as sa

from monolyth_pipelines.domain.permissions import sharing_change, sharing_fields
from monolyth_pipelines.domain.records import FileRecord
from monolyth_pipelines.store.files import upsert_files
from monolyth_pipelines.store.schema import connector_file_events
from tests.store.helpers import make_records, new_account

DOMAIN = "acme.example"
GRANTS: list[dict[str, Any]] = [
    {"type": "user", "role": "reader", "emailAddress": "ana@acme.example"},
    {"type": "user", "role": "writer", "emailAddress": "ana@acme.example"},
    {"type": "user", "role": "reader", "emailAddress": "bob@partner.example"},
    {"type": "group", "role": "reader", "emailAddress": "team@acme.example"},
    {"type": "domain", "role": "reader", "domain": "acme.example", "allowFileDiscovery": True},
    {"type": "anyone", "role": "reader"},
    {"type": "anyone", "role": "reader", "allowFileDiscovery": True},
    {
        "type": "user",
        "role": "reader",
        "emailAddress": "ana@acme.example",
        "permissionDetails": [{"inherited": True}],
    },
]
OWNER = {"type": "user", "role": "owner", "emailAddress": "me@acme.example"}


def shared(record: FileRecord, grants: list[dict[str, Any]], **meta: Any) -> FileRecord:
    sharing = sharing_fields([OWNER, *grants], account_domain=DOMAIN)
    return dataclasses.replace(record, meta={**record.meta, **sharing, **meta})


def events(engine: sa.Engine, job: uuid.UUID) -> list[tuple[str, str, dict[str, Any]]]:
    e = connector_file_events
    with engine.connect() as conn:
        rows = conn.execute(sa.select(e.c.external_id, e.c.event, e.c.changes).where(e.c.job_id == job))
        return sorted((r.external_id, r.event, r.changes) for r in rows)


def test_sharing_changes_log_what_the_domain_function_says_on_both_databases(engine: sa.Engine) -> None:
    account = new_account(engine)
    rng = random.Random(5)
    base = make_records(60)
    before = [shared(r, rng.sample(GRANTS, rng.randrange(0, 3)), version="1") for r in base]
    with engine.begin() as conn:
        upsert_files(conn, account, "google_drive", before, job_id=uuid.uuid4())

    after: list[FileRecord] = []
    expected: list[tuple[str, str, dict[str, Any]]] = []
    for n, old in enumerate(before):
        grants = rng.sample(GRANTS, rng.randrange(0, 4))
        renamed = n % 5 == 0  # some change their title as well
        new = shared(old, grants, version="2")
        if renamed:
            new = dataclasses.replace(new, title=f"{old.title} (v2)")
        after.append(new)
        found = sharing_change(
            old.meta["permissions"], old.meta["visibility"], new.meta["permissions"], new.meta["visibility"]
        )
        if found is not None:
            expected.append((old.external_id, found[0], found[1]))
        if renamed:
            expected.append((old.external_id, "renamed", {"title": {"old": old.title, "new": new.title}}))
        elif found is None and old.meta != new.meta:
            expected.append((old.external_id, "modified", {}))
    job = uuid.uuid4()
    with engine.begin() as conn:
        upsert_files(conn, account, "google_drive", after, job_id=job)
    got = events(engine, job)
    assert got == sorted(expected)
    kinds = {kind for _, kind, _ in got}
    assert {"shared", "unshared", "renamed"} <= kinds, kinds
