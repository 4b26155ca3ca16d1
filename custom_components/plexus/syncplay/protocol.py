"""Signed, replay-protected group messages.

Wire format (UTF-8 JSON object)::

    {"v": 1, "group": "<group>", "sender": "<instance id>", "seq": <int>, "ts": <sender wall s>,
     "type": "<kind>", "to": "<instance id>" | null, "body": {...}, "sig": "<hex>"}

`sig` is HMAC-SHA256 with the group secret over the canonical form of every other field
(`json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)`). Sequence numbers
start at the sender's wall-clock microseconds and count up by one, so a restarted sender
continues above its old numbers (it would have to send a million messages a second to catch up
with the clock); a receiver accepts each (sender, seq) once, within a window of recent numbers,
and only when `ts` is within the replay window of its own clock (corrected by the sender's
estimated offset when known).
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
import hashlib
import hmac
import json
import logging
import math
from typing import Any, Final

from .interfaces import Clock

_LOGGER = logging.getLogger(__name__)

PROTOCOL_VERSION: Final = 1
SEQ_WINDOW: Final = 1024
MAX_WARNED: Final = 1000


class DropReason(StrEnum):
    """Why a message was dropped."""

    MALFORMED = "malformed"
    UNSIGNED = "unsigned"
    BAD_SIGNATURE = "bad_signature"
    WRONG_GROUP = "wrong_group"
    OUT_OF_WINDOW = "out_of_window"
    REPLAYED = "replayed"


@dataclass(frozen=True, slots=True)
class Message:
    """A verified message."""

    group: str
    sender: str
    seq: int
    ts: float
    type: str
    body: dict[str, Any]
    to: str | None = None


def canonical(fields: Mapping[str, Any]) -> bytes:
    """The canonical bytes of a message body (sorted keys, compact, no NaN)."""
    return json.dumps(
        fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def sign(secret: bytes, fields: Mapping[str, Any]) -> str:
    """HMAC-SHA256 of the canonical form, hex."""
    return hmac.new(secret, canonical(fields), hashlib.sha256).hexdigest()


class _SeqWindow:
    """Accept each sequence number once, within SEQ_WINDOW of the highest seen."""

    __slots__ = ("highest", "seen")

    def __init__(self) -> None:
        self.highest = -1
        self.seen: set[int] = set()

    def accept(self, seq: int) -> bool:
        if seq <= self.highest - SEQ_WINDOW or seq in self.seen:
            return False
        self.seen.add(seq)
        if seq > self.highest:
            self.highest = seq
            floor = seq - SEQ_WINDOW
            if len(self.seen) > 2 * SEQ_WINDOW:
                self.seen = {s for s in self.seen if s > floor}
        return True


class MessageCodec:
    """Encode outgoing and verify incoming messages of one group for one instance."""

    def __init__(
        self,
        group: str,
        secret: str | bytes,
        sender: str,
        clock: Clock,
        *,
        window_s: float = 30.0,
    ) -> None:
        """Use `secret` (never logged) for `group`, as instance `sender`."""
        self.group = group
        self._secret = secret.encode() if isinstance(secret, str) else secret
        self.sender = sender
        self._clock = clock
        self.window_s = window_s
        self._seq = int(clock.now() * 1_000_000)
        self._windows: dict[str, _SeqWindow] = {}
        self._warned: set[str] = set()
        self.dropped: dict[str, int] = {reason.value: 0 for reason in DropReason}
        self.accepted = 0

    def set_secret(self, secret: str | bytes) -> None:
        """Change the group secret."""
        self._secret = secret.encode() if isinstance(secret, str) else secret

    def encode(self, kind: str, body: Mapping[str, Any], *, to: str | None = None) -> bytes:
        """A signed message from this instance."""
        self._seq += 1
        fields: dict[str, Any] = {
            "v": PROTOCOL_VERSION,
            "group": self.group,
            "sender": self.sender,
            "seq": self._seq,
            "ts": self._clock.now(),
            "type": kind,
            "to": to,
            "body": dict(body),
        }
        fields["sig"] = sign(self._secret, fields)
        return canonical(fields)

    def decode(
        self, payload: bytes, offset_of: Callable[[str], float | None] | None = None
    ) -> Message | None:
        """The verified message, or None (dropped and counted, or our own echo).

        `offset_of(sender)` gives the sender's clock minus ours in seconds when known.
        """
        try:
            data = json.loads(payload)
        except ValueError:
            return self._drop(DropReason.MALFORMED, None)
        if not isinstance(data, dict):
            return self._drop(DropReason.MALFORMED, None)
        claimed = data.get("sender")
        claimed = claimed if isinstance(claimed, str) else None
        sig = data.pop("sig", None)
        if sig is None:
            return self._drop(DropReason.UNSIGNED, claimed)
        try:
            expected = sign(self._secret, data)
        except ValueError, TypeError:
            return self._drop(DropReason.MALFORMED, claimed)
        if not isinstance(sig, str) or not hmac.compare_digest(sig, expected):
            return self._drop(DropReason.BAD_SIGNATURE, claimed)
        message = _parse(data)
        if message is None:
            return self._drop(DropReason.MALFORMED, claimed)
        if message.group != self.group:
            return self._drop(DropReason.WRONG_GROUP, claimed)
        if message.sender == self.sender:
            return None  # our own message, echoed by the broker
        offset = (offset_of(message.sender) if offset_of else None) or 0.0
        if abs(message.ts - offset - self._clock.now()) > self.window_s:
            return self._drop(DropReason.OUT_OF_WINDOW, claimed)
        window = self._windows.setdefault(message.sender, _SeqWindow())
        if not window.accept(message.seq):
            return self._drop(DropReason.REPLAYED, claimed)
        self.accepted += 1
        return message

    def _drop(self, reason: DropReason, sender: str | None) -> Message | None:
        self.dropped[reason.value] += 1
        key = sender or "?"
        if key not in self._warned and len(self._warned) < MAX_WARNED:
            self._warned.add(key)
            _LOGGER.warning(
                "Sync group %s: dropping a message (%s) claiming to be from %s;"
                " further drops from this sender are only counted",
                self.group,
                reason.value,
                key[:64],
            )
        return None


def _parse(data: dict[str, Any]) -> Message | None:
    group, sender, seq, ts = data.get("group"), data.get("sender"), data.get("seq"), data.get("ts")
    kind, body, to = data.get("type"), data.get("body"), data.get("to")
    if (
        data.get("v") != PROTOCOL_VERSION
        or not isinstance(group, str)
        or not isinstance(sender, str)
        or not sender
        or not isinstance(seq, int)
        or isinstance(seq, bool)
        or not isinstance(ts, int | float)
        or isinstance(ts, bool)
        or not math.isfinite(ts)
        or not isinstance(kind, str)
        or not isinstance(body, dict)
        or not (to is None or isinstance(to, str))
    ):
        return None
    return Message(group, sender, seq, float(ts), kind, body, to)
