"""What every command module of ``monolyth-connectors`` shares: its error type and argument parsing."""

from __future__ import annotations

import argparse
import uuid
from typing import Any

from monolyth_pipelines.store.engine import make_engine


class CliError(Exception):
    """A refusal the CLI prints as one ``error:`` line (exit 2), never a traceback."""


def engine_for(args: argparse.Namespace) -> Any:
    return make_engine(args.database_url)


def parse_uuid(text: str, what: str = "an account id (a UUID, as `accounts list` prints)") -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise CliError(f"{text!r} is not {what}") from None
