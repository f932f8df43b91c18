"""Counters per account: HTTP requests and API calls per endpoint, statuses, faults, quota units.

A batch is one HTTP request (``batch.gmail``/``batch.drive``) and N API calls. Calls that fail
authentication are counted under the account their token belonged to, or under ``"-"``.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

UNKNOWN_ACCOUNT = "-"


@dataclass
class Counters:
    http_requests: Counter[str] = field(default_factory=Counter)
    api_calls: Counter[str] = field(default_factory=Counter)
    statuses: defaultdict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    faults_injected: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    quota_exceeded: Counter[str] = field(default_factory=Counter)
    quota_units: Counter[str] = field(default_factory=Counter)  # by API: "drive", "gmail"

    def merge(self, other: Counters) -> None:
        self.http_requests.update(other.http_requests)
        self.api_calls.update(other.api_calls)
        for endpoint, statuses in other.statuses.items():
            self.statuses[endpoint].update(statuses)
        self.faults_injected.update(other.faults_injected)
        self.dropped.update(other.dropped)
        self.quota_exceeded.update(other.quota_exceeded)
        self.quota_units.update(other.quota_units)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready counters, with totals precomputed for quick assertions."""
        statuses = {
            ep: {str(code): n for code, n in sorted(c.items())} for ep, c in sorted(self.statuses.items())
        }
        all_statuses: Counter[int] = Counter()
        for counter in self.statuses.values():
            all_statuses.update(counter)
        return {
            "http_requests": dict(sorted(self.http_requests.items())),
            "api_calls": dict(sorted(self.api_calls.items())),
            "statuses": statuses,
            "faults_injected": dict(sorted(self.faults_injected.items())),
            "dropped": dict(sorted(self.dropped.items())),
            "quota_exceeded": dict(sorted(self.quota_exceeded.items())),
            "quota_units": dict(sorted(self.quota_units.items())),
            "totals": {
                "http_requests": sum(self.http_requests.values()),
                "api_calls": sum(self.api_calls.values()),
                "faults_injected": sum(self.faults_injected.values()),
                "dropped": sum(self.dropped.values()),
                "quota_exceeded": sum(self.quota_exceeded.values()),
                "responses_429": all_statuses.get(429, 0),
                "errors": sum(n for code, n in all_statuses.items() if code >= 400),
            },
        }


class Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_account: dict[str, Counters] = {}

    def _counters(self, account: str | None) -> Counters:
        key = account or UNKNOWN_ACCOUNT
        counters = self._by_account.get(key)
        if counters is None:
            counters = self._by_account[key] = Counters()
        return counters

    def http_request(self, account: str | None, endpoint: str) -> None:
        with self._lock:
            self._counters(account).http_requests[endpoint] += 1

    def api_call(
        self,
        account: str | None,
        endpoint: str,
        status: int | None,
        *,
        injected: bool = False,
        quota_exceeded: bool = False,
        units: tuple[str, int] | None = None,
    ) -> None:
        """One API call; ``status`` None means the connection was dropped."""
        with self._lock:
            counters = self._counters(account)
            counters.api_calls[endpoint] += 1
            if status is None:
                counters.dropped[endpoint] += 1
            else:
                counters.statuses[endpoint][status] += 1
            if injected:
                counters.faults_injected[endpoint] += 1
            if quota_exceeded:
                counters.quota_exceeded[endpoint] += 1
            if units is not None:
                counters.quota_units[units[0]] += units[1]

    def account(self, account: str) -> dict[str, Any]:
        with self._lock:
            return self._counters(account).to_dict()

    def total(self) -> dict[str, Any]:
        with self._lock:
            merged = Counters()
            for counters in self._by_account.values():
                merged.merge(counters)
            return merged.to_dict()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            accounts = {key: counters.to_dict() for key, counters in sorted(self._by_account.items())}
        return {"total": self.total(), "accounts": accounts}

    def reset(self, account: str | None = None) -> None:
        """Forget every counter, or only those of ``account``."""
        with self._lock:
            if account is None:
                self._by_account.clear()
            else:
                self._by_account.pop(account, None)
