"""The quota pacer against a fake clock: long-run rate, per-second window, costs, threads."""

from __future__ import annotations

import sys
import threading

import pytest

from monolyth_pipelines.google.pacing import Pacer
from monolyth_pipelines.settings import GmailLimits


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def release_times(pacer: Pacer, clock: FakeClock, costs: list[float]) -> list[float]:
    times = []
    for units in costs:
        pacer.acquire(units)
        times.append(clock.now)
    return times


def max_window_units(times: list[float], costs: list[float], window: float = 1.0) -> float:
    """Largest number of units released within any half-open window [t, t + window)."""
    worst = 0.0
    for start in times:
        total = sum(c for t, c in zip(times, costs, strict=True) if start <= t < start + window - 1e-6)
        worst = max(worst, total)
    return worst


@pytest.mark.parametrize(("rate", "cost", "calls"), [(250.0, 10, 2000), (100.0, 20, 600), (250.0, 7, 3000)])
def test_long_run_is_close_to_the_quota_bound_and_never_exceeds_a_second(
    rate: float, cost: int, calls: int
) -> None:
    clock = FakeClock()
    pacer = Pacer(rate, clock=clock, sleep=clock.sleep)
    costs = [float(cost)] * calls
    times = release_times(pacer, clock, costs)
    lower_bound = sum(costs) / rate
    assert times[-1] <= 1.15 * lower_bound
    # The window lets at most one second's budget start at t=0, so nothing can beat bound - 1 s.
    assert times[-1] >= lower_bound - 1.0 - 1e-6
    assert max_window_units(times, costs) <= rate + 1e-6


def test_full_bucket_at_start_cannot_trip_the_window_even_when_large() -> None:
    clock = FakeClock()
    pacer = Pacer(100.0, capacity=100.0, clock=clock, sleep=clock.sleep)
    costs = [10.0] * 300
    times = release_times(pacer, clock, costs)
    assert max_window_units(times, costs) <= 100.0 + 1e-6
    assert times[-1] <= 1.15 * 30.0


def test_default_capacity_spreads_the_start_instead_of_bursting() -> None:
    clock = FakeClock()
    pacer = Pacer(250.0, clock=clock, sleep=clock.sleep)
    times = release_times(pacer, clock, [10.0] * 10)
    # 25 units of burst allow 2 immediate 10-unit calls; the rest are paced 40 ms apart.
    assert times[:2] == [0.0, 0.0]
    assert times[2] > 0.0
    assert times[-1] == pytest.approx((100 - 25) / 250)


def test_idle_time_refills_only_up_to_capacity() -> None:
    clock = FakeClock()
    pacer = Pacer(100.0, capacity=20.0, clock=clock, sleep=clock.sleep)
    release_times(pacer, clock, [10.0] * 50)
    clock.now += 3600.0  # a long idle period must not bank an hour of quota
    start = clock.now
    times = release_times(pacer, clock, [10.0] * 12)
    assert sum(1 for t in times if t == start) == 2  # exactly the 20-unit bucket goes at once
    assert times[-1] - start == pytest.approx((120 - 20) / 100)


def test_oversized_request_waits_for_an_empty_window_and_leaves_debt() -> None:
    clock = FakeClock()
    pacer = Pacer(100.0, clock=clock, sleep=clock.sleep)
    times = release_times(pacer, clock, [10.0, 500.0, 10.0])
    assert times[1] >= times[0] + 1.0 - 1e-9  # the first call must leave the window first
    assert times[2] - times[1] == pytest.approx(5.0, abs=0.11)  # 500 units of debt at 100/s


def test_method_costs_come_from_gmail_limits() -> None:
    clock = FakeClock()
    limits = GmailLimits(quota_units_per_second=100.0)
    pacer = Pacer.for_gmail(limits, clock=clock, sleep=clock.sleep)
    assert pacer.cost("threads.get") == limits.method_costs["threads.get"]
    assert pacer.cost("threads.get", calls=25) == 25 * limits.method_costs["threads.get"]
    assert pacer.max_calls_per_window("threads.get") == 100 // limits.method_costs["threads.get"]
    with pytest.raises(KeyError, match="nosuch"):
        pacer.cost("nosuch.method")
    for _ in range(50):
        pacer.acquire_for("threads.get")
    assert clock.now == pytest.approx((50 * 10 - 10) / 100, abs=0.05)


def test_concurrent_reservations_respect_the_window() -> None:
    # Clock frozen at 0 and no real sleeping: every thread books at once, so only the lock keeps
    # the ledger consistent. A tiny GIL switch interval makes unlocked bookings interleave.
    pacer = Pacer(200.0, capacity=5.0, clock=lambda: 0.0, sleep=lambda s: None)
    booked: list[float] = []
    guard = threading.Lock()

    def worker() -> None:
        for _ in range(200):
            when = pacer.reserve(5.0)
            with guard:
                booked.append(when)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    booked.sort()
    assert len(booked) == 3200
    assert len(set(booked)) == len(booked)  # a one-call bucket: no two bookings share an instant
    assert max_window_units(booked, [5.0] * 3200) <= 200.0 + 1e-6
    assert booked[-1] <= 1.15 * (3200 * 5.0 / 200.0)


def test_invalid_settings_are_rejected() -> None:
    with pytest.raises(ValueError):
        Pacer(0)
    with pytest.raises(ValueError):
        Pacer(10, capacity=0)
    with pytest.raises(ValueError):
        Pacer(10).acquire(-1)
