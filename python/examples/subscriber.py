#!/usr/bin/env python3
"""Print every message on channels matching PATTERN with its kernel-verified
sender, and every loss, until COUNT messages arrived (default: forever).

    python3 subscriber.py 'host.*.load' [COUNT]
"""
import sys

import kite

pattern = sys.argv[1]
count = int(sys.argv[2]) if len(sys.argv) > 2 else None
with kite.Handle() as h:
    h.subscribe(pattern)
    print(f"subscribed to {pattern}", file=sys.stderr, flush=True)
    got = 0
    for item in h.messages():
        if isinstance(item, kite.Message):
            print(f"{item.channel} pid={item.pid} uid={item.uid} seq={item.seq} "
                  f"{item.data.decode(errors='replace')}", flush=True)
            got += 1
            if got == count:
                break
        elif isinstance(item, kite.Loss):
            print(f"lost {item.lost} from pid {item.pid} on {item.channel}", file=sys.stderr)
        elif isinstance(item, kite.Refused):
            print(f"refused: {item.text}", file=sys.stderr)
