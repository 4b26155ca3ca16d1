"""Plex webhook requests: read the multipart body with a size cap, validate the ``payload`` JSON.

Plex posts ``multipart/form-data`` with a ``payload`` part (JSON) and, for some events, a ``thumb``
JPEG (any order). :func:`read_webhook` reads the parts chunk by chunk and stops the moment the body
passes :data:`MAX_BODY` (10 MiB) — every byte counts, boundaries, part headers and a preamble as
well as the parts' content, whether or not the request declares its length: nothing beyond the cap
is buffered, the thumbnail is counted and thrown away. A body of more than :data:`MAX_PARTS` parts
or :data:`MAX_LINES` lines outside the parts' content (each costs far more to parse than a byte of
content) is refused the same way. :func:`parse_payload` turns the JSON into a typed
:class:`WebhookEvent`; unknown keys are allowed, most keys are optional, values of the wrong type
read as missing, NUL characters are dropped from strings.

Every failure is a :class:`WebhookError` whose ``reason`` says what was wrong (for the 4xx answer
and the log line): ``too_large``, ``not_multipart``, ``malformed``, ``no_payload``,
``invalid_json``, ``not_an_event``. Nothing else escapes.
"""

import asyncio
from dataclasses import dataclass
import hashlib
import json
import math
from typing import Any, Final, Literal, cast

from aiohttp import BodyPartReader, ClientPayloadError, MultipartReader, StreamReader, hdrs
from aiohttp.http_exceptions import HttpProcessingError
from multidict import CIMultiDict

MAX_BODY: Final = 10 * 1024 * 1024
MAX_PAYLOAD: Final = 1024 * 1024
MAX_PARTS: Final = 16  # Plex sends one or two
MAX_LINES: Final = 1_000  # boundaries, part headers, preamble, epilogue
_CHUNK: Final = 64 * 1024

# The events Plex documents; anything else is passed through as itself.
EVENT_TYPES: Final = (
    "media.play",
    "media.pause",
    "media.resume",
    "media.stop",
    "media.scrobble",
    "media.rate",
    "library.new",
    "library.on.deck",
    "playback.started",
    "admin.database.backup",
    "admin.database.corrupted",
    "device.new",
)

type WebhookReason = Literal[
    "too_large", "not_multipart", "malformed", "no_payload", "invalid_json", "not_an_event"
]
_STATUS: Final[dict[str, int]] = {"too_large": 413, "not_multipart": 415}


class WebhookError(Exception):
    """A webhook request that cannot be accepted; ``reason`` is a short code, ``status`` a 4xx."""

    def __init__(self, reason: WebhookReason, message: str) -> None:
        """Describe the problem."""
        super().__init__(message)
        self.reason: WebhookReason = reason

    @property
    def status(self) -> int:
        """Return the HTTP status to answer with (413, 415 or 400)."""
        return _STATUS.get(self.reason, 400)


@dataclass(frozen=True, slots=True)
class Named:
    """An account, player or server as the payload names it."""

    id: str | None
    title: str | None


@dataclass(frozen=True, slots=True)
class ItemSummary:
    """The ``Metadata`` of a payload: what tracking and automations need of the item."""

    type: str | None
    rating_key: str | None
    guid: str | None
    guids: tuple[str, ...]
    title: str | None
    grandparent_title: str | None = None
    parent_title: str | None = None
    grandparent_rating_key: str | None = None
    grandparent_guid: str | None = None
    index: int | None = None
    parent_index: int | None = None
    year: int | None = None
    view_offset_ms: int | None = None
    duration_ms: int | None = None
    library: str | None = None

    @property
    def progress(self) -> float | None:
        """Return how far in the play is (0..1), when the payload says."""
        if self.view_offset_ms is None or not self.duration_ms:
            return None
        return max(0.0, min(1.0, self.view_offset_ms / self.duration_ms))

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form (for the bus event)."""
        return {
            "type": self.type,
            "rating_key": self.rating_key,
            "guid": self.guid,
            "guids": list(self.guids),
            "title": self.title,
            "grandparent_title": self.grandparent_title,
            "parent_title": self.parent_title,
            "grandparent_rating_key": self.grandparent_rating_key,
            "index": self.index,
            "parent_index": self.parent_index,
            "year": self.year,
            "view_offset_ms": self.view_offset_ms,
            "duration_ms": self.duration_ms,
            "library": self.library,
        }


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """One accepted webhook. ``digest`` is the SHA-256 of the payload bytes (duplicate check)."""

    event: str
    digest: str
    account: Named | None = None
    player: Named | None = None
    server: Named | None = None
    item: ItemSummary | None = None
    rating: float | None = None
    is_user: bool | None = None
    is_owner: bool | None = None
    player_local: bool | None = None

    @property
    def known_event(self) -> bool:
        """Return True for the events Plex documents."""
        return self.event in EVENT_TYPES

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form (for the bus event; no addresses, no thumbnails)."""

        def named(value: Named | None) -> dict[str, Any] | None:
            return None if value is None else {"id": value.id, "title": value.title}

        return {
            "event": self.event,
            "user": named(self.account),
            "player": named(self.player),
            "server": named(self.server),
            "item": None if self.item is None else self.item.as_dict(),
            "rating": self.rating,
        }


async def read_webhook(
    content_type: str | None,
    content: StreamReader,
    *,
    content_length: int | None = None,
    max_body: int = MAX_BODY,
) -> WebhookEvent:
    """Read a webhook request body (its ``Content-Type`` header and stream) into an event."""
    if content_length is not None and content_length > max_body:
        raise WebhookError("too_large", f"body of {content_length} bytes is over the cap")
    if not content_type or not content_type.lower().lstrip().startswith("multipart/form-data"):
        raise WebhookError("not_multipart", f"content type {str(content_type)[:60]!r}")
    capped = cast("StreamReader", _CappedStream(content, max_body))
    try:
        reader = MultipartReader(CIMultiDict({hdrs.CONTENT_TYPE: content_type}), capped)
    except (AssertionError, ValueError, KeyError) as err:
        raise WebhookError("not_multipart", f"not a multipart body: {err}") from err
    payload = await _payload_part(reader, max_body)
    return parse_payload(payload)


async def _payload_part(reader: MultipartReader, max_body: int) -> bytes:
    """Return the ``payload`` part's bytes, reading at most ``max_body`` bytes of all parts."""
    try:
        payload = await _read_parts(reader, max_body)
    except (
        AssertionError,
        ValueError,
        RuntimeError,
        LookupError,
        ClientPayloadError,
        HttpProcessingError,  # a part with too many or too long header lines
        asyncio.IncompleteReadError,
    ) as err:
        raise WebhookError("malformed", f"malformed multipart body: {err}") from err
    if payload is None:
        raise WebhookError("no_payload", "no 'payload' part")
    return payload


class _CappedStream:
    """The request stream as the multipart reader sees it: at most ``max_body`` bytes.

    Counts every byte handed out (less what the reader gives back) and every line, and raises
    ``WebhookError`` past either cap, wherever in the body the reader is: a part's content, its
    headers, or a preamble it skips on its own.
    """

    def __init__(self, content: StreamReader, max_body: int) -> None:
        self._content = content
        self._max_body = max_body
        self._taken = 0
        self._lines = 0

    def _count(self, data: bytes) -> bytes:
        self._taken += len(data)
        if self._taken > self._max_body:
            raise WebhookError("too_large", f"body over {self._max_body} bytes")
        return data

    async def read(self, n: int = -1) -> bytes:
        return self._count(await self._content.read(n))

    async def readline(self, *, max_line_length: int | None = None) -> bytes:
        self._lines += 1
        if self._lines > MAX_LINES:
            raise WebhookError("too_large", f"body of more than {MAX_LINES} lines")
        return self._count(await self._content.readline(max_line_length=max_line_length))

    def unread_data(self, data: bytes) -> None:
        self._taken -= len(data)
        self._content.unread_data(data)

    def at_eof(self) -> bool:
        return self._content.at_eof()


async def _read_parts(reader: MultipartReader, max_body: int) -> bytes | None:
    total = 0
    parts = 0
    payload: bytes | None = None
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            raise WebhookError("malformed", "nested multipart part")
        parts += 1
        if parts > MAX_PARTS:
            raise WebhookError("too_large", f"body of more than {MAX_PARTS} parts")
        wanted = part.name == "payload" and payload is None
        chunks: list[bytes] = []
        while chunk := await part.read_chunk(_CHUNK):
            total += len(chunk)
            if total > max_body:
                raise WebhookError("too_large", f"body over {max_body} bytes")
            if wanted:
                chunks.append(chunk)
        if wanted:
            # Raw bytes: Plex never encodes the part, and decompressing is not our job.
            payload = b"".join(chunks)
    return payload


def parse_payload(data: bytes | str) -> WebhookEvent:
    """Validate the ``payload`` JSON into a :class:`WebhookEvent` (or raise ``WebhookError``)."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if len(raw) > MAX_PAYLOAD:
        raise WebhookError("too_large", f"payload of {len(raw)} bytes is over the cap")
    digest = hashlib.sha256(raw).hexdigest()
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError) as err:
        raise WebhookError("invalid_json", f"payload is not JSON: {str(err)[:80]}") from err
    if not isinstance(doc, dict):
        raise WebhookError("not_an_event", "payload is not a JSON object")
    event = doc.get("event")
    if isinstance(event, str):
        event = event.replace("\x00", "")
    if not isinstance(event, str) or not event.strip() or len(event) > 100:
        raise WebhookError("not_an_event", "payload has no event name")
    account = _dict(doc.get("Account"))
    player = _dict(doc.get("Player"))
    server = _dict(doc.get("Server"))
    metadata = _dict(doc.get("Metadata"))
    return WebhookEvent(
        event=event.strip(),
        digest=digest,
        account=_named(account, "id"),
        player=_named(player, "uuid"),
        server=_named(server, "uuid"),
        item=_item(metadata) if metadata is not None else None,
        rating=_float(doc.get("rating")),
        is_user=_bool(doc.get("user")),
        is_owner=_bool(doc.get("owner")),
        player_local=_bool(player.get("local")) if player is not None else None,
    )


def _dict(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def _str(value: Any, limit: int = 1000) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        # NUL is never part of a name, and PostgreSQL refuses it in text columns.
        text = value.replace("\x00", "").strip()
        return text[:limit] or None
    return None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if abs(value) < 2**62 else None
    if isinstance(value, float) and math.isfinite(value) and abs(value) < 2**62:
        return int(value)
    if isinstance(value, str) and value.strip().isdecimal() and len(value) < 19:
        return int(value)
    return None


def _float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _named(doc: dict[str, Any] | None, id_key: str) -> Named | None:
    if doc is None:
        return None
    return Named(_str(doc.get(id_key), 200), _str(doc.get("title"), 200))


def _guids(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    found: list[str] = []
    for entry in value[:50]:
        guid = _str(entry.get("id")) if isinstance(entry, dict) else None
        if guid is not None and guid not in found:
            found.append(guid)
    return tuple(found)


def _item(doc: dict[str, Any]) -> ItemSummary:
    return ItemSummary(
        type=_str(doc.get("type"), 32),
        rating_key=_str(doc.get("ratingKey"), 32),
        guid=_str(doc.get("guid")),
        guids=_guids(doc.get("Guid")),
        title=_str(doc.get("title")),
        grandparent_title=_str(doc.get("grandparentTitle")),
        parent_title=_str(doc.get("parentTitle")),
        grandparent_rating_key=_str(doc.get("grandparentRatingKey"), 32),
        grandparent_guid=_str(doc.get("grandparentGuid")),
        index=_int(doc.get("index")),
        parent_index=_int(doc.get("parentIndex")),
        year=_int(doc.get("year")),
        view_offset_ms=_int(doc.get("viewOffset")),
        duration_ms=_int(doc.get("duration")),
        library=_str(doc.get("librarySectionTitle"), 255),
    )
