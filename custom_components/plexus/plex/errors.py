"""Errors raised by the Plex access layer."""


class PlexError(Exception):
    """Base class of every error this package raises."""


class PlexConnectionError(PlexError):
    """The server could not be reached, timed out or answered with a server error."""


class PlexSSLError(PlexConnectionError):
    """The server's TLS certificate was rejected, or the TLS handshake failed."""


class PlexNotHTTPSError(PlexSSLError):
    """An https:// URL reached a port that answers in plain HTTP (no TLS there)."""


class PlexAuthError(PlexError):
    """The token was rejected (HTTP 401)."""


class PlexResponseError(PlexError):
    """The server answered with something that is not a Plex response."""


class PlexNotFoundError(PlexError):
    """The server does not have what was asked for (HTTP 404)."""


class PlexForbiddenError(PlexConnectionError):
    """The server refused the request for this token (HTTP 403: not the owner, no Plex Pass)."""
