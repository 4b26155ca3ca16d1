"""The catalog database: synchronous SQLAlchemy 2 code, meant to run in an executor.

``Catalog(url)`` opens (creating or migrating) the database. Writes go through an
:class:`ImportWriter` from :meth:`Catalog.begin_import`, which holds ONE transaction for the
whole import run of a server: either every library's changes are committed together, or — on any
error, cancellation or a crash — none are, and the catalog stays exactly as it was. The run itself
is recorded in ``import_runs`` in separate short transactions (``running`` → ``success`` or
``failed`` with the error).
"""

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
import hashlib
import logging
from pathlib import Path
import threading
from typing import Any

from sqlalchemy import (
    URL,
    BindParameter,
    Connection,
    Engine,
    Row,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    inspect,
    make_url,
    select,
    update,
)
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry

from . import schema as s
from .guids import ParsedGuid
from .models import (
    CatalogItem,
    GuidRef,
    ImportCounts,
    ImportMode,
    ImportRun,
    ItemRecord,
    LibraryInfo,
    LibraryRecord,
    MediaFileInfo,
    SearchHit,
)
from .paths import PathMapper, PathMapping
from .search import SearchIndex

_LOGGER = logging.getLogger(__name__)

_CHUNK = 900  # bound parameters per IN (...) list
_SEARCH_TYPES = ("movie", "show", "episode", "artist", "album", "track", "season")


class CatalogError(Exception):
    """Base error of the catalog."""


class CatalogSchemaError(CatalogError):
    """The database's schema is newer than this code, or could not be migrated."""


def sqlite_url(path: str | Path) -> str:
    """Return the SQLAlchemy URL of a SQLite file."""
    return f"sqlite:///{Path(path)}"


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _fingerprint(item: ItemRecord) -> str:
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


class Catalog:
    """One catalog database (any SQLAlchemy URL; SQLite in WAL mode by default)."""

    def __init__(self, url: str | URL, *, schema: str | None = None, create: bool = True) -> None:
        """Connect, and create or migrate the schema.

        ``schema`` puts every table in that PostgreSQL schema (created when missing) — used to keep
        test runs apart. Blocking: call it in an executor.
        """
        self.url = make_url(url)
        self.schema = schema
        kwargs: dict[str, Any] = {}
        if self.url.get_backend_name() == "sqlite":
            if schema is not None:
                raise CatalogError("schema= is not supported on SQLite")
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 60}
            database = self.url.database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = create_engine(self.url, **kwargs)
        if self.url.get_backend_name() == "sqlite":
            event.listen(self.engine, "connect", _sqlite_on_connect)
        if schema is not None:
            self.engine = self.engine.execution_options(schema_translate_map={None: schema})
        self._index: SearchIndex | None = None
        self._index_lock = threading.Lock()
        if create:
            self.ensure_schema()

    # -- schema ----------------------------------------------------------------------------------

    def ensure_schema(self) -> int:
        """Create the tables, or migrate them forward; return the schema version."""
        with self.engine.begin() as conn:
            if self.schema is not None:
                conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            insp = inspect(conn)
            if not insp.has_table(s.schema_version.name, schema=self.schema):
                s.metadata.create_all(conn)
                conn.execute(
                    insert(s.schema_version).values(version=s.SCHEMA_VERSION, applied_at=_now())
                )
                return s.SCHEMA_VERSION
            current = conn.execute(select(func.max(s.schema_version.c.version))).scalar() or 0
            if current > s.SCHEMA_VERSION:
                raise CatalogSchemaError(
                    f"catalog schema version {current} is newer than this code ({s.SCHEMA_VERSION})"
                )
            while current < s.SCHEMA_VERSION:
                step = s.MIGRATIONS.get(current)
                if step is None:
                    raise CatalogSchemaError(f"no migration from schema version {current}")
                _LOGGER.info("Migrating the catalog from schema version %s", current)
                step(conn)
                current += 1
                conn.execute(insert(s.schema_version).values(version=current, applied_at=_now()))
            return current

    @property
    def schema_version(self) -> int:
        """Return the database's schema version."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.max(s.schema_version.c.version))).scalar() or 0)

    def close(self) -> None:
        """Release every connection."""
        self.engine.dispose()

    def drop_all(self) -> None:
        """Remove every catalog table (and the PostgreSQL schema, if one was given)."""
        with self.engine.begin() as conn:
            if self.schema is not None:
                conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
            else:
                s.metadata.drop_all(conn)
        self._index = None

    # -- servers and mappings ----------------------------------------------------------------------

    def ensure_server(self, machine_identifier: str, name: str | None = None) -> int:
        """Return the server's row id, adding it (or updating its name) as needed."""
        with self.engine.begin() as conn:
            return _ensure_server(conn, machine_identifier, name)

    def servers(self) -> list[str]:
        """Return the machine identifiers of every server in the catalog."""
        with self.engine.connect() as conn:
            return list(conn.execute(select(s.servers.c.machine_identifier)).scalars())

    def remove_server(self, machine_identifier: str) -> None:
        """Delete a server and everything imported from it."""
        with self.engine.begin() as conn:
            server_id = _server_id(conn, machine_identifier)
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

    def path_mappings(self, machine_identifier: str) -> list[PathMapping]:
        """Return the server's path mappings in order."""
        with self.engine.connect() as conn:
            return _load_mappings(conn, machine_identifier)

    def set_path_mappings(
        self, machine_identifier: str, mappings: Sequence[PathMapping | tuple[str, str]]
    ) -> int:
        """Replace the server's path mappings and re-map every stored file; return files mapped."""
        mapper = PathMapper(mappings)
        with self.engine.begin() as conn:
            server_id = _ensure_server(conn, machine_identifier, None)
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
                    .where(s.media_files.c.id == _bind("b_id"))
                    .values(local_path=_bind("local_path"), mapped=_bind("mapped")),
                    changes,
                )
            return mapped

    # -- imports ----------------------------------------------------------------------------------

    def begin_import(
        self, machine_identifier: str, mode: ImportMode, name: str | None = None
    ) -> ImportWriter:
        """Record a running import and open its transaction."""
        with self.engine.begin() as conn:
            server_id = _ensure_server(conn, machine_identifier, name)
            # Imports of one server never overlap, so a run still marked running was cut short
            # (Home Assistant stopped or crashed mid-import); its changes were never committed.
            conn.execute(
                update(s.import_runs)
                .where(s.import_runs.c.server_id == server_id, s.import_runs.c.status == "running")
                .values(status="failed", finished_at=_now(), error="interrupted")
            )
            run_id = conn.execute(
                insert(s.import_runs)
                .values(server_id=server_id, mode=mode, status="running", started_at=_now())
                .returning(s.import_runs.c.id)
            ).scalar_one()
        return ImportWriter(self, machine_identifier, server_id, run_id, mode)

    def last_import(self, machine_identifier: str, *, successful: bool = False) -> ImportRun | None:
        """Return the server's latest import run (optionally the latest successful one)."""
        runs = self.import_runs(machine_identifier, limit=1, successful=successful)
        return runs[0] if runs else None

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
                    started_at=_aware(row.started_at),
                    finished_at=_aware(row.finished_at) if row.finished_at else None,
                    counts=ImportCounts(
                        row.libraries,
                        row.seen,
                        row.added,
                        row.updated,
                        row.removed,
                        row.unknown_guids,
                    ),
                    error=row.error,
                )
                for row in conn.execute(query)
            ]

    # -- reads ----------------------------------------------------------------------------------

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

    def counts(self, machine_identifier: str | None = None) -> dict[str, int]:
        """Return item counts by type (one server, or all)."""
        query = select(s.items.c.type, func.count()).group_by(s.items.c.type)
        if machine_identifier is not None:
            query = query.join(s.servers, s.servers.c.id == s.items.c.server_id).where(
                s.servers.c.machine_identifier == machine_identifier
            )
        with self.engine.connect() as conn:
            return {row[0]: int(row[1]) for row in conn.execute(query)}

    def get_item(self, machine_identifier: str, rating_key: str) -> CatalogItem | None:
        """Return one item by rating key."""
        query = _item_query().where(
            s.servers.c.machine_identifier == machine_identifier,
            s.items.c.rating_key == str(rating_key),
        )
        with self.engine.connect() as conn:
            found = _load_items(conn, conn.execute(query).all())
        return found[0] if found else None

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
        query = _item_query().where(s.items.c.id.in_(ids))
        if machine_identifier is not None:
            query = query.where(s.servers.c.machine_identifier == machine_identifier)
        with self.engine.connect() as conn:
            return _load_items(conn, conn.execute(query).all())

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
        item_query = _item_query().where(s.items.c.id.in_(list(scores)))
        if machine_identifier is not None:
            item_query = item_query.where(s.servers.c.machine_identifier == machine_identifier)
        with self.engine.connect() as conn:
            rows = conn.execute(item_query).all()
            ids = [row.id for row in rows]
            items = _load_items(conn, rows)
        result = [
            SearchHit(item, scores[item_id]) for item_id, item in zip(ids, items, strict=True)
        ]
        result.sort(key=lambda h: (-h.score, h.item.title))
        return result[:limit]

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
        added: dict[int, tuple[str, str, int | None, str, str]],
        removed: set[int],
        *,
        tracked: bool,
    ) -> None:
        with self._index_lock:
            if self._index is None:
                return
            if not tracked:
                # Built while the import ran without following it: rebuild on next use.
                self._index = None
                return
            for item_id in removed:
                self._index.remove(item_id)
            for item_id, (title, item_type, year, gp, orig) in added.items():
                if item_type in _SEARCH_TYPES:
                    self._index.add(item_id, title, item_type, year, gp, orig)

    def stats(self, machine_identifier: str) -> dict[str, Any]:
        """Return numbers for diagnostics (no paths beyond the library roots)."""
        last = self.last_import(machine_identifier)
        last_ok = self.last_import(machine_identifier, successful=True)
        with self.engine.connect() as conn:
            server_id = _server_id(conn, machine_identifier)
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


def _sqlite_on_connect(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _bind(name: str) -> BindParameter[Any]:
    return bindparam(name)


def _server_id(conn: Connection, machine_identifier: str) -> int | None:
    return conn.execute(
        select(s.servers.c.id).where(s.servers.c.machine_identifier == machine_identifier)
    ).scalar()


def _ensure_server(conn: Connection, machine_identifier: str, name: str | None) -> int:
    server_id = _server_id(conn, machine_identifier)
    if server_id is None:
        return int(
            conn.execute(
                insert(s.servers)
                .values(machine_identifier=machine_identifier, name=name)
                .returning(s.servers.c.id)
            ).scalar_one()
        )
    if name is not None:
        conn.execute(update(s.servers).where(s.servers.c.id == server_id).values(name=name))
    return server_id


def _load_mappings(conn: Connection, machine_identifier: str) -> list[PathMapping]:
    pm = s.path_mappings
    query = (
        select(pm.c.plex_prefix, pm.c.local_prefix)
        .join(s.servers, s.servers.c.id == pm.c.server_id)
        .where(s.servers.c.machine_identifier == machine_identifier)
        .order_by(pm.c.position)
    )
    return [PathMapping(row[0], row[1]) for row in conn.execute(query)]


def _item_query() -> Any:
    i = s.items
    return (
        select(
            i,
            s.servers.c.machine_identifier,
            s.libraries.c.section_key,
        )
        .join(s.servers, s.servers.c.id == i.c.server_id)
        .join(s.libraries, s.libraries.c.id == i.c.library_id)
    )


def _load_items(conn: Connection, rows: Sequence[Row[Any]]) -> list[CatalogItem]:
    if not rows:
        return []
    ids = [row.id for row in rows]
    guid_map: dict[int, list[GuidRef]] = {}
    for g in conn.execute(
        select(
            s.guids.c.item_id,
            s.guids.c.provider,
            s.guids.c.value,
            s.guids.c.season,
            s.guids.c.episode,
        )
        .where(s.guids.c.item_id.in_(ids))
        .order_by(s.guids.c.id)
    ):
        guid_map.setdefault(g[0], []).append(GuidRef(g[1], g[2], g[3], g[4]))
    file_map: dict[int, list[MediaFileInfo]] = {}
    m = s.media_files
    for f in conn.execute(
        select(
            m.c.item_id,
            m.c.plex_path,
            m.c.local_path,
            m.c.mapped,
            m.c.size,
            m.c.container,
            m.c.video_codec,
            m.c.video_resolution,
        )
        .where(m.c.item_id.in_(ids))
        .order_by(m.c.id)
    ):
        file_map.setdefault(f[0], []).append(
            MediaFileInfo(f[1], f[2], bool(f[3]), f[4], f[5], f[6], f[7])
        )
    return [
        CatalogItem(
            server_id=row.machine_identifier,
            library_key=row.section_key,
            rating_key=row.rating_key,
            type=row.type,
            title=row.title,
            sort_title=row.sort_title,
            original_title=row.original_title,
            year=row.year,
            parent_rating_key=row.parent_rating_key,
            grandparent_rating_key=row.grandparent_rating_key,
            grandparent_title=row.grandparent_title,
            season_number=row.season_number,
            episode_number=row.episode_number,
            duration=row.duration,
            added_at=row.added_at,
            updated_at=row.updated_at,
            guids=tuple(guid_map.get(row.id, ())),
            files=tuple(file_map.get(row.id, ())),
        )
        for row in rows
    ]


class ImportWriter:
    """One import run's writes, all in one transaction (see the module docstring).

    Use from one thread at a time (e.g. successive executor jobs): ``library()``, then
    ``write_batch()`` repeatedly, ``finish_library()``, and at the end ``commit()`` or ``fail()``.
    """

    def __init__(
        self,
        catalog: Catalog,
        machine_identifier: str,
        server_id: int,
        run_id: int,
        mode: ImportMode,
    ) -> None:
        """Open the run's connection and transaction."""
        self.catalog = catalog
        self.machine_identifier = machine_identifier
        self.server_id = server_id
        self.run_id = run_id
        self.mode = mode
        self.counts = ImportCounts()
        self._conn = catalog.engine.connect()
        self._tx = self._conn.begin()
        self._mapper = PathMapper(_load_mappings(self._conn, machine_identifier))
        self._library_id: int | None = None
        self._max_updated: int | None = None
        # Keep the search index current only when it is loaded; otherwise it is built later.
        self._track_index = catalog.search_index_loaded
        self._index_added: dict[int, tuple[str, str, int | None, str, str]] = {}
        self._index_removed: set[int] = set()
        self._closed = False

    # libraries

    def sync_libraries(
        self, sections: Sequence[LibraryRecord], *, remove_missing: bool = True
    ) -> None:
        """Store the server's sections; with ``remove_missing``, drop libraries no longer listed."""
        lib = s.libraries
        existing = {
            row.section_key: row.id
            for row in self._conn.execute(
                select(lib.c.section_key, lib.c.id).where(lib.c.server_id == self.server_id)
            )
        }
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

    def library_marker(self, section_key: str) -> int | None:
        """Return the highest ``updatedAt`` the last successful import saw in a library."""
        return self._conn.execute(
            select(s.libraries.c.updated_marker).where(
                s.libraries.c.server_id == self.server_id, s.libraries.c.section_key == section_key
            )
        ).scalar()

    def start_library(self, section_key: str) -> int | None:
        """Make a library current for ``write_batch`` and load what it holds.

        Returns the library's incremental marker (see ``library_marker``).
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
            fp = _fingerprint(item)
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
                # A key repeated within the batch is written once, as last seen.
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
            cols = {k: _bind(k) for k in changed_rows[0] if k != "b_id"}
            conn.execute(
                update(s.items).where(s.items.c.id == _bind("b_id")).values(**cols), changed_rows
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
        self.counts.removed += len(ids)
        return len(ids)

    def _delete_items(self, ids: Any) -> None:
        if not isinstance(ids, list):
            ids = list(self._conn.execute(ids).scalars())
        if not ids:
            return
        self._conn.execute(delete(s.guids).where(s.guids.c.item_id.in_(ids)))
        self._conn.execute(delete(s.media_files).where(s.media_files.c.item_id.in_(ids)))
        self._conn.execute(delete(s.items).where(s.items.c.id.in_(ids)))
        if self._track_index:
            self._index_removed.update(ids)
            for item_id in ids:
                self._index_added.pop(item_id, None)

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

    def commit(self) -> ImportCounts:
        """Commit every change of the run and record it as successful."""
        if self._closed:
            raise CatalogError("import already finished")
        self._closed = True
        try:
            self._tx.commit()
        except BaseException as err:
            self._conn.close()
            self._record("failed", f"{type(err).__name__}: {err}"[:2000])
            raise
        self._conn.close()
        self._record("success", None)
        self.catalog._apply_index_changes(  # noqa: SLF001
            self._index_added, self._index_removed, tracked=self._track_index
        )
        return self.counts

    def fail(self, error: BaseException | str) -> None:
        """Roll every change of the run back and record the failure."""
        if self._closed:
            return
        self._closed = True
        try:
            self._tx.rollback()
        finally:
            self._conn.close()
        message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        self._record("failed", message[:2000])

    def _record(self, status: str, error: str | None) -> None:
        with self.catalog.engine.begin() as conn:
            conn.execute(
                update(s.import_runs)
                .where(s.import_runs.c.id == self.run_id)
                .values(status=status, finished_at=_now(), error=error, **self.counts.as_dict())
            )


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
