"""One account's sync from claim to outcome, with no Dagster in it: the per-account asset and the
batch run both call ``sync_account`` and only differ in how they report the outcome.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from monolyth_pipelines.errors import ErrorCode, SyncError
from monolyth_pipelines.sync.refusals import AccountBusy, classify_run_error
from monolyth_pipelines.sync.run import RunIdentity, SyncRun

if TYPE_CHECKING:
    from monolyth_pipelines.google.clients import GoogleClients
    from monolyth_pipelines.google.retry import Backoff
    from monolyth_pipelines.providers import Limits


@dataclass
class AccountOutcome:
    """Exactly one of ``meta`` (completed), ``busy`` (another run holds the account; nothing
    written) or ``error`` (the job failed, or stays running when ``will_retry``)."""

    run: SyncRun
    meta: dict[str, Any] | None = None
    busy: AccountBusy | None = None
    error: SyncError | None = None
    will_retry: bool = False
    # Recording ``error`` failed too (database gone): the job stays open for the reaper.
    record_error: SyncError | None = None

    @property
    def job_id(self) -> str:
        return str(self.run.job.id) if self.run.job is not None else ""


@dataclass(frozen=True)
class AccountSyncer:
    """What a sync needs besides the account: the provider's fetch loop, the Google clients, and
    the run's view of which runs are alive."""

    engine: sa.Engine
    sync_class: type
    clients_for: Callable[[dict[str, Any]], GoogleClients]
    check_endpoints: Callable[[], object]  # raises ConfigError for endpoints the deployment refuses
    call_policy: Callable[[], Backoff]
    is_run_alive: Callable[[str], bool]
    stale_after: timedelta
    log: Callable[[str], None]

    def sync(
        self,
        identity: RunIdentity,
        limits: Limits,
        *,
        may_retry: bool,
        config_error: Exception | None = None,
    ) -> AccountOutcome:
        """``config_error``: the run's settings did not validate; the job opens and fails as
        ``bad_config``. ``may_retry``: a transient failure leaves the job running for a retry."""
        run = SyncRun(
            self.engine,
            identity,
            limits=limits,
            is_run_alive=self.is_run_alive,
            stale_after=self.stale_after,
            log=self.log,
        )
        clients: GoogleClients | None = None
        try:
            run.start()
            if config_error is not None:
                raise config_error
            self.check_endpoints()  # refuses run config that would send the account's tokens elsewhere
            assert run.account is not None and run.account.token_json
            try:
                clients = self.clients_for(run.account.token_json)
            except ValueError as exc:
                raise SyncError(ErrorCode.AUTH_REVOKED, f"stored OAuth tokens are unusable: {exc}") from None
            run.clients, run.policy = clients, self.call_policy()
            self.sync_class(run).sync()
            return AccountOutcome(run, meta=run.complete())
        except AccountBusy as busy:
            return AccountOutcome(run, busy=busy)
        except Exception as exc:
            error = exc if isinstance(exc, SyncError) else classify_run_error(exc)
            will_retry = error.retryable and may_retry
            try:
                run.fail(error, will_retry=will_retry)
            except Exception as record_exc:
                return AccountOutcome(run, error=error, record_error=classify_run_error(record_exc))
            return AccountOutcome(run, error=error, will_retry=will_retry)
        finally:
            if clients is not None:
                clients.close()
