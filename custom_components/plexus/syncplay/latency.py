"""Per-client command latency: time from sending a command to its effect on the player."""

from collections import deque
from itertools import count
import math
from statistics import fmean, pstdev
from typing import Final

WINDOW: Final = 24
MIN_KIND_SAMPLES: Final = 8
TRIM: Final = 8
MAX_S: Final = 10.0
# Reports later than this (the report of a start arriving after the start itself; a busy host
# adds a few ms to every report, a player that reports through its timeline 50 ms and more):
# samples dated from a report's arrival are too long, so a kind's own dated samples win.
LATE_REPORT_S: Final = 0.05


def trimmed_mean(values: list[float]) -> float:
    """Mean without the lowest and highest eighth (at least one each from three values on).

    For the light-tailed jitter of a command path it is nearly as exact as the mean (the
    median's error is about twice as large), and a few stray samples (a stalled request)
    cannot move it.
    """
    ordered = sorted(values)
    cut = max(1, len(ordered) // TRIM) if len(ordered) >= 3 else 0
    return fmean(ordered[cut : len(ordered) - cut])


class LatencyTracker:
    """Recent samples per command kind; a kind with few samples of its own uses all kinds."""

    def __init__(self, default_s: float, window: int = WINDOW) -> None:
        """Estimate `default_s` until something is measured; keep `window` samples per kind."""
        self.default_s = default_s
        self._window = window
        self._by_kind: dict[str, deque[list[float]]] = {}
        self._all: deque[list[float]] = deque(maxlen=window)
        self._tokens = count(1)
        self._report_lags: deque[float] = deque(maxlen=window)

    def add(self, kind: str, seconds: float) -> int:
        """Record one measured latency (clamped to 0 to 10 s); returns a token for `refine`."""
        token = next(self._tokens)
        entry = [float(token), min(max(seconds, 0.0), MAX_S)]
        self._by_kind.setdefault(kind, deque(maxlen=self._window)).append(entry)
        self._all.append(entry)
        return token

    def refine(self, token: int, seconds: float) -> bool:
        """Replace a recorded sample by a better measurement (False when it is gone)."""
        for entries in self._by_kind.values():
            for entry in entries:
                if entry[0] == token:
                    entry[1] = min(max(seconds, 0.0), MAX_S)  # the same list is in `_all`
                    return True
        return False

    def samples(self, kind: str | None = None) -> list[float]:
        """The recorded samples of `kind` (all kinds when None), oldest first."""
        entries = self._all if kind is None else self._by_kind.get(kind, ())
        return [value for _, value in entries]

    def add_report_lag(self, seconds: float) -> None:
        """How long after an effect (dated from the reported position) its report arrived."""
        self._report_lags.append(min(max(seconds, 0.0), MAX_S))

    @property
    def report_lag(self) -> float:
        """Typical delay of the player's reports, seconds (0 until one was measured)."""
        return trimmed_mean(list(self._report_lags)) if self._report_lags else 0.0

    @property
    def lag_measured(self) -> bool:
        """True once a report lag was measured (it needs fine-grained positions)."""
        return bool(self._report_lags)

    def spread(self, kind: str | None = None) -> float:
        """Standard deviation of a kind's samples (all kinds while it has none), seconds."""
        values = self.samples(kind) or self.samples()
        return pstdev(values) if len(values) >= 2 else 0.0

    def basis(self, kind: str | None = None) -> list[float]:
        """The samples the estimate of `kind` is made of (empty: the default is used).

        A kind's own samples once there are enough; before that all kinds together - unless the
        player reports late, when only the kind's own (position-dated) samples can be trusted.
        """
        own = self.samples(kind) if kind else []
        if len(own) >= MIN_KIND_SAMPLES or (own and self.report_lag > LATE_REPORT_S):
            return own
        return self.samples()

    def estimate(self, kind: str | None = None) -> float:
        """Seconds a command of `kind` takes to take effect (see `basis`)."""
        basis = self.basis(kind)
        return trimmed_mean(basis) if basis else self.default_s

    @property
    def measured(self) -> bool:
        """True once a sample was recorded."""
        return bool(self._all)


# Position granularities a player may report in (whole seconds, tenths), coarsest first.
GRAINS: Final = (1000, 100)
GRAIN_EVIDENCE: Final = 3


class PositionGrain:
    """The granularity of the positions a player reports, learned from what it reports.

    Only positions that are not a target the engine just commanded tell anything (a player
    paused at 60 000 reports 60 000 whatever its granularity). One position that is not a
    multiple of a granularity rules it out; `GRAIN_EVIDENCE` positions in a row that are all
    multiples of it make it proven. Until then the coarsest one not ruled out is `plausible_ms`.
    """

    def __init__(self) -> None:
        """Nothing known yet: every granularity is plausible, none proven."""
        self._possible = list(GRAINS)
        self._counts = dict.fromkeys(GRAINS, 0)
        self.proven_ms = 1

    def observe(self, position_ms: float, commanded_ms: float | None) -> bool:
        """Take one reported position; True when what is known changed."""
        if not math.isfinite(position_ms) or position_ms <= 0:
            return False
        if commanded_ms is not None and abs(position_ms - commanded_ms) < 1.0:
            return False
        changed = False
        for grain in list(self._possible):
            if position_ms % grain:
                self._possible.remove(grain)
                changed = True
            else:
                self._counts[grain] += 1
                if self._counts[grain] >= GRAIN_EVIDENCE and self.proven_ms < grain:
                    self.proven_ms = grain
                    changed = True
        return changed

    @property
    def plausible_ms(self) -> int:
        """The coarsest granularity not ruled out (1: positions are exact)."""
        return max(self.proven_ms, self._possible[0] if self._possible else 1)

    @property
    def fine(self) -> bool:
        """True when positions are known to be finer than a tenth of a second."""
        return self.plausible_ms == 1

    def near(self, reported_ms: float, target_ms: float, tolerance_ms: float) -> bool:
        """Whether a reported position can be `target_ms`, truncated to the granularity."""
        return near(reported_ms, target_ms, tolerance_ms, self.plausible_ms)


def near(reported_ms: float, target_ms: float, tolerance_ms: float, grain_ms: float) -> bool:
    """Whether a position reported truncated to `grain_ms` can be `target_ms`.

    Truncated, it is at most one grain below (never above); exact, within the tolerance.
    """
    below = target_ms - reported_ms
    return -tolerance_ms <= below < max(grain_ms, tolerance_ms + 1.0)


# Two playing reports more than this apart from one trajectory: the player jumped (a seek, a
# stall), and the estimate starts again from the later one.
FIX_SLACK_MS: Final = 60.0


class PositionFix:
    """Where a playing player is, from every report since it last jumped (coarse positions).

    A report of position P (truncated to granularity G) at instant T says the player's
    trajectory `position - 1000 * instant` lies in [P - 1000 T, P + G - 1000 T): the
    intersection over successive reports narrows it below G when their phases differ.
    """

    def __init__(self) -> None:
        """No estimate."""
        self.lower: float | None = None
        self.upper = 0.0

    def reset(self) -> None:
        """Forget the estimate (after a command, a stop)."""
        self.lower = None

    def add(self, position_ms: float, at: float, grain_ms: float) -> None:
        """One playing report: position (truncated to `grain_ms`) at monotonic `at`."""
        low = position_ms - at * 1000.0
        high = low + grain_ms
        if (
            self.lower is None
            or low > self.upper + FIX_SLACK_MS
            or high < self.lower - FIX_SLACK_MS
        ):
            self.lower, self.upper = low, high
            return
        self.lower, self.upper = max(self.lower, low), min(self.upper, high)
        if self.lower > self.upper:  # jitter: meet in the middle
            self.lower = self.upper = (self.lower + self.upper) / 2.0

    def position_at(self, monotonic: float) -> float | None:
        """The estimated position at a monotonic instant (None without an estimate)."""
        if self.lower is None:
            return None
        return (self.lower + self.upper) / 2.0 + monotonic * 1000.0

    @property
    def uncertainty_ms(self) -> float:
        """How far the estimate may be off (half the remaining interval), ms."""
        return 0.0 if self.lower is None else (self.upper - self.lower) / 2.0
