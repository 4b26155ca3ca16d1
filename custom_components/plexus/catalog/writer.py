"""The import writer: one import run's writes, all in ONE transaction.

An :class:`ImportWriter` comes from :meth:`.db.Catalog.begin_import`. Either every library's
changes of the run are committed together, or — on any error, cancellation or a crash — none
are, and the catalog stays exactly as it was. The run itself is recorded in ``import_runs`` in
separate short transactions (``running`` → ``success`` or ``failed`` with the error).
"""

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
import functools
import hashlib
import logging
import threading
from typing import TYPE_CHECKING, Any, Concatenate

from sqlalchemy import Engine, delete, insert, select, update

from . import schema as s
from .connection import bind, load_mappings, now
from .errors import DATABASE_ERRORS, CatalogError, guarded, short_cause, unavailable
from .models import ImportCounts, ImportMode, ItemRecord, LibraryRecord
from .paths import PathMapper

if TYPE_CHECKING:
    from .db import Catalog

_LOGGER = logging.getLogger(__name__)

_CHUNK = 900  # bound parameters per IN (...) list

# What the search index needs of an item written: title, type, year, show title, original title.
type IndexEntry = tuple[str, str, int | None, str, str]
type IndexUpdate = Callable[[dict[int, IndexEntry], set[int], bool], None]


def _one_at_a_time[**P, R](
    func: Callable[Concatenate[ImportWriter, P], R],
) -> Callable[Concatenate[ImportWriter, P], R]:
    """Run a writer method under the writer's lock.

    The importer runs each step as an executor job. When its task is cancelled (an unload, a
    reload), the job already running in a thread goes on while the clean-up (``fail``) starts
    in another thread: without the lock both used the one database connection at once, which
    can crash the interpreter inside the SQLite driver. A step that only starts after the run
    ended is refused instead of touching a closed connection.
    """

    @functools.wraps(func)
    def wrapper(self: ImportWriter, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with self._lock:
            if self._closed and func.__name__ not in ("fail", "commit"):
                raise CatalogError("import already finished")
            return func(self, *args, **kwargs)

    return wrapper


def fingerprint(item: ItemRecord) -> str:
    """Return a hash of everything stored for an item (an unchanged item is not rewritten)."""
    parts: list[object] = [
        item.type,
        item.title,
        item.sort_title,
        item.original_title,
        item.year,
        item.parent_rating_key,
        item.grandparent_rating_key,
        item.parent_title,
        item.grandparent_title,
        item.season_number,
        item.episode_number,
        item.duration,
        item.added_at,
        item.updated_at,
        item.guid,
        [(g.provider, g.id, g.season, g.episode) for g in item.guids],
        [
            (
                m.plex_path,
                m.part_id,
                m.size,
                m.container,
                m.video_codec,
                m.audio_codec,
                m.video_resolution,
                m.width,
                m.height,
                m.bitrate,
                m.duration,
            )
            for m in item.media
        ],
    ]
    return hashlib.blake2b(repr(parts).encode(), digest_size=12).hexdigest()


class ImportWriter:
    """One import run's writes, all in one transaction (see the module docstring).

    Use from one thread at a time (e.g. successive executor jobs): ``library()``, then
    ``write_batch()`` repeatedly, ``finish_library()``, and at the end ``commit()`` or ``fail()``.
    """

    @guarded
    def __init__(
        self,
        engine: Engine,
        machine_identifier: str,
        server_id: int,
        run_id: int,
        mode: ImportMode,
        *,
        track_index: bool = False,
        index_update: IndexUpdate | None = None,
    ) -> None:
        """Open the run's connection and transaction.

        With ``track_index`` (the search index is loaded), the items written and removed are
        collected; ``index_update(added, removed, tracked)`` gets them after a successful commit.
        """
        self._engine = engine
        self._index_update = index_update
        self.machine_identifier = machine_identifier
        self.server_id = server_id
        self.run_id = run_id
        self.mode = mode
        self.counts = ImportCounts()
        self.libraries_listed: int | None = None
        self._conn = engine.connect()
        self._tx = self._conn.begin()
        self._mapper = PathMapper(load_mappings(self._conn, machine_identifier))
        self._library_id: int | None = None
        self._max_updated: int | None = None
        # Keep the search index current only when it is loaded; otherwise it is built later.
        self._track_index = track_index
        self._index_added: dict[int, IndexEntry] = {}
        self._index_removed: set[int] = set()
        self._closed = False
        self._lock = threading.RLock()

    # libraries

    @guarded
    @_one_at_a_time
    def sync_libraries(
        self, sections: Sequence[LibraryRecord], *, remove_missing: bool = True
    ) -> None:
        """Store the server's sections; with ``remove_missing``, drop libraries no longer listed.

        An empty listing removes the server's libraries only when the previous successful run
        listed none either: a server that is still starting lists nothing.
        """
        lib = s.libraries
        self.libraries_listed = len(sections)
        existing = {
            row.section_key: row.id
            for row in self._conn.execute(
                select(lib.c.section_key, lib.c.id).where(lib.c.server_id == self.server_id)
            )
        }
        if remove_missing and not sections and existing and not self._listed_none_before():
            _LOGGER.warning(
                "Plex server %s lists no libraries; the catalog keeps its %d libraries until the"
                " next import sees none either",
                self.machine_identifier,
                len(existing),
            )
            remove_missing = False
        listed = {sec.key for sec in sections}
        for sec in sections:
            values = {
                "type": sec.type,
                "title": sec.title,
                "agent": sec.agent,
                "uuid": sec.uuid,
                "root_locations": list(sec.locations),
                "plex_updated_at": sec.updated_at,
            }
            if sec.key in existing:
                self._conn.execute(
                    update(lib).where(lib.c.id == existing[sec.key]).values(**values)
                )
            else:
                self._conn.execute(
                    insert(lib).values(server_id=self.server_id, section_key=sec.key, **values)
                )
        if remove_missing:
            for key, library_id in existing.items():
                if key not in listed:
                    self._delete_items(
                        select(s.items.c.id).where(s.items.c.library_id == library_id)
                    )
                    self._conn.execute(delete(lib).where(lib.c.id == library_id))

    def _listed_none_before(self) -> bool:
        """Return True when the server's previous successful run listed no libraries."""
        r = s.import_runs
        return (
            self._conn.execute(
                select(r.c.libraries_listed)
                .where(
                    r.c.server_id == self.server_id,
                    r.c.status == "success",
                    r.c.id != self.run_id,
                )
                .order_by(r.c.id.desc())
                .limit(1)
            ).scalar()
            == 0
        )

    @guarded
    @_one_at_a_time
    def start_library(self, section_key: str) -> int | None:
        """Make a library current for ``write_batch`` and load what it holds.

        Returns the library's incremental marker: the highest ``updatedAt`` the last successful
        import saw in it (None before the first).
        """
        found = self._conn.execute(
            select(s.libraries.c.id, s.libraries.c.updated_marker).where(
                s.libraries.c.server_id == self.server_id, s.libraries.c.section_key == section_key
            )
        ).first()
        if found is None:
            raise CatalogError(
                f"library {section_key} is not in the catalog; call sync_libraries first"
            )
        library_id, marker = found
        marker = None if marker is None else int(marker)
        self._library_id = library_id
        self._max_updated = None
        self.counts.libraries += 1
        return marker

    @guarded
    @_one_at_a_time
    def known_keys(self, types: Iterable[str] | None = None) -> set[str]:
        """Return the rating keys the current library holds (optionally of some types)."""
        i = s.items
        query = select(i.c.rating_key).where(i.c.library_id == self._library_id)
        if types is not None:
            query = query.where(i.c.type.in_(list(types)))
        return set(self._conn.execute(query).scalars())

    def _existing(self, keys: Sequence[str]) -> dict[str, tuple[int, str]]:
        """Return id and fingerprint of the stored items (any library of the server) by key."""
        i = s.items
        found: dict[str, tuple[int, str]] = {}
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            found.update(
                (row[0], (row[1], row[2]))
                for row in self._conn.execute(
                    select(i.c.rating_key, i.c.id, i.c.fingerprint).where(
                        i.c.server_id == self.server_id, i.c.rating_key.in_(chunk)
                    )
                )
            )
        return found

    @guarded
    @_one_at_a_time
    def write_batch(self, batch: Sequence[ItemRecord]) -> None:
        """Insert new items and rewrite changed ones (unchanged items are left alone)."""
        if self._library_id is None:
            raise CatalogError("start_library() first")
        new_rows: list[dict[str, Any]] = []
        new_records: list[ItemRecord] = []
        changed_rows: list[dict[str, Any]] = []
        changed_records: list[tuple[int, ItemRecord]] = []
        existing = self._existing([item.rating_key for item in batch])
        for item in batch:
            self.counts.seen += 1
            self.counts.unknown_guids += item.unknown_guids
            if item.updated_at is not None and (
                self._max_updated is None or item.updated_at > self._max_updated
            ):
                self._max_updated = item.updated_at
            fp = fingerprint(item)
            row: dict[str, Any] = {
                "server_id": self.server_id,
                "library_id": self._library_id,
                "rating_key": item.rating_key,
                "type": item.type,
                "parent_rating_key": item.parent_rating_key,
                "grandparent_rating_key": item.grandparent_rating_key,
                "title": item.title,
                "sort_title": item.sort_title,
                "original_title": item.original_title,
                "parent_title": item.parent_title,
                "grandparent_title": item.grandparent_title,
                "year": item.year,
                "season_number": item.season_number,
                "episode_number": item.episode_number,
                "duration": item.duration,
                "added_at": item.added_at,
                "updated_at": item.updated_at,
                "guid": item.guid,
                "fingerprint": fp,
            }
            known = existing.get(item.rating_key)
            if known is None:
                new_rows.append(row)
                new_records.append(item)
                # A key repeated within the batch is written once, as first seen.
                existing[item.rating_key] = (-1, fp)
            elif known[0] == -1:
                continue
            elif known[1] != fp:
                row["b_id"] = known[0]
                changed_rows.append(row)
                changed_records.append((known[0], item))
                existing[item.rating_key] = (-1, fp)
        conn = self._conn
        if changed_rows:
            ids = [item_id for item_id, _ in changed_records]
            conn.execute(delete(s.guids).where(s.guids.c.item_id.in_(ids)))
            conn.execute(delete(s.media_files).where(s.media_files.c.item_id.in_(ids)))
            cols = {k: bind(k) for k in changed_rows[0] if k != "b_id"}
            conn.execute(
                update(s.items).where(s.items.c.id == bind("b_id")).values(**cols), changed_rows
            )
            self.counts.updated += len(changed_rows)
        children: list[tuple[int, ItemRecord]] = list(changed_records)
        if new_rows:
            # Rows inserted one statement at a time keep ids available on every backend;
            # insertmanyvalues makes this a few round trips per batch.
            result = conn.execute(
                insert(s.items).returning(s.items.c.id, sort_by_parameter_order=True), new_rows
            )
            new_ids = list(result.scalars())
            children.extend(zip(new_ids, new_records, strict=True))
            self.counts.added += len(new_rows)
        guid_rows: list[dict[str, Any]] = []
        file_rows: list[dict[str, Any]] = []
        for item_id, item in children:
            guid_rows.extend(
                {
                    "item_id": item_id,
                    "server_id": self.server_id,
                    "provider": g.provider,
                    "value": g.id[:255],
                    "season": g.season,
                    "episode": g.episode,
                }
                for g in item.guids
            )
            for media in item.media:
                mapped = self._mapper.map(media.plex_path)
                file_rows.append(
                    {
                        "item_id": item_id,
                        "server_id": self.server_id,
                        "part_id": media.part_id,
                        "plex_path": media.plex_path,
                        "local_path": mapped.local_path,
                        "mapped": mapped.mapped,
                        "size": media.size,
                        "container": media.container,
                        "video_codec": media.video_codec,
                        "audio_codec": media.audio_codec,
                        "video_resolution": media.video_resolution,
                        "width": media.width,
                        "height": media.height,
                        "bitrate": media.bitrate,
                        "duration": media.duration,
                    }
                )
            if not self._track_index:
                continue
            self._index_added[item_id] = (
                item.title,
                item.type,
                item.year,
                item.grandparent_title or "",
                item.original_title or "",
            )
        if guid_rows:
            conn.execute(insert(s.guids), guid_rows)
        if file_rows:
            conn.execute(insert(s.media_files), file_rows)

    @guarded
    @_one_at_a_time
    def remove_items(self, rating_keys: Iterable[str]) -> int:
        """Delete items of the current library by rating key; return how many were removed."""
        if self._library_id is None:
            raise CatalogError("start_library() first")
        i = s.items
        keys = sorted(set(rating_keys))
        ids: list[int] = []
        for start in range(0, len(keys), _CHUNK):
            ids.extend(
                self._conn.execute(
                    select(i.c.id).where(
                        i.c.library_id == self._library_id,
                        i.c.rating_key.in_(keys[start : start + _CHUNK]),
                    )
                ).scalars()
            )
        for start in range(0, len(ids), _CHUNK):
            self._delete_items(ids[start : start + _CHUNK])
        return len(ids)

    def _delete_items(self, ids: Any) -> None:
        """Delete items (a list of ids, or a select of them) with their GUIDs and files."""
        if not isinstance(ids, list):
            ids = list(self._conn.execute(ids).scalars())
        if not ids:
            return
        self.counts.removed += len(ids)
        self._conn.execute(delete(s.guids).where(s.guids.c.item_id.in_(ids)))
        self._conn.execute(delete(s.media_files).where(s.media_files.c.item_id.in_(ids)))
        self._conn.execute(delete(s.items).where(s.items.c.id.in_(ids)))
        if self._track_index:
            self._index_removed.update(ids)
            for item_id in ids:
                self._index_added.pop(item_id, None)

    @guarded
    @_one_at_a_time
    def finish_library(self, *, marker: int | None = None) -> None:
        """Store where the library's next incremental import starts.

        ``marker`` is the server's clock when this run started reading (items changed later
        have ``updatedAt >=`` it); without it, the highest ``updatedAt`` seen is used. The
        marker never moves backwards.
        """
        if self._library_id is None:
            return
        if marker is None:
            marker = self._max_updated
        current = self._conn.execute(
            select(s.libraries.c.updated_marker).where(s.libraries.c.id == self._library_id)
        ).scalar()
        if current is not None and (marker is None or current > marker):
            marker = current
        self._conn.execute(
            update(s.libraries)
            .where(s.libraries.c.id == self._library_id)
            .values(updated_marker=marker)
        )
        self._library_id = None

    @guarded
    @_one_at_a_time
    def commit(self) -> ImportCounts:
        """Commit every change of the run and record it as successful."""
        if self._closed:
            raise CatalogError("import already finished")
        self._closed = True
        try:
            self._tx.commit()
        except BaseException as err:
            self._close_quietly()
            self._record_quietly("failed", _describe(err))
            raise
        self._conn.close()
        self._record("success", None)
        if self._index_update is not None:
            self._index_update(self._index_added, self._index_removed, self._track_index)
        return self.counts

    @_one_at_a_time
    def fail(self, error: BaseException | str) -> None:
        """Roll every change of the run back and record the failure.

        Never raises a database error (it runs while another error is on its way out): when the
        database is gone, the rollback happens on its side and the run stays marked running
        until the next import marks it interrupted.
        """
        if self._closed:
            return
        self._closed = True
        try:
            self._tx.rollback()
        except DATABASE_ERRORS as err:
            _LOGGER.debug("Rollback of the import failed: %s", short_cause(err))
        finally:
            self._close_quietly()
        self._record_quietly("failed", error if isinstance(error, str) else _describe(error))

    def _close_quietly(self) -> None:
        try:
            self._conn.close()
        except DATABASE_ERRORS as err:
            _LOGGER.debug("Closing the import's connection failed: %s", short_cause(err))

    def _record_quietly(self, status: str, error: str) -> None:
        try:
            self._record(status, error[:2000])
        except DATABASE_ERRORS as err:
            _LOGGER.warning(
                "Could not record the failed import of %s: %s",
                self.machine_identifier,
                short_cause(err),
            )

    def _record(self, status: str, error: str | None) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(s.import_runs)
                .where(s.import_runs.c.id == self.run_id)
                .values(
                    status=status,
                    finished_at=now(),
                    error=error,
                    libraries_listed=self.libraries_listed,
                    **self.counts.as_dict(),
                )
            )


def _describe(err: BaseException) -> str:
    """Return how a failed run's error is recorded (database errors: their short cause)."""
    if isinstance(err, DATABASE_ERRORS):
        err = unavailable(err)
    return f"{type(err).__name__}: {err}"


@contextmanager
def import_transaction(
    catalog: Catalog, machine_identifier: str, mode: ImportMode
) -> Iterator[ImportWriter]:
    """Run a synchronous import: commit on success, roll back and record the error otherwise."""
    writer = catalog.begin_import(machine_identifier, mode)
    try:
        yield writer
    except BaseException as err:
        writer.fail(err)
        raise
    writer.commit()
