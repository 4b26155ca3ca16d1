"""Sensors of a Plex server."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import EntityCategory, UnitOfDataRate
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import StateType

from .coordinator import PlexusConfigEntry, PlexusCoordinator, PlexusServerData
from .entity import PlexusServerEntity
from .plex import LibrarySection

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class PlexusSensorEntityDescription(SensorEntityDescription):
    """A server sensor and how to read its value."""

    value_fn: Callable[[PlexusServerData], StateType]


def _count(decision: str) -> Callable[[PlexusServerData], StateType]:
    return lambda data: sum(1 for s in data.sessions if s.decision == decision)


def _bandwidth(location: str | None) -> Callable[[PlexusServerData], StateType]:
    return lambda data: sum(
        s.bandwidth_kbps for s in data.sessions if location is None or s.location == location
    )


SERVER_SENSORS: tuple[PlexusSensorEntityDescription, ...] = (
    PlexusSensorEntityDescription(
        key="active_streams",
        translation_key="active_streams",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda data: len(data.sessions),
    ),
    PlexusSensorEntityDescription(
        key="transcoding_streams",
        translation_key="transcoding_streams",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=_count("transcode"),
    ),
    PlexusSensorEntityDescription(
        key="direct_play_streams",
        translation_key="direct_play_streams",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=_count("directplay"),
    ),
    PlexusSensorEntityDescription(
        key="direct_stream_streams",
        translation_key="direct_stream_streams",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=_count("copy"),
    ),
    PlexusSensorEntityDescription(
        key="bandwidth",
        translation_key="bandwidth",
        device_class=SensorDeviceClass.DATA_RATE,
        native_unit_of_measurement=UnitOfDataRate.KILOBITS_PER_SECOND,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=_bandwidth(None),
    ),
    PlexusSensorEntityDescription(
        key="lan_bandwidth",
        translation_key="lan_bandwidth",
        device_class=SensorDeviceClass.DATA_RATE,
        native_unit_of_measurement=UnitOfDataRate.KILOBITS_PER_SECOND,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=_bandwidth("lan"),
    ),
    PlexusSensorEntityDescription(
        key="wan_bandwidth",
        translation_key="wan_bandwidth",
        device_class=SensorDeviceClass.DATA_RATE,
        native_unit_of_measurement=UnitOfDataRate.KILOBITS_PER_SECOND,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=_bandwidth("wan"),
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
    async_add_entities(
        PlexusLibrarySensor(coordinator, section) for section in coordinator.data.sections
    )


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


class PlexusLibrarySensor(PlexusServerEntity, SensorEntity):
    """Item count of one library, with its newest item (disabled by default)."""

    _attr_translation_key = "library"
    _attr_entity_registry_enabled_default = False
    _attr_state_class = SensorStateClass.MEASUREMENT

    def __init__(self, coordinator: PlexusCoordinator, section: LibrarySection) -> None:
        """Create the sensor for a section."""
        super().__init__(coordinator, f"library-{section.uuid or section.key}")
        self.section_key = section.key
        self._attr_translation_placeholders = {"library": section.title}
        self._attr_native_unit_of_measurement = {
            "movie": "movies",
            "show": "episodes",
            "artist": "tracks",
        }.get(section.type, "items")

    @property
    def native_value(self) -> StateType:
        """Return the item count."""
        stats = self.coordinator.data.library_stats.get(self.section_key)
        return stats.count if stats else None

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """The newest item."""
        stats = self.coordinator.data.library_stats.get(self.section_key)
        if stats is None or stats.last_added is None:
            return {}
        item = stats.last_added
        title = f"{item.grandparent_title} - {item.title}" if item.grandparent_title else item.title
        return {"last_added": title, "last_added_rating_key": item.rating_key}
