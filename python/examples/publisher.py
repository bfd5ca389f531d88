#!/usr/bin/env python3
"""Publish this machine's load average on host.<name>.load every second
(COUNT times; default: until Ctrl-C).

    python3 publisher.py [COUNT]
"""
import os
import socket
import sys
import time

import kite

count = int(sys.argv[1]) if len(sys.argv) > 1 else None
channel = "host." + socket.gethostname().split(".")[0].replace("_", "-") + ".load"
if not kite.channel_valid(channel):
    channel = "host.this.load"
with kite.Handle() as h:
    sent = 0
    while count is None or sent < count:
        one, five, fifteen = os.getloadavg()
        seq = h.publish(channel, f"{one:.2f} {five:.2f} {fifteen:.2f}")
        print(f"{channel} seq={seq}", flush=True)
        sent += 1
        if count is None or sent < count:
            time.sleep(1)
