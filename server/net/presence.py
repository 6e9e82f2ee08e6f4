"""Presence: who is in the world, where, and for how long they may be away.

`PlayerEdge` is a player's address on the bus (`player:<name>`). It outlives a dropped connection for a grace
period, so a client that reconnects with its session token gets its avatar back; after the grace period the
avatar leaves (no ghosts). Presence itself is on the bus as `presence`: rooms tell it where each player is
(`Located`, sent when a room takes a player in, by login or by portal), so later requests follow the player.

A player is connected to the process that serves their room. One whose room is served elsewhere (at login, or
through a portal: the room sends `HandOff`) is handed off: told `Moved` with the other process's URL and a one-use
ticket, and their connection here closes; the edge goes before the other process makes one, so a player is never
in two rooms. The session tokens live with the world's accounts, so a token resumes on any process.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Callable, Protocol

from server.core.actors import Edge, MailboxFull, Message, player_id
from server.core.clock import now_ms
from server.core.protocol import Code, ProtocolError, Refused, encode
from server.net import auth
from server.net.frames import ws_binary_frame

log = logging.getLogger("llama_land.presence")

if TYPE_CHECKING:
    from server.net.host import WorldHost


class Client(Protocol):
    """What presence needs of a connection (server/net/connection.py is the one there is)."""

    def send(self, msg: Message) -> None: ...

    def write(self, frame: bytes) -> None: ...

    def write_wire(self, wire: bytes) -> None: ...

    def kicked(self) -> None: ...

    def moved(self, where: Message) -> None: ...


class PlayerEdge(Edge):
    def __init__(self, name: str, room: str, bus: Any):
        self.id = player_id(name)
        self.name = name
        self.room = room  # the address of the room the player is in
        self.bus = bus
        self.conn: Client | None = None
        self.token = ""
        self.grace: asyncio.TimerHandle | None = None

    @property
    def online(self) -> bool:
        return self.conn is not None

    def deliver(self, msg: Message) -> None:
        if msg.get("Action") == "Reach":  # a room elsewhere asks before a whisper: here, and under which name?
            self.bus.send(msg["ReplyTo"], {"Action": "Reached", "Name": self.name, "Online": self.online})
            return
        self.deliver_raw(encode(msg))

    def deliver_raw(self, frame: bytes) -> None:
        if self.conn is not None:
            self.conn.write(frame)

    @classmethod
    def prepare(cls, frame: bytes) -> bytes:
        return ws_binary_frame(frame)

    def deliver_prepared(self, wire: bytes) -> None:
        if self.conn is not None:
            self.conn.write_wire(wire)


class Presence(Edge):
    """Player edges, grace timers, hand-offs; the `presence` address rooms report to."""

    id = "presence"

    def __init__(self, host: "WorldHost", grace_s: Callable[[], float]):
        self.host, self.bus = host, host.bus
        self.grace_s = grace_s
        self.online: dict[str, str] = {}  # lower-cased name -> name, for players with an edge
        self.tasks: set[asyncio.Task] = set()
        self.bus.register(self)

    def deliver(self, msg: Message) -> None:
        if msg["Action"] == "Located":  # a room has taken the player in: their requests go there now
            edge = self.bus.lookup(player_id(msg["Player"]))
            if isinstance(edge, PlayerEdge):
                edge.room = f"room:{msg['Room']}"
        elif msg["Action"] == "HandOff":  # a portal into a room another process serves
            edge = self.bus.lookup(player_id(msg["Player"]))
            if isinstance(edge, PlayerEdge):
                task = asyncio.get_running_loop().create_task(self.portal_hand_off(edge, msg))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)

    def deliver_raw(self, frame: bytes) -> None:
        raise TypeError("presence takes messages, not frames")

    def name_of(self, name: str) -> str:
        """The name of the player called `name` in any case, if they are in the world; else name unchanged."""
        return self.online.get(name.lower(), name)

    async def placement(self, name: str, place: Message | None) -> tuple[str, Message]:
        """Where a player who just authenticated goes: the room and the Enter fields. A ticket's place, the room
        of the avatar still here, the last checkpoint, or the start."""
        world = self.host.world
        edge = self.bus.lookup(player_id(name))
        if isinstance(edge, PlayerEdge):
            return edge.room.split(":", 1)[1], {}
        if place is not None and place.get("Room") in world.rooms:
            fields = {k: place[k] for k in ("X", "Y") if k in place}
            return place["Room"], {**fields, "Via": place.get("Via", "handoff")}
        saved = await asyncio.to_thread(self.host.load_checkpoint, name)
        if saved is not None and saved.room in world.rooms:
            return saved.room, {"X": saved.x, "Y": saved.y}
        return world.start_room, {"Spawn": world.start_spawn}

    async def enter(self, conn: Client, name: str, via: str, token: str, room: str, fields: Message) -> PlayerEdge:
        bus = self.bus
        edge = bus.lookup(player_id(name))
        if isinstance(edge, PlayerEdge):
            if edge.grace is not None:
                edge.grace.cancel()
                edge.grace = None
            if edge.conn is not None and edge.conn is not conn:  # the older connection's token stops working
                edge.conn.send({"Action": "Kicked", "Reason": "logged in from another connection"})
                edge.conn.kicked()
            edge.conn, edge.token = conn, token
            bus.send(edge.room, {"Action": "Enter", "Player": name, "Via": via, "T": now_ms()})
            return edge
        enter: Message = {"Action": "Enter", "Player": name, "Via": via, "T": now_ms(), **fields}
        edge = PlayerEdge(name, f"room:{room}", bus)
        edge.conn, edge.token = conn, token
        bus.register(edge)
        self.online[name.lower()] = name
        try:
            bus.send(edge.room, enter)
        except MailboxFull:
            bus.unregister(edge.id)
            self.online.pop(name.lower(), None)
            raise ProtocolError(Code.BUSY, "the world is busy; try again in a moment") from None
        return edge

    async def portal_hand_off(self, edge: PlayerEdge, msg: Message) -> None:
        """The room let the player go (logged Leave, position checkpointed in the new room): a ticket for the
        process that serves the new room, then this edge goes. If that room is served nowhere right now, the
        player is put back at the start of the room they came from and told why."""
        fields = {k: msg[k] for k in ("X", "Y", "Via") if k in msg}
        try:
            where = await self.host.hand_off(edge.name, msg["Room"], fields)
        except (Refused, LookupError, TimeoutError, MailboxFull) as exc:
            log.warning("hand-off of %s to %s failed: %s", edge.name, msg["Room"], exc)
            if edge.conn is not None:
                edge.conn.send({"Action": "Error", "Code": getattr(exc, "code", Code.UNAVAILABLE),
                                "Message": f"{msg['Room']} cannot be entered right now; try again in a moment"})
            bus_room = f"room:{msg['From']}"
            self.bus.send(bus_room, {"Action": "Enter", "Player": edge.name, "Spawn": "default",
                                     "Via": "portal-refused", "T": now_ms()})
            return
        conn = edge.conn
        self._drop(edge)
        if conn is not None:
            conn.moved(where)

    def detach(self, edge: PlayerEdge) -> None:
        edge.conn = None
        edge.grace = asyncio.get_running_loop().call_later(self.grace_s(), self.expire, edge)

    def expire(self, edge: PlayerEdge) -> None:
        if edge.conn is None:
            self.leave(edge, "timeout")

    def _drop(self, edge: PlayerEdge) -> None:
        if edge.grace is not None:
            edge.grace.cancel()
            edge.grace = None
        self.bus.unregister(edge.id)
        self.online.pop(edge.name.lower(), None)
        edge.conn = None

    def leave(self, edge: PlayerEdge, reason: str) -> None:
        self._drop(edge)
        auth.end_session(self.host, edge.token)
        self._send_leave(edge, reason)

    def _send_leave(self, edge: PlayerEdge, reason: str) -> None:
        try:
            self.bus.send(edge.room, {"Action": "Leave", "Player": edge.name, "Reason": reason, "T": now_ms()})
        except MailboxFull:  # retry shortly: a lost leave would leave the avatar haunting the room
            asyncio.get_running_loop().call_later(0.1, self._send_leave, edge, reason)
