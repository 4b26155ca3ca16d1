"""Opening the catalog database: the engine, the schema (create or migrate), shared SQL helpers.

Used by the reads (:mod:`.db`) and the import writer (:mod:`.writer`); synchronous, meant for an
executor.
"""

from datetime import UTC, datetime
import logging
from pathlib import Path
from typing import Any

from sqlalchemy import (
    URL,
    BindParameter,
    Connection,
    Engine,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry

from . import schema as s
from .errors import CatalogError, CatalogSchemaError
from .paths import PathMapping

_LOGGER = logging.getLogger(__name__)


def sqlite_url(path: str | Path) -> str:
    """Return the SQLAlchemy URL of a SQLite file."""
    return f"sqlite:///{Path(path)}"


def open_engine(url: URL, schema: str | None) -> Engine:
    """Return an engine for the URL (SQLite: WAL mode, its folder created).

    ``schema`` puts every table in that PostgreSQL schema (see :func:`ensure_schema`).
    """
    kwargs: dict[str, Any] = {}
    sqlite = url.get_backend_name() == "sqlite"
    if sqlite:
        if schema is not None:
            raise CatalogError("schema= is not supported on SQLite")
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 60}
        database = url.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
    # pool_pre_ping: a pooled connection that died (database restarted) is replaced on checkout.
    engine = create_engine(url, pool_pre_ping=True, **kwargs)
    if sqlite:
        event.listen(engine, "connect", _sqlite_on_connect)
    if schema is not None:
        engine = engine.execution_options(schema_translate_map={None: schema})
    return engine


def _sqlite_on_connect(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def ensure_schema(engine: Engine, schema: str | None) -> int:
    """Create the tables, or migrate them forward; return the schema version."""
    with engine.begin() as conn:
        if schema is not None:
            conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        insp = inspect(conn)
        if not insp.has_table(s.schema_version.name, schema=schema):
            s.metadata.create_all(conn)
            conn.execute(
                insert(s.schema_version).values(version=s.SCHEMA_VERSION, applied_at=now())
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
            conn.execute(insert(s.schema_version).values(version=current, applied_at=now()))
        return current


# -- helpers shared by the reads and the writer ----------------------------------------------------


def now() -> datetime:
    """Return the current time (UTC, aware)."""
    return datetime.now(UTC)


def aware(value: datetime) -> datetime:
    """Return a stored timestamp as an aware UTC datetime (SQLite drops the zone)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def bind(name: str) -> BindParameter[Any]:
    """Return a named bind parameter (for executemany updates)."""
    return bindparam(name)


def server_row_id(conn: Connection, machine_identifier: str) -> int | None:
    """Return a server's row id, or None when it is not in the catalog."""
    return conn.execute(
        select(s.servers.c.id).where(s.servers.c.machine_identifier == machine_identifier)
    ).scalar()


def ensure_server(conn: Connection, machine_identifier: str, name: str | None) -> int:
    """Return a server's row id, adding it (or updating its name) as needed."""
    found = server_row_id(conn, machine_identifier)
    if found is None:
        return int(
            conn.execute(
                insert(s.servers)
                .values(machine_identifier=machine_identifier, name=name)
                .returning(s.servers.c.id)
            ).scalar_one()
        )
    if name is not None:
        conn.execute(update(s.servers).where(s.servers.c.id == found).values(name=name))
    return found


def load_mappings(conn: Connection, machine_identifier: str) -> list[PathMapping]:
    """Return a server's path mappings in order."""
    pm = s.path_mappings
    query = (
        select(pm.c.plex_prefix, pm.c.local_prefix)
        .join(s.servers, s.servers.c.id == pm.c.server_id)
        .where(s.servers.c.machine_identifier == machine_identifier)
        .order_by(pm.c.position)
    )
    return [PathMapping(row[0], row[1]) for row in conn.execute(query)]
