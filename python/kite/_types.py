"""What Handle.recv() returns: a Message or one of the events."""
from __future__ import annotations

from typing import Any, NamedTuple, Optional, Tuple


class Origin(NamedTuple):
    """Where a relayed message (one published with
    ``Handle.publish_origin``, e.g. by ``kite bridge`` from NATS) claims to
    come from. A CLAIM made by the local sender (``Message.pid``/``uid``,
    the only identity the kernel vouched for), never a verified identity.
    Unknown numbers are -1 (pid, uid) or 0; ``headers`` is the remote
    header block as the importer received it."""

    system: str
    subject: str
    host: str
    pid: int
    uid: int
    publisher: int
    seq: int
    headers: bytes


class LanOrigin(NamedTuple):
    """Where a message from the LAN came from, as its frame CLAIMS it
    (nothing on the LAN is vouched for by the kernel): the sending host's
    id, its IP address and UDP port, and the publisher's pid as it says."""

    host: int
    address: str
    port: int
    pid: int


class Message(NamedTuple):
    """One message received on a channel (a named tuple: cheap to make).

    ``data`` is a copy (bytes) of the payload. ``publisher`` is the
    publisher's random id, as it claims it; ``pid``, ``uid`` and ``gid`` are
    vouched for by the kernel (SO_PEERCRED on its control connection).
    ``seq`` counts from 1 per (publisher, channel); ``timestamp_ns`` is
    CLOCK_REALTIME at publish (``timestamp`` gives it in seconds).
    ``origin`` is None, or for a relayed message the remote sender its
    local sender claims (an ``Origin``, not vouched for by the kernel).
    ``lan`` is None for a message from this machine; on a handle opened
    with ``lan=``, a message from another host has a ``LanOrigin`` there,
    ``pid`` as the sender claims it and ``uid``/``gid`` 2**32 - 1 (not
    verified).
    """

    channel: str
    data: bytes
    publisher: int
    seq: int
    timestamp_ns: int
    pid: int
    uid: int
    gid: int
    origin: Optional[Origin] = None
    lan: Optional[LanOrigin] = None

    @property
    def timestamp(self) -> float:
        """Publication time in seconds since the epoch (as time.time())."""
        return self.timestamp_ns / 1e9

    def text(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        """The payload decoded as text."""
        return self.data.decode(encoding, errors)


class Event:
    """Base of the events recv() delivers beside messages.

    ``channel``, ``publisher``, ``pid``, ``uid``, ``gid``: the publisher or
    peer concerned, as far as the event has one (0 or "" otherwise);
    ``text``: a human-readable explanation (may be ""). Events are
    read-only and compare equal when their fields do.
    """

    _fields: Tuple[str, ...] = ("channel", "publisher", "pid", "uid", "gid", "text")
    __slots__ = _fields
    channel: str
    publisher: int
    pid: int
    uid: int
    gid: int
    text: str

    def __init__(self, channel: str = "", publisher: int = 0, pid: int = 0,
                 uid: int = 0, gid: int = 0, text: str = "", **extra: Any) -> None:
        values = dict(channel=channel, publisher=publisher, pid=pid, uid=uid,
                      gid=gid, text=text, **extra)
        if set(values) != set(self._fields):
            raise TypeError(f"{type(self).__name__} takes the fields {self._fields}")
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")

    def _values(self) -> Tuple[Any, ...]:
        return tuple(getattr(self, f) for f in self._fields)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__,) + self._values())

    def __repr__(self) -> str:
        fields = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields)
        return f"{type(self).__name__}({fields})"


class Loss(Event):
    """``lost`` messages from ``publisher`` on ``channel`` were overrun
    (this subscriber fell more than a ring behind) and will never arrive."""

    _fields = Event._fields + ("lost",)
    __slots__ = ("lost",)
    lost: int


class PublisherGone(Event):
    """A publisher's connection closed; everything it sent on ``channel``
    before that has been delivered."""

    __slots__ = ()


class Refused(Event):
    """A peer was refused by the channel policy: ``by_peer`` is True when
    the peer refused us, False when we refused the peer; ``text`` says why."""

    _fields = Event._fields + ("by_peer",)
    __slots__ = ("by_peer",)
    by_peer: bool


class PublisherNew(Event):
    """A publisher's ring for ``channel`` attached: its messages follow."""

    __slots__ = ()


class Stats(NamedTuple):
    """A handle's counters since it was opened (kite_get_stats)."""

    published: int
    received: int
    lost: int
    refused: int
    peers: int
    wakeups_sent: int
    events_dropped: int
