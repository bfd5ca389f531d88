"""kite.Handle: one participant on the machine's kite bus."""
from __future__ import annotations

import asyncio
import ctypes
import errno
import math
import os
import select
import struct
import threading
import time
from typing import AsyncIterator, Dict, Iterator, Optional, Union

from . import _lib
from ._errors import EBADNAME, KiteError, check
from ._types import (Event, LanOrigin, Loss, Message, Origin, PublisherGone,
                     PublisherNew, Refused, Stats)

Received = Union[Message, Event]
Data = Union[bytes, bytearray, memoryview, str]

_EAGAIN = -errno.EAGAIN
_NAP = object()  # _next(): nap briefly, do not wait for the fd
_string_at = ctypes.string_at
_kite_recv = _lib.recv_unchecked
_kite_publish = _lib.lib.kite_publish
_MESSAGE = _lib.MESSAGE
_EVENT_FORMAT, _EVENT_FIELDS = _lib.flat_format(_lib.Event)
assert _EVENT_FIELDS == ("type", "msg.channel", "msg.data", "msg.len", "msg.publisher",
                         "msg.seq", "msg.timestamp_ns", "msg.pid", "msg.uid",
                         "msg.gid", "msg.origin", "lost", "refused_by_peer", "text")
_origin_text = lambda b: (b or b"").decode("utf-8", "replace")  # noqa: E731
_EVENT_UNPACK = struct.Struct(_EVENT_FORMAT).unpack_from
_new_message = tuple.__new__
_INT_MAX_MS = 2**31 - 1
_UID_UNKNOWN = 2**32 - 1  # (uid_t)-1: a LAN sender's uid, not verified

# How many items amessages() yields in a row before it lets the event loop
# run other tasks: a flooded handle must not starve the rest of the program.
_ASYNC_BATCH = 64


def _name(value: Union[str, bytes], what: str) -> bytes:
    """A channel name or pattern as the C string libkite reads.

    A NUL would silently cut the name short in C, so it is refused here
    with the error libkite gives for any other malformed name."""
    raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    if b"\0" in raw:
        raise KiteError(EBADNAME, f"{what} {value!r}")
    return raw


def _origin(address: int) -> Origin:
    """A copy of the struct kite_origin at address (valid until the next
    kite_recv: call under the handle's lock)."""
    o = _lib.Origin.from_address(address)
    text = _origin_text
    return Origin(text(o.system), text(o.subject), text(o.host), o.pid, o.uid,
                  o.publisher, o.seq,
                  _string_at(o.headers, o.headers_len) if o.headers_len else b"")


def _timeout_ms(seconds: Optional[float]) -> int:
    """A timeout in seconds as kite_recv's milliseconds (-1: forever),
    rounded up so a short positive timeout never becomes a poll."""
    if seconds is None:
        return -1
    if seconds < 0 or math.isnan(seconds):
        raise ValueError(f"timeout must be None or >= 0, not {seconds!r}")
    return min(math.ceil(seconds * 1000), _INT_MAX_MS)


class Handle:
    """A handle on the machine's kite bus (kite_open / kite_close).

    ``bus``: the bus name (None: $KITE_BUS, else "default"); handles see only
    peers on the same bus. Options (0 = the library's default):
    ``ring_slots`` (a power of two; a ring holds ring_slots * slot_size bytes),
    ``slot_size`` (largest inline record, a multiple of 64), ``spin_us``,
    ``handshake_ms`` (how long opening and subscribing wait for peers),
    ``idle_ms`` (how long a channel published on may stay silent before its
    ring is released until its next message), ``reliable_wait_ms`` (how
    long publish() waits for a reliable subscriber it would overrun before
    it raises EAGAIN; 0: not at all, 0xFFFFFFFF: as long as it takes) and
    ``reliable_deadline_ms`` (how long a reliable subscriber may hold this
    publisher without reading before it is dropped to radio; 0: 2000).
    ``lan``: also publish and subscribe across the LAN by UDP multicast, on
    this interface (``"eth0"``, ``"auto"``, with options as for
    ``kite pub --lan``: ``"eth0,port=7475,ttl=1"``); None: $KITE_LAN, else
    this machine only. Messages from other hosts carry ``Message.lan``.

    Use it as a context manager, or call close(). Any method may be called
    from any thread: calls on one handle are serialised by a lock, and a
    thread waiting in recv() does not hold it, so another thread can publish
    meanwhile.
    """

    def __init__(self, bus: Optional[str] = None, *, ring_slots: int = 0,
                 slot_size: int = 0, spin_us: int = 0, handshake_ms: int = 0,
                 idle_ms: int = 0, lan: Optional[str] = None,
                 reliable_wait_ms: int = 0, reliable_deadline_ms: int = 0) -> None:
        self._k: Optional[int] = None   # None once closed
        self._raw: Optional[int] = None  # freed when the last waiter has left
        self._waiters = 0
        self._lock = threading.Lock()
        self._ev = _lib.Event()
        self._msg = self._ev.msg  # a view into _ev, not a copy
        self._ev_ref = ctypes.byref(self._ev)
        self._ev_bytes = memoryview(self._ev).cast("B")
        self._channels: Dict[bytes, str] = {}  # C names seen, decoded
        self._names: Dict[Union[str, bytes], bytes] = {}  # names published, encoded
        self._awaiting = False
        self._poller: Optional[select.poll] = None  # reused by recv()
        opts = _lib.Options()
        for name, value in (("ring_slots", ring_slots), ("slot_size", slot_size),
                            ("spin_us", spin_us), ("handshake_ms", handshake_ms),
                            ("idle_ms", idle_ms),
                            ("reliable_wait_ms", reliable_wait_ms),
                            ("reliable_deadline_ms", reliable_deadline_ms)):
            if not 0 <= value <= 0xFFFFFFFF:
                raise KiteError(-errno.EINVAL, f"{name}={value}")
            setattr(opts, name, value)
        if bus is not None:
            raw_bus = bus.encode("utf-8")
            if b"\0" in raw_bus:  # kite_open's own answer to a bad bus name
                raise KiteError(-errno.EINVAL, f"bus {bus!r}")
            opts.bus = raw_bus
        if lan is not None:
            raw_lan = lan.encode("utf-8")
            if b"\0" in raw_lan:
                raise KiteError(-errno.EINVAL, f"lan {lan!r}")
            opts.lan = raw_lan
        k = ctypes.c_void_p()
        check(_lib.lib.kite_open(ctypes.byref(k), ctypes.byref(opts)), "kite_open")
        try:
            # close() wakes waiters in other threads or tasks through it.
            self._close_r, self._close_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError:
            _lib.lib.kite_close(k.value)
            raise
        self._k = self._raw = k.value
        self._kp = k  # the same pointer as a ctypes object, for _kite_recv
        self._fd = _lib.lib.kite_fd(self._k)

    # -- life cycle --------------------------------------------------------

    def close(self) -> None:
        """Close the handle: peers see it leave. A recv() or amessages()
        waiting in another thread or task returns (None, or the iteration
        ends). Closing twice is allowed."""
        with self._lock:
            if self._k is None:
                return
            self._k = None
            if self._waiters:
                os.write(self._close_w, b"x")  # the last waiter releases it
            else:
                self._release()

    def _release(self) -> None:
        """Free the C handle and the pipe (lock held, no waiter left): only
        now, so no waiter polls a descriptor that was closed or reused."""
        raw, self._raw = self._raw, None
        self._poller = None
        if raw is not None:
            _lib.lib.kite_close(raw)
            os.close(self._close_r)
            os.close(self._close_w)

    def _wait_begin(self, want_poller: bool = True) -> "Optional[select.poll]":
        """Count a waiter (close() then leaves the handle to the last one)
        and give it a poll object on the fd and the close pipe: the
        handle's own, unless another thread is using it."""
        with self._lock:
            self._handle()
            self._waiters += 1
            if not want_poller:
                return None
            poller, self._poller = self._poller, None
        if poller is None:
            poller = select.poll()
            poller.register(self._fd, select.POLLIN)
            poller.register(self._close_r, select.POLLIN)
        return poller

    def _wait_end(self, poller: "Optional[select.poll]" = None) -> None:
        with self._lock:
            if poller is not None:
                self._poller = poller
            self._waiters -= 1
            if self._k is None and not self._waiters:
                self._release()

    @property
    def closed(self) -> bool:
        """True once close() was called."""
        return self._k is None

    def __enter__(self) -> "Handle":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_raw", None) is not None:
            self._k = None
            self._release()

    def _handle(self) -> int:
        k = self._k
        if k is None:
            raise ValueError("operation on a closed kite handle")
        return k

    # -- publishing and subscriptions -------------------------------------

    def publish(self, channel: str, data: Data = b"") -> int:
        """Publish ``data`` (bytes, any buffer, or str sent as UTF-8) on a
        channel name (no wildcards); returns its sequence number. Never waits
        for a subscriber; a handle does not receive its own messages."""
        ch = self._names.get(channel)
        if ch is None:
            ch = _name(channel, "channel")
            if len(self._names) < 4096:
                self._names[channel] = ch
        if isinstance(data, str):
            data = data.encode("utf-8")
        if isinstance(data, bytes):
            buf, size = data, len(data)
        else:
            view = memoryview(data).cast("B")
            size = view.nbytes
            buf = (ctypes.c_char * size).from_buffer(view) if not view.readonly \
                else view.tobytes()
        with self._lock:
            k = self._k
            if k is None:
                raise ValueError("operation on a closed kite handle")
            rc = _kite_publish(k, ch, buf, size)
        if rc < 0:
            raise KiteError(rc, f"publish {channel!r}")
        return rc

    def publish_origin(self, channel: str, data: Data, origin: Origin) -> int:
        """Publish as publish(), relaying where the message came from (for
        importers such as a bridge): subscribers get ``origin`` in
        ``Message.origin``, a claim vouched for by nobody but this process.
        ``origin.system`` and ``origin.subject`` must not be empty."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        data = bytes(data)
        enc = lambda s: s.encode("utf-8") if isinstance(s, str) else s  # noqa: E731
        headers = bytes(origin.headers or b"")
        hbuf = ctypes.create_string_buffer(headers, len(headers) + 1)
        c = _lib.Origin(enc(origin.system), enc(origin.subject), enc(origin.host or ""),
                        origin.pid, origin.uid, origin.publisher, origin.seq,
                        ctypes.cast(hbuf, ctypes.c_void_p), len(headers))
        with self._lock:
            rc = _lib.lib.kite_publish_origin(self._handle(), _name(channel, "channel"),
                                              data, len(data), ctypes.byref(c))
        if rc < 0:
            raise KiteError(rc, f"publish_origin {channel!r}")
        return rc

    def _call(self, fn, arg: bytes, *rest: int) -> None:
        with self._lock:
            return fn(self._handle(), arg, *rest)

    def subscribe(self, pattern: str, last: int = 0, last_ms: int = 0, *,
                  reliable: bool = False) -> None:
        """Subscribe to a pattern (``*``: one token; a final ``>``: one or
        more). Returns once every peer has acknowledged, or after
        handshake_ms. Subscribing twice is a no-op (EEXIST if the second
        asks for the other delivery).

        ``last=N`` (and/or ``last_ms=T``): each ring the pattern attaches
        first delivers the last N messages it still holds (of the last T
        ms), with their original seq, then live ones (``last=1``: a
        last-value channel). ``reliable``: local publishers wait for this
        handle rather than overrun it, up to their deadline
        (KITE_SUB_RELIABLE, see kite.h)."""
        for value, what in ((last, "last"), (last_ms, "last_ms")):
            if not 0 <= value <= 0xFFFFFFFF:
                raise KiteError(-errno.EINVAL, f"{what} {value}")
        opts = _lib.SubOptions(flags=_lib.SUB_RELIABLE if reliable else 0,
                               last_n=last, last_ms=last_ms)
        check(self._call(_lib.lib.kite_subscribe_opts, _name(pattern, "pattern"),
                         ctypes.byref(opts)), f"subscribe {pattern!r}")

    def unsubscribe(self, pattern: str) -> None:
        """Remove a subscription (KiteError ENOTSUB if there was none)."""
        check(self._call(_lib.lib.kite_unsubscribe, _name(pattern, "pattern")),
              f"unsubscribe {pattern!r}")

    def allow_uid(self, pattern: str, uid: int) -> None:
        """Let ``uid`` take part in channels matching pattern, either way
        (beyond the default: the same uid, plus root)."""
        check(self._call(_lib.lib.kite_allow_uid, _name(pattern, "pattern"),
                         _id(uid, "uid")), f"allow_uid {pattern!r}")

    def allow_gid(self, pattern: str, gid: int) -> None:
        """Let members of group ``gid`` take part in channels matching pattern."""
        check(self._call(_lib.lib.kite_allow_gid, _name(pattern, "pattern"),
                         _id(gid, "gid")), f"allow_gid {pattern!r}")

    # -- receiving ---------------------------------------------------------

    def _lan_origin(self) -> Optional[LanOrigin]:
        """The LAN origin of the message kite_recv just gave (under the
        lock), or None if it came from this machine."""
        o = _lib.LanOrigin()
        if _lib.lib.kite_msg_lan_origin(self._kp, ctypes.byref(self._msg),
                                        ctypes.byref(o)) != 1:
            return None
        return LanOrigin(o.host, o.address.decode("ascii", "replace"), o.port, o.pid)

    def lan_stats(self) -> Dict[str, int]:
        """The LAN side's counters since the handle was opened (datagrams
        sent and received, messages unsent, frames rejected, kernel drops,
        duplicates, ...). KiteError (ENOTCONN) on a handle without ``lan``."""
        st = _lib.LanStats()
        with self._lock:
            rc = _lib.lib.kite_lan_stats_get(self._handle(), ctypes.byref(st),
                                             ctypes.sizeof(st))
        if rc < 0:
            raise KiteError(rc, "lan_stats")
        return {name: getattr(st, name) for name, _ in st._fields_}

    def _take(self) -> Optional[Received]:
        """kite_recv(0) under the lock, copied out; None if nothing."""
        with self._lock:
            if self._k is None:
                return None
            rc = _kite_recv(self._kp, self._ev_ref, 0)
            if rc == 0:
                # One unpack reads every field (a ctypes attribute each
                # would cost as much as the rest of the call).
                (kind, _, data, size, publisher, seq, ts, pid, uid, gid, optr,
                 lost, refused, _) = _EVENT_UNPACK(self._ev_bytes)
                raw = self._msg.channel
                if kind == _MESSAGE:
                    payload = _string_at(data, size) if size else b""
                    origin = _origin(optr) if optr else None
                    # Only a LAN message has no kernel-verified uid.
                    lan = self._lan_origin() if uid == _UID_UNKNOWN else None
                else:
                    text = self._ev.text
        if rc == _EAGAIN:
            return None
        if rc:
            raise KiteError(rc, "recv")
        channel = self._channels.get(raw)
        if channel is None:
            channel = raw.decode("utf-8", "replace")
            if len(self._channels) < 4096:
                self._channels[raw] = channel
        if kind == _MESSAGE:
            return _new_message(Message, (channel, payload, publisher, seq, ts,
                                          pid, uid, gid, origin, lan))
        common = dict(channel=channel, publisher=publisher, pid=pid, uid=uid,
                      gid=gid, text=(text or b"").decode("utf-8", "replace"))
        if kind == _lib.LOSS:
            return Loss(lost=lost, **common)
        if kind == _lib.PUBLISHER_GONE:
            return PublisherGone(**common)
        if kind == _lib.REFUSED:
            return Refused(by_peer=bool(refused), **common)
        if kind == _lib.PUBLISHER_NEW:
            return PublisherNew(**common)
        return Event(**common)  # a type newer than this binding

    def _arm(self) -> bool:
        """kite_arm under the lock: True when armed (wait for the fd)."""
        with self._lock:
            return self._k is not None and _lib.lib.kite_arm(self._k) == 0

    def _next(self) -> Iterator[Optional[Received]]:
        """The event-loop pattern of kite.h, as steps: an item when there is
        one; None when the caller must wait for the fd (armed), or after a
        few unarmed rounds with nothing, for a short nap instead (a ring
        that keeps saying it is ready without delivering cannot make us
        spin). Stops when the handle is closed."""
        unarmed = 0
        while self._k is not None:
            item = self._take()
            if item is not None:
                unarmed = 0
                yield item
            elif self._arm():
                unarmed = 0
                yield None
            elif self._k is not None:
                unarmed += 1
                if unarmed >= 3:
                    unarmed = 0
                    yield _NAP

    def recv(self, timeout: Optional[float] = None) -> Optional[Received]:
        """The next Message or event (Loss, PublisherGone, Refused,
        PublisherNew), waiting at most ``timeout`` seconds (None: as long as
        it takes; 0: do not wait). Returns None when the time is up or when
        another thread closes the handle meanwhile; ValueError if it was
        already closed. A signal handler that raises (Ctrl-C) ends the wait
        with its exception; one that returns lets the wait go on (PEP 475)."""
        self._handle()
        ms = _timeout_ms(timeout)
        item = self._take()
        if item is not None or timeout == 0:
            return item
        deadline = None if ms < 0 else time.monotonic() + ms / 1000
        poller = self._wait_begin()
        try:
            for item in self._next():
                if item is not None and item is not _NAP:
                    return item
                wait = None
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return None
                    wait = math.ceil(left * 1000)
                if item is _NAP:
                    wait = 1 if wait is None else min(wait, 1)
                poller.poll(wait)  # Python retries it after EINTR
            return None
        finally:
            self._wait_end(poller)

    def messages(self, timeout: Optional[float] = None) -> Iterator[Received]:
        """Iterate over what recv() delivers (messages and events) until the
        handle is closed, or until nothing arrives for ``timeout`` seconds.
        ``for m in h.messages(): if isinstance(m, kite.Message): ...``"""
        take = self._take
        while self._k is not None:
            item = take()  # the fast path while messages keep coming
            if item is None:
                item = self.recv(timeout)
                if item is None:
                    return
            yield item

    async def arecv(self, timeout: Optional[float] = None) -> Optional[Received]:
        """recv() for asyncio: waits on kite_fd() with loop.add_reader, so
        the event loop runs other tasks meanwhile (no thread, no polling
        loop). One coroutine at a time per handle."""
        self._handle()
        ms = _timeout_ms(timeout)
        item = self._take()
        if item is not None or timeout == 0:
            return item
        if self._awaiting:
            raise RuntimeError("arecv() called while another coroutine is "
                               "already waiting on this kite handle")
        loop = asyncio.get_running_loop()
        deadline = None if ms < 0 else loop.time() + ms / 1000
        self._awaiting = True
        self._wait_begin(want_poller=False)
        try:
            for item in self._next():
                if item is not None and item is not _NAP:
                    return item
                left = None if deadline is None else deadline - loop.time()
                if left is not None and left <= 0:
                    return None
                if item is _NAP:
                    await asyncio.sleep(0.001 if left is None else min(left, 0.001))
                else:
                    await self._readable(loop, left)
            return None
        finally:
            self._awaiting = False
            self._wait_end()

    async def _readable(self, loop: asyncio.AbstractEventLoop,
                        timeout: Optional[float]) -> None:
        """Until kite_fd() or the close pipe is readable, or timeout."""
        woke = loop.create_future()

        def wake() -> None:
            if not woke.done():
                woke.set_result(None)
        loop.add_reader(self._fd, wake)
        loop.add_reader(self._close_r, wake)
        try:
            if timeout is None:
                await woke
            else:
                await asyncio.wait_for(woke, timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            loop.remove_reader(self._fd)
            loop.remove_reader(self._close_r)

    async def amessages(self, timeout: Optional[float] = None) -> AsyncIterator[Received]:
        """``async for m in h.amessages():`` what arecv() delivers, until the
        handle is closed or nothing arrives for ``timeout`` seconds. Every
        64 items in a row it lets other tasks run."""
        run = 0
        while self._k is not None:
            if run >= _ASYNC_BATCH:
                run = 0
                await asyncio.sleep(0)
                continue
            item = self._take()
            if item is None:
                if self._k is None:
                    return
                item = await self.arecv(timeout)
                if item is None:
                    return
                run = 0
            run += 1
            yield item

    # -- the rest of kite.h ------------------------------------------------

    def fileno(self) -> int:
        """kite_fd(): readable when recv() may have something. Call arm()
        before waiting on it; never read or close it."""
        self._handle()
        return self._fd

    def arm(self) -> bool:
        """kite_arm(): ask publishers to wake this handle's fd. False when
        something is already there (nothing armed: recv now)."""
        self._handle()
        return self._arm()

    @property
    def id(self) -> int:
        """This handle's publisher id (kite_id)."""
        return _lib.lib.kite_id(self._handle())

    def stats(self) -> Stats:
        """The handle's counters (kite_get_stats)."""
        s = _lib.Stats()
        with self._lock:
            _lib.lib.kite_get_stats(self._handle(), ctypes.byref(s))
        return Stats(*(getattr(s, f) for f in Stats._fields))

    def __repr__(self) -> str:
        state = "closed" if self._k is None else f"id={self.id:016x}"
        return f"<kite.Handle {state}>"


def _id(value: int, what: str) -> int:
    if not 0 <= value < 0xFFFFFFFF:  # (uid_t)-1 means "no id" to the kernel
        raise KiteError(-errno.EINVAL, f"{what} {value}")
    return value


def channel_valid(name: str) -> bool:
    """True if ``name`` is a valid channel name (no wildcards)."""
    try:
        return _lib.lib.kite_channel_valid(_name(name, "channel")) == 0
    except KiteError:
        return False


def pattern_valid(pattern: str) -> bool:
    """True if ``pattern`` is a valid subscription pattern."""
    try:
        return _lib.lib.kite_pattern_valid(_name(pattern, "pattern")) == 0
    except KiteError:
        return False


def pattern_match(pattern: str, name: str) -> bool:
    """True if channel ``name`` matches ``pattern``; KiteError EBADNAME if
    either is malformed."""
    p, n = _name(pattern, "pattern"), _name(name, "channel")
    check(_lib.lib.kite_pattern_valid(p), f"pattern {pattern!r}")
    check(_lib.lib.kite_channel_valid(n), f"channel {name!r}")
    return _lib.lib.kite_pattern_match(p, n) == 1
