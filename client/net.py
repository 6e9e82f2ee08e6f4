"""A small asyncio client for the Llama Land protocol, used by the tests, the bots and the Arcade client.

    client = await GameClient.connect("ws://127.0.0.1:8765/")
    await client.register("alice", "secret-pw")
    await client.chat("hello")
    line = await client.wait_for(lambda ev: ev["Action"] == "ChatLine")

A world spread over several processes sends a player to the one that serves their room (`Moved`, at login or
through a portal): the client connects there and resumes with the ticket by itself; requests sent meanwhile wait
for the new connection, and `closed` is set only when a connection ends for good.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from typing import Any, Callable

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from server.core import protocol

from client.world_view import WorldView

Event = dict[str, Any]


class ServerError(Exception):
    def __init__(self, frame: Event):
        super().__init__(f"{frame.get('Code')}: {frame.get('Message')}")
        self.code = frame.get("Code")
        self.frame = frame


class GameClient:
    def __init__(self, ws: ClientConnection, keep_events: int = 2000, version: int = protocol.VERSION):
        self.ws = ws
        self.version = version
        self.moves = 0  # hand-offs followed
        self.moving: asyncio.Task | None = None
        self._ready = asyncio.Event()  # cleared while a hand-off is being followed
        self._ready.set()
        self.view = WorldView()
        self.events: deque[Event] = deque(maxlen=keep_events)
        self.errors: deque[Event] = deque(maxlen=200)  # errors that answered no pending request
        self.name: str | None = None
        self.token: str | None = None
        self.hello: Event = {}
        self.url: str | None = None
        self._ids = itertools.count(1)
        self._pending: dict[str, asyncio.Future[Event]] = {}
        self._waiters: list[tuple[Callable[[Event], bool], asyncio.Future[Event]]] = []
        self.listeners: list[Callable[[Event], None]] = []  # called with every pushed event, as it arrives
        self._reader = asyncio.get_running_loop().create_task(self._read(ws))
        self.closed = asyncio.get_running_loop().create_future()

    @classmethod
    async def connect(cls, url: str, version: int = protocol.VERSION, **kwargs: Any) -> "GameClient":
        ws = await connect(url, max_size=2**22, compression=None, open_timeout=10, **kwargs)
        client = cls(ws, version=version)
        client.url = url
        client.hello = await client.request("Hello", Version=version)
        return client

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for data in ws:
                self._on_frame(protocol.unpack(data))
        except ConnectionClosed:
            pass
        finally:
            # Sent elsewhere (a hand-off being followed, or followed already): what waits, waits for the new one.
            if ws is self.ws and (self.moving is None or self.moving.done()):
                self._fail_all()

    def _fail_all(self) -> None:
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(ConnectionError("connection closed"))
        for _, fut in self._waiters:
            if not fut.done():
                fut.set_exception(ConnectionError("connection closed"))
        if not self.closed.done():
            self.closed.set_result(self.ws.close_code)

    def _on_frame(self, ev: Event) -> None:
        if ev.get("Action") == "Moved":
            self._ready.clear()
            self.moving = asyncio.get_running_loop().create_task(self._follow(ev))
        ref = ev.get("Ref")
        if ref is not None and ref in self._pending:
            fut = self._pending.pop(ref)
            if not fut.done():
                if ev["Action"] == "Error":
                    fut.set_exception(ServerError(ev))
                else:
                    fut.set_result(ev)
            return
        if ev.get("Action") == "Error":
            self.errors.append(ev)
        self.view.apply(ev)
        self.events.append(ev)
        for listener in self.listeners:
            listener(ev)
        keep = []
        for pred, fut in self._waiters:
            if fut.done():
                continue
            if pred(ev):
                fut.set_result(ev)
            else:
                keep.append((pred, fut))
        self._waiters = keep

    async def _follow(self, moved: Event) -> None:
        """Connect where the server sent us, greet it, and resume there with the one-use ticket."""
        try:
            ws = await connect(moved["Url"], max_size=2**22, compression=None, open_timeout=10)
            self.ws, self.url = ws, moved["Url"]
            self._reader = asyncio.get_running_loop().create_task(self._read(ws))
            self.hello = await self._request("Hello", 10.0, {"Version": self.version})
            resumed = await self._request("Resume", 10.0, {"Ticket": moved["Ticket"]})
            self.name, self.token = resumed["Name"], resumed["Token"]
            self.moves += 1
        except (OSError, asyncio.TimeoutError, ConnectionError, ConnectionClosed, ServerError):
            self.moving = None
            await self.ws.close()
            self._fail_all()
        finally:
            self._ready.set()

    async def send(self, action: str, **fields: Any) -> None:
        await self._ready.wait()
        await self.ws.send(protocol.encode({"Action": action, **fields}))

    async def request(self, action: str, timeout: float = 10.0, **fields: Any) -> Event:
        await asyncio.wait_for(self._ready.wait(), timeout)
        return await self._request(action, timeout, fields)

    async def _request(self, action: str, timeout: float, fields: dict[str, Any]) -> Event:
        ref = f"r{next(self._ids)}"
        fut = asyncio.get_running_loop().create_future()
        self._pending[ref] = fut
        try:
            try:
                await self.ws.send(protocol.encode({"Action": action, "Id": ref, **fields}))
            except ConnectionClosed as closed:  # one error for a lost connection, whether found sending or waiting
                raise ConnectionError("connection closed") from closed
            return await asyncio.wait_for(fut, timeout)
        finally:
            self._pending.pop(ref, None)

    async def wait_for(self, pred: Callable[[Event], bool], timeout: float = 5.0, past: bool = False) -> Event:
        """The next event matching pred (or, with past=True, one already received)."""
        if past:
            for ev in self.events:
                if pred(ev):
                    return ev
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append((pred, fut))
        return await asyncio.wait_for(fut, timeout)

    async def _enter(self, action: str, **fields: Any) -> Event:
        joined = asyncio.ensure_future(self.wait_for(lambda ev: ev["Action"] == "RoomJoined", timeout=10))
        try:
            resp = await self.request(action, **fields)
        except BaseException:
            joined.cancel()
            raise
        self.name, self.token = resp["Name"], resp["Token"]
        await joined
        return resp

    async def register(self, name: str, password: str, invite: str | None = None) -> Event:
        """A new account; with an invite code, a citizen at once in a world whose citizens are invited."""
        return await self._enter("Register", Name=name, Password=password, **({"Invite": invite} if invite else {}))

    async def login(self, name: str, password: str) -> Event:
        return await self._enter("Login", Name=name, Password=password)

    async def resume(self, token: str) -> Event:
        return await self._enter("Resume", Token=token)

    async def settled(self, timeout: float = 15.0) -> None:
        """Wait until a hand-off being followed (if any) is done."""
        await asyncio.wait_for(self._ready.wait(), timeout)

    async def move(self, direction: str | None = None, x: int | None = None, y: int | None = None,
                   confirm: bool = True) -> Event | None:
        fields: dict[str, Any] = {"Dir": direction} if direction else {"X": x, "Y": y}
        if confirm:
            return await self.request("Move", **fields)
        await self.send("Move", **fields)
        return None

    async def chat(self, text: str, scope: str = "room") -> Event:
        return await self.request("Chat", Text=text, Scope=scope)

    async def whisper(self, to: str, text: str) -> Event:
        return await self.request("Whisper", To=to, Text=text)

    async def close(self) -> None:
        if self.moving is not None and not self.moving.done():
            self.moving.cancel()
        self.moving = None
        await self.ws.close()
        self._reader.cancel()
