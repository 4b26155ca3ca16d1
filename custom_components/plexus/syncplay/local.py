"""An in-process transport, for groups whose members are all in this Home Assistant."""

import asyncio
from collections.abc import Callable

from .interfaces import MessageCallback, Unsubscribe


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT topic-filter matching (`+` one level, `#` the rest)."""
    filter_parts = topic_filter.split("/")
    topic_parts = topic.split("/")
    for index, part in enumerate(filter_parts):
        if part == "#":
            return True
        if index >= len(topic_parts) or (part not in ("+", topic_parts[index])):
            return False
    return len(filter_parts) == len(topic_parts)


class LocalBus:
    """Deliver every published message to the matching subscribers, in the event loop."""

    def __init__(self) -> None:
        """An empty bus."""
        self._subscriptions: list[tuple[str, MessageCallback]] = []

    async def publish(self, topic: str, payload: bytes) -> None:
        """Deliver on the next loop iteration (as a broker would, never re-entrantly)."""
        loop = asyncio.get_running_loop()
        for topic_filter, callback in list(self._subscriptions):
            if topic_matches(topic_filter, topic):
                loop.call_soon(callback, topic, payload)

    async def subscribe(self, topic_filter: str, callback: MessageCallback) -> Unsubscribe:
        """Subscribe; the returned callable unsubscribes."""
        entry = (topic_filter, callback)
        self._subscriptions.append(entry)
        return _remover(self._subscriptions, entry)


def _remover(
    subscriptions: list[tuple[str, MessageCallback]], entry: tuple[str, MessageCallback]
) -> Callable[[], None]:
    def remove() -> None:
        if entry in subscriptions:
            subscriptions.remove(entry)

    return remove
