"""plex.tv account access: the servers an account can use.

Uses python-plexapi, which tracks plex.tv's API. It is blocking (requests), so callers run
`account_servers` in an executor.
"""

from typing import Any

from .errors import PlexAuthError, PlexConnectionError
from .models import PlexClientInfo, ServerConnection, ServerResource


def _connection_rank(conn: ServerConnection) -> tuple[int, int]:
    # Local before remote before relay; within each, the order plex.tv gave.
    return (1 if conn.relay else 0, 0 if conn.local else 1)


def _account_resources(token: str, client_identifier: str) -> list[Any]:
    """Return plex.tv's resources of the account behind `token` (blocking)."""
    import plexapi  # noqa: PLC0415 - imported here so the import runs in the executor too
    from plexapi.exceptions import BadRequest, Unauthorized  # noqa: PLC0415
    from plexapi.myplex import MyPlexAccount  # noqa: PLC0415
    import requests  # noqa: PLC0415

    plexapi.X_PLEX_IDENTIFIER = client_identifier
    plexapi.X_PLEX_PRODUCT = "Plexus"
    try:
        account = MyPlexAccount(token=token, timeout=15)  # type: ignore[no-untyped-call]
        return list(account.resources())  # type: ignore[no-untyped-call]
    except Unauthorized as err:
        raise PlexAuthError("plex.tv rejected the token") from err
    except (BadRequest, requests.RequestException) as err:
        raise PlexConnectionError(f"plex.tv could not be reached: {type(err).__name__}") from err


def account_players(token: str, client_identifier: str) -> list[PlexClientInfo]:
    """Return the account's players that plex.tv sees online (blocking).

    plex.tv does not say what a player accepts, so these carry no capabilities: they can be
    controlled only once the server itself lists them (its /clients answer then wins).
    """
    return [
        PlexClientInfo(
            machine_identifier=resource.clientIdentifier,
            name=resource.name or resource.clientIdentifier,
            product=resource.product or "",
            platform=resource.platform or "",
            version=resource.productVersion or "",
        )
        for resource in _account_resources(token, client_identifier)
        if "player" in (resource.provides or "").split(",") and resource.presence
    ]


def account_servers(token: str, client_identifier: str) -> list[ServerResource]:
    """Return the Plex Media Servers the account behind `token` can use (blocking)."""
    resources = _account_resources(token, client_identifier)
    servers: list[ServerResource] = []
    for resource in resources:
        if "server" not in (resource.provides or "").split(","):
            continue
        connections = sorted(
            (
                ServerConnection(uri=conn.uri, local=bool(conn.local), relay=bool(conn.relay))
                for conn in resource.connections
                if conn.uri
            ),
            key=_connection_rank,
        )
        servers.append(
            ServerResource(
                name=resource.name,
                client_identifier=resource.clientIdentifier,
                access_token=resource.accessToken or token,
                owned=bool(resource.owned),
                connections=tuple(connections),
            )
        )
    return servers
