"""WorldRuntime: the composition root. It builds and owns everything a world is made of — the database and the
log, the bus, the accounts and the two ledgers, one actor per room, the NPC cast and its actors, the inference
engines and the herd — and has the world's whole lifecycle in three calls:

start   load templates and the cast (a broken NPC file stops the start), open the database, build the actors,
        open them in order (ledgers, rooms, herd, NPCs: each finishes what a crash interrupted)
swap    a changed world folder (`serve --reload`): new maps and NPCs under connected players, NPC actors
        reconfigured, started or retired, the herd's templates updated
stop    drain the herd (queued jobs refunded while the ledgers still run), stop actors NPCs first, checkpoint
        positions and snapshot every logged actor so a restart replays nothing

The listener, HTTP and the tickers are the Server's (server/app.py); the sessions reach the world through the
narrow WorldHost interface (server/net/host.py) this class provides.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from npcs.actors.memory import NpcMemory
from npcs.actors.program_purse import refund_stranded
from npcs.actors.program_desk import ProgramDesk
from npcs.cast import Cast, NpcPresence, load_cast
from npcs.inference.engine import InferenceConfig, InferenceEngine
from npcs.inference.herd import HerdActor
from npcs.inference.remote import WorkerRegistry
from npcs.inference.renderer import build_info
from npcs.inference.worker import JobFailed
from npcs.inference.templates import TemplateError, load_templates, validate_grammar
from npcs.kinds import KINDS
from server.core.actors import Actor, LocalBus
from server.core.clock import now_ms
from server.core.db import Database, PositionCheckpoint
from server.core.directory import Directory, DirectoryUnavailable
from server.core.lease import Ownership, process_id
from server.core.log import MessageLog
from server.core.natsbus import NatsBus
from server.core.protocol import Code, Refused
from server.core.logged import LoggedActor
from server.economy.accounts import AccountsActor, hash_password
from server.economy.admin import default_key_file, ensure_key
from server.economy.ledger import LLAMA_CAP, SERVICE_ACCOUNTS, TokenActor
from server.economy.market import MarketActor
from server.reducers import state_for
from server.world.maps import World
from server.world.room import RoomActor

log = logging.getLogger("llama_land.runtime")


@dataclass
class NpcContext:
    """What an NPC actor's `build(presence, ctx)` may use."""

    bus: LocalBus
    log: MessageLog
    memory: NpcMemory
    cast: Cast
    inference: bool
    fed_concurrency: int
    chat_max: Callable[[], int]  # the world's chat limit now: what an NPC's answer is cut to


class WorldRuntime:
    def __init__(self, world: World, db_url: str, metrics: Any, inference: InferenceConfig | None = None,
                 admin_key_file: Path | None = None, scrypt_n: int = 2**14, nats_url: str | None = None,
                 namespace: str = "llama-land", standby: bool = False, lease_ttl_ms: int = 5000,
                 rooms: list[str] | None = None, bank: bool = True):
        self.world, self.db_url, self.metrics = world, db_url, metrics
        # The process's part of the world: every room and the bank (one process, as by default), or — a world
        # spread over processes on NATS — the named rooms, and/or the bank: accounts, ledgers, herd, NPC actors.
        self.room_names = list(world.rooms) if rooms is None else list(rooms)
        self.bank = bank
        self.inference, self.admin_key_file, self.scrypt_n = inference, admin_key_file, scrypt_n
        # With NATS, actors in other processes (inference workers) are reachable; local delivery stays local.
        self.bus: LocalBus = NatsBus(nats_url, namespace) if nats_url else LocalBus()
        # A database several processes can open is shared: each logged actor is leased to one of them at a time.
        self.standby, self.lease_ttl_ms = standby, lease_ttl_ms
        self.ownership: Ownership | None = None
        self.directory: Directory | None = None
        self.templates: dict[str, Any] = {}
        self.cast = Cast({})
        self.db: Database | None = None
        self.log: MessageLog | None = None
        self.memory: NpcMemory | None = None
        self.engine: InferenceEngine | None = None
        self.herd: HerdActor | None = None
        self.fed: Actor | None = None
        self.ledger: TokenActor | None = None
        self.llama: TokenActor | None = None
        self.market: MarketActor | None = None
        self.rooms: dict[str, RoomActor] = {}
        self.actors: list[Actor] = []
        self.npc_actors: list[Actor] = []
        self.programs = ProgramDesk(self.bus, lambda: self.world)  # NPC programs connected to this process
        self.admin_key = ""
        self.dummy_hash = ""
        self.tasks: set[asyncio.Task] = set()

    # --- what the sessions read (server/net/host.py) --------------------------------------------------------

    @property
    def npc_names(self) -> frozenset[str]:
        """No player may be called like an NPC (its id or name) or an NPC kind."""
        return frozenset(self.cast.names()) | frozenset(KINDS)

    @property
    def service_accounts(self) -> frozenset[str]:
        return SERVICE_ACCOUNTS | {s.id for s in self.cast.of_kind("oracle") + self.cast.of_kind("trader")}

    def npc_serving(self, action: str, service: str | None = None) -> NpcPresence | None:
        """The NPC that answers a request from anywhere in the world (reach "world"), wherever it stands."""
        for presence in self.cast.placed.values():
            if presence.serves.get(action) == "world" and (service is None or presence.quote == service):
                return presence
        return None

    @property
    def rooms_here(self) -> frozenset[str]:
        return frozenset(self.rooms)

    async def room_url(self, room: str) -> str:
        entry = await self.directory.get("room", room) if self.directory is not None else None
        if entry is None:
            raise Refused(Code.UNAVAILABLE, f"{room} is not being served right now; try again in a few seconds")
        return entry["Url"]

    async def hand_off(self, name: str, room: str, fields: dict[str, Any]) -> dict[str, Any]:
        url = await self.room_url(room)
        reply = await self.bus.call("accounts", {"Action": "Ticket", "Player": name, "Room": room, **fields,
                                                 "T": now_ms()})
        return {"Url": url, "Ticket": reply["Ticket"], "Room": room}

    def load_checkpoint(self, name: str) -> PositionCheckpoint | None:
        assert self.db is not None
        with self.db.session() as session:
            return session.get(PositionCheckpoint, name)

    # --- lifecycle ---------------------------------------------------------------------------------------------

    async def start(self) -> None:
        if self.inference is not None and self.inference.workers == 0 and not isinstance(self.bus, NatsBus):
            raise JobFailed(Code.UNAVAILABLE, "--inference-workers 0 runs every job on remote workers: give --nats")
        if isinstance(self.bus, NatsBus):
            await self.bus.connect()  # ConnectionError names the URL
            await self._open_directory()
        model = self.inference.model_path if self.inference else None
        self.templates = await asyncio.to_thread(load_templates, self.world.root / "templates", model)
        self.cast = load_cast(self.world, self.templates)
        self.db = Database(self.db_url)
        self.admin_key = ensure_key(self.admin_key_file or default_key_file(self.db_url))
        self.db.start()
        self.log = MessageLog(self.db, state_for)
        if self.standby or not self.db_url.startswith("sqlite"):
            self.ownership = Ownership(self.db, process_id(), self.lease_ttl_ms, self.standby)
            bank = ["accounts", "token:wAR", "token:LLAMA", "market"] if self.bank else []
            await self.ownership.claim([*bank, *(f"room:{name}" for name in self.room_names)], now_ms)
        self.rooms = {name: RoomActor(self.world, self.world.rooms[name], self.bus, self.log, self.db, self.metrics,
                                      self.cast.in_room(name), source=self.room_config,
                                      listeners=self.cast.listeners(name))
                      for name in self.room_names}
        self.actors = [*self.rooms.values()]
        if self.bank:
            await self._start_bank()
        if self.ownership is not None:  # the NPCs' logs belonged to the same previous owner: free by now
            await self.ownership.claim([a.id for a in self.logged()], now_ms, wait=False)
            for held in self.ownership.held.values():
                self.log.fence(held.actor, held.owner, held.epoch)
            self.ownership.start_renewing(now_ms)
        for actor in self.actors:
            self.bus.register(actor)
            actor.start()
        t = now_ms()
        for actor in self.actors:  # ledgers, rooms, the herd (refunds), then the NPCs (the Fed, the Oracle)
            await actor.open(t)
        await self._refund_stranded(t)
        # Login with an unknown name costs the same scrypt work as a wrong password.
        self.dummy_hash = await asyncio.to_thread(hash_password, "no such account", self.scrypt_n)

    async def _refund_stranded(self, t: int) -> None:
        """NPC programs' requests do not outlive their process: what the programs of this process's rooms held when
        it last stopped goes back (the bank also takes NPCs whose room the world no longer has)."""
        def serves(room: str) -> bool:
            return room in self.rooms or (self.bank and room not in self.world.rooms)
        try:
            refunded = await refund_stranded(self.bus, t, serves)
        except (TimeoutError, LookupError):
            log.warning("could not look for NPC program requests left open: the bank did not answer; the next "
                        "start looks again")
            return
        if refunded:
            log.info("refunded %d NPC program request(s) left open by the last run", refunded)

    async def _start_bank(self) -> None:
        """The world's one bank: accounts, the ledgers, the herd and the NPC actors (whose rooms may be elsewhere:
        they speak and answer over the bus)."""
        assert self.db is not None and self.log is not None
        self.ledger = TokenActor("wAR", self.bus, self.log, cap=None, minters=("allowance", "operator"))
        self.llama = TokenActor("LLAMA", self.bus, self.log, cap=LLAMA_CAP, minters=("fed",))
        self.market = MarketActor(self.bus, self.log)
        accounts = AccountsActor(self.bus, self.log, world=lambda: self.world)
        self.actors[:0] = [accounts, self.ledger, self.llama, self.market]
        if self.inference is not None:
            await self._start_inference(self.inference)
        self.memory = NpcMemory(self.db)
        self.memory.load()
        # One actor per placed NPC whose kind has one; the King's actor is the Fed, committee members are data.
        self.npc_actors = [a for a in map(self.make_npc_actor, self.cast.placed.values()) if a is not None]
        self.actors.extend(self.npc_actors)

    def make_npc_actor(self, presence: NpcPresence) -> Actor | None:
        kind = KINDS[presence.spec.kind]
        if kind.actor is None:
            return None
        assert self.log is not None and self.memory is not None
        ctx = NpcContext(self.bus, self.log, self.memory, self.cast, self.herd is not None,
                         self.fed_concurrency(len(self.cast.king.committee) if self.cast.king else 1),
                         lambda: self.world.rules.chat_max)
        actor = kind.actor_class().build(presence, ctx)
        if presence.spec.kind == "king":
            self.fed = actor
        return actor

    def fed_concurrency(self, votes: int) -> int:
        """Petitions with the committee at once: enough to keep every worker busy (one judged, one queued behind
        it), never so many that their votes fill the inference queue; the rest wait in the King's line."""
        cfg = self.inference
        return 1 if cfg is None else max(1, min(2 * max(cfg.workers, 1), cfg.queue_size // (max(votes, 1) + 1)))

    async def _start_inference(self, cfg: InferenceConfig) -> None:
        """Model checked, grammars validated, workers up: any failure here stops the start with a clear error."""
        assert self.db is not None
        templates = {**self.templates, **self.cast.templates()}
        await asyncio.to_thread(self.check_npc_grammars, cfg.model_path, self.cast, self.templates)
        self.engine = InferenceEngine(cfg.model_path, self.db, cfg.workers, cfg.threads, cfg.n_ctx, cfg.queue_size,
                                      cfg.timeout)
        # A template with a model of its own gets one single-threaded worker for it: cores are scarce.
        more = {path: InferenceEngine(path, self.db, 1, 1, cfg.n_ctx, cfg.queue_size, cfg.timeout)
                for path in sorted({t.model for t in templates.values() if t.model} - {self.engine.model_path})}
        await asyncio.gather(self.engine.start(), *(e.start() for e in more.values()))
        self.herd = HerdActor(self.bus, self.engine, templates, more_engines=more)
        self.actors.append(self.herd)
        if isinstance(self.bus, NatsBus):  # workers on other processes announce themselves to it
            import llama_cpp

            self.actors.append(WorkerRegistry(self.bus, [self.engine, *more.values()], build_info(llama_cpp)))

    @staticmethod
    def check_npc_grammars(model_path: str, cast: Cast, templates: dict[str, Any]) -> None:
        """Templates were checked as files; an NPC file's [model] grammar replaces one, and is checked here."""
        for spec in cast.specs.values():
            for template in spec.templates.values():
                base = templates.get(template.id.split("/")[0])
                if template.grammar and (base is None or base.grammar != template.grammar):
                    why = validate_grammar(template.grammar, template.model or model_path)
                    if why:
                        raise TemplateError(f"{spec.path}: [model] grammar rejected: {why}")

    async def stop(self) -> None:
        if self.herd is not None:
            await self.herd.drain()  # queued jobs fail and are refunded while the ledger still runs
        await self.programs.close()  # their open requests refunded while the ledgers still run
        for task in list(self.tasks):
            task.cancel()
        t = now_ms()
        for actor in reversed(self.actors):  # NPCs first, the ledgers they pay through last
            await actor.stop()
        for room in self.rooms.values():
            room.checkpoint_all(t)
        assert self.log is not None and self.db is not None
        for actor in self.logged():  # a restart then replays nothing
            self.log.snapshot(actor.id, actor.state)
        self.db.stop()
        if self.ownership is not None:  # after the last write: a standby may take over at once
            await self.ownership.release()
        if isinstance(self.bus, NatsBus):
            await self.bus.close()

    async def _open_directory(self) -> None:
        assert isinstance(self.bus, NatsBus)
        self.directory = Directory(self.bus.nc, self.bus.namespace)
        try:
            await self.directory.open()
        except DirectoryUnavailable as exc:
            if self.room_names != list(self.world.rooms) or not self.bank:  # a spread world routes by it
                raise ConnectionError(str(exc)) from None
            log.warning("%s", exc)
            self.directory = None

    async def announce(self, url: str) -> None:
        """With NATS: write who serves each of this process's rooms, and where, in the directory (routing only)."""
        if self.directory is None:
            return
        owner = self.process_name()
        for name in self.rooms:
            held = self.ownership.held.get(f"room:{name}") if self.ownership else None
            await self.directory.put("room", name, {"Url": url, "Owner": owner, "Epoch": held.epoch if held else 0})

    def process_name(self) -> str:
        """This process in the directory: its lease owner id, or (no leases) its bus's."""
        return self.ownership.owner if self.ownership else self.bus.process  # type: ignore[attr-defined]

    async def withdraw(self) -> None:
        """Remove this process's directory entries (those a takeover has not overwritten)."""
        if self.directory is None:
            return
        owner = self.process_name()
        for name in self.rooms:
            try:
                await self.directory.delete("room", name, owner)
            except Exception as exc:  # NATS gone at shutdown: the entries are hints, a takeover overwrites them
                log.warning("directory entry of %s not removed: %s", name, exc)
                return

    def logged(self) -> list[LoggedActor]:
        return [a for a in self.actors if isinstance(a, LoggedActor)]

    def state_hashes(self) -> dict[str, dict[str, Any]]:
        """Per logged actor: its log head and state digest (the live side of `llama-land replay --compare`)."""
        assert self.log is not None
        out = {}
        for actor in self.logged():
            head = self.log.heads.get(actor.id)
            if head is not None and head.slot > 0:
                out[actor.id] = {"slot": head.slot, "digest": actor.state.digest()}
        return out

    def periodic(self) -> list[tuple[float, str, str]]:
        """(every seconds, address, Action) the Server's housekeeping delivers: the Fed keeps the next epoch's
        commitment published; rooms checkpoint moved players' positions."""
        jobs = [(10.0, "fed", "Tick")] if self.fed is not None else []
        jobs += [(5.0, "market", "Tick")] if self.bank else []
        return jobs + [(self.world.rules.checkpoint_s, room.id, "Checkpoint") for room in self.rooms.values()]

    # --- reload ------------------------------------------------------------------------------------------------

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def swap(self, world: World, templates: dict[str, Any], cast: Cast) -> list[str]:
        """Put a reloaded world in place (server/reload.py checked it loads); returns what changed. Rooms whose
        map, NPCs or rules changed are told to Reload (a plain message: each reads its new map and cast from
        room_config); NPC actors of an unchanged kind are reconfigured in place, new NPCs start (and open,
        finishing what a crash left), removed ones stop; the King's Fed takes his new file, room and committee."""
        changed = self._swap_npcs(cast) if self.bank else []  # NPC actors live with the bank
        changed += self._swap_rooms(world, cast)
        if self.herd is not None:
            self.herd.templates.update({**templates, **cast.templates()})
        self.templates = templates
        return changed

    def room_config(self, name: str) -> tuple[World, Any, list[NpcPresence], list[str]]:
        """What a room serves now: the world, its map, the NPCs placed in it, the NPCs that listen to its chat
        (read by the room on Reload)."""
        return self.world, self.world.rooms[name], self.cast.in_room(name), self.cast.listeners(name)

    def _swap_rooms(self, world: World, cast: Cast) -> list[str]:
        changed, t = [], now_ms()
        for name, room in world.rooms.items():
            if name not in self.rooms:  # served by another process, which reloads it
                continue
            before = sorted((p.spec.id, p.x, p.y, p.spec) for p in self.cast.in_room(name))
            after = sorted((p.spec.id, p.x, p.y, p.spec) for p in cast.in_room(name))
            if room.sha256 != self.world.rooms[name].sha256 or before != after or world.rules != self.world.rules \
                    or self.cast.listeners(name) != cast.listeners(name):
                changed.append(name)
        self.world, self.cast = world, cast  # what the rooms read when they handle Reload
        for name in changed:
            self.bus.send(self.rooms[name].id, {"Action": "Reload", "T": t})
        return [f"room {name}" for name in changed]

    def _swap_npcs(self, cast: Cast) -> list[str]:
        changed = []
        fed = self.fed
        if fed is not None and cast.king is not None:
            king = cast.king
            committee = [cast.specs[m] for m in king.committee]
            if king != fed.king or [m.id for m in fed.committee] != king.committee or \
                    any(new != old for new, old in zip(committee, fed.committee)):
                changed.append("npc king")
            fed.configure(king, cast.placed[king.id].room, committee)
        running = {a.spec.id: a for a in self.npc_actors if a is not fed}
        for npc_id, presence in cast.placed.items():
            if presence.spec.kind == "king":
                continue
            actor = running.pop(npc_id, None)
            if actor is not None and actor.spec.kind == presence.spec.kind:
                if actor.spec != presence.spec or actor.room != presence.room:
                    actor.configure(presence.spec, presence.room)
                    changed.append(f"npc {npc_id}")
                continue
            if actor is not None:
                self._retire(actor)
            fresh = self.make_npc_actor(presence)
            if fresh is not None:
                self.npc_actors.append(fresh)
                self.actors.append(fresh)
                self.bus.register(fresh)
                fresh.start()
                self.spawn(fresh.open(now_ms()))
                changed.append(f"npc {npc_id} (new)")
        for npc_id, actor in running.items():
            self._retire(actor)
            changed.append(f"npc {npc_id} (gone)")
        return changed

    def _retire(self, actor: Actor) -> None:
        self.npc_actors.remove(actor)
        self.actors.remove(actor)
        self.bus.unregister(actor.id)
        self.spawn(actor.stop())
