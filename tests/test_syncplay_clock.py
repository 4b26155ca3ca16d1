"""Sync-play clock math (NTP four timestamps), latency tracking and small engine parts."""

import asyncio
from typing import Any

from hypothesis import given, strategies as st
import pytest

from custom_components.plexus.syncplay import (
    ClockSample,
    LatencyTracker,
    LocalBus,
    MediaRef,
    OffsetEstimator,
    PlayerSnapshot,
    SyncConfig,
    SystemClock,
    topic_matches,
)
from custom_components.plexus.syncplay.latency import MIN_KIND_SAMPLES, WINDOW, trimmed_mean

seconds = st.floats(min_value=0.0, max_value=2.0, allow_nan=False)


def exchange(offset: float, t0: float, up: float, down: float, work: float) -> ClockSample:
    t1 = t0 + up + offset
    t2 = t1 + work
    return ClockSample(t0, t1, t2, t2 - offset + down)


@given(
    offset=st.floats(min_value=-10.0, max_value=10.0, allow_nan=False),
    t0=st.floats(min_value=1e9, max_value=2e9, allow_nan=False),
    up=seconds,
    down=seconds,
    work=seconds,
)
def test_sample_offset_error_is_at_most_half_the_delay(
    offset: float, t0: float, up: float, down: float, work: float
) -> None:
    sample = exchange(offset, t0, up, down, work)
    assert sample.delay == pytest.approx(up + down, abs=1e-5)
    assert abs(sample.offset - offset) <= sample.delay / 2 + 1e-5
    if up == down:
        assert sample.offset == pytest.approx(offset, abs=1e-5)


def estimator_after(offset: float, delays: list[tuple[float, float]]) -> OffsetEstimator:
    """An estimator fed one exchange a second with these (way there, way back) delays."""
    estimator = OffsetEstimator()
    t0 = 1.7e9
    for up, down in delays:
        estimator.add(exchange(offset, t0, up, down, 0.001))
        t0 += 1
    return estimator


@given(
    offset=st.floats(min_value=-5.0, max_value=5.0, allow_nan=False),
    delays=st.lists(st.tuples(seconds, seconds), min_size=1, max_size=80),
)
def test_estimator_keeps_the_lowest_delay_samples(
    offset: float, delays: list[tuple[float, float]]
) -> None:
    estimator = estimator_after(offset, delays)
    kept = delays[-64:]
    best = sorted(up + down for up, down in kept)[:3]
    estimate = estimator.offset
    assert estimate is not None
    assert abs(estimate - offset) <= max(best) / 2 + 1e-5
    assert estimator.delay == pytest.approx(best[0], abs=1e-5)


@given(
    offset=st.floats(min_value=-5.0, max_value=5.0, allow_nan=False),
    delays=st.lists(st.tuples(seconds, seconds), min_size=1, max_size=80),
)
def test_estimator_error_is_at_most_half_the_lowest_way_there_plus_back(
    offset: float, delays: list[tuple[float, float]]
) -> None:
    """The common bounds of all samples: the lowest delay each way, even from two samples."""
    estimator = estimator_after(offset, delays)
    kept = delays[-64:]
    lowest_up, lowest_down = min(up for up, _ in kept), min(down for _, down in kept)
    bounds = estimator.bounds
    assert bounds is not None
    assert bounds[0] - 1e-5 <= offset <= bounds[1] + 1e-5
    assert bounds[1] - bounds[0] == pytest.approx(lowest_up + lowest_down, abs=1e-5)
    estimate = estimator.offset
    assert estimate is not None
    assert abs(estimate - offset) <= (lowest_up + lowest_down) / 2 + 1e-5


def test_estimator_beats_the_best_single_exchange() -> None:
    """Fast one way in one exchange, fast the other way in another: both count."""
    estimator = OffsetEstimator()
    estimator.add(exchange(3.0, 1000.0, 0.005, 0.145, 0.001))
    estimator.add(exchange(3.0, 1001.0, 0.140, 0.006, 0.001))
    estimator.add(exchange(3.0, 1002.0, 0.060, 0.060, 0.001))
    best = estimator._best_samples()[0]
    assert abs(best.offset - 3.0) == pytest.approx(0.0, abs=1e-6)  # the 60/60 one, by luck
    assert estimator.delay == pytest.approx(0.120)
    assert estimator.bounds == (pytest.approx(3.0 - 0.006), pytest.approx(3.0 + 0.005))
    assert estimator.offset == pytest.approx(3.0 - 0.0005)


def test_estimator_falls_back_to_the_best_exchange_when_samples_clash() -> None:
    """Samples from before and after a clock step cannot all be right: NTP's choice."""
    estimator = OffsetEstimator()
    estimator.add(exchange(1.0, 1000.0, 0.050, 0.050, 0.001))
    estimator.add(exchange(1.5, 1001.0, 0.010, 0.020, 0.001))
    assert estimator.bounds is None
    assert estimator.offset == pytest.approx(1.5 - 0.005)


def test_estimator_ignores_impossible_samples_and_clears() -> None:
    estimator = OffsetEstimator()
    assert estimator.offset is None
    assert estimator.delay is None
    estimator.add(ClockSample(10.0, 5.0, 6.0, 9.0))  # answer before question
    assert len(estimator) == 0
    estimator.add(ClockSample(10.0, 15.0, 15.1, 10.3))
    assert estimator.offset == pytest.approx(4.9)
    estimator.clear()
    assert estimator.offset is None


def test_latency_tracker() -> None:
    tracker = LatencyTracker(0.2)
    assert tracker.estimate("play") == 0.2
    assert not tracker.measured
    for value in (0.05, 0.07, 0.06, 5.0):
        tracker.add("seek", value)
    tracker.add("pause", -1.0)
    assert tracker.measured
    assert tracker.samples("pause") == [0.0]
    # too few of a kind: every kind's samples (without the lowest and the highest: 0 and 5)
    assert tracker.estimate("seek") == pytest.approx(0.06)
    assert tracker.estimate("pause") == pytest.approx(0.06)
    assert tracker.estimate() == pytest.approx(0.06)
    for _ in range(MIN_KIND_SAMPLES - 1):
        tracker.add("play", 0.07)
    assert tracker.estimate("play") == pytest.approx((0.05 + 0.06 + 0.07 * 8) / 10)
    token = tracker.add("play", 0.5)
    assert tracker.estimate("play") == pytest.approx(0.07)  # its own now, 0.5 left out
    assert tracker.refine(token, 0.08)
    assert tracker.samples("play")[-1] == 0.08
    assert tracker.samples()[-1] == 0.08
    assert not tracker.refine(10_000, 0.1)
    for _ in range(2 * WINDOW):
        tracker.add("play", 0.09)
    assert tracker.samples("play") == [0.09] * WINDOW
    assert len(tracker.samples()) == WINDOW
    assert not tracker.refine(token, 0.01)  # long gone
    assert tracker.estimate("play") == pytest.approx(0.09)


def test_trimmed_mean() -> None:
    assert trimmed_mean([0.1]) == 0.1
    assert trimmed_mean([0.1, 0.3]) == pytest.approx(0.2)
    assert trimmed_mean([0.1, 5.0, 0.2]) == pytest.approx(0.2)
    assert trimmed_mean([5.0, 0.1, 0.2, 0.3]) == pytest.approx(0.25)
    assert trimmed_mean([1.0, 2.0, 3.0, 4.0, 100.0]) == pytest.approx(3.0)
    assert trimmed_mean([float(n) for n in range(16)]) == pytest.approx(7.5)  # 2 off each end
    assert trimmed_mean([0.0, 0.0, 1.0, *[0.5] * 12, 9.0]) == pytest.approx(0.5)


def test_topic_matching() -> None:
    assert topic_matches("a/#", "a/b/c")
    assert topic_matches("a/+/c", "a/b/c")
    assert not topic_matches("a/+", "a/b/c")
    assert not topic_matches("a/b/c", "a/b")
    assert topic_matches("a/b", "a/b")


async def test_local_bus_delivers_later_and_unsubscribes() -> None:
    bus = LocalBus()
    got: list[tuple[str, bytes]] = []
    unsubscribe = await bus.subscribe("x/#", lambda topic, payload: got.append((topic, payload)))
    await bus.publish("x/y", b"1")
    await bus.publish("z", b"2")
    assert got == []
    await asyncio.sleep(0)
    assert got == [("x/y", b"1")]
    unsubscribe()
    unsubscribe()
    await bus.publish("x/y", b"3")
    await asyncio.sleep(0)
    assert got == [("x/y", b"1")]


def test_small_types() -> None:
    clock = SystemClock()
    assert clock.now() > 1e9
    assert clock.monotonic() >= 0
    snapshot = PlayerSnapshot("playing", "1", 1000.0, 10.0)
    assert snapshot.position_at(11.0) == 2000.0
    assert PlayerSnapshot("paused", "1", 1000.0, 10.0).position_at(11.0) == 1000.0
    ref = MediaRef("5", "episode", "plex://episode/x", "Pilot", 2001)
    assert MediaRef.from_dict(ref.as_dict()) == ref
    data: Any = {"rating_key": "5", "year": "x", "guid": 3}
    assert MediaRef.from_dict(data) == MediaRef("5")
    with pytest.raises(ValueError):
        MediaRef.from_dict({"rating_key": 5})
    config = SyncConfig("den", "s", "i", "home")
    assert config.base_topic == "plexus/sync/den"
    assert SyncConfig("den", "s", "i", "home", base_topic="x/y/").base_topic == "x/y"


def test_latency_tracker_with_late_reports() -> None:
    """A player whose reports arrive late: its own (position-dated) play samples win early."""
    tracker = LatencyTracker(0.2)
    for value in (0.25, 0.30, 0.28):  # paused seeks, dated from late reports
        tracker.add("seek", value)
    tracker.add("play", 0.05)  # dated from the reported position
    assert tracker.report_lag == 0.0
    assert tracker.estimate("play") > 0.2  # prompt reports assumed: the pool
    tracker.add_report_lag(0.2)
    tracker.add_report_lag(-1.0)  # clamped
    assert tracker.report_lag == pytest.approx(0.1)
    assert tracker.estimate("play") == pytest.approx(0.05)
    assert tracker.estimate("pause") > 0.2  # no own samples: still the pool
    prompt = LatencyTracker(0.2)
    prompt.add("seek", 0.06)
    prompt.add("play", 0.05)
    prompt.add_report_lag(0.001)
    assert prompt.estimate("play") == pytest.approx(0.055)  # prompt reports: the pool
