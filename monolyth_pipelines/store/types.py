"""Portable column types: each maps to the spec's Postgres type and behaves the same on SQLite."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


class UTCDateTime(sa.TypeDecorator[datetime]):
    """timestamptz on Postgres; on SQLite, UTC text that reads back timezone-aware.

    SQLite has no timezone type, so without this a value written aware comes back naive and
    comparisons between the two dialects' results silently differ.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where a timezone-aware one is required")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class new_uuid(FunctionElement[uuid.UUID]):
    """A server-side random UUID, so the app team can insert rows (a pending job) without an id."""

    type = sa.Uuid(as_uuid=True)
    inherit_cache = True


@compiles(new_uuid, "postgresql")
def _new_uuid_pg(element: new_uuid, compiler: Any, **kw: Any) -> str:
    return "gen_random_uuid()"


@compiles(new_uuid, "sqlite")
def _new_uuid_sqlite(element: new_uuid, compiler: Any, **kw: Any) -> str:
    # Sqlalchemy stores Uuid on SQLite as 32 hex characters without dashes.
    return "(lower(hex(randomblob(16))))"


UUID = sa.Uuid(as_uuid=True)
JSONB = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMPTZ = UTCDateTime()
NOW = sa.func.now()

# Integer on SQLite: only "INTEGER PRIMARY KEY" numbers rows by itself there.
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
