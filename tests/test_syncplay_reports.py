"""What the engine learns from its players' reports: granularity, readiness, drift, progress."""

import asyncio
import random
import time

import pytest

from custom_components.plexus.syncplay import LocalBus, MediaRef
from custom_components.plexus.syncplay.latency import PositionFix, PositionGrain
from custom_components.plexus.syncplay.model import Session
from tests.test_syncplay_local import FakePlayer, Node, QuietPlayer, wait_for


def test_position_grain_is_learned_from_what_reports_show() -> None:
    """A commanded target tells nothing; one exact position rules out coarse grains; three
    whole seconds in a row prove whole seconds."""
    grain = PositionGrain()
    assert grain.plausible_ms == 1000
    assert grain.proven_ms == 1
    assert not grain.fine
    assert not grain.observe(60_000.0, 60_000.0)  # the target it was sent to: nothing learned
    assert grain.plausible_ms == 1000
    grain.observe(61_000.0, None)
    grain.observe(62_000.0, None)
    assert grain.proven_ms == 1
    grain.observe(63_000.0, None)
    assert grain.proven_ms == 1000
    assert grain.plausible_ms == 1000
    # whole seconds: 61 000 can be 61 234 truncated, 62 000 cannot
    assert grain.near(61_000.0, 61_234.0, 20.0)
    assert not grain.near(62_000.0, 61_234.0, 20.0)

    exact = PositionGrain()
    exact.observe(61_234.0, None)
    assert exact.fine
    assert exact.plausible_ms == 1
    assert not exact.near(61_000.0, 61_234.0, 20.0)
    tenths = PositionGrain()
    tenths.observe(61_200.0, None)
    assert tenths.plausible_ms == 100


def test_position_fix_narrows_and_restarts_after_a_jump() -> None:
    """Whole-second reports at different phases narrow the estimate below a second; a report
    off the trajectory (a seek, a stall) starts it again."""
    fix = PositionFix()
    assert fix.position_at(10.0) is None
    true_start = 61_234.0  # position at monotonic 0
    for at in (0.1, 1.45, 2.8, 3.95):
        reported = true_start + at * 1000.0
        fix.add(reported - reported % 1000, at, 1000.0)
    estimate = fix.position_at(5.0)
    assert estimate is not None
    assert abs(estimate - (true_start + 5000.0)) < 150.0
    assert fix.uncertainty_ms < 300.0
    fix.add(30_000.0, 6.0, 1000.0)  # a jump
    assert fix.uncertainty_ms == 500.0
    assert fix.position_at(6.0) == pytest.approx(30_500.0)


async def test_readiness_is_judged_when_the_member_is_due() -> None:
    """The start arrives while the member's seek report is still on its way: it is judged
    when it is due to fire, by then the report shows it at the position, and it just plays
    (before: judged on arrival, not ready, a late catch-up)."""
    node = Node("a", 0.0, LocalBus(), players=[QuietPlayer("a-tv")])
    player = node.players[0]
    driver = node.engine.driver
    member = driver.members[player.player_id]
    member.media_key = "7"
    player.report("paused", "7", 9_000.0, time.monotonic())
    task = asyncio.create_task(driver.start(member, time.monotonic() + 0.5, 10_000.0))
    await asyncio.sleep(0.1)
    player.report("paused", "7", 10_000.0, time.monotonic())  # the seek's late report
    await asyncio.wait_for(task, 2.0)
    assert player.commands == ["play"]
    assert "member_resynced" not in node.kinds()


async def test_drift_within_what_whole_seconds_resolve_is_left_alone() -> None:
    """A member reporting whole seconds looks up to a second behind when it is not: no
    correcting seek for that; one clearly further off is corrected."""
    node = Node("a", 0.0, LocalBus(), players=[QuietPlayer("a-tv")])
    player = node.players[0]
    engine = node.engine
    member = engine.driver.members[player.player_id]
    for position in (41_000.0, 52_000.0, 63_000.0):  # whole seconds: proven
        player.report("paused", "7", position, time.monotonic())
    assert member.grain.proven_ms == 1000
    assert "member_imprecise" in node.kinds()
    info = engine.state.members[0]
    assert info.expected_precision_ms is not None
    assert info.expected_precision_ms >= 100.0

    now = time.monotonic()
    engine._ctx.running = True  # (no transport needed: only the drift check runs)
    engine._ctx.session = Session(1, "a:1", "a", MediaRef("7"), "playing", 100_950.0, now)
    player.report("playing", "7", 100_000.0, now)  # truly at 100 950: truncated
    engine.drift.check()
    await asyncio.sleep(0.05)
    assert player.commands == []
    assert member.drift_ms is not None
    assert abs(member.drift_ms) <= 500.0

    member.last_check = 0.0
    player.report("playing", "7", 97_000.0, time.monotonic())  # ~4 s behind: a real drift
    engine.drift.check()
    await wait_for(lambda: player.commands == ["seek"], 2.0)
    engine._ctx.running = False


async def test_the_leader_waits_for_a_slow_peer_that_shows_progress() -> None:
    """A peer whose player takes longer to load than `ready_timeout_s` says it is still
    preparing: the leader waits for it instead of starting without it."""
    bus = LocalBus()
    options = {"ready_timeout_s": 2.5}
    a = Node("a", 0.3, bus, [FakePlayer("a-tv")], **options)
    b = Node("b", -0.3, bus, [FakePlayer("b-stick", 1.6)], **options)
    await a.engine.start()
    await b.engine.start()
    try:
        await wait_for(lambda: a.engine.state.homes == 2 and b.engine.clock_offset("a") is not None)
        began = time.monotonic()
        result = await a.engine.play(MediaRef("7"), 5_000.0)
        assert time.monotonic() - began > 2.5  # longer than the ready timeout
        assert result.failed == {}
        await wait_for(
            lambda: all(p.snapshot.state == "playing" for n in (a, b) for p in n.players), 8.0
        )
        assert "member_failed" not in a.kinds() + b.kinds()
    finally:
        await a.engine.shutdown()
        await b.engine.shutdown()


def test_expected_precision_follows_what_the_samples_show() -> None:
    """Unknown until two samples (or proven whole seconds); then about two deviations of a
    start's error: the samples' spread (the jitter and what the reports could not date) and
    the estimate's error; whole seconds add the report lag nobody can measure."""
    rng = random.Random(5)
    node = Node("a", 0.0, LocalBus(), players=[QuietPlayer("a-tv")])
    driver = node.engine.driver
    member = driver.members[node.players[0].player_id]
    assert driver.known_precision_ms(member) is None
    member.latency.add("play", 0.300)
    assert driver.known_precision_ms(member) is None  # one sample tells no spread
    for _ in range(23):  # 24 exact samples: 300 ms +-15 ms uniform (sd 8.7 ms)
        member.latency.add("play", 0.300 + rng.uniform(-0.015, 0.015))
    member.grain.observe(61_234.0, None)
    fine = driver.known_precision_ms(member)
    assert fine is not None
    assert 12.0 < fine < 26.0, fine  # 2 x 8.7 x sqrt(1 + 1/24) = 17.8

    # Positions in tenths: each sample is also off by up to a tenth (uniform, sd 29 ms).
    tenths = Node("b", 0.0, LocalBus(), players=[QuietPlayer("b-tv")])
    member = tenths.engine.driver.members[tenths.players[0].player_id]
    for _ in range(24):
        member.latency.add("play", 0.300 + rng.uniform(-0.015, 0.015) + rng.uniform(-0.05, 0.05))
    member.grain.observe(61_200.0, None)
    precision = tenths.engine.driver.known_precision_ms(member)
    assert precision is not None
    assert 40.0 < precision < 85.0, precision  # 2 x 30.2 x sqrt(1 + 1/24) = 61.6

    # Whole seconds: dated by arrival, nobody knows how late: 100 ms more.
    coarse = Node("c", 0.0, LocalBus(), players=[QuietPlayer("c-tv")])
    member = coarse.engine.driver.members[coarse.players[0].player_id]
    for position in (41_000.0, 52_000.0, 63_000.0):
        member.grain.observe(position, None)
    assert coarse.engine.driver.known_precision_ms(member) == 110.0  # proven, nothing measured
    for _ in range(24):
        member.latency.add("play", 0.300 + rng.uniform(-0.015, 0.015) + rng.uniform(-0.05, 0.05))
    precision = coarse.engine.driver.known_precision_ms(member)
    assert precision is not None
    assert 140.0 < precision < 185.0, precision


def test_a_truncated_report_equal_to_the_target_does_not_prove_the_position() -> None:
    """A player reporting tenths shows 60 800 anywhere from 60 800 to 60 899: paused there, it is
    not known to be at the group's 60 800.4 (it is seeked there); one reporting milliseconds is,
    but not at 60 801 (a seek would put it there: members paused a millisecond apart stay so)."""
    node = Node("a", 0.0, LocalBus(), players=[QuietPlayer("a-tv"), QuietPlayer("a-app")])
    driver = node.engine.driver
    tv, app = (driver.members[p.player_id] for p in node.players)
    tv.player.report("paused", "7", 41_200.0, time.monotonic())  # tenths (not a target)
    app.player.report("paused", "7", 41_234.0, time.monotonic())  # milliseconds
    assert tv.grain.plausible_ms == 100
    assert app.grain.fine
    for member in (tv, app):
        member.player.report("paused", "7", 60_800.0, time.monotonic())
    assert not driver.is_at(tv, 60_800.4)
    assert driver.is_at(app, 60_800.4)
    assert not driver.is_at(app, 60_800.6)
    assert not driver.is_at(app, 60_801)
