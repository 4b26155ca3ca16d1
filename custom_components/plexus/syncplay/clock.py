"""NTP-style clock offset estimation between instances (four timestamps per sample).

Each exchange bounds the peer's offset: the request cannot arrive before it was sent, so
`t1 - t0` (offset plus the way there) is an upper bound, and the response cannot arrive before
it was sent, so `t2 - t3` (offset minus the way back) is a lower bound. NTP keeps the exchange
with the lowest round trip and takes the middle of its bounds; here the bounds of all recent
exchanges are intersected (the lowest way there and the lowest way back, usually from different
exchanges), which is never wider than the best single exchange and much narrower when delays
vary a lot (a broker adding random delay to every message). If the bounds contradict each other
(a clock stepped or drifted within the window) the lowest-delay exchanges decide, as in NTP.

`ClockSync` takes the samples: the one place the engine talks to peers about time.
"""

import asyncio
from collections import deque
import contextlib
from dataclasses import dataclass, field
import itertools
import logging
import math
from typing import Any, Final

from .context import EngineContext
from .model import number

_LOGGER = logging.getLogger(__name__)

MAX_SAMPLES: Final = 64
BEST_SAMPLES: Final = 1
CLOCK_SPACING_S: Final = 0.02
CLOCK_FILL_RATE: Final = 4


@dataclass(frozen=True, slots=True)
class ClockSample:
    """One request/response exchange.

    t0: request sent (our clock), t1: request received (peer clock),
    t2: response sent (peer clock), t3: response received (our clock).
    """

    t0: float
    t1: float
    t2: float
    t3: float

    @property
    def offset(self) -> float:
        """Peer clock minus ours, in seconds (error at most delay / 2)."""
        return ((self.t1 - self.t0) + (self.t2 - self.t3)) / 2.0

    @property
    def delay(self) -> float:
        """Round trip minus the peer's processing time, in seconds."""
        return max(0.0, (self.t3 - self.t0) - (self.t2 - self.t1))


class OffsetEstimator:
    """Keep recent samples; the estimate comes from the lowest-delay ones."""

    def __init__(self, max_samples: int = MAX_SAMPLES, best: int = BEST_SAMPLES) -> None:
        """Keep up to `max_samples`, estimate from the `best` lowest-delay ones."""
        self._samples: deque[ClockSample] = deque(maxlen=max_samples)
        self._best = best

    def add(self, sample: ClockSample) -> None:
        """Add a sample (a negative round trip is impossible and ignored)."""
        if sample.t3 >= sample.t0 and sample.t2 >= sample.t1:
            self._samples.append(sample)

    def clear(self) -> None:
        """Forget every sample (after a clock jump)."""
        self._samples.clear()

    def __len__(self) -> int:
        """Number of samples."""
        return len(self._samples)

    def _best_samples(self) -> list[ClockSample]:
        return sorted(self._samples, key=lambda s: s.delay)[: self._best]

    @property
    def bounds(self) -> tuple[float, float] | None:
        """(lowest, highest) offset every sample allows; None without samples or if they clash."""
        if not self._samples:
            return None
        lowest = max(s.t2 - s.t3 for s in self._samples)
        highest = min(s.t1 - s.t0 for s in self._samples)
        return (lowest, highest) if lowest <= highest else None

    @property
    def offset(self) -> float | None:
        """Peer clock minus ours, seconds: the middle of the samples' common bounds.

        When the samples contradict each other: the median offset of the `best` lowest-delay
        samples (NTP: the lowest one).
        """
        bounds = self.bounds
        if bounds is not None:
            return (bounds[0] + bounds[1]) / 2.0
        best = self._best_samples()
        if not best:
            return None
        offsets = sorted(s.offset for s in best)
        return offsets[len(offsets) // 2]

    @property
    def delay(self) -> float | None:
        """Lowest round trip seen, seconds."""
        best = self._best_samples()
        return best[0].delay if best else None


@dataclass(slots=True)
class PeerClock:
    """What is known of one peer's clock: its estimator, and whether any sample came in."""

    estimator: OffsetEstimator = field(default_factory=OffsetEstimator)
    synced: asyncio.Event = field(default_factory=asyncio.Event)

    def reset(self) -> None:
        """Forget every sample (the peer's clock or ours jumped)."""
        self.estimator.clear()
        self.synced.clear()


def instant(body: dict[str, Any], key: str) -> float:
    """A time-exchange instant from a message body; ValueError unless it is a finite number."""
    value = number(body.get(key))
    if value is None:
        raise ValueError(f"{key} is not a finite number")
    return value


class ClockSync:
    """Sample every peer's clock over the group's messages (`time_req` / `time_resp`).

    A burst after a join, then one sample per peer every interval; until a peer's estimator
    holds a full window (after a join or a clock jump) it is sampled `CLOCK_FILL_RATE` times as
    often. `epoch` counts this instance's own wall-clock jumps: peers reset their estimate of
    us when it changes (it travels in our hello).
    """

    def __init__(self, ctx: EngineContext) -> None:
        """Clocks of the engine sharing `ctx`."""
        self._ctx = ctx
        self.peers: dict[str, PeerClock] = {}
        self.epoch = 0
        self._waiters: dict[float, asyncio.Future[ClockSample]] = {}
        self._wall_minus_mono = 0.0

    def start(self) -> None:
        """Note the wall clock's relation to the monotonic one (for jump detection)."""
        self._wall_minus_mono = self._ctx.clock.now() - self._ctx.clock.monotonic()

    def add_peer(self, instance_id: str) -> None:
        """A new peer: sample it in a burst."""
        self.peers[instance_id] = PeerClock()
        self.spawn_sync(instance_id, self._ctx.config.clock_samples)

    def remove_peer(self, instance_id: str) -> None:
        """Forget a peer's clock."""
        self.peers.pop(instance_id, None)

    def reset_peer(self, instance_id: str) -> None:
        """The peer's clock jumped: start its estimate over."""
        if (peer := self.peers.get(instance_id)) is not None:
            peer.reset()
            self.spawn_sync(instance_id, self._ctx.config.clock_samples)

    def estimator(self, instance_id: str) -> OffsetEstimator | None:
        """A peer's estimator (None for an unknown peer)."""
        peer = self.peers.get(instance_id)
        return peer.estimator if peer else None

    def offset(self, instance_id: str) -> float | None:
        """Estimated clock offset of an instance (its clock minus ours), seconds."""
        if instance_id == self._ctx.instance_id:
            return 0.0
        peer = self.peers.get(instance_id)
        return peer.estimator.offset if peer else None

    def max_delay(self) -> float:
        """The largest of the peers' lowest round trips, seconds (0 without any)."""
        delays = [p.estimator.delay for p in self.peers.values()]
        return max((d for d in delays if d is not None), default=0.0)

    def spawn_sync(self, instance_id: str, samples: int) -> None:
        """Take `samples` samples against a peer, in the background."""
        self._ctx.tasks.spawn(self.sync(instance_id, samples))

    async def loop(self) -> None:
        """One more sample per peer every interval (more until the window is full)."""
        for tick in itertools.count(1):
            await asyncio.sleep(self._ctx.config.clock_sample_interval_s / CLOCK_FILL_RATE)
            for instance_id, peer in list(self.peers.items()):
                if tick % CLOCK_FILL_RATE == 0 or len(peer.estimator) < MAX_SAMPLES:
                    self.spawn_sync(instance_id, 1)

    def check_jump(self) -> bool:
        """True (and every estimate restarted) when our wall clock jumped since last time."""
        ctx = self._ctx
        wall_minus_mono = ctx.clock.now() - ctx.clock.monotonic()
        jump = wall_minus_mono - self._wall_minus_mono
        self._wall_minus_mono = wall_minus_mono
        if abs(jump) <= ctx.config.clock_jump_s:
            return False
        _LOGGER.info("Sync group %s: the wall clock jumped; resyncing", ctx.config.group)
        self.epoch += 1
        ctx.event("clock_jump", {"jump_s": jump})
        for instance_id in list(self.peers):
            self.reset_peer(instance_id)
        return True

    def on_request(self, sender: str, t0: float, received: float) -> None:
        """Answer a peer's `time_req` with our receive and send instants."""
        body = {"t0": t0, "t1": received, "t2": self._ctx.clock.now()}
        self._ctx.tasks.spawn(self._ctx.publish("time_resp", body, to=sender))

    def on_response(self, body: dict[str, Any], received: float) -> None:
        """A `time_resp`: complete the sample waiting for it (matched by `t0`)."""
        t0, t1, t2 = instant(body, "t0"), instant(body, "t1"), instant(body, "t2")
        waiter = self._waiters.pop(t0, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(ClockSample(t0, t1, t2, received))

    async def sync(self, instance_id: str, samples: int) -> None:
        """Take `samples` four-timestamp samples against a peer.

        The requests go out `CLOCK_SPACING_S` apart without waiting for the answers, so a burst
        is done in about one round trip (each answer is matched by its `t0`).
        """
        exchanges: list[asyncio.Task[None]] = []
        for n in range(samples):
            if n:
                await asyncio.sleep(CLOCK_SPACING_S)
            if instance_id not in self.peers or not self._ctx.running:
                break
            exchanges.append(self._ctx.tasks.spawn(self._sample(instance_id)))
        await asyncio.gather(*exchanges, return_exceptions=True)

    async def _sample(self, instance_id: str) -> None:
        """One four-timestamp exchange with a peer (nothing when it is not answered in 1 s)."""
        t0 = self._ctx.clock.now()
        while t0 in self._waiters:
            t0 = math.nextafter(t0, math.inf)
        waiter: asyncio.Future[ClockSample] = asyncio.get_running_loop().create_future()
        self._waiters[t0] = waiter
        await self._ctx.publish("time_req", {"t0": t0}, to=instance_id)
        try:
            async with asyncio.timeout(1.0):
                sample = await waiter
        except TimeoutError:
            return
        finally:
            self._waiters.pop(t0, None)
        peer = self.peers.get(instance_id)
        if peer is None:
            return
        peer.estimator.add(sample)
        if not peer.synced.is_set():
            peer.synced.set()
            self._ctx.update()

    async def to_monotonic(self, instance_id: str, wall: float) -> float:
        """An instant on `instance_id`'s wall clock as our monotonic time.

        Waits (up to 3 s) for a first sample when nothing is known of that clock yet.
        """
        offset = 0.0
        peer = self.peers.get(instance_id)
        if instance_id != self._ctx.instance_id and peer is not None:
            if peer.estimator.offset is None:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(3.0):
                        await peer.synced.wait()
            offset = peer.estimator.offset or 0.0
        return self._ctx.wall_to_monotonic(wall - offset)
