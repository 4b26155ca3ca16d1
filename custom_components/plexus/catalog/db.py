"""The catalog database: the :class:`Catalog` and its reads (synchronous; run it in an executor).

``Catalog(url)`` opens (creating or migrating) the database (:mod:`.connection`). It answers the
reads — items, GUIDs, libraries, counts, import runs, stats, path mappings, the typo-tolerant
search — and starts imports: :meth:`Catalog.begin_import` returns the run's
:class:`~.writer.ImportWriter`, which holds the whole run in one transaction.
"""

from collections.abc import Iterable, Sequence
import threading
from typing import Any

from sqlalchemy import URL, Engine, delete, func, insert, make_url, select, update

from . import schema as s
from .connection import (
    aware,
    bind,
    ensure_schema,
    ensure_server,
    load_mappings,
    now,
    open_engine,
    server_row_id,
    sqlite_url,
)
from .errors import (
    DATABASE_ERRORS,
    CatalogError,
    CatalogSchemaError,
    CatalogUnavailableError,
    guarded,
    unavailable,
)
from .guids import ParsedGuid
from .models import (
    CatalogItem,
    ImportCounts,
    ImportMode,
    ImportRun,
    LibraryInfo,
    SearchHit,
    TitleHit,
)
from .paths import PathMapper, PathMapping
from .rows import item_query, load_items
from .search import SearchIndex
from .writer import ImportWriter, IndexEntry

__all__ = [
    "Catalog",
    "CatalogError",
    "CatalogSchemaError",
    "CatalogUnavailableError",
    "ImportWriter",
    "sqlite_url",
]

_SEARCH_TYPES = ("movie", "show", "episode", "artist", "album", "track", "season")


class Catalog:
    """One catalog database (any SQLAlchemy URL; SQLite in WAL mode by default).

    Every database error leaves a method as :class:`CatalogUnavailableError` (see
    :mod:`.errors`). Connections are checked before use, so after the database comes back
    (a PostgreSQL restart) the next call works without reopening the catalog.
    """

    def __init__(self, url: str | URL, *, schema: str | None = None, create: bool = True) -> None:
        """Connect, and create or migrate the schema.

        ``schema`` puts every table in that PostgreSQL schema (created when missing) — used to keep
        test runs apart. Blocking: call it in an executor.

        Raises :class:`CatalogUnavailableError` when the database cannot be opened (server down,
        corrupt or read-only file, a directory at the path, a malformed URL) and
        :class:`CatalogSchemaError` when its schema is newer than this code.
        """
        try:
            self.url = make_url(url)
            self.engine: Engine = open_engine(self.url, schema)
        except CatalogError:
            raise
        except (*DATABASE_ERRORS, ImportError) as err:  # ImportError: the URL's driver is missing
            raise unavailable(err) from err
        self.schema = schema
        self._index: SearchIndex | None = None
        self._index_lock = threading.Lock()
        # item id -> (server machine id, title fields) of items searches returned.
        self._titles: dict[int, tuple[str, TitleHit]] = {}
        if create:
            try:
                self.ensure_schema()
            except CatalogError:
                self.engine.dispose()
                raise

    # -- schema ----------------------------------------------------------------------------------

    @guarded
    def ensure_schema(self) -> int:
        """Create the tables, or migrate them forward; return the schema version."""
        return ensure_schema(self.engine, self.schema)

    @property
    @guarded
    def schema_version(self) -> int:
        """Return the database's schema version."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.max(s.schema_version.c.version))).scalar() or 0)

    @guarded
    def close(self) -> None:
        """Release every connection."""
        self.engine.dispose()

    @guarded
    def drop_all(self) -> None:
        """Remove every catalog table (and the PostgreSQL schema, if one was given)."""
        with self.engine.begin() as conn:
            if self.schema is not None:
                conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
            else:
                s.metadata.drop_all(conn)
        self._index = None
        self._titles.clear()

    # -- servers and mappings ----------------------------------------------------------------------

    @guarded
    def servers(self) -> list[str]:
        """Return the machine identifiers of every server in the catalog."""
        with self.engine.connect() as conn:
            return list(conn.execute(select(s.servers.c.machine_identifier)).scalars())

    @guarded
    def remove_server(self, machine_identifier: str) -> None:
        """Delete a server and everything imported from it."""
        with self.engine.begin() as conn:
            server_id = server_row_id(conn, machine_identifier)
            if server_id is None:
                return
            for table in (
                s.guids,
                s.media_files,
                s.items,
                s.libraries,
                s.path_mappings,
                s.import_runs,
            ):
                conn.execute(delete(table).where(table.c.server_id == server_id))
            conn.execute(delete(s.servers).where(s.servers.c.id == server_id))
        self._index = None
        self._titles.clear()

    @guarded
    def path_mappings(self, machine_identifier: str) -> list[PathMapping]:
        """Return the server's path mappings in order."""
        with self.engine.connect() as conn:
            return load_mappings(conn, machine_identifier)

    @guarded
    def set_path_mappings(
        self, machine_identifier: str, mappings: Sequence[PathMapping | tuple[str, str]]
    ) -> int:
        """Replace the server's path mappings and re-map every stored file; return files mapped."""
        mapper = PathMapper(mappings)
        with self.engine.begin() as conn:
            server_id = ensure_server(conn, machine_identifier, None)
            conn.execute(delete(s.path_mappings).where(s.path_mappings.c.server_id == server_id))
            if mapper.mappings:
                conn.execute(
                    insert(s.path_mappings),
                    [
                        {
                            "server_id": server_id,
                            "position": pos,
                            "plex_prefix": m.plex_prefix,
                            "local_prefix": m.local_prefix,
                        }
                        for pos, m in enumerate(mapper.mappings)
                    ],
                )
            rows = conn.execute(
                select(s.media_files.c.id, s.media_files.c.plex_path).where(
                    s.media_files.c.server_id == server_id
                )
            ).all()
            changes = []
            mapped = 0
            for file_id, plex_path in rows:
                result = mapper.map(plex_path)
                mapped += result.mapped
                changes.append(
                    {"b_id": file_id, "local_path": result.local_path, "mapped": result.mapped}
                )
            if changes:
                conn.execute(
                    update(s.media_files)
                    .where(s.media_files.c.id == bind("b_id"))
                    .values(local_path=bind("local_path"), mapped=bind("mapped")),
                    changes,
                )
            return mapped

    # -- imports ----------------------------------------------------------------------------------

    @guarded
    def begin_import(
        self, machine_identifier: str, mode: ImportMode, name: str | None = None
    ) -> ImportWriter:
        """Record a running import and open its transaction."""
        with self.engine.begin() as conn:
            server_id = ensure_server(conn, machine_identifier, name)
            # Imports of one server never overlap, so a run still marked running was cut short
            # (Home Assistant stopped or crashed mid-import); its changes were never committed.
            conn.execute(
                update(s.import_runs)
                .where(s.import_runs.c.server_id == server_id, s.import_runs.c.status == "running")
                .values(status="failed", finished_at=now(), error="interrupted")
            )
            run_id = conn.execute(
                insert(s.import_runs)
                .values(server_id=server_id, mode=mode, status="running", started_at=now())
                .returning(s.import_runs.c.id)
            ).scalar_one()
        return ImportWriter(
            self.engine,
            machine_identifier,
            server_id,
            run_id,
            mode,
            track_index=self.search_index_loaded,
            index_update=self._apply_index_changes,
        )

    @guarded
    def last_import(self, machine_identifier: str, *, successful: bool = False) -> ImportRun | None:
        """Return the server's latest import run (optionally the latest successful one)."""
        runs = self.import_runs(machine_identifier, limit=1, successful=successful)
        return runs[0] if runs else None

    @guarded
    def import_runs(
        self, machine_identifier: str, *, limit: int = 20, successful: bool = False
    ) -> list[ImportRun]:
        """Return the server's import runs, newest first."""
        r = s.import_runs
        query = (
            select(r)
            .join(s.servers, s.servers.c.id == r.c.server_id)
            .where(s.servers.c.machine_identifier == machine_identifier)
            .order_by(r.c.id.desc())
            .limit(limit)
        )
        if successful:
            query = query.where(r.c.status == "success")
        with self.engine.connect() as conn:
            return [
                ImportRun(
                    id=row.id,
                    server_id=machine_identifier,
                    mode=row.mode,
                    status=row.status,
                    started_at=aware(row.started_at),
                    finished_at=aware(row.finished_at) if row.finished_at else None,
                    counts=ImportCounts(
                        row.libraries,
                        row.seen,
                        row.added,
                        row.updated,
                        row.removed,
                        row.unknown_guids,
                    ),
                    error=row.error,
                    libraries_listed=row.libraries_listed,
                )
                for row in conn.execute(query)
            ]

    # -- reads ----------------------------------------------------------------------------------

    @guarded
    def libraries(self, machine_identifier: str) -> list[LibraryInfo]:
        """Return the server's libraries with item counts."""
        lib = s.libraries
        count = (
            select(func.count())
            .select_from(s.items)
            .where(s.items.c.library_id == lib.c.id)
            .scalar_subquery()
        )
        query = (
            select(lib, count.label("item_count"))
            .join(s.servers, s.servers.c.id == lib.c.server_id)
            .where(s.servers.c.machine_identifier == machine_identifier)
            .order_by(lib.c.section_key)
        )
        with self.engine.connect() as conn:
            return [
                LibraryInfo(
                    key=row.section_key,
                    type=row.type,
                    title=row.title,
                    locations=tuple(row.root_locations or ()),
                    item_count=row.item_count,
                    updated_marker=row.updated_marker,
                )
                for row in conn.execute(query)
            ]

    @guarded
    def counts(self, machine_identifier: str | None = None) -> dict[str, int]:
        """Return item counts by type (one server, or all)."""
        query = select(s.items.c.type, func.count()).group_by(s.items.c.type)
        if machine_identifier is not None:
            query = query.join(s.servers, s.servers.c.id == s.items.c.server_id).where(
                s.servers.c.machine_identifier == machine_identifier
            )
        with self.engine.connect() as conn:
            return {row[0]: int(row[1]) for row in conn.execute(query)}

    @guarded
    def get_item(self, machine_identifier: str, rating_key: str) -> CatalogItem | None:
        """Return one item by rating key."""
        query = item_query().where(
            s.servers.c.machine_identifier == machine_identifier,
            s.items.c.rating_key == str(rating_key),
        )
        with self.engine.connect() as conn:
            found = load_items(conn, conn.execute(query).all())
        return found[0] if found else None

    @guarded
    def rating_keys(self, machine_identifier: str, library_key: str | None = None) -> set[str]:
        """Return the rating keys stored for a server (or one of its libraries)."""
        query = (
            select(s.items.c.rating_key)
            .join(s.servers, s.servers.c.id == s.items.c.server_id)
            .where(s.servers.c.machine_identifier == machine_identifier)
        )
        if library_key is not None:
            query = query.join(s.libraries, s.libraries.c.id == s.items.c.library_id).where(
                s.libraries.c.section_key == library_key
            )
        with self.engine.connect() as conn:
            return set(conn.execute(query).scalars())

    @guarded
    def find_by_guid(
        self,
        provider: str,
        guid_id: str,
        *,
        machine_identifier: str | None = None,
        season: int | None = None,
        episode: int | None = None,
    ) -> list[CatalogItem]:
        """Return items carrying a GUID, e.g. ``("imdb", "tt0090728")``, on any or one server."""
        g = s.guids
        ids = select(g.c.item_id).where(g.c.provider == provider, g.c.value == guid_id)
        if season is not None:
            ids = ids.where(g.c.season == season)
        if episode is not None:
            ids = ids.where(g.c.episode == episode)
        query = item_query().where(s.items.c.id.in_(ids))
        if machine_identifier is not None:
            query = query.where(s.servers.c.machine_identifier == machine_identifier)
        with self.engine.connect() as conn:
            return load_items(conn, conn.execute(query).all())

    @guarded
    def find_by_parsed_guid(
        self, guid: ParsedGuid, *, machine_identifier: str | None = None
    ) -> list[CatalogItem]:
        """Return items carrying a parsed GUID (season/episode must match for legacy TV forms)."""
        return self.find_by_guid(
            guid.provider,
            guid.id,
            machine_identifier=machine_identifier,
            season=guid.season,
            episode=guid.episode,
        )

    @guarded
    def search(
        self,
        query: str,
        *,
        machine_identifier: str | None = None,
        types: Iterable[str] | None = None,
        year: int | None = None,
        limit: int = 10,
    ) -> list[SearchHit]:
        """Typo-tolerant title search; builds the in-memory index on first use."""
        index = self.search_index()
        wanted = limit if machine_identifier is None else limit * 4 + 20
        hits = index.search(query, limit=wanted, types=types, year=year)
        if not hits:
            return []
        scores = dict(hits)
        found_query = item_query().where(s.items.c.id.in_(list(scores)))
        if machine_identifier is not None:
            found_query = found_query.where(s.servers.c.machine_identifier == machine_identifier)
        with self.engine.connect() as conn:
            rows = conn.execute(found_query).all()
            ids = [row.id for row in rows]
            items = load_items(conn, rows)
        result = [
            SearchHit(item, scores[item_id]) for item_id, item in zip(ids, items, strict=True)
        ]
        result.sort(key=lambda h: (-h.score, h.item.title))
        return result[:limit]

    @guarded
    def search_titles(
        self,
        query: str,
        *,
        machine_identifier: str,
        types: Iterable[str] | None = None,
        limit: int = 10,
    ) -> list[tuple[TitleHit, float]]:
        """The light form of :meth:`search` for players and voice: titles only, one query.

        No GUIDs or files are read; hits come with their score, best first.
        """
        index = self.search_index()
        hits = index.search(query, limit=limit * 4 + 20, types=types)
        if not hits:
            return []
        scores = dict(hits)
        titles = self._titles
        missing = [item_id for item_id in scores if item_id not in titles]
        if missing:
            # Rows read once are kept (dropped when an import changes or removes the item), so a
            # search usually runs no query at all.
            i = s.items
            found = (
                select(
                    i.c.id,
                    s.servers.c.machine_identifier,
                    i.c.rating_key,
                    i.c.type,
                    i.c.title,
                    i.c.year,
                    i.c.grandparent_title,
                )
                .join(s.servers, s.servers.c.id == i.c.server_id)
                .where(i.c.id.in_(missing))
            )
            with self.engine.connect() as conn:
                rows = conn.execute(found).all()
            with self._index_lock:
                for row in rows:
                    titles[row[0]] = (
                        row[1],
                        TitleHit(row[2], row[3], row[4], row[5], row[6] or ""),
                    )
        result = [
            (entry[1], score)
            for item_id, score in scores.items()
            if (entry := titles.get(item_id)) is not None and entry[0] == machine_identifier
        ]
        result.sort(key=lambda h: (-h[1], h[0].title))
        return result[:limit]

    @guarded
    def search_index(self) -> SearchIndex:
        """Return the search index, building it from the database when needed."""
        with self._index_lock:
            if self._index is None:
                index = SearchIndex()
                i = s.items
                query = select(
                    i.c.id, i.c.title, i.c.type, i.c.year, i.c.grandparent_title, i.c.original_title
                ).where(i.c.type.in_(_SEARCH_TYPES))
                with self.engine.connect() as conn:
                    for row in conn.execute(query):
                        index.add(row[0], row[1], row[2], row[3], row[4] or "", row[5] or "")
                self._index = index
            return self._index

    @property
    def search_index_loaded(self) -> bool:
        """Return True when the in-memory search index has been built."""
        return self._index is not None

    def _apply_index_changes(
        self,
        added: dict[int, IndexEntry],
        removed: set[int],
        tracked: bool,
    ) -> None:
        with self._index_lock:
            if self._index is None:
                return
            if not tracked:
                # Built while the import ran without following it: rebuild on next use.
                self._index = None
                self._titles.clear()
                return
            for item_id in removed:
                self._index.remove(item_id)
                self._titles.pop(item_id, None)
            for item_id in added:
                self._titles.pop(item_id, None)
            for item_id, (title, item_type, year, gp, orig) in added.items():
                if item_type in _SEARCH_TYPES:
                    self._index.add(item_id, title, item_type, year, gp, orig)

    @guarded
    def stats(self, machine_identifier: str) -> dict[str, Any]:
        """Return numbers for diagnostics (no paths beyond the library roots)."""
        last = self.last_import(machine_identifier)
        last_ok = self.last_import(machine_identifier, successful=True)
        with self.engine.connect() as conn:
            server_id = server_row_id(conn, machine_identifier)
            files = unmapped = guid_count = 0
            if server_id is not None:
                files = conn.execute(
                    select(func.count()).where(s.media_files.c.server_id == server_id)
                ).scalar_one()
                unmapped = conn.execute(
                    select(func.count()).where(
                        s.media_files.c.server_id == server_id, s.media_files.c.mapped.is_(False)
                    )
                ).scalar_one()
                guid_count = conn.execute(
                    select(func.count()).where(s.guids.c.server_id == server_id)
                ).scalar_one()
        return {
            "schema_version": s.SCHEMA_VERSION,
            "backend": self.url.get_backend_name(),
            "counts": self.counts(machine_identifier),
            "libraries": [
                {
                    "key": lib.key,
                    "type": lib.type,
                    "title": lib.title,
                    "locations": list(lib.locations),
                    "items": lib.item_count,
                }
                for lib in self.libraries(machine_identifier)
            ],
            "media_files": files,
            "unmapped_files": unmapped,
            "guids": guid_count,
            "last_import": _run_summary(last),
            "last_successful_import": _run_summary(last_ok),
        }


def _run_summary(run: ImportRun | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {
        "mode": run.mode,
        "status": run.status,
        "started_at": run.started_at.isoformat(),
        "duration": run.duration,
        "error": run.error,
        **run.counts.as_dict(),
    }
