"""Presence: who is in the world, where, and for how long they may be away.

`PlayerEdge` is a player's address on the bus (`player:<name>`). It outlives a dropped connection for a grace
period, so a client that reconnects with its session token gets its avatar back; after the grace period the
avatar leaves (no ghosts). Presence itself is on the bus as `presence`: rooms tell it where each player is
(`Located`, sent when a room takes a player in, by login or by portal), so later requests follow the player.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import TYPE_CHECKING, Any, Callable, Protocol

from server.core.actors import Edge, MailboxFull, Message, player_id
from server.core.clock import now_ms
from server.core.protocol import Code, ProtocolError, encode
from server.net.frames import ws_binary_frame

if TYPE_CHECKING:
    from server.net.host import WorldHost


class Client(Protocol):
    """What presence needs of a connection (server/net/connection.py is the one there is)."""

    def send(self, msg: Message) -> None: ...

    def write(self, frame: bytes) -> None: ...

    def write_wire(self, wire: bytes) -> None: ...

    def kicked(self) -> None: ...


class PlayerEdge(Edge):
    def __init__(self, name: str, room: str):
        self.id = player_id(name)
        self.name = name
        self.room = room  # the address of the room the player is in
        self.conn: Client | None = None
        self.token = ""
        self.grace: asyncio.TimerHandle | None = None

    @property
    def online(self) -> bool:
        return self.conn is not None

    def deliver(self, msg: Message) -> None:
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
    """Player edges, session tokens, grace timers; the `presence` address rooms report to."""

    id = "presence"

    def __init__(self, host: "WorldHost", grace_s: Callable[[], float]):
        self.host, self.bus = host, host.bus
        self.grace_s = grace_s
        self.tokens: dict[str, str] = {}  # session token -> player name
        self.online: dict[str, str] = {}  # lower-cased name -> name, for players with an edge
        self.bus.register(self)

    def deliver(self, msg: Message) -> None:
        if msg["Action"] == "Located":  # a room has taken the player in: their requests go there now
            edge = self.bus.lookup(player_id(msg["Player"]))
            if isinstance(edge, PlayerEdge):
                edge.room = f"room:{msg['Room']}"

    def deliver_raw(self, frame: bytes) -> None:
        raise TypeError("presence takes messages, not frames")

    def name_of(self, name: str) -> str:
        """The name of the player called `name` in any case, if they are in the world; else name unchanged."""
        return self.online.get(name.lower(), name)

    def _issue_token(self, edge: PlayerEdge) -> None:
        self.tokens.pop(edge.token, None)
        edge.token = secrets.token_urlsafe(24)
        self.tokens[edge.token] = edge.name

    async def enter(self, conn: Client, name: str, via: str) -> PlayerEdge:
        bus, world = self.bus, self.host.world
        edge = bus.lookup(player_id(name))
        if isinstance(edge, PlayerEdge):
            if edge.grace is not None:
                edge.grace.cancel()
                edge.grace = None
            if edge.conn is not None and edge.conn is not conn:  # the older connection's token stops working
                edge.conn.send({"Action": "Kicked", "Reason": "logged in from another connection"})
                edge.conn.kicked()
            edge.conn = conn
            self._issue_token(edge)
            bus.send(edge.room, {"Action": "Enter", "Player": name, "Via": via, "T": now_ms()})
            return edge
        saved = await asyncio.to_thread(self.host.load_checkpoint, name)
        enter: dict[str, Any] = {"Action": "Enter", "Player": name, "Via": via, "T": now_ms()}
        if saved is not None and saved.room in world.rooms:
            room = saved.room
            enter.update(X=saved.x, Y=saved.y)
        else:
            room = world.start_room
            enter["Spawn"] = world.start_spawn
        edge = PlayerEdge(name, f"room:{room}")
        edge.conn = conn
        self._issue_token(edge)
        bus.register(edge)
        self.online[name.lower()] = name
        try:
            bus.send(edge.room, enter)
        except MailboxFull:
            bus.unregister(edge.id)
            self.online.pop(name.lower(), None)
            raise ProtocolError(Code.BUSY, "the world is busy; try again in a moment") from None
        return edge

    def detach(self, edge: PlayerEdge) -> None:
        edge.conn = None
        edge.grace = asyncio.get_running_loop().call_later(self.grace_s(), self.expire, edge)

    def expire(self, edge: PlayerEdge) -> None:
        if edge.conn is None:
            self.leave(edge, "timeout")

    def leave(self, edge: PlayerEdge, reason: str) -> None:
        if edge.grace is not None:
            edge.grace.cancel()
            edge.grace = None
        self.tokens.pop(edge.token, None)
        self.bus.unregister(edge.id)
        self.online.pop(edge.name.lower(), None)
        edge.conn = None
        self._send_leave(edge, reason)

    def _send_leave(self, edge: PlayerEdge, reason: str) -> None:
        try:
            self.bus.send(edge.room, {"Action": "Leave", "Player": edge.name, "Reason": reason, "T": now_ms()})
        except MailboxFull:  # retry shortly: a lost leave would leave the avatar haunting the room
            asyncio.get_running_loop().call_later(0.1, self._send_leave, edge, reason)
