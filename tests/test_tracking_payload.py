"""Webhook payloads: every real capture, every event type, and every kind of bad request."""

import asyncio
import contextlib
import json
from pathlib import Path
from unittest.mock import Mock

from aiohttp import StreamReader
from hypothesis import HealthCheck, given, settings, strategies as st
import pytest

from custom_components.plexus.tracking.payload import (
    EVENT_TYPES,
    MAX_BODY,
    MAX_LINES,
    MAX_PARTS,
    WebhookError,
    WebhookEvent,
    parse_payload,
    read_webhook,
)

FIXTURES = Path(__file__).parent / "fixtures"
REAL = {p.name: p.read_bytes() for p in sorted((FIXTURES / "webhooks").glob("*.json"))}
SYNTHETIC = {
    p.name: p.read_bytes() for p in sorted((FIXTURES / "webhooks-synthetic").glob("*.json"))
}
BOUNDARY = "------------------------plexus0123456789"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def multipart(*parts: tuple[str, bytes, str]) -> bytes:
    """A body like Plex sends: each part (name, content, content type)."""
    body = b""
    for name, content, ctype in parts:
        filename = '; filename="thumb.jpg"' if name == "thumb" else ""
        body += (
            (
                f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"{filename}\r\n'
                f"Content-Type: {ctype}\r\n\r\n"
            ).encode()
            + content
            + b"\r\n"
        )
    return body + f"--{BOUNDARY}--\r\n".encode()


def stream(body: bytes) -> StreamReader:
    reader = StreamReader(Mock(_reading_paused=False), 2**16, loop=asyncio.get_running_loop())
    reader.feed_data(body)
    reader.feed_eof()
    return reader


async def read(body: bytes, content_type: str | None = CONTENT_TYPE, **kwargs: int) -> WebhookEvent:
    return await read_webhook(content_type, stream(body), **kwargs)


THUMB = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40


@pytest.mark.parametrize("name", REAL)
async def test_every_real_payload(name: str) -> None:
    raw = REAL[name]
    doc = json.loads(raw)
    # With a thumbnail before the payload, and without one: same event.
    event = await read(
        multipart(("thumb", THUMB, "image/jpeg"), ("payload", raw, "application/json"))
    )
    assert event == await read(multipart(("payload", raw, "application/json")))
    assert event.event == doc["event"] == name.split("-", maxsplit=1)[0]
    assert event.known_event
    assert event.account is not None
    assert event.account.title == doc["Account"]["title"]
    assert event.server is not None
    assert event.server.id == doc["Server"]["uuid"]
    assert (event.player is None) == ("Player" not in doc)
    item = event.item
    assert item is not None
    meta = doc["Metadata"]
    assert (item.type, item.rating_key, item.guid, item.title) == (
        meta["type"],
        meta["ratingKey"],
        meta["guid"],
        meta["title"],
    )
    assert list(item.guids) == [g["id"] for g in meta.get("Guid", [])]
    assert item.year == meta.get("year")
    assert event.as_dict()["item"]["rating_key"] == meta["ratingKey"]


async def test_real_episode_fields() -> None:
    event = parse_payload(REAL["media.pause-1.json"])
    item = event.item
    assert item is not None
    assert (item.grandparent_title, item.parent_index, item.index) == ("Bob's Burgers", 9, 15)
    assert (item.grandparent_rating_key, item.grandparent_guid) == (
        "146560",
        "plex://show/5d9c0855ffd9ef001e991de0",
    )
    assert (item.view_offset_ms, item.duration_ms) == (622000, 1320000)
    assert item.progress == pytest.approx(622000 / 1320000)
    assert (event.is_user, event.is_owner, event.player_local) == (False, True, True)
    rated = parse_payload(REAL["media.rate-1.json"])
    assert rated.rating == 4.0
    # PHP-escaped slashes decode to the same GUID.
    assert rated.item is not None
    assert rated.item.guid == "plex://movie/5d7768313c3c2a001fbcd1f0"


@pytest.mark.parametrize("name", SYNTHETIC)
async def test_every_event_type(name: str) -> None:
    doc = json.loads(SYNTHETIC[name])
    event = await read(multipart(("payload", SYNTHETIC[name], "application/json")))
    assert event.event == doc["event"]
    assert (event.item is None) == ("Metadata" not in doc)
    if event.item is not None:
        # The malformed Guid entry is dropped, the others kept.
        assert all("://" in g for g in event.item.guids)


def test_synthetic_set_covers_every_event() -> None:
    events = {json.loads(raw)["event"] for raw in SYNTHETIC.values()}
    assert set(EVENT_TYPES) <= events
    unknown = events - set(EVENT_TYPES)
    assert unknown == {"media.teleport"}
    passed = parse_payload(SYNTHETIC["unknown.event.json"])
    assert passed.event == "media.teleport"
    assert not passed.known_event


OK_PAYLOAD = REAL["media.scrobble-1.json"]


@pytest.mark.parametrize(
    ("body", "content_type", "reason", "status"),
    [
        (OK_PAYLOAD, "application/json", "not_multipart", 415),
        (b"payload=%7B%7D", "application/x-www-form-urlencoded", "not_multipart", 415),
        (OK_PAYLOAD, None, "not_multipart", 415),
        (OK_PAYLOAD, "multipart/form-data", "not_multipart", 415),  # no boundary
        (b"garbage without any boundary", CONTENT_TYPE, "malformed", 400),
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="payload"\r\n\r\n{{"ev'.encode(),
            CONTENT_TYPE,
            "malformed",
            400,
        ),
        (multipart(("thumb", THUMB, "image/jpeg")), CONTENT_TYPE, "no_payload", 400),
        (multipart(("Payload", OK_PAYLOAD, "application/json")), CONTENT_TYPE, "no_payload", 400),
        (
            multipart(("payload", b"{not json", "application/json")),
            CONTENT_TYPE,
            "invalid_json",
            400,
        ),
        (
            multipart(("payload", b"\xff\xfe{}", "application/json")),
            CONTENT_TYPE,
            "invalid_json",
            400,
        ),
        (multipart(("payload", b"[1, 2]", "application/json")), CONTENT_TYPE, "not_an_event", 400),
        (
            multipart(("payload", b'{"Account": {}}', "text/plain")),
            CONTENT_TYPE,
            "not_an_event",
            400,
        ),
        (multipart(("payload", b'{"event": 5}', "text/plain")), CONTENT_TYPE, "not_an_event", 400),
        (
            multipart(("payload", b'{"event": "  "}', "text/plain")),
            CONTENT_TYPE,
            "not_an_event",
            400,
        ),
    ],
    ids=[
        "json-body",
        "urlencoded",
        "no-content-type",
        "no-boundary",
        "no-parts",
        "truncated",
        "thumb-only",
        "wrong-part-name",
        "invalid-json",
        "not-utf8",
        "json-array",
        "no-event",
        "event-not-string",
        "event-blank",
    ],
)
async def test_bad_requests(
    body: bytes, content_type: str | None, reason: str, status: int
) -> None:
    with pytest.raises(WebhookError) as caught:
        await read(body, content_type)
    assert (caught.value.reason, caught.value.status) == (reason, status)


async def test_oversized_body_stops_reading_at_the_cap() -> None:
    big_thumb = b"\x00" * (MAX_BODY + 5 * 65536)
    body = multipart(
        ("thumb", big_thumb, "image/jpeg"), ("payload", OK_PAYLOAD, "application/json")
    )
    reader = stream(body)
    with pytest.raises(WebhookError) as caught:
        await read_webhook(CONTENT_TYPE, reader)
    assert (caught.value.reason, caught.value.status) == ("too_large", 413)
    # What is left unread is everything past the cap, less at most a chunk or two.
    left = len(await reader.read())
    assert left >= len(body) - MAX_BODY - 3 * 65536


async def test_declared_length_over_the_cap_is_refused_unread() -> None:
    reader = stream(multipart(("payload", OK_PAYLOAD, "application/json")))
    with pytest.raises(WebhookError) as caught:
        await read_webhook(CONTENT_TYPE, reader, content_length=MAX_BODY + 1)
    assert caught.value.reason == "too_large"
    assert len(await reader.read()) > len(OK_PAYLOAD)
    # A smaller cap applies to the payload part as well.
    with pytest.raises(WebhookError, match="over"):
        await read(multipart(("payload", OK_PAYLOAD, "application/json")), max_body=100)


async def test_framing_counts_against_the_cap() -> None:
    """Bytes outside the parts' content count: a preamble of 12 MiB of long lines is refused."""
    line = b"p" * 60_000 + b"\r\n"
    body = line * 210 + multipart(("payload", OK_PAYLOAD, "application/json"))
    reader = stream(body)
    with pytest.raises(WebhookError) as caught:
        await read_webhook(CONTENT_TYPE, reader)
    assert (caught.value.reason, caught.value.status) == ("too_large", 413)
    assert len(await reader.read()) >= len(body) - MAX_BODY - 2 * len(line)


@pytest.mark.parametrize(
    "body",
    [
        multipart(*[("x", b"", "text/plain")] * (MAX_PARTS + 1), ("payload", OK_PAYLOAD, "a/b")),
        b"\r\n" * (MAX_LINES + 1) + multipart(("payload", OK_PAYLOAD, "application/json")),
    ],
    ids=["many-empty-parts", "many-preamble-lines"],
)
async def test_cheap_bytes_costly_to_parse_are_refused(body: bytes) -> None:
    """Many empty parts, or many empty lines before the first boundary, well under 10 MiB."""
    with pytest.raises(WebhookError) as caught:
        await read(body)
    assert (caught.value.reason, caught.value.status) == ("too_large", 413)


async def test_too_many_part_headers_is_malformed() -> None:
    """A part with 200 header lines (aiohttp allows 128): a WebhookError, not aiohttp's own."""
    head = f"--{BOUNDARY}\r\n".encode() + b"X-A: b\r\n" * 200 + b"\r\n"
    with pytest.raises(WebhookError) as caught:
        await read(head + b"x\r\n" + multipart(("payload", OK_PAYLOAD, "application/json")))
    assert (caught.value.reason, caught.value.status) == ("malformed", 400)


def test_same_payload_same_digest() -> None:
    assert parse_payload(OK_PAYLOAD).digest == parse_payload(OK_PAYLOAD.decode()).digest
    assert parse_payload(OK_PAYLOAD).digest != parse_payload(OK_PAYLOAD + b" ").digest


def test_wrongly_typed_values_read_as_missing() -> None:
    event = parse_payload(
        json.dumps(
            {
                "event": "media.stop",
                "Account": "alice",
                "Server": {"uuid": ["x"], "title": 5},
                "Player": {"uuid": True, "local": "yes"},
                "Metadata": {
                    "ratingKey": 12,
                    "index": "3",
                    "parentIndex": 1.0,
                    "year": "nineteen",
                    "viewOffset": float("1e300"),
                    "duration": True,
                    "Guid": "imdb://tt1",
                },
                "rating": "high",
            }
        )
    )
    assert event.account is None
    assert event.server is not None
    assert (event.server.id, event.server.title) == (None, "5")
    assert event.player is not None
    assert (event.player.id, event.player_local) == (None, None)
    item = event.item
    assert item is not None
    assert (item.rating_key, item.index, item.parent_index, item.year) == ("12", 3, 1, None)
    assert (item.view_offset_ms, item.duration_ms, item.guids, item.progress) == (
        None,
        None,
        (),
        None,
    )
    assert event.rating is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
plex_keys = st.sampled_from(
    ["event", "Account", "Server", "Player", "Metadata", "rating", "user", "owner"]
)
meta_keys = st.sampled_from(
    [
        "type",
        "ratingKey",
        "guid",
        "Guid",
        "title",
        "index",
        "parentIndex",
        "year",
        "viewOffset",
        "duration",
        "grandparentTitle",
        "grandparentRatingKey",
    ]
)
payloads = st.dictionaries(
    plex_keys,
    json_values | st.dictionaries(meta_keys | st.text(max_size=8), json_values, max_size=8),
    max_size=8,
)


@settings(deadline=None)  # a shared machine: a slow example is not a failure
@given(payloads)
def test_generated_payloads_only_raise_webhook_error(doc: dict[str, object]) -> None:
    status = 200
    try:
        event = parse_payload(json.dumps(doc))
    except WebhookError as err:
        status = err.status
    else:
        assert event.event
        json.dumps(event.as_dict())
    assert status in (200, 400)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=60)
@given(st.binary(max_size=400), st.sampled_from([CONTENT_TYPE, "multipart/form-data; boundary=x"]))
async def test_generated_bodies_only_raise_webhook_error(body: bytes, content_type: str) -> None:
    with contextlib.suppress(WebhookError):
        await read(body, content_type)
