"""Render the Postgres DDL of the schema, as committed in ``sql/schema.sql``."""

from __future__ import annotations

from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateIndex, CreateTable

from monolyth_pipelines.store.schema import metadata

HEADER = """\
-- Connector schema of monolyth_pipelines, for PostgreSQL.
-- GENERATED from monolyth_pipelines/store/schema.py by `monolyth-connectors db sql`; do not edit.
-- Apply it with `monolyth-connectors db upgrade`, which runs the Alembic migrations; the test
-- suite proves this file, the migrations and the code's schema are the same.
"""


def postgres_ddl() -> str:
    dialect = postgresql.dialect()
    statements: list[str] = []
    for table in metadata.sorted_tables:
        statements.append(str(CreateTable(table).compile(dialect=dialect)).strip())
        for index in sorted(table.indexes, key=lambda ix: ix.name or ""):
            statements.append(str(CreateIndex(index).compile(dialect=dialect)).strip())
    body = ";\n\n".join(s.replace("\t", "    ") for s in statements)
    body = "\n".join(line.rstrip() for line in body.splitlines())
    return f"{HEADER}\n{body};\n"
