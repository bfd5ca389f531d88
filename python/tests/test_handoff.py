"""The hand-off worker: python/examples/worker.py behind a real
`kite serve --handoff`, answering concurrent clients over TCP (IPv4, IPv6)
and an abstract Unix socket; and handoff_accept's errors on a socketpair."""
from __future__ import annotations

import errno
import os
import re
import socket
import subprocess
import threading
import time

import pytest

import kite
from conftest import PYDIR, PYTHON, wait_until

WORKER = str(PYDIR / "examples" / "worker.py")


def serve_status(kite_bin, name):
    r = subprocess.run([kite_bin, "serve", "status", name], capture_output=True,
                       text=True, timeout=30)
    return r.stdout if r.returncode == 0 else ""


def ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def test_worker_behind_kite_serve_answers_concurrent_clients(procs, kite_bin, tmp_path):
    name = f"pyho{os.getpid()}"
    listens = ["--listen", "tcp:127.0.0.1:0", "--listen", f"unix:@kite-pytest/{name}"]
    v6 = ipv6_loopback()
    if v6:
        listens += ["--listen", "tcp:[::1]:0"]
    log = open(tmp_path / "serve.log", "wb")
    env = dict(os.environ, PYTHONPATH=str(PYDIR))
    sup = procs.start([kite_bin, "serve", "--name", name, "--handoff", "--workers", "2",
                       *listens, "--", PYTHON, WORKER], stdout=log, stderr=log, env=env)
    status = wait_until(lambda: re.search(r"generation 1 up", serve_status(kite_bin, name)) and
                        serve_status(kite_bin, name), 30)
    ports = re.findall(r"^listen tcp:(127\.0\.0\.1|\[::1\]):(\d+)", status, re.M)
    targets = [(socket.AF_INET, ("127.0.0.1", int(p))) for h, p in ports if h == "127.0.0.1"]
    targets += [(socket.AF_INET6, ("::1", int(p))) for h, p in ports if h == "[::1]"]
    targets.append((socket.AF_UNIX, f"\0kite-pytest/{name}"))
    assert len(targets) == (3 if v6 else 2), status

    answers, errors = [], []

    def client(n):
        for i in range(15):
            family, addr = targets[(n + i) % len(targets)]
            try:
                with socket.socket(family, socket.SOCK_STREAM) as s:
                    s.settimeout(20)
                    s.connect(addr)
                    me = s.getsockname()
                    s.sendall(f"c{n}-{i}\n".encode())
                    line = s.makefile().readline()
                answers.append((family, me, f"c{n}-{i}", line))
            except OSError as e:
                errors.append(f"{family} {addr}: {e}")
    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[:5]
    assert len(answers) == 8 * 15
    workers = set()
    for family, me, said, line in answers:
        f = dict(kv.split("=", 1) for kv in line.split())
        assert f["said"] == said, line
        workers.add(f["worker"])
        if family == socket.AF_UNIX:
            assert (int(f["pid"]), int(f["uid"])) == (os.getpid(), os.getuid()), line
        else:
            assert (f["host"], int(f["port"])) == (me[0], me[1]), line
    assert len(workers) == 2, workers  # both workers took connections

    r = subprocess.run([kite_bin, "serve", "stop", name], capture_output=True, timeout=60)
    assert r.returncode == 0 and sup.wait(60) == 0
    log.close()
    text = (tmp_path / "serve.log").read_text()
    served = [int(n) for n in re.findall(r"worker \d+: served (\d+), hand-off closed", text)]
    # Every worker left through EPIPE, having served all it was handed.
    assert len(served) == 2 and sum(served) == len(answers), text


def test_handoff_fd_from_the_environment(monkeypatch):
    monkeypatch.delenv("KITE_HANDOFF_FD", raising=False)
    with pytest.raises(kite.KiteError) as ei:
        kite.handoff_fd()
    assert ei.value.errno == errno.ENOENT
    with pytest.raises(kite.KiteError) as ei:
        kite.handoff_accept()
    assert ei.value.errno == errno.ENOENT
    for bad in ("x", "-1", "99999"):
        monkeypatch.setenv("KITE_HANDOFF_FD", bad)
        with pytest.raises(kite.KiteError) as ei:
            kite.handoff_fd()
        assert ei.value.errno == errno.EBADF, bad
    with open(os.devnull) as f:  # open, but not a Unix socket
        monkeypatch.setenv("KITE_HANDOFF_FD", str(f.fileno()))
        with pytest.raises(kite.KiteError) as ei:
            kite.handoff_fd()
        assert ei.value.errno == errno.EBADF
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with a, b:
        monkeypatch.setenv("KITE_HANDOFF_FD", str(a.fileno()))
        assert kite.handoff_fd() == a.fileno()


def fd_count():
    return len(os.listdir("/proc/self/fd"))


def test_handoff_accept_timeouts_garbage_and_end():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with a, b:
        assert kite.handoff_accept(0, fd=a.fileno()) is None
        t = time.monotonic()
        assert kite.handoff_accept(0.2, fd=a.fileno()) is None
        assert 0.18 <= time.monotonic() - t < 3
        # A malformed hand-off carrying a descriptor: EPROTO, descriptor closed.
        before = fd_count()
        r, w = os.pipe()
        b.sendmsg([b"not a hand-off"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                          r.to_bytes(4, "little"))])
        os.close(r)
        os.close(w)
        with pytest.raises(kite.KiteError) as ei:
            kite.handoff_accept(1, fd=a.fileno())
        assert ei.value.errno == errno.EPROTO
        assert fd_count() == before  # the descriptor it carried was closed
        # handoff_connections skips garbage and ends when kite hangs up.
        b.send(b"garbage again")
        b.close()
        assert list(kite.handoff_connections(5, fd=a.fileno())) == []
        with pytest.raises(kite.KiteError) as ei:
            kite.handoff_accept(1, fd=a.fileno())
        assert ei.value.errno == errno.EPIPE
    with pytest.raises(ValueError):
        kite.handoff_accept(-1, fd=0)


def test_notify(monkeypatch, tmp_path):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert kite.notify() is False
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind(path)
        monkeypatch.setenv("NOTIFY_SOCKET", path)
        assert kite.notify("READY=1\nSTATUS=up") is True
        assert s.recv(100) == b"READY=1\nSTATUS=up"
    name = f"kite-pytest-notify-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind("\0" + name)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert kite.notify() is True
        assert s.recv(100) == b"READY=1"
