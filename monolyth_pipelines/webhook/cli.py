"""``monolyth-connectors webhook serve``: run the push notification receiver under uvicorn."""

from __future__ import annotations

import argparse
from typing import Any


def _serve(args: argparse.Namespace) -> int:
    from monolyth_pipelines.webhook.app import serve

    serve(args.host, args.port)
    return 0


def add_webhook_commands(commands: Any) -> None:
    hook = commands.add_parser("webhook", help="the push notification receiver").add_subparsers(
        dest="webhook_command", required=True
    )
    serve = hook.add_parser(
        "serve", help="serve POST /webhooks/drive and /webhooks/gmail (see docs/operations.md)"
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8787)
    serve.set_defaults(func=_serve)
