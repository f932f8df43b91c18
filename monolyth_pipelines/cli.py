"""``monolyth-connectors``: the command line of the connector pipelines."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from monolyth_pipelines.store.engine import make_engine, redacted_url


def _db_upgrade(args: argparse.Namespace) -> int:
    from monolyth_pipelines.store.migrate import head_revision, upgrade

    engine = make_engine(args.database_url)
    before, after = upgrade(engine)
    where = redacted_url(str(engine.url))
    if before == after:
        print(f"schema already at revision {after} on {where}; nothing to do")
    else:
        print(f"schema upgraded from {before or 'empty'} to {after} (head {head_revision()}) on {where}")
    return 0


def _db_sql(args: argparse.Namespace) -> int:
    from monolyth_pipelines.store.ddl import postgres_ddl

    sys.stdout.write(postgres_ddl())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="monolyth-connectors", description=__doc__)
    parser.add_argument(
        "--database-url",
        default=None,
        help="SQLAlchemy URL of the app database (default: MONOLYTH_DATABASE_URL, else embedded SQLite)",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    db = commands.add_parser("db", help="the connector schema").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="create or upgrade the schema (idempotent)").set_defaults(func=_db_upgrade)
    db.add_parser("sql", help="print the Postgres DDL that sql/schema.sql holds").set_defaults(func=_db_sql)

    _add_optional_commands(commands)
    return parser


def _add_optional_commands(commands: argparse._SubParsersAction) -> None:
    # Each command group lives beside the code it drives; importing them here keeps one entry point.
    from monolyth_pipelines.emulator.cli import add_emulator_commands

    add_emulator_commands(commands)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
