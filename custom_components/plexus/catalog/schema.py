"""The catalog's tables (SQLAlchemy Core) and its versioned, forward-only migrations.

Every table is scoped by server: ``servers`` holds each server's ``machineIdentifier`` and all
other rows point at it, so several servers never mix. Plex timestamps (``addedAt``,
``updatedAt``) are stored as the integer epoch seconds Plex sends; the catalog's own timestamps
(import runs) are timezone-aware UTC datetimes.

Versioning: ``schema_version`` has one row per applied version. A fresh database is created at
:data:`SCHEMA_VERSION`; an older one is brought forward by the steps in :data:`MIGRATIONS`
(``MIGRATIONS[n]`` turns version ``n`` into ``n + 1``), each applied in the same transaction as
the row recording it. A database newer than this code is refused, never touched.
"""

from collections.abc import Callable

from sqlalchemy import (
    DDL,
    JSON,
    BigInteger,
    Boolean,
    Column,
    Connection,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

SCHEMA_VERSION = 3

metadata = MetaData()

schema_version = Table(
    "plexus_schema_version",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("applied_at", DateTime(timezone=True), nullable=False),
)

servers = Table(
    "plexus_servers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("machine_identifier", String(128), nullable=False, unique=True),
    Column("name", String(255)),
)

libraries = Table(
    "plexus_libraries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "server_id", Integer, ForeignKey("plexus_servers.id", ondelete="CASCADE"), nullable=False
    ),
    Column("section_key", String(32), nullable=False),
    Column("type", String(16), nullable=False),
    Column("title", String(255), nullable=False),
    Column("agent", String(128)),
    Column("uuid", String(64)),
    Column("root_locations", JSON, nullable=False),
    Column("plex_updated_at", BigInteger),
    # Highest item updatedAt seen by the last successful import: the next incremental starts here.
    Column("updated_marker", BigInteger),
    UniqueConstraint("server_id", "section_key", name="uq_plexus_libraries_section"),
)

items = Table(
    "plexus_items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "server_id", Integer, ForeignKey("plexus_servers.id", ondelete="CASCADE"), nullable=False
    ),
    Column(
        "library_id", Integer, ForeignKey("plexus_libraries.id", ondelete="CASCADE"), nullable=False
    ),
    Column("rating_key", String(32), nullable=False),
    Column("type", String(16), nullable=False),
    Column("parent_rating_key", String(32)),
    Column("grandparent_rating_key", String(32)),
    Column("title", Text, nullable=False),
    Column("sort_title", Text),
    Column("original_title", Text),
    Column("parent_title", Text),
    Column("grandparent_title", Text),
    Column("year", Integer),
    Column("season_number", Integer),
    Column("episode_number", Integer),
    Column("duration", BigInteger),
    Column("added_at", BigInteger),
    Column("updated_at", BigInteger),
    Column("guid", Text),
    # Hash of everything stored for the item; an unchanged item is not rewritten.
    Column("fingerprint", String(32), nullable=False),
    UniqueConstraint("server_id", "rating_key", name="uq_plexus_items_rating_key"),
    Index("ix_plexus_items_library", "library_id", "type"),
    Index("ix_plexus_items_server_type", "server_id", "type"),
    # A show's episodes (Up Next reads them per show; version 3).
    Index("ix_plexus_items_show", "server_id", "grandparent_rating_key"),
)

guids = Table(
    "plexus_guids",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("item_id", Integer, ForeignKey("plexus_items.id", ondelete="CASCADE"), nullable=False),
    Column(
        "server_id", Integer, ForeignKey("plexus_servers.id", ondelete="CASCADE"), nullable=False
    ),
    Column("provider", String(32), nullable=False),
    Column("value", String(255), nullable=False),
    Column("season", Integer),
    Column("episode", Integer),
    Index("ix_plexus_guids_value", "provider", "value"),
    Index("ix_plexus_guids_item", "item_id"),
)

media_files = Table(
    "plexus_media_files",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("item_id", Integer, ForeignKey("plexus_items.id", ondelete="CASCADE"), nullable=False),
    Column(
        "server_id", Integer, ForeignKey("plexus_servers.id", ondelete="CASCADE"), nullable=False
    ),
    Column("part_id", String(32)),
    Column("plex_path", Text, nullable=False),
    Column("local_path", Text, nullable=False),
    Column("mapped", Boolean, nullable=False),
    Column("size", BigInteger),
    Column("container", String(32)),
    Column("video_codec", String(32)),
    Column("audio_codec", String(32)),
    Column("video_resolution", String(16)),
    Column("width", Integer),
    Column("height", Integer),
    Column("bitrate", Integer),
    Column("duration", BigInteger),
    Index("ix_plexus_media_files_item", "item_id"),
)

path_mappings = Table(
    "plexus_path_mappings",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "server_id", Integer, ForeignKey("plexus_servers.id", ondelete="CASCADE"), nullable=False
    ),
    Column("position", Integer, nullable=False),
    Column("plex_prefix", Text, nullable=False),
    Column("local_prefix", Text, nullable=False),
    UniqueConstraint("server_id", "position", name="uq_plexus_path_mappings_position"),
)

import_runs = Table(
    "plexus_import_runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "server_id", Integer, ForeignKey("plexus_servers.id", ondelete="CASCADE"), nullable=False
    ),
    Column("mode", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("libraries", Integer, nullable=False, default=0),
    Column("seen", Integer, nullable=False, default=0),
    Column("added", Integer, nullable=False, default=0),
    Column("updated", Integer, nullable=False, default=0),
    Column("removed", Integer, nullable=False, default=0),
    Column("unknown_guids", Integer, nullable=False, default=0),
    Column("error", Text),
    # How many libraries the server listed (version 2). Two successful runs in a row that saw
    # none are needed before the catalog drops a server's libraries.
    Column("libraries_listed", Integer),
    Index("ix_plexus_import_runs_server", "server_id", "started_at"),
)

type Migration = Callable[[Connection], None]


def _v1_libraries_listed(conn: Connection) -> None:
    """Version 2: ``import_runs.libraries_listed`` (NULL for runs recorded before)."""
    # DDL against the table honours the PostgreSQL schema map the engine carries.
    add = DDL("ALTER TABLE %(fullname)s ADD COLUMN libraries_listed INTEGER")  # type: ignore[no-untyped-call]
    conn.execute(add.against(import_runs))


def _v2_show_index(conn: Connection) -> None:
    """Version 3: an index on a show's episodes (``server_id``, ``grandparent_rating_key``)."""
    index = next(ix for ix in items.indexes if ix.name == "ix_plexus_items_show")
    index.create(conn, checkfirst=True)


# MIGRATIONS[n] upgrades a database at version n to n + 1. Version 1 is the first release.
MIGRATIONS: dict[int, Migration] = {1: _v1_libraries_listed, 2: _v2_show_index}
