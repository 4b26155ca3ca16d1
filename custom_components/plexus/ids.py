"""Unique ids, device identifiers and dispatcher signal names (imported by everyone, import nobody).

Push reaches entities through HA's own mechanisms: coordinator data, or the dispatcher signals
named here (one per client, per server and per sync group), never hand-written listener lists.
"""

from .const import DOMAIN


def player_unique_id(server_id: str, client_id: str) -> str:
    """Unique id of a client's media player."""
    return f"{server_id}-player-{client_id}"


def client_device_identifier(server_id: str, client_id: str) -> tuple[str, str]:
    """Device identifier of a client (scoped by server: one client may use several servers)."""
    return (DOMAIN, f"{server_id}-{client_id}")


def client_id_from(server_id: str, scoped_id: str, *, player: bool) -> str | None:
    """The client id inside a player unique id (player=True) or client device identifier."""
    prefix = f"{server_id}-player-" if player else f"{server_id}-"
    return scoped_id.removeprefix(prefix) if scoped_id.startswith(prefix) else None


def signal_client_live(server_id: str, client_id: str) -> str:
    """Sent when a notification changed one client's live state (position, play/pause)."""
    return f"{DOMAIN}_{server_id}_live_{client_id}"


def signal_notification(server_id: str) -> str:
    """Sent with (kind, container) for every websocket notification of a server."""
    return f"{DOMAIN}_{server_id}_notification"


def signal_library_changed(server_id: str) -> str:
    """Sent when the server reports a finished library scan or change."""
    return f"{DOMAIN}_{server_id}_library_changed"


def signal_sync_group(subentry_id: str) -> str:
    """Sent when a sync-play group's state changed."""
    return f"{DOMAIN}_sync_group_{subentry_id}"


def signal_transfer_profile(subentry_id: str) -> str:
    """Sent when a transfer profile's queue, current transfer or scan changed."""
    return f"{DOMAIN}_transfer_{subentry_id}"


def user_device_identifier(server_id: str, user: str) -> tuple[str, str]:
    """Device identifier of a Plex user whose watches are tracked (scoped by server)."""
    return (DOMAIN, f"{server_id}-user-{user}")


def signal_webhook(server_id: str) -> str:
    """Sent with the `WebhookEvent` of every accepted webhook of a server."""
    return f"{DOMAIN}_{server_id}_webhook"


def signal_watches_changed(server_id: str) -> str:
    """Sent when the watch history of a server changed (a watch recorded, removed or applied).

    Its optional argument is the set of user ids whose watches changed (absent or None: anyone's).
    """
    return f"{DOMAIN}_{server_id}_watches"


def signal_tracked_users(server_id: str) -> str:
    """Sent when a new tracked user appeared (entities for them are added)."""
    return f"{DOMAIN}_{server_id}_tracked_users"
