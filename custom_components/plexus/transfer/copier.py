"""Copiers: ``rsync`` as an asyncio subprocess, and a built-in copier where rsync is missing.

Both have the same interface and the same semantics (:meth:`Copier.copy`):

1. The copy is written under a temporary name beside the destination
   (``.<name>.plexus-partial``, :func:`.paths.partial_path`) and only renamed to its final name
   after ``fsync`` (then the folder is fsynced): a half-written file is never where a finished
   one belongs.
2. Resume: an existing partial is kept when its last (up to) 1 MiB equals the source's bytes at
   the same offsets; the copy then continues from the partial's length. Otherwise it starts over.
   rsync runs with ``--append`` (which implies ``--inplace``): without it rsync copies local
   paths with ``--whole-file`` into a fresh temporary file and throws the old data away, so it
   would re-copy everything. ``--append`` sends only the bytes past the receiver's length —
   ``rsync --stats``' "Literal data" is what it wrote, reported as ``bytes_written``.
   ``--preallocate`` reserves the file's length up front (``FALLOC_FL_KEEP_SIZE``: the
   partial's length stays what was written); the receiver then does less work per block.
3. Verification ``size``: the copy has the source's size, and the source's ``(size, mtime)`` did
   not change during the copy. ``sha256`` adds a SHA-256 comparison: the built-in copier hashes
   while copying (a reader, a hasher and a writer thread pass chunks along a ring of buffers:
   each chunk is hashed and written from the same buffer, so the hash is that of the bytes
   written); on a resume it hashes
   the partial's prefix and re-reads the source's prefix (reading, not writing) so a corrupted
   partial is found. rsync: a fresh copy is checked by rsync's own whole-file checksum (what
   the sender read against what the receiver wrote), then the copy is hashed; a resumed copy
   (rsync's checksum covers only the appended bytes) has the source and the copy hashed in
   parallel and compared.
   A mismatch raises :class:`.VerificationError`; the SHA-256 of the copy is returned.
4. Errors are typed: :class:`.DiskFullError` (``ENOSPC``/"No space left on device", with the
   bytes still needed), :class:`.SourceMissingError` (the source or its share is gone),
   :class:`.CopierError` (anything else, rsync's exit code explained). Cancelling the task stops
   the copy (rsync is terminated; the built-in thread stops at the next chunk) and keeps the
   partial for a later resume. :func:`.copying.classify_failure` is the one mapping both use.
5. The built-in copier writes with direct I/O where the destination allows it (no page cache
   filled with a film; see :class:`BuiltinCopier`), and resumes from a 4 KiB boundary.

:func:`copier_for` picks rsync when ``shutil.which("rsync")`` finds it, the built-in copier
otherwise, and says which (``copier.name``, ``copier.description``).
"""

from collections.abc import Callable
import logging
import shutil
from typing import Literal

from .builtin_copier import BuiltinCopier
from .copying import Copier, CopyResult
from .discovery import RunSync
from .rsync_copier import RsyncCopier

_LOGGER = logging.getLogger(__name__)

type Prefer = Literal["auto", "rsync", "builtin"]


def copier_for(
    prefer: Prefer = "auto",
    *,
    run_sync: RunSync | None = None,
    which: Callable[[str], str | None] | None = None,
) -> RsyncCopier | BuiltinCopier:
    """Return rsync's copier when rsync is installed (and not refused), the built-in one otherwise.

    ``prefer="rsync"`` without rsync installed logs a warning and returns the built-in copier
    (never a silent failure: ``copier.name`` says which runs).
    """
    if prefer not in ("auto", "rsync", "builtin"):
        raise ValueError(f"prefer must be 'auto', 'rsync' or 'builtin', not {prefer!r}")
    if prefer != "builtin":
        path = (which or shutil.which)("rsync")
        if path is not None:
            return RsyncCopier(run_sync, rsync=path)
        if prefer == "rsync":
            _LOGGER.warning("rsync is not installed; using the built-in copier")
    return BuiltinCopier(run_sync)


__all__ = [
    "BuiltinCopier",
    "Copier",
    "CopyResult",
    "RsyncCopier",
    "copier_for",
]
