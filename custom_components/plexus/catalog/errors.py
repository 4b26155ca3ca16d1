"""The catalog's errors."""


class CatalogError(Exception):
    """Base error of the catalog."""


class CatalogSchemaError(CatalogError):
    """The database's schema is newer than this code, or could not be migrated."""
