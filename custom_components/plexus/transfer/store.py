"""The transfer engine's database: synchronous SQLAlchemy Core code, meant to run in an executor.

``TransferStore(url)`` opens the catalog's database (any SQLAlchemy URL, or an existing
``Engine`` to share the catalog's pool) and creates or migrates the transfer tables. Every method
is one short transaction; the queue's state changes are single ``UPDATE … WHERE state = …``
statements, so two workers never claim the same transfer.
"""

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
import logging
from pathlib import Path
import re
from typing import Any

from sqlalchemy import (
    URL,
    Engine,
    Row,
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
from .errors import TransferError, TransferNotFoundError
from .models import ACTIVE_STATES, MediaFile, TransferItem, TransferRequest, TransferState
from .naming import MediaType, ParsedName

_LOGGER = logging.getLogger(__name__)
_CHUNK = 900


class TransferSchemaError(TransferError):
    """The transfer tables are newer than this code, or could not be migrated."""


def title_key(title: str) -> str:
    """Return the form titles are compared in (case-folded, punctuation as spaces)."""
    return re.sub(r"[\W_]+", " ", title.casefold()).strip()


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _sqlite_on_connect(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


class TransferStore:
    """The transfer tables of one database."""

    def __init__(self, url: str | URL | Engine, *, schema: str | None = None) -> None:
        """Connect (or reuse ``url`` when it is an Engine) and create/migrate the tables.

        ``schema`` puts the tables in that PostgreSQL schema (created when missing), as the
        catalog does to keep test runs apart. Blocking: call it in an executor.
        """
        self.schema = schema
        self._owns_engine = not isinstance(url, Engine)
        if isinstance(url, Engine):
            engine = url
        else:
            parsed = make_url(url)
            kwargs: dict[str, Any] = {}
            if parsed.get_backend_name() == "sqlite":
                kwargs["connect_args"] = {"check_same_thread": False, "timeout": 60}
                if parsed.database and parsed.database != ":memory:":
                    Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(parsed, **kwargs)
            if parsed.get_backend_name() == "sqlite":
                if schema is not None:
                    raise TransferError("schema= is not supported on SQLite")
                event.listen(engine, "connect", _sqlite_on_connect)
        if schema is not None:
            engine = engine.execution_options(schema_translate_map={None: schema})
        self.engine: Engine = engine
        try:
            self.ensure_schema()
        except BaseException:
            self.close()  # (a store that cannot open leaves no connection behind)
            raise

    # -- schema ----------------------------------------------------------------------------------

    def ensure_schema(self) -> int:
        """Create the tables, or migrate them forward; return the schema version."""
        with self.engine.begin() as conn:
            if self.schema is not None:
                conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            if not inspect(conn).has_table(s.schema_version.name, schema=self.schema):
                s.metadata.create_all(conn)
                conn.execute(
                    insert(s.schema_version).values(version=s.SCHEMA_VERSION, applied_at=_now())
                )
                return s.SCHEMA_VERSION
            current = conn.execute(select(func.max(s.schema_version.c.version))).scalar() or 0
            if current > s.SCHEMA_VERSION:
                raise TransferSchemaError(
                    f"transfer schema version {current} is newer than this code "
                    f"({s.SCHEMA_VERSION})"
                )
            while current < s.SCHEMA_VERSION:
                step = s.MIGRATIONS.get(current)
                if step is None:
                    raise TransferSchemaError(
                        f"no migration from transfer schema version {current}"
                    )
                _LOGGER.info("Migrating the transfer tables from schema version %s", current)
                step(conn)
                current += 1
                conn.execute(insert(s.schema_version).values(version=current, applied_at=_now()))
            return current

    @property
    def schema_version(self) -> int:
        """Return the transfer tables' schema version."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.max(s.schema_version.c.version))).scalar() or 0)

    def close(self) -> None:
        """Release the connections (only when this store created the engine)."""
        if self._owns_engine:
            self.engine.dispose()

    def drop_all(self) -> None:
        """Remove the transfer tables (and the PostgreSQL schema, if one was given)."""
        with self.engine.begin() as conn:
            if self.schema is not None:
                conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
            else:
                s.metadata.drop_all(conn)

    # -- discovered files ------------------------------------------------------------------------

    def file_index(self, root: str) -> dict[str, tuple[int, int, int]]:
        """Return ``path -> (id, size, mtime_ns)`` of every stored file under ``root``."""
        t = s.files
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.c.path, t.c.id, t.c.size, t.c.mtime_ns).where(t.c.root == root)
            )
            return {r.path: (r.id, r.size, r.mtime_ns) for r in rows}

    def write_scan(
        self,
        root: str,
        media_type: MediaType,
        new: Sequence[tuple[str, str, int, int, ParsedName, str | None]],
        changed: Sequence[tuple[int, int, int, ParsedName, str | None]],
        removed: Sequence[int],
    ) -> None:
        """Store one root's scan in one transaction.

        ``new``: ``(path, rel_path, size, mtime_ns, parsed, link)``; ``changed``:
        ``(id, size, mtime_ns, parsed, link)``; ``removed``: ids.
        """
        now = _now()
        t = s.files
        with self.engine.begin() as conn:
            if new:
                conn.execute(
                    insert(t),
                    [
                        {
                            "root": root,
                            "media_type": media_type,
                            "rel_path": rel,
                            "path": path,
                            "size": size,
                            "mtime_ns": mtime,
                            "link": link,
                            "scanned_at": now,
                            **_parsed_columns(parsed),
                        }
                        for path, rel, size, mtime, parsed, link in new
                    ],
                )
            for file_id, size, mtime, parsed, link in changed:
                conn.execute(
                    update(t)
                    .where(t.c.id == file_id)
                    .values(
                        size=size,
                        mtime_ns=mtime,
                        link=link,
                        scanned_at=now,
                        **_parsed_columns(parsed),
                    )
                )
            for start in range(0, len(removed), _CHUNK):
                conn.execute(delete(t).where(t.c.id.in_(removed[start : start + _CHUNK])))

    def files(
        self,
        *,
        kind: str | None = None,
        title: str | None = None,
        year: int | None = None,
        season: int | None = None,
        unlinked: bool = False,
    ) -> list[MediaFile]:
        """Return stored files matching every filter (titles compared by :func:`title_key`)."""
        t = s.files
        query = select(t).order_by(t.c.title_key, t.c.season, t.c.path)
        if kind is not None:
            query = query.where(t.c.kind == kind)
        if title is not None:
            query = query.where(t.c.title_key == title_key(title))
        if year is not None:
            query = query.where(t.c.year == year)
        if season is not None:
            query = query.where(t.c.season == season)
        if unlinked:
            query = query.where(t.c.link.is_(None))
        with self.engine.connect() as conn:
            return [_media_file(r) for r in conn.execute(query)]

    def set_links(self, links: Mapping[int, str | None]) -> None:
        """Set the Plex link of files by id."""
        t = s.files
        with self.engine.begin() as conn:
            for file_id, link in links.items():
                conn.execute(update(t).where(t.c.id == file_id).values(link=link))

    # -- the queue -------------------------------------------------------------------------------

    def add_transfer(
        self, profile: str, request: TransferRequest, size: int, mtime_ns: int
    ) -> tuple[TransferItem, bool]:
        """Queue a transfer; an active one to the same destination is returned instead.

        Returns ``(item, created)``.
        """
        t = s.queue
        now = _now()
        with self.engine.begin() as conn:
            existing = conn.execute(
                select(t).where(
                    t.c.profile == profile,
                    t.c.destination == request.destination,
                    t.c.state.in_([st.value for st in ACTIVE_STATES]),
                )
            ).first()
            if existing is not None:
                return _item(existing), False
            new_id = conn.execute(
                insert(t).values(
                    profile=profile,
                    state=TransferState.QUEUED.value,
                    source=request.source,
                    destination=request.destination,
                    title=request.title,
                    file_id=request.file_id,
                    size=size,
                    source_size=size,
                    source_mtime_ns=mtime_ns,
                    bytes_done=0,
                    attempts=0,
                    verify_failures=0,
                    created_at=now,
                    updated_at=now,
                )
            ).inserted_primary_key
            assert new_id is not None
            return _item(conn.execute(select(t).where(t.c.id == new_id[0])).one()), True

    def get(self, item_id: int, profile: str | None = None) -> TransferItem:
        """Return one transfer; :class:`TransferNotFoundError` when there is none."""
        t = s.queue
        query = select(t).where(t.c.id == item_id)
        if profile is not None:
            query = query.where(t.c.profile == profile)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            raise TransferNotFoundError(f"no transfer {item_id}")
        return _item(row)

    def items(
        self, profile: str, states: Iterable[TransferState] | None = None
    ) -> list[TransferItem]:
        """Return a profile's transfers (oldest first), optionally only in some states."""
        t = s.queue
        query = select(t).where(t.c.profile == profile).order_by(t.c.id)
        if states is not None:
            query = query.where(t.c.state.in_([st.value for st in states]))
        with self.engine.connect() as conn:
            return [_item(r) for r in conn.execute(query)]

    def claim_next(self, profile: str) -> TransferItem | None:
        """Move the oldest queued transfer to running and return it (None when none is queued)."""
        t = s.queue
        with self.engine.begin() as conn:
            while True:
                row = conn.execute(
                    select(t.c.id)
                    .where(t.c.profile == profile, t.c.state == TransferState.QUEUED.value)
                    .order_by(t.c.id)
                    .limit(1)
                ).first()
                if row is None:
                    return None
                now = _now()
                claimed = conn.execute(
                    update(t)
                    .where(t.c.id == row.id, t.c.state == TransferState.QUEUED.value)
                    .values(state=TransferState.RUNNING.value, updated_at=now, started_at=now)
                ).rowcount
                if claimed:
                    return _item(conn.execute(select(t).where(t.c.id == row.id)).one())

    def update_transfer(
        self, item_id: int, *, only_from: Iterable[TransferState] | None = None, **values: Any
    ) -> bool:
        """Set columns of a transfer (``state`` may be a TransferState); False if nothing matched.

        ``only_from`` makes the update conditional on the current state.
        """
        t = s.queue
        if isinstance(values.get("state"), TransferState):
            values["state"] = values["state"].value
        query = update(t).where(t.c.id == item_id)
        if only_from is not None:
            query = query.where(t.c.state.in_([st.value for st in only_from]))
        with self.engine.begin() as conn:
            return bool(conn.execute(query.values(updated_at=_now(), **values)).rowcount)

    def move_states(
        self,
        profile: str,
        from_states: Iterable[TransferState],
        to_state: TransferState,
        **values: Any,
    ) -> list[int]:
        """Move every transfer of a profile in ``from_states`` to ``to_state``; return their ids.

        ``values``: other columns to set on the moved rows (e.g. ``error=None``).
        """
        t = s.queue
        states = [st.value for st in from_states]
        with self.engine.begin() as conn:
            ids = [
                r.id
                for r in conn.execute(
                    select(t.c.id).where(t.c.profile == profile, t.c.state.in_(states))
                )
            ]
            if ids:
                conn.execute(
                    update(t)
                    .where(t.c.id.in_(ids), t.c.state.in_(states))
                    .values(state=to_state.value, updated_at=_now(), **values)
                )
            return ids

    def latest_by_source(self, profile: str, sources: Sequence[str]) -> dict[str, TransferItem]:
        """Return the newest transfer of each source path (any state) in a profile."""
        t = s.queue
        found: dict[str, TransferItem] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(sources), _CHUNK):
                rows = conn.execute(
                    select(t)
                    .where(t.c.profile == profile, t.c.source.in_(sources[start : start + _CHUNK]))
                    .order_by(t.c.id)
                )
                for row in rows:
                    found[row.source] = _item(row)
        return found

    def done_by_destination(self, profile: str, destination: str) -> TransferItem | None:
        """Return the finished transfer that wrote ``destination`` in this profile, if any."""
        t = s.queue
        with self.engine.connect() as conn:
            row = conn.execute(
                select(t)
                .where(
                    t.c.profile == profile,
                    t.c.destination == destination,
                    t.c.state == TransferState.DONE.value,
                )
                .order_by(t.c.id.desc())
                .limit(1)
            ).first()
        return None if row is None else _item(row)

    def delete_profile(self, profile: str) -> int:
        """Forget every transfer of a profile (when its subentry is removed)."""
        with self.engine.begin() as conn:
            return conn.execute(delete(s.queue).where(s.queue.c.profile == profile)).rowcount


def _parsed_columns(parsed: ParsedName) -> dict[str, Any]:
    return {
        "kind": parsed.kind,
        "title": parsed.title,
        "title_key": title_key(parsed.title),
        "year": parsed.year,
        "season": parsed.season,
        "episodes": list(parsed.episodes),
        "episode_title": parsed.episode_title,
        "part": parsed.part,
        "absolute": parsed.absolute,
        "parser": parsed.parser,
    }


def _media_file(row: Row[Any]) -> MediaFile:
    parsed = ParsedName(
        row.kind,
        row.title,
        year=row.year,
        season=row.season,
        episodes=tuple(row.episodes or ()),
        episode_title=row.episode_title,
        part=row.part,
        absolute=bool(row.absolute),
        parser=row.parser,
    )
    return MediaFile(
        id=row.id,
        root=row.root,
        media_type=row.media_type,
        rel_path=row.rel_path,
        path=row.path,
        size=row.size,
        mtime_ns=row.mtime_ns,
        parsed=parsed,
        link=row.link,
    )


def _item(row: Row[Any]) -> TransferItem:
    created = _aware(row.created_at)
    updated = _aware(row.updated_at)
    assert created is not None
    assert updated is not None
    return TransferItem(
        id=row.id,
        profile=row.profile,
        state=TransferState(row.state),
        source=row.source,
        destination=row.destination,
        title=row.title,
        size=row.size,
        source_size=row.source_size,
        source_mtime_ns=row.source_mtime_ns,
        bytes_done=row.bytes_done,
        attempts=row.attempts,
        verify_failures=row.verify_failures,
        sha256=row.sha256,
        error=row.error,
        file_id=row.file_id,
        created_at=created,
        updated_at=updated,
        started_at=_aware(row.started_at),
        finished_at=_aware(row.finished_at),
    )
