"""The push channel sensor: keeps a live notification channel per synced corpus (sync/push.py).

No `from __future__ import annotations`: Dagster reads the decorated function's annotations.
"""

import dagster as dg

from monolyth_pipelines.defs.resources import DatabaseResource
from monolyth_pipelines.settings import FreshnessSettings
from monolyth_pipelines.sync import push

PUSH_CHANNELS_INTERVAL_SECONDS = 300


def build_push_sensor(providers: list[str]) -> dg.SensorDefinition:
    @dg.sensor(
        name="connector_push_channels",
        minimum_interval_seconds=PUSH_CHANNELS_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Registers push channels for synced accounts, renews them before they expire and "
        "stops those of disconnected accounts (off unless MONOLYTH_WEBHOOK_URL is set).",
    )
    def connector_push_channels(context: dg.SensorEvaluationContext, db: DatabaseResource):
        cfg = FreshnessSettings.from_env()
        if not cfg.push_enabled:
            return dg.SkipReason("push is off (MONOLYTH_WEBHOOK_URL unset)")
        done = push.maintain_channels(db.engine, providers, cfg=cfg)
        return dg.SkipReason(done.summary())

    return connector_push_channels
