"""NTP-style clock offset estimation between instances (four timestamps per sample).

Each exchange bounds the peer's offset: the request cannot arrive before it was sent, so
`t1 - t0` (offset plus the way there) is an upper bound, and the response cannot arrive before
it was sent, so `t2 - t3` (offset minus the way back) is a lower bound. NTP keeps the exchange
with the lowest round trip and takes the middle of its bounds; here the bounds of all recent
exchanges are intersected (the lowest way there and the lowest way back, usually from different
exchanges), which is never wider than the best single exchange and much narrower when delays
vary a lot (a broker adding random delay to every message). If the bounds contradict each other
(a clock stepped or drifted within the window) the lowest-delay exchanges decide, as in NTP.
"""

from collections import deque
from dataclasses import dataclass
from typing import Final

MAX_SAMPLES: Final = 64
BEST_SAMPLES: Final = 1


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
