"""Threads and signals: a thread waiting in recv() holds no lock (others
publish meanwhile) and is woken by close(); Ctrl-C ends a wait; a signal
handler that returns does not cut a wait short (PEP 475)."""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

import kite
from conftest import read_line


def test_publish_while_another_thread_waits(bus):
    with kite.Handle(bus) as h, kite.Handle(bus) as other:
        h.subscribe("back")
        other.subscribe("forth")
        got = []
        waiter = threading.Thread(target=lambda: got.extend(
            m for m in h.messages(timeout=5) if isinstance(m, kite.Message)))
        waiter.start()
        time.sleep(0.1)  # the waiter is blocked in recv() now
        t = time.monotonic()
        for i in range(100):
            h.publish("forth", str(i))  # same handle, other thread waiting
        assert time.monotonic() - t < 2
        first = next(m for m in other.messages(timeout=5) if isinstance(m, kite.Message))
        assert first.data == b"0" and first.publisher == h.id
        other.publish("back", b"to the waiter")
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            time.sleep(0.01)
        h.close()  # also ends the waiter's iteration
        waiter.join(5)
        assert not waiter.is_alive()
        assert [m.data for m in got] == [b"to the waiter"]


def test_close_wakes_a_waiting_thread(bus):
    h = kite.Handle(bus)
    h.subscribe("nothing")
    result = []
    waiter = threading.Thread(target=lambda: result.append(h.recv()))
    waiter.start()
    time.sleep(0.2)
    t = time.monotonic()
    h.close()
    waiter.join(5)
    assert not waiter.is_alive() and result == [None]
    assert time.monotonic() - t < 2


def test_a_returning_handler_does_not_cut_the_wait_short(bus):
    hits = []
    old = signal.signal(signal.SIGALRM, lambda *a: hits.append(1))
    try:
        with kite.Handle(bus) as h:
            h.subscribe("quiet")
            signal.setitimer(signal.ITIMER_REAL, 0.1, 0.1)
            t = time.monotonic()
            assert h.recv(0.6) is None
            waited = time.monotonic() - t
            signal.setitimer(signal.ITIMER_REAL, 0)
    finally:
        signal.signal(signal.SIGALRM, old)
    assert len(hits) >= 3 and 0.58 <= waited < 3, (hits, waited)


def test_a_raising_handler_ends_the_wait(bus):
    class Stop(Exception):
        pass

    def handler(*a):
        raise Stop()
    old = signal.signal(signal.SIGALRM, handler)
    try:
        with kite.Handle(bus) as h:
            h.subscribe("quiet")
            signal.setitimer(signal.ITIMER_REAL, 0.2)
            t = time.monotonic()
            try:
                h.recv()
                raise AssertionError("recv returned")
            except Stop:
                pass
            assert time.monotonic() - t < 3
            assert h.recv(0) is None  # the handle still works
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


CTRL_C = """
import kite
with kite.Handle() as h:
    h.subscribe("never")
    print("waiting", flush=True)
    try:
        h.recv()
    except KeyboardInterrupt:
        print("interrupted", flush=True)
"""


def test_ctrl_c_interrupts_recv(procs, bus):
    p = procs.python(CTRL_C)
    assert read_line(p.stdout) == "waiting\n"
    time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=10)
    assert out == b"interrupted\n" and p.returncode == 0, err
