"""A real server on 127.0.0.1 and real websocket clients: movement, chat, whispers, portals, sessions."""

import asyncio
import json
import urllib.request

import pytest

from client.net import GameClient, ServerError
from server.core.db import Database
from server.core.log import replay_all
from server.reducers import state_for

from conftest import until, walk


async def test_two_players_see_each_other_move_and_chat(connect):
    alice = await connect("alice")
    bob = await connect("bob")
    assert alice.view.room == bob.view.room == "plaza"
    await until(bob, lambda: "alice" in bob.view.names())
    await until(alice, lambda: "bob" in alice.view.names())
    start = bob.view.names()["alice"]
    assert await walk(alice, "E E") == (start[0] + 2, start[1])
    await until(bob, lambda: bob.view.names()["alice"] == (start[0] + 2, start[1]))

    resp = await alice.chat("hello, bob")
    assert resp["Heard"] == 1
    line = await bob.wait_for(lambda ev: ev["Action"] == "ChatLine", past=True)
    assert (line["From"], line["Text"], line["Scope"]) == ("alice", "hello, bob", "room")


async def test_the_server_stamps_the_author(connect):
    alice = await connect("alice")
    bob = await connect("bob")
    await until(bob, lambda: {"alice", "bob"} <= set(bob.view.names()))
    # A client naming someone else as the author (or the time) is ignored: the server knows who is talking.
    await alice.send("Chat", Id="x1", Text="I am bob", Player="bob", From="bob", T=0)
    line = await bob.wait_for(lambda ev: ev["Action"] == "ChatLine" and ev["Text"] == "I am bob")
    assert line["From"] == "alice" and line["T"] > 0
    before = bob.view.names()["bob"]
    await alice.send("Move", Id="x2", Dir="E", Player="bob")
    await until(bob, lambda: bob.view.names()["alice"] != (3, 3))
    assert bob.view.names()["bob"] == before


async def test_whisper_reaches_only_its_target(connect):
    alice, bob, carol = await connect("alice"), await connect("bob"), await connect("carol")
    await alice.whisper("bob", "psst")
    got = await bob.wait_for(lambda ev: ev["Action"] == "Whisper", past=True)
    assert (got["From"], got["Text"]) == ("alice", "psst")
    await carol.chat("sync")  # once carol hears her own line, any whisper to her would have arrived first
    await carol.wait_for(lambda ev: ev["Action"] == "ChatLine" and ev["Text"] == "sync", past=True)
    assert not [ev for ev in carol.events if ev["Action"] == "Whisper"]
    assert not [ev for ev in alice.events if ev["Action"] == "Whisper"]
    with pytest.raises(ServerError) as exc:
        await alice.whisper("nobody", "hello?")
    assert exc.value.code == "UNKNOWN_PLAYER"


async def test_near_chat_reaches_only_those_within_the_radius(connect):
    alice, bob, carol = await connect("alice"), await connect("bob"), await connect("carol")
    await walk(bob, "E E E E E E")  # (9, 3): 6 tiles from the spawn, radius is 4
    resp = await alice.chat("just between us", scope="near")
    assert resp["Heard"] == 1
    await carol.wait_for(lambda ev: ev.get("Text") == "just between us", past=True)
    await bob.chat("sync")
    await bob.wait_for(lambda ev: ev.get("Text") == "sync", past=True)
    assert not [ev for ev in bob.events if ev.get("Text") == "just between us"]


async def test_last_lines_of_chat_come_with_the_room(connect):
    alice = await connect("alice")
    for i in range(7):
        await alice.chat(f"line {i}")
    bob = await connect("bob")
    assert [line["Text"] for line in bob.view.chat] == [f"line {i}" for i in range(2, 7)]  # chat_history = 5


async def test_portal_moves_the_player_to_the_other_room(connect):
    alice = await connect("alice")
    watcher = await connect("watcher")
    await until(watcher, lambda: "alice" in watcher.view.names())
    # around the wall in the middle of the plaza, then onto the door at (18, 7)
    await walk(alice, ["S"] * 7 + ["E"] * 14 + ["NE", "N"])
    joined = alice.wait_for(lambda ev: ev["Action"] == "RoomJoined")
    await alice.move("N")
    ev = await joined
    assert (ev["Room"], ev["X"], ev["Y"]) == ("hall", 2, 5)
    await until(watcher, lambda: "alice" not in watcher.view.names())
    who = await alice.request("Who")
    assert who["Players"] == ["alice"] and who["Room"] == "hall"
    await alice.chat("in the hall")  # requests now go to the hall
    assert not [e for e in watcher.events if e.get("Text") == "in the hall"]
    # and back: the hall's door is at (1, 5), next to the arrival spot
    back = alice.wait_for(lambda ev: ev["Action"] == "RoomJoined")
    await alice.move("W")
    assert (await back)["Room"] == "plaza"


@pytest.mark.parametrize(
    "fields, code",
    [
        ({"X": -1, "Y": 3}, "MOVE_OFF_MAP"),
        ({"X": 8, "Y": 3}, "MOVE_TOO_FAR"),
        ({"X": 3, "Y": 30}, "MOVE_OFF_MAP"),
        ({"X": 3, "Y": 0}, "MOVE_TOO_FAR"),
        ({"X": 2, "Y": 2}, None),  # a legal diagonal
    ],
)
async def test_bad_moves_are_refused_with_the_true_position(connect, fields, code):
    alice = await connect("alice")
    if code is None:
        assert (await alice.request("Move", **fields))["X"] == 2
        return
    with pytest.raises(ServerError) as exc:
        await alice.request("Move", **fields)
    assert exc.value.code == code
    assert (exc.value.frame["X"], exc.value.frame["Y"]) == (3, 3)


async def test_walls_and_speed_are_enforced(connect):
    alice = await connect("alice")
    bob = await connect("bob")
    await walk(alice, "E E E E E E")  # (9, 3), next to the wall at x = 10
    with pytest.raises(ServerError) as exc:
        await alice.move("E")
    assert exc.value.code == "MOVE_BLOCKED" and (exc.value.frame["X"], exc.value.frame["Y"]) == (9, 3)
    with pytest.raises(ServerError) as exc:
        await alice.move("NE")  # (10, 2) is open, but the corner (10, 3) is wall
    assert exc.value.code == "MOVE_THROUGH_WALL"
    # Far faster than 10 tiles/s: after the burst the server refuses and reports where alice really is.
    results = await asyncio.gather(*(alice.request("Move", Dir=d) for d in "W W W W W W".split()),
                                   return_exceptions=True)
    refused = [r for r in results if isinstance(r, ServerError)]
    assert refused and all(r.code == "MOVE_TOO_FAST" for r in refused)
    true_x = 9 - (len(results) - len(refused))
    assert all(r.frame["X"] == true_x for r in refused)
    await until(bob, lambda: bob.view.names().get("alice") == (true_x, 3))


async def test_resume_within_grace_keeps_the_avatar(connect, server):
    alice = await connect("alice")
    bob = await connect("bob")
    await walk(alice, "S S")
    await until(bob, lambda: bob.view.names().get("alice") == (3, 5))
    eid = alice.view.me
    token = alice.token
    await alice.ws.close()
    await asyncio.sleep(0.3)
    again = await connect()
    await again.resume(token)
    assert (again.view.room, again.view.me, again.view.x, again.view.y) == ("plaza", eid, 3, 5)
    await until(again, lambda: "bob" in again.view.names())  # a fresh View arrives with the next tick
    await asyncio.sleep(1.2)  # past the grace period: the resumed avatar must still be there
    assert "alice" in bob.view.names()
    assert not [ev for ev in bob.events if ev["Action"] == "Tick" and eid in ev["G"]]


async def test_no_ghost_after_the_grace_period(connect):
    alice = await connect("alice")
    bob = await connect("bob")
    await until(bob, lambda: "alice" in bob.view.names())
    token = alice.token
    await alice.ws.close()
    await until(bob, lambda: "alice" not in bob.view.names(), timeout=3)
    assert (await bob.request("Who"))["Players"] == ["bob"]
    late = await connect()
    with pytest.raises(ServerError) as exc:
        await late.resume(token)
    assert exc.value.code == "SESSION_EXPIRED"
    await late.login("alice", "pw-secret")  # the password still works, of course
    assert late.view.room == "plaza"


async def test_second_login_replaces_the_first_connection(connect):
    first = await connect("alice")
    second = await connect()
    await second.login("alice", "pw-secret")
    kicked = await first.wait_for(lambda ev: ev["Action"] == "Kicked", past=True)
    assert "another connection" in kicked["Reason"]
    assert await asyncio.wait_for(first.closed, 5) == 4000
    assert (await second.chat("still me"))["Seq"] >= 1


async def test_logout_removes_the_avatar(connect):
    alice = await connect("alice")
    bob = await connect("bob")
    await until(bob, lambda: "alice" in bob.view.names())
    await alice.request("Logout")
    await until(bob, lambda: "alice" not in bob.view.names())
    with pytest.raises(ServerError) as exc:
        await alice.chat("anyone?")
    assert exc.value.code == "NOT_LOGGED_IN"
    await alice.login("alice", "pw-secret")


async def test_http_endpoints(server, connect):
    await connect("alice")
    base = f"http://127.0.0.1:{server.port}"

    def get(path):
        with urllib.request.urlopen(base + path, timeout=5) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read().decode()

    status, _, body = await asyncio.to_thread(get, "/healthz")
    assert (status, body) == (200, "ok\n")
    await asyncio.sleep(1.1)
    _, ctype, body = await asyncio.to_thread(get, "/metrics")
    assert ctype.startswith("text/plain")
    for name in ("llama_land_connections 1", "llama_land_rooms 2", "llama_land_players 1",
                 "llama_land_messages_per_second", 'llama_land_tick_seconds_count{room="room:plaza"}',
                 'llama_land_mailbox_depth{actor="room:plaza"}', "llama_land_db_queue_depth"):
        assert name in body
    _, ctype, body = await asyncio.to_thread(get, "/state")
    assert ctype == "application/json" and json.loads(body) == server.runtime.state_hashes()
    with pytest.raises(urllib.error.HTTPError) as exc:
        await asyncio.to_thread(get, "/nope")
    assert exc.value.code == 404


async def test_replay_hashes_equal_the_live_ones(server, connect, db_url):
    alice, bob = await connect("alice"), await connect("bob")
    await alice.chat("one")
    await bob.whisper("alice", "two")
    await walk(alice, ["S"] * 7 + ["E"] * 14 + ["NE", "N", "N"])  # through the portal: Leave + Join
    await until(alice, lambda: alice.view.room == "hall")
    await alice.chat("three", scope="near")
    await bob.request("Logout")
    await asyncio.sleep(0.2)
    live = server.runtime.state_hashes()
    replayed = {r.actor: {"slot": r.slot, "digest": r.digest} for r in replay_all(Database(db_url), state_for)}
    assert replayed == live
    assert set(live) == {"accounts", "room:plaza", "room:hall", "token:wAR", "token:LLAMA"}
