#!/usr/bin/env python3
"""One side of bench/python_bench.sh: a Python publisher or subscriber over
kite's Python binding or pyzmq PUB/SUB on ipc://, printing one key=value line.

  python_peer.py sub --transport kite|kite-async|zmq|zmq-async --where W
                     [--ready FILE] [--idle SECONDS]
  python_peer.py pub --transport kite|zmq --where W --count N [--rate MSGS_PER_S]

W is the kite bus, or for ZeroMQ a folder for the ipc:// socket. Payloads
are 64 bytes that start with the sequence number (little-endian, from 1);
the publisher ends with 20 payloads of sequence 0 ("end"), 10 ms apart.
The subscriber stops at the first end payload or after --idle seconds
without any message, and reports:
  role=sub recv=N seq_missing=M lost_reported=L t_first=NS t_last=NS cpu=S
(seq_missing: sequence numbers never seen; lost_reported: kite's Loss
counts; t_*: CLOCK_REALTIME of the first and last data message; cpu: the
process's user+system seconds, every thread included). The publisher:
  role=pub sent=N t_start=NS t_end=NS cpu=S
"""
import argparse
import os
import resource
import sys
import time

SIZE = 64
PAD = bytes(SIZE - 8)
END = (0).to_bytes(8, "little") + PAD
CHANNEL = "bench.python"
FIRST_WAIT = 30  # seconds a subscriber waits for the first message


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Tally:
    def __init__(self):
        self.recv = self.missing = self.reported = 0
        self.expect = 1
        self.t_first = self.t_last = 0

    def data(self, seq):
        """Count one payload; False at the end marker."""
        if seq == 0:
            return False
        now = time.time_ns()
        if not self.recv:
            self.t_first = now
        self.t_last = now
        self.recv += 1
        if seq > self.expect:
            self.missing += seq - self.expect
        self.expect = max(self.expect, seq + 1)
        return True

    def report(self, cpu0):
        print(f"role=sub recv={self.recv} seq_missing={self.missing} "
              f"lost_reported={self.reported} t_first={self.t_first} "
              f"t_last={self.t_last} cpu={cpu() - cpu0:.4f}", flush=True)


def ready(path):
    if path:
        with open(path + ".tmp", "w") as f:
            f.write("ready\n")
        os.rename(path + ".tmp", path)


def sub_kite(a, asynchronous):
    import kite
    t = Tally()
    with kite.Handle(a.where) as h:
        h.subscribe(CHANNEL)
        ready(a.ready)
        cpu0 = cpu()

        def take(m):
            if type(m) is kite.Message:
                return t.data(int.from_bytes(m.data[:8], "little"))
            if type(m) is kite.Loss:
                t.reported += m.lost
            return not isinstance(m, kite.PublisherGone)
        if asynchronous:
            import asyncio

            async def run():
                m = await h.arecv(FIRST_WAIT)
                if m is None or not take(m):
                    return
                async for m in h.amessages(timeout=a.idle):
                    if not take(m):
                        return
            asyncio.run(run())
        else:
            m = h.recv(FIRST_WAIT)
            if m is not None and take(m):
                for m in h.messages(timeout=a.idle):
                    if not take(m):
                        break
        t.report(cpu0)


def sub_zmq(a, asynchronous):
    import zmq
    t = Tally()
    address = f"ipc://{a.where}/sock"
    if asynchronous:
        import asyncio
        import zmq.asyncio

        async def run():
            ctx = zmq.asyncio.Context()
            s = ctx.socket(zmq.SUB)
            s.setsockopt(zmq.RCVTIMEO, FIRST_WAIT * 1000)
            s.connect(address)
            s.setsockopt(zmq.SUBSCRIBE, b"")
            ready(a.ready)
            cpu0 = cpu()
            try:
                if t.data(int.from_bytes((await s.recv())[:8], "little")):
                    s.setsockopt(zmq.RCVTIMEO, int(a.idle * 1000))
                    while t.data(int.from_bytes((await s.recv())[:8], "little")):
                        pass
            except zmq.Again:
                pass
            t.report(cpu0)
            s.close(0)
            ctx.term()
        asyncio.run(run())
        return
    ctx = zmq.Context()
    s = ctx.socket(zmq.SUB)
    s.setsockopt(zmq.RCVTIMEO, FIRST_WAIT * 1000)
    s.connect(address)
    s.setsockopt(zmq.SUBSCRIBE, b"")
    ready(a.ready)
    cpu0 = cpu()
    try:
        if t.data(int.from_bytes(s.recv()[:8], "little")):
            s.setsockopt(zmq.RCVTIMEO, int(a.idle * 1000))
            while t.data(int.from_bytes(s.recv()[:8], "little")):
                pass
    except zmq.Again:
        pass
    t.report(cpu0)
    s.close(0)
    ctx.term()


def paced(a, send):
    """Send a.count payloads (at a.rate per second if set), then the end."""
    cpu0 = cpu()
    start = time.time_ns()
    t0 = time.perf_counter()
    for seq in range(1, a.count + 1):
        send(seq.to_bytes(8, "little") + PAD)
        if a.rate and seq % 50 == 0:
            ahead = t0 + seq / a.rate - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)
    end = time.time_ns()
    spent = cpu() - cpu0
    for _ in range(20):
        send(END)
        time.sleep(0.01)
    print(f"role=pub sent={a.count} t_start={start} t_end={end} cpu={spent:.4f}", flush=True)


def pub_kite(a):
    import kite
    with kite.Handle(a.where) as h:
        publish = h.publish
        paced(a, lambda data: publish(CHANNEL, data))


def pub_zmq(a):
    import zmq
    ctx = zmq.Context()
    s = ctx.socket(zmq.XPUB)  # XPUB: to see the subscriber arrive
    s.bind(f"ipc://{a.where}/sock")
    s.setsockopt(zmq.RCVTIMEO, 30000)
    s.recv()  # the subscription: the subscriber is connected
    paced(a, s.send)
    s.close(1000)
    ctx.term()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("role", choices=["pub", "sub"])
    p.add_argument("--transport", required=True,
                   choices=["kite", "kite-async", "zmq", "zmq-async"])
    p.add_argument("--where", required=True)
    p.add_argument("--count", type=int, default=100000)
    p.add_argument("--rate", type=float, default=0)
    p.add_argument("--ready")
    p.add_argument("--idle", type=float, default=2.0)
    a = p.parse_args()
    kind, _, style = a.transport.partition("-")
    if a.role == "pub":
        (pub_kite if kind == "kite" else pub_zmq)(a)
    else:
        (sub_kite if kind == "kite" else sub_zmq)(a, style == "async")


if __name__ == "__main__":
    sys.exit(main())
