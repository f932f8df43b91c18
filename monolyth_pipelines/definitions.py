"""The Dagster code location: ``dagster dev -w workspace.yaml`` loads ``defs`` from here."""

from __future__ import annotations

import dagster as dg

from monolyth_pipelines.defs import automation, domains, insights
from monolyth_pipelines.defs.push import build_push_sensor
from monolyth_pipelines.defs.resources import DatabaseResource, GoogleApiResource


def build_definitions() -> dg.Definitions:
    # --- providers (Gmail: issue 6) --------------------------------------------------------------
    # Read from the environment on each call, not at import: Gmail's asset, job and schedule
    # exist only with MONOLYTH_FEATURE_FLAGS=int_gmail and appear or vanish together
    # (enabled_automations() lists local_run.assets_by_provider(), which checks the flag).
    auto = automation.build_automation(automation.enabled_automations())
    # -----------------------------------------------------------------------------------------------
    connectors = dg.Definitions(
        assets=[a.asset for a in auto.automations],
        jobs=[*auto.jobs, *auto.batch_jobs],
        sensors=[*auto.sensors, build_push_sensor({a.provider: a.kind for a in auto.automations})],
        schedules=auto.schedules,
        resources={"db": DatabaseResource(), "google": GoogleApiResource()},
    )
    return dg.Definitions.merge(connectors, insights.definitions(), domains.definitions())


defs = build_definitions()
