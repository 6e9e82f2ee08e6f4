"""The actor runtime: an id, a bounded mailbox, a handler table, and a bus that delivers by id.

In the aos style an actor is a table of (name, match, handler) over tagged messages: the first handler whose
match accepts a message gets it. Messages are plain msgpack-able maps with an "Action" tag, so a bus backed by
NATS can carry them between processes later without the actors changing.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterable

log = logging.getLogger("llama_land.actors")

Message = dict[str, Any]
Match = Callable[[Message], bool]
HandlerFn = Callable[[Message], Awaitable[None] | None]


class action:
    """The common match: the message's Action tag equals name. Actors index these, so dispatch is one lookup."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __call__(self, msg: Message) -> bool:
        return msg.get("Action") == self.name


@dataclass(frozen=True)
class Handler:
    name: str
    match: Match
    fn: HandlerFn


class MailboxFull(Exception):
    pass


def player_id(name: str) -> str:
    """A player's address on the bus: their connection (or the avatar waiting for it to come back)."""
    return f"player:{name}"


class Actor:
    """A process with a bounded mailbox that handles one message at a time, in arrival order.

    Answers go through three helpers, so every answer to a request with an Id carries its Ref:
    `reply` answers a call from another actor (to its ReplyTo), `answer` a player's request (`<Action>-Response`
    to the player, with the request's Id as Ref), and `refuse` either with an Error."""

    mailbox_size = 4096
    bus: "Bus"

    def __init__(self, actor_id: str):
        self.id = actor_id
        self.mailbox: asyncio.Queue[Message] = asyncio.Queue(self.mailbox_size)
        self.handlers: list[Handler] = []
        self._by_action: dict[str, HandlerFn] = {}
        self._inline: dict[str, HandlerFn] = {}
        self._indexable = True
        self._task: asyncio.Task | None = None
        self.handled = 0
        self.busy = False

    async def open(self, t: int) -> None:
        """Before the world opens (and when a reload starts a new actor): finish what a crash interrupted."""

    def reply(self, msg: Message, action: str, **fields: Any) -> None:
        self.bus.send(msg["ReplyTo"], {"Action": action, **fields})

    def answer(self, msg: Message, **fields: Any) -> None:
        self.bus.send(player_id(msg["Player"]), {"Action": f"{msg['Action']}-Response", "Ref": msg.get("Id"), **fields})

    def refuse(self, msg: Message, code: str, message: str, **extra: Any) -> None:
        """An Error for the asker: the calling actor (ReplyTo), or else the player, with the request's Ref."""
        if msg.get("ReplyTo"):
            self.bus.send(msg["ReplyTo"], {"Action": "Error", "Code": code, "Message": message, **extra})
            return
        frame = {"Action": "Error", "Code": code, "Message": message, **extra}
        if msg.get("Id") is not None:
            frame["Ref"] = msg["Id"]
        self.bus.send(player_id(msg["Player"]), frame)

    def handle(self, name: str, match: Match, fn: HandlerFn, inline: bool = False) -> None:
        """inline: fn is synchronous and quick, so a message for it that finds the actor idle (nothing queued,
        nothing being handled) is handled at once, in the sender's call, instead of waking the actor's task —
        the same order, one task switch fewer (a room's moves and ticks)."""
        self.handlers.append(Handler(name, match, fn))
        # Index plain Action matches that no earlier, more general match could shadow: first match still wins.
        if isinstance(match, action) and self._indexable:
            self._by_action.setdefault(match.name, fn)
            if inline:
                self._inline.setdefault(match.name, fn)
        else:
            self._indexable = False

    def deliver(self, msg: Message) -> None:
        fn = self._inline.get(msg.get("Action")) if self._inline else None  # type: ignore[arg-type]
        if fn is not None and not self.busy and not self.mailbox.qsize() and self._task is not None:
            self.busy = True
            self.handled += 1
            try:
                fn(msg)
            except Exception:
                log.exception("%s: handler failed on %s", self.id, msg.get("Action"))
                self.on_handler_error(msg)
            finally:
                self.busy = False
            return
        try:
            self.mailbox.put_nowait(msg)
        except asyncio.QueueFull:
            raise MailboxFull(self.id) from None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=self.id)

    async def stop(self, drain_s: float = 2.0) -> None:
        """Finish what is queued (up to drain_s), then stop: a half-handled message would lose its effects."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + drain_s
        while (self.busy or not self.mailbox.empty()) and loop.time() < deadline:
            await asyncio.sleep(0.005)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _run(self) -> None:
        while True:
            msg = await self.mailbox.get()
            self.busy = True
            try:
                await self.dispatch(msg)
            except asyncio.CancelledError:
                raise
            except Exception:
                # One bad message must not kill the actor: log it and go on with the next.
                log.exception("%s: handler failed on %s", self.id, msg.get("Action"))
                self.on_handler_error(msg)
            finally:
                self.busy = False

    async def dispatch(self, msg: Message) -> None:
        self.handled += 1
        fn = self._by_action.get(msg.get("Action"))  # type: ignore[arg-type]
        if fn is None:
            fn = next((h.fn for h in self.handlers if h.match(msg)), None)
        if fn is None:
            self.on_unhandled(msg)
            return
        result = fn(msg)
        if result is not None:
            await result

    def on_unhandled(self, msg: Message) -> None:
        log.warning("%s: no handler for %s", self.id, msg.get("Action"))

    def on_handler_error(self, msg: Message) -> None:
        pass


class Edge(ABC):
    """An addressable endpoint that is not a mailbox actor, such as a player's websocket."""

    id: str

    @abstractmethod
    def deliver(self, msg: Message) -> None: ...

    @abstractmethod
    def deliver_raw(self, frame: bytes) -> None: ...

    @classmethod
    def prepare(cls, frame: bytes) -> Any:
        """Turn an encoded frame into what deliver_prepared writes; done once per multicast, not per edge."""
        return frame

    def deliver_prepared(self, prepared: Any) -> None:
        self.deliver_raw(prepared)


class Bus(ABC):
    """Delivers messages by actor id. The in-process bus is the default; a NATS bus implements the same calls."""

    @abstractmethod
    def register(self, actor: Actor | Edge) -> None: ...

    @abstractmethod
    def unregister(self, actor_id: str) -> None: ...

    @abstractmethod
    def send(self, to: str, msg: Message) -> bool:
        """Deliver msg to actor `to`. False if there is no such actor. Raises MailboxFull on backpressure."""

    @abstractmethod
    def send_raw(self, to: str, frame: bytes) -> bool:
        """Deliver an already encoded wire frame to an edge (a player's connection)."""

    @abstractmethod
    def multicast_raw(self, to: Iterable[str], frame: bytes) -> None:
        """Deliver one encoded frame to many edges (a tick to everyone in an interest cell)."""

    @abstractmethod
    def lookup(self, actor_id: str) -> Actor | Edge | None: ...

    def may_reach(self, actor_id: str) -> bool:
        """Whether a message to actor_id might be delivered: here, it is registered in this process."""
        return self.lookup(actor_id) is not None

    async def call(self, to: str, msg: Message, timeout: float = 10.0) -> Message:
        """Ask: send msg with a ReplyTo address and wait for the one reply sent there."""
        reply = _ReplyEdge(f"reply:{next(_reply_ids)}")
        self.register(reply)
        try:
            if not self.send(to, {**msg, "ReplyTo": reply.id}):
                raise LookupError(f"no actor {to!r}")
            return await asyncio.wait_for(reply.future, timeout)
        finally:
            self.unregister(reply.id)


_reply_ids = itertools.count(1)


class _ReplyEdge(Edge):
    def __init__(self, reply_id: str):
        self.id = reply_id
        self.future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()

    def deliver(self, msg: Message) -> None:
        if not self.future.done():
            self.future.set_result(msg)

    def deliver_raw(self, frame: bytes) -> None:  # replies are maps, never raw frames
        raise TypeError("a reply address takes messages, not frames")


class LocalBus(Bus):
    def __init__(self) -> None:
        self._actors: dict[str, Actor | Edge] = {}

    def register(self, actor: Actor | Edge) -> None:
        self._actors[actor.id] = actor

    def unregister(self, actor_id: str) -> None:
        self._actors.pop(actor_id, None)

    def send(self, to: str, msg: Message) -> bool:
        actor = self._actors.get(to)
        if actor is None:
            return False
        actor.deliver(msg)
        return True

    def send_raw(self, to: str, frame: bytes) -> bool:
        edge = self._actors.get(to)
        if not isinstance(edge, Edge):
            return False
        edge.deliver_raw(frame)
        return True

    def multicast_raw(self, to: Iterable[str], frame: bytes) -> None:
        prepared: dict[type, Any] = {}
        actors = self._actors
        for actor_id in to:
            edge = actors.get(actor_id)
            if isinstance(edge, Edge):
                kind = type(edge)
                ready = prepared.get(kind)
                if ready is None:
                    ready = prepared[kind] = kind.prepare(frame)
                edge.deliver_prepared(ready)

    def lookup(self, actor_id: str) -> Actor | Edge | None:
        return self._actors.get(actor_id)

    def actors(self) -> list[Actor]:
        return [a for a in self._actors.values() if isinstance(a, Actor)]
