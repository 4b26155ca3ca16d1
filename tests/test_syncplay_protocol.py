"""Sync-play messages: canonical signing, verification, replay window, drop counters."""

import hashlib
import hmac
import json
import logging
import time
from typing import Any

from hypothesis import given, strategies as st
import pytest

from custom_components.plexus.syncplay import MessageCodec, canonical, sign
from custom_components.plexus.syncplay.protocol import SEQ_WINDOW


class FakeClock:
    def __init__(self, wall: float = 1_800_000_000.0) -> None:
        self.wall = wall

    def now(self) -> float:
        return self.wall

    def monotonic(self) -> float:
        return self.wall - 1_700_000_000.0


def codecs(secret: str = "s3cret") -> tuple[MessageCodec, MessageCodec, FakeClock]:  # noqa: S107
    clock = FakeClock()
    return (
        MessageCodec("g", secret, "alice", clock),
        MessageCodec("g", secret, "bob", clock),
        clock,
    )


def test_canonical_form_is_sorted_and_compact() -> None:
    assert canonical({"b": 1, "a": [1, {"d": "é", "c": None}]}) == (
        '{"a":[1,{"c":null,"d":"é"}],"b":1}'.encode()
    )
    with pytest.raises(ValueError):
        canonical({"x": float("nan")})


def test_signature_is_hmac_sha256_of_the_canonical_body() -> None:
    alice, _, _ = codecs()
    data = json.loads(alice.encode("hello", {"home": "A"}))
    sig = data.pop("sig")
    expected = hmac.new(b"s3cret", canonical(data), hashlib.sha256).hexdigest()
    assert sig == expected == sign(b"s3cret", data)
    assert set(data) == {"v", "group", "sender", "epoch", "seq", "ts", "type", "to", "body"}
    assert data["group"] == "g"
    assert data["sender"] == "alice"


def test_roundtrip_and_own_echo() -> None:
    alice, bob, _ = codecs()
    payload = alice.encode("start", {"at": 1.5}, to="bob")
    message = bob.decode(payload)
    assert message is not None
    assert (message.sender, message.type, message.body, message.to) == (
        "alice",
        "start",
        {"at": 1.5},
        "bob",
    )
    assert alice.decode(payload) is None  # our own message echoed back: ignored, not counted
    assert sum(alice.dropped.values()) == 0
    assert bob.accepted == 1


@given(st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=8), max_size=5))
def test_any_body_roundtrips(body: dict[str, Any]) -> None:
    alice, bob, _ = codecs()
    message = bob.decode(alice.encode("status", body))
    assert message is not None
    assert message.body == body


def test_every_kind_of_bad_message_is_dropped_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    alice, bob, clock = codecs()
    mallory = MessageCodec("g", "guess", "alice", clock)
    other_group = MessageCodec("h", "s3cret", "alice", clock)
    good = alice.encode("pause", {"at": 1})
    assert bob.decode(good) is not None
    tampered = json.loads(alice.encode("pause", {"at": 1}))
    tampered["body"]["at"] = 2
    unsigned = json.loads(alice.encode("pause", {"at": 1}))
    del unsigned["sig"]
    wrong_version = json.loads(good)
    wrong_version["v"] = 2
    wrong_version["sig"] = sign(b"s3cret", {k: v for k, v in wrong_version.items() if k != "sig"})
    bad: dict[str, list[bytes]] = {
        "malformed": [b"\xff\xfe", b"not json", b"[]", json.dumps(wrong_version).encode()],
        "unsigned": [json.dumps(unsigned).encode()],
        "bad_signature": [
            mallory.encode("stop", {}),
            json.dumps(tampered).encode(),
            json.dumps({**unsigned, "sig": 12}).encode(),
        ],
        "wrong_group": [other_group.encode("stop", {})],
        "replayed": [good],
    }
    with caplog.at_level(logging.WARNING):
        for payloads in bad.values():
            for payload in payloads:
                assert bob.decode(payload) is None
    assert bob.dropped == {**{k: len(v) for k, v in bad.items()}, "out_of_window": 0}
    assert "s3cret" not in caplog.text
    # one summary line per window (issue 15.6; before: one line per claimed sender, until
    # 1,000 senders were known and nothing was logged any more)
    assert len(caplog.records) == 1


def test_timestamp_window_uses_the_sender_offset() -> None:
    alice, bob, clock = codecs()
    late = alice.encode("stop", {})
    clock.wall += 31
    assert bob.decode(late) is None
    assert bob.dropped["out_of_window"] == 1
    ahead = MessageCodec("g", "s3cret", "carol", FakeClock(clock.wall + 25))
    assert bob.decode(ahead.encode("stop", {}), lambda sender: None) is not None
    # with a known offset of +25 s, a message stamped like our own clock is 25 s off: fine,
    # one stamped 40 s ahead of that is not
    far = MessageCodec("g", "s3cret", "dave", FakeClock(clock.wall + 65))
    assert bob.decode(far.encode("stop", {}), lambda sender: 25.0) is None
    assert bob.dropped["out_of_window"] == 2


def test_sequence_window_allows_reordering_but_not_replays() -> None:
    alice, bob, _ = codecs()
    payloads = [alice.encode("status", {"n": n}) for n in range(5)]
    for index in (1, 0, 3, 2, 4):
        assert bob.decode(payloads[index]) is not None
    for payload in payloads:
        assert bob.decode(payload) is None
    assert bob.dropped["replayed"] == 5
    first = alice.encode("status", {})
    for _ in range(SEQ_WINDOW * 3):
        assert bob.decode(alice.encode("status", {})) is not None
    assert bob.decode(first) is None  # fell out of the window


def test_restarted_sender_continues_above_its_old_numbers() -> None:
    clock = FakeClock()
    bob = MessageCodec("g", "s3cret", "bob", clock)
    old = MessageCodec("g", "s3cret", "alice", clock)
    for _ in range(50):
        assert bob.decode(old.encode("status", {})) is not None
    clock.wall += 0.001
    restarted = MessageCodec("g", "s3cret", "alice", clock)
    assert bob.decode(restarted.encode("status", {})) is not None


def test_secret_change() -> None:
    alice, bob, _ = codecs()
    alice.set_secret("new")
    assert bob.decode(alice.encode("status", {})) is None
    bob.set_secret(b"new")
    assert bob.decode(alice.encode("status", {})) is not None


def test_real_clock_codec() -> None:
    class Real:
        def now(self) -> float:
            return time.time()

        def monotonic(self) -> float:
            return time.monotonic()

    a = MessageCodec("g", "x", "a", Real())
    b = MessageCodec("g", "x", "b", Real())
    assert b.decode(a.encode("hello", {})) is not None
