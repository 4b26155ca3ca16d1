"""Sync-play groups in Home Assistant: one engine per group subentry (thin glue over `syncplay/`).

The transport is HA's MQTT integration when it is set up (`mqtt.async_publish`/`async_subscribe`),
otherwise an in-process bus: the group then works between this home's players only, and a Repairs
issue says so. Group events are fired on the bus as `plexus_sync_<event>`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
import contextlib
from dataclasses import dataclass, field
import json
import logging
from typing import Any

from homeassistant.components import mqtt
from homeassistant.config_entries import (
    SIGNAL_CONFIG_ENTRY_CHANGED,
    ConfigEntry,
    ConfigEntryChange,
    ConfigSubentry,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import entity_registry as er, issue_registry as ir
from homeassistant.helpers.dispatcher import async_dispatcher_connect, async_dispatcher_send
from homeassistant.helpers.instance_id import async_get as async_get_instance_id

from .catalog.matcher import Candidate, MediaMatcher, MediaQuery
from .catalog_manager import CatalogCoordinator
from .const import (
    CONF_DRIFT_THRESHOLD,
    CONF_FOLLOW,
    CONF_GROUP_NAME,
    CONF_MEMBERS,
    CONF_READY_TIMEOUT,
    CONF_SECRET,
    CONF_TOPIC,
    CONF_WAIT_FOR_BUFFERING,
    DOMAIN,
    SUBENTRY_SYNC_GROUP,
)
from .coordinator import PlexusCoordinator
from .ids import client_id_from, signal_notification, signal_sync_group
from .plex import PlexError
from .plex.library import MediaItem
from .syncplay import (
    LocalBus,
    MediaRef,
    PlexMemberPlayer,
    SyncConfig,
    SyncEngine,
    SystemClock,
)
from .syncplay.interfaces import MessageCallback, Unsubscribe

_LOGGER = logging.getLogger(__name__)
LOCAL_BUS_KEY = f"{DOMAIN}_sync_local_bus"


class HaMqttTransport:
    """The engine's transport over Home Assistant's MQTT integration."""

    def __init__(self, hass: HomeAssistant) -> None:
        """Use HA's MQTT client."""
        self.hass = hass

    async def publish(self, topic: str, payload: bytes) -> None:
        """Publish (QoS 1, not retained)."""
        await mqtt.async_publish(self.hass, topic, payload, qos=1, retain=False, encoding=None)

    async def subscribe(self, topic_filter: str, deliver: MessageCallback) -> Unsubscribe:
        """Subscribe with raw bytes payloads."""

        @callback
        def receive(message: mqtt.ReceiveMessage) -> None:
            payload = message.payload
            deliver(
                message.topic,
                bytes(payload) if isinstance(payload, (bytes, bytearray)) else payload.encode(),
            )

        return await mqtt.async_subscribe(self.hass, topic_filter, receive, qos=1, encoding=None)


@dataclass
class SyncGroup:
    """A running group: its engine and this home's member players."""

    subentry_id: str
    name: str
    engine: SyncEngine
    member_entity_ids: list[str] = field(default_factory=list)
    members: dict[str, PlexMemberPlayer] = field(default_factory=dict)
    uses_mqtt: bool = False
    unsubscribe: list[Callable[[], None]] = field(default_factory=list)
    # How this home finds an item another home asked for (its rating key here, or None).
    resolve_media: Callable[[MediaRef], Awaitable[str | None]] | None = None


def media_ref(item: MediaItem, server: str) -> MediaRef:
    """What other homes need to find a library item of `server` on their own servers."""
    return MediaRef(
        rating_key=item.rating_key,
        item_type=item.type,
        guid=item.guid or None,
        title=item.title or None,
        year=item.year,
        server=server,
        guids=item.guids,
    )


def member_client_ids(
    hass: HomeAssistant, coordinator: PlexusCoordinator, entity_ids: list[str]
) -> dict[str, str]:
    """Map member entity ids to Plex client ids (players of this server only)."""
    registry = er.async_get(hass)
    found: dict[str, str] = {}
    for entity_id in entity_ids:
        entry = registry.async_get(entity_id)
        if entry is None or entry.platform != DOMAIN:
            continue
        client_id = client_id_from(coordinator.server_identifier, entry.unique_id, player=True)
        if client_id is not None:
            found[entity_id] = client_id
    return found


def local_member_names(
    hass: HomeAssistant, coordinator: PlexusCoordinator, group: SyncGroup
) -> dict[str, str]:
    """The group's members in this home: Plex client id -> the player's name."""
    return {
        client_id: client.name
        if (client := coordinator.state.known_clients.get(client_id))
        else entity_id
        for entity_id, client_id in member_client_ids(
            hass, coordinator, group.member_entity_ids
        ).items()
    }


async def _mqtt_ready(hass: HomeAssistant) -> bool:
    if "mqtt" not in hass.config.components:
        return False
    with contextlib.suppress(Exception):
        return bool(await mqtt.async_wait_for_mqtt_client(hass))
    return False


async def async_create_sync_groups(
    hass: HomeAssistant,
    entry: ConfigEntry,
    coordinator: PlexusCoordinator,
    catalog: CatalogCoordinator,
) -> dict[str, SyncGroup]:
    """Create (not start) an engine for every sync-group subentry; raise/clear Repairs issues."""
    subentries = [s for s in entry.subentries.values() if s.subentry_type == SUBENTRY_SYNC_GROUP]
    if not subentries:
        return {}
    uses_mqtt = await _mqtt_ready(hass)
    instance_id = await async_get_instance_id(hass)
    groups: dict[str, SyncGroup] = {}
    for subentry in subentries:
        group = _create_group(hass, coordinator, subentry, instance_id, uses_mqtt, catalog=catalog)
        groups[subentry.subentry_id] = group
        issue_id = f"mqtt_missing_{subentry.subentry_id}"
        if uses_mqtt:
            ir.async_delete_issue(hass, DOMAIN, issue_id)
        else:
            ir.async_create_issue(
                hass,
                DOMAIN,
                issue_id,
                is_fixable=False,
                severity=ir.IssueSeverity.WARNING,
                translation_key="mqtt_missing",
                translation_placeholders={"group": group.name},
            )
    return groups


def _in_loop(handler: Callable[[str, dict[str, Any]], None]) -> Callable[..., None]:
    """Wrap an engine handler as a callback: the dispatcher runs it in the event loop.

    (A target not marked as a callback would be run in the executor.)
    """

    @callback
    def handle(kind: str, container: dict[str, Any]) -> None:
        handler(kind, container)

    return handle


async def async_start_sync_groups(
    hass: HomeAssistant, coordinator: PlexusCoordinator, groups: dict[str, SyncGroup]
) -> None:
    """Add this home's member players (their entities exist now) and join the groups."""
    for group in groups.values():
        members = member_client_ids(hass, coordinator, group.member_entity_ids)
        for entity_id, client_id in members.items():
            client = coordinator.state.known_clients.get(client_id)
            player = PlexMemberPlayer(
                coordinator.control,
                client_id,
                name=client.name if client else entity_id,
                capabilities=tuple(sorted(client.protocol_capabilities)) if client else (),
            )
            live = coordinator.state.live.get(client_id)
            if live is not None:
                player.update(live.state, live.rating_key, live.position_ms)
            group.members[entity_id] = player
            group.engine.add_member(player)
            group.unsubscribe.append(
                async_dispatcher_connect(
                    hass,
                    signal_notification(coordinator.server_identifier),
                    _in_loop(player.handle_notification),
                )
            )
        await group.engine.start()
        if group.uses_mqtt:
            group.unsubscribe.append(_rejoin_on_reconnect(hass, coordinator.config_entry, group))


def _rejoin_on_reconnect(
    hass: HomeAssistant, entry: ConfigEntry, group: SyncGroup
) -> Callable[[], None]:
    """Run the engine's rejoin handshake whenever HA's MQTT client connects again.

    (HA subscribes again by itself; the engine announces itself, waits until each peer shows it
    hears us again, and syncs clocks anew.)
    """
    connected = True

    async def rejoin() -> None:
        try:
            await group.engine.reconnected()
        except Exception as err:  # noqa: BLE001 - the heartbeat announces again
            _LOGGER.warning(
                "Sync group %s could not announce itself after MQTT reconnected: %s",
                group.name,
                err,
            )

    @callback
    def status(now_connected: bool) -> None:
        nonlocal connected
        if now_connected and not connected:
            entry.async_create_background_task(
                hass, rejoin(), f"plexus sync group {group.name} rejoin"
            )
        connected = now_connected

    return mqtt.async_subscribe_connection_status(hass, status)


def _matcher(coordinator: PlexusCoordinator, catalog: CatalogCoordinator) -> MediaMatcher:
    """The shared matcher, asking this server where the catalog cannot answer."""

    async def find_guid(guid: str) -> str | None:
        try:
            request = await coordinator.resolver.resolve(guid, coordinator.data.sections)
        except PlexError:
            return None
        return request.item.rating_key

    async def search_server(title: str, year: int | None, item_type: str) -> list[Candidate]:
        query = {"title": title, **({"year": year} if year else {})}
        try:
            request = await coordinator.resolver.resolve(
                json.dumps(query), coordinator.data.sections
            )
        except PlexError:
            return []
        item = request.item
        return [Candidate(item.rating_key, item.title, item.year, item.type, None, 0.0)]

    return catalog.matcher(server_find_guid=find_guid, server_search=search_server)


def _create_group(
    hass: HomeAssistant,
    coordinator: PlexusCoordinator,
    subentry: ConfigSubentry,
    instance_id: str,
    uses_mqtt: bool,
    *,
    catalog: CatalogCoordinator,
) -> SyncGroup:
    data = subentry.data
    name: str = data[CONF_GROUP_NAME]
    transport: Any
    if uses_mqtt:
        transport = HaMqttTransport(hass)
    else:
        transport = hass.data.setdefault(LOCAL_BUS_KEY, LocalBus())
    config = SyncConfig(
        group=name,
        secret=data[CONF_SECRET],
        instance_id=f"{instance_id[:12]}-{coordinator.server_identifier[:8]}",
        home=hass.config.location_name,
        base_topic=data[CONF_TOPIC],
        drift_threshold_ms=float(data.get(CONF_DRIFT_THRESHOLD, 400)),
        ready_timeout_s=float(data.get(CONF_READY_TIMEOUT, 10)),
        wait_for_buffering=bool(data.get(CONF_WAIT_FOR_BUFFERING, True)),
        follow=bool(data.get(CONF_FOLLOW, False)),
    )

    @callback
    def on_event(kind: str, event_data: dict[str, Any]) -> None:
        hass.bus.async_fire(f"{DOMAIN}_sync_{kind}", {"group": name, **event_data})

    @callback
    def on_update() -> None:
        async_dispatcher_send(hass, signal_sync_group(subentry.subentry_id))

    matcher = _matcher(coordinator, catalog)

    async def resolve(media: MediaRef) -> str | None:
        """The same item on this server (the shared matcher: key, GUIDs, server, title + year).

        A rating key of another server names nothing here; a conflict is no key.
        """
        guids = tuple(g for g in (media.guid, *media.guids) if g and "://" in g)
        return await matcher.resolve_key(
            MediaQuery(
                type=media.item_type,
                rating_key=media.rating_key,
                server=media.server,
                guids=guids,
                title=media.title,
                year=media.year,
            )
        )

    async def describe(rating_key: str) -> MediaRef:
        """A member's current item, with its GUIDs, title and year (its key alone if unreadable)."""
        server = coordinator.server_identifier
        with contextlib.suppress(PlexError):
            if (item := await coordinator.library.metadata(rating_key)) is not None:
                return media_ref(item, server)
        return MediaRef(rating_key, server=server)

    engine = SyncEngine(
        config,
        SystemClock(),
        transport,
        on_event=on_event,
        on_update=on_update,
        resolve_media=resolve,
        describe_media=describe,
    )
    return SyncGroup(
        subentry.subentry_id,
        name,
        engine,
        member_entity_ids=list(data.get(CONF_MEMBERS, [])),
        uses_mqtt=uses_mqtt,
        resolve_media=resolve,
    )


async def async_stop_sync_groups(groups: dict[str, SyncGroup]) -> None:
    """Leave every group."""
    for group in groups.values():
        await _leave(group)


async def _leave(group: SyncGroup) -> None:
    for unsubscribe in group.unsubscribe:
        unsubscribe()
    group.unsubscribe.clear()
    await group.engine.shutdown()


@callback
def async_track_group_removal(
    hass: HomeAssistant, entry: ConfigEntry, groups: dict[str, SyncGroup]
) -> Callable[[], None]:
    """Leave a group as soon as its subentry is deleted (not at the next restart).

    HA removes the subentry's devices and entities itself; the engine (its MQTT subscription,
    its control of the members) and its Repairs notice are ours to end.
    """

    @callback
    def _entry_changed(change: ConfigEntryChange, changed: ConfigEntry) -> None:
        if change is not ConfigEntryChange.UPDATED or changed.entry_id != entry.entry_id:
            return
        for subentry_id in [g for g in groups if g not in changed.subentries]:
            group = groups.pop(subentry_id)
            ir.async_delete_issue(hass, DOMAIN, f"mqtt_missing_{subentry_id}")
            _LOGGER.info("Sync-play group %s removed: leaving it", group.name)
            entry.async_create_background_task(
                hass, _leave(group), f"plexus sync group {subentry_id} removed"
            )

    return async_dispatcher_connect(hass, SIGNAL_CONFIG_ENTRY_CHANGED, _entry_changed)
