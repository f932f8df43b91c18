-- Connector schema of monolyth_pipelines, for PostgreSQL.
-- GENERATED from monolyth_pipelines/store/schema.py by `monolyth-connectors db sql`; do not edit.
-- Apply it with `monolyth-connectors db upgrade`, which runs the Alembic migrations; the test
-- suite proves this file, the migrations and the code's schema are the same.

CREATE TABLE connector_accounts (
    id UUID DEFAULT gen_random_uuid() NOT NULL,
    owner_id UUID NOT NULL,
    provider TEXT NOT NULL,
    status TEXT DEFAULT 'pending' NOT NULL,
    token_json JSONB,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    external_user_id TEXT,
    external_email TEXT,
    status_reason TEXT,
    status_message TEXT,
    domain_id UUID,
    CONSTRAINT pk_connector_accounts PRIMARY KEY (id),
    CONSTRAINT ck_connector_accounts_status CHECK (status IN ('connected', 'disconnected', 'error', 'pending'))
);

CREATE INDEX ix_connector_accounts_domain_id ON connector_accounts (domain_id);

CREATE INDEX ix_connector_accounts_owner_id ON connector_accounts (owner_id);

CREATE UNIQUE INDEX ix_connector_accounts_owner_id_provider_external_user_id ON connector_accounts (owner_id, provider, external_user_id);

CREATE INDEX ix_connector_accounts_provider_status ON connector_accounts (provider, status);

CREATE TABLE connector_domains (
    id UUID DEFAULT gen_random_uuid() NOT NULL,
    owner_id UUID NOT NULL,
    provider TEXT NOT NULL,
    domain TEXT NOT NULL,
    admin_email TEXT NOT NULL,
    client_id TEXT NOT NULL,
    client_email TEXT NOT NULL,
    key_json JSONB NOT NULL,
    users_query TEXT,
    status TEXT DEFAULT 'connected' NOT NULL,
    status_reason TEXT,
    status_message TEXT,
    listed_at TIMESTAMP WITH TIME ZONE,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    CONSTRAINT pk_connector_domains PRIMARY KEY (id),
    CONSTRAINT ck_connector_domains_status CHECK (status IN ('connected', 'disconnected', 'error', 'pending')),
    CONSTRAINT uq_connector_domains_owner_id_provider_domain UNIQUE (owner_id, provider, domain)
);

CREATE TABLE connector_file_events (
    id BIGSERIAL NOT NULL,
    account_id UUID NOT NULL,
    provider TEXT NOT NULL,
    external_id TEXT NOT NULL,
    job_id UUID,
    event TEXT NOT NULL,
    reason TEXT,
    occurred_at TIMESTAMP WITH TIME ZONE,
    observed_at TIMESTAMP WITH TIME ZONE NOT NULL,
    changes JSONB NOT NULL,
    CONSTRAINT pk_connector_file_events PRIMARY KEY (id),
    CONSTRAINT ck_connector_file_events_event CHECK (event IN ('added', 'modified', 'renamed', 'moved_out_of_scope', 'trashed', 'deleted', 'access_lost', 'restored', 'labelled', 'unlabelled', 'shared', 'unshared'))
);

CREATE INDEX ix_connector_file_events_observed_at ON connector_file_events USING brin (observed_at);

CREATE TABLE insights_account_usage_daily (
    day DATE NOT NULL,
    account_id UUID NOT NULL,
    owner_id UUID NOT NULL,
    provider TEXT NOT NULL,
    runs_started INTEGER NOT NULL,
    runs_completed INTEGER NOT NULL,
    runs_failed INTEGER NOT NULL,
    live_items BIGINT NOT NULL,
    live_bytes BIGINT NOT NULL,
    items_added BIGINT NOT NULL,
    items_modified BIGINT NOT NULL,
    items_removed BIGINT NOT NULL,
    vault_imports BIGINT NOT NULL,
    minutes_since_success BIGINT,
    built_at TIMESTAMP WITH TIME ZONE NOT NULL,
    runs_refused INTEGER DEFAULT '0' NOT NULL,
    CONSTRAINT pk_insights_account_usage_daily PRIMARY KEY (day, account_id)
);

CREATE INDEX ix_insights_account_usage_daily_account_id_day ON insights_account_usage_daily (account_id, day);

CREATE INDEX ix_insights_account_usage_daily_provider_day ON insights_account_usage_daily (provider, day);

CREATE TABLE insights_document_activity_daily (
    day DATE NOT NULL,
    account_id UUID NOT NULL,
    external_id TEXT NOT NULL,
    provider TEXT NOT NULL,
    title TEXT,
    mime TEXT,
    changes INTEGER NOT NULL,
    events JSONB NOT NULL,
    first_seen_at TIMESTAMP WITH TIME ZONE,
    last_modified_at TIMESTAMP WITH TIME ZONE,
    built_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_insights_document_activity_daily PRIMARY KEY (day, account_id, external_id)
);

CREATE INDEX ix_insights_document_activity_daily_account_id_external_id_day ON insights_document_activity_daily (account_id, external_id, day);

CREATE INDEX ix_insights_document_activity_daily_provider_day ON insights_document_activity_daily (provider, day);

CREATE TABLE insights_sharing_daily (
    day DATE NOT NULL,
    account_id UUID NOT NULL,
    provider TEXT NOT NULL,
    live_documents BIGINT NOT NULL,
    private BIGINT NOT NULL,
    shared_internal BIGINT NOT NULL,
    domain BIGINT NOT NULL,
    shared_external BIGINT NOT NULL,
    anyone_with_link BIGINT NOT NULL,
    public BIGINT NOT NULL,
    unclassified BIGINT NOT NULL,
    newly_shared_external BIGINT NOT NULL,
    newly_public BIGINT NOT NULL,
    unshared BIGINT NOT NULL,
    built_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT pk_insights_sharing_daily PRIMARY KEY (day, account_id)
);

CREATE INDEX ix_insights_sharing_daily_provider_day ON insights_sharing_daily (provider, day);

CREATE TABLE insights_sync_runs_daily (
    day DATE NOT NULL,
    provider TEXT NOT NULL,
    kind TEXT NOT NULL,
    runs_started INTEGER NOT NULL,
    runs_completed INTEGER NOT NULL,
    runs_failed INTEGER NOT NULL,
    failure_rate FLOAT,
    duration_p50_ms BIGINT,
    duration_p95_ms BIGINT,
    duration_max_ms BIGINT,
    items_seen BIGINT NOT NULL,
    items_inserted BIGINT NOT NULL,
    items_updated BIGINT NOT NULL,
    items_tombstoned BIGINT NOT NULL,
    api_calls BIGINT NOT NULL,
    failures_by_code JSONB NOT NULL,
    built_at TIMESTAMP WITH TIME ZONE NOT NULL,
    runs_refused INTEGER DEFAULT '0' NOT NULL,
    CONSTRAINT pk_insights_sync_runs_daily PRIMARY KEY (day, provider, kind)
);

CREATE INDEX ix_insights_sync_runs_daily_provider_day ON insights_sync_runs_daily (provider, day);

CREATE TABLE activity_log (
    id UUID DEFAULT gen_random_uuid() NOT NULL,
    event TEXT NOT NULL,
    owner_id UUID,
    account_id UUID,
    provider TEXT,
    run_id TEXT,
    payload JSONB NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    CONSTRAINT pk_activity_log PRIMARY KEY (id),
    CONSTRAINT fk_activity_log_account_id_connector_accounts FOREIGN KEY(account_id) REFERENCES connector_accounts (id) ON DELETE SET NULL
);

CREATE INDEX ix_activity_log_account_id_created_at ON activity_log (account_id, created_at);

CREATE INDEX ix_activity_log_event_created_at ON activity_log (event, created_at);

CREATE INDEX ix_activity_log_provider_created_at ON activity_log (provider, created_at);

CREATE INDEX ix_activity_log_run_id ON activity_log (run_id);

CREATE TABLE connector_files (
    id UUID DEFAULT gen_random_uuid() NOT NULL,
    account_id UUID NOT NULL,
    provider TEXT NOT NULL,
    external_id TEXT NOT NULL,
    title TEXT,
    mime TEXT,
    size BIGINT,
    modified_at TIMESTAMP WITH TIME ZONE,
    url TEXT,
    meta_json JSONB,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    content_hash TEXT NOT NULL,
    deleted_at TIMESTAMP WITH TIME ZONE,
    deleted_reason TEXT,
    CONSTRAINT pk_connector_files PRIMARY KEY (id),
    CONSTRAINT uq_connector_files_account_id_external_id UNIQUE (account_id, external_id),
    CONSTRAINT ck_connector_files_tombstone_has_reason CHECK ((deleted_at IS NULL) = (deleted_reason IS NULL)),
    CONSTRAINT fk_connector_files_account_id_connector_accounts FOREIGN KEY(account_id) REFERENCES connector_accounts (id) ON DELETE CASCADE
);

CREATE INDEX ix_connector_files_account_id_deleted_at ON connector_files (account_id, deleted_at);

CREATE INDEX ix_connector_files_account_id_modified_at ON connector_files (account_id, modified_at);

CREATE INDEX ix_connector_files_provider_modified_at ON connector_files (provider, modified_at);

CREATE TABLE connector_jobs (
    id UUID DEFAULT gen_random_uuid() NOT NULL,
    account_id UUID NOT NULL,
    kind TEXT NOT NULL,
    status TEXT DEFAULT 'pending' NOT NULL,
    started_at TIMESTAMP WITH TIME ZONE,
    finished_at TIMESTAMP WITH TIME ZONE,
    attempts INTEGER DEFAULT '0' NOT NULL,
    last_error TEXT,
    meta_json JSONB,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    run_id TEXT,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    CONSTRAINT pk_connector_jobs PRIMARY KEY (id),
    CONSTRAINT ck_connector_jobs_status CHECK (status IN ('pending', 'running', 'completed', 'failed')),
    CONSTRAINT ck_connector_jobs_attempts_non_negative CHECK (attempts >= 0),
    CONSTRAINT fk_connector_jobs_account_id_connector_accounts FOREIGN KEY(account_id) REFERENCES connector_accounts (id) ON DELETE CASCADE
);

CREATE INDEX ix_connector_jobs_account_id_created_at ON connector_jobs (account_id, created_at);

CREATE INDEX ix_connector_jobs_finished_at ON connector_jobs (finished_at);

CREATE INDEX ix_connector_jobs_kind_status_created_at ON connector_jobs (kind, status, created_at);

CREATE INDEX ix_connector_jobs_started_at ON connector_jobs (started_at);

CREATE INDEX ix_connector_jobs_status_created_at ON connector_jobs (status, created_at);

CREATE UNIQUE INDEX uq_connector_jobs_one_open_per_account_kind ON connector_jobs (account_id, kind) WHERE status IN ('pending', 'running');

CREATE TABLE connector_push_channels (
    id TEXT NOT NULL,
    account_id UUID NOT NULL,
    provider TEXT NOT NULL,
    corpus TEXT NOT NULL,
    token_hash TEXT,
    resource_id TEXT NOT NULL,
    expires_at TIMESTAMP WITH TIME ZONE NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    last_message_at TIMESTAMP WITH TIME ZONE,
    last_message_number BIGINT,
    CONSTRAINT pk_connector_push_channels PRIMARY KEY (id),
    CONSTRAINT fk_connector_push_channels_account_id_connector_accounts FOREIGN KEY(account_id) REFERENCES connector_accounts (id) ON DELETE CASCADE
);

CREATE INDEX ix_connector_push_channels_account_id ON connector_push_channels (account_id);

CREATE INDEX ix_connector_push_channels_expires_at ON connector_push_channels (expires_at);

CREATE INDEX ix_connector_push_channels_provider_resource_id ON connector_push_channels (provider, resource_id);

CREATE TABLE connector_sweep_seen (
    sweep_id UUID NOT NULL,
    external_id TEXT NOT NULL,
    account_id UUID NOT NULL,
    CONSTRAINT pk_connector_sweep_seen PRIMARY KEY (sweep_id, external_id),
    CONSTRAINT fk_connector_sweep_seen_account_id_connector_accounts FOREIGN KEY(account_id) REFERENCES connector_accounts (id) ON DELETE CASCADE
);

CREATE TABLE connector_sync_state (
    account_id UUID NOT NULL,
    corpus TEXT NOT NULL,
    cursor TEXT,
    sweep_cursor TEXT,
    sweep_page_token TEXT,
    sweep_id UUID,
    sweep_reconcile BOOLEAN DEFAULT false NOT NULL,
    last_full_sync_at TIMESTAMP WITH TIME ZONE,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    last_checked_at TIMESTAMP WITH TIME ZONE,
    CONSTRAINT pk_connector_sync_state PRIMARY KEY (account_id, corpus),
    CONSTRAINT fk_connector_sync_state_account_id_connector_accounts FOREIGN KEY(account_id) REFERENCES connector_accounts (id) ON DELETE CASCADE
);

CREATE TABLE vault_documents (
    id UUID DEFAULT gen_random_uuid() NOT NULL,
    owner_id UUID NOT NULL,
    source TEXT NOT NULL,
    external_id TEXT NOT NULL,
    account_id UUID,
    parent_external_id TEXT,
    title TEXT,
    mime TEXT,
    size BIGINT,
    sha256 TEXT,
    content BYTEA,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    deleted_at TIMESTAMP WITH TIME ZONE,
    deleted_reason TEXT,
    CONSTRAINT pk_vault_documents PRIMARY KEY (id),
    CONSTRAINT uq_vault_documents_account_id_source_external_id UNIQUE (account_id, source, external_id),
    CONSTRAINT fk_vault_documents_account_id_connector_accounts FOREIGN KEY(account_id) REFERENCES connector_accounts (id) ON DELETE SET NULL
);

CREATE INDEX ix_vault_documents_account_id ON vault_documents (account_id);
