"""The directory sync of connected Workspace domains: a job, and a daily schedule that starts it
only when there is a domain (accounts/domain.py does the work; ``accounts sync-domain`` is the
same on demand).

No ``from __future__ import annotations``: Dagster reads the annotations at runtime.
"""

from typing import Any

import dagster as dg

from monolyth_pipelines.defs.resources import DatabaseResource, GoogleApiResource
from monolyth_pipelines.defs.run_control import cancel_run
from monolyth_pipelines.store import domains

DIRECTORY_SYNC_CRON = "15 3 * * *"  # daily, 03:15 UTC


@dg.op(description="Re-list every connected Workspace domain's directory: new users in, departed ones out.")
def sync_workspace_directories(
    context: dg.OpExecutionContext, db: DatabaseResource, google: GoogleApiResource
) -> dict[str, Any]:
    from monolyth_pipelines.accounts.domain import sync_all_domains

    results = sync_all_domains(
        db.engine,
        endpoints=google.endpoints(),
        terminate_run=lambda run_id: cancel_run(context.instance, run_id),
    )
    summary = {
        str(r.domain_id): {
            "status": r.status,
            "reason": r.reason,
            "created": r.created,
            "reconnected": r.reconnected,
            "disconnected": r.disconnected,
            "google_requests": r.google_requests,
        }
        for r in results
    }
    for domain_id, line in summary.items():
        context.log.info(f"domain {domain_id}: {line}")
    return summary


@dg.job(
    name="connector_domain_directory_sync",
    description="Keeps each Workspace domain's accounts equal to its directory.",
)
def directory_sync_job() -> None:
    sync_workspace_directories()


@dg.schedule(
    name="connector_domain_directory_schedule",
    cron_schedule=DIRECTORY_SYNC_CRON,
    job=directory_sync_job,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Daily directory sync of the connected Workspace domains (skipped while there is none).",
)
def directory_sync_schedule(context: dg.ScheduleEvaluationContext, db: DatabaseResource) -> Any:
    with db.engine.connect() as conn:
        count = len(domains.list_domains(conn))
    if not count:
        return dg.SkipReason("no connected Workspace domain")
    return dg.RunRequest(run_key=None)


def definitions() -> dg.Definitions:
    return dg.Definitions(jobs=[directory_sync_job], schedules=[directory_sync_schedule])
