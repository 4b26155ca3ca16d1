"""File sync engine: discover media on source roots, copy it to local disk, queued and verified.

HA-free (imports nothing from ``homeassistant`` or the glue); every blocking call goes through a
``run_sync`` callable (pass ``hass.async_add_executor_job``), and long copies run in their own
threads or as an rsync subprocess. The glue (``transfers.py``) builds one of each per profile.

Set-up (all objects take the same database URL as the catalog)::

    store = await hass.async_add_executor_job(TransferStore, catalog_db_url)   # creates tables
    discovery = Discovery(store, run_sync, linker=None)          # linker(path, parsed) -> key
    copier = copier_for("auto", run_sync=run_sync)               # copier.name: rsync | builtin
    queue = TransferQueue(
        store, subentry_id, copier=copier, run_sync=run_sync,
        options=ProfileOptions(verify="sha256", destination_roots=(dest_root,), ...),
        is_allowed=hass.config.is_allowed_path,                  # called off the loop
        on_event=fire_event,                                     # TransferEvent, on the loop
        on_disk_full=raise_repairs_issue,                        # (DiskFullError, TransferItem)
    )
    await queue.start()          # resumes what a restart interrupted;  await queue.stop() on unload
    queue.update_options(...)    # reconfigure keeps the queue

Discovery (``scan_sources``)::

    result = await discovery.scan([SourceRoot("/mnt/movies", "movie"),
                                   SourceRoot("/mnt/tv", "show")], progress=cb)  # ScanResult
    files = await discovery.files(kind="episode", title="Doctor Who", season=1)   # [MediaFile]

Queueing (``sync_media``) — plan the destination off the loop, then enqueue::

    dest = await run_sync(lambda: plan_destination(dest_root, layout="plex", rel_path=m.rel_path,
                          parsed=m.parsed, media_type=m.media_type, is_allowed=is_allowed))
    item = await queue.enqueue(TransferRequest(m.path, dest, title, file_id=m.id))  # TransferItem
    sel = parse_episodes("1,3,5-8" | "new" | "all")       # InvalidSelectionError on bad input
    status = await queue.sync_status([m.path for m in files])   # {path: SyncStatus}
    picked = select_episodes(files, sel, season=1, status=status)

Commands: ``queue.cancel(id)``, ``queue.pause()`` / ``queue.resume()`` (also re-queues transfers a
full disk paused), ``queue.retry(id)``, ``queue.remove_local_copy(destination)`` (only a file this
profile copied), ``queue.items()``, ``queue.get(id)``, ``queue.wait_idle()``. Live figures for
sensors: ``queue.current`` (``{id: CurrentTransfer}`` with bytes, percent, speed, ETA),
``queue.paused``, ``queue.copier_name``.

Events (``on_event``, at most one ``progress`` a second per transfer): ``queued``, ``started``,
``progress``, ``retrying``, ``paused``, ``finished``, ``failed``, ``cancelled`` — each a
:class:`TransferEvent` with item id, profile, title, source, destination, size, bytes done, and
speed/ETA, SHA-256 or error where they apply.

Errors (all :class:`TransferError`): :class:`PathNotAllowedError` (names the path),
:class:`PathEscapeError` (destination outside its root), :class:`InvalidSelectionError`,
:class:`SourceMissingError`, :class:`DiskFullError` (``needed_bytes``, ``free_bytes``),
:class:`VerificationError`, :class:`CopierError` (rsync's exit code explained),
:class:`TransferNotFoundError`. ``ProfileOptions(...)`` raises ``ValueError`` naming a bad option.
"""

from .copier import BuiltinCopier, Copier, CopyResult, RsyncCopier, copier_for
from .discovery import Discovery, Linker, RunSync, scan_sync
from .errors import (
    CopierError,
    DiskFullError,
    InvalidSelectionError,
    PathEscapeError,
    PathNotAllowedError,
    SourceMissingError,
    TransferError,
    TransferNotFoundError,
    VerificationError,
)
from .models import (
    MediaFile,
    ProfileOptions,
    ScanOptions,
    ScanProgress,
    ScanResult,
    SourceRoot,
    SyncStatus,
    TransferEvent,
    TransferItem,
    TransferRequest,
    TransferState,
)
from .naming import ParsedName, parse_name
from .paths import plan_destination, sanitize_component
from .queue import CurrentTransfer, TransferQueue
from .selection import EpisodeSelection, parse_episodes, select_episodes
from .store import TransferStore

__all__ = [
    "BuiltinCopier",
    "Copier",
    "CopierError",
    "CopyResult",
    "CurrentTransfer",
    "Discovery",
    "DiskFullError",
    "EpisodeSelection",
    "InvalidSelectionError",
    "Linker",
    "MediaFile",
    "ParsedName",
    "PathEscapeError",
    "PathNotAllowedError",
    "ProfileOptions",
    "RsyncCopier",
    "RunSync",
    "ScanOptions",
    "ScanProgress",
    "ScanResult",
    "SourceMissingError",
    "SourceRoot",
    "SyncStatus",
    "TransferError",
    "TransferEvent",
    "TransferItem",
    "TransferNotFoundError",
    "TransferQueue",
    "TransferRequest",
    "TransferState",
    "TransferStore",
    "VerificationError",
    "copier_for",
    "parse_episodes",
    "parse_name",
    "plan_destination",
    "sanitize_component",
    "scan_sync",
    "select_episodes",
]
