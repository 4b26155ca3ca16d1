"""plex.tv account access: the servers an account can use and its players that are online.

One request, GET /api/v2/resources?includeHttps=1&includeRelay=1, lists every device of the
account (and the servers shared with it). In JSON each resource is an object: `name`,
`clientIdentifier`, `provides` ("server", "client,player,..."), `presence`, `owned`,
`accessToken` (the token to use on that server; empty for players), `product`, `platform`,
`productVersion` and `connections` (`uri`, `local`, `relay`, `protocol`, `address`, `port`).
Malformed entries are skipped, not fatal: one odd device must not hide the others.
"""

from typing import Any

from .errors import PlexConnectionError
from .models import PlexClientInfo, ServerConnection, ServerResource
from .plextv import PlexTv

RESOURCES_PATH = "/api/v2/resources"
RESOURCES_PARAMS = {"includeHttps": "1", "includeRelay": "1"}


def _flag(value: Any) -> bool:
    """plex.tv's booleans (true/false; tolerate 1/0 and "1"/"0" as its XML has them)."""
    return value is True or value == 1 or value in ("1", "true")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _provides(resource: dict[str, Any]) -> set[str]:
    return {p.strip() for p in _text(resource.get("provides")).split(",") if p.strip()}


def _connection_rank(conn: ServerConnection) -> tuple[int, int]:
    # Local before remote before relay; within each, the order plex.tv gave.
    return (1 if conn.relay else 0, 0 if conn.local else 1)


async def account_resources(plex_tv: PlexTv, token: str) -> list[dict[str, Any]]:
    """The account's resources as plex.tv lists them (entries without an identifier dropped)."""
    data = await plex_tv.request_json("GET", RESOURCES_PATH, token=token, params=RESOURCES_PARAMS)
    if not isinstance(data, list):
        raise PlexConnectionError(
            f"plex.tv GET {RESOURCES_PATH}: plex.tv's resources answer is not a list"
        )
    return [r for r in data if isinstance(r, dict) and _text(r.get("clientIdentifier"))]


async def account_players(plex_tv: PlexTv, token: str) -> list[PlexClientInfo]:
    """The account's players that plex.tv sees online.

    plex.tv does not say what a player accepts, so these carry no capabilities: they can be
    controlled only once the server itself lists them (its /clients answer then wins).
    """
    return [
        PlexClientInfo(
            machine_identifier=resource["clientIdentifier"],
            name=_text(resource.get("name")) or resource["clientIdentifier"],
            product=_text(resource.get("product")),
            platform=_text(resource.get("platform")),
            version=_text(resource.get("productVersion")),
        )
        for resource in await account_resources(plex_tv, token)
        if "player" in _provides(resource) and _flag(resource.get("presence"))
    ]


def _connections(resource: dict[str, Any]) -> tuple[ServerConnection, ...]:
    raw = resource.get("connections")
    found = [
        ServerConnection(
            uri=_text(conn.get("uri")),
            local=_flag(conn.get("local")),
            relay=_flag(conn.get("relay")),
        )
        for conn in (raw if isinstance(raw, list) else [])
        if isinstance(conn, dict) and _text(conn.get("uri"))
    ]
    return tuple(sorted(found, key=_connection_rank))


async def account_servers(plex_tv: PlexTv, token: str) -> list[ServerResource]:
    """The Plex Media Servers the account behind `token` can use, best connection first."""
    return [
        ServerResource(
            name=_text(resource.get("name")) or resource["clientIdentifier"],
            client_identifier=resource["clientIdentifier"],
            access_token=_text(resource.get("accessToken")) or token,
            owned=_flag(resource.get("owned")),
            connections=_connections(resource),
        )
        for resource in await account_resources(plex_tv, token)
        if "server" in _provides(resource)
    ]
