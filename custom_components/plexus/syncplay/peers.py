"""The other instances of the group: who is there, with which members, heard from when.

Every instance announces itself with a `hello` (at start, on every heartbeat, after a
reconnect and when it meets a new peer): its home, its clock epoch, its members and the
session it follows. A `status` updates the members' state between hellos; a `bye` or silence
longer than `expire_after_s` removes the peer.

Joined means heard both ways: a peer counts as a member of the group (its members are listed)
only once its hello shows it heard this instance's current `link` id. The link id is new at
every start and after every reconnect of the transport, and a reconnect also forgets the
peers' link ids; so when the group lists every member again after a reconnect, each of them
has received a message broadcast after it - its subscription works again - and a command
broadcast now reaches it. (Before, the peers stayed listed through the reconnect, and a
command sent before a peer had re-subscribed was lost: that peer only followed on the next
hello, seconds late.) A hello from a peer that has not heard us, or that shows a new link id
of its own, is answered with our hello, so the handshake takes one round trip.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
import logging
import secrets
from typing import Any

from .clock import ClockSync
from .context import EngineContext
from .interfaces import MediaRef
from .model import number, position

_LOGGER = logging.getLogger(__name__)

type Reports = Callable[[bool], dict[str, dict[str, Any]]]
type SessionHandler = Callable[[str, dict[str, Any]], None]


@dataclass(slots=True)
class Peer:
    """Another instance of the group, as its messages describe it."""

    instance_id: str
    home: str
    last_seen: float
    epoch: int
    members: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The peer's link id we last heard (None: not since our last (re)connect).
    link: str | None = None
    # The peer heard our current link id: messages reach it both ways.
    joined: bool = False


class Membership:
    """The peers this instance knows, kept from their hello/status/bye messages."""

    def __init__(
        self,
        ctx: EngineContext,
        clocks: ClockSync,
        local_reports: Reports,
        on_session: SessionHandler,
    ) -> None:
        """Peers of the engine sharing `ctx`.

        `local_reports(full)` describes this instance's members; `on_session(sender, data)`
        gets the (checked) session a peer's hello shows.
        """
        self._ctx = ctx
        self._clocks = clocks
        self._local_reports = local_reports
        self._on_session = on_session
        self.peers: dict[str, Peer] = {}
        self.link = secrets.token_hex(4)

    def reconnected(self) -> None:
        """Our transport reconnected: every peer must show again that it hears us."""
        self.link = secrets.token_hex(4)
        for peer in self.peers.values():
            peer.link = None
            peer.joined = False
        self._ctx.update()

    def joined(self) -> list[Peer]:
        """The peers heard both ways since our last (re)connect."""
        return [peer for peer in self.peers.values() if peer.joined]

    def seen(self, instance_id: str) -> None:
        """Any message from a peer keeps it alive."""
        if (peer := self.peers.get(instance_id)) is not None:
            peer.last_seen = self._ctx.clock.monotonic()

    async def send_hello(self) -> None:
        """Announce this instance, its members and the session it follows."""
        ctx = self._ctx
        body: dict[str, Any] = {
            "home": ctx.config.home,
            "epoch": self._clocks.epoch,
            "members": self._local_reports(True),
            "link": self.link,
            "heard": {p.instance_id: p.link for p in self.peers.values() if p.link},
        }
        session = ctx.session
        if session is not None:
            body["session"] = {
                "gen": session.gen,
                "cid": session.cid,
                "leader": session.leader,
                "media": session.media.as_dict() if session.media else None,
                "state": session.state,
                "position_ms": session.position_at(ctx.clock.monotonic()),
                "at": ctx.clock.now(),
            }
        await ctx.publish("hello", body)

    def on_hello(self, sender: str, body: dict[str, Any]) -> None:
        """A peer announced itself (ValueError/TypeError when its body is unusable)."""
        ctx = self._ctx
        peer = self.peers.get(sender)
        epoch = int(body.get("epoch", 0))
        if peer is None:
            peer = Peer(sender, str(body.get("home", "")), ctx.clock.monotonic(), epoch)
            self.peers[sender] = peer
            self._clocks.add_peer(sender)
        elif epoch != peer.epoch:
            peer.epoch = epoch
            self._clocks.reset_peer(sender)
        link, heard = body.get("link"), body.get("heard")
        new_link = link != peer.link
        peer.link = link if isinstance(link, str) else None
        peer.joined = isinstance(heard, dict) and heard.get(ctx.instance_id) == self.link
        if new_link or not peer.joined:
            ctx.tasks.spawn(self.send_hello())
        peer.home = str(body.get("home", peer.home))
        members = body.get("members")
        if isinstance(members, dict):
            # A member described by anything but an object is not taken (nor announced).
            listed = {k: dict(v) for k, v in members.items() if isinstance(v, dict)}
            for member_id in set(peer.members) - set(listed):
                ctx.event("member_left", {"member_id": member_id, "home": peer.home})
            for member_id in listed:
                if member_id not in peer.members:
                    ctx.event("member_joined", {"member_id": member_id, "home": peer.home})
            peer.members = listed
        session = body.get("session")
        if isinstance(session, dict):
            check_session(session)
            self._on_session(sender, session)
        ctx.update()

    def on_status(self, sender: str, body: dict[str, Any]) -> None:
        """A peer's members changed state."""
        peer = self.peers.get(sender)
        members = body.get("members")
        if peer is None or not isinstance(members, dict):
            return
        for member_id, item in members.items():
            if member_id in peer.members and isinstance(item, dict):
                peer.members[member_id].update(item)
        self._ctx.update()

    def drop(self, instance_id: str) -> None:
        """A peer left (or went silent): its members leave with it."""
        peer = self.peers.pop(instance_id, None)
        self._clocks.remove_peer(instance_id)
        if peer is None:
            return
        for member_id in peer.members:
            self._ctx.event("member_left", {"member_id": member_id, "home": peer.home})
        self._ctx.update()

    def expire(self) -> None:
        """Drop every peer not heard from for `expire_after_s`."""
        ctx = self._ctx
        now = ctx.clock.monotonic()
        for peer in list(self.peers.values()):
            if now - peer.last_seen > ctx.config.expire_after_s:
                _LOGGER.info("Sync group %s: %s went silent", ctx.config.group, peer.instance_id)
                self.drop(peer.instance_id)

    def with_members(self) -> set[str]:
        """The peers that have members (whose readiness a start waits for)."""
        return {p.instance_id for p in self.peers.values() if p.members}

    def latencies(self) -> list[float]:
        """The command latencies the peers report for their members, seconds."""
        return [
            latency / 1000.0
            for peer in self.peers.values()
            for item in peer.members.values()
            if (latency := number(item.get("latency_ms"))) is not None
        ]


def check_session(data: dict[str, Any]) -> None:
    """Raise ValueError when a hello's session is incomplete."""
    if (
        not isinstance(data.get("gen"), int)
        or not isinstance(data.get("cid"), str)
        or not isinstance(data.get("leader"), str)
        or not isinstance(data.get("state"), str)
        or position(data.get("position_ms")) is None
        or number(data.get("at")) is None
    ):
        raise ValueError("incomplete session")
    if data["state"] in ("playing", "paused"):
        MediaRef.from_dict(data.get("media"))
