"""What the CLI's commands do, as library functions: connect an account, sync it now, and the
summary of a sync. ``cli.py`` parses and prints; ``demo.py`` calls these directly.

No Dagster import at module level: the local run is imported when a sync is asked for.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from monolyth_pipelines import providers
from monolyth_pipelines.google.credentials import scopes_of
from monolyth_pipelines.store import accounts, events, jobs
from monolyth_pipelines.store.events import Event
from monolyth_pipelines.store.files import count_live

# The counters a sync's one-line summary shows, in this order.
SUMMARY_COUNTERS = (
    "mode",
    "seen",
    "inserted",
    "updated",
    "unchanged",
    "tombstoned",
    "skipped",
    "pages",
    "retries",
)


class ActionError(Exception):
    """A request the user can fix (unknown account, provider behind a flag, bad token file)."""


def check_provider(provider: str) -> providers.ProviderSpec:
    """The provider's registry entry, or why it cannot be used here."""
    try:
        spec = providers.get(provider)
    except KeyError:
        raise ActionError(f"unknown provider {provider!r}") from None
    if not spec.enabled():
        raise ActionError(
            f"{provider} is behind the feature flag '{spec.flag}': "
            f"set MONOLYTH_FEATURE_FLAGS={spec.flag} to use it"
        )
    return spec


def provider_account(conn: sa.Connection, provider: str, account_id: uuid.UUID) -> uuid.UUID:
    """The id of an existing ``provider`` account, or a clear error."""
    check_provider(provider)
    found = accounts.get_account(conn, account_id)
    if found is None or found.provider != provider:
        raise ActionError(f"no {provider} account {account_id}")
    return account_id


def connect_account(
    engine: sa.Engine, *, provider: str, owner_id: uuid.UUID, token_json: dict[str, Any]
) -> uuid.UUID:
    """Store an authorized-user token as a connected account, with its connected event."""
    check_provider(provider)
    missing = [k for k in ("refresh_token", "client_id", "client_secret") if not token_json.get(k)]
    if missing:
        raise ActionError(f"the token file lacks {', '.join(missing)} (an authorized-user JSON is expected)")
    with engine.begin() as conn:
        account_id = accounts.create_account(
            conn, owner_id=owner_id, provider=provider, token_json=token_json
        )
        events.log_event(
            conn,
            Event.ACCOUNT_CONNECTED,
            {"provider": provider, "account_id": account_id, "scopes": scopes_of(token_json)},
        )
    return account_id


@dataclass
class SyncOutcome:
    run_id: str
    success: bool
    job: jobs.Job | None
    live_items: int
    summary: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.success and self.job is not None and self.job.status == "completed"

    def lines(self) -> list[str]:
        """What ``sync`` prints: the job's outcome, the counters, the warnings."""
        if self.job is None:
            return [f"run {self.run_id} failed before it opened a job: {'ok' if self.success else 'failed'}"]
        job = self.job
        out = [f"job {job.id} {job.status} (run {self.run_id}, attempts {job.attempts})"]
        if job.last_error:
            out.append(f"error: {job.last_error}")
        out.append(json.dumps(self.summary, sort_keys=True))
        out += [f"WARNING: {w}" for w in self.warnings]
        return out


def sync_account(
    engine: sa.Engine,
    provider: str,
    account_id: uuid.UUID,
    *,
    run_config: dict[str, Any] | None = None,
    database_url: str | None = None,
) -> SyncOutcome:
    """Materialise the account's partition in this process, through Dagster, and read the outcome."""
    from monolyth_pipelines.defs.local_run import local_instance, materialize_account

    with engine.connect() as conn:
        provider_account(conn, provider, account_id)
    result = materialize_account(
        provider, account_id, instance=local_instance(), run_config=run_config, database_url=database_url
    )
    run_id = result.dagster_run.run_id
    with engine.connect() as conn:
        job = next((j for j in reversed(jobs.jobs_for_account(conn, account_id)) if j.run_id == run_id), None)
        live = count_live(conn, account_id)
    if job is None:
        return SyncOutcome(run_id, result.success, None, live)
    meta = job.meta_json or {}
    counters = meta.get("counters", {})
    summary = {k: counters.get(k) for k in SUMMARY_COUNTERS}
    summary["api_calls"] = meta.get("api_calls")
    summary["live_items"] = live
    return SyncOutcome(run_id, result.success, job, live, summary, list(counters.get("warnings", [])))
