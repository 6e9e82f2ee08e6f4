"""The receive side of a player's websocket, lean: each whole data frame goes from the socket straight to the
session, in the same call that read it.

websockets' asyncio connection runs every frame through its generator-based parser and queues every message (an
assembler, a future per message, a task switch to the reader) — most of a walking player's cost on the server,
since a move is one small frame. `LeanServerConnection` frames the byte stream itself once the connection is
open: a complete, masked, unfragmented binary frame within the size limit (every request a client sends) is
unmasked (websockets' C `apply_mask`) and handed to `sink` at once; every other frame — pings, pongs, close,
text, fragments, anything oversized or malformed — is passed to websockets whole, so its parser always starts
at a frame boundary and its rules (close handshake, 1009, 1002, UTF-8) apply unchanged. The session handles a
game message at once and chains the few that must wait (`FrameInbox`), so one connection's requests keep their
order. Until the session sets `sink` (and after a fragmented message, for good), frames take websockets' own
queued path, in order.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any, Callable, Coroutine

from websockets.asyncio.server import ServerConnection
from websockets.frames import BINARY, TEXT, CloseCode, Frame
from websockets.protocol import State

try:
    from websockets.speedups import apply_mask
except ImportError:  # websockets built without its C extension
    from websockets.utils import apply_mask

log = logging.getLogger("llama_land.session")

BACKLOG = 64  # frames held behind a waiting request before reading from this socket pauses


class LeanServerConnection(ServerConnection):
    sink: Callable[[bytes | str], None] | None = None
    _partial = b""  # the start of a frame whose end has not arrived
    _framing: bool | None = None  # None: not decided yet (the connection is not open)

    def data_received(self, data: bytes) -> None:
        if self._framing is None and self.protocol.state is State.OPEN:
            # A client sends frames only after the handshake's answer, so websockets' parser holds nothing now
            # (if it did, the client pipelined frames: it keeps websockets' own path).
            self._framing = not self.protocol.reader.buffer
        if not self._framing:
            super().data_received(data)
            return
        buf = self._partial + data if self._partial else data
        end, pos, limit = len(buf), 0, self.protocol.max_message_size or 1 << 62
        while end - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            n, head = b1 & 0x7F, pos + 2
            if n >= 126:
                wide = 2 if n == 126 else 8
                if end - head < wide:
                    break
                n, head = int.from_bytes(buf[head:head + wide], "big"), head + wide
            stop = head + (4 if b1 & 0x80 else 0) + n
            if n > limit or self.protocol.state is not State.OPEN:  # websockets refuses it, or is closing
                self._framing = False
                super().data_received(bytes(buf[pos:]))
                self._partial = b""
                return
            if stop > end:
                break
            sink = self.sink
            if b0 == 0x82 and b1 & 0x80 and sink is not None:  # FIN, binary, no RSV bits, masked
                payload = apply_mask(buf[head + 4:stop], buf[head:head + 4])
                if not self._deliver(sink, payload):
                    self._framing, self._partial = False, b""
                    return
            else:
                super().data_received(bytes(buf[pos:stop]))
            pos = stop
        self._partial = bytes(buf[pos:]) if pos < end else b""

    def _deliver(self, sink: Callable[[bytes | str], None], data: bytes | str) -> bool:
        try:
            sink(data)
            return True
        except Exception:  # a bug in the session: this connection ends, the server goes on
            log.exception("session failed on a frame")
            self.protocol.fail(CloseCode.INTERNAL_ERROR, "internal error")
            self.send_data()
            return False

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
            self._deliver(sink, data)
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
