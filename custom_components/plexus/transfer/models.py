"""Plain data of the transfer engine: discovered files, queue items, events, profile options."""

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal

from .naming import MediaType, ParsedName

type Layout = Literal["mirror", "plex"]
type Verify = Literal["size", "sha256"]

DEFAULT_EXTENSIONS: frozenset[str] = frozenset(
    {".mkv", ".mp4", ".m4v", ".avi", ".mov", ".wmv", ".ts", ".m2ts", ".mpg", ".mpeg", ".webm"}
)
# Folder names whose contents are not the main media (Plex's "local extras" folders and more).
DEFAULT_SKIP_FOLDERS: frozenset[str] = frozenset(
    {
        "sample", "samples", "trailer", "trailers", "extras", "extra", "featurettes",
        "behind the scenes", "deleted scenes", "interviews", "scenes", "shorts", "other",
        "bonus", "@eadir", ".trash", "$recycle.bin", "lost+found",
    }
)  # fmt: skip
# A file whose name ends with one of these (before the extension) is a sample/trailer/extra.
DEFAULT_SKIP_SUFFIXES: tuple[str, ...] = (
    "sample", "trailer", "featurette", "behindthescenes", "deleted", "interview", "scene",
    "short", "other", "extra",
)  # fmt: skip


class TransferState(StrEnum):
    """Where a transfer is."""

    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE_STATES = frozenset({TransferState.QUEUED, TransferState.RUNNING, TransferState.PAUSED})


class SyncStatus(StrEnum):
    """Whether a source file has a good copy in a profile's destination."""

    SYNCED = "synced"
    PARTIAL = "partial"
    NOT_SYNCED = "not_synced"
    CHANGED_AT_SOURCE = "changed_at_source"


@dataclass(frozen=True, slots=True)
class SourceRoot:
    """A folder to scan, and what kind of media is in it."""

    path: str
    media_type: MediaType


@dataclass(frozen=True, slots=True)
class ScanOptions:
    """What discovery counts as a video file and what it skips."""

    extensions: frozenset[str] = DEFAULT_EXTENSIONS
    skip_folders: frozenset[str] = DEFAULT_SKIP_FOLDERS
    skip_suffixes: tuple[str, ...] = DEFAULT_SKIP_SUFFIXES


@dataclass(frozen=True, slots=True)
class MediaFile:
    """A video file discovery found (a row of ``plexus_transfer_files``)."""

    id: int
    root: str
    media_type: MediaType
    rel_path: str
    path: str
    size: int
    mtime_ns: int
    parsed: ParsedName
    link: str | None = None


@dataclass(frozen=True, slots=True)
class ScanProgress:
    """Where a scan is: files seen so far, and how many of them were (re)parsed."""

    root: str
    seen: int
    parsed: int


@dataclass(slots=True)
class ScanResult:
    """What a scan did."""

    seen: int = 0
    added: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0
    parsed_fast: int = 0
    parsed_guessit: int = 0
    # Roots that were not there (a share not mounted): their rows are kept, not deleted.
    missing_roots: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class TransferItem:
    """One transfer of a profile's queue."""

    id: int
    profile: str
    state: TransferState
    source: str
    destination: str
    title: str
    size: int
    source_size: int
    source_mtime_ns: int
    bytes_done: int
    attempts: int
    verify_failures: int
    sha256: str | None
    error: str | None
    file_id: int | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class TransferRequest:
    """What to copy where (``destination`` as built by :func:`.paths.plan_destination`)."""

    source: str
    destination: str
    title: str
    file_id: int | None = None


type EventKind = Literal[
    "queued", "started", "progress", "retrying", "paused", "finished", "failed", "cancelled"
]


@dataclass(frozen=True, slots=True)
class TransferEvent:
    """Something happened to a transfer (for HA events, sensors and notifications)."""

    kind: EventKind
    item_id: int
    profile: str
    title: str
    source: str
    destination: str
    size: int
    bytes_done: int = 0
    # Bytes per second over the last second(s), and seconds left; progress events only.
    speed: float | None = None
    eta: float | None = None
    sha256: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ProfileOptions:
    """A transfer profile's behaviour (the glue builds it from the subentry's data)."""

    verify: Verify = "sha256"
    # Bytes per second; None = unlimited.
    bandwidth_limit: int | None = None
    retries: int = 5
    backoff_base: float = 2.0
    backoff_cap: float = 60.0
    concurrency: int = 1
    # Bytes that must stay free at the destination after the copy.
    free_space_reserve: int = 0
    # How often a missing source is looked for while waiting for it (seconds, at most 2).
    source_poll: float = 1.0
    # The destination roots of the profile: nothing is ever written outside them.
    destination_roots: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Refuse options that make no sense, naming the option."""
        if self.verify not in ("size", "sha256"):
            raise ValueError(f"verify must be 'size' or 'sha256', not {self.verify!r}")
        if self.bandwidth_limit is not None and self.bandwidth_limit <= 0:
            raise ValueError("bandwidth_limit must be a positive number of bytes per second")
        if self.retries < 0:
            raise ValueError("retries must be 0 or more")
        if not 0 < self.backoff_base <= self.backoff_cap <= 60:
            raise ValueError("backoff_base must be > 0 and <= backoff_cap <= 60 seconds")
        if self.concurrency < 1:
            raise ValueError("concurrency must be 1 or more")
        if self.free_space_reserve < 0:
            raise ValueError("free_space_reserve must be 0 or more bytes")
        if not 0 < self.source_poll <= 2:
            raise ValueError("source_poll must be > 0 and <= 2 seconds")

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based): base * 2^(n-1), capped."""
        return float(min(self.backoff_cap, self.backoff_base * 2 ** max(0, attempt - 1)))
