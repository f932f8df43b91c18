"""Every setting is parsed and range-checked, and a bad one names itself and its problem."""

from __future__ import annotations

import pytest

from monolyth_pipelines.settings import (
    ConfigError,
    DriveLimits,
    GmailLimits,
    GoogleEndpoints,
    RetrySettings,
    check_run_settings,
)
from monolyth_pipelines.sync.guards import mass_tombstone_refusal


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"SUPPORTED_MIME_TYPES": ","}, "SUPPORTED_MIME_TYPES: is empty"),
        ({"SUPPORTED_MIME_TYPES": "application/pdf,docs"}, "SUPPORTED_MIME_TYPES: 'docs' is not a MIME type"),
        ({"DRIVE_PERSISTENCE": "Vault "}, None),
        ({"DRIVE_PERSISTENCE": "vualt"}, "DRIVE_PERSISTENCE: must be one of metadata, vault, got 'vualt'"),
        ({"MAX_FILES_PER_RUN": "0"}, "MAX_FILES_PER_RUN: must be at least 1, got 0"),
        ({"MAX_FILES_PER_RUN": "ten"}, "MAX_FILES_PER_RUN: must be an integer, got 'ten'"),
        ({"MAX_FILE_SIZE_MB": "0"}, "MAX_FILE_SIZE_MB: must be greater than 0, got 0.0"),
        ({"MAX_FILE_SIZE_MB": "nan"}, "MAX_FILE_SIZE_MB: must be a finite number"),
        ({"DRIVE_INCLUDE_SHARED_DRIVES": "maybe"}, "DRIVE_INCLUDE_SHARED_DRIVES: must be true or false"),
        ({"MONOLYTH_MASS_TOMBSTONE_SHARE": "-0.1"}, "MONOLYTH_MASS_TOMBSTONE_SHARE: must be at least 0"),
    ],
)
def test_drive_limits_from_env(environ: dict[str, str], message: str | None) -> None:
    if message is None:
        assert DriveLimits.from_env(environ).import_to_vault
        return
    with pytest.raises(ConfigError) as bad:
        DriveLimits.from_env(environ)
    assert str(bad.value).startswith(message)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"GMAIL_QUOTA_COSTS": "threads.get"},
            "GMAIL_QUOTA_COSTS: wants method=units items, got 'threads.get'",
        ),
        ({"GMAIL_QUOTA_COSTS": "threads.get=x"}, "GMAIL_QUOTA_COSTS: wants method=units items"),
        ({"GMAIL_QUOTA_COSTS": ","}, "GMAIL_QUOTA_COSTS: is empty"),
        ({"GMAIL_QUOTA_COSTS": "thread.get=5"}, "GMAIL_QUOTA_COSTS: unknown method 'thread.get'"),
        ({"GMAIL_QUOTA_COSTS": "threads.get=0"}, "GMAIL_QUOTA_COSTS (threads.get): must be at least 1"),
        ({"GMAIL_QUOTA_COSTS": "threads.get=500"}, "GMAIL_QUOTA_COSTS: threads.get costs 500 units"),
        ({"GMAIL_QUOTA_UNITS_PER_SECOND": "0"}, "GMAIL_QUOTA_UNITS_PER_SECOND: must be greater than 0"),
        ({"GMAIL_MAX_THREADS": "-1"}, "GMAIL_MAX_THREADS: must be at least 1"),
        ({"GMAIL_BATCH_SIZE": "101"}, "GMAIL_BATCH_SIZE: must be at most 100"),
        ({"GMAIL_ATTACHMENT_MIME_TYPES": "pdf"}, "GMAIL_ATTACHMENT_MIME_TYPES: 'pdf' is not a MIME type"),
        ({"GMAIL_ATTACHMENT_FILENAME_PATTERN": "(*"}, "GMAIL_ATTACHMENT_FILENAME_PATTERN: is not a regular"),
        ({"GMAIL_ATTACHMENT_METADATA": "ja"}, "GMAIL_ATTACHMENT_METADATA: must be true or false"),
    ],
)
def test_gmail_limits_from_env(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as bad:
        GmailLimits.from_env(environ)
    assert str(bad.value).startswith(message)


def test_defaults_are_valid_and_a_run_override_is_named_by_its_config_path() -> None:
    assert DriveLimits.from_env({}) == DriveLimits()
    assert GmailLimits.from_env({}) == GmailLimits()
    check_run_settings({})
    with pytest.raises(ConfigError) as bad:
        DriveLimits(page_size=0).validate({"page_size": "ops.x.config.page_size"})
    assert str(bad.value).startswith("ops.x.config.page_size: must be at least 1")


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"MONOLYTH_RETRY_MAX_ATTEMPTS": "0"}, "MONOLYTH_RETRY_MAX_ATTEMPTS: must be at least 1"),
        ({"MONOLYTH_RETRY_BASE_SECONDS": "-1"}, "MONOLYTH_RETRY_BASE_SECONDS: must be at least 0"),
        ({"MONOLYTH_RETRY_CAP_SECONDS": "0.5"}, "MONOLYTH_RETRY_CAP_SECONDS: must be at least 1"),
        ({"MONOLYTH_STEP_RETRY_CAP_SECONDS": "5"}, "MONOLYTH_STEP_RETRY_CAP_SECONDS: must be at least 10"),
        ({"MONOLYTH_STALE_JOB_SECONDS": "0"}, "MONOLYTH_STALE_JOB_SECONDS: must be greater than 0"),
        ({"MONOLYTH_GOOGLE_API_ENDPOINT": "localhost:8765"}, "MONOLYTH_GOOGLE_API_ENDPOINT: must be an http"),
        ({"MONOLYTH_GOOGLE_TOKEN_URI": "ftp://x/token"}, "MONOLYTH_GOOGLE_TOKEN_URI: must be an http"),
    ],
)
def test_run_settings(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as bad:
        check_run_settings(environ)
    assert str(bad.value).startswith(message)
    assert RetrySettings.from_env({}) == RetrySettings()


def test_endpoints_come_from_the_deployment_unless_it_allows_others() -> None:
    deployed = GoogleEndpoints.from_env(
        {
            "MONOLYTH_GOOGLE_API_ENDPOINT": "http://127.0.0.1:8765/",
            "MONOLYTH_GOOGLE_TOKEN_URI": "http://127.0.0.1:8765/token",
            "MONOLYTH_GOOGLE_ENDPOINT_ALLOWLIST": "http://10.0.0.9:8765",
        }
    )
    assert deployed.with_override(api_endpoint=None, token_uri=None) == deployed
    # Repeating what the deployment says is harmless; an allow-listed host is accepted.
    assert deployed.with_override(api_endpoint="http://127.0.0.1:8765", token_uri=None).api_base == (
        "http://127.0.0.1:8765"
    )
    assert deployed.with_override(api_endpoint="http://10.0.0.9:8765", token_uri=None).api_base == (
        "http://10.0.0.9:8765"
    )
    with pytest.raises(ConfigError) as bad:
        deployed.with_override(api_endpoint=None, token_uri="https://attacker.example/token")
    assert bad.value.variable == "resources.google.config.token_uri"
    with pytest.raises(ConfigError):
        GoogleEndpoints.from_env({}).with_override(api_endpoint="http://attacker.example", token_uri=None)


def test_mass_tombstone_refusal_counts_and_share() -> None:
    limits = DriveLimits()
    assert mass_tombstone_refusal(50, 100, limits, ["supported_mime_types"]) is None
    message = mass_tombstone_refusal(51, 100, limits, ["supported_mime_types"])
    assert message is not None and "would tombstone 51 of the account's 100 live rows (51%)" in message
    assert mass_tombstone_refusal(51, 100, DriveLimits(allow_mass_tombstone=True), []) is None
    assert mass_tombstone_refusal(5, 100, DriveLimits(mass_tombstone_share=0.0), []) is not None
    assert mass_tombstone_refusal(0, 0, limits, []) is None
