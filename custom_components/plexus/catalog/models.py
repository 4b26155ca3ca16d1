"""Plain data passed between the importer, the database layer and callers."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from .guids import ParsedGuid

type ImportMode = Literal["full", "incremental"]


@dataclass(slots=True)
class MediaFileRecord:
    """One ``Part`` of an item's ``Media`` (a file on the server)."""

    plex_path: str
    part_id: str | None = None
    size: int | None = None
    container: str | None = None
    video_codec: str | None = None
    audio_codec: str | None = None
    video_resolution: str | None = None
    width: int | None = None
    height: int | None = None
    bitrate: int | None = None
    duration: int | None = None


@dataclass(slots=True)
class ItemRecord:
    """One library item as read from Plex (movie, show, season, episode, artist, album, track)."""

    rating_key: str
    type: str
    title: str
    sort_title: str | None = None
    original_title: str | None = None
    year: int | None = None
    parent_rating_key: str | None = None
    grandparent_rating_key: str | None = None
    parent_title: str | None = None
    grandparent_title: str | None = None
    season_number: int | None = None
    episode_number: int | None = None
    duration: int | None = None
    added_at: int | None = None
    updated_at: int | None = None
    guid: str | None = None
    guids: list[ParsedGuid] = field(default_factory=list)
    media: list[MediaFileRecord] = field(default_factory=list)
    unknown_guids: int = 0


@dataclass(slots=True)
class LibraryRecord:
    """One library section as ``/library/sections`` lists it."""

    key: str
    type: str
    title: str
    agent: str | None = None
    uuid: str | None = None
    locations: list[str] = field(default_factory=list)
    updated_at: int | None = None
    scanned_at: int | None = None


@dataclass(frozen=True, slots=True)
class LibraryInfo:
    """A library as stored in the catalog."""

    key: str
    type: str
    title: str
    locations: tuple[str, ...]
    item_count: int
    updated_marker: int | None


@dataclass(frozen=True, slots=True)
class GuidRef:
    """One GUID of a stored item."""

    provider: str
    id: str
    season: int | None = None
    episode: int | None = None


@dataclass(frozen=True, slots=True)
class MediaFileInfo:
    """One stored media file."""

    plex_path: str
    local_path: str
    mapped: bool
    size: int | None
    container: str | None
    video_codec: str | None
    video_resolution: str | None


@dataclass(frozen=True, slots=True)
class CatalogItem:
    """One stored item, with its GUIDs and files."""

    server_id: str
    library_key: str
    rating_key: str
    type: str
    title: str
    sort_title: str | None
    original_title: str | None
    year: int | None
    parent_rating_key: str | None
    grandparent_rating_key: str | None
    grandparent_title: str | None
    season_number: int | None
    episode_number: int | None
    duration: int | None
    added_at: int | None
    updated_at: int | None
    guids: tuple[GuidRef, ...] = ()
    files: tuple[MediaFileInfo, ...] = ()
    # The season's show, the episode's season, the album's artist, the track's album.
    parent_title: str | None = None

    @property
    def local_path(self) -> str | None:
        """Return the first file's local path, if any."""
        return self.files[0].local_path if self.files else None


@dataclass(frozen=True, slots=True)
class TitleHit:
    """A search hit as players show it: the title fields only."""

    rating_key: str
    type: str
    title: str
    year: int | None
    grandparent_title: str


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A search result: the item and how well it matched (0-1)."""

    item: CatalogItem
    score: float


@dataclass(slots=True)
class ImportCounts:
    """What an import did."""

    libraries: int = 0
    seen: int = 0
    added: int = 0
    updated: int = 0
    removed: int = 0
    unknown_guids: int = 0

    def as_dict(self) -> dict[str, int]:
        """Return the counts as a plain dict."""
        return {
            "libraries": self.libraries,
            "seen": self.seen,
            "added": self.added,
            "updated": self.updated,
            "removed": self.removed,
            "unknown_guids": self.unknown_guids,
        }


@dataclass(frozen=True, slots=True)
class ImportRun:
    """One recorded import run."""

    id: int
    server_id: str
    mode: str
    status: str  # "running", "success", "failed"
    started_at: datetime
    finished_at: datetime | None
    counts: ImportCounts
    error: str | None
    # How many libraries the server listed (None: recorded before schema version 2, or the
    # run failed before the listing was read).
    libraries_listed: int | None = None

    @property
    def duration(self) -> float | None:
        """Return the run's duration in seconds."""
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()
