"""RoomActor: one room of the world, its whole lifecycle in one class (in the spirit of a Colyseus Room).

open     -> rebuild logged state, record the map it serves, clear avatars a crash left behind
Enter    -> a player arrives (login, resume, portal): logged Join, RoomJoined to the player
Move     -> soft state: rules.walk, then the interest grid; portals hand the player to another room
Chat     -> logged, then delivered to the room or to those nearby; Whisper -> logged, to one player anywhere
Tick     -> one frame per interest cell to the players in it
Leave    -> logged, position checkpointed
Reload   -> a changed map or cast swapped in under connected players (`serve --reload`)
NPCs     -> they stand (or wander) here as entities; requests for them (Petition, Joke, …) are checked for reach
            and forwarded; NpcSay is an NPC speaking (to the room, those near, or in a whisper), logged like any chat
            line but marked with the NPC's id
Messages from players carry a server-stamped `Player` and `T`; nothing here trusts a name sent by a client.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from server.core.actors import Bus, MailboxFull, Message, action, player_id
from server.core.db import ChatLine, Database, upsert_positions
from server.world.interest import InterestGrid
from server.core.log import MessageLog
from server.core.protocol import ACTIONS, Code
from server.world.rules import Refused, Walker, clean_chat, near, npc_line, walk
from server.core.logged import LoggedActor
from server.world.room_state import RoomState
from server.world.maps import RoomMap, World
from server.world.visitors import Visitor



class PlacedNpc(Protocol):
    """An NPC standing (or walking) in this room, as the cast describes it (npcs/cast.py's NpcPresence): its
    entity, where it stands, its address and which requests it serves — data, so the room needs no NPC code."""

    spec: Any  # .id, .name, .reach
    x: int
    y: int
    eid: int
    wanderer: Any  # a Wanderer (npcs/wander.py) if it walks about, else None

    @property
    def address(self) -> str | None: ...

    @property
    def serves(self) -> dict[str, str]: ...

    def describe(self) -> dict[str, object]: ...


# A room's current (world, map, NPCs placed in it), by room name: what a Reload swaps in.
RoomSource = Callable[[str], "tuple[World, RoomMap, list[PlacedNpc], list[str]]"]  # ..., the listeners' addresses



@dataclass
class Avatar:
    name: str
    eid: int
    walker: Walker
    moved: bool = False  # since the last checkpoint
    leaving: bool = False  # stepped on a portal: on the way out, nothing more is done here



class RoomActor(LoggedActor):
    State = RoomState
    state: RoomState

    def __init__(self, world: World, room: RoomMap, bus: Bus, log: MessageLog, db: Database, metrics: Any,
                 npcs: "list[PlacedNpc] | None" = None, source: "RoomSource | None" = None,
                 listeners: list[str] | None = None):
        super().__init__(f"room:{room.name}", log)
        self.world, self.room, self.rules = world, room, world.rules
        self.bus, self.log, self.db, self.metrics = bus, log, db, metrics
        self.grid = InterestGrid(room.width, room.height, self.rules.cell, self.rules.view_radius)
        self.avatars: dict[str, Avatar] = {}
        self.by_eid: dict[int, str] = {}
        self.tick_no = 0
        self.npcs: dict[str, Any] = {n.spec.id: n for n in npcs or []}
        self.visitors: dict[str, Visitor] = {}  # NPCs outside programs play, while they are connected
        self.wanderers = [n for n in self.npcs.values() if n.wanderer is not None]
        self.source = source  # where a Reload reads the room's new map and NPCs from
        self.listeners = listeners or []  # NPCs (here or elsewhere) that hear every chat line said in this room
        for name, match, fn, *inline in [
            ("enter", action("Enter"), self.on_enter),
            ("leave", action("Leave"), self.on_leave),
            ("move", action("Move"), self.on_move, True),
            ("chat", action("Chat"), self.on_chat),
            ("whisper", action("Whisper"), self.on_whisper),
            ("who", action("Who"), self.on_who),
            ("tick", action("Tick"), self.on_tick, True),
            ("checkpoint", action("Checkpoint"), self.on_checkpoint),
            ("npc-say", action("NpcSay"), self.on_npc_say),
            ("reload", action("Reload"), self.on_reload),
            ("through", action("Through"), self.on_through),
            ("npc-arrive", action("NpcArrive"), self.on_npc_arrive),
            ("npc-depart", action("NpcDepart"), self.on_npc_depart),
            # Every other player request the session routes here is for an NPC standing in this room.
            ("npc-request", lambda m: m.get("Action") in ACTIONS and "Player" in m, self.on_npc_request),
        ]:
            self.handle(name, match, fn, *inline)

    # --- lifecycle -------------------------------------------------------------------------------------------

    async def open(self, t: int) -> None:
        """Before any player arrives: record the map this room serves and clear avatars left by a crash."""
        config = {"HistoryLen": self.rules.chat_history, "MapSha": self.room.sha256}
        if self.state.config != config:
            await self.record({"Action": "Configure", **config, "T": t})
        for name in sorted(self.state.members):
            await self.record({"Action": "Leave", "Player": name, "Reason": "restart", "T": t})
        for npc in self.npcs.values():  # an NPC's entity id maps to no connection: ticks about it, none to it
            self.grid.add(npc.eid, npc.spec.name, npc.x, npc.y)
            self.by_eid[npc.eid] = f"entity:{npc.spec.id}"

    async def on_enter(self, msg: Message) -> None:
        name = msg["Player"]
        if name in self.avatars:  # a resumed or replaced connection: same avatar, fresh picture
            self.send_joined(self.avatars[name])
            self.grid.refresh(self.avatars[name].eid)
            return
        x, y = msg.get("X"), msg.get("Y")
        if x is None or y is None or not self.room.walkable(x, y) or (x, y) in self.room.portal_at:
            x, y = self.room.spawn_tile(msg.get("Spawn") or "default", f"{name}:{msg['T']}")
        await self.record({"Action": "Join", "Player": name, "X": x, "Y": y, "Via": msg.get("Via", "login"), "T": msg["T"]})
        avatar = Avatar(name, self.state.members[name], Walker.standing(x, y, msg["T"], self.rules), moved=True)
        self.avatars[name] = avatar
        self.by_eid[avatar.eid] = player_id(name)
        self.grid.add(avatar.eid, name, x, y)
        self.send_joined(avatar)

    def send_joined(self, avatar: Avatar) -> None:
        w = avatar.walker
        # Presence learns where the player is before the player does: their next request comes here.
        self.bus.send("presence", {"Action": "Located", "Player": avatar.name, "Room": self.room.name})
        self.bus.send(player_id(avatar.name), {
            "Action": "RoomJoined", "Room": self.room.name, "World": self.world.name,
            "Map": self.room.path.relative_to(self.world.root).as_posix(), "Width": self.room.width,
            "Height": self.room.height, "TileSize": self.room.tile_size, "You": avatar.eid, "X": w.x, "Y": w.y,
            "Chat": [list(line) for line in self.state.history],
            "Rules": {"TickHz": self.rules.tick_hz, "Speed": self.rules.speed, "NearRadius": self.rules.near_radius,
                      "ChatMax": self.rules.chat_max, "Cell": self.rules.cell},
            "Npcs": [npc.describe() for npc in self.npcs.values()],
        })

    async def on_leave(self, msg: Message) -> None:
        avatar = self.avatars.pop(msg["Player"], None)
        if avatar is None:
            return
        await self.record({"Action": "Leave", "Player": avatar.name, "Reason": msg.get("Reason", "logout"), "T": msg["T"]})
        self.by_eid.pop(avatar.eid, None)
        self.grid.remove(avatar.eid)
        if msg.get("Reason") != "portal":
            self.checkpoint([avatar], msg["T"])

    async def on_reload(self, msg: Message) -> None:
        """A designer changed this room's map or NPCs (`serve --reload`): swap them in under the players, who stay
        connected and in place — or, if their tile is now blocked, on the nearest walkable one — and get a fresh
        RoomJoined (the new map, the new NPCs)."""
        assert self.source is not None
        world, room, npcs, self.listeners = self.source(self.room.name)
        t = msg["T"]
        self.world, self.rules, self.room = world, world.rules, room
        self.npcs = {**{n.spec.id: n for n in npcs}, **self.visitors}
        self.wanderers = [n for n in self.npcs.values() if n.wanderer is not None]
        self.grid = InterestGrid(room.width, room.height, self.rules.cell, self.rules.view_radius)
        self.by_eid = {}
        for npc in self.npcs.values():
            self.grid.add(npc.eid, npc.spec.name, npc.x, npc.y)
            self.by_eid[npc.eid] = f"entity:{npc.spec.id}"
        config = {"HistoryLen": self.rules.chat_history, "MapSha": room.sha256}
        if self.state.config != config:
            await self.record({"Action": "Configure", **config, "T": t})
        for avatar in self.avatars.values():
            x, y = room.nearest_standable(avatar.walker.x, avatar.walker.y)
            avatar.walker = Walker.standing(x, y, t, self.rules)
            avatar.moved = True
            self.grid.add(avatar.eid, avatar.name, x, y)
            self.by_eid[avatar.eid] = player_id(avatar.name)
            self.send_joined(avatar)

    # --- movement ----------------------------------------------------------------------------------------------

    def on_move(self, msg: Message) -> None:
        """Synchronous (the room's busiest message: handled inline when the room is idle); a step onto a portal
        is finished by `Through`, queued behind it, because leaving is logged."""
        avatar = self.avatars.get(msg["Player"])
        if avatar is None or avatar.leaving:  # in flight between rooms; the new room's RoomJoined is on its way
            return
        try:
            changed = walk(self.room, self.rules, avatar.walker, msg)
        except Refused as no:  # the error carries the true position, so the client can snap back
            self.refuse(msg, no.code, no.message, X=avatar.walker.x, Y=avatar.walker.y)
            return
        w = avatar.walker
        if msg.get("Id") is not None:
            self.answer(msg, X=w.x, Y=w.y)
        if not changed:
            return
        avatar.moved = True
        self.grid.move(avatar.eid, w.x, w.y)
        if (w.x, w.y) in self.room.portal_at:
            avatar.leaving = True
            try:
                self.deliver({"Action": "Through", "Player": avatar.name, "T": msg["T"]})
            except MailboxFull:  # the room is swamped: the player stands on the portal and may step again
                avatar.leaving = False

    async def on_through(self, msg: Message) -> None:
        avatar = self.avatars.get(msg["Player"])
        if avatar is None:
            return
        portal = self.room.portal_at.get((avatar.walker.x, avatar.walker.y))
        if portal is None:  # a reload moved the player off what is no longer a portal
            avatar.leaving = False
            return
        await self.on_leave({"Player": avatar.name, "Reason": "portal", "T": msg["T"]})
        target, via = f"room:{portal.target_room}", f"portal:{self.room.name}"
        if self.bus.lookup(target) is not None:
            self.bus.send(target, {"Action": "Enter", "Player": avatar.name, "Spawn": portal.target_spawn,
                                   "Via": via, "T": msg["T"]})
            return
        # Another process serves that room: its spawn tile is known here (every process reads the whole world),
        # so the player's position is checkpointed there before the hand-off — a lost reconnect loses nothing.
        x, y = self.world.rooms[portal.target_room].spawn_tile(portal.target_spawn, f"{avatar.name}:{msg['T']}")
        self.db.submit_nowait(lambda session: upsert_positions(session, [
            {"name": avatar.name, "room": portal.target_room, "x": x, "y": y, "t_ms": msg["T"]}]))
        self.bus.send("presence", {"Action": "HandOff", "Player": avatar.name, "Room": portal.target_room,
                                   "From": self.room.name, "X": x, "Y": y, "Via": via, "T": msg["T"]})

    # --- chat --------------------------------------------------------------------------------------------------

    async def on_chat(self, msg: Message) -> None:
        avatar = self.avatars.get(msg["Player"])
        if avatar is None:
            return
        scope = msg.get("Scope") or "room"
        try:
            text = clean_chat(msg["Text"], self.rules)
        except Refused as no:
            self.refuse(msg, no.code, no.message)
            return
        entry = {"Action": "Chat", "Player": avatar.name, "Scope": scope, "Text": text, "T": msg["T"]}
        await self.record(entry, [ChatLine(room=self.room.name, scope=scope, author=avatar.name, text=text, t_ms=msg["T"])])
        line = {"Action": "ChatLine", "Room": self.room.name, "Seq": self.state.chat_seq, "From": avatar.name,
                "Scope": scope, "Text": text, "T": msg["T"]}
        if scope == "room":
            hearers = list(self.avatars)
        else:
            ax, ay = avatar.walker.x, avatar.walker.y
            radius = self.rules.near_radius
            hearers = [n for n, a in self.avatars.items() if near(ax, ay, a.walker.x, a.walker.y, radius)]
        for name in hearers:
            self.bus.send(player_id(name), line)
        self.answer(msg, Seq=self.state.chat_seq, Heard=len(hearers) - 1)
        for address in self.listeners:  # NPCs that read the mood hear every line (their own rules count them)
            self.bus.send(address, {"Action": "Overheard", "Player": avatar.name, "Room": self.room.name,
                                    "Text": text, "T": msg["T"]})
        for npc in self.wanderers:  # a llama answers when a player near it speaks to it by name
            if npc.spec.name.lower() in text.lower() and near(avatar.walker.x, avatar.walker.y, npc.x, npc.y,
                                                              npc.spec.reach):
                self.bus.send(npc.address, {"Action": "Heard", "Player": avatar.name, "Text": text, "T": msg["T"]})

    # --- NPCs --------------------------------------------------------------------------------------------------

    def on_npc_request(self, msg: Message) -> None:
        avatar = self.avatars.get(msg["Player"])
        if avatar is None:
            return
        if "Npc" in msg:  # Use, AskPrice: the NPC is named
            npc = self.npcs.get(str(msg["Npc"]).lower())
        else:
            npc = next((n for n in self.npcs.values() if msg["Action"] in n.serves and n.address), None)
        try:
            if npc is not None and msg["Action"] not in npc.serves:  # one of the world's own NPCs: no declared actions
                own = ", ".join(a for a in npc.serves if a != "Quote")
                raise Refused(Code.UNKNOWN_ACTION, f"{npc.spec.name} declares no actions" +
                              (f": ask with its own requests ({own})" if own else ""))
            if npc is None:
                raise Refused(Code.NO_NPC_HERE, f"nobody in {self.room.name} answers {msg['Action']}: the NPC who "
                                                f"does stands in another room")
            if not near(avatar.walker.x, avatar.walker.y, npc.x, npc.y, npc.spec.reach):
                raise Refused(Code.TOO_FAR, f"walk up to {npc.spec.name} (within {npc.spec.reach} tiles) first")
            if not self.bus.send(npc.address, {**msg, "Npc": npc.spec.id}):
                raise Refused(Code.UNAVAILABLE, f"{npc.spec.name} is not here right now")
        except Refused as no:
            self.refuse(msg, no.code, no.message)
        except MailboxFull:
            self.refuse(msg, Code.BUSY, f"{npc.spec.name} is busy; try again in a moment")

    def on_npc_arrive(self, msg: Message) -> None:
        """An NPC program declared its actions (again): it stands here now, and everyone here is told."""
        visitor = Visitor.of(msg["Npc"])
        if visitor.spec.id not in self.visitors:
            self.grid.add(visitor.eid, visitor.spec.name, visitor.x, visitor.y)
            self.by_eid[visitor.eid] = f"entity:{visitor.spec.id}"
        self.visitors[visitor.spec.id] = self.npcs[visitor.spec.id] = visitor
        for name in self.avatars:
            self.bus.send(player_id(name), {"Action": "NpcJoined", "Room": self.room.name, "Npc": visitor.data})

    def on_npc_depart(self, msg: Message) -> None:
        visitor = self.visitors.pop(msg["Npc"], None)
        if visitor is None:
            return
        self.npcs.pop(visitor.spec.id, None)
        self.grid.remove(visitor.eid)
        self.by_eid.pop(visitor.eid, None)
        for name in self.avatars:
            self.bus.send(player_id(name), {"Action": "NpcLeft", "Room": self.room.name, "Npc": visitor.spec.id})

    async def on_npc_say(self, msg: Message) -> None:
        npc = self.npcs.get(msg["Npc"])
        text = npc_line(str(msg["Text"]), self.rules.chat_max)
        if npc is None or not text:
            return
        scope, to = msg.get("Scope") or "room", msg.get("To")  # a whisper's To: whoever asked the NPC something
        entry = {"Action": "Chat", "Player": npc.spec.name, "Npc": npc.spec.id, "Scope": scope, "Text": text,
                 "T": msg["T"], **({"To": to} if scope == "whisper" else {})}
        await self.record(entry, [ChatLine(room=self.room.name, scope=scope, author=npc.spec.name, to=entry.get("To"),
                                           text=text, t_ms=msg["T"])])
        if scope == "whisper":
            self.bus.send(player_id(to), {"Action": "Whisper", "From": npc.spec.name, "Npc": npc.spec.id, "To": to,
                                          "Text": text, "T": msg["T"]})
            return
        line = {"Action": "ChatLine", "Room": self.room.name, "Seq": self.state.chat_seq, "From": npc.spec.name,
                "Npc": npc.spec.id, "Scope": scope, "Text": text, "T": msg["T"]}
        radius = max(self.rules.near_radius, npc.spec.reach)  # whoever it can hear can hear its answer
        for name, a in self.avatars.items():
            if scope == "room" or near(npc.x, npc.y, a.walker.x, a.walker.y, radius):
                self.bus.send(player_id(name), line)

    def walk_wanderers(self, t: int) -> None:
        for npc in self.wanderers:
            w = npc.wanderer
            assert w is not None
            if w.advance(t):
                npc.x, npc.y = w.x, w.y
                self.grid.move(npc.eid, npc.x, npc.y)
            audience = any(near(npc.x, npc.y, a.walker.x, a.walker.y, self.rules.near_radius)
                           for a in self.avatars.values())
            if w.idle_due(t, audience) and npc.spec.lines.get("idle"):
                self.deliver({"Action": "NpcSay", "Npc": npc.spec.id, "Scope": "near", "T": t,
                              "Text": npc.spec.line("idle", w.lines_said - 1)})

    async def on_whisper(self, msg: Message) -> None:
        avatar = self.avatars.get(msg["Player"])
        if avatar is None:
            return
        to, online = await self.reach(msg["To"])
        try:
            if not online or to == avatar.name:
                raise Refused(Code.UNKNOWN_PLAYER, f"{msg['To']!r} is not online")
            text = clean_chat(msg["Text"], self.rules)
        except Refused as no:
            self.refuse(msg, no.code, no.message)
            return
        entry = {"Action": "Whisper", "Player": avatar.name, "To": to, "Text": text, "T": msg["T"]}
        row = ChatLine(room=self.room.name, scope="whisper", author=avatar.name, to=to, text=text, t_ms=msg["T"])
        await self.record(entry, [row])
        self.bus.send(player_id(to), {"Action": "Whisper", "From": avatar.name, "To": to, "Text": text, "T": msg["T"]})
        self.answer(msg, To=to)

    async def reach(self, name: str) -> tuple[str, bool]:
        """The player's exact name and whether they are online: connected here, or (a world on NATS) asked at
        their address wherever they are connected — nobody there answers at once, a hung process in 2 s."""
        target = self.bus.lookup(player_id(name))
        if target is not None or not self.bus.may_reach(player_id(name)):
            return name, bool(getattr(target, "online", False))
        try:
            reached = await self.bus.call(player_id(name), {"Action": "Reach"}, timeout=2.0)
        except (LookupError, TimeoutError):
            return name, False
        return reached.get("Name", name), bool(reached.get("Online"))

    def on_handler_error(self, msg: Message) -> None:
        """A bug, not the player's fault: say so to whoever asked, and keep the room running."""
        if msg.get("Player") and msg.get("Action") not in ("Tick", "Checkpoint", "Enter", "Leave"):
            self.refuse(msg, Code.INTERNAL, "the server failed on this request; it had no effect")

    def refuse(self, msg: Message, code: str, message: str, **extra: Any) -> None:
        self.metrics.errors[code] += 1
        super().refuse(msg, code, message, **extra)

    def on_who(self, msg: Message) -> None:
        self.answer(msg, Room=self.room.name, Players=sorted(self.avatars))

    # --- tick and checkpoints ----------------------------------------------------------------------------------

    def on_tick(self, msg: Message) -> None:
        started = time.perf_counter()
        self.tick_no += 1
        if self.wanderers:
            self.walk_wanderers(msg["T"])
        out = self.grid.flush(self.tick_no, msg["T"])
        for eid, frame in out.views.items():
            self.bus.send_raw(self.by_eid[eid], frame)
        occupants, by_eid = self.grid.occupants, self.by_eid
        for cell, frame in out.frames.items():
            self.bus.multicast_raw([by_eid[eid] for eid in occupants[cell]], frame)
        self.metrics.observe_tick(self.id, time.perf_counter() - started, len(out.frames))

    def on_checkpoint(self, msg: Message) -> None:
        self.checkpoint([a for a in self.avatars.values() if a.moved], msg["T"])

    def checkpoint(self, avatars: list[Avatar], t: int) -> None:
        rows = [{"name": a.name, "room": self.room.name, "x": a.walker.x, "y": a.walker.y, "t_ms": t} for a in avatars]
        for a in avatars:
            a.moved = False
        if rows:
            self.db.submit_nowait(lambda session: upsert_positions(session, rows))

    def checkpoint_all(self, t: int) -> None:
        self.checkpoint(list(self.avatars.values()), t)
