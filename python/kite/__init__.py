"""kite: brokerless publish/subscribe between the processes of one Linux
machine, from Python (ctypes over libkite.so; standard library only).

Publish::

    import kite
    with kite.Handle() as h:
        seq = h.publish("orders.eu.created", b'{"id": 42}')

Subscribe (``*`` matches one token, a final ``>`` one or more)::

    with kite.Handle() as h:
        h.subscribe("orders.>")
        for m in h.messages():
            if isinstance(m, kite.Message):
                print(m.channel, m.seq, m.pid, m.uid, m.data)
            elif isinstance(m, kite.Loss):
                print("lost", m.lost, "from", m.pid)

asyncio (kite_fd + kite_arm with loop.add_reader: no thread, no polling)::

    async for m in h.amessages(): ...

A `kite serve --handoff` worker::

    kite.notify()                      # READY=1 for kite serve
    for conn, peer in kite.handoff_connections():
        with conn: conn.sendall(b"hello " + peer.host.encode() + b"\\n")

recv() returns a Message or an event: Loss (messages overrun, counted
exactly), PublisherNew, PublisherGone, Refused (the channel policy turned a
peer away). Errors raise KiteError (an OSError) with the library's ``code``,
its kite_strerror() text, and ``errno`` where the code is one.

libkite is loaded from $KITE_LIBRARY (the file or its folder), else the
build tree of the checkout this package lives in, else the system
(see kite.LIBRARY for the one loaded).
"""
from __future__ import annotations

from . import _lib
from ._errors import EBADNAME, ENOSODIUM, ENOTSUB, ETOOBIG, KiteError
from ._handle import Handle, channel_valid, pattern_match, pattern_valid
from ._handoff import Peer, handoff_accept, handoff_connections, handoff_fd, notify
from ._types import (Event, LanOrigin, Loss, Message, Origin, PublisherGone,
                     PublisherNew, Refused, Stats)

__version__ = "0.1.0"

#: The path of the libkite.so loaded.
LIBRARY: str = _lib.path

#: Longest channel name or pattern, in bytes.
CHANNEL_MAX = 200
#: Largest payload, in bytes.
MSG_MAX = 0xFFFFFFFF

__all__ = [
    "Handle", "Message", "Origin", "LanOrigin", "Event", "Loss", "PublisherGone", "Refused",
    "PublisherNew", "Stats", "KiteError", "EBADNAME", "ETOOBIG", "ENOTSUB", "ENOSODIUM",
    "channel_valid", "pattern_valid", "pattern_match", "handoff_fd",
    "handoff_accept", "handoff_connections", "Peer", "notify", "LIBRARY",
    "CHANNEL_MAX", "MSG_MAX", "strerror",
]


def strerror(code: int) -> str:
    """kite_strerror(code): the library's text for any code it returns."""
    return _lib.strerror(code)
