"""Typed errors of the transfer engine; the glue turns them into translated messages/Repairs."""

from pathlib import Path


class TransferError(Exception):
    """Base error of the transfer engine."""


class InvalidSelectionError(TransferError, ValueError):
    """An episode selection (e.g. ``"1,3,5-8"``) or other user input could not be understood."""


class PathNotAllowedError(TransferError):
    """Home Assistant does not allow this path (``allowlist_external_dirs`` / media dirs)."""

    def __init__(self, path: str | Path) -> None:
        """Name the refused path."""
        self.path = str(path)
        super().__init__(f"path is not allowed by Home Assistant: {self.path}")


class PathEscapeError(TransferError):
    """A destination would end up outside its destination root (``..``, a symlink, …)."""

    def __init__(self, path: str | Path, root: str | Path) -> None:
        """Name the path and the root it must stay in."""
        self.path = str(path)
        self.root = str(root)
        super().__init__(f"destination {self.path} is outside the destination root {self.root}")


class SourceMissingError(TransferError):
    """The source file (or its share) is not there right now; the transfer waits for it."""

    def __init__(self, path: str | Path, detail: str = "") -> None:
        """Name the missing source."""
        self.path = str(path)
        super().__init__(
            f"source is not available: {self.path}" + (f" ({detail})" if detail else "")
        )


DISK_FULL_PREFIX = "not enough space at "


class DiskFullError(TransferError):
    """Not enough free space at the destination: ``needed_bytes`` must be free to go on.

    Its text (stored as a paused transfer's error) starts with :data:`DISK_FULL_PREFIX`, which
    is how a restart knows a paused transfer waits for space (:func:`is_disk_full_text`).
    """

    def __init__(
        self, needed_bytes: int, free_bytes: int | None = None, path: str | Path = ""
    ) -> None:
        """Say how much space is needed (and how much there is, when known)."""
        self.needed_bytes = int(needed_bytes)
        self.free_bytes = free_bytes
        self.path = str(path)
        have = f", {free_bytes} free" if free_bytes is not None else ""
        super().__init__(f"{DISK_FULL_PREFIX}{self.path}: {self.needed_bytes} bytes needed{have}")


def is_disk_full_text(error: str | None) -> bool:
    """Return True for the stored text of a :class:`DiskFullError`."""
    return error is not None and error.startswith(DISK_FULL_PREFIX)


class VerificationError(TransferError):
    """The copy does not match its source (checksum, size, or the source changed meanwhile)."""


class CopierError(TransferError):
    """The copier failed for another reason (rsync's exit code and message are in the text)."""

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        """Keep rsync's exit code, when there is one."""
        self.exit_code = exit_code
        super().__init__(message)


class TransferNotFoundError(TransferError, KeyError):
    """No transfer with this id in this profile."""

    def __str__(self) -> str:
        """Keep KeyError from quoting the message."""
        return str(self.args[0]) if self.args else "transfer not found"
