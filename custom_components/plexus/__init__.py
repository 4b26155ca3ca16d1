"""Plexus: Plex as a first-class part of Home Assistant."""

from homeassistant.components.webhook import async_generate_id
from homeassistant.const import CONF_WEBHOOK_ID, Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import config_validation as cv, device_registry as dr
from homeassistant.helpers.device_registry import DeviceEntry
from homeassistant.helpers.typing import ConfigType

from .catalog_manager import CatalogCoordinator
from .const import DOMAIN, MANUFACTURER
from .coordinator import PlexusCoordinator
from .ids import client_id_from
from .runtime import PlexusConfigEntry, PlexusData
from .services import async_setup_services
from .sync import (
    async_create_sync_groups,
    async_start_sync_groups,
    async_stop_sync_groups,
    async_track_group_removal,
)
from .tracking_manager import TrackingManager
from .transfers import TransferManager

PLATFORMS: list[Platform] = [
    Platform.BINARY_SENSOR,
    Platform.BUTTON,
    Platform.EVENT,
    Platform.MEDIA_PLAYER,
    Platform.SELECT,
    Platform.SENSOR,
    Platform.TODO,
    Platform.UPDATE,
]
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the services."""
    async_setup_services(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: PlexusConfigEntry) -> bool:
    """Connect to a Plex server and set up its entities.

    The catalog is optional: a database that cannot be opened leaves the rest running (see
    `CatalogCoordinator`).
    """
    coordinator = PlexusCoordinator.from_entry(hass, entry)
    await coordinator.async_config_entry_first_refresh()
    catalog = CatalogCoordinator(
        hass,
        entry,
        coordinator.api,
        coordinator.server_identifier,
        lambda: coordinator.last_update_success,
    )
    await catalog.async_start()
    entry.async_on_unload(catalog.async_stop)
    sync_groups = await async_create_sync_groups(hass, entry, coordinator, catalog)
    entry.async_on_unload(lambda: async_stop_sync_groups(sync_groups))
    entry.async_on_unload(async_track_group_removal(hass, entry, sync_groups))
    transfers = TransferManager(hass, entry, catalog, coordinator.server_identifier)
    entry.async_on_unload(transfers.async_stop)  # popped first: stops before the catalog closes
    tracking = TrackingManager(hass, entry, coordinator, catalog)
    entry.runtime_data = PlexusData(
        coordinator=coordinator,
        catalog=catalog,
        sync_groups=sync_groups,
        tracking=tracking,
        transfers=transfers,
    )
    await tracking.async_start()
    entry.async_on_unload(tracking.async_stop)  # also when a later step of the setup fails

    info = coordinator.data.info
    dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id,
        identifiers={(DOMAIN, info.machine_identifier)},
        manufacturer=MANUFACTURER,
        model="Plex Media Server",
        name=info.friendly_name,
        sw_version=info.version,
        configuration_url=f"{coordinator.api.url}/web",
    )
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    await async_start_sync_groups(hass, coordinator, sync_groups)
    coordinator.async_start_push()
    await transfers.async_start()
    return True


async def async_migrate_entry(hass: HomeAssistant, entry: PlexusConfigEntry) -> bool:
    """Bring an entry to the current version (1.2: every server entry owns a webhook id).

    Home Assistant itself refuses an entry of a newer major version; a newer minor version is
    compatible and kept as it is.
    """
    if entry.minor_version < 2:
        data = dict(entry.data)
        data.setdefault(CONF_WEBHOOK_ID, async_generate_id())
        hass.config_entries.async_update_entry(entry, data=data, minor_version=2)
    return True


async def async_unload_entry(hass: HomeAssistant, entry: PlexusConfigEntry) -> bool:
    """Unload a server entry (the websocket stops through async_on_unload).

    Transfers stop and queued webhooks are recorded first, while the catalog database is still open
    (the on-unload callbacks run concurrently, and background tasks are cancelled).
    """
    if entry.runtime_data.transfers is not None:
        await entry.runtime_data.transfers.async_stop()
    await entry.runtime_data.tracking.async_stop()
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: PlexusConfigEntry, device: DeviceEntry
) -> bool:
    """Let the user delete a client's device; the server's own device stays."""
    coordinator = entry.runtime_data.coordinator
    # The device may also carry other integrations' identifiers: only Plexus's own count.
    ours = [identifier for domain, identifier in device.identifiers if domain == DOMAIN]
    for identifier in ours:
        client_id = client_id_from(coordinator.server_identifier, identifier, player=False)
        if client_id is not None:
            if client_id in coordinator.data.clients:
                return False  # the server lists it right now: it would come straight back
            coordinator.async_forget_client(client_id)
            return True
    return False
