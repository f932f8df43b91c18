"""Fixtures for emulator tests: a small served emulator per test, and real Google clients on it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from googleapiclient.discovery import Resource, build

from monolyth_pipelines.emulator import EmulatedAccount, GoogleEmulator

EMAIL = "alice@example.com"


def drive_client(base_url: str, account: EmulatedAccount) -> Resource:
    return build(
        "drive",
        "v3",
        credentials=account.credentials(f"{base_url}/token"),
        static_discovery=True,
        client_options={"api_endpoint": f"{base_url}/drive/v3/"},
        cache_discovery=False,
    )


def gmail_client(base_url: str, account: EmulatedAccount) -> Resource:
    return build(
        "gmail",
        "v1",
        credentials=account.credentials(f"{base_url}/token"),
        static_discovery=True,
        client_options={"api_endpoint": f"{base_url}/"},
        cache_discovery=False,
    )


@dataclass
class Served:
    emu: GoogleEmulator
    account: EmulatedAccount
    base_url: str

    @property
    def drive(self) -> Any:
        return drive_client(self.base_url, self.account)

    @property
    def gmail(self) -> Any:
        return gmail_client(self.base_url, self.account)

    def stats(self) -> dict[str, Any]:
        return self.emu.stats(self.account)


@pytest.fixture
def emu() -> GoogleEmulator:
    return GoogleEmulator(seed=7)


@pytest.fixture
def served(emu: GoogleEmulator) -> Iterator[Served]:
    """One account (60 Drive files, 25 threads) served on an ephemeral port."""
    account = emu.add_account(EMAIL, drive_files=60, gmail_threads=25)
    with emu.serve() as base_url:
        yield Served(emu, account, base_url)


def no_sleep(request: Any) -> Any:
    """Skip googleapiclient's backoff sleeps so retry tests stay fast."""
    request._sleep = lambda seconds: None
    return request
