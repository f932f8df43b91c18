"""What every provider's fetch loop shares: the run's context, and Google calls retried with backoff."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import Any

import sqlalchemy as sa
from googleapiclient.http import HttpRequest

from monolyth_pipelines.google.retry import RetryEvent, call_with_retries, expect_json_object
from monolyth_pipelines.sync.collector import fewer_collections
from monolyth_pipelines.sync.pages import PageWrite
from monolyth_pipelines.sync.run import SyncRun


class PagedSync:
    """What every provider's fetch loop shares: the run's context and Google calls retried with
    backoff. A provider subclasses it and implements ``pages()``."""

    def __init__(self, run: SyncRun) -> None:
        assert run.account is not None and run.clients is not None, "start the run and attach clients first"
        self.run = run
        self.engine: sa.Engine = run.engine
        self.account = run.account
        self.account_id = run.account.id
        self.owner_id = run.account.owner_id
        self.clients = run.clients
        self.policy = run.policy
        self.counters = run.counters

    def pages(self) -> Iterable[PageWrite]:
        raise NotImplementedError

    def sync(self) -> None:
        with fewer_collections():
            self.run.commit_pages(self.pages())

    def _count_retry(self, _event: RetryEvent) -> None:
        self.counters.retries += 1

    def _execute(
        self, request: HttpRequest, *, around: Callable[[], AbstractContextManager[object]] | None = None
    ) -> Any:
        """``request`` with capped backoff; each attempt runs inside ``around()`` when given (e.g.
        a quota pacer: a retried call spends quota again)."""

        def attempt() -> Any:
            if around is None:
                return expect_json_object(request.execute())
            with around():
                return expect_json_object(request.execute())

        return call_with_retries(attempt, policy=self.policy, on_retry=self._count_retry)
