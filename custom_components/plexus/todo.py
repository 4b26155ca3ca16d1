"""To-do lists of Plexus.

Watch tracking: an "Up Next" list per tracked user — the next unwatched episode of every show in
progress, the most recently watched show first. Checking an item off marks the episode watched in
the history and, when the option "mark watched in Plex" is on, on the server too (as the account
Plexus signed in with: Plex keeps watched states per account).
"""

from __future__ import annotations

from homeassistant.components.todo import (
    TodoItem,
    TodoItemStatus,
    TodoListEntity,
    TodoListEntityFeature,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .ids import signal_tracked_users
from .runtime import PlexusConfigEntry
from .tracking import UpNext
from .tracking_entity import TrackedUserEntity
from .tracking_manager import TrackingManager

PARALLEL_UPDATES = 1


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PlexusConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add an Up Next list per tracked user, now and for users seen later."""
    manager = entry.runtime_data.tracking

    @callback
    def add(user: str) -> None:
        async_add_entities([UpNextTodoList(manager, user)])

    for user in list(manager.users):
        add(user)
    entry.async_on_unload(
        async_dispatcher_connect(hass, signal_tracked_users(manager.server_id), add)
    )


# --- watch tracking: Up Next ------------------------------------------------------------------


def _summary(entry: UpNext) -> str:
    show = entry.show_title or "?"
    return f"{show} · S{entry.season:02d}E{entry.episode:02d} · {entry.title}"


class UpNextTodoList(TrackedUserEntity, TodoListEntity):
    """The next episode of each show the user is watching."""

    _attr_translation_key = "up_next"
    _attr_supported_features = TodoListEntityFeature.UPDATE_TODO_ITEM

    def __init__(self, manager: TrackingManager, user: str) -> None:
        """Create the list."""
        super().__init__(manager, user, "up_next")
        self._entries: list[UpNext] = []

    async def async_read_history(self) -> None:
        """Read Up Next from the history and the catalog."""
        assert self.manager.tracker is not None
        self._entries = await self.manager.tracker.up_next(self.user_id)

    @property
    def todo_items(self) -> list[TodoItem]:
        """Return one item per show in progress (uid: the episode's rating key)."""
        return [
            TodoItem(
                summary=_summary(entry),
                uid=entry.rating_key,
                status=TodoItemStatus.NEEDS_ACTION,
                description=f"Last watched {entry.last_watched_at.date().isoformat()}",
            )
            for entry in self._entries
        ]

    async def async_update_todo_item(self, item: TodoItem) -> None:
        """Checking an episode off marks it watched (and on the server with the option).

        Home Assistant's `todo.update_item` hands over one of `todo_items` (it refuses an item
        not on the list itself), so `item.uid` is the rating key of a listed episode.
        """
        if item.status != TodoItemStatus.COMPLETED:
            return  # nothing to undo: an unchecked item is simply the next episode
        assert item.uid is not None  # each listed item has its rating key as uid
        await self.manager.async_mark_watched(self.user, self.user_id, item.uid)
        await self.async_read_history()
        self.async_write_ha_state()
