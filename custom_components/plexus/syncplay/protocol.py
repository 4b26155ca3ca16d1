"""Signed, bounded, replay-protected group messages.

Wire format (UTF-8 JSON object, at most `MAX_MESSAGE_BYTES`, nested at most `MAX_DEPTH` deep)::

    {"v": 1, "group": "<group>", "sender": "<instance id>", "epoch": "<run id>", "seq": <int>,
     "ts": <sender wall s>, "type": "<kind>", "to": "<instance id>" | null, "body": {...},
     "sig": "<hex>"}

`sig` is HMAC-SHA256 with the group secret over the canonical form of every other field
(`json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)`).

A message is bounded before anything else: one larger than `MAX_MESSAGE_BYTES` or with more
than `MAX_CONTAINERS` objects and lists is dropped without being decoded, and the parser
(orjson) output deeper than `MAX_DEPTH` is dropped as malformed, so no message can cost more
than a few milliseconds or raise out of `decode`.

Replays: each run of a sender (each `MessageCodec`, renewed by `new_epoch()`) has a random
`epoch` and numbers its messages from 1. A receiver tracks the sequence numbers per (sender,
epoch) in a sliding window (out-of-order arrivals within the window are accepted once,
duplicates and numbers older than the window are not); a sender's new epoch starts a new
window, and the epochs it left are refused from then on. So a sequence number far ahead can at
worst silence the rest of that one run, never the sender's next one. Every message must also
carry a `ts` within the replay window of the receiver's clock (corrected by the sender's
estimated offset when known).
"""

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
import hashlib
import hmac
import json
import math
import re
import secrets
from typing import Any, Final

import orjson

from .drops import DropLog
from .interfaces import Clock

PROTOCOL_VERSION: Final = 1
SEQ_WINDOW: Final = 1024
MAX_MESSAGE_BYTES: Final = 64 * 1024
MAX_DEPTH: Final = 32
# Objects and lists in one message (a hello lists two per member; a real one has a few dozen).
MAX_CONTAINERS: Final = 1024
# Epochs of one sender remembered as finished (their messages are refused).
RETIRED_EPOCHS: Final = 16
_LONG_DIGITS: Final = re.compile(rb"\d{19}")


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
    epoch: str = ""


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


class _SenderState:
    """The epoch a sender is in, its sequence window, and the epochs it left."""

    __slots__ = ("epoch", "retired", "window")

    def __init__(self, epoch: str) -> None:
        self.epoch = epoch
        self.window = _SeqWindow()
        self.retired: deque[str] = deque(maxlen=RETIRED_EPOCHS)

    def accept(self, epoch: str, seq: int) -> bool:
        if epoch != self.epoch:
            if epoch in self.retired:
                return False
            self.retired.append(self.epoch)
            self.epoch = epoch
            self.window = _SeqWindow()
        return self.window.accept(seq)


def bounded_loads(payload: bytes) -> Any:
    """Parse a message: ValueError when it is too large, not JSON, or nested too deep.

    The size and the number of objects and lists (by their opening brackets) are checked
    before any decoding; the depth after orjson's (its own limit, 1024, is far above anything
    a message needs), walking at most `MAX_CONTAINERS` containers. Any failure is a ValueError.
    """
    if len(payload) > MAX_MESSAGE_BYTES:
        raise ValueError("message too large")
    # Opening brackets (those inside strings too): an upper bound of the containers.
    brackets = payload.count(b"{") + payload.count(b"[")
    if brackets > MAX_CONTAINERS:
        raise ValueError("too many objects and lists in one message")
    data = orjson.loads(payload)  # orjson.JSONDecodeError is a ValueError
    # Fewer brackets than the limit cannot nest deeper than it: skip the walk (most messages).
    if brackets > MAX_DEPTH:
        _check_depth(data)
    if _LONG_DIGITS.search(payload):
        # orjson reads integers beyond 64 bits as floats; the standard library keeps them
        # exact (and cannot recurse deeply any more: the depth is known to be small).
        data = json.loads(payload)
    return data


def _check_depth(data: Any) -> None:
    """ValueError when objects/lists nest deeper than MAX_DEPTH (walked level by level)."""
    level: list[Any] = [data]
    for _ in range(MAX_DEPTH):
        below: list[Any] = []
        for value in level:
            children: Iterable[Any] = value.values() if isinstance(value, dict) else value
            below.extend(c for c in children if isinstance(c, dict | list))
        if not below:
            return
        level = below
    raise ValueError("message nested too deep")


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
        self.epoch = secrets.token_hex(8)
        self._seq = 0
        self._senders: dict[str, _SenderState] = {}
        self.drops = DropLog(group, clock.monotonic, [reason.value for reason in DropReason])
        self.accepted = 0

    @property
    def dropped(self) -> dict[str, int]:
        """Messages dropped so far, by reason."""
        return self.drops.totals

    def new_epoch(self) -> None:
        """Start a new run: a new random epoch, sequence numbers from 1 again."""
        self.epoch = secrets.token_hex(8)
        self._seq = 0

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
            "epoch": self.epoch,
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

        `offset_of(sender)` gives the sender's clock minus ours in seconds when known. Never
        raises: anything that is not a well-formed, signed message of this group is dropped.
        """
        try:
            data = bounded_loads(payload)
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
        state = self._senders.get(message.sender)
        if state is None:
            state = self._senders[message.sender] = _SenderState(message.epoch)
        if not state.accept(message.epoch, message.seq):
            return self._drop(DropReason.REPLAYED, claimed)
        self.accepted += 1
        return message

    def count_drop(self, reason: DropReason, sender: str | None) -> None:
        """Count (and in time summarise in the log) one dropped message."""
        self.drops.drop(reason.value, sender)

    def _drop(self, reason: DropReason, sender: str | None) -> Message | None:
        self.count_drop(reason, sender)
        return None


def _parse(data: dict[str, Any]) -> Message | None:
    group, sender, seq, ts = data.get("group"), data.get("sender"), data.get("seq"), data.get("ts")
    epoch = data.get("epoch")
    kind, body, to = data.get("type"), data.get("body"), data.get("to")
    if (
        data.get("v") != PROTOCOL_VERSION
        or not isinstance(group, str)
        or not isinstance(sender, str)
        or not sender
        or not isinstance(epoch, str)
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
    return Message(group, sender, seq, float(ts), kind, body, to, epoch)
