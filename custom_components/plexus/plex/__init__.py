"""Async access to a Plex Media Server and plex.tv (no Home Assistant imports)."""

from .api import PlexServerAPI
from .errors import (
    PlexAuthError,
    PlexConnectionError,
    PlexError,
    PlexNotHTTPSError,
    PlexResponseError,
    PlexSSLError,
)
from .models import LibrarySection, PlexClientInfo, PlexSession, ServerInfo, ServerResource
from .websocket import NotificationListener

__all__ = [
    "LibrarySection",
    "NotificationListener",
    "PlexAuthError",
    "PlexClientInfo",
    "PlexConnectionError",
    "PlexError",
    "PlexNotHTTPSError",
    "PlexResponseError",
    "PlexSSLError",
    "PlexServerAPI",
    "PlexSession",
    "ServerInfo",
    "ServerResource",
]
