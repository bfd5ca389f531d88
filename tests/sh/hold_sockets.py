#!/usr/bin/env python3
"""Test helper: open the sockets named on the command line, report them, and
hold them until killed.

    hold_sockets.py OUT SPEC...    SPEC: tcp:ADDR  tcp6:ADDR  udp:ADDR
                                         udp6:ADDR  unix:PATH  udgram:PATH
                                         (ADDR is "host:port", port 0 = any;
                                         a PATH starting with @ is abstract)
    options before OUT: --fork (a child shares the sockets),
                        --ignore-term (SIGTERM is ignored),
                        --reuseport (SO_REUSEPORT: several holders of a port)
OUT gets one line per SPEC: "SPEC PORT INODE", then "ready PID [CHILD]"."""
import os
import signal
import socket
import sys
import time

args = sys.argv[1:]
fork = "--fork" in args
reuseport = "--reuseport" in args
if "--ignore-term" in args:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
args = [a for a in args if not a.startswith("--")]
out, specs = args[0], args[1:]
held, lines = [], []
for spec in specs:
    kind, _, where = spec.partition(":")
    if kind in ("tcp", "tcp6", "udp", "udp6"):
        fam = socket.AF_INET6 if kind.endswith("6") else socket.AF_INET
        typ = socket.SOCK_STREAM if kind.startswith("tcp") else socket.SOCK_DGRAM
        host, _, port = where.rpartition(":")
        s = socket.socket(fam, typ)
        if reuseport:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind((host.strip("[]"), int(port)))
        if typ == socket.SOCK_STREAM:
            s.listen(16)
        port = s.getsockname()[1]
    else:
        typ = socket.SOCK_STREAM if kind == "unix" else socket.SOCK_DGRAM
        s = socket.socket(socket.AF_UNIX, typ)
        s.bind("\0" + where[1:] if where.startswith("@") else where)
        if typ == socket.SOCK_STREAM:
            s.listen(16)
        port = 0
    held.append(s)
    lines.append("%s %d %d" % (spec, port, os.fstat(s.fileno()).st_ino))
child = 0
if fork:
    r, w = os.pipe()
    parent = os.getpid()
    child = os.fork()
    if child == 0:
        # Die with the parent, however it dies (PR_SET_PDEATHSIG).
        import ctypes
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)
        if os.getppid() != parent:
            os._exit(0)
        os.write(w, b"x")
        while True:
            time.sleep(3600)
    os.read(r, 1)  # "ready" only once the child is tied to us
tmp = out + ".tmp"
with open(tmp, "w") as f:
    f.write("\n".join(lines) + "\nready %d %d\n" % (os.getpid(), child))
os.rename(tmp, out)
while True:
    time.sleep(3600)
