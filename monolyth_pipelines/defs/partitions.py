"""One dynamic partition per connected account, keyed by the account's UUID.

The UUID, never an e-mail address: the key shows in the UI, in run tags and in logs.
"""

from __future__ import annotations

import dagster as dg

drive_accounts = dg.DynamicPartitionsDefinition(name="google_drive_accounts")
gmail_accounts = dg.DynamicPartitionsDefinition(name="gmail_accounts")

PARTITIONS_BY_PROVIDER: dict[str, dg.DynamicPartitionsDefinition] = {
    "google_drive": drive_accounts,
    "gmail": gmail_accounts,
}

# Run tags the sensors and schedules set; dagster.yaml limits concurrent runs by them.
TAG_JOB_ID = "monolyth/job_id"
TAG_PROVIDER = "monolyth/provider"
