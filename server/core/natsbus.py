"""The bus between processes: the in-process bus first, NATS for every actor that lives elsewhere.

An actor id maps to one subject (`subject_for`): `player:alice` is `<namespace>.player.alice`. Each process
subscribes to the subjects of the actors it registers, so a message to a local actor never leaves the process,
and one to an actor anywhere else is published to its subject. `call` to a remote actor is NATS request/reply:
nobody subscribed is `LookupError` at once (NATS's no-responders), a silent one is `TimeoutError` after the
timeout — never a hang. A message that names a local `ReplyTo` leaves with a reply address of this process, so
the remote actor answers the way it answers a local one.

Outbound messages go through one bounded queue drained in order by one task: `send` stays synchronous like the
local bus (and raises MailboxFull when the queue is full), and a connection that is reconnecting buffers rather
than reorders. nats-py reconnects on its own and re-subscribes; `connected` says whether it is up now.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from typing import Any, Iterable

import msgpack
import nats
import nats.errors
from nats.aio.msg import Msg

from server.core.actors import Actor, Edge, LocalBus, MailboxFull, Message

log = logging.getLogger("llama_land.natsbus")

RAW = {"LL-Raw": "1"}  # header of a message that carries an encoded wire frame for an edge, not a map
NATS_REPLY = "nats:"  # a ReplyTo that is a NATS subject (a remote caller's inbox)
_UNSAFE = re.compile(r"[^A-Za-z0-9_\-]")


def escape_token(text: str, mark: str = "%") -> str:
    """One NATS name token from any text: each byte of a character outside [A-Za-z0-9_-] as mark + two hex digits
    (subjects take %, key-value keys only =)."""
    return _UNSAFE.sub(lambda m: "".join(f"{mark}{b:02X}" for b in m.group().encode()), text)


def subject_for(namespace: str, actor_id: str) -> str:
    """`player:alice` -> `<namespace>.player.alice`; characters NATS reserves are %-escaped in each token. A
    player's name is lower-cased (names are unique regardless of case), so `player:BOB` reaches Bob's edge."""
    if actor_id.startswith("player:"):
        actor_id = actor_id.lower()
    return ".".join([namespace, *(escape_token(t) or "%" for t in actor_id.split(":"))])


def pack(msg: Message) -> bytes:
    return msgpack.packb(msg, use_bin_type=True)


def unpack(data: bytes) -> Message:
    return msgpack.unpackb(data, raw=False)


class NatsBus(LocalBus):
    def __init__(self, url: str, namespace: str = "llama-land", outbox: int = 65536, name: str = "llama-land"):
        super().__init__()
        self.url, self.namespace, self.name = url, namespace, name
        self.shown = re.sub(r"//([^:/@]+):[^@/]*@", r"//\1:***@", url)  # the URL for logs: never its password
        self.nc: Any = None
        self.process = uuid.uuid4().hex[:12]  # this process's own reply addresses: <namespace>._reply.<process>.*
        self._replies = f"{namespace}._reply.{self.process}"
        self._outbox: asyncio.Queue[tuple[str, Any, Any]] = asyncio.Queue(outbox)
        self._subs: dict[str, Any] = {}
        self._pump: asyncio.Task | None = None
        self.published = self.received = 0
        self.closing = False

    @property
    def connected(self) -> bool:
        return self.nc is not None and self.nc.is_connected

    async def connect(self, timeout: float = 5.0) -> None:
        """Connect (a clear error if nobody answers at url), then keep reconnecting for as long as it takes."""
        async def disconnected() -> None:
            if not self.closing:
                log.warning("NATS %s: disconnected; reconnecting", self.shown)

        async def reconnected() -> None:
            log.warning("NATS %s: reconnected", self.shown)

        async def error(exc: Exception) -> None:
            log.debug("NATS %s: %s", self.shown, exc)

        try:
            self.nc = await asyncio.wait_for(nats.connect(
                self.url, name=self.name, connect_timeout=2, reconnect_time_wait=0.5, max_reconnect_attempts=-1,
                allow_reconnect=True, disconnected_cb=disconnected, reconnected_cb=reconnected, error_cb=error),
                timeout)
        except (OSError, asyncio.TimeoutError, nats.errors.Error) as exc:
            raise ConnectionError(f"cannot reach NATS at {self.shown}: {str(exc) or type(exc).__name__}") from None
        self._subs[self._replies] = await self.nc.subscribe(self._replies + ".*", cb=self._on_reply_address)
        self._pump = asyncio.get_running_loop().create_task(self._drain(), name="nats-outbox")
        for actor_id in list(self._actors):
            self._subscribe(actor_id)

    async def close(self) -> None:
        self.closing = True
        if self._pump is not None:
            while not self._outbox.empty() and self.connected:
                await asyncio.sleep(0.005)
            self._pump.cancel()
            await asyncio.gather(self._pump, return_exceptions=True)
        if self.nc is not None:
            try:
                await asyncio.wait_for(self.nc.drain(), 5)
            except Exception:  # closing anyway
                await self.nc.close()
        self.nc = None

    # --- registration: a local actor is also reachable at its subject ------------------------------------------

    def register(self, actor: Actor | Edge) -> None:
        super().register(actor)
        if self.nc is not None:
            self._subscribe(actor.id)

    def unregister(self, actor_id: str) -> None:
        super().unregister(actor_id)
        if actor_id in self._subs:
            self._queue(("unsub", actor_id, None))

    def _subscribe(self, actor_id: str) -> None:
        if not actor_id.startswith("reply:"):  # a local call's reply edge: answered through the reply address
            self._queue(("sub", actor_id, None))

    # --- sending ---------------------------------------------------------------------------------------------

    def send(self, to: str, msg: Message) -> bool:
        if to.startswith(NATS_REPLY):
            self._queue(("pub", to[len(NATS_REPLY):], pack(msg)))
            return True
        if super().send(to, msg):
            return True
        if self.nc is None:
            return False
        if msg.get("ReplyTo") and self.lookup(msg["ReplyTo"]) is not None:
            msg = {**msg, "ReplyTo": f"{NATS_REPLY}{self._replies}.{msg['ReplyTo'].replace('.', '%2E')}"}
        self._queue(("pub", subject_for(self.namespace, to), pack(msg)))
        return True  # published: whether anyone is subscribed is known only to a call

    def may_reach(self, actor_id: str) -> bool:
        """Here, or possibly in another process (a player connected to another server of the world)."""
        return self.lookup(actor_id) is not None or self.nc is not None

    def send_raw(self, to: str, frame: bytes) -> bool:
        if super().send_raw(to, frame):
            return True
        if self.nc is None:
            return False
        self._queue(("raw", subject_for(self.namespace, to), frame))
        return True

    def multicast_raw(self, to: Iterable[str], frame: bytes) -> None:
        ids = list(to)
        super().multicast_raw(ids, frame)  # the local edges, the frame prepared once
        if self.nc is not None:
            for actor_id in ids:
                if actor_id not in self._actors:
                    self._queue(("raw", subject_for(self.namespace, actor_id), frame))

    async def call(self, to: str, msg: Message, timeout: float = 10.0) -> Message:
        if self.lookup(to) is not None or self.nc is None:
            return await super().call(to, msg, timeout)
        try:
            answer = await self.nc.request(subject_for(self.namespace, to), pack(msg), timeout=timeout)
        except nats.errors.NoRespondersError:
            raise LookupError(f"no actor {to!r} on {self.shown}") from None
        except (nats.errors.TimeoutError, asyncio.TimeoutError):
            raise TimeoutError(f"{to!r} did not answer within {timeout:g}s") from None
        except nats.errors.Error as exc:  # closed or reconnecting past its buffer: as good as unanswered
            raise TimeoutError(f"{to!r}: {exc}") from None
        return unpack(answer.data)

    def _queue(self, op: tuple[str, Any, Any]) -> None:
        try:
            self._outbox.put_nowait(op)
        except asyncio.QueueFull:
            raise MailboxFull("nats-outbox") from None

    async def _drain(self) -> None:
        while True:
            kind, target, data = await self._outbox.get()
            try:
                if kind == "pub":
                    await self.nc.publish(target, data)
                    self.published += 1
                elif kind == "raw":
                    await self.nc.publish(target, data, headers=RAW)
                    self.published += 1
                elif kind == "sub" and target in self._actors and target not in self._subs:
                    self._subs[target] = await self.nc.subscribe(subject_for(self.namespace, target),
                                                                 cb=self._delivery_to(target))
                elif kind == "unsub" and target not in self._actors and target in self._subs:
                    await self._subs.pop(target).unsubscribe()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a message NATS would not take: lost like one to a vanished actor
                log.warning("NATS %s %s: %s", kind, target, exc)

    # --- receiving -------------------------------------------------------------------------------------------

    def _delivery_to(self, actor_id: str):
        async def deliver(m: Msg) -> None:
            self.received += 1
            target = self._actors.get(actor_id)
            if target is None:
                return
            if m.headers and m.headers.get("LL-Raw"):
                if isinstance(target, Edge):
                    target.deliver_raw(m.data)
                return
            msg = unpack(m.data)
            if m.reply:  # a remote call: its answer goes to the caller's inbox
                msg["ReplyTo"] = NATS_REPLY + m.reply
            try:
                target.deliver(msg)
            except MailboxFull:
                log.warning("%s: mailbox full; a message from NATS was dropped", actor_id)
        return deliver

    async def _on_reply_address(self, m: Msg) -> None:
        """An answer to a message this process sent with a local ReplyTo."""
        local = m.subject[len(self._replies) + 1:].replace("%2E", ".")
        target = self._actors.get(local)
        if target is not None:
            target.deliver(unpack(m.data))

