"""A lean load generator: many websocket clients on websockets' sans-I/O protocol under a bare asyncio.Protocol.

Every client moves ten times a second (east and west across the room); a sample of observers decodes every
frame and measures, for each peer move it sees, the time from the move being sent to the update arriving
(end to end, so it includes the 0-100 ms wait for the next tick), and the time from the tick's server
timestamp to arrival (tick -> observer). The other clients receive everything but skip decoding, so the
generator spends its CPU on the load, not on bookkeeping.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

import msgpack
from websockets.client import ClientProtocol
from websockets.frames import Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

MOVE = {d: msgpack.packb({"Action": "Move", "Dir": d}) for d in ("E", "W")}
LO, HI = 1, 62  # walkable x range of the 64x64 bench room


class SendLog:
    """When each (entity, x, y) move was sent, for about `horizon` seconds. Two generations that swap keep it
    bounded; a late update still finds its send time (matching only the latest move would drop exactly the
    slow samples). Bots pace back and forth over 61 tiles, so a position recurs only after ~12 s."""

    def __init__(self, horizon: float = 5.0):
        self.cur: dict = {}
        self.prev: dict = {}
        self.half = horizon / 2
        self.swapped = time.perf_counter()

    def record(self, key: tuple, t: float) -> None:
        if t - self.swapped > self.half:
            self.prev, self.cur, self.swapped = self.cur, {}, t
        self.cur[key] = t

    def get(self, key: tuple) -> float | None:
        t = self.cur.get(key)
        return t if t is not None else self.prev.get(key)


@dataclass
class Samples:
    e2e_ms: list[float] = field(default_factory=list)
    tick_ms: list[float] = field(default_factory=list)
    errors: int = 0
    error_codes: dict = field(default_factory=dict)
    frames: int = 0
    bytes: int = 0
    recording: bool = False


class BenchClient(asyncio.Protocol):
    def __init__(self, uri: str, name: str | None, observer: bool, sent_log: SendLog, samples: Samples):
        self.ws = ClientProtocol(parse_uri(uri), max_size=None)
        self.name, self.observer, self.sent_log, self.samples = name, observer, sent_log, samples
        self.ready = asyncio.get_running_loop().create_future()
        self.eid = self.x = self.y = None
        self.heading = 1
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.ws.send_request(self.ws.connect())
        self._flush()

    def connection_lost(self, exc) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"lost before joining: {exc}"))

    def _flush(self) -> None:
        for data in self.ws.data_to_send():
            if data:
                self.transport.write(data)

    def send(self, data: bytes) -> None:
        self.ws.send_binary(data)
        self._flush()

    def data_received(self, data: bytes) -> None:
        self.ws.receive_data(data)
        samples = self.samples
        for event in self.ws.events_received():
            if isinstance(event, Response):
                if self.name is not None:  # llama-land: handshake and register, pipelined
                    self.send(msgpack.packb({"Id": "h", "Action": "Hello", "Version": 1}))
                    self.send(msgpack.packb({"Id": "r", "Action": "Register", "Name": self.name, "Password": "bench-pw"}))
                continue
            if event.opcode is not Opcode.BINARY:
                continue
            if samples.recording:
                samples.frames += 1
                samples.bytes += len(event.data)
            if self.eid is not None and not self.observer:
                continue
            msg = msgpack.unpackb(event.data)
            kind = msg.get("Action")
            if kind == "RoomJoined":
                self.eid, self.x, self.y = msg["You"], msg["X"], msg["Y"]
                if not self.ready.done():
                    self.ready.set_result(None)
            elif kind == "Tick" and samples.recording:
                now = time.perf_counter()
                samples.tick_ms.append(time.time() * 1000 - msg["T"])
                sent_log, me = self.sent_log, self.eid
                for eid, x, y in msg["M"]:
                    if eid != me:
                        sent = sent_log.get((eid, x, y))
                        if sent is not None:
                            samples.e2e_ms.append((now - sent) * 1000)
            elif kind == "Error":
                samples.errors += 1
                code = msg.get("Code")
                samples.error_codes[code] = samples.error_codes.get(code, 0) + 1
                if not self.ready.done():  # refused before joining (a bad name, say): fail loudly
                    self.ready.set_exception(RuntimeError(f"{self.name}: {msg.get('Code')}: {msg.get('Message')}"))
        self._flush()  # pongs

    def step(self) -> None:
        if self.x + self.heading > HI or self.x + self.heading < LO:
            self.heading = -self.heading
        self.x += self.heading
        self.sent_log.record((self.eid, self.x, self.y), time.perf_counter())
        self.send(MOVE["E" if self.heading > 0 else "W"])


async def open_fleet(host: str, port: int, n: int, llama: bool, observers: int, samples: Samples,
                     concurrency: int = 64, prefix: str = "walker") -> list[BenchClient]:
    loop = asyncio.get_running_loop()
    sent_log = SendLog()
    rng = random.Random(7)
    watch = set(rng.sample(range(n), min(observers, n)))
    sem = asyncio.Semaphore(concurrency)
    clients: list[BenchClient] = []

    async def one(i: int) -> None:
        async with sem:
            _, client = await loop.create_connection(
                lambda: BenchClient(f"ws://{host}:{port}/", f"{prefix}{i}" if llama else None, i in watch, sent_log, samples),
                host, port)
            await asyncio.wait_for(client.ready, 60)
            client.heading = 1 if i % 2 else -1
            clients.append(client)

    await asyncio.gather(*(one(i) for i in range(n)))
    return clients


async def drive(clients: list[BenchClient], seconds: float, hz: float = 10.0, slots: int = 10) -> int:
    """Every client steps at hz, spread evenly over the period. Returns moves sent."""
    loop = asyncio.get_running_loop()
    groups = [clients[k::slots] for k in range(slots)]
    period = 1.0 / hz / slots
    deadline = loop.time()
    end = deadline + seconds
    sent = k = 0
    while loop.time() < end:
        for client in groups[k]:
            client.step()
        sent += len(groups[k])
        k = (k + 1) % slots
        deadline += period
        await asyncio.sleep(max(0.0, deadline - loop.time()))
    return sent
