"""What an independent client written from docs/protocol.md found, each fixed in the server or the docs and
checked here over a real websocket (or, for the ledger's notices, with real actors on the bus)."""

import asyncio
import json
import logging

import msgpack
import pytest

from client.net import ServerError
from server.core.actors import Actor, Edge, LocalBus
from server.core.protocol import Code, ProtocolError, decode
from server.economy.ledger import TokenActor
from server.reload import reload_world

from conftest import until, walk
from court import UNIT, player, serve, through, world_copy, WORLD


async def test_whisper_finds_its_target_in_any_case(connect):
    alice, bob = await connect("alice"), await connect("Bob")
    resp = await alice.request("Whisper", To="BOB", Text="psst")
    assert resp["To"] == "Bob"
    got = await bob.wait_for(lambda e: e["Action"] == "Whisper", past=True)
    assert (got["From"], got["To"], got["Text"]) == ("alice", "Bob", "psst")
    with pytest.raises(ServerError) as exc:
        await alice.request("Whisper", To="nobody", Text="psst")
    assert exc.value.code == Code.UNKNOWN_PLAYER


async def test_a_superseded_token_is_expired(connect, server):
    first = await connect("alice")
    old = first.token
    second = await connect()
    await second.login("alice", "pw-secret")
    await asyncio.wait_for(first.closed, 5)
    third = await connect()
    with pytest.raises(ServerError) as exc:
        await third.resume(old)
    assert exc.value.code == Code.SESSION_EXPIRED and exc.value.frame["Ref"]
    assert (await third.resume(second.token))["Name"] == "alice"


def test_a_quote_needs_its_text_for_every_service():
    with pytest.raises(ProtocolError) as exc:
        decode(msgpack.packb({"Id": "q", "Action": "Quote", "Service": "petition"}))
    assert exc.value.code == Code.BAD_REQUEST and "Text" in exc.value.message and exc.value.ref == "q"


async def test_world_wide_requests_are_answered_from_any_room(tmp_path, db_url):
    srv = await serve(world_copy(tmp_path), db_url, inference=False)
    try:
        alice = await player(srv, "alice")
        assert alice.view.room == "plaza"  # the Oracle is in her grove, the King in his hall
        info = await alice.request("OracleInfo")
        assert info["Npc"] == "oracle" and len(info["Commitment"]) == 64
        quote = await alice.request("Quote", Service="petition", Text="-")
        assert quote["Npc"] == "king" and quote["Fee"] == UNIT
        with pytest.raises(ServerError) as exc:  # the Joker needs the model for a price; reach is no longer it
            await alice.request("Quote", Service="joke", Text="hay")
        assert exc.value.code == Code.UNAVAILABLE
        with pytest.raises(ServerError) as exc:  # a game still needs the player standing by her
            await alice.request("HighLow", Bet=UNIT, Guess="high", ClientSeed="s", Commitment=info["Commitment"])
        assert exc.value.code == Code.NO_NPC_HERE
    finally:
        await srv.stop()


class Recorder(Edge):
    def __init__(self, address):
        self.id, self.got = address, []

    def deliver(self, msg):
        self.got.append(msg)

    def deliver_raw(self, frame):
        self.got.append(msgpack.unpackb(frame))


async def test_ledger_notices_go_to_players_not_to_service_actors(db, caplog):
    from server.core.log import MessageLog
    from server.reducers import state_for

    bus = LocalBus()
    ledger = TokenActor("wAR", bus, MessageLog(db, state_for), cap=None, minters=("operator",))
    herd = Actor("herd")  # a service account's actor, with no notice handlers
    alice = Recorder("player:alice")
    for a in (ledger, herd, alice):
        bus.register(a)
    ledger.start()
    herd.start()
    await ledger.open(1)
    with caplog.at_level(logging.WARNING):
        await bus.call("token:wAR", {"Action": "Mint", "To": "alice", "Amount": 5 * UNIT, "By": "operator", "T": 2})
        done = await bus.call("token:wAR", {"Action": "Transfer", "From": "alice", "To": "herd", "Amount": UNIT,
                                            "Tags": {}, "T": 3})
        await asyncio.sleep(0.05)
    assert done["Action"] == "Transfer-Done" and done["Balance"] == 4 * UNIT
    assert [m["Action"] for m in alice.got] == ["Credit-Notice", "Debit-Notice"]
    assert herd.handled == 0 and "no handler" not in caplog.text
    await ledger.stop()
    await herd.stop()


async def test_every_message_on_the_bus_is_plain_data(tmp_path, db_url, monkeypatch):
    """A bus between processes carries msgpack: nothing the server sends may be a live Python object."""
    sent = []
    real_send = LocalBus.send

    def checked_send(self, to, msg):
        msgpack.packb(msg, use_bin_type=True)  # raises on anything msgpack cannot carry
        sent.append(msg["Action"])
        return real_send(self, to, msg)

    monkeypatch.setattr(LocalBus, "send", checked_send)
    world = world_copy(tmp_path)
    srv = await serve(world, db_url, inference=False)
    try:
        alice, bob = await player(srv, "alice"), await player(srv, "bob")
        await until(alice, lambda: "bob" in alice.view.names())
        await walk(alice, "E")
        await alice.chat("hello")
        await alice.request("Whisper", To="bob", Text="psst")
        await alice.request("Transfer", Recipient="bob", Quantity=UNIT)
        await alice.request("OracleInfo")
        await through(alice, WORLD, "to-grove")
        plaza = world / "maps" / "plaza.tmj"
        plaza.write_text(json.dumps(json.loads(plaza.read_text())))  # same map, other bytes: a Reload
        changed = await reload_world(srv.runtime)
        assert "room plaza" in changed
        await bob.wait_for(lambda e: e["Action"] == "RoomJoined", timeout=5)
    finally:
        await srv.stop()
    assert {"Move", "Chat", "Whisper", "Transfer", "Enter", "Located", "Reload", "Transfer-Done"} <= set(sent)
