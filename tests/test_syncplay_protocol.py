"""Sync-play messages: canonical signing, verification, bounds, replay window, drop counters."""

import hashlib
import hmac
import json
import logging
import time
from typing import Any

from hypothesis import given, settings, strategies as st
import orjson
import pytest

from custom_components.plexus.syncplay import MessageCodec, canonical, sign
from custom_components.plexus.syncplay.protocol import MAX_DEPTH, MAX_MESSAGE_BYTES, SEQ_WINDOW


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


# ---------------------------------------------------------------- issue 15.5: bounded decoding


def signed_raw(fields: dict[str, Any], secret: bytes = b"s3cret") -> bytes:
    """A message signed like a real one, with whatever `fields` hold (no codec checks)."""
    return canonical({**fields, "sig": sign(secret, fields)})


def test_decoder_rejects_deep_nesting(caplog: pytest.LogCaptureFixture) -> None:
    """Nested JSON 1,000 and 100,000 deep (before: RecursionError out of decode, with a
    traceback per message); also a validly signed message nested deeper than MAX_DEPTH."""
    _, bob, _ = codecs()
    deep_1000 = b"[" * 1000 + b"]" * 1000
    deep_100000 = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    body: Any = 1
    for _ in range(MAX_DEPTH + 5):
        body = {"x": body}
    alice, _, _ = codecs()
    fields = json.loads(alice.encode("status", {}))
    del fields["sig"]
    fields["body"] = body
    with caplog.at_level(logging.DEBUG):
        for payload in (deep_1000, deep_100000[:MAX_MESSAGE_BYTES], signed_raw(fields)):
            assert bob.decode(payload) is None
    assert bob.dropped["malformed"] == 3
    assert "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_decoder_rejects_huge_messages_without_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """1 MB and 10 MB messages are refused by size: the JSON parser is never called."""
    _, bob, _ = codecs()
    calls: list[int] = []
    real = orjson.loads

    def spy(data: bytes) -> Any:
        calls.append(len(data))
        return real(data)

    monkeypatch.setattr(orjson, "loads", spy)
    monkeypatch.setattr(json, "loads", spy)
    for size in (1_000_000, 10_000_000):
        payload = b'{"pad":"' + b"x" * size + b'"}'
        assert bob.decode(payload) is None
    assert calls == []
    assert bob.dropped["malformed"] == 2
    just_fits = b'{"pad":"' + b"x" * (MAX_MESSAGE_BYTES - 10) + b'"}'
    assert bob.decode(just_fits) is None  # parsed (unsigned), not refused by size
    assert calls == [len(just_fits)]
    assert bob.dropped["unsigned"] == 1


def test_decoder_rejects_many_containers_without_decoding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """16,000 small lists in 64 KiB: refused by their count, before parsing or walking them."""
    _, bob, _ = codecs()
    calls: list[int] = []
    monkeypatch.setattr(orjson, "loads", lambda data: calls.append(len(data)))
    payload = b"[" + b"[1]," * 16_000 + b"1]"
    assert len(payload) <= MAX_MESSAGE_BYTES
    assert bob.decode(payload) is None
    assert calls == []
    assert bob.dropped["malformed"] == 1


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4096))
def test_decoder_never_raises_on_arbitrary_bytes(payload: bytes) -> None:
    _, bob, _ = codecs()
    assert bob.decode(payload) is None
    assert sum(bob.dropped.values()) == 1


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=60,
)


@settings(max_examples=300, deadline=None)
@given(json_values, st.booleans())
def test_decoder_never_raises_on_arbitrary_json(value: Any, signed: bool) -> None:
    """Any JSON document, as it is or as the body of a validly signed message."""
    alice, bob, _ = codecs()
    if signed:
        fields = json.loads(alice.encode("status", {}))
        del fields["sig"]
        fields["body"] = value
        try:
            payload = signed_raw(fields)
        except ValueError:  # infinities cannot be signed (canonical form): send them unsigned
            payload = json.dumps(fields).encode()
            signed = False
    else:
        payload = json.dumps(value).encode()
    message = bob.decode(payload)
    if message is None:
        assert sum(bob.dropped.values()) == 1
    else:
        assert signed
        assert message.body == value


# ---------------------------------------------------------------- issue 15.6: log-flood control


class SteppingClock(FakeClock):
    """A wall clock that stays within the replay window, and a monotonic one the test moves."""

    def __init__(self) -> None:
        super().__init__()
        self.mono = 100.0

    def monotonic(self) -> float:
        return self.mono


def test_drop_log_summarises_once_per_window_for_any_number_of_senders(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """5,000 forged senders (before: one line each for the first 1,000, then silence for
    ever): one summary line now, one per 5 minutes later, counters always readable."""
    clock = SteppingClock()
    bob = MessageCodec("g", "s3cret", "bob", clock)
    forgers = [MessageCodec("g", "guess", f"forger-{n}", clock) for n in range(5000)]
    with caplog.at_level(logging.WARNING):
        for forger in forgers:
            assert bob.decode(forger.encode("stop", {})) is None
        assert len(caplog.records) == 1
        assert "dropped 1 message from 1 sender: bad_signature 1" in caplog.text
        clock.mono += 299.0
        bob.drops.flush()
        assert len(caplog.records) == 1
        clock.mono += 2.0
        assert bob.decode(b"garbage") is None  # the window passed: the next drop logs
        assert len(caplog.records) == 2
        assert (
            "dropped 5000 messages from at least 1000 senders: bad_signature 4999, malformed 1"
            in caplog.records[1].getMessage()
        )
        clock.mono += 400.0
        bob.drops.flush()  # nothing new: nothing logged
        assert len(caplog.records) == 2
        # forgers from before the window are still counted, and logged by the periodic flush
        assert bob.decode(forgers[0].encode("stop", {})) is None
        clock.mono += 1.0
        bob.drops.flush()
    assert len(caplog.records) == 3
    stats = bob.drops.stats()
    assert stats["total"] == 5002
    assert stats["by_reason"]["bad_signature"] == 5001
    assert stats["summaries_logged"] == 3
    assert "guess" not in caplog.text
    assert "s3cret" not in caplog.text


# ---------------------------------------------------------------- issue 15.7: replay by epoch


def test_far_ahead_sequence_does_not_silence_the_senders_next_run() -> None:
    """A signed message numbered far ahead (an old bug, or a sender whose clock went back and
    restarted) made every later message of that sender a "replay"; a new run has a new epoch."""
    clock = FakeClock()
    bob = MessageCodec("g", "s3cret", "bob", clock)
    alice = MessageCodec("g", "s3cret", "alice", clock)
    assert bob.decode(alice.encode("status", {})) is not None
    fields = json.loads(alice.encode("status", {}))
    del fields["sig"]
    fields["seq"] = 10**15
    assert bob.decode(signed_raw(fields)) is not None
    assert bob.decode(alice.encode("status", {})) is None  # the rest of that run: too old
    restarted = MessageCodec("g", "s3cret", "alice", clock)
    clock.wall -= 5.0  # and its clock was corrected backwards
    for _ in range(3):
        assert bob.decode(restarted.encode("status", {})) is not None
    restarted.new_epoch()
    assert bob.decode(restarted.encode("status", {})) is not None


def test_messages_of_a_finished_epoch_are_refused() -> None:
    """Replaying a sender's previous run after it restarted is still a replay."""
    clock = FakeClock()
    bob = MessageCodec("g", "s3cret", "bob", clock)
    alice = MessageCodec("g", "s3cret", "alice", clock)
    old = [alice.encode("status", {"n": n}) for n in range(3)]
    assert bob.decode(old[0]) is not None
    alice.new_epoch()
    assert bob.decode(alice.encode("status", {})) is not None
    for payload in old:
        assert bob.decode(payload) is None
    assert bob.dropped["replayed"] == 3
    assert bob.decode(alice.encode("status", {})) is not None
