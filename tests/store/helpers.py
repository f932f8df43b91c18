from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from monolyth_pipelines.domain.records import FileRecord
from monolyth_pipelines.store.accounts import create_account

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def new_account(engine: sa.Engine, provider: str = "google_drive") -> uuid.UUID:
    with engine.begin() as conn:
        return create_account(conn, owner_id=uuid.uuid4(), provider=provider, token_json={"token": "x"})


def make_records(n: int, *, prefix: str = "f", title: str = "Doc") -> list[FileRecord]:
    return [
        FileRecord(
            external_id=f"{prefix}{i}",
            title=f"{title} {i}",
            mime="application/pdf",
            size=1000 + i,
            modified_at=T0 + timedelta(seconds=i),
            url=f"https://drive.google.com/file/d/{prefix}{i}/view",
            meta={"id": f"{prefix}{i}", "owners": [{"emailAddress": "a@example.com"}]},
        )
        for i in range(n)
    ]
