"""Python and C on one bus: a Python publisher and the `kite sub` command,
`kite pub` (the C API publisher) and a Python subscriber, losses reported
exactly to a slow Python subscriber, kernel identity, refusal of another
uid (a subscriber running as nobody)."""
from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import time

import pytest

import kite
from conftest import account, read_line, wait_until


def start_kite_sub(procs, kite_bin, *args):
    p = procs.start([kite_bin, "sub", "-v", *args])
    assert "subscribed" in read_line(p.stderr), "kite sub did not subscribe"
    return p


def test_python_publishes_kite_sub_receives(procs, kite_bin, bus):
    sub = start_kite_sub(procs, kite_bin, "--count", "3", "--timeout", "20", "--json", "py.>")
    with kite.Handle(bus) as h:
        my_id = h.id
        h.publish("py.one", b"first")
        h.publish("py.two", "zweite")
        h.publish("py.one", b'quote " and tab \t')
        out, err = sub.communicate(timeout=30)
    assert sub.returncode == 0, err
    import json
    rows = [json.loads(line) for line in out.decode().splitlines()]
    # Order holds per (publisher, channel), not across channels.
    assert [(r["channel"], r["payload"], r["seq"]) for r in rows
            if r["channel"] == "py.one"] == [("py.one", "first", 1), ("py.one", 'quote " and tab \t', 2)]
    assert [(r["channel"], r["payload"], r["seq"]) for r in rows
            if r["channel"] == "py.two"] == [("py.two", "zweite", 1)]
    assert len(rows) == 3
    for r in rows:
        assert (r["pid"], r["uid"], r["gid"]) == (os.getpid(), os.getuid(), os.getgid())
        assert int(r["publisher"], 16) == my_id


def test_kite_pub_publishes_python_receives(procs, kite_bin, bus):
    with kite.Handle(bus) as h:
        h.subscribe("c.>")
        pub = procs.start([kite_bin, "pub", "c.lines"], stdin=subprocess.PIPE)
        pub.communicate(b"alpha\nbeta\n\ngamma\n", timeout=30)
        assert pub.returncode == 0
        items = until_gone(h)
    msgs = [m for m in items if isinstance(m, kite.Message)]
    assert [(m.channel, m.data, m.seq) for m in msgs] == [
        ("c.lines", b"alpha", 1), ("c.lines", b"beta", 2), ("c.lines", b"", 3),
        ("c.lines", b"gamma", 4)]
    assert all(m.pid == pub.pid and m.uid == os.getuid() for m in msgs)
    assert isinstance(items[0], kite.PublisherNew) and items[0].pid == pub.pid
    gone = [i for i in items if isinstance(i, kite.PublisherGone)]
    assert len(gone) == 1 and gone[0].pid == pub.pid and "closed" in gone[0].text
    assert items.index(gone[0]) > items.index(msgs[-1])  # after its last message


def until_gone(h, timeout=10.0):
    """Everything h receives up to and including a PublisherGone."""
    items = []
    for item in h.messages(timeout=timeout):
        items.append(item)
        if isinstance(item, kite.PublisherGone):
            return items
    raise AssertionError(f"no PublisherGone; got {items[-5:]}")


def test_losses_reported_exactly_to_a_stalled_subscriber(procs, kite_bin, bus):
    # kite pub (C) fills its ring many times over while we read nothing:
    # its default ring (2 MiB) holds 65,536 records of these short lines.
    n = 300000
    with kite.Handle(bus) as h:
        h.subscribe("flood")
        pub = procs.start([kite_bin, "pub", "flood"], stdin=subprocess.PIPE)
        pub.communicate(b"".join(b"%d\n" % i for i in range(1, n + 1)), timeout=60)
        assert pub.returncode == 0
        items = until_gone(h)
        got, lost = account(items, n)
        assert lost > 0 and got <= 65536  # 2 MiB of 32-byte records
        assert h.stats().lost == lost
        msgs = [m for m in items if isinstance(m, kite.Message)]
        assert all(m.data == str(m.seq).encode() for m in msgs)


SLOW_PUBLISHER = """
import sys, kite
n = int(sys.argv[1])
with kite.Handle(ring_slots=64) as h:
    print("open", flush=True)
    sys.stdin.readline()
    for i in range(1, n + 1):
        h.publish("slow.x", str(i))
"""


def test_losses_reported_exactly_to_a_slow_python_subscriber(procs, bus):
    # A Python publisher with a 64-slot ring runs flat out; this subscriber
    # reads in bursts with naps, so it is overrun again and again.
    n = 30000
    with kite.Handle(bus) as h:
        h.subscribe("slow.>")
        pub = procs.python(SLOW_PUBLISHER, str(n), stdin=subprocess.PIPE)
        assert read_line(pub.stdout) == "open\n"
        pub.stdin.write(b"go\n")
        pub.stdin.flush()
        items = []
        while True:
            item = h.recv(5)
            assert item is not None, "publisher never finished"
            items.append(item)
            if isinstance(item, kite.PublisherGone):
                break
            if len(items) % 50 == 0:
                time.sleep(0.002)
        assert pub.wait(30) == 0
    got, lost = account(items, n)
    losses = [i for i in items if isinstance(i, kite.Loss)]
    assert len(losses) >= 2 and got > 0, (len(losses), got)
    assert all(l.pid == pub.pid and l.channel == "slow.x" for l in losses)


def test_publisher_identity_is_the_kernels(procs, bus):
    code = ("import os, kite\nwith kite.Handle() as h:\n"
            "    print(h.id, flush=True); input(); h.publish('who.am.i', str(os.getpid()))\n")
    with kite.Handle(bus) as h:
        h.subscribe("who.>")
        child = procs.python(code, stdin=subprocess.PIPE)
        claimed = int(read_line(child.stdout))
        child.stdin.write(b"\n")
        child.stdin.flush()
        m = next(m for m in h.messages(timeout=10) if isinstance(m, kite.Message))
    assert m.pid == child.pid and m.data == str(child.pid).encode()
    assert m.publisher == claimed


def _nobody():
    if os.getuid() != 0:
        pytest.skip("needs root to run a peer as nobody")
    if not shutil.which("setpriv"):
        pytest.skip("setpriv (util-linux) missing")
    pw = pwd.getpwnam("nobody")
    return pw.pw_uid, pw.pw_gid, ["setpriv", "--reuid=nobody", "--regid=nogroup",
                                  "--clear-groups"]


NOBODY_SUB = """
import kite, sys
with kite.Handle(handshake_ms=300) as h:
    h.subscribe("secret.>")
    print("ready", flush=True)
    for item in h.messages(timeout=float(sys.argv[1])):
        print(type(item).__name__, getattr(item, "by_peer", ""), item.uid,
              getattr(item, "data", b"").decode(), flush=True)
"""


def test_refuses_a_subscriber_of_another_uid_until_allowed(procs, bus):
    uid, gid, prefix = _nobody()
    env = {"PYTHONDONTWRITEBYTECODE": "1"}
    child = procs.python(NOBODY_SUB, "1.5", prefix=prefix, env=env)
    assert read_line(child.stdout) == "ready\n"
    with kite.Handle(bus, handshake_ms=300) as pub:
        pub.publish("secret.plans", b"not for nobody")
        refused = wait_until(lambda: pub.recv(0.2), 10)
        assert isinstance(refused, kite.Refused) and not refused.by_peer
        assert refused.uid == uid and refused.text
        assert pub.stats().refused >= 1
    out, _ = child.communicate(timeout=30)
    lines = out.decode().splitlines()
    assert any(l.startswith("Refused True 0") for l in lines), lines
    assert not any(l.startswith("Message") for l in lines), lines

    # allow_uid lets it in; the message carries our kernel-verified uid
    child = procs.python(NOBODY_SUB, "1.5", prefix=prefix, env=env)
    assert read_line(child.stdout) == "ready\n"
    with kite.Handle(bus, handshake_ms=300) as pub:
        pub.allow_uid("secret.>", uid)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and pub.stats().peers < 1:
            time.sleep(0.02)
        time.sleep(0.3)  # its subscription reached us (handshake)
        pub.publish("secret.plans", b"for nobody now")
        out, _ = child.communicate(timeout=30)
    lines = out.decode().splitlines()
    assert f"Message  {os.getuid()} for nobody now" in lines, lines


NOBODY_PUB = """
import kite, os
with kite.Handle() as h:
    input()
    h.publish("id.nobody", str(os.getpid()))
"""


def test_message_from_nobody_carries_its_uid(procs, bus):
    uid, gid, prefix = _nobody()
    with kite.Handle(bus) as h:
        h.allow_uid("id.>", uid)
        h.subscribe("id.>")
        child = procs.python(NOBODY_PUB, prefix=prefix, stdin=subprocess.PIPE,
                             env={"PYTHONDONTWRITEBYTECODE": "1"})
        wait_until(lambda: h.stats().peers >= 1)
        child.stdin.write(b"\n")
        child.stdin.flush()
        m = next((m for m in h.messages(timeout=10) if isinstance(m, kite.Message)), None)
        assert m is not None, child.communicate(timeout=10)
    assert (m.uid, m.gid) == (uid, gid) and m.pid == child.pid
    assert m.data == str(child.pid).encode()
