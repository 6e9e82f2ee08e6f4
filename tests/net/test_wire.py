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


def masked(opcode, payload: bytes, fin: bool = True) -> bytes:
    """A client frame as a client writes it (masked), built by websockets' own serializer."""
    from websockets.frames import Frame

    return Frame(opcode, payload, fin=fin).serialize(mask=True, extensions=[])


async def raw_answers(ws, n: int) -> list:
    return [msgpack.unpackb(await asyncio.wait_for(ws.recv(), 5)) for _ in range(n)]


async def test_frames_split_anywhere_and_mixed_with_pings_are_read_whole_and_in_order(server):
    from websockets.frames import Opcode

    OP_BINARY, OP_PING = Opcode.BINARY, Opcode.PING

    long_text = "hay " * 60  # a frame with a 16-bit length
    stream = b"".join([
        masked(OP_BINARY, frame(Action="Hello", Version=1, Id="1")),
        masked(OP_BINARY, frame(Action="Ping", Id="2")),
        masked(OP_PING, b"are you there"),
        masked(OP_BINARY, frame(Action="Register", Name="wire", Password="pw-secret", Id="3")),
        masked(OP_BINARY, frame(Action="Chat", Text=long_text, Id="4")),
        masked(OP_BINARY, frame(Action="Ping", Id="5")),
    ])
    async with connect(server.url) as ws:
        pong = asyncio.get_running_loop().create_future()  # as if the client library had sent that ping itself
        ws.pending_pings[b"are you there"] = (pong, ws.loop.time())
        for i in range(len(stream)):  # one byte per segment: every frame boundary and header split is crossed
            ws.transport.write(stream[i:i + 1])
            if i % 7 == 0:
                await asyncio.sleep(0.001)
        seen = {}
        while not {"1", "2", "3", "4", "5"} <= set(seen):
            msg = msgpack.unpackb(await asyncio.wait_for(ws.recv(), 10))
            if msg.get("Ref"):
                seen[msg["Ref"]] = msg
        order = [ref for ref in seen]
        assert order == ["1", "2", "3", "4", "5"], order
        assert seen["4"]["Action"] == "Chat-Response"
        await asyncio.wait_for(pong, 5)  # the ping in the middle was answered
        assert [c.ws._framing for c in server.connections] == [True]  # by the lean framer, not websockets' parser


async def test_an_unmasked_frame_closes_with_1002_and_an_oversized_one_with_1009(server):
    from websockets.frames import Frame, Opcode

    OP_BINARY = Opcode.BINARY

    from server.core.protocol import MAX_FRAME

    async with connect(server.url) as ws:
        ws.transport.write(Frame(OP_BINARY, frame(Action="Ping", Id="1")).serialize(mask=False, extensions=[]))
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd.code == 1002
    async with connect(server.url) as ws:
        ws.transport.write(masked(OP_BINARY, frame(Action="Hello", Version=1, Id="1")))
        await ws.recv()
        big = masked(OP_BINARY, b"\x00" * (MAX_FRAME + 1))
        ws.transport.write(big[:50])  # the header is enough to refuse it
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd.code == 1009


async def test_a_close_frame_in_the_middle_of_a_segment_ends_the_connection_cleanly(server):
    from websockets.frames import Opcode

    OP_BINARY, OP_CLOSE = Opcode.BINARY, Opcode.CLOSE

    async with connect(server.url) as ws:
        ws.transport.write(masked(OP_BINARY, frame(Action="Hello", Version=1, Id="1"))
                           + masked(OP_CLOSE, (1000).to_bytes(2, "big") + b"bye")
                           + masked(OP_BINARY, frame(Action="Ping", Id="2")))
        answers = []
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                answers.append(msgpack.unpackb(await asyncio.wait_for(ws.recv(), 5)))
        # Once the client has said close, the server sends no more data (websockets' rule): nothing is answered,
        # the frame after the close is not read, and the close is clean.
        assert answers == [] and closed.value.rcvd.code == 1000
