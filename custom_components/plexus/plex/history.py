"""The server's own watch history (`/status/sessions/history/all`), read page by page."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from .api import PlexServerAPI
from .parse import parse_xml

HISTORY_PATH: Final = "/status/sessions/history/all"
PAGE_SIZE: Final = 200


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One view in the server's history."""

    rating_key: str
    type: str
    title: str
    viewed_at: datetime
    account_id: str | None
    grandparent_title: str | None = None
    season: int | None = None
    episode: int | None = None


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and value.lstrip("-").isdigit() else None


def parse_history(body: bytes | str) -> tuple[list[HistoryEntry], int | None]:
    """Parse one page: its entries (those with a rating key and a time) and the total size."""
    root = parse_xml(body)
    entries: list[HistoryEntry] = []
    for elem in root:
        key = elem.get("ratingKey")
        viewed = _int(elem.get("viewedAt"))
        if not key or viewed is None:
            continue  # deleted items keep history rows without a key; nothing to match them to
        kind = elem.get("type", "")
        entries.append(
            HistoryEntry(
                rating_key=key,
                type=kind,
                title=elem.get("title", ""),
                viewed_at=datetime.fromtimestamp(viewed, UTC),
                account_id=elem.get("accountID"),
                grandparent_title=elem.get("grandparentTitle"),
                season=_int(elem.get("parentIndex")) if kind == "episode" else None,
                episode=_int(elem.get("index")) if kind == "episode" else None,
            )
        )
    return entries, _int(root.get("totalSize"))


async def read_history(
    api: PlexServerAPI, *, since: datetime | None = None, page_size: int = PAGE_SIZE
) -> AsyncIterator[list[HistoryEntry]]:
    """Yield the history newest first, a page at a time (since a time, when given)."""
    start = 0
    while True:
        params: dict[str, str | int] = {
            "sort": "viewedAt:desc",
            "X-Plex-Container-Start": start,
            "X-Plex-Container-Size": page_size,
        }
        if since is not None:
            params["viewedAt>"] = int(since.timestamp())
        entries, total = parse_history(await api.request(HISTORY_PATH, params=params))
        # A page counts its rows, keyless ones too: read on while the server has more.
        yield entries
        start += page_size
        if total is None or start >= total:
            return
