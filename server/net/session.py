"""Sessions: the edge between a websocket and the actors.

`Connection` is one websocket: handshake, rate limit, decoding, and routing of requests. `PlayerEdge` is the
player's address on the bus (`player:<name>`); it outlives a dropped connection for a grace period, so a
client that reconnects with its session token gets its avatar back, and after the grace period the avatar
leaves (no ghosts). Every request is re-stamped here with the logged-in name and the receive time, so a
player can only ever act as itself and handlers never read the wall clock.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Coroutine

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from server.economy import admin
from server.core import protocol
from server.economy import wallet
from server.economy.accounts import MIN_PASSWORD, check_name, hash_off_loop, verify_off_loop
from server.core.actors import Edge, MailboxFull, Message, player_id
from server.core.clock import now_ms
from server.core.db import PositionCheckpoint
from server.core.protocol import Code, ProtocolError, error, response
from server.core.protocol import Refused

if TYPE_CHECKING:
    from server.app import Server

log = logging.getLogger("llama_land.session")

# Requests a room answers; the NPC requests go on from the room to the NPC within reach.
ROUTED = {"Move", "Chat", "Whisper", "Who", "Petition", "Joke", "Prophecy", "Quote", "OracleInfo", "HighLow"}


@dataclass(frozen=True)
class SessionConfig:
    grace_s: float = 30.0  # how long an avatar waits for its dropped connection to come back
    scrypt_n: int = 2**14
    rate: float = 30.0  # requests per second allowed per connection ...
    burst: int = 60  # ... with this much slack
    flood_strikes: int = 100  # rate-limited requests within a burst window before the connection is closed
    write_limit: int = 512 * 1024  # bytes queued for a client before it counts as too slow and is dropped


class PlayerEdge(Edge):
    def __init__(self, name: str, room: str):
        self.id = player_id(name)
        self.name = name
        self.room = room
        self.conn: Connection | None = None
        self.token = ""
        self.grace: asyncio.TimerHandle | None = None

    @property
    def online(self) -> bool:
        return self.conn is not None

    def deliver(self, msg: Message) -> None:
        if msg.get("Action") == "RoomJoined":
            self.room = f"room:{msg['Room']}"  # portals move the player; later requests follow
        self.deliver_raw(protocol.encode(msg))

    def deliver_raw(self, frame: bytes) -> None:
        if self.conn is not None:
            self.conn.write(frame)

    @classmethod
    def prepare(cls, frame: bytes) -> bytes:
        return ws_binary_frame(frame)

    def deliver_prepared(self, wire: bytes) -> None:
        if self.conn is not None:
            self.conn.write_wire(wire)


def ws_binary_frame(payload: bytes) -> bytes:
    """The bytes of one unmasked, unfragmented binary websocket frame (RFC 6455 section 5.2). A server's frames
    are not masked and compression is off, so these bytes are the same for every connection: a tick frame is
    framed once per interest cell rather than once per player."""
    n = len(payload)
    if n < 126:
        return bytes((0x82, n)) + payload
    if n < 65536:
        return b"\x82\x7e" + n.to_bytes(2, "big") + payload
    return b"\x82\x7f" + n.to_bytes(8, "big") + payload


class Connection:
    def __init__(self, ws: ServerConnection, server: "Server"):
        self.ws = ws
        self.server = server
        self.config: SessionConfig = server.session_config
        self.greeted = False
        self.player: PlayerEdge | None = None
        self.tokens = float(self.config.burst)
        self.last = time.monotonic()
        self.strikes = 0
        self.closing = False

    # --- output ----------------------------------------------------------------------------------------------

    def write(self, frame: bytes) -> None:
        self.write_wire(ws_binary_frame(frame))

    def write_wire(self, wire: bytes) -> None:
        """Queue a framed message without waiting. The transport buffer is the outbound queue; past write_limit
        the client is too slow, and it is dropped rather than allowed to hold a room back. Whole frames go
        straight to the transport, between the frames websockets itself writes (pongs, close)."""
        ws = self.ws
        if self.closing or ws.protocol.state is not State.OPEN:
            return
        if ws.transport.get_write_buffer_size() > self.config.write_limit:
            self.server.metrics.slow_clients += 1
            log.info("dropping %s: client too slow", self.describe())
            self.closing = True
            ws.transport.abort()
            return
        ws.transport.write(wire)
        self.server.metrics.frames_out += 1

    def send(self, msg: Message) -> None:
        self.write(protocol.encode(msg))

    def close(self, code: int, reason: str) -> None:
        self.closing = True
        self.server.spawn(self.ws.close(code, reason))

    def describe(self) -> str:
        return self.player.name if self.player else str(self.ws.remote_address)

    # --- input -----------------------------------------------------------------------------------------------

    async def serve(self) -> None:
        try:
            async for data in self.ws:
                # Closing: keep reading and discard, so the client's close frame is seen and the close is clean.
                if not self.closing:
                    waiting = self.on_frame(data)
                    if waiting is not None:
                        await waiting
        except ConnectionClosed:  # the client vanished without a close frame: an everyday event for a server
            pass
        finally:
            self.disconnected()

    def allow(self) -> bool:
        now = time.monotonic()
        self.tokens = min(float(self.config.burst), self.tokens + (now - self.last) * self.config.rate)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            self.strikes = max(0, self.strikes - 1)
            return True
        self.strikes += 1
        return False

    def on_frame(self, data: bytes | str) -> Coroutine[Any, Any, None] | None:
        """Handle one frame. Game traffic (moves, chat) is handed to the room at once; requests that must wait
        (hashing a password, asking the accounts actor) come back as a coroutine that serve() awaits, so one
        connection's requests are still handled in order."""
        metrics = self.server.metrics
        metrics.messages_in += 1
        if not self.allow():
            metrics.errors[Code.RATE_LIMITED] += 1
            if self.strikes > self.config.flood_strikes:
                log.info("closing %s: flood", self.describe())
                self.close(1008, "flood: too many requests")
            else:  # dropped, but answered with its Ref, so the client knows which request to send again
                self.send(error(Code.RATE_LIMITED, f"slow down: at most {self.config.rate:g} requests per second",
                                protocol.ref_of(data)))
            return None
        try:
            msg = protocol.decode(data)
            if self.player is not None and msg["Action"] in ROUTED:
                self.route(msg)
                return None
        except ProtocolError as exc:
            metrics.errors[exc.code] += 1
            self.send(exc.frame())
            return None
        return self._dispatch_reporting(msg)

    async def _dispatch_reporting(self, msg: Message) -> None:
        try:
            await self.dispatch(msg)
        except ProtocolError as exc:
            self.server.metrics.errors[exc.code] += 1
            self.send(exc.frame())
        except Refused as no:
            self.server.metrics.errors[no.code] += 1
            self.send(error(no.code, no.message, msg.get("Id")))
        except (asyncio.TimeoutError, LookupError, MailboxFull):
            log.exception("%s: %s failed", self.describe(), msg["Action"])
            self.server.metrics.errors[Code.INTERNAL] += 1
            self.send(error(Code.INTERNAL, "the server could not complete this request; try again", msg.get("Id")))

    async def dispatch(self, msg: Message) -> None:
        action, ref = msg["Action"], msg.get("Id")
        if action == "Hello":
            if msg["Version"] != protocol.VERSION:
                raise ProtocolError(
                    Code.VERSION_MISMATCH, f"this server speaks protocol {protocol.VERSION}, not {msg['Version']}",
                    ref, Supported=[protocol.VERSION],
                )
            self.greeted = True
            world = self.server.world
            self.send(response(msg, Version=protocol.VERSION, Server=protocol.SERVER_NAME, World=world.name,
                               MaxFrame=protocol.MAX_FRAME, Rate=self.config.rate, Grace=self.config.grace_s))
            return
        if not self.greeted:
            raise ProtocolError(Code.HELLO_REQUIRED, "send Hello with the protocol version first", ref)
        if action == "Ping":
            self.send(response(msg, T=now_ms()))
            return
        if action in ("AdminCredit", "AdminWithdraw"):
            await admin.handle(self, msg, now_ms())
            return
        if action in ("Petitions", "FedInfo"):
            await self.ask_fed(msg)
            return
        if action in ("Balance", "Balances", "Transfer", "TokenInfo"):
            await wallet.handle(self, msg, now_ms())
            return
        if action == "HerdInfo":
            if self.server.herd is None:
                raise ProtocolError(Code.UNAVAILABLE, "this server runs without inference", ref)
            info = await self.server.bus.call("herd", {"Action": "Info", "T": now_ms()})
            self.send(response(msg, **{k: v for k, v in info.items() if k not in ("Action", "ReplyTo")}))
            return
        if action in ("Register", "Login", "Resume"):
            if self.player is not None:
                raise ProtocolError(Code.ALREADY_LOGGED_IN, f"already logged in as {self.player.name}", ref)
            await getattr(self, "on_" + action.lower())(msg)
            return
        if self.player is None:
            raise ProtocolError(Code.NOT_LOGGED_IN, f"log in before {action}", ref)
        if action == "Logout":
            self.server.lobby.leave(self.player, "logout")
            self.player = None
            self.send(response(msg))
            return
        self.route(msg)

    async def ask_fed(self, msg: Message) -> None:
        if self.server.bus.lookup("fed") is None:
            raise ProtocolError(Code.UNAVAILABLE, "this world has no Llama Fed", msg.get("Id"))
        if msg["Action"] == "Petitions" and self.player is None:
            raise ProtocolError(Code.NOT_LOGGED_IN, "log in to see your petitions", msg.get("Id"))
        ask = {"Action": "Info" if msg["Action"] == "FedInfo" else "Petitions", "T": now_ms(),
               "Player": self.player.name if self.player else None, "Epoch": msg.get("Epoch")}
        reply = await self.server.bus.call("fed", ask)
        self.send(response(msg, **{k: v for k, v in reply.items() if k != "Action"}))

    def route(self, msg: Message) -> None:
        """Pass a game request to the player's room, rebuilt from its schema: the sender cannot smuggle in
        Player, T or anything else, and the time is the server's."""
        action, ref = msg["Action"], msg.get("Id")
        routed = {k: msg[k] for k in protocol.ACTIONS[action] if k in msg}
        routed["Action"] = action
        routed["Player"] = self.player.name
        routed["T"] = now_ms()
        if ref is not None:
            routed["Id"] = ref
        try:
            self.server.bus.send(self.player.room, routed)
        except MailboxFull:
            raise ProtocolError(Code.BUSY, "the room is busy; try again in a moment", ref) from None

    async def on_register(self, msg: Message) -> None:
        name, password = msg["Name"], msg["Password"]
        check_name(name, self.server.npc_names)
        if len(password) < MIN_PASSWORD:
            raise Refused(Code.WEAK_PASSWORD, f"a password needs at least {MIN_PASSWORD} characters")
        pw_hash = await hash_off_loop(password, self.config.scrypt_n)
        reply = await self.server.bus.call("accounts", {"Action": "Register", "Player": name, "Hash": pw_hash, "T": now_ms()})
        if reply["Action"] == "Error":
            raise Refused(reply["Code"], reply["Message"])
        await self.enter(msg, name)

    async def on_login(self, msg: Message) -> None:
        reply = await self.server.bus.call("accounts", {"Action": "Lookup", "Player": msg["Name"]})
        account = reply["Account"]
        # Same work and same answer for an unknown name as for a wrong password.
        stored = account["Hash"] if account else self.server.dummy_hash
        ok = await verify_off_loop(msg["Password"], stored)
        if not (ok and account):
            raise Refused(Code.BAD_CREDENTIALS, "wrong name or password")
        await self.enter(msg, account["Name"])

    async def on_resume(self, msg: Message) -> None:
        name = self.server.lobby.tokens.get(msg["Token"])
        if name is None:
            raise Refused(Code.SESSION_EXPIRED, "that session has ended; log in again")
        await self.enter(msg, name)

    async def enter(self, msg: Message, name: str) -> None:
        edge = await self.server.lobby.enter(self, name, via=msg["Action"].lower())
        self.player = edge
        self.send(response(msg, Name=name, Token=edge.token, Grace=self.config.grace_s))
        allowance = self.server.world.starting_war
        if allowance > 0:  # asked again at every login: the ledger grants it once, even if a crash came between
            try:
                await self.server.bus.call("token:wAR", {"Action": "Allowance", "To": name, "Amount": allowance,
                                                         "T": now_ms()})
            except (MailboxFull, asyncio.TimeoutError, LookupError):  # the login stands; the next one grants it
                log.warning("starting allowance for %s deferred: the ledger is busy", name)

    def disconnected(self) -> None:
        if self.player is not None and self.player.conn is self:
            self.server.lobby.detach(self.player)
        self.player = None


class Lobby:
    """Who is in the world: player edges, session tokens, grace timers."""

    def __init__(self, server: "Server"):
        self.server = server
        self.tokens: dict[str, str] = {}

    def _issue_token(self, edge: PlayerEdge) -> None:
        self.tokens.pop(edge.token, None)
        edge.token = secrets.token_urlsafe(24)
        self.tokens[edge.token] = edge.name

    async def enter(self, conn: Connection, name: str, via: str) -> PlayerEdge:
        bus, world = self.server.bus, self.server.world
        edge = bus.lookup(player_id(name))
        if isinstance(edge, PlayerEdge):
            if edge.grace is not None:
                edge.grace.cancel()
                edge.grace = None
            if edge.conn is not None and edge.conn is not conn:
                edge.conn.send({"Action": "Kicked", "Reason": "logged in from another connection"})
                edge.conn.player = None
                edge.conn.close(4000, "logged in elsewhere")
            edge.conn = conn
            self._issue_token(edge)
            bus.send(edge.room, {"Action": "Enter", "Player": name, "Via": via, "T": now_ms()})
            return edge
        saved = await asyncio.to_thread(self.server.load_checkpoint, name)
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
        try:
            bus.send(edge.room, enter)
        except MailboxFull:
            bus.unregister(edge.id)
            raise ProtocolError(Code.BUSY, "the world is busy; try again in a moment") from None
        return edge

    def detach(self, edge: PlayerEdge) -> None:
        edge.conn = None
        edge.grace = asyncio.get_running_loop().call_later(self.server.session_config.grace_s, self.expire, edge)

    def expire(self, edge: PlayerEdge) -> None:
        if edge.conn is None:
            self.leave(edge, "timeout")

    def leave(self, edge: PlayerEdge, reason: str) -> None:
        if edge.grace is not None:
            edge.grace.cancel()
            edge.grace = None
        self.tokens.pop(edge.token, None)
        self.server.bus.unregister(edge.id)
        edge.conn = None
        self._send_leave(edge, reason)

    def _send_leave(self, edge: PlayerEdge, reason: str) -> None:
        try:
            self.server.bus.send(edge.room, {"Action": "Leave", "Player": edge.name, "Reason": reason, "T": now_ms()})
        except MailboxFull:  # retry shortly: a lost leave would leave the avatar haunting the room
            asyncio.get_running_loop().call_later(0.1, self._send_leave, edge, reason)
