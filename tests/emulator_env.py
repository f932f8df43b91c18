"""The environment a test sets so the CLI, the library and Dagster runs in this process talk to
the emulator and a test database, with retries that do not slow the test down."""

from __future__ import annotations

from pathlib import Path

import pytest


def use_emulator(monkeypatch: pytest.MonkeyPatch, base_url: str, database_url: str, data_dir: Path) -> None:
    monkeypatch.setenv("MONOLYTH_DATABASE_URL", database_url)
    monkeypatch.setenv("MONOLYTH_DATA_DIR", str(data_dir))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("MONOLYTH_GOOGLE_API_ENDPOINT", base_url)
    monkeypatch.setenv("MONOLYTH_GOOGLE_TOKEN_URI", f"{base_url}/token")
    monkeypatch.setenv("MONOLYTH_RETRY_BASE_SECONDS", "0.001")
    monkeypatch.setenv("MONOLYTH_RETRY_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("MONOLYTH_STEP_RETRY_WAIT_SECONDS", "0")
