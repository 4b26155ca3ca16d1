"""What every part of one engine shares: settings, clock, codec, tasks, the timeline, callbacks."""

from collections.abc import Callable
import logging
from typing import Any

from .interfaces import Clock, EventCallback, Transport
from .model import Session, SyncConfig
from .protocol import MessageCodec
from .tasks import TaskSupervisor

_LOGGER = logging.getLogger(__name__)


class EngineContext:
    """The state and I/O the engine's parts (peers, clocks, commands, driver, drift) share."""

    def __init__(
        self,
        config: SyncConfig,
        clock: Clock,
        transport: Transport,
        *,
        on_event: EventCallback | None = None,
        on_update: Callable[[], None] | None = None,
    ) -> None:
        """Shared state of one engine; nothing runs yet."""
        self.config = config
        self.clock = clock
        self.transport = transport
        self.tasks = TaskSupervisor(config.group)
        self.codec = MessageCodec(
            config.group,
            config.secret,
            config.instance_id,
            clock,
            window_s=config.replay_window_s,
        )
        self._on_event = on_event
        self._on_update = on_update
        # The group's timeline as this instance follows it (None: nothing playing).
        self.session: Session | None = None
        self.running = False

    @property
    def instance_id(self) -> str:
        """The id of this instance."""
        return self.config.instance_id

    def member_id(self, player_id: str) -> str:
        """Group-wide id of a local player."""
        return f"{self.instance_id}/{player_id}"

    def wall_to_monotonic(self, wall: float) -> float:
        """An instant on our wall clock as our monotonic time."""
        return wall - self.clock.now() + self.clock.monotonic()

    def event(self, kind: str, data: dict[str, Any]) -> None:
        """Tell the host about something that happened (a failing callback is logged once)."""
        if self._on_event is not None:
            try:
                self._on_event(kind, {"group": self.config.group, **data})
            except Exception as err:  # noqa: BLE001 - the host's callback must not stop us
                self.tasks.log.failed("the event callback", err)

    def update(self) -> None:
        """Tell the host the group's state changed (a failing callback is logged once)."""
        if self._on_update is not None:
            try:
                self._on_update()
            except Exception as err:  # noqa: BLE001 - the host's callback must not stop us
                self.tasks.log.failed("the update callback", err)

    async def publish(self, kind: str, body: dict[str, Any], to: str | None = None) -> None:
        """Sign and send a message to the group (or one instance); failures are only logged."""
        base = self.config.base_topic
        topic = f"{base}/to/{to}" if to else f"{base}/all"
        try:
            await self.transport.publish(topic, self.codec.encode(kind, body, to=to))
        except Exception as err:  # noqa: BLE001 - any transport failure: heartbeats recover
            _LOGGER.debug("Sync group %s: publish failed: %s", self.config.group, err)
