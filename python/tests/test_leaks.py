"""1,000 open/close cycles leave no descriptor and no thread behind."""
from __future__ import annotations

import asyncio
import gc
import os
import time

import kite


def fds():
    return sorted(os.listdir("/proc/self/fd"))


def threads():
    return len(os.listdir("/proc/self/task"))


def settle(done, seconds=5.0):
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        time.sleep(0.02)


def test_open_close_cycles_leak_nothing(bus):
    with kite.Handle(bus) as pub:  # a peer, so each cycle links and unlinks
        with kite.Handle(bus) as first:
            first.subscribe("cycle.>")
            pub.publish("cycle.x", b"x")  # pub's ring for cycle.x: kept
        gc.collect()
        base_fds, base_threads = fds(), threads()
        for i in range(1000):
            with kite.Handle(bus, handshake_ms=200) as h:
                h.subscribe("cycle.>")
                pub.publish("cycle.x", b"x")
                if i % 10 == 0:
                    h.recv(0.001)  # the waiting path too
            if i % 100 == 0:
                # also a handle dropped without close(): __del__ frees it
                kite.Handle(bus).subscribe("dropped")
        gc.collect()
        # The peer's control thread notices the last hang-up a moment later.
        settle(lambda: threads() == base_threads and fds() == base_fds)
        assert threads() == base_threads
        assert fds() == base_fds


def test_async_waits_leak_nothing(bus):
    async def main():
        for _ in range(200):
            with kite.Handle(bus) as h:
                h.subscribe("a")
                assert await h.arecv(0.001) is None
    gc.collect()
    base_fds, base_threads = fds(), threads()
    asyncio.run(main())
    gc.collect()
    assert threads() == base_threads and fds() == base_fds
