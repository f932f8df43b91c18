"""The provider registry is the one place a connector is declared: a stub third provider
registered there alone gets its asset, partitions, job, schedule, run config and CLI choice."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, ClassVar

import dagster as dg
import pytest

from monolyth_pipelines import providers
from monolyth_pipelines.cli import build_parser
from monolyth_pipelines.definitions import build_definitions
from monolyth_pipelines.sync.paged import PagedSync


@dataclasses.dataclass(frozen=True)
class StubLimits:
    max_events: int = 100

    CONFIG_FIELDS: ClassVar[dict[str, Any]] = {"max_events": int}

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> StubLimits:
        return cls()

    def with_overrides(self, overrides: dict[str, Any]) -> StubLimits:
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def settings_meta(self) -> dict[str, Any]:
        return {"max_events": self.max_events}

    def changed_settings(self, before: dict[str, Any]) -> list[str]:
        return []


class StubSync(PagedSync):
    def pages(self) -> Iterator[Any]:
        return iter(())


CALENDAR = providers.ProviderSpec(
    provider="google_calendar",
    kind="calendar_import",
    asset_name="google_calendar_events",
    partitions_name="google_calendar_accounts",
    limits=StubLimits,
    sync_class="tests.test_registry:StubSync",
    cron="15 * * * *",
    interval=timedelta(hours=2),
    description="Events of each connected Google Calendar (a stub).",
)


@pytest.fixture
def calendar() -> Iterator[providers.ProviderSpec]:
    providers.register(CALENDAR)
    try:
        yield CALENDAR
    finally:
        providers.unregister(CALENDAR.provider)


def _cli_accepts(provider: str) -> bool:
    try:
        args = build_parser().parse_args(["sync-request", provider, "--account", str(uuid.uuid4())])
    except SystemExit:
        return False
    return bool(args.provider == provider)


def test_a_third_provider_declared_in_the_registry_alone_appears_everywhere(
    calendar: providers.ProviderSpec, capsys: pytest.CaptureFixture[str]
) -> None:
    defs = build_definitions()
    dg.Definitions.validate_loadable(defs)
    repo = defs.get_repository_def()
    asset = repo.assets_defs_by_key[dg.AssetKey("google_calendar_events")]
    assert isinstance(asset.partitions_def, dg.DynamicPartitionsDefinition)
    assert asset.partitions_def.name == "google_calendar_accounts"
    assert {spec.name for spec in asset.check_specs} == {"sync_completeness"}
    assert repo.get_job("google_calendar_sync").partitions_def.name == "google_calendar_accounts"
    schedule = next(s for s in repo.schedule_defs if s.name == "google_calendar_scheduled_sync")
    assert schedule.cron_schedule == "15 * * * *"
    assert "2:00:00" in (schedule.description or "")
    # Its limits become the run config the launchpad offers.
    config_fields = asset.node_def.config_schema.config_type.fields  # type: ignore[union-attr]
    assert set(config_fields) == {"max_events"}
    assert _cli_accepts("google_calendar")
    # The two real connectors are untouched.
    assert dg.AssetKey("google_drive_files") in repo.assets_defs_by_key


def test_without_its_registry_entry_the_provider_is_nowhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MONOLYTH_FEATURE_FLAGS", raising=False)
    repo = build_definitions().get_repository_def()
    assert dg.AssetKey("google_calendar_events") not in repo.assets_defs_by_key
    assert not [s.name for s in repo.schedule_defs if "calendar" in s.name]
    assert not _cli_accepts("google_calendar")
    assert _cli_accepts("gmail")  # named even without its flag, and refused when used
