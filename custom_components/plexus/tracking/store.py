"""The watch history, audit log, show mappings and pending watches, in the catalog database.

Synchronous SQLAlchemy Core (run it in an executor), on the catalog's engine (SQLite or
PostgreSQL; a PostgreSQL schema given to the catalog applies here too). The tables carry their own
versioned, forward-only migrations in ``plexus_tracking_schema_version`` so they never collide with
the catalog's (``MIGRATIONS[n]`` turns version ``n`` into ``n + 1``; a newer database is refused).

Duplicates, by rule:

* **payloads**: the same payload digest within :data:`DIGEST_WINDOW` (a minute) is one delivery;
* **plays**: a watch of the same item (server + rating key) by the same user within
  ``max(PLAY_WINDOW, the item's duration)`` of another is the same play — a webhook scrobble at
  90 % and the websocket's session end a few minutes later, or a lost webhook seen only by the
  websocket. Nobody watches a whole item twice in less than its own length, so two records that
  close are one watch; the merged record keeps the earliest time, the highest progress and its
  first source.

  The rule is one database operation: :meth:`TrackingStore.add_watch` first upserts the play's
  row in ``plexus_tracking_plays`` (unique per user + server + rating key) in the same
  transaction, so two writers of the same play — a webhook and the websocket, in two threads or
  two processes — are serialised by the database (SQLite: the write lock; PostgreSQL: the row
  lock), and the second sees the first's watch.

The audit log is pruned to :data:`AUDIT_DAYS` days and :data:`AUDIT_ROWS` rows.
"""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
import logging
from typing import Any, Final, Literal

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Connection,
    DateTime,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    delete,
    func,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from ..catalog import schema as cs

_LOGGER = logging.getLogger(__name__)

SCHEMA_VERSION: Final = 2
DIGEST_WINDOW: Final = timedelta(minutes=1)
PLAY_WINDOW: Final = timedelta(minutes=30)
AUDIT_DAYS: Final = 30
AUDIT_ROWS: Final = 100_000
_PRUNE_EVERY: Final = 500
_IN_CHUNK: Final = 500

type WatchSource = Literal["webhook", "websocket", "manual", "plex_history"]

metadata = MetaData()

schema_version = Table(
    "plexus_tracking_schema_version",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("applied_at", DateTime(timezone=True), nullable=False),
)

watches = Table(
    "plexus_tracking_watches",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("server", String(128), nullable=False),
    Column("rating_key", String(32), nullable=False),
    Column("type", String(16), nullable=False),
    Column("title", Text),
    Column("show_title", Text),
    Column("show_rating_key", String(32)),
    Column("season", Integer),
    Column("episode", Integer),
    Column("year", Integer),
    Column("guids", JSON, nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("user_name", String(255)),
    Column("watched_at", DateTime(timezone=True), nullable=False),
    Column("progress", Float),
    Column("duration_ms", BigInteger),
    Column("source", String(16), nullable=False),
    # user|server|rating key: the play's identity for the duplicate rule.
    Column("play_key", String(255), nullable=False),
    Index("ix_plexus_tracking_watches_user", "user_id", "watched_at"),
    Index("ix_plexus_tracking_watches_play", "play_key", "watched_at"),
    Index("ix_plexus_tracking_watches_show", "user_id", "server", "show_rating_key"),
)

audit = Table(
    "plexus_tracking_audit",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("event", String(100), nullable=False),
    Column("server", String(128)),
    Column("user", String(255)),
    Column("digest", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("action", String(64)),
    Column("error", Text),
    Index("ix_plexus_tracking_audit_digest", "digest", "received_at"),
    Index("ix_plexus_tracking_audit_received", "received_at"),
)

mappings = Table(
    "plexus_tracking_mappings",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("server", String(128), nullable=False),
    Column("show_key", String(255), nullable=False),
    Column("title", Text),
    Column("rating_key", String(32)),
    Column("ignored", Boolean, nullable=False, default=False),
    Column("decided_by", String(8), nullable=False),
    Column("confidence", Float),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("server", "show_key", name="uq_plexus_tracking_mappings_show"),
)

pending = Table(
    "plexus_tracking_pending",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("server", String(128), nullable=False),
    Column("show_key", String(255), nullable=False),
    Column("title", Text),
    Column("candidates", JSON, nullable=False),
    Column("watch", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_plexus_tracking_pending_show", "server", "show_key"),
)

# One row per play identity (user|server|rating key): the lock :meth:`TrackingStore.add_watch`
# takes before it looks for the same play (see the module docstring).
plays = Table(
    "plexus_tracking_plays",
    metadata,
    Column("play_key", String(255), primary_key=True),
    Column("claimed_at", DateTime(timezone=True), nullable=False),
)

type Migration = Callable[[Connection], None]


def _v1_play_claims(conn: Connection) -> None:
    """Version 2: the play claims that make the same-play rule one database operation."""
    plays.create(conn, checkfirst=True)


MIGRATIONS: dict[int, Migration] = {1: _v1_play_claims}


class TrackingSchemaError(Exception):
    """The tracking tables are newer than this code, or could not be migrated."""


def _aware(value: datetime) -> datetime:
    """Return a time read back from the database as UTC (SQLite keeps no zone)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _utc(value: datetime) -> datetime:
    """Return a time to store or compare: UTC, so SQLite's text comparison stays right."""
    if value.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Watch:
    """One watch of one item by one user."""

    server: str
    rating_key: str
    type: str
    user_id: str
    watched_at: datetime
    source: WatchSource
    title: str | None = None
    user_name: str | None = None
    show_title: str | None = None
    show_rating_key: str | None = None
    season: int | None = None
    episode: int | None = None
    year: int | None = None
    guids: tuple[str, ...] = ()
    progress: float | None = None
    duration_ms: int | None = None
    id: int | None = field(default=None, compare=False)

    @property
    def play_key(self) -> str:
        """Return the play identity used by the duplicate rule."""
        return f"{self.user_id}|{self.server}|{self.rating_key}"[:255]

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form (service responses, pending rows)."""
        return {
            "server": self.server,
            "rating_key": self.rating_key,
            "type": self.type,
            "user_id": self.user_id,
            "user_name": self.user_name,
            "watched_at": self.watched_at.isoformat(),
            "source": self.source,
            "title": self.title,
            "show_title": self.show_title,
            "show_rating_key": self.show_rating_key,
            "season": self.season,
            "episode": self.episode,
            "year": self.year,
            "guids": list(self.guids),
            "progress": self.progress,
            "duration_ms": self.duration_ms,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Watch:
        """Parse the JSON form."""
        return cls(
            server=data["server"],
            rating_key=data["rating_key"],
            type=data["type"],
            user_id=data["user_id"],
            user_name=data.get("user_name"),
            watched_at=_aware(datetime.fromisoformat(data["watched_at"])),
            source=data["source"],
            title=data.get("title"),
            show_title=data.get("show_title"),
            show_rating_key=data.get("show_rating_key"),
            season=data.get("season"),
            episode=data.get("episode"),
            year=data.get("year"),
            guids=tuple(data.get("guids") or ()),
            progress=data.get("progress"),
            duration_ms=data.get("duration_ms"),
        )


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One received webhook as the audit log keeps it."""

    received_at: datetime
    event: str
    digest: str
    status: str
    server: str | None = None
    user: str | None = None
    action: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Mapping:
    """A remembered show (or movie) mapping: to a catalog rating key, or ignored."""

    server: str
    show_key: str
    rating_key: str | None
    ignored: bool
    decided_by: str
    title: str | None = None
    confidence: float | None = None


@dataclass(frozen=True, slots=True)
class PendingWatch:
    """A watch waiting for the user to resolve its show's conflict."""

    id: int
    server: str
    show_key: str
    title: str | None
    candidates: tuple[dict[str, Any], ...]
    watch: Watch
    created_at: datetime


@dataclass(frozen=True, slots=True)
class EpisodeRow:
    """One catalog episode of a show, in order."""

    rating_key: str
    title: str
    season: int
    episode: int


def _watch_from_row(row: Any) -> Watch:
    return Watch(
        id=row.id,
        server=row.server,
        rating_key=row.rating_key,
        type=row.type,
        user_id=row.user_id,
        user_name=row.user_name,
        watched_at=_aware(row.watched_at),
        source=row.source,
        title=row.title,
        show_title=row.show_title,
        show_rating_key=row.show_rating_key,
        season=row.season,
        episode=row.episode,
        year=row.year,
        guids=tuple(row.guids or ()),
        progress=row.progress,
        duration_ms=row.duration_ms,
    )


class TrackingStore:
    """The tracking tables on the catalog's engine (blocking: use from an executor)."""

    def __init__(self, engine: Engine) -> None:
        """Use ``engine`` (e.g. ``catalog.engine``); create or migrate the tables."""
        self.engine = engine
        self._audit_writes = 0
        self.ensure_schema()

    def ensure_schema(self) -> int:
        """Create the tables, or migrate them forward; return the schema version."""
        with self.engine.begin() as conn:
            schema = conn.get_execution_options().get("schema_translate_map", {}).get(None)
            if schema is not None:
                conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            if not inspect(conn).has_table(schema_version.name, schema=schema):
                metadata.create_all(conn)
                conn.execute(
                    insert(schema_version).values(version=SCHEMA_VERSION, applied_at=_now())
                )
                return SCHEMA_VERSION
            current = conn.execute(select(func.max(schema_version.c.version))).scalar() or 0
            if current > SCHEMA_VERSION:
                raise TrackingSchemaError(
                    f"tracking schema version {current} is newer than this code ({SCHEMA_VERSION})"
                )
            while current < SCHEMA_VERSION:
                step = MIGRATIONS.get(current)
                if step is None:
                    raise TrackingSchemaError(f"no migration from tracking schema {current}")
                _LOGGER.info("Migrating the tracking tables from schema version %s", current)
                step(conn)
                current += 1
                conn.execute(insert(schema_version).values(version=current, applied_at=_now()))
            return current

    # -- audit -----------------------------------------------------------------------------------

    def seen_digest(self, digest: str, now: datetime) -> bool:
        """Return True when the same payload was received within the last minute."""
        return digest in self.digest_times([digest], now - DIGEST_WINDOW)

    def digest_times(self, digests: Iterable[str], since: datetime) -> dict[str, datetime]:
        """Return when each of ``digests`` was last received since a time (one query)."""
        wanted = sorted(set(digests))
        found: dict[str, datetime] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), _IN_CHUNK):
                query = (
                    select(audit.c.digest, func.max(audit.c.received_at))
                    .where(
                        audit.c.digest.in_(wanted[start : start + _IN_CHUNK]),
                        audit.c.received_at >= _utc(since),
                    )
                    .group_by(audit.c.digest)
                )
                found.update((digest, _aware(at)) for digest, at in conn.execute(query))
        return found

    def add_audit(self, entry: AuditEntry) -> None:
        """Record a received webhook; prune the log every few hundred writes."""
        self.add_audits([entry])

    def add_audits(self, entries: Sequence[AuditEntry]) -> None:
        """Record received webhooks in one transaction; prune the log every few hundred."""
        if not entries:
            return
        with self.engine.begin() as conn:
            conn.execute(
                insert(audit),
                [
                    {
                        "received_at": _utc(entry.received_at),
                        "event": entry.event[:100],
                        "server": entry.server,
                        "user": entry.user,
                        "digest": entry.digest,
                        "status": entry.status,
                        "action": entry.action,
                        "error": entry.error,
                    }
                    for entry in entries
                ],
            )
        before = self._audit_writes
        self._audit_writes += len(entries)
        if before // _PRUNE_EVERY != self._audit_writes // _PRUNE_EVERY:
            self.prune_audit(entries[-1].received_at)

    def prune_audit(
        self, now: datetime, *, days: int = AUDIT_DAYS, max_rows: int = AUDIT_ROWS
    ) -> int:
        """Drop audit rows older than ``days`` and beyond the newest ``max_rows``; return count."""
        with self.engine.begin() as conn:
            removed = conn.execute(
                delete(audit).where(audit.c.received_at < _utc(now) - timedelta(days=days))
            ).rowcount
            cutoff = conn.execute(
                select(audit.c.id).order_by(audit.c.id.desc()).offset(max_rows).limit(1)
            ).scalar()
            if cutoff is not None:
                removed += conn.execute(delete(audit).where(audit.c.id <= cutoff)).rowcount
        return int(removed)

    def audit_log(self, *, limit: int = 100) -> list[AuditEntry]:
        """Return the newest audit entries first."""
        query = select(audit).order_by(audit.c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [
                AuditEntry(
                    received_at=_aware(row.received_at),
                    event=row.event,
                    digest=row.digest,
                    status=row.status,
                    server=row.server,
                    user=row.user,
                    action=row.action,
                    error=row.error,
                )
                for row in conn.execute(query)
            ]

    # -- watches ---------------------------------------------------------------------------------

    def add_watch(self, watch: Watch) -> tuple[Watch, bool]:
        """Record a watch unless it is the same play as one recorded; return (watch, added).

        The same play (see the module docstring) is merged into the existing record. The play's
        claim is taken first, in the same transaction: a concurrent writer of the same play waits
        for this one to commit, then finds its watch.
        """
        watch = replace(watch, watched_at=_utc(watch.watched_at))
        window = max(PLAY_WINDOW, timedelta(milliseconds=watch.duration_ms or 0))
        with self.engine.begin() as conn:
            _claim(conn, watch.play_key, watch.watched_at)
            row = conn.execute(
                select(watches)
                .where(
                    watches.c.play_key == watch.play_key,
                    watches.c.watched_at >= watch.watched_at - window,
                    watches.c.watched_at <= watch.watched_at + window,
                )
                .order_by(watches.c.watched_at)
                .limit(1)
            ).first()
            if row is not None:
                existing = _watch_from_row(row)
                progress = max(
                    (p for p in (existing.progress, watch.progress) if p is not None), default=None
                )
                earliest = min(existing.watched_at, watch.watched_at)
                conn.execute(
                    update(watches)
                    .where(watches.c.id == existing.id)
                    .values(progress=progress, watched_at=earliest)
                )
                return existing, False
            new_id = conn.execute(
                insert(watches)
                .values(**_watch_values(watch), play_key=watch.play_key)
                .returning(watches.c.id)
            ).scalar_one()
        return replace(watch, id=new_id), True

    def remove_watches(self, server: str, rating_key: str, user_id: str) -> int:
        """Forget every watch of an item by a user; return how many."""
        with self.engine.begin() as conn:
            return int(
                conn.execute(
                    delete(watches).where(
                        watches.c.server == server,
                        watches.c.rating_key == rating_key,
                        watches.c.user_id == user_id,
                    )
                ).rowcount
            )

    def history(
        self,
        user_id: str | None = None,
        *,
        since: datetime | None = None,
        item_type: str | None = None,
        limit: int = 100,
    ) -> list[Watch]:
        """Return watches, newest first (one user or all; since a time; of a type)."""
        query = select(watches).order_by(watches.c.watched_at.desc(), watches.c.id.desc())
        if user_id is not None:
            query = query.where(watches.c.user_id == user_id)
        if since is not None:
            query = query.where(watches.c.watched_at >= _utc(since))
        if item_type is not None:
            query = query.where(watches.c.type == item_type)
        with self.engine.connect() as conn:
            return [_watch_from_row(row) for row in conn.execute(query.limit(limit))]

    def shows_in_progress(self, user_id: str) -> list[tuple[str, str, datetime]]:
        """Return (server, show rating key, last watched) of the user's shows, newest first."""
        last = func.max(watches.c.watched_at)
        query = (
            select(watches.c.server, watches.c.show_rating_key, last.label("last"))
            .where(
                watches.c.user_id == user_id,
                watches.c.type == "episode",
                watches.c.show_rating_key.is_not(None),
            )
            .group_by(watches.c.server, watches.c.show_rating_key)
            .order_by(last.desc())
        )
        with self.engine.connect() as conn:
            return [(row[0], row[1], _aware(row[2])) for row in conn.execute(query)]

    def episode_watches(self, user_id: str) -> list[Watch]:
        """Return the user's watches of episodes of known shows, newest first (Up Next)."""
        query = (
            select(watches)
            .where(
                watches.c.user_id == user_id,
                watches.c.type == "episode",
                watches.c.show_rating_key.is_not(None),
            )
            .order_by(watches.c.watched_at.desc(), watches.c.id.desc())
        )
        with self.engine.connect() as conn:
            return [_watch_from_row(row) for row in conn.execute(query)]

    def totals(self, user_id: str, since: datetime) -> tuple[int, int]:
        """Return (watches, milliseconds watched) of a user since a time."""
        query = select(func.count(), func.coalesce(func.sum(watches.c.duration_ms), 0)).where(
            watches.c.user_id == user_id, watches.c.watched_at >= _utc(since)
        )
        with self.engine.connect() as conn:
            count, total = conn.execute(query).one()
        return int(count), int(total)

    # -- catalog reads ----------------------------------------------------------------------------

    def episodes_of(
        self, server: str, show_rating_keys: Iterable[str]
    ) -> dict[str, list[EpisodeRow]]:
        """Return the catalog episodes of several shows, by show (specials left out).

        Each show's episodes are ordered by season and episode.
        """
        keys = sorted(set(show_rating_keys))
        found: dict[str, list[EpisodeRow]] = {key: [] for key in keys}
        i = cs.items
        with self.engine.connect() as conn:
            server_id = conn.execute(
                select(cs.servers.c.id).where(cs.servers.c.machine_identifier == server)
            ).scalar()
            if server_id is None:
                return found
            for start in range(0, len(keys), _IN_CHUNK):
                query = (
                    select(
                        i.c.grandparent_rating_key,
                        i.c.rating_key,
                        i.c.title,
                        i.c.season_number,
                        i.c.episode_number,
                    )
                    .where(
                        i.c.server_id == server_id,
                        i.c.type == "episode",
                        i.c.grandparent_rating_key.in_(keys[start : start + _IN_CHUNK]),
                        i.c.season_number > 0,
                        i.c.episode_number.is_not(None),
                    )
                    .order_by(
                        i.c.grandparent_rating_key, i.c.season_number, i.c.episode_number, i.c.id
                    )
                )
                for r in conn.execute(query):
                    found[r[0]].append(EpisodeRow(r[1], r[2], int(r[3]), int(r[4])))
        return found

    # -- mappings and pending watches --------------------------------------------------------------

    def mapping(self, server: str, show_key: str) -> Mapping | None:
        """Return the remembered mapping of a show, if any."""
        query = select(mappings).where(mappings.c.server == server, mappings.c.show_key == show_key)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return Mapping(
            row.server,
            row.show_key,
            row.rating_key,
            bool(row.ignored),
            row.decided_by,
            row.title,
            row.confidence,
        )

    def set_mapping(self, mapping: Mapping, now: datetime) -> None:
        """Remember (or change) a show's mapping."""
        values = {
            "title": mapping.title,
            "rating_key": mapping.rating_key,
            "ignored": mapping.ignored,
            "decided_by": mapping.decided_by,
            "confidence": mapping.confidence,
            "updated_at": _utc(now),
        }
        with self.engine.begin() as conn:
            changed = conn.execute(
                update(mappings)
                .where(mappings.c.server == mapping.server, mappings.c.show_key == mapping.show_key)
                .values(**values)
            ).rowcount
            if not changed:
                conn.execute(
                    insert(mappings).values(
                        server=mapping.server, show_key=mapping.show_key, **values
                    )
                )

    def add_pending(
        self,
        watch: Watch,
        *,
        show_key: str,
        title: str | None,
        candidates: Sequence[dict[str, Any]],
        now: datetime,
    ) -> None:
        """Keep a watch until its show's conflict (on the watch's server) is resolved."""
        with self.engine.begin() as conn:
            conn.execute(
                insert(pending).values(
                    server=watch.server,
                    show_key=show_key,
                    title=title,
                    candidates=list(candidates),
                    watch=watch.as_dict(),
                    created_at=_utc(now),
                )
            )

    def pending_watches(
        self, server: str | None = None, show_key: str | None = None
    ) -> list[PendingWatch]:
        """Return pending watches (all, or of one show), oldest first."""
        query = select(pending).order_by(pending.c.id)
        if server is not None:
            query = query.where(pending.c.server == server)
        if show_key is not None:
            query = query.where(pending.c.show_key == show_key)
        with self.engine.connect() as conn:
            return [
                PendingWatch(
                    row.id,
                    row.server,
                    row.show_key,
                    row.title,
                    tuple(row.candidates or ()),
                    Watch.from_dict(row.watch),
                    _aware(row.created_at),
                )
                for row in conn.execute(query)
            ]

    def remove_pending(self, ids: Iterable[int]) -> None:
        """Forget pending watches (applied or ignored)."""
        id_list = list(ids)
        if not id_list:
            return
        with self.engine.begin() as conn:
            conn.execute(delete(pending).where(pending.c.id.in_(id_list)))


def _now() -> datetime:
    return datetime.now(UTC)


def _claim(conn: Connection, play_key: str, now: datetime) -> None:
    """Upsert a play's claim row: the database serialises writers of the same play here."""
    values = {"play_key": play_key, "claimed_at": now}
    name = conn.dialect.name
    if name in ("sqlite", "postgresql"):
        upsert = (sqlite.insert if name == "sqlite" else postgresql.insert)(plays).values(values)
        conn.execute(
            upsert.on_conflict_do_update(
                index_elements=[plays.c.play_key], set_={"claimed_at": upsert.excluded.claimed_at}
            )
        )
        return
    # Other databases: an update locks an existing claim; a first claim inserts it (a concurrent
    # first claim then fails on the primary key, and the caller's transaction is rolled back).
    if not conn.execute(
        update(plays).where(plays.c.play_key == play_key).values(claimed_at=now)
    ).rowcount:
        conn.execute(insert(plays).values(values))


def _watch_values(watch: Watch) -> dict[str, Any]:
    values = watch.as_dict()
    values["watched_at"] = watch.watched_at
    return values
