"""Typed runtime data of a server entry: what `async_setup_entry` builds and everything reads."""

from __future__ import annotations

from dataclasses import dataclass

from homeassistant.config_entries import ConfigEntry

from .catalog_manager import CatalogCoordinator
from .coordinator import PlexusCoordinator
from .sync import SyncGroup
from .tracking_manager import TrackingManager
from .transfers import TransferManager

type PlexusConfigEntry = ConfigEntry[PlexusData]


@dataclass(slots=True)
class PlexusData:
    """Runtime data of a server entry."""

    coordinator: PlexusCoordinator
    catalog: CatalogCoordinator
    sync_groups: dict[str, SyncGroup]
    tracking: TrackingManager
    transfers: TransferManager | None = None
