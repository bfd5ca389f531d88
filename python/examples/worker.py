#!/usr/bin/env python3
"""A `kite serve --handoff` worker: kite accepts the connections and hands
each one over; the worker answers with one line saying who connected.

    kite serve --name hello --handoff --workers 2 --listen tcp:8080 \\
        --listen unix:@hello -- python3 worker.py
    nc 127.0.0.1 8080 <<<hi
"""
import os
import signal
import socket
import sys

import kite

# kite serve closes the hand-off socket before it sends SIGTERM: ignore the
# signal and keep accepting until handoff_connections() ends, so every
# connection kite handed over is served.
signal.signal(signal.SIGTERM, signal.SIG_IGN)
kite.notify()  # READY=1: kite serve hands connections over from now on
served = 0
for conn, peer in kite.handoff_connections():
    with conn:
        request = conn.recv(1024).decode(errors="replace").strip()
        if peer.family == socket.AF_UNIX:
            who = f"pid={peer.pid} uid={peer.uid}"
        else:
            who = f"host={peer.host} port={peer.port}"
        conn.sendall(f"worker={os.getpid()} {who} said={request}\n".encode())
        served += 1
print(f"worker {os.getpid()}: served {served}, hand-off closed", file=sys.stderr)
