"""The push channel sensor: keeps a live notification channel per synced corpus (sync/push.py).

No `from __future__ import annotations`: Dagster reads the decorated function's annotations.
"""

import dagster as dg

from monolyth_pipelines.defs.resources import DatabaseResource
from monolyth_pipelines.settings import FreshnessSettings
from monolyth_pipelines.sync import push

PUSH_CHANNELS_INTERVAL_SECONDS = 300


def build_push_sensor(kinds_by_provider: dict[str, str]) -> dg.SensorDefinition:
    providers = list(kinds_by_provider)

    @dg.sensor(
        name="connector_push_channels",
        minimum_interval_seconds=PUSH_CHANNELS_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Registers push channels for synced accounts, renews them before they expire and "
        "stops those of disconnected accounts, requeues accounts notified while their sync ran "
        "(off unless MONOLYTH_WEBHOOK_URL is set).",
    )
    def connector_push_channels(context: dg.SensorEvaluationContext, db: DatabaseResource):
        cfg = FreshnessSettings.from_env()
        if not cfg.push_enabled:
            return dg.SkipReason("push is off (MONOLYTH_WEBHOOK_URL unset)")
        done = push.maintain_channels(db.engine, providers, cfg=cfg)
        requeued = push.requeue_notified(db.engine, kinds_by_provider)
        return dg.SkipReason(
            f"{done.summary()}; {requeued} account(s) notified during their last sync requeued"
        )

    return connector_push_channels
