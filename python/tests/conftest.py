"""Fixtures for the kite binding's tests, and a TAP reporter.

Run from the repository: `KITE=build/kite /usr/bin/python3 -m pytest python/tests`
(tests/sh/python_test.sh does that and prints the TAP lines). The package
under test is the one in python/, loading build/libkite.so.0.
"""
from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import pytest

PYDIR = Path(__file__).resolve().parent.parent        # python/
ROOT = PYDIR.parent                                   # the checkout
sys.path.insert(0, str(PYDIR))
PYTHON = sys.executable
_bus_numbers = itertools.count(1)


def kite_binary() -> str:
    return os.environ.get("KITE") or str(ROOT / "build" / "kite")


@pytest.fixture
def kite_bin() -> str:
    path = kite_binary()
    if not os.access(path, os.X_OK):
        pytest.fail(f"kite binary {path} missing (set $KITE)")
    return path


@pytest.fixture
def bus(monkeypatch: pytest.MonkeyPatch) -> str:
    """A private bus for this test, also in $KITE_BUS for its children."""
    name = f"py{os.getpid()}-{next(_bus_numbers)}"
    monkeypatch.setenv("KITE_BUS", name)
    return name


class Procs:
    """Child processes a test starts: killed (by pid) when it ends."""

    def __init__(self) -> None:
        self.procs: List[subprocess.Popen] = []

    def start(self, argv: List[str], **kw) -> subprocess.Popen:
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        p = subprocess.Popen(argv, **kw)
        self.procs.append(p)
        return p

    def python(self, code: str, *args: str, env: Optional[Dict[str, str]] = None,
               prefix: Optional[List[str]] = None, **kw) -> subprocess.Popen:
        """/usr/bin/python3 -c code, seeing the package under test."""
        e = dict(os.environ)
        e["PYTHONPATH"] = str(PYDIR)
        e.update(env or {})
        return self.start((prefix or []) + [PYTHON, "-c", code, *args], env=e, **kw)

    def stop_all(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        for p in self.procs:
            try:
                p.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            for f in (p.stdout, p.stderr, p.stdin):
                if f:
                    f.close()


@pytest.fixture
def procs():
    p = Procs()
    yield p
    p.stop_all()


def wait_until(what: Callable[[], object], timeout: float = 10.0,
               step: float = 0.02) -> object:
    """Poll what() until it is true; its value, or AssertionError."""
    deadline = time.monotonic() + timeout
    while True:
        value = what()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(step)


def read_line(stream, timeout: float = 10.0) -> str:
    """One line from a child's pipe, or AssertionError after timeout."""
    import select
    r, _, _ = select.select([stream], [], [], timeout)
    assert r, f"no line within {timeout} s"
    return stream.readline().decode()


def account(items, total):
    """Check that messages and Loss events account for every sequence number
    1..total exactly; returns (received, lost)."""
    import kite
    expect, pending, got, lost = 1, 0, 0, 0
    for it in items:
        if isinstance(it, kite.Loss):
            assert it.lost > 0
            pending += it.lost
            lost += it.lost
        elif isinstance(it, kite.Message):
            assert it.seq == expect + pending, (it.seq, expect, pending)
            expect, pending = it.seq + 1, 0
            got += 1
    assert expect - 1 + pending == total and got + lost == total, (got, lost, total)
    return got, lost


# ---- TAP: one "ok"/"not ok" line per test, written to $KITE_TAP ----------

_outcomes: Dict[str, List[str]] = {}


def _tap(line: str) -> None:
    path = os.environ.get("KITE_TAP")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


def pytest_runtest_logreport(report) -> None:
    state = _outcomes.setdefault(report.nodeid, [])
    if report.failed:
        state.append(f"{report.when} failed")
    elif report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else "skipped"
        state.append("skip " + str(reason).replace("Skipped: ", ""))


def pytest_runtest_logfinish(nodeid: str, location) -> None:
    state = _outcomes.pop(nodeid, [])
    name = nodeid.replace("::", " ")
    failed = [s for s in state if s.endswith("failed")]
    skipped = [s for s in state if s.startswith("skip ")]
    if failed:
        _tap(f"not ok - python: {name} # {', '.join(failed)}")
    elif skipped:
        _tap(f"ok - python: {name} # SKIP {skipped[0][5:]}")
    else:
        _tap(f"ok - python: {name}")


def pytest_collectreport(report) -> None:
    if report.failed:
        _tap(f"not ok - python: collecting {report.nodeid or 'tests'}")
