"""Which environment variables a run reads, so a deployment that starts runs in fresh processes or
containers (DockerRunLauncher, K8sRunLauncher) can forward every one of them.

A run container gets only the variables its launcher forwards; one left out does not fail loudly,
it silently falls back to the default (or, for the key ring and the OAuth client, fails every sync
with ``token_key_unavailable`` / ``invalid_client``). tests/orchestration/test_deploy.py checks
that deploy/env.template, the compose services and deploy/dagster.yaml's ``env_vars`` carry every
name here, and that every variable settings/ reads is classified below.
"""

from __future__ import annotations

from monolyth_pipelines.settings_checks import DRIVE_ENV_NAMES, GMAIL_ENV_NAMES

_LIMIT_VARIABLES = tuple(
    sorted(
        {name for name in (*DRIVE_ENV_NAMES.values(), *GMAIL_ENV_NAMES.values()) if name.isupper()}
        - {"MONOLYTH_MASS_TOMBSTONE_SHARE"}
    )
)

# Read inside a run (the sync assets, their resources, the insights asset, the job bookkeeping).
RUN_VARIABLES: tuple[str, ...] = (
    "MONOLYTH_DATABASE_URL",
    "MONOLYTH_TOKEN_KEYS",
    "MONOLYTH_GOOGLE_CLIENT_ID",
    "MONOLYTH_GOOGLE_CLIENT_SECRET",
    "MONOLYTH_GOOGLE_CLIENT_SECRETS_FILE",
    "MONOLYTH_GOOGLE_API_ENDPOINT",
    "MONOLYTH_GOOGLE_TOKEN_URI",
    "MONOLYTH_GOOGLE_AUTH_URI",
    "MONOLYTH_GOOGLE_REVOKE_URI",
    "MONOLYTH_GOOGLE_ENDPOINT_ALLOWLIST",
    "MONOLYTH_FEATURE_FLAGS",
    "MONOLYTH_STALE_JOB_SECONDS",
    "MONOLYTH_MASS_TOMBSTONE_SHARE",
    "MONOLYTH_RETRY_BASE_SECONDS",
    "MONOLYTH_RETRY_CAP_SECONDS",
    "MONOLYTH_RETRY_MAX_ATTEMPTS",
    "MONOLYTH_STEP_RETRY_WAIT_SECONDS",
    "MONOLYTH_STEP_RETRY_CAP_SECONDS",
    "MONOLYTH_DB_RETRY_BASE_SECONDS",
    "MONOLYTH_DB_RETRY_CAP_SECONDS",
    "MONOLYTH_DB_RETRY_MAX_ATTEMPTS",
    "MONOLYTH_SYNC_BATCH_SIZE",
    "MONOLYTH_SYNC_BATCH_LINGER_SECONDS",
    "MONOLYTH_SYNC_BATCH_MAX_SECONDS",
    "MONOLYTH_SYNC_BATCH_RUNS",
    "MONOLYTH_SYNC_BATCH_STANDBY",
    *_LIMIT_VARIABLES,
)

# Read by settings/ but never inside a run: why each needs no forwarding.
NOT_RUN_VARIABLES: dict[str, str] = {
    "MONOLYTH_DATA_DIR": "local state only (SQLite database, local DAGSTER_HOME); a deployment sets "
    "MONOLYTH_DATABASE_URL",
    "MONOLYTH_CHANGE_PROBE": "the schedule's change probe, evaluated in the code server",
    "MONOLYTH_PROBE_CONCURRENCY": "the change probe (code server)",
    "MONOLYTH_PROBE_REQUESTS_PER_SECOND": "the change probe (code server)",
    "MONOLYTH_PROBE_TIME_BUDGET_SECONDS": "the change probe (code server)",
    "MONOLYTH_WEBHOOK_URL": "the push-channel sensor (code server)",
    "MONOLYTH_WEBHOOK_SECRET": "the webhook receiver and the push-channel sensor",
    "MONOLYTH_WEBHOOK_MAX_BODY_BYTES": "the webhook receiver",
    "MONOLYTH_GMAIL_PUSH_SERVICE_ACCOUNT": "the webhook receiver (Gmail push OIDC check)",
    "MONOLYTH_GMAIL_PUSH_CERTS_URL": "the webhook receiver (Gmail push OIDC check)",
    "MONOLYTH_GMAIL_PUBSUB_TOPIC": "the push-channel sensor (code server)",
    "MONOLYTH_PUSH_POLL_HOURS": "the schedule (code server)",
    "MONOLYTH_PUSH_CHANNEL_HOURS": "the push-channel sensor (code server)",
    "MONOLYTH_PUSH_RENEW_BEFORE_MINUTES": "the push-channel sensor (code server)",
}
