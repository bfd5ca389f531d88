"""A handle for tests/sh/top_test.sh, through the Python binding.

  bus_peer.py pub CHANNEL SLOTS INTERVAL [ALLOW_PATTERN UID]
      publish on CHANNEL every INTERVAL seconds, from a ring of SLOTS slots
  bus_peer.py sub PATTERN READS DELAY REPORT [ALLOW_PATTERN UID]
      read READS messages (events do not count), DELAY seconds apart, then
      write "lost=N received=M" (N: the KITE_LOSS events summed) to REPORT
      and stop reading for good: the handle stays, its control thread
      answers, and its lag grows while the publisher goes on
"""
import os
import sys
import time

import kite

role = sys.argv[1]
if role == "pub":
    channel, slots, interval = sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    h = kite.Handle(ring_slots=slots)
    if len(sys.argv) > 6:
        h.allow_uid(sys.argv[5], int(sys.argv[6]))
    while True:
        h.publish(channel, b"x")
        time.sleep(interval)
else:
    pattern, reads, delay, report = sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
    h = kite.Handle()
    if len(sys.argv) > 7:
        h.allow_uid(sys.argv[6], int(sys.argv[7]))
    h.subscribe(pattern)
    lost = received = 0
    while received < reads:
        m = h.recv(timeout=5)
        if isinstance(m, kite.Loss):
            lost += m.lost
        elif isinstance(m, kite.Message):
            received += 1
            time.sleep(delay)
    with open(report + ".tmp", "w") as f:
        f.write("lost=%d received=%d\n" % (lost, received))
    os.rename(report + ".tmp", report)
    while True:
        time.sleep(3600)
