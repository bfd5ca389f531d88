"""Finding libkite.so and declaring its C API to ctypes.

The structures below mirror include/kite.h and include/kite/handoff.h field
for field; python/tests/test_abi.py compiles a C program that prints the
real sizes and offsets and compares them with these, so the two cannot
drift apart unnoticed.
"""
from __future__ import annotations

import ctypes
import os
from pathlib import Path
from typing import List, Optional, Tuple

SONAME = "libkite.so.0"

# Where libkite is looked for, in this order (docs: python/README.md):
#   1. $KITE_LIBRARY: the library file itself, or a folder holding libkite.so.0
#   2. the build tree of the source checkout this package was imported from
#      (python/kite/ -> build/libkite.so.0), so tests and examples run
#      against the library just built
#   3. the system: the dynamic loader's own search (LD_LIBRARY_PATH,
#      ld.so.cache, /lib, /usr/lib), then /usr/local/lib, where
#      `make install` puts it by default before ldconfig has run
ENV_VAR = "KITE_LIBRARY"
_SYSTEM_FALLBACK = ("/usr/local/lib/" + SONAME,)


def candidates() -> List[Tuple[str, str]]:
    """Every place libkite is looked for, in order: (origin, path)."""
    found: List[Tuple[str, str]] = []
    env = os.environ.get(ENV_VAR)
    if env:
        p = Path(env)
        found.append((ENV_VAR, str(p / SONAME) if p.is_dir() else env))
    here = Path(__file__).resolve().parent  # <checkout>/python/kite
    root = here.parent.parent
    if here.parent.name == "python" and (root / "include" / "kite.h").is_file():
        found.append(("build tree", str(root / "build" / SONAME)))
    found.append(("system", SONAME))
    found.extend(("system", p) for p in _SYSTEM_FALLBACK)
    return found


def _load() -> Tuple[ctypes.CDLL, str]:
    tried = []
    env_set = bool(os.environ.get(ENV_VAR))
    for origin, path in candidates():
        if origin == "build tree" and not os.path.exists(path):
            tried.append(f"{path} ({origin}: absent)")
            continue
        try:
            return ctypes.CDLL(path, use_errno=True), path
        except OSError as e:
            tried.append(f"{path} ({origin}: {e})")
            if origin == ENV_VAR and env_set:
                # The user named a library: never fall back to another one.
                break
    raise ImportError("kite: cannot load libkite (" + SONAME + "); tried:\n  "
                      + "\n  ".join(tried)
                      + f"\nSet {ENV_VAR} to the library file or its folder.")


class Options(ctypes.Structure):
    """struct kite_options."""
    _fields_ = [
        ("ring_slots", ctypes.c_uint32),
        ("slot_size", ctypes.c_uint32),
        ("spin_us", ctypes.c_uint32),
        ("handshake_ms", ctypes.c_uint32),
        ("bus", ctypes.c_char_p),
        ("idle_ms", ctypes.c_uint32),
        ("reliable_wait_ms", ctypes.c_uint32),
        ("lan", ctypes.c_char_p),
        ("reliable_deadline_ms", ctypes.c_uint32),
        ("reserved32", ctypes.c_uint32),
        ("reserved", ctypes.c_uint64 * 3),
    ]


class SubOptions(ctypes.Structure):
    """struct kite_sub_options."""
    _fields_ = [
        ("flags", ctypes.c_uint32),
        ("last_n", ctypes.c_uint32),
        ("last_ms", ctypes.c_uint32),
        ("reserved32", ctypes.c_uint32),
        ("reserved", ctypes.c_uint64 * 4),
    ]


SUB_RELIABLE = 1  # KITE_SUB_RELIABLE


class Origin(ctypes.Structure):
    """struct kite_origin: a relayed message's remote claim."""
    _fields_ = [
        ("system", ctypes.c_char_p),
        ("subject", ctypes.c_char_p),
        ("host", ctypes.c_char_p),
        ("pid", ctypes.c_int64),
        ("uid", ctypes.c_int64),
        ("publisher", ctypes.c_uint64),
        ("seq", ctypes.c_uint64),
        ("headers", ctypes.c_void_p),  # const char *, headers_len bytes
        ("headers_len", ctypes.c_size_t),
    ]


class Msg(ctypes.Structure):
    """struct kite_msg."""
    _fields_ = [
        ("channel", ctypes.c_char_p),
        ("data", ctypes.c_void_p),
        ("len", ctypes.c_size_t),
        ("publisher", ctypes.c_uint64),
        ("seq", ctypes.c_uint64),
        ("timestamp_ns", ctypes.c_uint64),
        ("pid", ctypes.c_int32),   # pid_t
        ("uid", ctypes.c_uint32),  # uid_t
        ("gid", ctypes.c_uint32),  # gid_t
        # const struct kite_origin *: a relayed message's remote claim
        # (kite bridge); NULL for ordinary messages.
        ("origin", ctypes.c_void_p),
    ]


class Event(ctypes.Structure):
    """struct kite_event."""
    _fields_ = [
        ("type", ctypes.c_int),  # enum kite_event_type
        ("msg", Msg),
        ("lost", ctypes.c_uint64),
        ("refused_by_peer", ctypes.c_int),
        ("text", ctypes.c_char_p),
    ]


class Stats(ctypes.Structure):
    """struct kite_stats."""
    _fields_ = [(name, ctypes.c_uint64) for name in (
        "published", "received", "lost", "refused", "peers",
        "wakeups_sent", "events_dropped")]


PEER_ADDR_MAX = 128


class Peer(ctypes.Structure):
    """struct kite_peer (kite/handoff.h)."""
    _fields_ = [
        ("family", ctypes.c_int),
        ("pid", ctypes.c_int32),
        ("uid", ctypes.c_uint32),
        ("gid", ctypes.c_uint32),
        ("port", ctypes.c_uint16),
        ("host", ctypes.c_char * 64),
        ("addr_len", ctypes.c_uint32),
        ("addr", ctypes.c_ubyte * PEER_ADDR_MAX),
    ]


def flat_format(struct: type) -> "tuple[str, tuple[str, ...]]":
    """A struct-module format that reads a ctypes Structure (nested ones
    flattened) in one call, built from its fields' own offsets: the fast
    path of Handle.recv(). Returns (format, field names)."""
    fmt, names, pos = "@", [], 0

    def walk(s: type, base: int, prefix: str) -> None:
        nonlocal fmt, pos
        for name, ctype in s._fields_:
            offset = base + getattr(s, name).offset
            if isinstance(ctype, type) and issubclass(ctype, ctypes.Structure):
                walk(ctype, offset, prefix + name + ".")
                continue
            fmt += f"{offset - pos}x" if offset > pos else ""
            # A simple ctypes type's _type_ is its struct code, but for
            # C strings ("z"), read as the pointer they are.
            fmt += "P" if ctype._type_ == "z" else ctype._type_
            names.append(prefix + name)
            pos = offset + ctypes.sizeof(ctype)
    walk(struct, 0, "")
    fmt += f"{ctypes.sizeof(struct) - pos}x" if ctypes.sizeof(struct) > pos else ""
    return fmt, tuple(names)


class LanOrigin(ctypes.Structure):
    """struct kite_lan_origin: where a LAN message came from, as claimed."""
    _fields_ = [
        ("host", ctypes.c_uint64),
        ("address", ctypes.c_char * 48),
        ("port", ctypes.c_uint16),
        ("pid", ctypes.c_int32),
    ]


class LanStats(ctypes.Structure):
    """struct kite_lan_stats (kite_lan_stats_get takes its size: fields
    appended later by the library are simply not read)."""
    _fields_ = [(name, ctypes.c_uint64) for name in (
        "datagrams_sent", "messages_unsent", "datagrams_received", "frames_received",
        "frames_rejected", "frames_bad_crc", "kernel_drops", "duplicates", "late",
        "partials_dropped", "queue_dropped", "rcvbuf_bytes", "streams",
        "repaired", "naks_sent", "naks_received", "resent", "resend_refused",
        "frames_unauthenticated", "gso_sends", "gso_refused", "gro_buffers",
        "batches_received", "rx_pauses")]


# C names of the structures above, for the ABI test.
C_NAMES = {Options: "kite_options", SubOptions: "struct kite_sub_options",
           Origin: "struct kite_origin", Msg: "kite_msg", Event: "kite_event",
           Stats: "kite_stats", Peer: "struct kite_peer",
           LanOrigin: "kite_lan_origin", LanStats: "kite_lan_stats"}

# enum kite_event_type
MESSAGE, LOSS, PUBLISHER_GONE, REFUSED, PUBLISHER_NEW = 1, 2, 3, 4, 5
# enum kite_error
EBADNAME, ETOOBIG, ENOTSUB, ENOSODIUM = -1000, -1001, -1005, -1007

lib, path = _load()

_c = ctypes
_P = _c.c_void_p
for _name, _res, _args in (
        ("kite_open", _c.c_int, [_c.POINTER(_P), _c.POINTER(Options)]),
        ("kite_close", None, [_P]),
        ("kite_publish", _c.c_int64, [_P, _c.c_char_p, _c.c_void_p, _c.c_size_t]),
        ("kite_publish_origin", _c.c_int64,
         [_P, _c.c_char_p, _c.c_void_p, _c.c_size_t, _c.POINTER(Origin)]),
        ("kite_subscribe", _c.c_int, [_P, _c.c_char_p]),
        ("kite_subscribe_opts", _c.c_int, [_P, _c.c_char_p, _c.POINTER(SubOptions)]),
        ("kite_unsubscribe", _c.c_int, [_P, _c.c_char_p]),
        ("kite_allow_uid", _c.c_int, [_P, _c.c_char_p, _c.c_uint32]),
        ("kite_allow_gid", _c.c_int, [_P, _c.c_char_p, _c.c_uint32]),
        ("kite_recv", _c.c_int, [_P, _c.POINTER(Event), _c.c_int]),
        ("kite_fd", _c.c_int, [_P]),
        ("kite_arm", _c.c_int, [_P]),
        ("kite_id", _c.c_uint64, [_P]),
        ("kite_get_stats", None, [_P, _c.POINTER(Stats)]),
        ("kite_channel_valid", _c.c_int, [_c.c_char_p]),
        ("kite_pattern_valid", _c.c_int, [_c.c_char_p]),
        ("kite_pattern_match", _c.c_int, [_c.c_char_p, _c.c_char_p]),
        ("kite_strerror", _c.c_char_p, [_c.c_int]),
        ("kite_msg_lan_origin", _c.c_int, [_P, _c.POINTER(Msg), _c.POINTER(LanOrigin)]),
        ("kite_lan_stats_get", _c.c_int, [_P, _c.POINTER(LanStats), _c.c_size_t]),
        ("kite_handoff_fd", _c.c_int, []),
        ("kite_handoff_accept", _c.c_int, [_c.c_int, _c.POINTER(Peer), _c.c_int]),
):
    _f = getattr(lib, _name)
    _f.restype = _res
    _f.argtypes = _args


# kite_recv for the receive loop, without argtypes: ctypes then skips the
# per-argument conversion, about half the cost of the call. Its callers pass
# exactly (ctypes.c_void_p handle, ctypes.byref(Event), 0), types that need
# no conversion and cannot be truncated.
recv_unchecked = lib["kite_recv"]  # a separate function object (not lib.kite_recv)
recv_unchecked.restype = ctypes.c_int


def strerror(code: int) -> str:
    """kite_strerror(code) as text."""
    text: Optional[bytes] = lib.kite_strerror(code)
    return text.decode("utf-8", "replace") if text else "unknown kite error"
