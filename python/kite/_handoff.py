"""The worker's side of `kite serve --handoff` (kite/handoff.h), and the
readiness notice `kite serve` waits for."""
from __future__ import annotations

import ctypes
import errno
import math
import os
import socket
import time
from typing import Iterator, Optional, Tuple, Union

from . import _lib
from ._errors import KiteError, check

Address = Union[Tuple[str, int], Tuple[str, int, int, int], str, bytes, None]


class Peer:
    """Who is on the other end of a handed-off connection.

    ``family``: socket.AF_INET, AF_INET6 or AF_UNIX. ``address``: as
    socket.accept() would give it ((host, port) for IPv4, a 4-tuple for
    IPv6, the path for a named Unix socket, "" for an unnamed one).
    ``host``/``port``: IP peers only ("" and 0 otherwise). ``pid``/``uid``/
    ``gid``: Unix peers only, as the kernel reported them when kite accepted
    the connection (None otherwise).
    """

    __slots__ = ("family", "address", "host", "port", "pid", "uid", "gid")

    def __init__(self, family: int, address: Address, host: str, port: int,
                 pid: Optional[int], uid: Optional[int], gid: Optional[int]) -> None:
        self.family = family
        self.address = address
        self.host = host
        self.port = port
        self.pid = pid
        self.uid = uid
        self.gid = gid

    def __repr__(self) -> str:
        if self.family == socket.AF_UNIX:
            return f"Peer(unix, pid={self.pid}, uid={self.uid}, gid={self.gid})"
        return f"Peer({self.host!r}, {self.port})"


def _peer(p: _lib.Peer) -> Peer:
    family = p.family
    raw = bytes(p.addr[:min(p.addr_len, _lib.PEER_ADDR_MAX)])
    host = p.host.decode("ascii", "replace")
    if family == socket.AF_UNIX:
        name = raw[2:]  # after sun_family
        if name[:1] == b"\0":
            address: Address = name  # abstract: bytes with the leading NUL
        else:
            address = name.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
        ids = [None if v == 0xFFFFFFFF or v < 0 else v for v in (p.pid, p.uid, p.gid)]
        return Peer(family, address, "", 0, ids[0], ids[1], ids[2])
    if family == socket.AF_INET6 and len(raw) >= 28:
        flow = int.from_bytes(raw[4:8], "big")
        scope = int.from_bytes(raw[24:28], "little")
        return Peer(family, (host, p.port, flow, scope), host, p.port, None, None, None)
    return Peer(family, (host, p.port), host, p.port, None, None, None)


def handoff_fd() -> int:
    """This worker's hand-off socket, from $KITE_HANDOFF_FD. KiteError
    ENOENT when the variable is absent (not under kite serve --handoff),
    EBADF when it names no open Unix socket."""
    return check(_lib.lib.kite_handoff_fd(), "KITE_HANDOFF_FD")


def handoff_accept(timeout: Optional[float] = None,
                   fd: Optional[int] = None) -> Optional[Tuple[socket.socket, Peer]]:
    """The next connection kite handed over: (socket, Peer), like
    socket.accept(). Waits at most ``timeout`` seconds (None: as long as
    it takes; 0: do not wait) and returns None when the time is up.

    Raises KiteError with errno EPIPE once kite has closed the hand-off
    socket: no more connections will come (kite does that before it stops
    a worker with SIGTERM, so accept until EPIPE to serve every connection
    you were given). EPROTO: a malformed hand-off was discarded (call
    again). ``fd``: the hand-off socket (default: handoff_fd()). A signal
    handler that raises ends the wait; one that returns lets it go on."""
    hfd = handoff_fd() if fd is None else fd
    if timeout is not None and (timeout < 0 or math.isnan(timeout)):
        raise ValueError(f"timeout must be None or >= 0, not {timeout!r}")
    deadline = None if timeout is None else time.monotonic() + timeout
    peer = _lib.Peer()
    while True:
        if deadline is None:
            ms = -1
        else:
            ms = min(max(math.ceil((deadline - time.monotonic()) * 1000), 0), 2**31 - 1)
        rc = _lib.lib.kite_handoff_accept(hfd, ctypes.byref(peer), ms)
        if rc >= 0:
            break
        if rc == -errno.EINTR:
            continue  # the handler has run (or raised) by now: PEP 475
        if rc in (-errno.ETIMEDOUT, -errno.EAGAIN):
            return None
        raise KiteError(rc, "handoff_accept")
    try:
        conn = socket.socket(fileno=rc)
    except OSError:
        os.close(rc)
        raise
    return conn, _peer(peer)


def handoff_connections(timeout: Optional[float] = None,
                        fd: Optional[int] = None) -> Iterator[Tuple[socket.socket, Peer]]:
    """``for conn, peer in kite.handoff_connections():`` every connection
    kite hands over, until it closes the hand-off socket (EPIPE), or until
    none comes for ``timeout`` seconds. Malformed hand-offs are skipped."""
    while True:
        try:
            got = handoff_accept(timeout, fd)
        except KiteError as e:
            if e.errno == errno.EPIPE:
                return
            if e.errno == errno.EPROTO:
                continue
            raise
        if got is None:
            return
        yield got


def notify(state: str = "READY=1") -> bool:
    """Send ``state`` to $NOTIFY_SOCKET (the systemd notify protocol that
    `kite serve` and systemd read): call notify() once the worker is ready
    to serve, or kite serve hands it no connection (unless --no-notify).
    Returns False when there is no $NOTIFY_SOCKET."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    address = "\0" + path[1:] if path.startswith("@") else path
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(state.encode("utf-8"), address)
    return True
