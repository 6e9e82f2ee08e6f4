"""Connection: one websocket, the I/O shell around the session state machine (server/net/session.py).

It reads frames, applies the rate limit, decodes and validates requests (server/core/protocol.py), asks the state
machine where each goes, and runs the route's handler. Game traffic (moves, chat, NPC requests) is handed to the
player's room at once; requests that must wait (hashing a password, asking the ledgers) come back as a coroutine
that serve() awaits, so one connection's requests are still handled in order. Every request is re-stamped with the
logged-in name and the receive time, so a player can only ever act as itself and handlers never read the clock.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from typing import Any, Callable, Coroutine

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from server.core import protocol
from server.core.actors import MailboxFull, Message
from server.core.clock import now_ms
from server.core.protocol import Code, ProtocolError, Refused, error, response
from server.core.request import RequestContext
from server.economy import admin, wallet
from server.net import auth
from server.net.frames import ws_binary_frame
from server.net.host import WorldHost
from server.net.presence import PlayerEdge, Presence
from server.net.address import client_address
from server.net.session import Phase, RateLimit, SessionConfig, after, decide
from server.net.wire import FrameInbox, LeanServerConnection

log = logging.getLogger("llama_land.session")
CITIZENS_ONLY = frozenset({"Petition", "PlaceOrder"})  # what a non-citizen may not do (NOT_A_CITIZEN)


class Connection:
    def __init__(self, ws: ServerConnection, host: WorldHost, presence: Presence, config: SessionConfig,
                 metrics: Any, spawn: Callable[[Coroutine], Any]):
        self.ws, self.host, self.presence, self.config, self.metrics, self.spawn = \
            ws, host, presence, config, metrics, spawn
        self.phase = Phase.NEW
        self.player: PlayerEdge | None = None
        self.limit = RateLimit(config.rate, config.burst, time.monotonic())
        self.closing = False
        self._address: str | None = None
        self.citizen: bool | None = None  # known once asked; only ever becomes True
        self.program: Any = None  # an NPC program's actor (npcs/actors/program.py), once logged in with its key
        self.handlers = {"hello": self.on_hello, "ping": self.on_ping, "auth": self.on_auth,
                         "logout": self.on_logout, "npc": self.on_npc, "fed": self.on_fed, "herd": self.on_herd,
                         "wallet": self.on_wallet, "admin": self.on_admin,
                         "market": self.on_market, "citizen": self.on_citizen,
                         "program-login": self.on_program_login, "program": self.on_program}

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
            self.metrics.slow_clients += 1
            log.info("dropping %s: client too slow", self.describe())
            self.closing = True
            ws.transport.abort()
            return
        ws.transport.write(wire)
        self.metrics.frames_out += 1

    def send(self, msg: Message) -> None:
        self.write(protocol.encode(msg))

    def close(self, code: int, reason: str) -> None:
        self.closing = True
        self.spawn(self.ws.close(code, reason))

    def kicked(self) -> None:
        """A newer login of the same player took the avatar over."""
        self.player, self.phase = None, Phase.GREETED
        self.close(4000, "logged in elsewhere")

    def describe(self) -> str:
        if self.program is not None:
            return f"program {self.program.name}"
        return self.player.name if self.player else str(self.ws.remote_address)

    # --- input -----------------------------------------------------------------------------------------------

    async def serve(self) -> None:
        inbox = FrameInbox(self.on_data, self.ws.transport, lambda: self.close(1011, "internal error"))
        if isinstance(self.ws, LeanServerConnection):
            self.ws.sink = inbox.put  # whole frames, as they are parsed (server/net/wire.py)
        try:
            async for data in self.ws:  # fragmented messages, and every frame on a plain websockets connection
                inbox.put(data)
        except ConnectionClosed:  # the client vanished without a close frame: an everyday event for a server
            pass
        finally:
            await inbox.finish()  # a login still being checked must not attach to a closed connection
            self.disconnected()

    def on_data(self, data: bytes | str) -> Coroutine[Any, Any, None] | None:
        # Closing: keep reading and discard, so the client's close frame is seen and the close is clean.
        return None if self.closing else self.on_frame(data)

    def on_frame(self, data: bytes | str) -> Coroutine[Any, Any, None] | None:
        self.metrics.messages_in += 1
        if not self.limit.allow(time.monotonic()):
            self.metrics.errors[Code.RATE_LIMITED] += 1
            if self.limit.strikes > self.config.flood_strikes:
                log.info("closing %s: flood", self.describe())
                self.close(1008, "flood: too many requests")
            else:  # dropped, but answered with its Ref, so the client knows which request to send again
                self.send(error(Code.RATE_LIMITED, f"slow down: at most {self.config.rate:g} requests per second",
                                protocol.ref_of(data)))
            return None
        try:
            msg = protocol.decode(data)
            route = decide(self.phase, msg, self.player.name if self.player else self.program and self.program.name)
            if route.to == "room":
                if msg["Action"] in CITIZENS_ONLY and not self.citizen:
                    return self._handle_reporting(self.citizen_to_room, msg)
                self.to_room(msg)
                return None
        except ProtocolError as exc:
            self.metrics.errors[exc.code] += 1
            self.send(exc.frame())
            return None
        return self._handle_reporting(self.handlers[route.to], msg)

    async def _handle_reporting(self, handler: Callable[[Message], Coroutine], msg: Message) -> None:
        try:
            await handler(msg)
            if not self.closing:  # a login handed off to another process leaves nothing to play here
                self.phase = after(self.phase, msg["Action"])
        except ProtocolError as exc:
            self.metrics.errors[exc.code] += 1
            self.send(exc.frame())
        except Refused as no:
            self.metrics.errors[no.code] += 1
            self.send(error(no.code, no.message, msg.get("Id")))
        except (asyncio.TimeoutError, LookupError, MailboxFull):
            log.exception("%s: %s failed", self.describe(), msg["Action"])
            self.metrics.errors[Code.INTERNAL] += 1
            self.send(error(Code.INTERNAL, "the server could not complete this request; try again", msg.get("Id")))

    def stamped(self, msg: Message, **extra: Any) -> Message:
        """The request rebuilt from its schema: the sender cannot smuggle in Player, T or anything else."""
        assert self.player is not None
        out = {k: msg[k] for k in protocol.ACTIONS[msg["Action"]] if k in msg}
        out["Action"] = msg["Action"]
        out["Player"] = self.player.name
        out["T"] = now_ms()
        if extra:
            out.update(extra)
        ref = msg.get("Id")
        if ref is not None:
            out["Id"] = ref
        return out

    async def require_citizen(self, msg: Message) -> None:
        """Petitions and orders are for citizens (docs/protocol.md, Citizenship); asked once, then remembered."""
        assert self.player is not None
        if not self.citizen:
            known = await auth.citizenship(self.host, self.player.name)
            self.citizen = bool(known["Citizen"])
            if not self.citizen:
                raise Refused(Code.NOT_A_CITIZEN, known["How"])

    async def citizen_to_room(self, msg: Message) -> None:
        await self.require_citizen(msg)
        self.to_room(msg)

    async def on_citizen(self, msg: Message) -> None:
        """Citizenship: where the player stands; BecomeCitizen: redeem an invite code or apply."""
        assert self.player is not None
        if msg["Action"] == "Citizenship":
            known = await auth.citizenship(self.host, self.player.name)
        else:
            known = await self.host.bus.call("accounts", {"Action": "BecomeCitizen", "Player": self.player.name,
                                                          "Invite": msg.get("Invite"), "T": now_ms()})
            if known["Action"] == "Error":
                raise Refused(known["Code"], known["Message"])
        self.citizen = bool(known["Citizen"]) or self.citizen
        self.send(response(msg, **{k: known[k] for k in ("Mode", "Citizen", "Pending", "How") if k in known}))

    def to_room(self, msg: Message) -> None:
        assert self.player is not None
        routed = self.stamped(msg)
        if msg["Action"] == "Whisper":  # names are unique regardless of case: whisper to the one meant
            routed["To"] = self.presence.name_of(msg["To"])
        try:
            self.host.bus.send(self.player.room, routed)
        except MailboxFull:
            raise ProtocolError(Code.BUSY, "the room is busy; try again in a moment", msg.get("Id")) from None

    def address(self) -> str:
        """The client's address (behind a trusted reverse proxy, the one it forwarded for)."""
        if self._address is None:
            peer = str((self.ws.remote_address or ("",))[0])
            request = getattr(self.ws, "request", None)
            forwarded = request.headers.get("X-Forwarded-For") if request is not None else None
            self._address = client_address(peer, forwarded, self.config.trusted_proxies)
        return self._address

    def context(self) -> RequestContext:
        host = self.address()
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        return RequestContext(self.host.bus, self.player.name if self.player else None, now_ms(), loopback,
                              self.host.admin_key, self.host.service_accounts, self.host.world, self.host.npc_names)

    # --- the routes' handlers --------------------------------------------------------------------------------

    async def on_hello(self, msg: Message) -> None:
        if msg["Version"] != protocol.VERSION:
            raise ProtocolError(Code.VERSION_MISMATCH, f"this server speaks protocol {protocol.VERSION}, not "
                                                       f"{msg['Version']}", msg.get("Id"), Supported=[protocol.VERSION])
        self.send(response(msg, Version=protocol.VERSION, Server=protocol.SERVER_NAME, World=self.host.world.name,
                           MaxFrame=protocol.MAX_FRAME, Rate=self.config.rate, Grace=self.config.grace_s))

    async def on_ping(self, msg: Message) -> None:
        self.send(response(msg, T=now_ms()))

    async def on_wallet(self, msg: Message) -> None:
        self.send(await wallet.handle(self.context(), msg))

    async def on_admin(self, msg: Message) -> None:
        self.send(await admin.handle(self.context(), msg))

    async def on_npc(self, msg: Message) -> None:
        """A request an NPC answers from anywhere in the world (Quote, OracleInfo): straight to that NPC."""
        npc = self.host.npc_serving(msg["Action"], msg.get("Service"))
        if npc is None or npc.address is None:
            raise ProtocolError(Code.NO_NPC_HERE, f"nobody in this world answers {msg['Action']}"
                                + (f" for {msg['Service']}" if msg.get("Service") else ""), msg.get("Id"))
        try:
            sent = self.host.bus.send(npc.address, self.stamped(msg, Npc=npc.spec.id))
        except MailboxFull:
            raise ProtocolError(Code.BUSY, f"{npc.spec.name} is busy; try again in a moment", msg.get("Id")) from None
        if not sent:
            raise ProtocolError(Code.UNAVAILABLE, f"{npc.spec.name} is not here right now", msg.get("Id"))

    async def on_market(self, msg: Message) -> None:
        """To the market (on the bank), which answers the player directly, like an NPC."""
        if msg["Action"] in CITIZENS_ONLY:
            await self.require_citizen(msg)
        if self.player is None:  # public data for a visitor or an NPC program: asked and answered here
            ask = {k: msg[k] for k in protocol.ACTIONS[msg["Action"]] if k in msg}
            got = await self.call_service("market", {**ask, "Action": msg["Action"], "T": now_ms()}, msg,
                                          "this world has no market")
            if got["Action"] == "Error":
                raise Refused(got["Code"], got["Message"])
            self.send(response(msg, **{k: v for k, v in got.items() if k not in ("Action", "ReplyTo")}))
            return
        try:
            sent = self.host.bus.may_reach("market") and self.host.bus.send("market", self.stamped(msg))
        except MailboxFull:
            raise ProtocolError(Code.BUSY, "the market is busy; try again in a moment", msg.get("Id")) from None
        if not sent:
            raise ProtocolError(Code.UNAVAILABLE, "this world has no market", msg.get("Id"))

    async def on_fed(self, msg: Message) -> None:
        ask = {"Action": "Info" if msg["Action"] == "FedInfo" else "Petitions", "T": now_ms(),
               "Player": self.player.name if self.player else None, "Epoch": msg.get("Epoch")}
        reply = await self.call_service("fed", ask, msg, "this world has no Llama Fed")
        self.send(response(msg, **{k: v for k, v in reply.items() if k != "Action"}))

    async def on_herd(self, msg: Message) -> None:
        info = await self.call_service("herd", {"Action": "Info", "T": now_ms()}, msg,
                                       "this world runs without inference")
        self.send(response(msg, **{k: v for k, v in info.items() if k not in ("Action", "ReplyTo")}))

    async def call_service(self, address: str, ask: Message, msg: Message, missing: str) -> Message:
        """Ask a world service, here or (with NATS) in the process that runs it; nobody there is UNAVAILABLE."""
        if not self.host.bus.may_reach(address):
            raise ProtocolError(Code.UNAVAILABLE, missing, msg.get("Id"))
        try:
            return await self.host.bus.call(address, ask)
        except LookupError:
            raise ProtocolError(Code.UNAVAILABLE, missing, msg.get("Id")) from None

    async def on_auth(self, msg: Message) -> None:
        action, place = msg["Action"], None
        if action == "Register":
            name, self.citizen = await auth.register(self.host, msg, self.config.scrypt_n, self.address())
        elif action == "Login":
            name, self.citizen = await auth.login(self.host, msg)
        else:
            name, place = await auth.resume(self.host, msg)
            self.citizen = bool((await auth.citizenship(self.host, name))["Citizen"])
        room, fields = await self.presence.placement(name, place)
        if room not in self.host.rooms_here:  # served by another process: go there (docs/protocol.md, Moved)
            where = await self.host.hand_off(name, room, fields)
            token = await auth.open_session(self.host, name)
            self.send(response(msg, Name=name, Token=token, Grace=self.config.grace_s))
            await self.grant_allowance(name)
            self.moved(where)
            return
        token = await auth.open_session(self.host, name)
        self.player = await self.presence.enter(self, name, "handoff" if place else action.lower(), token, room,
                                                fields)
        self.send(response(msg, Name=name, Token=token, Grace=self.config.grace_s))
        await self.grant_allowance(name)

    async def grant_allowance(self, name: str) -> None:
        allowance = self.host.world.starting_war
        if allowance > 0 and self.citizen:  # asked again at every login: the ledger grants it once, even if a crash came between
            try:
                await self.host.bus.call("token:wAR", {"Action": "Allowance", "To": name, "Amount": allowance,
                                                       "T": now_ms()})
            except (MailboxFull, asyncio.TimeoutError, LookupError):  # the login stands; the next one grants it
                log.warning("starting allowance for %s deferred: the ledger is busy", name)

    def moved(self, where: Message) -> None:
        """The player's room is served by another process: tell the client where, then close this connection."""
        self.player, self.phase = None, Phase.GREETED
        self.send({"Action": "Moved", **where})
        self.close(4001, "moved to another server of this world")

    async def on_logout(self, msg: Message) -> None:
        assert self.player is not None
        self.presence.leave(self.player, "logout")
        self.player = None
        self.send(response(msg))

    def disconnected(self) -> None:
        if self.player is not None and self.player.conn is self:
            self.presence.detach(self.player)
        self.player = None
        if self.program is not None:  # its open requests are refunded, it leaves its room
            self.spawn(self.host.programs.detach(self.program))
            self.program = None

    # --- an NPC program's connection (docs/npcs-sdk.md) ------------------------------------------------------

    async def on_program_login(self, msg: Message) -> None:
        if self.host.programs is None:
            raise Refused(Code.UNAVAILABLE, "this server does not take NPC programs")
        found = await self.host.bus.call("accounts", {"Action": "NpcKeyLogin", "Name": msg["Name"],
                                                      "Key": msg["Key"], "T": now_ms()})
        if found["Action"] == "Error":
            raise Refused(found["Code"], found["Message"])
        if found["Room"] not in self.host.rooms_here:  # the NPC stands in a room served elsewhere: say where
            url = await self.host.room_url(found["Room"])
            raise ProtocolError(Code.UNAVAILABLE, f"{found['Room']} is served by another process of this world: "
                                                  f"connect to {url}", msg.get("Id"), Url=url, Room=found["Room"])
        registration = {k: v for k, v in found.items() if k not in ("Action", "ReplyTo")}
        self.program = await self.host.programs.attach(self, registration)
        limits = self.host.programs.limits
        self.limit = RateLimit(limits.rate, limits.burst, time.monotonic())  # one answer per player's request
        self.send(response(msg, **registration, TimeoutMs=int(limits.answer_timeout_s * 1000),
                           MaxPending=limits.max_pending, Rate=limits.rate))

    async def on_program(self, msg: Message) -> None:
        """The program's own requests, to its actor (which answers them), stamped with the receive time only:
        it acts as its NPC and nobody else."""
        out = {k: msg[k] for k in protocol.ACTIONS[msg["Action"]] if k in msg}
        out.update(Action=msg["Action"], T=now_ms(), Id=msg.get("Id"))
        try:
            self.program.deliver(out)
        except MailboxFull:
            raise ProtocolError(Code.BUSY, "too much at once; try again in a moment", msg.get("Id")) from None
