"""Bad input over a real websocket: each gets an Error with a stable code (or a clean close), the server keeps
serving, and a bystander notices nothing."""

import asyncio
import dataclasses
import socket
import time

import msgpack
import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from client.net import GameClient, ServerError
from server.app import Server
from server.world.reader import load_world

from conftest import FAST, TEST_WORLD, until


class Raw:
    """A websocket that sends whatever bytes a test likes."""

    def __init__(self, ws):
        self.ws = ws

    async def send(self, data):
        await self.ws.send(data)

    async def reply(self, data=None, timeout=5.0):
        if data is not None:
            await self.ws.send(data)
        while True:
            frame = msgpack.unpackb(await asyncio.wait_for(self.ws.recv(), timeout))
            if frame["Action"] != "Tick" and frame["Action"] != "View":
                return frame

    async def request(self, **fields):
        return await self.reply(msgpack.packb(fields))


@pytest.fixture
async def raw(server):
    async with ws_connect(server.url, max_size=None) as ws:
        yield Raw(ws)


@pytest.fixture
async def bystander(connect):
    """Logged in and listening; at the end of a test it must have seen no error and still be served."""
    bob = await connect("bob")
    yield bob
    assert not bob.errors
    assert (await bob.request("Ping"))["Action"] == "Ping-Response"
    assert (await bob.chat("still here"))["Seq"] >= 1


HELLO = msgpack.packb({"Id": "h", "Action": "Hello", "Version": 1})


@pytest.mark.parametrize(
    "frame, code",
    [
        (b"\xc1garbage", "MALFORMED"),
        ("a text frame", "MALFORMED"),
        (msgpack.packb([1, 2]), "NOT_A_MAP"),
        (msgpack.packb({"Id": "1", "Action": "Dance"}), "UNKNOWN_ACTION"),
        (msgpack.packb({"Id": "1"}), "BAD_REQUEST"),
        (msgpack.packb({"Id": "1", "Action": "Hello"}), "BAD_REQUEST"),
        (msgpack.packb({"Id": "1", "Action": "Hello", "Version": "one"}), "BAD_REQUEST"),
        (msgpack.packb({"Id": "1", "Action": "Hello", "Version": 99}), "VERSION_MISMATCH"),
        (msgpack.packb({"Id": "1", "Action": "Login", "Name": "bob", "Password": "pw-secret"}), "HELLO_REQUIRED"),
    ],
)
async def test_bad_frames_get_an_error_and_the_connection_lives_on(raw, bystander, frame, code):
    err = await raw.reply(frame)
    assert err["Action"] == "Error" and err["Code"] == code and err["Message"]
    assert (await raw.reply(HELLO))["Action"] == "Hello-Response"  # still usable


@pytest.mark.parametrize(
    "request_fields, code",
    [
        ({"Action": "Chat", "Text": "hi"}, "NOT_LOGGED_IN"),
        ({"Action": "Move", "Dir": "N"}, "NOT_LOGGED_IN"),
        ({"Action": "Login", "Name": "bob", "Password": "wrong-password"}, "BAD_CREDENTIALS"),
        ({"Action": "Login", "Name": "nobody", "Password": "pw-secret"}, "BAD_CREDENTIALS"),
        ({"Action": "Register", "Name": "bob", "Password": "pw-secret"}, "NAME_TAKEN"),
        ({"Action": "Register", "Name": "BOB", "Password": "pw-secret"}, "NAME_TAKEN"),  # names ignore case
        ({"Action": "Register", "Name": "King", "Password": "pw-secret"}, "BAD_NAME"),  # NPCs' names are reserved
        ({"Action": "Register", "Name": "a b", "Password": "pw-secret"}, "BAD_NAME"),
        ({"Action": "Register", "Name": "carol", "Password": "123"}, "WEAK_PASSWORD"),
        ({"Action": "Resume", "Token": "made-up"}, "SESSION_EXPIRED"),
        ({"Action": "Move", "Dir": "N", "X": "far"}, "BAD_REQUEST"),
    ],
)
async def test_refused_requests(raw, bystander, request_fields, code):
    await raw.reply(HELLO)
    err = await raw.request(Id="q", **request_fields)
    assert (err["Action"], err["Code"], err["Ref"]) == ("Error", code, "q")


async def test_logging_in_twice_on_one_connection(connect):
    alice = await connect("alice")
    with pytest.raises(ServerError) as exc:
        await alice.login("alice", "pw-secret")
    assert exc.value.code == "ALREADY_LOGGED_IN"


async def test_bad_chat_lines(connect, bystander):
    alice = await connect("alice")
    for text, code in [("   \n\t ", "CHAT_EMPTY"), ("x" * 281, "CHAT_TOO_LONG")]:
        with pytest.raises(ServerError) as exc:
            await alice.chat(text)
        assert exc.value.code == code
    assert not [ev for ev in bystander.events if ev["Action"] == "ChatLine"]


async def test_an_oversized_frame_closes_that_connection_only(server, raw, bystander):
    await raw.reply(HELLO)
    await raw.send(msgpack.packb({"Id": "1", "Action": "Chat", "Text": "x" * 40_000}))
    with pytest.raises(ConnectionClosed) as exc:
        await raw.reply(timeout=5)
    assert exc.value.rcvd.code == 1009  # message too big
    fresh = await GameClient.connect(server.url)
    assert (await fresh.request("Ping"))["Action"] == "Ping-Response"
    await fresh.close()


async def test_every_request_dropped_for_rate_is_answered_with_its_ref(connect):
    """150 Pings back to back: past the burst some are dropped, and each drop says which request it was."""
    pinger = await connect("pinger")
    for i in range(150):
        await pinger.send("Ping", Id=f"p{i}")
    await until(pinger, lambda: len([e for e in pinger.events if e.get("Code") == "RATE_LIMITED"])
                + sum(1 for e in pinger.events if e["Action"] == "Ping-Response") >= 150, timeout=5)
    answers = [e for e in pinger.events if e["Action"] == "Ping-Response" or e.get("Code") == "RATE_LIMITED"]
    limited = [e for e in answers if e["Action"] == "Error"]
    assert limited and sorted(e["Ref"] for e in answers) == sorted(f"p{i}" for i in range(150))


async def test_a_flood_is_cut_off_and_others_are_unaffected(connect, bystander):
    flooder = await connect("flooder")
    watcher = await connect("watcher")
    started = time.monotonic()
    sent = 0
    try:
        for i in range(1000):  # 1,000 requests as fast as the socket takes them
            await flooder.send("Ping", Id=f"f{i}")
            sent += 1
    except ConnectionClosed:
        pass
    code = await asyncio.wait_for(flooder.closed, 5)
    assert code == 1008
    assert time.monotonic() - started < 5
    limited = [e for e in flooder.events if e.get("Code") == "RATE_LIMITED"]
    assert limited, "the flooder was warned before being cut off"
    # The bystander's chat still reaches the watcher, promptly.
    t0 = time.monotonic()
    await bystander.chat("business as usual")
    await watcher.wait_for(lambda ev: ev.get("Text") == "business as usual", past=True)
    assert time.monotonic() - t0 < 1.0
    await until(watcher, lambda: "flooder" in watcher.view.names())  # a dropped connection is not a logout...
    await until(watcher, lambda: "flooder" not in watcher.view.names(), timeout=3)  # ...until the grace ends


async def test_a_client_that_stops_reading_is_dropped(db_url):
    """A real client that never reads: once the server's buffer for it passes write_limit, it is cut off
    instead of holding the room back."""
    config = dataclasses.replace(FAST, write_limit=4096)
    srv = Server(load_world(TEST_WORLD), db_url, "127.0.0.1", 0, config)
    await srv.start()
    try:
        sleeper = await GameClient.connect(srv.url)
        await sleeper.register("sleeper", "pw-secret")
        # Stop reading: shrink the socket's receive window and pause the transport.
        sock = sleeper.ws.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        sleeper.ws.transport.pause_reading()
        # Loopback buffers grow to megabytes; shrink the server's send buffer for this one socket as well.
        [conn] = [c for c in srv.connections if c.player and c.player.name == "sleeper"]
        conn.ws.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        talkers = [await GameClient.connect(srv.url) for _ in range(2)]
        for i, t in enumerate(talkers):
            await t.register(f"talker{i}", "pw-secret")
        deadline = time.monotonic() + 20
        while srv.metrics.slow_clients == 0 and time.monotonic() < deadline:
            await asyncio.gather(*(t.chat("y" * 250) for t in talkers))
            await asyncio.sleep(0.05)  # stay under the rate limit
        assert srv.metrics.slow_clients == 1
        # The talkers were never held up, and the room goes on.
        assert (await talkers[0].chat("after"))["Seq"] > 1
        for t in talkers:
            await t.close()
    finally:
        await srv.stop()


async def test_a_failing_handler_answers_internal_and_the_room_goes_on(server, connect, bystander, monkeypatch):
    alice = await connect("alice")
    room = server.runtime.rooms["plaza"]

    def broken(msg):
        raise RuntimeError("a bug in a handler")

    monkeypatch.setitem(room._by_action, "Who", broken)
    with pytest.raises(ServerError) as exc:
        await alice.request("Who")
    assert exc.value.code == "INTERNAL"
    assert (await alice.chat("the room still works"))["Seq"] >= 1


async def test_a_full_room_mailbox_answers_busy(server, connect, bystander):
    """A room that cannot keep up refuses new requests with BUSY instead of queueing without bound."""
    alice = await connect("alice")
    room = server.runtime.rooms["plaza"]
    release = asyncio.Event()
    stalled = asyncio.Event()

    async def slow_who(msg):
        stalled.set()
        await release.wait()

    room._by_action["Who"] = slow_who
    await alice.send("Who", Id="stall")
    await asyncio.wait_for(stalled.wait(), 2)
    room.mailbox = asyncio.Queue(3)  # a small mailbox; the stalled actor reads it once released
    pending = [asyncio.ensure_future(alice.chat(f"queued {i}")) for i in range(6)]
    await asyncio.sleep(0.3)
    release.set()
    results = await asyncio.gather(*pending, return_exceptions=True)
    busy = [r for r in results if isinstance(r, ServerError)]
    assert busy and all(r.code == "BUSY" for r in busy)
    assert len(busy) >= 3  # at most three fitted (a tick may take a place too)
    assert all(r["Action"] == "Chat-Response" for r in results if not isinstance(r, Exception))
