"""The server: wires the database, the log, the bus and the actors to a websocket listener.

HTTP on the same port: /healthz (liveness), /metrics (Prometheus text), /state (per-actor log heads and state
digests, the live side of `llama-land replay`). Everything else is the websocket protocol of docs/protocol.md.
"""

from __future__ import annotations

import asyncio
import gc
import http
import json
import logging
from pathlib import Path
from typing import Any, Coroutine

from websockets.asyncio.server import Server as WSServer
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from npcs.cast import Cast, NpcPresence, load_cast
from npcs.inference.engine import InferenceConfig, InferenceEngine
from npcs.actors.fed import FedActor
from npcs.inference.herd import HerdActor
from npcs.actors.memory import NpcMemory
from npcs.actors.oracle import OracleActor
from npcs.actors.services import JokerActor, WandererActor
from npcs.inference.templates import load_templates, validate_grammar, TemplateError

from server.core import protocol
from server.economy.accounts import AccountsActor, hash_password
from server.economy.admin import default_key_file, ensure_key
from server.core.actors import Actor, LocalBus, MailboxFull
from server.core.db import Database, PositionCheckpoint
from server.economy.ledger import LLAMA_CAP, SERVICE_ACCOUNTS, TokenActor
from server.core.log import MessageLog
from server.metrics import Metrics
from server.reducers import state_for
from server.world.room import RoomActor
from server.core.clock import now_ms
from server.net.session import Connection, Lobby, SessionConfig
from server.world.maps import World

log = logging.getLogger("llama_land.server")


class Server:
    def __init__(self, world: World, db_url: str, host: str = "127.0.0.1", port: int = 8765,
                 session_config: SessionConfig | None = None, inference: "InferenceConfig | None" = None,
                 admin_key_file: Path | None = None, reload: bool = False):
        self.world = world
        self.db_url = db_url
        self.host, self.requested_port = host, port
        self.session_config = session_config or SessionConfig()
        self.metrics = Metrics()
        self.bus = LocalBus()
        self.lobby = Lobby(self)
        self.connections: set[Connection] = set()
        self.rooms: dict[str, RoomActor] = {}
        self.actors: list[Actor] = []
        self.inference = inference
        self.admin_key_file = admin_key_file
        self.watch_world = reload
        self.admin_key = ""
        self.engine: InferenceEngine | None = None
        self.herd: HerdActor | None = None
        self.fed: FedActor | None = None
        self.npc_actors: list[Actor] = []
        self.npc_names: frozenset[str] = frozenset()
        self.service_accounts = SERVICE_ACCOUNTS
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
        # The cast (NPC files + placements) is checked before anything starts: a broken NPC file stops the start.
        model = self.inference.model_path if self.inference else None
        self.templates = await asyncio.to_thread(load_templates, self.world.root / "templates", model)
        self.cast: Cast = load_cast(self.world, self.templates)
        self.npc_names = frozenset(self.cast.names())
        self.service_accounts = SERVICE_ACCOUNTS | {s.id for s in self.cast.of_kind("oracle")}
        self.db = Database(self.db_url)
        self.admin_key = ensure_key(self.admin_key_file or default_key_file(self.db_url))
        self.db.start()
        self.log = MessageLog(self.db, state_for)
        accounts = AccountsActor(self.bus, self.log)
        self.ledger = TokenActor("wAR", self.bus, self.log, cap=None, minters=("allowance", "operator"))
        self.llama = TokenActor("LLAMA", self.bus, self.log, cap=LLAMA_CAP, minters=("fed",))
        self.rooms = {name: RoomActor(self.world, room, self.bus, self.log, self.db, self.metrics,
                                      self.cast.in_room(name))
                      for name, room in self.world.rooms.items()}
        self.actors = [accounts, self.ledger, self.llama, *self.rooms.values()]
        if self.inference is not None:
            await self._start_inference(self.inference)
        self._start_npcs()
        for actor in self.actors:
            self.bus.register(actor)
            actor.start()
        t = now_ms()
        for ledger in (self.ledger, self.llama):
            await ledger.open(t)
        for room in self.rooms.values():
            await room.open(t)
        if self.herd is not None:
            await self.herd.open(t)  # refunds fees of jobs a crash left unfinished
        for npc in self.npc_actors:  # the Fed and the Oracle finish what a crash interrupted
            opener = getattr(npc, "open", None)
            if opener is not None:
                await opener(t)
        # Login with an unknown name costs the same scrypt work as a wrong password.
        self.dummy_hash = await asyncio.to_thread(hash_password, "no such account", self.session_config.scrypt_n)
        self._ws = await serve(
            self._on_connection, self.host, self.requested_port, max_size=protocol.MAX_FRAME,
            process_request=self._http, ping_interval=20, ping_timeout=20, compression=None,
        )
        for room in self.rooms.values():
            self.spawn(self._ticker(room))
        self.spawn(self._housekeeping())
        if self.watch_world:
            from server.reload import watch

            self.spawn(watch(self))
        log.info("serving %s on %s (db %s)", self.world.name, self.url, self.db.engine.url.render_as_string(True))

    async def _start_inference(self, cfg: "InferenceConfig") -> None:
        """Model checked, grammars validated, workers up: any failure here stops the start with a clear error."""
        templates = {**self.templates, **self.cast.templates()}
        await asyncio.to_thread(self._check_npc_grammars, cfg.model_path)
        self.engine = InferenceEngine(cfg.model_path, self.db, cfg.workers, cfg.threads, cfg.n_ctx, cfg.queue_size,
                                      cfg.timeout)
        # A template with a model of its own gets one single-threaded worker for it: cores are scarce.
        more = {path: InferenceEngine(path, self.db, 1, 1, cfg.n_ctx, cfg.queue_size, cfg.timeout)
                for path in sorted({t.model for t in templates.values() if t.model} - {self.engine.model_path})}
        await asyncio.gather(self.engine.start(), *(e.start() for e in more.values()))
        self.herd = HerdActor(self.bus, self.engine, templates, more_engines=more)
        self.actors.append(self.herd)

    def _check_npc_grammars(self, model_path: str, cast: Cast | None = None,
                            templates: dict[str, Any] | None = None) -> None:
        """Templates were checked as files; an NPC file's [model] grammar replaces one, and is checked here."""
        cast, templates = cast or self.cast, templates or self.templates
        for spec in cast.specs.values():
            for template in spec.templates.values():
                base = templates.get(template.id.split("/")[0])
                if template.grammar and (base is None or base.grammar != template.grammar):
                    why = validate_grammar(template.grammar, template.model or model_path)
                    if why:
                        raise TemplateError(f"{spec.path}: [model] grammar rejected: {why}")

    def _fed_concurrency(self, votes: int) -> int:
        """Petitions with the committee at once: enough to keep every worker busy (one judged, one queued behind
        it), never so many that their votes fill the inference queue; the rest wait in the King's line."""
        cfg = self.inference
        return 1 if cfg is None else max(1, min(2 * cfg.workers, cfg.queue_size // (votes + 1)))

    def _start_npcs(self) -> None:
        """One actor per NPC that acts (the King's is the Fed); Fed committee members are data the Fed uses."""
        self.memory = NpcMemory(self.db)
        self.memory.load()
        on = self.herd is not None
        oracles = self.cast.of_kind("oracle")
        king = self.cast.king
        if king is not None:
            committee = [self.cast.specs[m] for m in king.committee]
            self.fed = FedActor(self.bus, self.log, self.memory, king, self.cast.placed[king.id].room, committee,
                                {o.id: o.economy["endowment"] for o in oracles}, inference=on,
                                concurrency=self._fed_concurrency(len(committee) or 1))
            self.npc_actors.append(self.fed)
        for presence in self.cast.placed.values():
            actor = self.make_npc_actor(presence)
            if actor is not None:
                self.npc_actors.append(actor)
        self.actors.extend(self.npc_actors)

    def make_npc_actor(self, presence: NpcPresence) -> Actor | None:
        spec, room, on = presence.spec, presence.room, self.herd is not None
        if spec.kind == "oracle":
            return OracleActor(self.bus, spec, room, self.memory, on, self.log)
        if spec.kind == "joker":
            return JokerActor(self.bus, spec, room, self.memory, on)
        if spec.kind == "wanderer":
            return WandererActor(self.bus, spec, room, self.memory, on)
        return None  # the King is the Fed's voice; committee members are data the Fed uses

    async def stop(self) -> None:
        if self._ws is not None:
            self._ws.close()
            await self._ws.wait_closed()
        if self.herd is not None:
            await self.herd.drain()  # queued jobs fail and are refunded while the ledger still runs
        for task in list(self._tasks):
            task.cancel()
        t = now_ms()
        for actor in reversed(self.actors):  # NPCs first, the ledgers they pay through last
            await actor.stop()
        for room in self.rooms.values():
            room.checkpoint_all(t)
        for actor in self.actors:  # every logged actor: a restart then replays nothing
            state = getattr(actor, "state", None)
            if state is not None:
                self.log.snapshot(actor.id, state)
        self.db.stop()

    async def _on_connection(self, ws: ServerConnection) -> None:
        conn = Connection(ws, self)
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

    async def _housekeeping(self) -> None:
        every = self.world.rules.checkpoint_s
        waited = 0.0
        while True:
            await asyncio.sleep(1.0)
            self.metrics.sample()
            waited += 1.0
            if self.fed is not None and int(waited) % 10 == 0:  # keep the next epoch's commitment published
                try:
                    self.fed.deliver({"Action": "Tick", "T": now_ms()})
                except MailboxFull:
                    pass
            if waited >= every:
                waited = 0.0
                for room in self.rooms.values():
                    try:
                        room.deliver({"Action": "Checkpoint", "T": now_ms()})
                    except MailboxFull:
                        pass  # soft state: the next checkpoint will catch up

    def state_hashes(self) -> dict[str, dict[str, Any]]:
        out = {}
        for actor in self.actors:
            head = self.log.heads.get(actor.id)
            state = getattr(actor, "state", None)
            if head is not None and head.slot > 0 and state is not None:
                out[actor.id] = {"slot": head.slot, "digest": state.digest()}
        return out

    def load_checkpoint(self, name: str) -> PositionCheckpoint | None:
        with self.db.session() as session:
            return session.get(PositionCheckpoint, name)

    def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path == "/healthz":
            return connection.respond(http.HTTPStatus.OK, "ok\n")
        if path == "/metrics":
            return _text(self.metrics.render(self), "text/plain; version=0.0.4; charset=utf-8")
        if path == "/state":
            return _text(json.dumps(self.state_hashes(), indent=1, sort_keys=True) + "\n", "application/json")
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
