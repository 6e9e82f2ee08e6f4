"""The NATS bus on a real nats-server (127.0.0.1): two buses stand for two processes. Local delivery stays local;
sends, calls, ReplyTo and raw frames cross; a missing recipient is an error at once, a silent one a timeout; and a
nats-server restart is survived."""

import asyncio
import time

import pytest

from server.core.actors import Actor, Edge, LocalBus, action
from server.core.natsbus import NatsBus, subject_for


class Echo(Actor):
    def __init__(self, bus, actor_id="echo"):
        super().__init__(actor_id)
        self.bus = bus
        self.seen = []
        self.handle("ping", action("Ping"), self.on_ping)
        self.handle("note", action("Note"), lambda msg: self.seen.append(msg))
        self.handle("silent", action("Silent"), lambda msg: None)

    def on_ping(self, msg):
        self.reply(msg, "Pong", N=msg["N"], By=self.id)


class Collect(Edge):
    def __init__(self, edge_id):
        self.id, self.frames, self.msgs = edge_id, [], []

    def deliver(self, msg):
        self.msgs.append(msg)

    def deliver_raw(self, frame):
        self.frames.append(frame)


async def eventually(cond, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


@pytest.fixture
async def buses(nats_server):
    a, b = NatsBus(nats_server.url, "t"), NatsBus(nats_server.url, "t")
    await a.connect()
    await b.connect()
    yield a, b
    await a.close()
    await b.close()


def test_an_actor_id_is_one_subject_and_reserved_characters_are_escaped():
    assert subject_for("ll", "player:alice") == "ll.player.alice"
    assert subject_for("ll", "player:a.b c*>") == "ll.player.a%2Eb%20c%2A%3E"
    assert subject_for("ll", "token:wAR") == "ll.token.wAR"


async def test_calls_sends_and_replies_cross_processes_and_local_ones_stay_local(buses):
    a, b = buses
    echo = Echo(a)
    a.register(echo)
    echo.start()
    await asyncio.sleep(0.1)  # the subscription is in place
    assert (await b.call("echo", {"Action": "Ping", "N": 1}, timeout=5)) == {"Action": "Pong", "N": 1, "By": "echo"}
    published = a.published
    assert (await a.call("echo", {"Action": "Ping", "N": 2}))["N"] == 2 and a.published == published  # local
    assert b.send("echo", {"Action": "Note", "X": 1})
    await eventually(lambda: echo.seen)
    # A message naming a local ReplyTo gets its answer back across the bus, the way a local one would.
    inbox = Collect("inbox:1")
    b.register(inbox)
    b.send("echo", {"Action": "Ping", "N": 3, "ReplyTo": "inbox:1"})
    await eventually(lambda: inbox.msgs)
    assert inbox.msgs == [{"Action": "Pong", "N": 3, "By": "echo"}]
    await echo.stop()


async def test_a_missing_actor_is_an_error_at_once_and_a_silent_one_a_timeout(buses):
    a, b = buses
    started = time.monotonic()
    with pytest.raises(LookupError):
        await b.call("nobody", {"Action": "Ping", "N": 1}, timeout=5)
    assert time.monotonic() - started < 2
    echo = Echo(a)
    a.register(echo)
    echo.start()
    await asyncio.sleep(0.1)
    with pytest.raises(TimeoutError):
        await b.call("echo", {"Action": "Silent"}, timeout=0.5)
    a.unregister("echo")
    await asyncio.sleep(0.2)
    with pytest.raises(LookupError):  # gone: unsubscribed
        await b.call("echo", {"Action": "Ping", "N": 1}, timeout=5)
    await echo.stop()


async def test_raw_frames_reach_edges_in_other_processes(buses):
    a, b = buses
    here, there = Collect("player:here"), Collect("player:there")
    a.register(here)
    b.register(there)
    await asyncio.sleep(0.1)
    a.multicast_raw(["player:here", "player:there", "player:nobody"], b"\x81\xa1A\x01")
    assert here.frames == [b"\x81\xa1A\x01"]  # local: at once
    await eventually(lambda: there.frames)
    assert there.frames == [b"\x81\xa1A\x01"] and there.msgs == []
    assert a.send_raw("player:there", b"two")
    await eventually(lambda: len(there.frames) == 2)


async def test_a_nats_restart_is_survived(nats_server, buses):
    a, b = buses
    echo = Echo(a)
    a.register(echo)
    echo.start()
    await asyncio.sleep(0.1)
    await asyncio.to_thread(nats_server.restart, 0.5)
    deadline = time.monotonic() + 15
    while True:  # both reconnect and re-subscribe on their own
        try:
            answer = await b.call("echo", {"Action": "Ping", "N": 9}, timeout=1)
            break
        except (LookupError, TimeoutError):
            assert time.monotonic() < deadline, "no reconnection"
            await asyncio.sleep(0.2)
    assert answer["N"] == 9 and a.connected and b.connected
    await echo.stop()


async def test_an_unreachable_nats_is_one_clear_error():
    bus = NatsBus("nats://127.0.0.1:1", "t")
    with pytest.raises(ConnectionError, match="cannot reach NATS at nats://127.0.0.1:1"):
        await bus.connect(timeout=3)


def test_the_nats_bus_is_a_local_bus_first():
    assert issubclass(NatsBus, LocalBus)


async def test_a_ledger_tells_a_player_connected_to_another_process(buses, db):
    from server.core.log import MessageLog
    from server.economy.ledger import UNIT, TokenActor, change
    from server.reducers import state_for

    a, b = buses
    token = TokenActor("wAR", a, MessageLog(db, state_for), minters=("operator",))
    a.register(token)
    token.start()
    await token.open(1)
    alice = Collect("player:alice")  # her connection is on the other process
    b.register(alice)
    await asyncio.sleep(0.1)
    await change(b, "wAR", {"Action": "Mint", "To": "alice", "Amount": 3 * UNIT, "By": "operator", "T": 2})
    await eventually(lambda: alice.msgs)
    [notice] = alice.msgs
    assert (notice["Action"], notice["Quantity"], notice["Balance"], notice["Reason"]) == ("Credit-Notice", 3 * UNIT,
                                                                                          3 * UNIT, "mint")
    await token.stop()


async def test_a_nats_password_never_reaches_a_message():
    bus = NatsBus("nats://llama:s3cret@127.0.0.1:1", "t")
    with pytest.raises(ConnectionError) as exc:
        await bus.connect(timeout=3)
    assert "s3cret" not in str(exc.value) and "nats://llama:***@127.0.0.1:1" in str(exc.value)
