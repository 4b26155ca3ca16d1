"""Sensors of a Plex server."""

from collections.abc import Callable
from dataclasses import dataclass

from homeassistant.components.sensor import (
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import StateType

from .coordinator import PlexusConfigEntry, PlexusCoordinator, PlexusServerData
from .entity import PlexusServerEntity

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class PlexusSensorEntityDescription(SensorEntityDescription):
    """A server sensor and how to read its value."""

    value_fn: Callable[[PlexusServerData], StateType]


SERVER_SENSORS: tuple[PlexusSensorEntityDescription, ...] = (
    PlexusSensorEntityDescription(
        key="active_streams",
        translation_key="active_streams",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda data: len(data.sessions),
    ),
    PlexusSensorEntityDescription(
        key="clients",
        translation_key="clients",
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda data: len(data.clients),
    ),
    PlexusSensorEntityDescription(
        key="libraries",
        translation_key="libraries",
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda data: len(data.sections),
    ),
    PlexusSensorEntityDescription(
        key="version",
        translation_key="version",
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda data: data.info.version,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PlexusConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the server sensors."""
    coordinator = entry.runtime_data.coordinator
    async_add_entities(PlexusServerSensor(coordinator, desc) for desc in SERVER_SENSORS)


class PlexusServerSensor(PlexusServerEntity, SensorEntity):
    """A sensor on the server device."""

    entity_description: PlexusSensorEntityDescription

    def __init__(
        self, coordinator: PlexusCoordinator, description: PlexusSensorEntityDescription
    ) -> None:
        """Create the sensor."""
        super().__init__(coordinator, description.key)
        self.entity_description = description

    @property
    def native_value(self) -> StateType:
        """Return the value from the latest snapshot."""
        return self.entity_description.value_fn(self.coordinator.data)
