"""Client-side pacing so a sync stays under Google's per-user quota instead of bouncing off 429s.

``Pacer`` combines two rules, both in quota units:

* a **token bucket** (refill ``rate`` per second, ``capacity``) that sets the long-run rate and
  spreads requests out instead of sending them in clumps;
* a **sliding-window ledger** that never lets more than ``rate * window`` units start within any
  ``window`` seconds. A bucket alone cannot promise that: a full bucket lets ``capacity`` units
  through at once *and* keeps refilling, so a window can see ``capacity + rate * window`` units.

Long-run throughput is ``rate`` when requests cost at most ``rate * window / k`` for a whole k
(e.g. 10-unit calls at 250 units/s). Otherwise the window rule itself caps it at
``floor(rate * window / cost) * cost`` per window; no scheduler can beat that.

A single request costing more than the window allows (a big batch) cannot fit any window: it
waits for an empty window and a full bucket, goes through, and the debt it leaves holds the
following requests back, so the average still holds. Size batches with
``max_calls_per_window`` to avoid that.

Guarantees are about the times ``acquire`` releases callers; OS sleep overshoot only delays.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from monolyth_pipelines.settings import GmailLimits

# Slack for float rounding in window arithmetic (times in seconds, units in quota units).
_EPSILON = 1e-9
# Default bucket size as a fraction of one window's budget: small enough that a run starts
# smoothly rather than with a burst, large enough to absorb scheduling noise.
DEFAULT_CAPACITY_FRACTION = 0.1


class Pacer:
    """Thread-safe quota pacer; ``acquire(units)`` blocks just long enough. See module doc."""

    def __init__(
        self,
        rate: float,
        capacity: float | None = None,
        *,
        window: float = 1.0,
        costs: Mapping[str, int] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0 or window <= 0:
            raise ValueError("rate and window must be positive")
        if capacity is not None and capacity <= 0:
            raise ValueError("capacity must be positive")
        self.rate = float(rate)
        self.window = float(window)
        self.window_limit = self.rate * self.window
        default_capacity = self.window_limit * DEFAULT_CAPACITY_FRACTION
        self.capacity = float(capacity) if capacity is not None else default_capacity
        self.costs: dict[str, int] = dict(costs or {})
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = self.capacity  # may go negative: debt left by an oversized request
        self._updated: float | None = None
        self._last_grant = -math.inf
        self._ledger: deque[tuple[float, float]] = deque()  # (release time, units), oldest first
        self._ledger_units = 0.0

    @classmethod
    def for_gmail(
        cls,
        limits: GmailLimits,
        *,
        capacity: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> Pacer:
        """A pacer at ``limits.quota_units_per_second`` with ``limits.method_costs``."""
        return cls(
            limits.quota_units_per_second,
            capacity,
            costs=limits.method_costs,
            clock=clock,
            sleep=sleep,
        )

    def cost(self, method: str, calls: int = 1) -> int:
        """Units for ``calls`` calls of ``method`` (e.g. ``"threads.get"``); unknown names raise."""
        if method not in self.costs:
            raise KeyError(f"no quota cost configured for Gmail method {method!r}")
        return self.costs[method] * calls

    def max_calls_per_window(self, method: str) -> int:
        """The largest batch of ``method`` calls that fits one window (at least 1)."""
        return max(1, int((self.window_limit + _EPSILON) // self.cost(method)))

    def acquire_for(self, method: str, calls: int = 1) -> float:
        return self.acquire(self.cost(method, calls))

    def acquire(self, units: float) -> float:
        """Block until ``units`` may be spent now; returns the seconds waited."""
        release = self.reserve(units)
        delay = release - self._clock()
        if delay > 0:
            self._sleep(delay)
            return delay
        return 0.0

    def reserve(self, units: float) -> float:
        """Book ``units`` and return the clock time at which the caller may send.

        Bookings are first come, first served and never earlier than an earlier booking, so the
        lock is held only for arithmetic, never while sleeping.
        """
        if units < 0:
            raise ValueError("units must not be negative")
        with self._lock:
            now = self._clock()
            start = max(now, self._last_grant)
            updated = start if self._updated is None else self._updated
            tokens = min(self.capacity, self._tokens + (start - updated) * self.rate)
            needed = min(units, self.capacity)
            release = start if tokens >= needed else start + (needed - tokens) / self.rate
            release = max(release, self._window_ready(release, units))
            self._tokens = min(self.capacity, tokens + (release - start) * self.rate) - units
            self._updated = release
            self._last_grant = release
            if units > 0:
                self._ledger.append((release, units))
                self._ledger_units += units
            return release

    def _window_ready(self, candidate: float, units: float) -> float:
        """Earliest time >= ``candidate`` at which ``units`` more fit the sliding window."""
        # Later bookings are never earlier than ``candidate``, so what has left its window now
        # can never count again.
        while self._ledger and self._ledger[0][0] <= candidate - self.window + _EPSILON:
            self._ledger_units -= self._ledger.popleft()[1]
        if not self._ledger:
            self._ledger_units = 0.0  # drop accumulated float error
        remaining = self._ledger_units
        if remaining + units <= self.window_limit + _EPSILON:
            return candidate
        ready = candidate
        for booked_at, booked_units in self._ledger:
            remaining -= booked_units
            ready = booked_at + self.window
            if remaining + units <= self.window_limit + _EPSILON:
                break
        return ready


class QuotaGate:
    """The pacer, plus one rule for the time between sending a call and its answer.

    The pacer spaces the moments calls are *sent*. Google counts a call when it runs, somewhere
    between sending and answering, and runs a batch's calls one after another, so a batch can
    straddle the edge of the one-second window the pacer reasoned about. So every call is booked
    a second time when its answer arrives, and a new call also waits until the units answered
    within the last window leave room for it: whatever the latency, no window then holds more
    than the quota. The cost is one batch's latency per window, not a retried 429.
    """

    def __init__(
        self,
        pacer: Pacer,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.pacer = pacer
        self._clock = clock
        self._sleep = sleep
        self._answered: deque[tuple[float, float]] = deque()  # (answer time, units), oldest first
        self._answered_units = 0.0
        self._loose_units = 0.0  # spent by single calls since the last batch

    def loose_calls(self, method: str) -> int:
        """How many calls of ``method`` the single calls since the last batch cost.

        The next batch leaves that many calls out. A quota that holds a whole number of batches
        per window then keeps holding them: a 10-unit list call next to four full 500-unit
        batches would otherwise push a whole batch into the next window.
        """
        return math.ceil(self._loose_units / self.pacer.cost(method) - 1e-9)

    @contextmanager
    def spend(self, method: str, calls: int = 1, *, batch: bool = False) -> Iterator[None]:
        """Hold the caller until ``calls`` calls of ``method`` fit, and book them when answered."""
        units = self.pacer.cost(method, calls)
        self._wait_for_room(units)
        self.pacer.acquire(units)
        self._loose_units = 0.0 if batch else self._loose_units + units
        try:
            yield
        finally:
            # Booked even when the call failed: Google may well have counted it.
            self._answered.append((self._clock(), units))
            self._answered_units += units

    def _wait_for_room(self, units: float) -> None:
        while True:
            now = self._clock()
            while self._answered and self._answered[0][0] <= now - self.pacer.window:
                self._answered_units -= self._answered.popleft()[1]
            if not self._answered or self._answered_units + units <= self.pacer.window_limit:
                return
            self._sleep(self._answered[0][0] + self.pacer.window - now)
