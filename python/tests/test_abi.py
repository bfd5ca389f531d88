"""The ctypes mirror of kite.h against the C compiler's view of it: every
structure's size and every field's offset, and the constants, so the
binding cannot drift from the header."""
from __future__ import annotations

import ctypes
import shutil
import struct
import subprocess

import pytest

from conftest import ROOT
from kite import _lib
import kite


def _c_fields(struct_type, c_name, prefix=""):
    """(C expression for offsetof, python offset, size) of every leaf field."""
    out = []
    for name, ctype in struct_type._fields_:
        field = getattr(struct_type, name)
        path = prefix + name
        out.append((f"offsetof({c_name}, {path})", field.offset, field.size, path))
        if isinstance(ctype, type) and issubclass(ctype, ctypes.Structure):
            for expr, off, size, sub in _c_fields(ctype, c_name, path + "."):
                out.append((expr, field.offset + off, size, sub))
    return out


CONSTANTS = {
    "KITE_MESSAGE": _lib.MESSAGE, "KITE_LOSS": _lib.LOSS,
    "KITE_PUBLISHER_GONE": _lib.PUBLISHER_GONE, "KITE_REFUSED": _lib.REFUSED,
    "KITE_PUBLISHER_NEW": _lib.PUBLISHER_NEW, "KITE_EBADNAME": kite.EBADNAME,
    "KITE_ETOOBIG": kite.ETOOBIG, "KITE_ENOTSUB": kite.ENOTSUB, "KITE_ENOSODIUM": kite.ENOSODIUM,
    "KITE_PEER_ADDR_MAX": _lib.PEER_ADDR_MAX, "KITE_SUB_RELIABLE": _lib.SUB_RELIABLE, "KITE_CHANNEL_MAX": kite.CHANNEL_MAX,
    "(long long)KITE_MSG_MAX": kite.MSG_MAX,
}


@pytest.fixture(scope="module")
def c_view(tmp_path_factory):
    """What the C compiler says: {expression: value}."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        pytest.fail("no C compiler (cc) to check the ABI against")
    exprs = []
    for st, c_name in _lib.C_NAMES.items():
        exprs.append(f"sizeof({c_name})")
        exprs.extend(e for e, _, _, _ in _c_fields(st, c_name))
    exprs.extend(CONSTANTS)
    exprs.append("sizeof(enum kite_event_type)")
    lines = "\n".join(f'\tprintf("%s=%lld\\n", "{e}", (long long)({e}));' for e in exprs)
    src = ("#include <stddef.h>\n#include <stdio.h>\n#include <kite.h>\n"
           "#include <kite/handoff.h>\nint main(void)\n{\n" + lines + "\n\treturn 0;\n}\n")
    d = tmp_path_factory.mktemp("abi")
    (d / "abi.c").write_text(src)
    subprocess.run([cc, "-std=c11", "-D_GNU_SOURCE", "-Wall", "-Werror",
                    f"-I{ROOT / 'include'}", "-o", str(d / "abi"), str(d / "abi.c")],
                   check=True)
    out = subprocess.run([str(d / "abi")], check=True, capture_output=True, text=True).stdout
    return {k: int(v) for k, v in (line.split("=", 1) for line in out.splitlines())}


@pytest.mark.parametrize("st", list(_lib.C_NAMES), ids=lambda s: _lib.C_NAMES[s])
def test_struct_layout_matches_the_header(c_view, st):
    c_name = _lib.C_NAMES[st]
    assert ctypes.sizeof(st) == c_view[f"sizeof({c_name})"], c_name
    for expr, offset, _, path in _c_fields(st, c_name):
        assert offset == c_view[expr], f"{c_name}.{path}"


def test_options_reserved_fields_are_mirrored(c_view):
    # kite_options ends with lan, reliable_deadline_ms, reserved32 and
    # reserved[3]: a binding that forgot them would hand kite_open garbage
    # there (and be refused with EINVAL).
    assert _lib.Options.reserved32.size == 4
    assert _lib.Options.lan.size == 8
    assert _lib.Options.reserved.size == 3 * 8
    assert _lib.Options.reserved.offset + 24 == c_view["sizeof(kite_options)"]


def test_constants_match_the_header(c_view):
    for expr, value in CONSTANTS.items():
        assert c_view[expr] == value, expr
    assert c_view["sizeof(enum kite_event_type)"] == ctypes.sizeof(ctypes.c_int)


def test_fast_path_format_reads_the_event_as_ctypes_does():
    # recv() reads kite_event with one struct.unpack: same bytes, same values.
    ev = _lib.Event()
    ev.type, ev.msg.len, ev.msg.publisher, ev.msg.seq = 1, 7, 2**64 - 1, 42
    ev.msg.timestamp_ns, ev.msg.pid, ev.msg.uid, ev.msg.gid = 123, -1, 2**32 - 1, 5
    ev.lost, ev.refused_by_peer = 99, 1
    fmt, names = _lib.flat_format(_lib.Event)
    assert struct.calcsize(fmt) == ctypes.sizeof(_lib.Event)
    values = dict(zip(names, struct.unpack(fmt, bytes(ev))))
    assert values["type"] == 1 and values["msg.len"] == 7
    assert values["msg.publisher"] == 2**64 - 1 and values["msg.seq"] == 42
    assert values["msg.pid"] == -1 and values["msg.uid"] == 2**32 - 1
    assert values["msg.gid"] == 5 and values["lost"] == 99
    assert values["refused_by_peer"] == 1
