"""Sensors of a Plex server."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import (
    PERCENTAGE,
    EntityCategory,
    UnitOfDataRate,
    UnitOfInformation,
    UnitOfTime,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import StateType

from .catalog_manager import CatalogCoordinator, CatalogState
from .const import DOMAIN
from .coordinator import PlexusCoordinator, PlexusServerData
from .entity import PlexusEntity, PlexusServerEntity
from .ids import signal_tracked_users
from .plex import LibrarySection
from .runtime import PlexusConfigEntry
from .sync import SyncGroup, local_member_names
from .sync_entity import SyncGroupEntity
from .syncplay import GroupState
from .tracking import UserStats, Watch
from .tracking_entity import TrackedUserEntity
from .tracking_manager import TrackingManager
from .transfer_entity import TransferProfileEntity
from .transfers import TransferManager, TransferProfile

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
        state_class=SensorStateClass.MEASUREMENT,
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
    catalog = entry.runtime_data.catalog
    async_add_entities(
        CatalogSensor(catalog, coordinator.server_identifier, description)
        for description in CATALOG_SENSORS
    )
    for group in entry.runtime_data.sync_groups.values():
        async_add_entities(
            (SyncGroupSensor(group, description) for description in SYNC_SENSORS),
            config_subentry_id=group.subentry_id,
        )
        async_add_entities(
            (
                SyncMemberPrecisionSensor(group, client_id, name)
                for client_id, name in local_member_names(hass, coordinator, group).items()
            ),
            config_subentry_id=group.subentry_id,
        )
    if (transfers := entry.runtime_data.transfers) is not None:
        for profile in transfers.profiles.values():
            async_add_entities(
                (TransferSensor(transfers, profile, desc) for desc in TRANSFER_SENSORS),
                config_subentry_id=profile.subentry_id,
            )
    _add_user_sensors(entry, async_add_entities)


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


@dataclass(frozen=True, kw_only=True)
class CatalogSensorEntityDescription(SensorEntityDescription):
    """A catalog sensor and how to read it from the catalog manager."""

    value_fn: Callable[[CatalogState], StateType | datetime]
    attrs_fn: Callable[[CatalogState], dict[str, Any]] = lambda _m: {}


def _catalog_count(kind: str) -> Callable[[CatalogState], StateType]:
    return lambda state: state.counts.get(kind, 0)


def _last_import_attrs(state: CatalogState) -> dict[str, Any]:
    run = state.last_run
    if run is None:
        return {}
    return {
        "mode": run.mode,
        "status": run.status,
        "duration_s": round(run.duration, 1) if run.duration is not None else None,
        "added": run.counts.added,
        "updated": run.counts.updated,
        "removed": run.counts.removed,
        "error": run.error,
    }


def _progress_attrs(state: CatalogState) -> dict[str, Any]:
    progress = state.progress
    if progress is None:
        return {}
    return {
        "mode": progress.mode,
        "library": progress.library,
        "libraries_done": progress.libraries_done,
        "libraries_total": progress.libraries_total,
        "items_done": progress.items_done,
        "items_total": progress.items_total,
    }


CATALOG_SENSORS: tuple[CatalogSensorEntityDescription, ...] = (
    *(
        CatalogSensorEntityDescription(
            key=f"catalog_{kind}s",
            translation_key=f"catalog_{kind}s",
            state_class=SensorStateClass.TOTAL,
            value_fn=_catalog_count(kind),
        )
        for kind in ("movie", "show", "episode")
    ),
    CatalogSensorEntityDescription(
        key="last_import",
        translation_key="last_import",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=lambda state: state.last_run.finished_at if state.last_run else None,
        attrs_fn=_last_import_attrs,
    ),
    CatalogSensorEntityDescription(
        key="import_progress",
        translation_key="import_progress",
        native_unit_of_measurement=PERCENTAGE,
        # 0 % while no import runs (not "unknown").
        value_fn=lambda state: round(state.progress.percent, 1) if state.progress else 0,
        attrs_fn=_progress_attrs,
    ),
)


class CatalogSensor(PlexusEntity[CatalogCoordinator], SensorEntity):
    """A sensor of the server's catalog (unavailable while its database is not open)."""

    entity_description: CatalogSensorEntityDescription

    def __init__(
        self,
        coordinator: CatalogCoordinator,
        server_id: str,
        description: CatalogSensorEntityDescription,
    ) -> None:
        """Create the sensor on the server's device."""
        super().__init__(coordinator)
        self.entity_description = description
        self._attr_unique_id = f"{server_id}-{description.key}"
        self._attr_device_info = DeviceInfo(identifiers={(DOMAIN, server_id)})

    @property
    def native_value(self) -> StateType | datetime:
        """Return the value."""
        return self.entity_description.value_fn(self.coordinator.data)

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """Return details."""
        return self.entity_description.attrs_fn(self.coordinator.data)


@dataclass(frozen=True, kw_only=True)
class SyncSensorEntityDescription(SensorEntityDescription):
    """A sensor of a sync-play group."""

    value_fn: Callable[[GroupState], StateType]
    attrs_fn: Callable[[GroupState], dict[str, Any]] = lambda _s: {}


def _members_attrs(state: GroupState) -> dict[str, Any]:
    return {
        "members": [
            {
                "name": m.name,
                "home": m.home,
                "local": m.local,
                "state": m.state,
                "latency_ms": m.latency_ms,
                "clock_offset_ms": m.clock_offset_ms,
                "drift_ms": m.drift_ms,
                "expected_precision_ms": m.expected_precision_ms,
            }
            for m in state.members
        ],
        "homes": state.homes,
        "leader": state.leader,
    }


SYNC_SENSORS: tuple[SyncSensorEntityDescription, ...] = (
    SyncSensorEntityDescription(
        key="sync_state",
        translation_key="sync_state",
        device_class=SensorDeviceClass.ENUM,
        options=["idle", "preparing", "playing", "paused", "waiting"],
        value_fn=lambda state: state.state,
        attrs_fn=lambda state: {
            "media": state.media.title or state.media.rating_key if state.media else None
        },
    ),
    SyncSensorEntityDescription(
        key="sync_members",
        translation_key="sync_members",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda state: len(state.members),
        attrs_fn=_members_attrs,
    ),
    SyncSensorEntityDescription(
        key="sync_largest_drift",
        translation_key="sync_largest_drift",
        native_unit_of_measurement=UnitOfTime.MILLISECONDS,
        device_class=SensorDeviceClass.DURATION,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda state: (
            round(state.largest_drift_ms) if state.largest_drift_ms is not None else None
        ),
    ),
    SyncSensorEntityDescription(
        key="sync_clock_offset",
        translation_key="sync_clock_offset",
        native_unit_of_measurement=UnitOfTime.MILLISECONDS,
        device_class=SensorDeviceClass.DURATION,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda state: (
            # + 0.0 turns a rounded -0.0 into 0.0.
            round(state.clock_offset_ms, 1) + 0.0 if state.clock_offset_ms is not None else None
        ),
    ),
)


class SyncGroupSensor(SyncGroupEntity, SensorEntity):
    """A sensor of a sync-play group."""

    entity_description: SyncSensorEntityDescription

    def __init__(self, group: SyncGroup, description: SyncSensorEntityDescription) -> None:
        """Create the sensor."""
        super().__init__(group, description.key)
        self.entity_description = description

    @property
    def native_value(self) -> StateType:
        """Return the value."""
        return self.entity_description.value_fn(self.group_state)

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """Return details."""
        return self.entity_description.attrs_fn(self.group_state)


class SyncMemberPrecisionSensor(SyncGroupEntity, SensorEntity):
    """How close to the others one of this home's members can be started (on the group)."""

    _attr_translation_key = "sync_member_precision"
    _attr_device_class = SensorDeviceClass.DURATION
    _attr_native_unit_of_measurement = UnitOfTime.MILLISECONDS
    _attr_state_class = SensorStateClass.MEASUREMENT

    def __init__(self, group: SyncGroup, client_id: str, name: str) -> None:
        """Create the sensor for the member player `client_id`."""
        super().__init__(group, f"precision-{client_id}")
        self.client_id = client_id
        self._attr_translation_placeholders = {"player": name}

    @property
    def native_value(self) -> StateType:
        """The member's expected precision, ms (unknown until the engine has it)."""
        member = next(
            (m for m in self.group_state.members if m.local and m.player_id == self.client_id),
            None,
        )
        return None if member is None else member.expected_precision_ms


# --- File sync: sensors of a transfer profile ------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class TransferSensorEntityDescription(SensorEntityDescription):
    """A sensor of a transfer profile."""

    value_fn: Callable[[TransferProfile], StateType]
    attrs_fn: Callable[[TransferProfile], dict[str, Any]] = lambda _p: {}


def _current_attrs(profile: TransferProfile) -> dict[str, Any]:
    current = profile.current
    if current is None:
        return {}
    return {
        "transfer_id": current.item_id,
        "progress": current.percent,
        "speed": round(current.speed) if current.speed is not None else None,
        "eta": round(current.eta) if current.eta is not None else None,
        "bytes_done": current.bytes_done,
        "size": current.size,
    }


def _scan_attrs(profile: TransferProfile) -> dict[str, Any]:
    scan = profile.scan
    attrs: dict[str, Any] = {"scanning": scan.scanning, "parsed": scan.parsed}
    if scan.last is not None:
        attrs |= {
            "added": scan.last.added,
            "changed": scan.last.changed,
            "removed": scan.last.removed,
            "missing_roots": list(scan.last.missing_roots),
            "seconds": round(scan.last.seconds, 3),
        }
    return attrs


TRANSFER_SENSORS: tuple[TransferSensorEntityDescription, ...] = (
    TransferSensorEntityDescription(
        key="transfer_queue",
        translation_key="transfer_queue",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda p: p.queue_length,
        attrs_fn=lambda p: {str(k): v for k, v in sorted(p.counts.items())},
    ),
    TransferSensorEntityDescription(
        key="transfer_current",
        translation_key="transfer_current",
        value_fn=lambda p: p.current.title if p.current is not None else None,
        attrs_fn=_current_attrs,
    ),
    TransferSensorEntityDescription(
        key="transferred_today",
        translation_key="transferred_today",
        device_class=SensorDeviceClass.DATA_SIZE,
        native_unit_of_measurement=UnitOfInformation.BYTES,
        # Shown in MB (not "79,172,685,824 B"); the state stays exact bytes underneath.
        suggested_unit_of_measurement=UnitOfInformation.MEGABYTES,
        suggested_display_precision=1,
        state_class=SensorStateClass.TOTAL_INCREASING,
        value_fn=lambda p: p.transferred_today,
    ),
    TransferSensorEntityDescription(
        key="destination_free_space",
        translation_key="destination_free_space",
        device_class=SensorDeviceClass.DATA_SIZE,
        native_unit_of_measurement=UnitOfInformation.BYTES,
        suggested_unit_of_measurement=UnitOfInformation.GIGABYTES,
        suggested_display_precision=1,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda p: p.free_space,
    ),
    TransferSensorEntityDescription(
        key="scan_progress",
        translation_key="scan_progress",
        native_unit_of_measurement="files",
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda p: p.scan.seen,
        attrs_fn=_scan_attrs,
    ),
)


class TransferSensor(TransferProfileEntity, SensorEntity):
    """A sensor of a transfer profile."""

    entity_description: TransferSensorEntityDescription

    def __init__(
        self,
        manager: TransferManager,
        profile: TransferProfile,
        description: TransferSensorEntityDescription,
    ) -> None:
        """Create the sensor."""
        super().__init__(manager, profile, description.key)
        self.entity_description = description
        if description.key == "transfer_current":
            self.min_interval = 1.0  # progress: at most once a second

    @property
    def native_value(self) -> StateType:
        """Return the value."""
        return self.entity_description.value_fn(self.profile)

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """Return details."""
        return self.entity_description.attrs_fn(self.profile)


# --- watch tracking: sensors of each tracked user ----------------------------------------------


def _add_user_sensors(
    entry: PlexusConfigEntry, async_add_entities: AddConfigEntryEntitiesCallback
) -> None:
    """Add each tracked user's sensors, now and for users seen later."""
    manager = entry.runtime_data.tracking

    @callback
    def add(user: str) -> None:
        async_add_entities(
            [
                NowWatchingSensor(manager, user),
                LastWatchedSensor(manager, user),
                WatchTimeTodaySensor(manager, user),
                WatchedThisWeekSensor(manager, user),
            ]
        )

    for user in list(manager.users):
        add(user)
    entry.async_on_unload(
        async_dispatcher_connect(manager.hass, signal_tracked_users(manager.server_id), add)
    )


class NowWatchingSensor(TrackedUserEntity, SensorEntity):
    """What the user is playing now (title), with player and progress."""

    _attr_translation_key = "now_watching"

    def __init__(self, manager: TrackingManager, user: str) -> None:
        """Create the sensor."""
        super().__init__(manager, user, "now_watching")

    @property
    def native_value(self) -> StateType:
        """Return the title being played (None: nothing)."""
        session = self.manager.now_watching(self.user)
        if session is None:
            return None
        if session.media_type == "episode" and session.grandparent_title:
            return f"{session.grandparent_title} · {session.title}"[:255]
        return session.title[:255]

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """Return the player, state and progress."""
        session = self.manager.now_watching(self.user)
        if session is None:
            return {}
        progress = (
            round(100 * session.view_offset_ms / session.duration_ms, 1)
            if session.duration_ms
            else None
        )
        return {
            "player": session.player_title,
            "state": session.state,
            "media_type": session.media_type,
            "rating_key": session.rating_key,
            "season": session.season,
            "episode": session.episode,
            "progress": progress,
        }


class LastWatchedSensor(TrackedUserEntity, SensorEntity):
    """The title the user watched last, with when and where."""

    _attr_translation_key = "last_watched"
    _last: Watch | None = None

    def __init__(self, manager: TrackingManager, user: str) -> None:
        """Create the sensor."""
        super().__init__(manager, user, "last_watched")

    async def async_read_history(self) -> None:
        """Read the newest watch."""
        assert self.manager.tracker is not None
        found = await self.manager.tracker.history(self.user_id, limit=1)
        self._last = found[0] if found else None

    @property
    def native_value(self) -> StateType:
        """Return the title (show · episode for an episode)."""
        last = self._last
        if last is None:
            return None
        if last.type == "episode" and last.show_title:
            return f"{last.show_title} · {last.title}"[:255]
        return (last.title or last.rating_key)[:255]

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """Return when, what and from where it was recorded."""
        last = self._last
        if last is None:
            return {}
        return {
            "watched_at": last.watched_at.isoformat(),
            "media_type": last.type,
            "rating_key": last.rating_key,
            "season": last.season,
            "episode": last.episode,
            "source": last.source,
        }


class _StatsSensor(TrackedUserEntity, SensorEntity):
    _stats: UserStats | None = None

    async def async_read_history(self) -> None:
        """Read the user's numbers."""
        assert self.manager.tracker is not None
        self._stats = await self.manager.tracker.stats(self.user_id)


class WatchTimeTodaySensor(_StatsSensor):
    """Minutes watched today (resets at midnight: total increasing for long-term statistics)."""

    _attr_translation_key = "watch_time_today"
    _attr_device_class = SensorDeviceClass.DURATION
    _attr_native_unit_of_measurement = UnitOfTime.MINUTES
    _attr_state_class = SensorStateClass.TOTAL_INCREASING

    def __init__(self, manager: TrackingManager, user: str) -> None:
        """Create the sensor."""
        super().__init__(manager, user, "watch_time_today")

    @property
    def native_value(self) -> StateType:
        """Return the minutes."""
        return self._stats.watch_time_today_min if self._stats else 0


class WatchedThisWeekSensor(_StatsSensor):
    """Movies and episodes watched since Monday (resets weekly)."""

    _attr_translation_key = "watched_this_week"
    _attr_state_class = SensorStateClass.TOTAL_INCREASING

    def __init__(self, manager: TrackingManager, user: str) -> None:
        """Create the sensor."""
        super().__init__(manager, user, "watched_this_week")

    @property
    def native_value(self) -> StateType:
        """Return the count."""
        return self._stats.watched_this_week if self._stats else 0
