"""subscribe(last=, last_ms=): replay for late joiners, through real handles."""
from __future__ import annotations

import time

import pytest

import kite


def messages(h, quiet=0.3):
    """Every Message until quiet seconds pass with nothing."""
    out = []
    while True:
        item = h.recv(quiet)
        if item is None:
            return out
        if isinstance(item, kite.Message):
            out.append(item)
        else:
            assert isinstance(item, kite.PublisherNew), item


def test_last_replays_with_original_seqs(bus):
    with kite.Handle(bus) as pub:
        for i in range(1, 6):
            assert pub.publish("cfg.a", f"v{i}") == i
        with kite.Handle(bus) as sub:
            sub.subscribe("cfg.*", last=2)
            pub.publish("cfg.a", "v6")
            got = messages(sub)
            assert [(m.seq, m.data) for m in got] == [(4, b"v4"), (5, b"v5"), (6, b"v6")]
        with kite.Handle(bus) as sub:
            sub.subscribe("cfg.*", last=1)  # a last-value channel
            assert [m.seq for m in messages(sub)] == [6]
        with kite.Handle(bus) as sub:
            sub.subscribe("cfg.*")  # live only
            assert messages(sub) == []


def test_last_ms(bus):
    with kite.Handle(bus) as pub:
        pub.publish("t.a", "old")
        time.sleep(0.8)
        pub.publish("t.a", "new")
        with kite.Handle(bus) as sub:
            sub.subscribe("t.a", last_ms=400)
            assert [m.data for m in messages(sub)] == [b"new"]


def test_bad_values(bus):
    with kite.Handle(bus) as sub:
        with pytest.raises(kite.KiteError):
            sub.subscribe("a.b", last=-1)
        with pytest.raises(kite.KiteError):
            sub.subscribe("a.b", last_ms=1 << 32)
