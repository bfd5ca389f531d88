"""LAN channels from Python: Handle(lan=...), Message.lan and lan_stats(),
between two network namespaces this test creates (a veth pair; nothing
leaves them) and removes, also when it fails."""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

import kite

SUBSCRIBER = r"""
import json, sys, kite
h = kite.Handle(lan="eth0")
h.subscribe("lanpy.>")
print("ready", flush=True)
got = []
while len(got) < int(sys.argv[1]):
    m = h.recv(timeout=10)
    if m is None:
        break
    if isinstance(m, kite.Message):
        got.append({"data": m.data.decode(), "seq": m.seq, "pid": m.pid, "uid": m.uid,
                    "lan": m.lan._asdict() if m.lan else None})
print(json.dumps({"got": got, "stats": h.lan_stats()}), flush=True)
"""

PUBLISHER = r"""
import json, os, sys, kite
with kite.Handle(lan=sys.argv[1] if sys.argv[1] != "-" else None) as h:
    for i in range(1, 4):
        h.publish("lanpy.x", f"m{i}".encode())
    print(json.dumps({"pid": os.getpid(), "stats": h.lan_stats() if sys.argv[1] != "-" else None}))
"""


@pytest.fixture
def two_hosts():
    """Two namespaces joined by a veth pair: ("a" at 10.79.0.1, "b" at .2)."""
    if os.geteuid() != 0 or not shutil.which("ip"):
        pytest.skip("needs root and ip(8) to create network namespaces")
    names = {h: f"kpy{os.getpid()}{h}" for h in "ab"}

    def ip(*args):
        subprocess.run(["ip", *args], check=True, capture_output=True)
    try:
        for ns in names.values():
            ip("netns", "add", ns)
            ip("-n", ns, "link", "set", "lo", "up")
        ip("-n", names["a"], "link", "add", "eth0", "type", "veth", "peer", "name", "eth0",
           "netns", names["b"])
        for i, h in enumerate("ab", 1):
            ip("-n", names[h], "addr", "add", f"10.79.0.{i}/24", "dev", "eth0")
            ip("-n", names[h], "link", "set", "eth0", "up")
        yield names
    finally:
        for ns in names.values():
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_lan_messages_carry_their_claimed_origin(procs, bus, two_hosts):
    a, b = (["ip", "netns", "exec", two_hosts[h]] for h in "ab")
    # b hears 3 from a over the LAN, then 3 from a local publisher.
    sub = procs.python(SUBSCRIBER, "6", prefix=b, text=True)
    assert sub.stdout.readline().strip() == "ready", sub.stderr.read()
    remote = procs.python(PUBLISHER, "eth0", prefix=a, text=True)
    out, err = remote.communicate(timeout=20)
    assert remote.returncode == 0, err
    sent = json.loads(out)
    local = procs.python(PUBLISHER, "-", prefix=b, text=True)
    lout, err = local.communicate(timeout=20)
    assert local.returncode == 0, err
    local_pid = json.loads(lout)["pid"]
    result = json.loads(sub.stdout.readline())
    got = result["got"]
    from_lan = [m for m in got if m["lan"]]
    local_msgs = [m for m in got if not m["lan"]]
    # Order holds per (publisher, channel), not across the two.
    assert [m["data"] for m in from_lan] == ["m1", "m2", "m3"], got
    assert [m["data"] for m in local_msgs] == ["m1", "m2", "m3"], got
    for i, m in enumerate(from_lan, 1):
        assert m["seq"] == i
        assert m["lan"]["address"] == "10.79.0.1"
        assert m["lan"]["pid"] == m["pid"] == sent["pid"]  # claimed, as sent
        assert m["uid"] == 2**32 - 1                         # not verified
        assert m["lan"]["port"] > 0 and m["lan"]["host"] != 0
    for m in got:
        if not m["lan"]:
            assert m["pid"] == local_pid and m["uid"] == os.geteuid()  # the kernel's word
    assert sent["stats"]["datagrams_sent"] >= 3
    assert result["stats"]["frames_received"] >= 3
    assert result["stats"]["frames_rejected"] == 0


def test_lan_option_and_stats_errors(bus):
    with pytest.raises(kite.KiteError):
        kite.Handle(lan="eth0\0x")
    with pytest.raises(kite.KiteError):
        kite.Handle(lan="eth0,port=0")  # refused by the option parser
    with kite.Handle() as h:
        with pytest.raises(kite.KiteError):
            h.lan_stats()  # not a LAN handle


NO_SODIUM = r"""
import json, sys, kite
try:
    kite.Handle(lan="lo,key=" + sys.argv[1])
    print(json.dumps({"opened": True}))
except kite.KiteError as e:
    print(json.dumps({"code": e.code, "errno": e.errno, "strerror": e.strerror}))
"""


def _libsodium_path():
    out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.strip().startswith("libsodium.so.23 ") and "x86-64" in line:
            return os.path.realpath(line.rsplit(" ", 1)[-1])
    return None


def test_keyed_handle_without_libsodium_raises_enosodium(procs, tmp_path):
    # A host without libsodium, made by a mount namespace of the child's own
    # in which the library is /dev/null (as tests/sh/lan_test.sh does).
    sodium = _libsodium_path()
    if os.geteuid() != 0 or not shutil.which("unshare") or not sodium:
        pytest.skip("needs root, unshare(1) and libsodium23 to hide it")
    assert kite.ENOSODIUM == -1007
    key = tmp_path / "lan.key"
    key.write_text("ab" * 32 + "\n")
    key.chmod(0o600)
    hide = ["unshare", "-m", "sh", "-c", 'mount --bind /dev/null "$0" && exec "$@"', sodium]
    p = procs.python(NO_SODIUM, str(key), prefix=hide, text=True)
    out, err = p.communicate(timeout=20)
    assert p.returncode == 0, err
    got = json.loads(out)
    assert got["code"] == kite.ENOSODIUM, got
    assert got["errno"] is None  # a kite code, not an errno
    assert got["strerror"] == kite.strerror(kite.ENOSODIUM)
    assert "apt install libsodium23" in got["strerror"]
