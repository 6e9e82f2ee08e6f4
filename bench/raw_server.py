"""Baseline for bench/walkers.py: the same room with nothing but the `websockets` library.

Every connection gets an entity at a random tile; each Move shifts it one tile; ten times a second the moved
entities go to everyone in one frame through `websockets.broadcast` (whole-room updates, no interest
management, no validation beyond the map edge, no persistence). This is the raw ceiling of the fan-out.
"""

import asyncio
import itertools
import random
import resource
import sys
import time

import msgpack
from websockets.asyncio.server import broadcast, serve

STEPS = {"N": (0, -1), "S": (0, 1), "E": (1, 0), "W": (-1, 0)}
SIZE = 64


async def main(port: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    positions: dict[int, tuple[int, int]] = {}
    dirty: dict[int, tuple[int, int]] = {}
    conns: set = set()
    ids = itertools.count(1)
    rng = random.Random(1)

    async def handler(ws):
        eid = next(ids)
        x, y = rng.randrange(1, SIZE - 1), rng.randrange(1, SIZE - 1)
        positions[eid] = (x, y)
        await ws.send(msgpack.packb({"Action": "RoomJoined", "You": eid, "X": x, "Y": y}))
        conns.add(ws)
        try:
            async for data in ws:
                dx, dy = STEPS.get(msgpack.unpackb(data).get("Dir"), (0, 0))
                x, y = positions[eid]
                x, y = min(SIZE - 2, max(1, x + dx)), min(SIZE - 2, max(1, y + dy))
                positions[eid] = dirty[eid] = (x, y)
        finally:
            conns.discard(ws)
            positions.pop(eid, None)

    async def ticker():
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        while True:
            deadline += 0.1
            await asyncio.sleep(max(0.0, deadline - loop.time()))
            if dirty:
                frame = msgpack.packb({"Action": "Tick", "T": int(time.time() * 1000),
                                       "M": [[e, x, y] for e, (x, y) in dirty.items()], "A": [], "G": []})
                dirty.clear()
                broadcast(conns, frame)

    async with serve(handler, "127.0.0.1", port, compression=None, max_size=2**16):
        await ticker()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
