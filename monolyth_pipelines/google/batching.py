"""Batch requests that survive partial failure, under a quota.

google-api-python-client's ``BatchHttpRequest`` retries nothing inside a batch: a 429 or 5xx
for one call arrives in that call's callback. ``Batcher`` re-queues such calls into a later batch
after a backoff, hands tolerated permanent errors back, and paces every batch through a
``QuotaGate``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from googleapiclient.http import BatchHttpRequest, HttpRequest

from monolyth_pipelines.errors import ErrorCode, SyncError
from monolyth_pipelines.google.errors import classify_exception
from monolyth_pipelines.google.pacing import QuotaGate
from monolyth_pipelines.google.retry import Backoff, RetryEvent, call_with_retries


@dataclass
class BatchCall:
    key: str
    build: Callable[[], HttpRequest]  # a fresh request per attempt
    weight: int = 0  # expected reply bytes, for batches bounded by size
    attempts: int = 0
    context: Any = None  # whatever the caller needs back with the answer


@dataclass
class BatchAnswer:
    call: BatchCall
    response: Any  # the parsed JSON; None when ``error`` is set
    error: SyncError | None = None  # a permanent error the caller chose to tolerate


@dataclass
class Batcher:
    """Sends calls of one API method in paced batch requests and yields each batch's answers.

    Calls that fail inside a batch with a retryable error (429, 5xx) come back in a later
    batch after a backoff; after ``policy.max_attempts`` the error is raised. Permanent errors
    whose code is in ``tolerated`` are handed to the caller; any other one fails the run.
    """

    new_batch: Callable[[Callable[..., None]], BatchHttpRequest]  # e.g. GoogleClients.gmail_batch
    quota: QuotaGate
    policy: Backoff
    on_retries: Callable[[int], None]  # told how many calls are being retried
    method: str  # the quota's name for it, e.g. "threads.get"
    size: int
    max_weight: int | None = None
    tolerated: frozenset[ErrorCode] = field(default_factory=lambda: frozenset({ErrorCode.NOT_FOUND}))

    def run(self, calls: Iterable[BatchCall]) -> Iterator[list[BatchAnswer]]:
        source = iter(calls)
        queue: deque[BatchCall] = deque()
        while chunk := self._take(queue, source):
            answers, failed = self._send(chunk)
            if answers:
                yield answers
            if failed:
                queue.extendleft(call for call, _ in reversed(failed))
                self.policy.sleep(
                    max(self.policy.delay(call.attempts - 1, error.retry_after) for call, error in failed)
                )

    def _take(self, queue: deque[BatchCall], source: Iterator[BatchCall]) -> list[BatchCall]:
        """Re-queued calls first, then new ones pulled lazily, so a source is never read ahead."""
        chunk: list[BatchCall] = []
        weight = 0
        # Re-evaluated per call: pulling from the source may itself make a single call (a list page).
        while len(chunk) < max(1, self.size - self.quota.loose_calls(self.method)):
            if not queue:
                following = next(source, None)
                if following is None:
                    break
                queue.append(following)
            if chunk and self.max_weight is not None and weight + queue[0].weight > self.max_weight:
                break
            call = queue.popleft()
            chunk.append(call)
            weight += call.weight
        return chunk

    def _count_retry(self, _event: RetryEvent) -> None:
        self.on_retries(1)

    def _send(self, chunk: list[BatchCall]) -> tuple[list[BatchAnswer], list[tuple[BatchCall, SyncError]]]:
        def attempt() -> dict[str, tuple[Any, BaseException | None]]:
            replies: dict[str, tuple[Any, BaseException | None]] = {}

            def callback(request_id: str, response: Any, exception: BaseException | None) -> None:
                replies[request_id] = (response, exception)

            batch = self.new_batch(callback)
            for index, call in enumerate(chunk):
                batch.add(call.build(), request_id=str(index))
            # Paced per attempt: a batch that reached Google spent the quota even if it failed.
            with self.quota.spend(self.method, len(chunk), batch=True):
                batch.execute()
            return replies

        replies = call_with_retries(attempt, policy=self.policy, on_retry=self._count_retry)
        answers: list[BatchAnswer] = []
        failed: list[tuple[BatchCall, SyncError]] = []
        for index, call in enumerate(chunk):
            response, exception = replies.get(str(index), (None, None))
            if exception is None and response is not None:
                answers.append(BatchAnswer(call, response))
                continue
            error = (
                classify_exception(exception)
                if exception is not None
                else SyncError(ErrorCode.GOOGLE_UNAVAILABLE, "a batch reply lacked a call", retryable=True)
            )
            call.attempts += 1
            if error.retryable and call.attempts < self.policy.max_attempts:
                failed.append((call, error))
            elif error.code in self.tolerated:
                answers.append(BatchAnswer(call, None, error))
            else:
                raise error
        if failed:
            self.on_retries(len(failed))
        return answers, failed
