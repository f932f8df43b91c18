"""Permissions of the shared-drive items a Drive page is about to store, from ``permissions.list``.

``files.list``, ``files.get`` and ``changes.list`` carry each My Drive file's ``permissions`` in
the same page (the field is in their ``fields=``), but Google leaves the field out for items in
shared drives. Those, and only those, are asked for with ``permissions.list`` (supportsAllDrives),
in batches of 100 calls paced under Drive's per-user quota; a list longer than one page is paged
with single calls. Only files that will be stored are asked about (in scope by type, size and
trash). What is not found, or refused, stays unknown: the row keeps no sharing keys rather than
an empty list that would read as "nobody".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from monolyth_pipelines.domain import drive as drive_domain
from monolyth_pipelines.domain.permissions import PERMISSIONS_LIST_FIELDS
from monolyth_pipelines.errors import ErrorCode
from monolyth_pipelines.google.batching import BatchCall, Batcher
from monolyth_pipelines.google.pacing import Pacer, QuotaGate

if TYPE_CHECKING:
    from monolyth_pipelines.sync.drive import DriveSync

METHOD = "permissions.list"
# Google's per-user Drive quota for existing projects: 12,000 queries a minute (one per call,
# batched or not; docs/benchmarks.md).
DRIVE_QUERIES_PER_MINUTE = 12_000
BATCH_CALLS = 100  # Google's cap for a Drive batch
PAGE_SIZE = 100  # permissions.list's maximum


def drive_quota() -> QuotaGate:
    return QuotaGate(Pacer(DRIVE_QUERIES_PER_MINUTE / 60, window=60, costs={METHOD: 1}))


@dataclass
class PermissionLookups:
    """What fetching a page's permissions cost; added to the counters by the writer's thread."""

    calls: int = 0
    retries: int = 0
    missing: int = 0  # files Google would not list them for (not found, or refused)


def needs_lookup(file: Any, limits: Any) -> bool:
    return (
        isinstance(file, dict)
        and bool(file.get("driveId"))
        and "permissions" not in file
        and drive_domain.classify_drive_file(file, limits) is None
    )


class DrivePermissions:
    """Mixed into ``DriveSync``: uses its Drive client, limits, retry policy and quota gate."""

    def _fill_permissions(self: DriveSync, files: Iterable[Any]) -> PermissionLookups:
        """Set ``permissions`` on each shared-drive item of ``files`` that lacks it (in place).
        Safe from the listing's fetch thread: it changes no counter, it reports them."""
        wanted = [f for f in files if needs_lookup(f, self.limits)]
        cost = PermissionLookups()
        if not wanted:
            return cost

        def retried(calls: int) -> None:
            cost.retries += calls

        def build(file_id: str, token: str | None = None) -> Callable[[], Any]:
            return lambda: self.drive.permissions().list(
                fileId=file_id,
                pageSize=PAGE_SIZE,
                pageToken=token,
                supportsAllDrives=True,
                fields=PERMISSIONS_LIST_FIELDS,
            )

        batcher = Batcher(
            self.clients.drive_batch,
            self.drive_quota,
            self.policy,
            retried,
            METHOD,
            BATCH_CALLS,
            tolerated=frozenset({ErrorCode.NOT_FOUND, ErrorCode.INSUFFICIENT_PERMISSIONS}),
        )
        calls = [BatchCall(key=str(f["id"]), build=build(str(f["id"])), context=f) for f in wanted]
        for answers in batcher.run(calls):
            for answer in answers:
                # ``attempts`` counts the failed tries; a success is one more call.
                if answer.error is not None or not isinstance(answer.response, dict):
                    cost.calls += answer.call.attempts
                    cost.missing += 1
                    continue
                cost.calls += 1 + answer.call.attempts
                found = list(answer.response.get("permissions") or [])
                token = answer.response.get("nextPageToken")
                while token:
                    # A list over 100 grants: the rest one page at a time, rare enough to go alone.
                    with self.drive_quota.spend(METHOD):
                        more = self._execute(build(answer.call.key, token)())
                    cost.calls += 1
                    found += list(more.get("permissions") or [])
                    token = more.get("nextPageToken")
                answer.call.context["permissions"] = found
        return cost

    def _count_lookups(self: DriveSync, cost: PermissionLookups) -> None:
        self.counters.permission_lookups += cost.calls
        self.counters.retries += cost.retries
        self.counters.permissions_unavailable += cost.missing
