"""What to copy: episode selections ("1,3,5-8", "new", "all") and picking files by them."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
import re
from typing import Final

from .errors import InvalidSelectionError
from .models import MediaFile, SyncStatus

MAX_EPISODE: Final = 99_999
MAX_RANGE: Final = 10_000
_RANGE_RE: Final = re.compile(r"^(\d+)\s*-\s*(\d+)$")
# "new": not copied yet (never copied, or a partial copy).
NEW_STATUSES: Final = frozenset({SyncStatus.NOT_SYNCED, SyncStatus.PARTIAL})


@dataclass(frozen=True, slots=True)
class EpisodeSelection:
    """Which episodes: a set of numbers, all of them (``None``), or only those not synced yet."""

    episodes: frozenset[int] | None = None
    new_only: bool = False


def parse_episodes(text: str | None) -> EpisodeSelection:
    """Parse ``"1,3,5-8"``, ``"new"`` or ``"all"``/empty; a bad piece raises naming itself."""
    value = (text or "").strip().casefold()
    if value in ("", "all", "*"):
        return EpisodeSelection()
    if value == "new":
        return EpisodeSelection(new_only=True)
    numbers: set[int] = set()
    for raw in value.split(","):
        piece = raw.strip()
        if not piece:
            raise InvalidSelectionError(f"empty item in episode selection {text!r}")
        if piece.isdigit():
            numbers.add(_number(piece, text))
            continue
        match = _RANGE_RE.match(piece)
        if match is None:
            raise InvalidSelectionError(
                f"{piece!r} in {text!r} is not an episode number or range like 5-8"
            )
        first, last = _number(match[1], text), _number(match[2], text)
        if last < first:
            raise InvalidSelectionError(f"range {piece!r} in {text!r} runs backwards")
        if last - first >= MAX_RANGE:
            raise InvalidSelectionError(f"range {piece!r} in {text!r} is too long")
        numbers.update(range(first, last + 1))
    return EpisodeSelection(frozenset(numbers))


def _number(piece: str, text: str | None) -> int:
    number = int(piece)
    if number > MAX_EPISODE:
        raise InvalidSelectionError(f"episode number {piece} in {text!r} is too large")
    return number


def select_episodes(
    files: Sequence[MediaFile],
    selection: EpisodeSelection,
    *,
    season: int | None = None,
    status: Mapping[str, SyncStatus] | None = None,
) -> list[MediaFile]:
    """Return the episode files a selection picks (a multi-episode file counts if any matches).

    ``new_only`` needs ``status`` (sync status by source path, :meth:`.TransferQueue.sync_status`).
    """
    if selection.new_only and status is None:
        raise ValueError("selecting new episodes needs their sync status")
    picked = []
    for media in files:
        parsed = media.parsed
        if parsed.kind != "episode":
            continue
        if season is not None and parsed.season != season:
            continue
        if selection.episodes is not None and not selection.episodes.intersection(parsed.episodes):
            continue
        if (
            selection.new_only
            and status is not None
            and status.get(media.path, SyncStatus.NOT_SYNCED) not in NEW_STATUSES
        ):
            continue
        picked.append(media)
    picked.sort(key=lambda m: (m.parsed.season or 0, m.parsed.episodes[:1], m.path))
    return picked
