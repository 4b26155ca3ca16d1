"""Per-client command latency: time from sending a command to its effect on the player."""

from collections import deque
from itertools import count
from statistics import fmean
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

    def estimate(self, kind: str | None = None) -> float:
        """Seconds a command of `kind` takes to take effect.

        A kind's own samples once there are enough; before that all kinds together - unless the
        player reports late, when only the kind's own (position-dated) samples can be trusted.
        """
        own = self.samples(kind) if kind else []
        if len(own) >= MIN_KIND_SAMPLES or (own and self.report_lag > LATE_REPORT_S):
            return trimmed_mean(own)
        pooled = self.samples()
        return trimmed_mean(pooled) if pooled else self.default_s

    @property
    def measured(self) -> bool:
        """True once a sample was recorded."""
        return bool(self._all)
