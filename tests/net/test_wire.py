"""The lean receive path (server/net/wire.py): frames handled in order whether they finish at once or must wait;
over a real websocket, fragmented messages and invalid text are handled as websockets would."""

import asyncio

import msgpack
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from server.net.wire import BACKLOG, FrameInbox


class Transport:
    def __init__(self):
        self.paused = 0

    def pause_reading(self):
        self.paused += 1

    def resume_reading(self):
        self.paused -= 1


async def test_frames_keep_their_order_behind_a_request_that_waits():
    seen, gate = [], asyncio.Event()

    async def slow(data):
        await gate.wait()
        seen.append(data)

    def handle(data):
        if data.startswith(b"slow"):
            return slow(data)
        seen.append(data)
        return None

    transport = Transport()
    inbox = FrameInbox(handle, transport, lambda: None)
    inbox.put(b"move-1")
    inbox.put(b"slow-login")
    for i in range(BACKLOG + 2):
        inbox.put(f"move-{i + 2}".encode())
    assert seen == [b"move-1"] and transport.paused == 1  # held back, and the socket paused past BACKLOG
    gate.set()
    await inbox.finish()
    assert seen == [b"move-1", b"slow-login", *(f"move-{i + 2}".encode() for i in range(BACKLOG + 2))]
    assert transport.paused == 0 and inbox.running is None


async def test_a_handler_that_fails_ends_the_connection_and_drops_what_waited():
    failed = []

    async def broken():
        raise RuntimeError("bug")

    inbox = FrameInbox(lambda data: broken() if data == b"x" else None, Transport(), lambda: failed.append(1))
    inbox.put(b"x")
    inbox.put(b"later")
    await inbox.finish()
    assert failed == [1] and not inbox.backlog


def frame(**msg):
    return msgpack.packb(msg)


async def test_a_fragmented_message_and_the_frames_after_it_keep_their_order(server):
    async with connect(server.url) as ws:
        await ws.send([frame(Action="Hello", Version=1, Id="1")[:3], frame(Action="Hello", Version=1, Id="1")[3:]])
        await ws.send(frame(Action="Ping", Id="2"))
        answers = [msgpack.unpackb(await ws.recv()) for _ in range(2)]
        assert [a.get("Ref") for a in answers] == ["1", "2"], answers


async def test_invalid_utf8_in_a_text_frame_closes_with_1007(server):
    async with connect(server.url) as ws:
        await ws.send(frame(Action="Hello", Version=1, Id="1"))
        await ws.recv()
        ws.protocol.send_text(b"\xff\xfe")  # the sans-I/O layer sends what it is given, unchecked
        ws.send_data()
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd.code == 1007
