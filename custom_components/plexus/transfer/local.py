"""The queue's blocking file-system steps: stats, sizes, free space, containment, sync status.

All blocking: the queue runs them through its ``run_sync`` (the executor).
"""

import contextlib
from datetime import UTC, datetime
from pathlib import Path
import stat

from .errors import DiskFullError, SourceMissingError, TransferError
from .models import SyncStatus, TransferState
from .paths import IsAllowed, check_allowed, ensure_inside, free_bytes, partial_path
from .store import TransferStore


def check_destination(
    destination: str, roots: tuple[str, ...], is_allowed: IsAllowed | None
) -> None:
    """Refuse a destination outside every destination root, or one HA does not allow.

    Blocking (resolves symlinks, asks the host): run it in the executor.
    """
    for root in roots:
        try:
            ensure_inside(root, destination)
        except TransferError:
            continue
        break
    else:
        ensure_inside(roots[0], destination)  # raises PathEscapeError naming the first root
    if is_allowed is not None:
        check_allowed(destination, is_allowed)


def sync_status(store: TransferStore, profile: str, sources: list[str]) -> dict[str, SyncStatus]:
    """Return each source file's sync status in a profile: synced, partial, not synced, changed."""
    latest = store.latest_by_source(profile, sources)
    result: dict[str, SyncStatus] = {}
    for source in sources:
        item = latest.get(source)
        if item is None:
            result[source] = SyncStatus.NOT_SYNCED
        elif item.state == TransferState.DONE:
            if file_size(Path(item.destination)) != item.size:
                result[source] = SyncStatus.NOT_SYNCED
            else:
                try:
                    now = stat_source(source)
                except SourceMissingError:
                    now = (item.source_size, item.source_mtime_ns)
                same = now == (item.source_size, item.source_mtime_ns)
                result[source] = SyncStatus.SYNCED if same else SyncStatus.CHANGED_AT_SOURCE
        elif file_size(partial_path(item.destination)) > 0:
            result[source] = SyncStatus.PARTIAL
        else:
            result[source] = SyncStatus.NOT_SYNCED
    return result


def utcnow() -> datetime:
    """Return the time now, in UTC."""
    return datetime.now(UTC)


def stat_source(source: str) -> tuple[int, int]:
    """Return a source file's (size, mtime_ns); SourceMissingError if it is not a file now."""
    try:
        st = Path(source).stat()
    except OSError as err:
        raise SourceMissingError(source, err.strerror or "") from err
    if not stat.S_ISREG(st.st_mode):
        raise SourceMissingError(source, "not a file")
    return st.st_size, st.st_mtime_ns


def file_size(path: Path) -> int:
    """Return a file's size (0 when it is not there)."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


def remove_file(path: Path) -> None:
    """Delete a file if it is there."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def shortfall(size: int, destination: str, reserve: int) -> DiskFullError:
    """Return what a copy to ``destination`` needs free (and what is free) as a DiskFullError.

    Blocks the partial already has count as copied: also those allocated past its end (rsync
    ``--preallocate`` reserves the file's whole length).
    """
    partial = partial_path(destination)
    try:
        st = partial.stat()
    except FileNotFoundError:
        have = 0
    else:
        have = max(st.st_size, st.st_blocks * 512)
    return DiskFullError(max(0, size - have) + reserve, free_bytes(partial.parent), partial.parent)


def source_present(source: str) -> bool:
    """Return True when the source file is there."""
    return Path(source).is_file()
