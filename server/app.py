"""The server: a websocket listener in front of one world (the WorldRuntime, server/runtime.py).

The Server owns what faces the network and the clock: the listener and its connections, HTTP on the same port —
/healthz (liveness), /metrics (Prometheus text), /state (per-actor log heads and state digests, the live side of
`llama-land replay`) — and the tickers (each room's tick, the runtime's periodic messages, the reload watcher).
Everything else is the websocket protocol of docs/protocol.md.
"""

from __future__ import annotations

import asyncio
import gc
import http
import json
import logging
import socket
from pathlib import Path
from typing import Any, Coroutine

from websockets.asyncio.server import Server as WSServer
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from npcs.inference.engine import InferenceConfig
from server.core import protocol
from server.core.actors import MailboxFull
from server.core.clock import now_ms
from server.metrics import Metrics, fed_lines, gauge, inference_lines, market_lines, world_lines
from server.net.connection import Connection
from server.net.presence import Presence
from server.net.session import SessionConfig
from server.net.wire import LeanServerConnection
from server.runtime import WorldRuntime
from server.world.maps import World
from server.world.room import RoomActor

log = logging.getLogger("llama_land.server")


class Server:
    def __init__(self, world: World, db_url: str, host: str = "127.0.0.1", port: int = 8765,
                 session_config: SessionConfig | None = None, inference: "InferenceConfig | None" = None,
                 admin_key_file: Path | None = None, reload: bool = False, nats_url: str | None = None,
                 namespace: str = "llama-land", standby: bool = False, lease_ttl_ms: int = 5000,
                 rooms: list[str] | None = None, bank: bool = True):
        self.host, self.requested_port = host, port
        self.session_config = session_config or SessionConfig()
        self.metrics = Metrics()
        self.runtime = WorldRuntime(world, db_url, self.metrics, inference, admin_key_file,
                                    self.session_config.scrypt_n, nats_url, namespace, standby, lease_ttl_ms,
                                    rooms, bank)
        self.presence = Presence(self.runtime, lambda: self.session_config.grace_s)
        self.connections: set[Connection] = set()
        self.watch_world = reload
        self._tasks: set[asyncio.Task] = set()
        self._ws: WSServer | None = None

    @property
    def port(self) -> int:
        assert self._ws is not None
        return self._ws.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}/"

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def start(self) -> None:
        rt = self.runtime
        await rt.start()
        self.metrics.add_source(lambda: gauge("connections", len(self.connections), "Open websocket connections."))
        self.metrics.add_source(lambda: world_lines(rt.rooms, rt.actors, rt.db, rt.log))
        if rt.herd is not None:
            self.metrics.add_source(lambda: inference_lines(rt.herd))
        if rt.fed is not None:
            self.metrics.add_source(lambda: fed_lines(rt.fed))
        if rt.market is not None:
            self.metrics.add_source(lambda: market_lines(rt.market))
        self._ws = await serve(
            self._on_connection, self.host, self.requested_port, max_size=protocol.MAX_FRAME,
            process_request=self._http, ping_interval=20, ping_timeout=20, compression=None,
            create_connection=LeanServerConnection,
        )
        await rt.announce(self.public_url)
        for room in rt.rooms.values():
            self.spawn(self._ticker(room))
        for every, address, action in rt.periodic():
            self.spawn(self._every(every, address, action))
        self.spawn(self._sample_metrics())
        if self.watch_world:
            from server.reload import watch

            self.spawn(watch(rt))
        assert rt.db is not None
        log.info("serving %s on %s (db %s)", rt.world.name, self.url, rt.db.engine.url.render_as_string(True))

    @property
    def public_url(self) -> str:
        """Where other processes send players: the listening address, or this host's name if it listens on all."""
        host = socket.gethostname() if self.host in ("0.0.0.0", "::", "") else self.host
        return f"ws://{host}:{self.port}/"

    async def stop(self) -> None:
        await self.runtime.withdraw()
        if self._ws is not None:
            self._ws.close()
            await self._ws.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await self.runtime.stop()

    async def _on_connection(self, ws: ServerConnection) -> None:
        conn = Connection(ws, self.runtime, self.presence, self.session_config, self.metrics, self.spawn)
        self.connections.add(conn)
        self.metrics.connections_total += 1
        try:
            await conn.serve()
        finally:
            self.connections.discard(conn)

    async def _ticker(self, room: RoomActor) -> None:
        loop = asyncio.get_running_loop()
        period = 1.0 / room.rules.tick_hz
        deadline = loop.time()
        while True:
            deadline += period
            await asyncio.sleep(max(0.0, deadline - loop.time()))
            if loop.time() - deadline > period:  # fell behind: skip ticks rather than send a burst
                deadline = loop.time()
            try:
                room.deliver({"Action": "Tick", "T": now_ms()})
            except MailboxFull:
                self.metrics.ticks_skipped += 1

    async def _every(self, seconds: float, address: str, action: str) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                self.runtime.bus.send(address, {"Action": action, "T": now_ms()})
            except MailboxFull:
                pass  # soft: the next one catches up

    async def _sample_metrics(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.metrics.sample()

    def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path == "/healthz":
            return connection.respond(http.HTTPStatus.OK, "ok\n")
        if path == "/metrics":
            return _text(self.metrics.render(), "text/plain; version=0.0.4; charset=utf-8")
        if path == "/state":
            return _text(json.dumps(self.runtime.state_hashes(), indent=1, sort_keys=True) + "\n", "application/json")
        if "upgrade" not in request.headers.get("Connection", "").lower():
            return connection.respond(http.HTTPStatus.NOT_FOUND, "not found: try /healthz, /metrics, /state, or a websocket\n")
        return None


def tune_gc() -> None:
    """A busy room allocates a few small dicts per message, so at thousands of messages a second CPython's default
    (a young-generation collection every 700 allocations) collects hundreds of times a second, and each full
    collection walks every connection's objects. Freeze what start-up built (it lives as long as the server)
    and collect the young generation less often; reference counting still frees almost everything at once."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def _text(body: str, content_type: str) -> Response:
    data = body.encode()
    headers = Headers([("Content-Type", content_type), ("Content-Length", str(len(data))), ("Connection", "close")])
    return Response(http.HTTPStatus.OK.value, http.HTTPStatus.OK.phrase, headers, data)
