"""Relayed messages: Handle.publish_origin and Message.origin (a claim
relayed by the local sender, kite_msg.origin in C)."""
from __future__ import annotations

import os

import pytest

import kite
from test_pubsub import first_message, pair  # noqa: F401 (a fixture)


def test_plain_message_has_no_origin(pair):
    sub, pub = pair
    sub.subscribe("o.>")
    pub.publish("o.plain", b"x")
    assert first_message(sub).origin is None


def test_origin_round_trip(pair):
    sub, pub = pair
    sub.subscribe("o.>")
    claim = kite.Origin("nats", "orders.eu", "far-away", 4242, 1000, 0xff, 9,
                        b"NATS/1.0\r\nKite-Pid: 4242\r\n\r\n")
    assert pub.publish_origin("o.relayed", b'{"id":42}', claim) == 1
    m = first_message(sub)
    assert m.data == b'{"id":42}'
    assert m.origin == claim
    # The kernel-verified sender is the relaying process, not the claim.
    assert (m.pid, m.uid) == (os.getpid(), os.getuid())


def test_bad_origin_is_refused(pair):
    _, pub = pair
    with pytest.raises(kite.KiteError) as e:
        pub.publish_origin("o.x", b"", kite.Origin("", "s", "", -1, -1, 0, 0, b""))
    assert e.value.code == -22  # -EINVAL: no system
    with pytest.raises(kite.KiteError):
        pub.publish_origin("o.x", b"", kite.Origin("nats", "s", "", -1, -1, 0, 0, b"a\0b"))
