"""Per-client command latency: time from sending a command to seeing its effect."""

from collections import deque
from statistics import median
from typing import Final

WINDOW: Final = 9


class LatencyTracker:
    """Median of the recent samples per command kind, falling back to all kinds."""

    def __init__(self, default_s: float) -> None:
        """Estimate `default_s` until something is measured."""
        self.default_s = default_s
        self._by_kind: dict[str, deque[float]] = {}
        self._all: deque[float] = deque(maxlen=WINDOW)

    def add(self, kind: str, seconds: float) -> None:
        """Record one measured latency (clamped to 0 to 10 s)."""
        value = min(max(seconds, 0.0), 10.0)
        self._by_kind.setdefault(kind, deque(maxlen=WINDOW)).append(value)
        self._all.append(value)

    def estimate(self, kind: str | None = None) -> float:
        """Seconds a command of `kind` takes to take effect."""
        samples = self._by_kind.get(kind) if kind else None
        if samples:
            return float(median(samples))
        if self._all:
            return float(median(self._all))
        return self.default_s

    @property
    def measured(self) -> bool:
        """True once a sample was recorded."""
        return bool(self._all)
