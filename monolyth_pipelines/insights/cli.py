"""``monolyth-connectors insights build | show``; cli.py only registers the subparser."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from monolyth_pipelines import settings
from monolyth_pipelines.insights.report import report
from monolyth_pipelines.insights.sharing import report as sharing_report
from monolyth_pipelines.store.engine import make_engine

PROVIDERS = ("google_drive", "gmail")


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a day (YYYY-MM-DD)") from None


def days_to_build(day: date | None, since: date | None, today: date) -> list[date]:
    if day is not None:
        return [day]
    if since is not None:
        return [since + timedelta(days=n) for n in range((today - since).days + 1)]
    return [today]


def build_days(days: list[date], database_url: str | None, *, out: Callable[[str], None] = print) -> bool:
    """Materialise the days' partitions through Dagster in this process; True if all succeeded."""
    from monolyth_pipelines.defs.insights import materialize_days
    from monolyth_pipelines.defs.local_run import local_instance

    ok = True
    for day, result in zip(
        days, materialize_days(days, instance=local_instance(), database_url=database_url), strict=True
    ):
        failed_checks = [
            f"{e.asset_key.to_user_string()}:{e.check_name}"
            for e in (
                ev.event_specific_data
                for ev in result.all_events
                if ev.event_type_value == "ASSET_CHECK_EVALUATION"
            )
            if not e.passed
        ]
        status = "built" if result.success else "FAILED"
        out(
            f"{day}: {status} (run {result.dagster_run.run_id})"
            + (f"; checks failed: {failed_checks}" if failed_checks else "")
        )
        ok = ok and result.success and not failed_checks
    return ok


def build_and_show(
    database_url: str | None = None, *, days: int = 7, out: Callable[[str], None] = print
) -> bool:
    """What the demo ends with: rebuild the last ``days`` days, then print the report."""
    today = datetime.now(UTC).date()
    ok = build_days(days_to_build(None, today - timedelta(days=days - 1), today), database_url, out=out)
    engine = make_engine(database_url or settings.database_url())
    try:
        with engine.connect() as conn:
            out(report(conn, today=today, days=days))
    finally:
        engine.dispose()
    return ok


def _build(args: argparse.Namespace) -> int:
    today = datetime.now(UTC).date()
    if (args.since or args.day or today) > today:
        print("error: a day in the future has nothing to build", file=sys.stderr)
        return 2
    return 0 if build_days(days_to_build(args.day, args.since, today), args.database_url) else 1


def _show(args: argparse.Namespace) -> int:
    if args.days < 1:
        print("error: --days must be at least 1", file=sys.stderr)
        return 2
    engine = make_engine(args.database_url or settings.database_url())
    try:
        with engine.connect() as conn:
            show = sharing_report if args.sharing else report
            print(show(conn, today=datetime.now(UTC).date(), days=args.days, provider=args.provider))
    finally:
        engine.dispose()
    return 0


def add_insights_commands(commands: Any) -> None:
    insights = commands.add_parser("insights", help="the Insights output tables").add_subparsers(
        dest="insights_command", required=True
    )
    build = insights.add_parser("build", help="materialise day partitions through Dagster, in this process")
    which = build.add_mutually_exclusive_group()
    which.add_argument("--day", type=_day, help="one day, YYYY-MM-DD (default: today, UTC)")
    which.add_argument("--since", type=_day, help="every day from YYYY-MM-DD through today")
    build.set_defaults(func=_build)
    show = insights.add_parser("show", help="print run outcomes and the busiest accounts and documents")
    show.add_argument("--provider", choices=PROVIDERS)
    show.add_argument("--days", type=int, default=7, help="how many days back, today included (default 7)")
    show.add_argument(
        "--sharing",
        action="store_true",
        help="list the Drive documents that became visible outside the organisation instead",
    )
    show.set_defaults(func=_show)
