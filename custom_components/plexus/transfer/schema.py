"""The transfer engine's tables (SQLAlchemy Core), beside the catalog's in the same database.

They carry their own version table, ``plexus_transfer_schema_version``, so the catalog's and the
transfer engine's migrations never depend on each other. ``MIGRATIONS[n]`` turns version ``n``
into ``n + 1``; a database newer than this code is refused, never touched.

- ``plexus_transfer_files``: what discovery found on the source roots, one row a file, with the
  ``(size, mtime_ns)`` that makes a rescan skip unchanged files and what the name parsed to.
- ``plexus_transfer_queue``: every transfer of every profile (the queue and its history): state,
  bytes done, attempts, the source's size/mtime at copy time and the SHA-256 of the copy.
"""

from collections.abc import Callable

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Connection,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

SCHEMA_VERSION = 1

metadata = MetaData()

schema_version = Table(
    "plexus_transfer_schema_version",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("applied_at", DateTime(timezone=True), nullable=False),
)

files = Table(
    "plexus_transfer_files",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("root", Text, nullable=False),
    Column("media_type", String(8), nullable=False),
    Column("rel_path", Text, nullable=False),
    Column("path", Text, nullable=False, unique=True),
    Column("size", BigInteger, nullable=False),
    Column("mtime_ns", BigInteger, nullable=False),
    Column("kind", String(8), nullable=False),
    Column("title", Text, nullable=False),
    # Lower-cased, punctuation-free title for lookups.
    Column("title_key", Text, nullable=False),
    Column("year", Integer),
    Column("season", Integer),
    Column("episodes", JSON, nullable=False),
    Column("episode_title", Text),
    Column("part", Integer),
    Column("absolute", Boolean, nullable=False, default=False),
    Column("parser", String(8), nullable=False),
    # The Plex item this file is (rating key or catalog id, whatever the linker returns).
    Column("link", String(64)),
    Column("scanned_at", DateTime(timezone=True), nullable=False),
    Index("ix_plexus_transfer_files_root", "root"),
    Index("ix_plexus_transfer_files_title", "title_key", "season"),
)

queue = Table(
    "plexus_transfer_queue",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("profile", String(64), nullable=False),
    Column("state", String(12), nullable=False),
    Column("source", Text, nullable=False),
    Column("destination", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("file_id", Integer),
    Column("size", BigInteger, nullable=False),
    # The source's size and mtime when the copy was planned / finished ("changed at source").
    Column("source_size", BigInteger, nullable=False),
    Column("source_mtime_ns", BigInteger, nullable=False),
    Column("bytes_done", BigInteger, nullable=False, default=0),
    Column("attempts", Integer, nullable=False, default=0),
    Column("verify_failures", Integer, nullable=False, default=0),
    Column("sha256", String(64)),
    Column("error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Index("ix_plexus_transfer_queue_state", "profile", "state", "id"),
    Index("ix_plexus_transfer_queue_source", "profile", "source"),
    Index("ix_plexus_transfer_queue_destination", "profile", "destination"),
)

type Migration = Callable[[Connection], None]

# MIGRATIONS[n] upgrades a database at version n to n + 1. Version 1 is the first release.
MIGRATIONS: dict[int, Migration] = {}
