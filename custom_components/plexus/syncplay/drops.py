"""Dropped messages: counted always, logged as one summary line per group per window.

A flood of forged or garbage messages must neither fill the log nor go unnoticed: the first
drop is logged at once, later ones are summed up ("dropped N messages from M senders:
reasons …") at most once per `SUMMARY_WINDOW_S`. The counters stay readable for diagnostics.
"""

from collections import Counter
from collections.abc import Callable
import logging
from typing import Any, Final

_LOGGER = logging.getLogger(__name__)

SUMMARY_WINDOW_S: Final = 300.0
# Distinct senders remembered per window (beyond it the count says "at least").
MAX_SENDERS: Final = 1000


class DropLog:
    """Count dropped messages by reason; log a summary at most once per window."""

    def __init__(
        self,
        group: str,
        monotonic: Callable[[], float],
        reasons: list[str],
        *,
        window_s: float = SUMMARY_WINDOW_S,
    ) -> None:
        """Drops of `group`, timed by `monotonic`, counted under each of `reasons`."""
        self.group = group
        self._monotonic = monotonic
        self.window_s = window_s
        self.totals: dict[str, int] = dict.fromkeys(reasons, 0)
        self._pending: Counter[str] = Counter()
        self._senders: set[str] = set()
        self._senders_overflow = False
        self._last_summary: float | None = None
        self.summaries = 0

    def drop(self, reason: str, sender: str | None) -> None:
        """Count one dropped message (and log the summary when it is due)."""
        self.totals[reason] = self.totals.get(reason, 0) + 1
        self._pending[reason] += 1
        key = (sender or "?")[:64]
        if len(self._senders) < MAX_SENDERS:
            self._senders.add(key)
        elif key not in self._senders:
            self._senders_overflow = True
        self.flush()

    def flush(self) -> None:
        """Log the pending summary when the window since the last one has passed."""
        if not self._pending:
            return
        now = self._monotonic()
        if self._last_summary is not None and now - self._last_summary < self.window_s:
            return
        self._last_summary = now
        self.summaries += 1
        count = sum(self._pending.values())
        senders = f"{'at least ' if self._senders_overflow else ''}{len(self._senders)}"
        reasons = ", ".join(f"{reason} {n}" for reason, n in self._pending.most_common())
        _LOGGER.warning(
            "Sync group %s: dropped %d message%s from %s sender%s: %s"
            " (next summary in %.0f s at the earliest)",
            self.group,
            count,
            "" if count == 1 else "s",
            senders,
            "" if senders == "1" else "s",
            reasons,
            self.window_s,
        )
        self._pending.clear()
        self._senders.clear()
        self._senders_overflow = False

    def stats(self) -> dict[str, Any]:
        """Counters for diagnostics: totals by reason, and what awaits the next summary."""
        return {
            "total": sum(self.totals.values()),
            "by_reason": dict(self.totals),
            "pending": sum(self._pending.values()),
            "pending_senders": len(self._senders),
            "summaries_logged": self.summaries,
        }
