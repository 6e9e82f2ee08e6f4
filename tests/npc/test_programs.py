"""NPC programs over real websockets in the default world: the operator's keys, declared actions checked, prices
held in escrow and settled or refunded (an error, a timeout, a program gone, a server killed), what a program
may not do, revocation. The two example programs run as separate processes (tests/npc/test_program_examples.py)."""

import asyncio
import shutil

import pytest

from client.net import GameClient, ServerError
from server.app import Server
from server.core.units import UNIT
from server.world.reader import load_world

from conftest import FAST, ROOT, ServerProcess, near_npc, run_cli
from court import spot

DEFAULT_WORLD = ROOT / "worlds" / "llama-land"
ECHO = [{"Name": "echo", "Title": "Echo", "Description": "says it back", "Price": {"Kind": "fixed",
         "Amount": 2 * UNIT, "Token": "wAR"}, "Fields": {"words": {"type": "string", "minLength": 1,
                                                                    "maxLength": 10},
                                                          "times": {"type": "integer", "minimum": 1, "maximum": 3,
                                                                    "default": 1}}},
        {"Name": "free", "Title": "Free", "Fields": {"side": {"type": "string", "enum": ["heads", "tails"]}}},
        {"Name": "priced", "Title": "Priced", "Price": {"Kind": "quoted", "Max": 5 * UNIT, "Token": "wAR"},
         "Fields": {"n": {"type": "integer", "minimum": 1, "maximum": 5}}}]


async def serving(tmp_path, npc_programs: str = "") -> Server:
    """The default world, with an [npc_programs] table added to a copy of its world.toml if one is given."""
    world = DEFAULT_WORLD
    if npc_programs:
        world = tmp_path / "worlds" / "llama-land"  # where the maps find their tilesets: ../../../assets
        shutil.copytree(DEFAULT_WORLD, world)
        (tmp_path / "assets").symlink_to(ROOT / "assets")
        with open(world / "world.toml", "a") as toml:
            toml.write(f"\n[npc_programs]\n{npc_programs}\n")
    srv = Server(load_world(world), f"sqlite:///{tmp_path / 'p.db'}", "127.0.0.1", 0, FAST)
    await srv.start()
    return srv


async def admin(url: str, key: str, action: str, **fields) -> dict:
    c = await GameClient.connect(url)
    try:
        return await c.request(action, Key=key, **fields)
    finally:
        await c.close()


async def placed(srv: Server, name: str) -> tuple[str, tuple[int, int]]:
    """An NPC key for `name` on a free plaza tile, issued by the operator: (key, tile)."""
    tile = spot(srv.runtime.world)
    issued = await admin(srv.url, srv.runtime.admin_key, "AdminNpcAdd", Name=name, Room="plaza", X=tile[0],
                         Y=tile[1])
    return issued["Key"], tile


async def sdk_npc_and_alice(srv: Server, npc, name: str) -> tuple[asyncio.Future, GameClient]:
    """An SDK NPC placed and serving (reconnecting quickly), and alice registered and standing within its reach."""
    key, tile = await placed(srv, name)
    alice = await player(srv.url, "alice")
    running = asyncio.ensure_future(npc.serve(srv.url, name, key, backoff_max=0.5))
    await alice.wait_for(lambda e: e["Action"] == "NpcJoined", timeout=10, past=True)
    world = srv.runtime.world
    await near_npc(alice, world, tile, world.rules.near_radius)
    return running, alice


async def program(url: str, name: str, key: str, actions=ECHO) -> GameClient:
    p = await GameClient.connect(url)
    p.npc_login = await p.request("NpcLogin", Name=name, Key=key)
    await p.request("Declare", Actions=actions)
    return p


async def player(url: str, name: str) -> GameClient:
    c = await GameClient.connect(url)
    await c.register(name, "pw-secret")
    return c


async def war(c: GameClient) -> int:
    return (await c.request("Balance"))["Balances"]["wAR"]


async def next_request(p: GameClient, kind: str = "NpcRequest") -> dict:
    return await p.wait_for(lambda e: e["Action"] == kind, timeout=10, past=True)


async def test_a_program_joins_a_room_serves_a_paid_action_and_is_paid(tmp_path):
    srv = await serving(tmp_path)
    try:
        world = srv.runtime.world
        x, y = spot(world)
        alice = await player(srv.url, "alice")
        issued = await admin(srv.url, srv.runtime.admin_key, "AdminNpcAdd", Name="Echo", Room="plaza", X=x, Y=y)
        assert issued["Key"].startswith("npc-") and (issued["X"], issued["Y"]) == (x, y)
        echo = await program(srv.url, "Echo", issued["Key"])
        joined = await alice.wait_for(lambda e: e["Action"] == "NpcJoined", timeout=5, past=True)
        assert joined["Npc"]["Name"] == "Echo" and [a["Name"] for a in joined["Npc"]["Actions"]] == \
            ["echo", "free", "priced"]
        bob = await player(srv.url, "bob")  # arriving later: Echo is in RoomJoined like any NPC
        roomjoined = await bob.wait_for(lambda e: e["Action"] == "RoomJoined", timeout=5, past=True)
        npcs = {n["Id"]: n for n in roomjoined["Npcs"]}
        assert npcs["echo"]["Kind"] == "program" and npcs["echo"]["Actions"][0]["Price"]["Amount"] == 2 * UNIT
        with pytest.raises(ServerError) as no:
            await alice.request("Use", Npc="echo", Name="echo", Fields={"words": "hi"})
        assert no.value.code == "TOO_FAR"
        await near_npc(alice, world, (x, y), world.rules.near_radius)
        before = await war(alice)
        sent = await alice.request("Use", Npc="Echo", Name="echo", Fields={"words": "  hi   there "})
        assert sent["Price"] == 2 * UNIT and sent["Token"] == "wAR"
        assert await war(alice) == before - 2 * UNIT  # held while Echo thinks
        asked = await next_request(echo)
        assert asked["Player"] == "alice" and asked["Fields"] == {"words": "hi there", "times": 1}
        done = await echo.request("Answer", RequestId=asked["RequestId"], Text="hi there, alice", Data={"n": 1})
        assert done["Paid"] == 2 * UNIT
        answer = await alice.wait_for(lambda e: e["Action"] == "NpcAnswer", timeout=5, past=True)
        assert (answer["Text"], answer["Paid"], answer["Data"]) == ("hi there, alice", 2 * UNIT, {"n": 1})
        assert (await echo.request("Funds"))["Balance"] == 2 * UNIT
        await echo.request("Announce", Text="thanks, alice!")
        line = await alice.wait_for(lambda e: e["Action"] == "ChatLine" and e.get("Npc") == "echo", timeout=5,
                                    past=True)
        assert line["From"] == "Echo" and line["Text"] == "thanks, alice!"
        await echo.request("Tell", To="ALICE", Text="a secret")
        told = await alice.wait_for(lambda e: e["Action"] == "Whisper" and e.get("Npc") == "echo", timeout=5,
                                    past=True)
        assert told["From"] == "Echo" and told["Text"] == "a secret"
        paid = await echo.request("Pay", To="alice", Quantity=UNIT, Key="gift-1")
        again = await echo.request("Pay", To="alice", Quantity=UNIT, Key="gift-1")  # a retry pays once
        assert paid["Balance"] == again["Balance"] == UNIT
        assert await war(alice) == before - UNIT
        # an error from the program: refunded
        await alice.request("Use", Npc="echo", Name="echo", Fields={"words": "fail"})
        asked = await echo.wait_for(lambda e: e["Action"] == "NpcRequest" and e["Fields"]["words"] == "fail",
                                    timeout=5, past=True)
        await echo.request("Answer", RequestId=asked["RequestId"], Error="not today")
        failed = await alice.wait_for(lambda e: e["Action"] == "NpcFailed", timeout=5, past=True)
        assert failed["Code"] == "NPC_ERROR" and "not today" in failed["Message"] and failed["Refunded"] == 2 * UNIT
        assert await war(alice) == before - UNIT
        # a quoted price: asked, then used within MaxPrice
        ask = asyncio.ensure_future(alice.request("AskPrice", Npc="echo", Name="priced", Fields={"n": 3}))
        quote = await next_request(echo, "NpcQuoteRequest")
        await echo.request("Price", RequestId=quote["RequestId"], Amount=3 * UNIT)
        assert (await ask)["Price"] == 3 * UNIT
        use = asyncio.ensure_future(alice.request("Use", Npc="echo", Name="priced", Fields={"n": 3},
                                                  MaxPrice=2 * UNIT))
        quote = await echo.wait_for(lambda e: e["Action"] == "NpcQuoteRequest" and e["RequestId"] !=
                                    quote["RequestId"], timeout=5)
        await echo.request("Price", RequestId=quote["RequestId"], Amount=3 * UNIT)
        with pytest.raises(ServerError) as no:
            await use
        assert no.value.code == "PRICE_ABOVE_MAX" and no.value.frame["Price"] == 3 * UNIT
        assert await war(alice) == before - UNIT
        await bob.close()
        await echo.close()
        left = await alice.wait_for(lambda e: e["Action"] == "NpcLeft", timeout=5, past=True)
        assert left["Npc"] == "echo"
        with pytest.raises(ServerError) as no:
            await alice.request("Use", Npc="echo", Name="echo", Fields={"words": "hi"})
        assert no.value.code == "NO_NPC_HERE"
    finally:
        await srv.stop()
    replay = run_cli("replay", "--db", f"sqlite:///{tmp_path / 'p.db'}")
    assert replay.returncode == 0, replay.stdout + replay.stderr


async def test_what_players_and_programs_may_not_do_is_refused_with_a_clear_error(tmp_path):
    srv = await serving(tmp_path, "max_pending = 2\nanswer_timeout_s = 30")
    try:
        world, key = srv.runtime.world, srv.runtime.admin_key
        x, y = spot(world)
        issued = await admin(srv.url, key, "AdminNpcAdd", Name="Echo", Room="plaza", X=x, Y=y)
        for bad, code in [({"Name": "alice", "Room": "nowhere", "X": x, "Y": y}, "BAD_REQUEST"),
                          ({"Name": "alice", "Room": "plaza", "X": 0, "Y": 0}, "BAD_REQUEST"),  # a wall
                          ({"Name": "joker", "Room": "plaza", "X": x, "Y": y}, "BAD_NAME")]:
            with pytest.raises(ServerError) as no:
                await admin(srv.url, key, "AdminNpcAdd", **bad)
            assert no.value.code == code, bad
        with pytest.raises(ServerError) as no:
            await player(srv.url, "echo")  # the NPC's name is taken
        assert no.value.code == "NAME_TAKEN"
        wrong = await GameClient.connect(srv.url)
        with pytest.raises(ServerError) as no:
            await wrong.request("NpcLogin", Name="Echo", Key="npc-guess")
        assert no.value.code == "BAD_CREDENTIALS"
        p = await GameClient.connect(srv.url)
        await p.request("NpcLogin", Name="Echo", Key=issued["Key"])
        for actions, says in [([], "1-8 actions"),
                              ([{"Name": "Bad Name"}], "Name is"),
                              ([{"Name": "a", "Fields": {"n": {"type": "float"}}}], "type is"),
                              ([{"Name": "a", "Fields": {"n": {"type": "integer", "minimum": 5, "maximum": 1}}}],
                               "above maximum"),
                              ([{"Name": "a", "Fields": {"s": {"type": "string", "maxLength": 10**6}}}], "maxLength"),
                              ([{"Name": "a", "Fields": {"s": {"type": "string", "pattern": ".*"}}}], "pattern"),
                              ([{"Name": "a", "Price": {"Kind": "fixed", "Amount": -1}}], "Amount"),
                              ([{"Name": "a", "Price": {"Kind": "fixed", "Amount": 1, "Token": "BTC"}}], "Token"),
                              ([{"Name": "a"}, {"Name": "a"}], "twice")]:
            with pytest.raises(ServerError) as no:
                await p.request("Declare", Actions=actions)
            assert no.value.code == "BAD_DECLARATION" and says in no.value.frame["Message"], actions
        with pytest.raises(ServerError) as no:
            await p.request("Announce", Text="not yet declared")
        assert no.value.code == "BAD_REQUEST"
        await p.request("Declare", Actions=ECHO)
        alice = await player(srv.url, "alice")
        await near_npc(alice, world, (x, y), world.rules.near_radius)
        before = await war(alice)
        # a program is not a player: it cannot chat, walk, whisper as one, log out or trade
        for action, fields in [("Chat", {"Text": "I am alice"}), ("Move", {"Dir": "N"}),
                               ("Whisper", {"To": "alice", "Text": "hi"}), ("Transfer", {"Recipient": "alice",
                                                                                         "Quantity": 1}),
                               ("PlaceOrder", {"Side": "buy", "Price": 10**11, "Quantity": 10**10}),
                               ("Login", {"Name": "alice", "Password": "pw-secret"})]:
            with pytest.raises(ServerError) as no:
                await p.request(action, **fields)
            assert no.value.code in ("FORBIDDEN", "ALREADY_LOGGED_IN"), action
        # ... nor reach anyone else's money: Pay comes from its own account, whatever it sends
        with pytest.raises(ServerError) as no:
            await p.request("Pay", To="alice", Quantity=UNIT, From="alice")
        assert no.value.code == "INSUFFICIENT_FUNDS"
        with pytest.raises(ServerError) as no:
            await p.request("Tell", To="alice", Text="psst")  # alice has asked it nothing
        assert no.value.code == "FORBIDDEN"
        with pytest.raises(ServerError) as no:
            await p.request("Answer", RequestId="made-up", Text="hello")
        assert no.value.code == "UNKNOWN_REQUEST"
        # a player's side: a program's requests, undeclared actions and fields outside the declaration
        with pytest.raises(ServerError) as no:
            await alice.request("Answer", RequestId="x", Text="y")
        assert no.value.code == "FORBIDDEN"
        for name, fields, code in [("juggle", {}, "UNKNOWN_ACTION"), ("echo", {}, "BAD_FIELDS"),
                                   ("echo", {"words": "x" * 11}, "BAD_FIELDS"),
                                   ("echo", {"words": "hi", "times": 4}, "BAD_FIELDS"),
                                   ("echo", {"words": "hi", "times": True}, "BAD_FIELDS"),
                                   ("echo", {"words": "hi", "extra": 1}, "BAD_FIELDS"),
                                   ("free", {"side": "edge"}, "BAD_FIELDS"),
                                   ("priced", {"n": 1}, "BAD_REQUEST")]:  # quoted: MaxPrice needed
            with pytest.raises(ServerError) as no:
                await alice.request("Use", Npc="echo", Name=name, Fields=fields)
            assert no.value.code == code, (name, fields)
        with pytest.raises(ServerError) as no:
            await alice.request("Use", Npc="echo", Name="echo", Fields={"words": "hi"}, MaxPrice=UNIT)
        assert no.value.code == "PRICE_ABOVE_MAX"
        with pytest.raises(ServerError) as no:  # one of the world's own NPCs, in this room: it declares nothing
            await alice.request("Use", Npc="tess", Name="trade", Fields={})
        assert no.value.code == "UNKNOWN_ACTION" and "TraderInfo" in no.value.frame["Message"]
        # bounded: two open requests at most
        await alice.request("Use", Npc="echo", Name="free", Fields={"side": "heads"})
        await alice.request("Use", Npc="echo", Name="free", Fields={"side": "tails"})
        with pytest.raises(ServerError) as no:
            await alice.request("Use", Npc="echo", Name="free", Fields={"side": "heads"})
        assert no.value.code == "BUSY"
        assert await war(alice) == before  # nothing was taken by any of it
        await p.close()
        await alice.close()
    finally:
        await srv.stop()


async def test_a_late_answer_is_refunded_and_ignored_and_a_dropped_program_refunds_all(tmp_path):
    srv = await serving(tmp_path, "answer_timeout_s = 1.5\ntell_window_minutes = 0")
    try:
        world, key = srv.runtime.world, srv.runtime.admin_key
        x, y = spot(world)
        issued = await admin(srv.url, key, "AdminNpcAdd", Name="Slow", Room="plaza", X=x, Y=y)
        slow = await program(srv.url, "Slow", issued["Key"])
        alice = await player(srv.url, "alice")
        await near_npc(alice, world, (x, y), world.rules.near_radius)
        before = await war(alice)
        await alice.request("Use", Npc="slow", Name="echo", Fields={"words": "late"})
        asked = await next_request(slow)
        cancelled = await slow.wait_for(lambda e: e["Action"] == "NpcCancelled", timeout=5, past=True)
        failed = await alice.wait_for(lambda e: e["Action"] == "NpcFailed", timeout=5, past=True)
        assert cancelled["RequestId"] == failed["RequestId"] == asked["RequestId"]
        assert failed["Code"] == "NPC_TIMEOUT" and failed["Refunded"] == 2 * UNIT
        with pytest.raises(ServerError) as no:
            await slow.request("Answer", RequestId=asked["RequestId"], Text="sorry I'm late")
        assert no.value.code == "UNKNOWN_REQUEST"
        assert await war(alice) == before and (await slow.request("Funds"))["Balance"] == 0
        assert not any(e["Action"] == "NpcAnswer" for e in alice.events)
        # the world's [npc_programs] set that timeout, and a Tell window of 0 minutes
        assert slow.npc_login["TimeoutMs"] == 1500 and slow.npc_login["MaxPending"] == 16
        with pytest.raises(ServerError) as no:
            await slow.request("Tell", To="alice", Text="sorry")
        assert no.value.code == "FORBIDDEN" and "in the last 0 minutes" in no.value.frame["Message"]
        # two open requests, then the program's connection drops: both refunded, it leaves
        for words in ("one", "two"):
            await alice.request("Use", Npc="slow", Name="echo", Fields={"words": words})
        assert await war(alice) == before - 4 * UNIT
        slow.ws.transport.abort()
        gone = [await alice.wait_for(lambda e: e["Action"] == "NpcFailed" and e["Code"] == "NPC_GONE", timeout=5,
                                     past=True)]
        gone.append(await alice.wait_for(lambda e: e["Action"] == "NpcFailed" and e["Code"] == "NPC_GONE" and
                                         e["RequestId"] != gone[0]["RequestId"], timeout=5, past=True))
        assert [g["Refunded"] for g in gone] == [2 * UNIT, 2 * UNIT]
        await alice.wait_for(lambda e: e["Action"] == "NpcLeft", timeout=5, past=True)
        assert await war(alice) == before
        # a second login with the same key takes over from the first
        first = await program(srv.url, "Slow", issued["Key"])
        second = await program(srv.url, "Slow", issued["Key"])
        assert await asyncio.wait_for(first.closed, 5) == 4000
        await second.request("Funds")
    finally:
        await srv.stop()


async def test_a_revoked_key_disconnects_its_program_and_logs_in_no_more(tmp_path):
    db = f"sqlite:///{tmp_path / 'r.db'}"
    server = ServerProcess(db, None, DEFAULT_WORLD, "--no-inference")
    try:
        x, y = spot(load_world(DEFAULT_WORLD))
        added = run_cli("admin", "npc", "add", "Lotto", "--room", "plaza", "--at", f"{x},{y}", "--url", server.url,
                        "--db", db)
        assert added.returncode == 0, added.stderr
        key = added.stdout.split()[-1]
        listed = run_cli("admin", "npc", "list", "--url", server.url, "--db", db)
        assert "Lotto" in listed.stdout and "plaza" in listed.stdout and "not connected" in listed.stdout
        p = await program(server.url, "Lotto", key)
        listed = run_cli("admin", "npc", "list", "--url", server.url, "--db", db)  # the operator sees it live
        assert "connected since" in listed.stdout and "echo, free, priced; 0 open, 0 answered" in listed.stdout
        revoked = run_cli("admin", "npc", "revoke", "Lotto", "--url", server.url, "--db", db)
        assert revoked.returncode == 0, revoked.stderr
        assert await asyncio.wait_for(p.closed, 5) == 4003
        again = await GameClient.connect(server.url)
        with pytest.raises(ServerError) as no:
            await again.request("NpcLogin", Name="Lotto", Key=key)
        assert no.value.code == "BAD_CREDENTIALS"
        assert "revoked" in run_cli("admin", "npc", "list", "--url", server.url, "--db", db).stdout
        bad = run_cli("admin", "npc", "add", "Lotto", "--room", "plaza", "--at", "x", "--url", server.url, "--db", db)
        assert bad.returncode == 2 and "--at is X,Y" in bad.stderr
    finally:
        server.stop()


async def test_a_server_killed_with_a_request_open_refunds_it_when_it_starts_again(tmp_path):
    db = f"sqlite:///{tmp_path / 'k.db'}"
    world = load_world(DEFAULT_WORLD)
    x, y = spot(world)
    server = ServerProcess(db, None, DEFAULT_WORLD, "--no-inference")
    try:
        key = (await admin(server.url, (tmp_path / "k.db.admin-key").read_text().strip(), "AdminNpcAdd",
                           Name="Echo", Room="plaza", X=x, Y=y))["Key"]
        echo = await program(server.url, "Echo", key)
        alice = await player(server.url, "alice")
        await near_npc(alice, world, (x, y), world.rules.near_radius)
        before = await war(alice)
        await alice.request("Use", Npc="echo", Name="echo", Fields={"words": "hold"})
        await next_request(echo)
        assert await war(alice) == before - 2 * UNIT
    finally:
        server.kill()  # SIGKILL: nothing is refunded on the way down
    server = ServerProcess(db, server.port, DEFAULT_WORLD, "--no-inference")
    try:
        alice = await GameClient.connect(server.url)
        await alice.login("alice", "pw-secret")
        assert await war(alice) == before
    finally:
        server.stop()
    replay = run_cli("replay", "--db", db)
    assert replay.returncode == 0, replay.stdout + replay.stderr


async def test_the_sdk_answers_quotes_and_requests_and_reconnects_after_a_drop(tmp_path):
    from client.npc_sdk import Npc, NpcError, Number, Stopped, action, quoted

    class Bulk(Npc):
        ready = 0

        @action(title="Hay bales", price=quoted(5, "wAR"), fields={"n": Number(1, 5, title="Bales")})
        async def bales(self, request, n):
            if n == 5:
                raise NpcError("out of hay")
            return f"{n} bales for {request.player}"

        def quote_bales(self, request, n):
            return n * UNIT

        async def on_ready(self):
            self.ready += 1

    srv = await serving(tmp_path)
    try:
        npc = Bulk()
        running, alice = await sdk_npc_and_alice(srv, npc, "Bulk")
        before = await war(alice)
        assert (await alice.request("AskPrice", Npc="bulk", Name="bales", Fields={"n": 2}))["Price"] == 2 * UNIT
        sent = await alice.request("Use", Npc="bulk", Name="bales", Fields={"n": 3}, MaxPrice=3 * UNIT)
        assert sent["Price"] == 3 * UNIT
        answer = await alice.wait_for(lambda e: e["Action"] == "NpcAnswer", timeout=10, past=True)
        assert answer["Text"] == "3 bales for alice" and answer["Paid"] == 3 * UNIT
        assert await war(alice) == before - 3 * UNIT
        await alice.request("Use", Npc="bulk", Name="bales", Fields={"n": 5}, MaxPrice=5 * UNIT)
        failed = await alice.wait_for(lambda e: e["Action"] == "NpcFailed", timeout=10, past=True)
        assert "out of hay" in failed["Message"] and failed["Refunded"] == 5 * UNIT
        assert await war(alice) == before - 3 * UNIT
        # the connection drops: the SDK logs in again by itself and the NPC is back
        npc.client.ws.transport.abort()
        await alice.wait_for(lambda e: e["Action"] == "NpcLeft", timeout=10, past=True)
        for _ in range(100):
            if npc.ready == 2:
                break
            await asyncio.sleep(0.05)
        assert npc.ready == 2
        assert (await alice.request("AskPrice", Npc="bulk", Name="bales", Fields={"n": 1}))["Price"] == UNIT
        # revoked: run ends for good
        await admin(srv.url, srv.runtime.admin_key, "AdminNpcRevoke", Name="Bulk")
        with pytest.raises(Stopped):
            await asyncio.wait_for(running, 10)
    finally:
        await srv.stop()
