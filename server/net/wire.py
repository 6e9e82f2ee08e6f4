"""The receive side of a player's websocket, lean: each whole data frame goes from websockets' sans-I/O parser
straight to the session, in the same call that read it from the socket.

websockets' asyncio connection queues every message (an assembler, a future per message, a task switch to the
reader) — most of a walking player's cost on the server, since a move is one small frame. `LeanServerConnection`
hands an unfragmented binary or text frame to its `sink` as `data_received` parses it; the session handles a game
message at once and chains the few that must wait (`FrameInbox`), so one connection's requests keep their order.
Everything else — the handshake, pings, close, and fragmented messages (after one, the connection stays on the
queued path, so order still holds) — is websockets' own.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any, Callable, Coroutine

from websockets.asyncio.server import ServerConnection
from websockets.frames import BINARY, TEXT, CloseCode, Frame

log = logging.getLogger("llama_land.session")

BACKLOG = 64  # frames held behind a waiting request before reading from this socket pauses


class LeanServerConnection(ServerConnection):
    sink: Callable[[bytes | str], None] | None = None

    def process_event(self, event: Any) -> None:
        sink = self.sink
        if sink is None or self.request is None or not isinstance(event, Frame):
            super().process_event(event)
            return
        if event.opcode in (BINARY, TEXT) and event.fin:
            if event.opcode is TEXT:
                try:
                    data: bytes | str = bytes(event.data).decode()
                except UnicodeDecodeError:
                    self.protocol.fail(CloseCode.INVALID_DATA, "invalid UTF-8 in a text frame")
                    self.send_data()
                    return
            else:
                data = bytes(event.data)
            try:
                sink(data)
            except Exception:  # a bug in the session: this connection ends, the server goes on
                log.exception("session failed on a frame")
                self.protocol.fail(CloseCode.INTERNAL_ERROR, "internal error")
                self.send_data()
            return
        if event.opcode in (BINARY, TEXT):  # a fragmented message: queued from now on, in order
            self.sink = None
        super().process_event(event)


class FrameInbox:
    """One connection's frames in order: `handle` returns None when a frame is done, or a coroutine to await
    before the next one may be handled; frames that arrive meanwhile wait here (and past BACKLOG, so does the
    socket)."""

    def __init__(self, handle: Callable[[bytes | str], Coroutine[Any, Any, None] | None], transport: Any,
                 failed: Callable[[], None]):
        self.handle, self.transport, self.failed = handle, transport, failed
        self.backlog: deque[bytes | str] = deque()
        self.running: asyncio.Task | None = None
        self.paused = False

    def put(self, data: bytes | str) -> None:
        if self.running is not None:
            self.backlog.append(data)
            if len(self.backlog) >= BACKLOG and not self.paused:
                self.paused = True
                self.transport.pause_reading()
            return
        waiting = self.handle(data)
        if waiting is not None:
            self.running = asyncio.get_running_loop().create_task(self._drain(waiting))

    async def _drain(self, waiting: Coroutine[Any, Any, None]) -> None:
        try:
            while True:
                try:
                    await waiting
                except Exception:  # a bug in a handler: this connection ends (as websockets would end it)
                    log.exception("session failed on a request")
                    self.backlog.clear()
                    self.failed()
                    return
                waiting = None
                while waiting is None and self.backlog:
                    waiting = self.handle(self.backlog.popleft())
                if waiting is None:
                    return
        finally:
            self.running = None
            if self.paused:
                self.paused = False
                self.transport.resume_reading()

    async def finish(self) -> None:
        """Wait for the request being handled (the connection closed behind it)."""
        if self.running is not None:
            await asyncio.gather(self.running, return_exceptions=True)
