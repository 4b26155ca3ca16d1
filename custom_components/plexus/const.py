"""Constants for Plexus."""

from datetime import timedelta
import logging
from typing import Final

DOMAIN: Final = "plexus"
LOGGER = logging.getLogger(__package__)

CONF_SERVER_IDENTIFIER: Final = "server_identifier"
CONF_SERVER_NAME: Final = "server_name"
CONF_CLIENT_IDENTIFIER: Final = "client_identifier"
CONF_IGNORED_CLIENTS: Final = "ignored_clients"
CONF_MONITORED_USERS: Final = "monitored_users"
CONF_STALE_MINUTES: Final = "stale_minutes"
# The plex.tv account token (only for entries added by signing in with plex.tv).
CONF_PLEX_TV_TOKEN: Final = "plex_tv_token"  # noqa: S105 - a key name, not a secret
PLEX_TV_PLAYERS_INTERVAL: Final = timedelta(minutes=10)
DEFAULT_STALE_MINUTES: Final = 24 * 60

# Sync-play groups (config subentries of a server entry).
SUBENTRY_SYNC_GROUP: Final = "sync_group"
CONF_GROUP_NAME: Final = "name"
CONF_TOPIC: Final = "topic"
CONF_SECRET: Final = "secret"  # noqa: S105 - a key name, not a secret
CONF_MEMBERS: Final = "members"
CONF_DRIFT_THRESHOLD: Final = "drift_threshold_ms"
CONF_FOLLOW: Final = "follow"
CONF_WAIT_FOR_BUFFERING: Final = "wait_for_buffering"
CONF_READY_TIMEOUT: Final = "ready_timeout_s"
DEFAULT_TOPIC_PREFIX: Final = "plexus/sync"

# Catalog (library import).
CONF_DB_URL: Final = "db_url"
CONF_INCREMENTAL_MINUTES: Final = "incremental_minutes"
CONF_FULL_HOURS: Final = "full_hours"
CONF_PATH_MAPPINGS: Final = "path_mappings"
DEFAULT_INCREMENTAL_MINUTES: Final = 60
DEFAULT_FULL_HOURS: Final = 24
CATALOG_FILE: Final = "plexus_catalog.db"
# Seconds between the server reporting a finished scan and the import it starts.
SCAN_IMPORT_DELAY: Final = 3.0
# Seconds after setup before the first (incremental) import.
FIRST_IMPORT_DELAY: Final = 30.0

# Poll slowly while the websocket pushes changes; faster while it does not, so a server that comes
# back is noticed within POLL_INTERVAL_DISCONNECTED (< 30 s).
POLL_INTERVAL_CONNECTED: Final = timedelta(seconds=60)
POLL_INTERVAL_DISCONNECTED: Final = timedelta(seconds=10)
REFRESH_COOLDOWN: Final = 0.5

# plex.tv PIN sign-in: how long we wait for the user to approve, and how often we ask.
PIN_TIMEOUT: Final = 300.0
PIN_POLL_INTERVAL: Final = 2.0

MANUFACTURER: Final = "Plex"

# File sync: transfer profiles (config subentries of a server entry).
SUBENTRY_TRANSFER: Final = "transfer_profile"
CONF_PROFILE_NAME: Final = "name"
CONF_SOURCE_MODE: Final = "source_mode"
SOURCE_MODE_FOLDERS: Final = "folders"
SOURCE_MODE_CATALOG: Final = "catalog"
CONF_MOVIE_SOURCES: Final = "movie_sources"
CONF_TV_SOURCES: Final = "tv_sources"
CONF_MOVIE_DESTINATION: Final = "movie_destination"
CONF_TV_DESTINATION: Final = "tv_destination"
CONF_LAYOUT: Final = "layout"
CONF_BANDWIDTH_LIMIT: Final = "bandwidth_limit_kib"
CONF_VERIFY: Final = "verify"
CONF_RETRIES: Final = "retries"
CONF_BACKOFF_BASE: Final = "backoff_base_s"
CONF_BACKOFF_CAP: Final = "backoff_cap_s"
CONF_CONCURRENCY: Final = "concurrency"
CONF_FREE_SPACE_RESERVE: Final = "free_space_reserve_mib"
DEFAULT_LAYOUT: Final = "plex"
DEFAULT_VERIFY: Final = "sha256"
DEFAULT_RETRIES: Final = 5
DEFAULT_BACKOFF_BASE: Final = 2.0
DEFAULT_BACKOFF_CAP: Final = 60.0
DEFAULT_CONCURRENCY: Final = 1
DEFAULT_FREE_SPACE_RESERVE: Final = 1024
# Which copier runs: "auto" (rsync when installed, else the built-in one).
TRANSFER_COPIER: Final = "auto"
# Seconds between destination free-space readings (also read after every finished transfer).
TRANSFER_FREE_SPACE_INTERVAL: Final = timedelta(minutes=5)
TRANSFER_EVENT_PREFIX: Final = "plexus_transfer_"
# Watch tracking (webhooks, watch history, Up Next).
CONF_WEBHOOK_LOCAL_ONLY: Final = "webhook_local_only"
CONF_WATCHED_THRESHOLD: Final = "watched_threshold"
CONF_AUTO_MAP_THRESHOLD: Final = "auto_map_threshold"
CONF_MARK_WATCHED_IN_PLEX: Final = "mark_watched_in_plex"
CONF_CROSS_SERVER: Final = "cross_server_watched"
DEFAULT_WATCHED_THRESHOLD: Final = 90
DEFAULT_AUTO_MAP_THRESHOLD: Final = 0.90
EVENT_PLEXUS_WEBHOOK: Final = "plexus_webhook"
# Webhook events that can become a watch (held while the catalog database is not open).
WATCH_EVENTS: Final = frozenset({"media.scrobble", "media.stop"})
