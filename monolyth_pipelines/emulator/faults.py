"""Fault injection (scripted or random errors, latency, dropped connections) and per-user quotas.

Endpoints are named like discovery method ids (``drive.files.list``,
``gmail.users.threads.get``; ``drive.files.get_media`` for ``alt=media``), and rules match them
with shell patterns (``drive.*``, ``*``). Every call inside a batch is matched on its own.

Quotas use a **sliding window**: a call is admitted when the units spent by that user in the
last ``window`` seconds, plus the call's cost, stay within the limit; a refused call spends
nothing. Drive counts requests per 60 s, Gmail counts units per 1 s. A client pacer stays under
the limit by never spending more than ``limit`` units in any window of that length.
"""

from __future__ import annotations

import fnmatch
import random
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from monolyth_pipelines.emulator.errors import ApiError, from_status

DEFAULT_GMAIL_COSTS: dict[str, int] = {
    "gmail.users.getProfile": 1,
    "gmail.users.labels.list": 1,
    "gmail.users.labels.get": 1,
    "gmail.users.threads.list": 10,
    "gmail.users.threads.get": 10,
    "gmail.users.messages.list": 5,
    "gmail.users.messages.get": 5,
    "gmail.users.messages.attachments.get": 5,
    "gmail.users.history.list": 2,
}


@dataclass
class FaultRule:
    """One rule. A rule fires on matching calls chosen by ``calls``, ``every`` or ``rate``."""

    endpoint: str = "*"
    status: int | None = None  # the error to answer; None with drop=False: latency only
    reason: str | None = None
    drop: bool = False  # close the connection without answering
    latency: float = 0.0  # seconds added to every matching call (fired or not)
    calls: frozenset[int] | None = None  # 1-based ordinals of matching calls that fire
    every: bool = False
    rate: float = 0.0
    statuses: tuple[int, ...] = ()  # with rate: pick one of these at random
    account: str | None = None
    # Rewrites a successful JSON answer (the parsed body in, a JSON value or raw bytes out): a
    # payload that breaks Google's documented shape, or a body that is not JSON at all.
    rewrite: Callable[[Any], Any] | None = None
    matched: int = 0
    fired: int = 0

    def describe(self) -> dict[str, Any]:
        out = asdict(self)
        out["calls"] = sorted(self.calls) if self.calls else None
        out["rewrite"] = getattr(self.rewrite, "__name__", None) if self.rewrite else None
        return out


@dataclass(frozen=True)
class Decision:
    latency: float = 0.0
    error: ApiError | None = None
    drop: bool = False
    rewrites: tuple[Callable[[Any], Any], ...] = ()

    @property
    def injected(self) -> bool:
        return self.error is not None or self.drop


class Faults:
    """The fault rules of one emulator. Methods return the rule, so a test can inspect ``fired``."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(f"faults:{seed}")
        self._lock = threading.Lock()
        self.rules: list[FaultRule] = []

    def add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def script(
        self,
        endpoint: str,
        *,
        calls: Iterable[int] = (),
        every: bool = False,
        status: int = 503,
        reason: str | None = None,
        account: str | None = None,
    ) -> FaultRule:
        """``script("drive.files.list", calls=[3])``: the 3rd matching call answers 503.

        ``every=True``: every matching call fails. Ordinals count calls matching this rule
        from the moment it was added.
        """
        return self.add(
            FaultRule(endpoint, status, reason, calls=frozenset(calls) or None, every=every, account=account)
        )

    def error_rate(
        self,
        rate: float,
        *,
        statuses: Iterable[int] = (503, 429),
        endpoint: str = "*",
        account: str | None = None,
    ) -> FaultRule:
        """A fraction of matching calls (seeded RNG) answer one of ``statuses``."""
        return self.add(FaultRule(endpoint, rate=rate, statuses=tuple(statuses), account=account))

    def latency(self, seconds: float, *, endpoint: str = "*", account: str | None = None) -> FaultRule:
        return self.add(FaultRule(endpoint, latency=seconds, account=account))

    def drop(
        self,
        endpoint: str = "*",
        *,
        calls: Iterable[int] = (),
        every: bool = False,
        rate: float = 0.0,
        account: str | None = None,
    ) -> FaultRule:
        """Close the socket without an answer (a batch drops whole if any of its calls does)."""
        return self.add(
            FaultRule(
                endpoint, drop=True, calls=frozenset(calls) or None, every=every, rate=rate, account=account
            )
        )

    def rewrite(
        self,
        endpoint: str,
        fn: Callable[[Any], Any],
        *,
        calls: Iterable[int] = (),
        account: str | None = None,
    ) -> FaultRule:
        """Successful answers of ``endpoint`` (every one, or the ``calls`` ordinals) pass through
        ``fn``: it gets the parsed JSON body and returns the value to send, or bytes sent as is."""
        return self.add(
            FaultRule(endpoint, calls=frozenset(calls) or None, every=not calls, account=account, rewrite=fn)
        )

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def decide(self, endpoint: str, account: str | None) -> Decision:
        latency = 0.0
        error: ApiError | None = None
        drop = False
        rewrites: list[Callable[[Any], Any]] = []
        with self._lock:
            for rule in self.rules:
                if not fnmatch.fnmatchcase(endpoint, rule.endpoint):
                    continue
                if rule.account is not None and rule.account != account:
                    continue
                rule.matched += 1
                latency += rule.latency
                if rule.rewrite is not None:
                    if rule.every or (rule.calls is not None and rule.matched in rule.calls):
                        rule.fired += 1
                        rewrites.append(rule.rewrite)
                    continue
                if error is not None or drop:
                    continue
                fires = (
                    rule.every
                    or (rule.calls is not None and rule.matched in rule.calls)
                    or (rule.rate > 0 and self._rng.random() < rule.rate)
                )
                if not fires or (rule.status is None and not rule.statuses and not rule.drop):
                    continue
                rule.fired += 1
                if rule.drop:
                    drop = True
                    continue
                status = rule.status if rule.status is not None else self._rng.choice(rule.statuses)
                error = from_status(status, rule.reason)
        return Decision(latency, error, drop, tuple(rewrites))


class SlidingWindow:
    """Units spent per key over the last ``window`` seconds."""

    def __init__(self, window: float) -> None:
        self.window = window
        self._spent: dict[str, deque[tuple[float, float]]] = {}
        self._totals: dict[str, float] = {}

    def try_spend(self, key: str, units: float, limit: float, now: float) -> bool:
        spent = self._spent.setdefault(key, deque())
        total = self._totals.get(key, 0.0)
        while spent and spent[0][0] <= now - self.window:
            total -= spent.popleft()[1]
        if total + units > limit:
            self._totals[key] = total
            return False
        spent.append((now, units))
        self._totals[key] = total + units
        return True

    def reset(self) -> None:
        self._spent.clear()
        self._totals.clear()


@dataclass
class Quotas:
    """Per-user quota enforcement (off until a limit is set) and per-method unit costs."""

    clock: Callable[[], float]
    drive_requests_per_minute: float | None = None
    gmail_units_per_second: float | None = None
    gmail_costs: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_GMAIL_COSTS))
    drive_costs: dict[str, int] = field(default_factory=dict)  # default 1 per call
    drive_status: int = 403  # Drive's per-user limit: 403 userRateLimitExceeded
    gmail_status: int = 429  # Gmail's per-user limit: 429 rateLimitExceeded
    _drive: SlidingWindow = field(default_factory=lambda: SlidingWindow(60.0))
    _gmail: SlidingWindow = field(default_factory=lambda: SlidingWindow(1.0))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def configure(
        self,
        *,
        drive_requests_per_minute: float | None = None,
        gmail_units_per_second: float | None = None,
        gmail_costs: Mapping[str, int] | None = None,
        drive_costs: Mapping[str, int] | None = None,
        drive_status: int | None = None,
        gmail_status: int | None = None,
    ) -> None:
        """Set limits (None leaves a setting unchanged; use ``disable()`` to switch all off)."""
        with self._lock:
            if drive_requests_per_minute is not None:
                self.drive_requests_per_minute = drive_requests_per_minute
            if gmail_units_per_second is not None:
                self.gmail_units_per_second = gmail_units_per_second
            if gmail_costs is not None:
                self.gmail_costs.update(gmail_costs)
            if drive_costs is not None:
                self.drive_costs.update(drive_costs)
            if drive_status is not None:
                self.drive_status = drive_status
            if gmail_status is not None:
                self.gmail_status = gmail_status

    def disable(self) -> None:
        with self._lock:
            self.drive_requests_per_minute = None
            self.gmail_units_per_second = None
            self._drive.reset()
            self._gmail.reset()

    def cost(self, endpoint: str) -> tuple[str, int]:
        """(API, units) one call of ``endpoint`` costs."""
        if endpoint.startswith("gmail."):
            return "gmail", self.gmail_costs.get(endpoint, 5)
        return "drive", self.drive_costs.get(endpoint, 1)

    def admit(self, endpoint: str, account: str) -> ApiError | None:
        """Spend the call's units, or return the error to answer when over the limit."""
        api, units = self.cost(endpoint)
        if api == "gmail":
            window, limit, status = self._gmail, self.gmail_units_per_second, self.gmail_status
        else:
            window, limit, status = self._drive, self.drive_requests_per_minute, self.drive_status
        if limit is None:
            return None
        with self._lock:
            admitted = window.try_spend(account, units, limit, self.clock())
        return None if admitted else _limit_error(status)

    def describe(self) -> dict[str, Any]:
        return {
            "drive_requests_per_minute": self.drive_requests_per_minute,
            "gmail_units_per_second": self.gmail_units_per_second,
            "gmail_costs": dict(self.gmail_costs),
            "drive_costs": dict(self.drive_costs),
            "drive_status": self.drive_status,
            "gmail_status": self.gmail_status,
            "window": "sliding; drive 60 s, gmail 1 s",
        }


def _limit_error(status: int) -> ApiError:
    if status == 429:
        return ApiError(429, "Too many requests. User-rate limit exceeded.", "rateLimitExceeded")
    return ApiError(status, reason="userRateLimitExceeded")
