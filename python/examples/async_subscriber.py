#!/usr/bin/env python3
"""asyncio: one handle per PATTERN, all in one event loop; prints messages
as they come and stops after COUNT of them.

    python3 async_subscriber.py COUNT 'host.*.load' 'orders.>'
"""
import asyncio
import sys

import kite


async def follow(h: kite.Handle, pattern: str, seen: asyncio.Queue) -> None:
    async for item in h.amessages():  # waits on kite_fd(): no thread
        if isinstance(item, kite.Message):
            await seen.put(f"{pattern}: {item.channel} seq={item.seq} "
                           f"{item.data.decode(errors='replace')}")


async def main() -> None:
    count, *patterns = sys.argv[1:]
    seen: asyncio.Queue = asyncio.Queue()
    handles = [kite.Handle() for _ in patterns]
    for h, pattern in zip(handles, patterns):
        h.subscribe(pattern)
    tasks = [asyncio.create_task(follow(h, p, seen)) for h, p in zip(handles, patterns)]
    print("subscribed", file=sys.stderr, flush=True)
    for _ in range(int(count)):
        print(await seen.get(), flush=True)
    for h in handles:
        h.close()  # ends its amessages() loop
    await asyncio.gather(*tasks)


asyncio.run(main())
