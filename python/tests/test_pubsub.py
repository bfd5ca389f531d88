"""Handle: publish, subscribe, recv, errors, in one process."""
from __future__ import annotations

import errno
import os
import time

import pytest

import kite


def first_message(h, timeout=10.0):
    """The next Message (skipping PublisherNew), or fail."""
    deadline = time.monotonic() + timeout
    while True:
        item = h.recv(max(deadline - time.monotonic(), 0))
        assert item is not None, "no message in time"
        if isinstance(item, kite.Message):
            return item
        assert isinstance(item, kite.PublisherNew), item


@pytest.fixture
def pair(bus):
    with kite.Handle(bus) as sub, kite.Handle(bus) as pub:
        yield sub, pub


def test_message_fields(pair):
    sub, pub = pair
    sub.subscribe("orders.>")
    before = time.time_ns()
    assert pub.publish("orders.eu.created", b'{"id":42}') == 1
    assert pub.publish("orders.eu.created", "héllo") == 2
    m = first_message(sub)
    assert isinstance(m, kite.Message)
    assert m.channel == "orders.eu.created" and m.data == b'{"id":42}'
    assert m.seq == 1 and m.publisher == pub.id
    assert (m.pid, m.uid, m.gid) == (os.getpid(), os.getuid(), os.getgid())
    assert before - 10**9 <= m.timestamp_ns <= time.time_ns()
    assert abs(m.timestamp - m.timestamp_ns / 1e9) < 1e-6
    m2 = first_message(sub)
    assert m2.seq == 2 and m2.text() == "héllo"
    # data was copied out: still intact after further receives
    assert m.data == b'{"id":42}'


def test_publish_accepts_any_buffer(pair):
    sub, pub = pair
    sub.subscribe("buf.*")
    pub.publish("buf.a", bytearray(b"from bytearray"))
    pub.publish("buf.b", memoryview(b"xxfrom memoryview")[2:])
    pub.publish("buf.c", b"")
    pub.publish("buf.d")
    import array
    pub.publish("buf.e", array.array("I", [1, 2]))
    got = [first_message(sub) for _ in range(5)]
    assert [m.data for m in got] == [b"from bytearray", b"from memoryview", b"", b"",
                                     bytes(array.array("I", [1, 2]))]


def test_large_message_travels_whole(pair):
    sub, pub = pair
    sub.subscribe("big")
    payload = os.urandom(3 << 20)  # far above a slot: its own memfd
    pub.publish("big", payload)
    assert first_message(sub).data == payload


def test_wildcards_and_unsubscribe(pair):
    sub, pub = pair
    sub.subscribe("a.*.c")
    pub.publish("a.b.c", b"1")
    pub.publish("a.b.d", b"no")
    pub.publish("a.b.c.d", b"no")
    assert first_message(sub).data == b"1"
    assert sub.recv(0.2) is None
    sub.unsubscribe("a.*.c")
    pub.publish("a.b.c", b"after")
    while (item := sub.recv(0.3)) is not None:
        assert not isinstance(item, kite.Message), item


def test_recv_timeout_and_poll(pair):
    sub, pub = pair
    sub.subscribe("quiet")
    t = time.monotonic()
    assert sub.recv(0) is None
    assert time.monotonic() - t < 0.1
    t = time.monotonic()
    assert sub.recv(0.3) is None
    waited = time.monotonic() - t
    assert 0.28 <= waited < 3, waited
    assert list(sub.messages(timeout=0.1)) == []
    with pytest.raises(ValueError):
        sub.recv(-1)
    sub.subscribe("loud")
    pub.publish("loud", b"pending")
    time.sleep(0.1)
    with pytest.raises(ValueError):  # checked even with a message waiting
        sub.recv(float("nan"))


def test_messages_iterates_in_order(pair):
    sub, pub = pair
    sub.subscribe("it")
    for i in range(100):
        pub.publish("it", str(i))
    got = [m for m in sub.messages(timeout=0.5) if isinstance(m, kite.Message)]
    assert [m.data for m in got] == [str(i).encode() for i in range(100)]
    assert [m.seq for m in got] == list(range(1, 101))
    st = sub.stats()
    assert st.received == 100 and st.lost == 0 and pub.stats().published == 100


@pytest.mark.parametrize("name", ["bad..name", "", "a.>", "a.*", "a b", "x" * 201,
                                  "a\0b", "é"])
def test_bad_channel_raises_with_code_and_text(pair, name):
    _, pub = pair
    with pytest.raises(kite.KiteError) as ei:
        pub.publish(name, b"x")
    e = ei.value
    assert e.code == kite.EBADNAME and e.errno is None
    assert e.strerror == kite.strerror(kite.EBADNAME)
    assert "bad channel name" in str(e) and repr(name) in str(e)
    assert isinstance(e, OSError)
    assert not kite.channel_valid(name)


def test_bad_patterns_and_unknown_unsubscribe(pair):
    sub, _ = pair
    for p in ["a.>.b", "a..b", "a\0", ""]:
        with pytest.raises(kite.KiteError) as ei:
            sub.subscribe(p)
        assert ei.value.code == kite.EBADNAME
    with pytest.raises(kite.KiteError) as ei:
        sub.unsubscribe("never.subscribed")
    assert ei.value.code == kite.ENOTSUB
    assert ei.value.strerror == "not subscribed to that pattern"


def test_pattern_helpers():
    assert kite.pattern_valid("a.*.>") and not kite.pattern_valid("a.>.b")
    assert kite.pattern_match("a.*", "a.b") and not kite.pattern_match("a.*", "a.b.c")
    assert kite.pattern_match("a.>", "a.b.c")
    with pytest.raises(kite.KiteError):
        kite.pattern_match("a..", "a.b")


def test_errno_codes_carry_errno(bus):
    with pytest.raises(kite.KiteError) as ei:
        kite.Handle(bus, ring_slots=1000)  # not a power of two
    assert ei.value.errno == errno.EINVAL and ei.value.code == -errno.EINVAL
    assert ei.value.strerror == os.strerror(errno.EINVAL)
    for bad_bus in ("bad bus name!", "bus\0tail"):
        with pytest.raises(kite.KiteError) as ei:
            kite.Handle(bad_bus)
        assert ei.value.errno == errno.EINVAL, bad_bus
    with pytest.raises(kite.KiteError):
        kite.Handle(bus, spin_us=-1)
    with pytest.raises(TypeError):
        kite.Handle(bus, no_such_option=1)
    with kite.Handle(bus) as h, pytest.raises(kite.KiteError) as ei:
        h.allow_uid("x", 2**32 - 1)
    assert ei.value.errno == errno.EINVAL
    e = kite.KiteError(-errno.EPIPE, "x")
    assert e.errno == errno.EPIPE and str(e) == f"[Errno {errno.EPIPE}] x: {os.strerror(errno.EPIPE)}"


def test_closed_handle(bus):
    h = kite.Handle(bus)
    with h:
        assert not h.closed and "id=" in repr(h)
    assert h.closed and "closed" in repr(h)
    h.close()  # twice is fine
    for call in (lambda: h.publish("a", b""), lambda: h.subscribe("a"),
                 lambda: h.recv(0), lambda: h.recv(1), lambda: h.stats(),
                 lambda: h.fileno(), lambda: h.allow_gid("a", 0)):
        with pytest.raises(ValueError):
            call()
    assert list(h.messages()) == []


def test_handle_sees_peer_and_its_own_id(bus):
    with kite.Handle(bus) as a, kite.Handle(bus) as b:
        assert a.id != b.id and a.id > 0
        assert a.stats().peers == 1 and b.stats().peers == 1


def test_events_compare_and_print():
    a = kite.Loss(channel="c", publisher=1, pid=2, uid=3, gid=4, text="", lost=5)
    assert a == kite.Loss(channel="c", publisher=1, pid=2, uid=3, gid=4, text="", lost=5)
    assert a != kite.Loss(channel="c", publisher=1, pid=2, uid=3, gid=4, text="", lost=6)
    assert "lost=5" in repr(a) and isinstance(a, kite.Event)
    with pytest.raises(AttributeError):
        a.lost = 1
    with pytest.raises(TypeError):
        kite.PublisherNew(channel="c", lost=1)


def test_help_is_useful():
    import pydoc
    text = pydoc.render_doc(kite, renderer=pydoc.plaintext)
    for word in ("Handle", "publish", "amessages", "handoff_accept", "KiteError",
                 "KITE_LIBRARY", "Loss"):
        assert word in text


def test_reliable_subscriber_gets_eagain_not_loss(bus):
    # A reliable subscriber that does not read: the publisher (4 KiB ring,
    # wait 0) is told EAGAIN instead of overrunning it; once it reads, the
    # publisher goes on, and nothing was lost.
    with kite.Handle(bus) as sub, \
            kite.Handle(bus, ring_slots=16, slot_size=256) as pub:
        sub.subscribe("rel.>", reliable=True)
        with pytest.raises(kite.KiteError) as ei:
            sub.subscribe("rel.>")  # the other delivery
        assert ei.value.errno == errno.EEXIST
        sent = 0
        with pytest.raises(kite.KiteError) as ei:
            for _ in range(1000):
                pub.publish("rel.x", b"m" * 64)
                sent += 1
        assert ei.value.errno == errno.EAGAIN and 0 < sent < 1000
        got = [first_message(sub).seq for _ in range(sent)]
        # Room again, once the publisher has heard where the subscriber
        # stands (its position page comes one round trip after the ring).
        deadline = time.monotonic() + 10
        while True:
            try:
                pub.publish("rel.x", b"m" * 64)
                break
            except kite.KiteError as e:
                assert e.errno == errno.EAGAIN and time.monotonic() < deadline
                time.sleep(0.001)
        got.append(first_message(sub).seq)
        assert got == list(range(1, sent + 2))
        assert sub.stats().lost == 0
