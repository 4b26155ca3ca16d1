"""The catalog's errors, and the one place database errors become them.

Nothing from SQLAlchemy or sqlite3 leaves the catalog: every public method of
:class:`~.db.Catalog` and :class:`~.writer.ImportWriter` is wrapped with :func:`guarded`, which
turns a database error (a PostgreSQL restart, a corrupt or read-only SQLite file, a directory at
the file's path, …) into :class:`CatalogUnavailableError` with a short cause that never holds a
password or a statement's parameters.
"""

from collections.abc import Callable
import functools
import re
import sqlite3
from typing import Final, Literal

from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

type UnavailableKind = Literal["unreachable", "corrupt", "read_only", "path", "error"]

_SECRET_IN_URL: Final = re.compile(r"(://[^:/@\s]*):[^@/\s]*@")
_PASSWORD: Final = re.compile(r"(password\s*=\s*)\S+", re.IGNORECASE)
_MAX_CAUSE: Final = 200


class CatalogError(Exception):
    """Base error of the catalog."""


class CatalogSchemaError(CatalogError):
    """The database's schema is newer than this code, or could not be migrated."""


class CatalogUnavailableError(CatalogError):
    """The catalog database cannot be used right now (or at all, until someone fixes it).

    ``kind`` says what is wrong, for a message the user can act on: ``unreachable`` (the
    database server is down or restarting), ``corrupt`` (not a database, or damaged),
    ``read_only`` (no write permission), ``path`` (the file cannot be opened or created, e.g. a
    directory is in its place), ``error`` (anything else). ``cause`` is one short line.
    """

    def __init__(self, kind: UnavailableKind, cause: str) -> None:
        """Keep the kind and the short cause."""
        super().__init__(f"catalog database unavailable ({kind}): {cause}")
        self.kind: UnavailableKind = kind
        self.cause = cause


def short_cause(err: BaseException) -> str:
    """Return one line naming the error, without passwords or SQL parameters."""
    inner = err.orig if isinstance(err, DBAPIError) and err.orig is not None else err
    text = str(inner).strip().splitlines()[0] if str(inner).strip() else ""
    # SQLAlchemy appends "[SQL: ...]" and "(Background on this error ...)"; keep the message.
    text = text.split("[SQL:", 1)[0].split("(Background on", 1)[0].strip()
    text = _PASSWORD.sub(r"\1***", _SECRET_IN_URL.sub(r"\1:***@", text))
    cause = f"{type(inner).__name__}: {text}" if text else type(inner).__name__
    return cause[:_MAX_CAUSE]


def _kind(err: BaseException) -> UnavailableKind:
    if isinstance(err, (ArgumentError, NoSuchModuleError, ImportError)):
        return "error"  # a malformed URL, or a backend without its driver
    inner = err.orig if isinstance(err, DBAPIError) and err.orig is not None else err
    text = str(inner).lower()
    if "readonly" in text or "read-only" in text or "read only" in text:
        return "read_only"
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return "corrupt"
    if isinstance(inner, sqlite3.Error):
        return "path" if "unable to open" in text else "error"
    if isinstance(inner, OSError) and not isinstance(inner, ConnectionError):
        return "path"
    return "unreachable"


def unavailable(err: BaseException) -> CatalogUnavailableError:
    """Return the catalog's error for a database (or file system) error."""
    return CatalogUnavailableError(_kind(err), short_cause(err))


DATABASE_ERRORS: Final = (SQLAlchemyError, sqlite3.Error, OSError)


def guarded[**P, R](func: Callable[P, R]) -> Callable[P, R]:
    """Wrap a catalog method so database errors leave it as :class:`CatalogUnavailableError`."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except CatalogError:
            raise
        except DATABASE_ERRORS as err:
            raise unavailable(err) from err

    return wrapper
