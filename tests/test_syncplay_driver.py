"""The sync-play driver's edges, driven directly on one home with fake players.

What is tried: a member action that raises, a catch-up with no session, a seek whose instant
has passed while the group plays, a command whose effect never shows in time, and a catch-up
whose load fails.
"""

import asyncio
from collections.abc import AsyncIterator
import logging
import time

import pytest

from custom_components.plexus.syncplay import LocalBus, MediaRef, SyncEngine
from custom_components.plexus.syncplay.driver import EXPECT_MAX_S, LocalMember
from tests.test_syncplay_local import FakePlayer, Node, QuietPlayer, states, wait_for


def member_of(engine: SyncEngine, player: FakePlayer) -> LocalMember:
    """The driver's record of a local player."""
    found = [m for m in engine.driver.members.values() if m.player is player]
    assert len(found) == 1
    return found[0]


@pytest.fixture
async def home() -> AsyncIterator[Node]:
    node = Node("a", 0.0, LocalBus(), players=[FakePlayer("a-tv")])
    await node.engine.start()
    yield node
    await node.engine.shutdown()


async def test_a_raising_member_action_is_logged_and_the_member_goes_on(
    home: Node, caplog: pytest.LogCaptureFixture
) -> None:
    """An action that raises is logged once with its type; the member is not left busy and
    takes its next action."""
    player = home.players[0]
    member = member_of(home.engine, player)

    async def boom() -> None:
        raise ValueError("the client answered nonsense")

    with caplog.at_level(logging.ERROR):
        await home.engine.driver.run_and_wait(member, boom)
    assert "a member action (ValueError)" in caplog.text
    assert member.busy == 0

    await home.engine.play(MediaRef("7"), 0)
    await wait_for(lambda: states(home) == {"playing"})


async def test_catch_up_without_a_session_moves_nothing(home: Node) -> None:
    player = home.players[0]
    await home.engine.driver.catch_up(member_of(home.engine, player))
    assert player.commands == []
    assert player.snapshot.state == "stopped"


async def test_catch_up_whose_load_fails_reports_the_member(home: Node) -> None:
    """The group plays; the member was stopped on the device and its client now refuses: a
    member_failed event names why and nothing else is sent."""
    player = home.players[0]
    await home.engine.play(MediaRef("7"), 0)
    await wait_for(lambda: states(home) == {"playing"})
    player.set("stopped")
    player.fail = True
    sent = len(player.commands)
    await home.engine.driver.catch_up(member_of(home.engine, player))
    failed = [data for kind, data in home.events if kind == "member_failed"]
    assert failed
    assert "refused play_media" in failed[-1]["error"]
    assert len(player.commands) == sent
    player.fail = False


async def test_a_late_seek_of_a_playing_group_lands_where_the_group_is(home: Node) -> None:
    """A seek whose instant passed a second ago, while the group plays, goes a second further
    (where the group is now), not to the position asked for."""
    player = home.players[0]
    await home.engine.play(MediaRef("7"), 0)
    await wait_for(lambda: states(home) == {"playing"})
    driver = home.engine.driver
    member = member_of(home.engine, player)
    await driver.seek(member, home.clock.monotonic() - 1.0, 10_000.0)
    await wait_for(lambda: player.snapshot.position_ms >= 10_000.0)
    # 1 s late plus the fake's delay; far from the 10 s asked for, close to 11 s
    assert 10_900.0 <= player.snapshot.position_ms <= 11_500.0


async def test_a_paused_seek_instant_past_is_not_shifted(home: Node) -> None:
    """The same late seek while the group is paused lands exactly where asked."""
    player = home.players[0]
    await home.engine.play(MediaRef("7"), 0)
    await wait_for(lambda: states(home) == {"playing"})
    await home.engine.pause()
    await wait_for(lambda: states(home) == {"paused"})
    member = member_of(home.engine, player)
    await home.engine.driver.seek(member, home.clock.monotonic() - 1.0, 10_000.0)
    await wait_for(lambda: player.snapshot.position_ms == 10_000.0)


@pytest.fixture
async def quiet() -> AsyncIterator[tuple[Node, QuietPlayer]]:
    """One home with one player whose reports the test makes (`report`)."""
    player = QuietPlayer("a-tv")
    node = Node("a", 0.0, LocalBus(), players=[player])
    await node.engine.start()
    yield node, player
    await node.engine.shutdown()


async def test_an_effect_shown_too_late_gives_no_latency_sample(
    quiet: tuple[Node, QuietPlayer],
) -> None:
    """A pause whose effect is first reported long after the patience: the expectation is
    dropped and the late report is not taken as a latency sample."""
    node, player = quiet
    member = member_of(node.engine, player)
    player.report("playing", "7", 1234.0, time.monotonic())
    before = member.latency.estimate("pause")
    assert await node.engine.driver.command(member, "pause")
    expect = member.expect
    assert expect is not None
    assert expect.kind == "pause"
    late = expect.sent + EXPECT_MAX_S + 60.0
    player.report("paused", "7", 2345.0, late)
    assert member.expect is None
    assert member.latency.estimate("pause") == before


async def test_a_resume_from_elsewhere_gives_no_play_latency_sample(
    quiet: tuple[Node, QuietPlayer],
) -> None:
    """Told to play from 1.234 s, the player reports playing at 10.567 s: it was moved for
    another reason (someone seeked on the device), so the report dates nothing."""
    node, player = quiet
    member = member_of(node.engine, player)
    player.report("paused", "7", 1234.0, time.monotonic())
    before = member.latency.estimate("play")
    assert await node.engine.driver.command(member, "play")
    expect = member.expect
    assert expect is not None
    assert expect.anchor_ms == 1234.0
    player.report("playing", "7", 10_567.0, time.monotonic())
    assert member.expect is None  # the effect showed ...
    assert member.latency.estimate("play") == before  # ... but dated nothing
    assert member.refine is None
    # the same report from where it was told to play from is a sample
    player.report("paused", "7", 1234.0, time.monotonic())
    assert await node.engine.driver.command(member, "play")
    await asyncio.sleep(0.25)
    player.report("playing", "7", 1240.0, time.monotonic())
    assert member.expect is None
    assert member.latency.estimate("play") != before
