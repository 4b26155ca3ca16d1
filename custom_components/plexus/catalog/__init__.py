"""The Plexus catalog: a local database of every Plex library (no Home Assistant imports).

Synchronous database work (``Catalog`` in ``db``: opening and reads; ``ImportWriter`` in
``writer``: one import run's transaction) is meant for an executor; ``CatalogImporter`` is async
and runs its database calls through the executor function it is given.
"""

from .connection import sqlite_url
from .db import Catalog
from .errors import CatalogError, CatalogSchemaError, CatalogUnavailableError
from .guids import ParsedGuid, format_guid, parse_guid, parse_item_guids
from .importer import CatalogImporter, ImportProgress, ImportResult, RunSync
from .models import (
    CatalogItem,
    GuidRef,
    ImportCounts,
    ImportMode,
    ImportRun,
    LibraryInfo,
    MediaFileInfo,
    SearchHit,
)
from .paths import MappedPath, PathMapper, PathMapping, normalise_path, suggest_mappings
from .schema import SCHEMA_VERSION
from .writer import ImportWriter

__all__ = [
    "SCHEMA_VERSION",
    "Catalog",
    "CatalogError",
    "CatalogImporter",
    "CatalogItem",
    "CatalogSchemaError",
    "CatalogUnavailableError",
    "GuidRef",
    "ImportCounts",
    "ImportMode",
    "ImportProgress",
    "ImportResult",
    "ImportRun",
    "ImportWriter",
    "LibraryInfo",
    "MappedPath",
    "MediaFileInfo",
    "ParsedGuid",
    "PathMapper",
    "PathMapping",
    "RunSync",
    "SearchHit",
    "format_guid",
    "normalise_path",
    "parse_guid",
    "parse_item_guids",
    "sqlite_url",
    "suggest_mappings",
]
