"""The two example NPC programs (npcs/programs/), each run as a process of its own against the default world over
a real websocket: the lottery llama sells tickets, draws by commit-reveal (checked here from the revealed seed) and
pays the pot to the winner; killed mid-request, its player is refunded. The price-feed llama tells the market's
last price and 24 h change, for free."""

import asyncio
import subprocess
import sys

import pytest

from client.net import GameClient, ServerError
from npcs.programs.lottery import check_draw, commitment_of, winner_index
from server.core.units import UNIT

from conftest import ROOT, near_npc
from court import spot
from test_programs import admin, player, serving, war


def start(module: str, url: str, name: str, key: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", module, "--url", url, "--name", name, "--key", key, *extra],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


async def arrived(c: GameClient, npc_id: str) -> dict:
    ev = await c.wait_for(lambda e: e["Action"] == "NpcJoined" and e["Npc"]["Id"] == npc_id, timeout=20, past=True)
    return ev["Npc"]


async def use(c: GameClient, npc: str, name: str, **fields) -> dict:
    sent = await c.request("Use", Npc=npc, Name=name, Fields=fields)
    return await c.wait_for(lambda e: e["Action"] in ("NpcAnswer", "NpcFailed") and
                            e["RequestId"] == sent["RequestId"], timeout=15, past=True)


async def test_the_lottery_llama_sells_tickets_draws_checkably_and_pays_the_winner(tmp_path):
    srv = await serving(tmp_path)
    proc = None
    try:
        world = srv.runtime.world
        x, y = spot(world)
        players = [await player(srv.url, n) for n in ("alice", "bob", "carol")]
        key = (await admin(srv.url, srv.runtime.admin_key, "AdminNpcAdd", Name="Lotto", Room="plaza", X=x,
                           Y=y))["Key"]
        proc = start("npcs.programs.lottery", srv.url, "Lotto", key, "--state", str(tmp_path / "lotto.json"),
                     "--tickets", "3")
        npc = await arrived(players[0], "lotto")
        ticket = next(a for a in npc["Actions"] if a["Name"] == "ticket")
        assert ticket["Price"] == {"Kind": "fixed", "Amount": UNIT, "Token": "wAR"}
        for p in players:
            await near_npc(p, world, (x, y), world.rules.near_radius)
        before = {p.name: await war(p) for p in players}
        pot = await use(players[0], "lotto", "pot")
        commitment = pot["Data"]["Commitment"]  # published before any ticket is sold
        assert pot["Data"]["Tickets"] == 0 and pot["Paid"] == 0
        with pytest.raises(ServerError) as no:
            await players[0].request("Use", Npc="lotto", Name="ticket", Fields={"wish": "x" * 41})
        assert no.value.code == "BAD_FIELDS"
        for p, wish in zip(players, ("rain", "", "sun")):
            got = await use(p, "lotto", "ticket", wish=wish)
            assert got["Action"] == "NpcAnswer" and got["Paid"] == UNIT, got
            await p.wait_for(lambda e: e["Action"] == "Whisper" and e.get("Npc") == "lotto", timeout=10, past=True)
        won = await players[0].wait_for(lambda e: e["Action"] == "ChatLine" and e.get("Npc") == "lotto"
                                        and "drawn" in e["Text"], timeout=15, past=True)
        draw = (await use(players[1], "lotto", "last_draw"))["Data"]
        assert draw["commitment"] == commitment and commitment_of(draw["seed"]) == commitment
        assert [t.split(":")[1] for t in draw["tickets"]] == ["alice", "bob", "carol"]
        winner = draw["tickets"][winner_index(draw["seed"], draw["tickets"])].split(":")[1]
        assert winner == draw["winner"] and winner in won["Text"] and check_draw(commitment, draw["seed"],
                                                                                 draw["tickets"], winner)
        assert not check_draw(commitment, "0" * 64, draw["tickets"], winner)  # another seed is caught
        for p in players:  # the pot (three tickets) went to the winner; the llama keeps nothing
            expected = before[p.name] - UNIT + (3 * UNIT if p.name == winner else 0)
            for _ in range(100):
                if await war(p) == expected:
                    break
                await asyncio.sleep(0.05)
            assert await war(p) == expected, p.name
        balances = (await players[0].request("Balances", Token="wAR"))["Balances"]
        assert balances.get("Lotto", 0) == 0
        nxt = await use(players[0], "lotto", "pot")
        assert nxt["Data"]["Round"] == 2 and nxt["Data"]["Commitment"] != commitment
        # killed while a ticket is being sold: the buyer gets their wAR back and the llama leaves
        proc.send_signal(19)  # SIGSTOP: it takes the request and never answers ...
        alice = players[0]
        have = await war(alice)
        sent = await alice.request("Use", Npc="lotto", Name="ticket", Fields={})
        assert await war(alice) == have - UNIT
        proc.kill()  # ... then SIGKILL mid-request
        failed = await alice.wait_for(lambda e: e["Action"] == "NpcFailed" and e["RequestId"] == sent["RequestId"],
                                      timeout=15, past=True)
        assert failed["Code"] in ("NPC_GONE", "NPC_TIMEOUT") and failed["Refunded"] == UNIT
        await alice.wait_for(lambda e: e["Action"] == "NpcLeft" and e["Npc"] == "lotto", timeout=15, past=True)
        assert await war(alice) == have
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        await srv.stop()


async def test_the_price_feed_llama_tells_the_last_price_and_the_day_s_change(tmp_path):
    srv = await serving(tmp_path)
    proc = None
    try:
        world = srv.runtime.world
        x, y = spot(world)
        alice, bob = await player(srv.url, "alice"), await player(srv.url, "bob")
        key = (await admin(srv.url, srv.runtime.admin_key, "AdminNpcAdd", Name="Ticker", Room="plaza", X=x,
                           Y=y))["Key"]
        proc = start("npcs.programs.price_feed", srv.url, "Ticker", key)
        npc = await arrived(alice, "ticker")
        assert [a["Name"] for a in npc["Actions"]] == ["price"] and npc["Actions"][0]["Price"] == {"Kind": "none"}
        await near_npc(alice, world, (x, y), world.rules.near_radius)
        quiet = await use(alice, "ticker", "price")
        assert quiet["Paid"] == 0 and "not traded" in quiet["Text"] and quiet["Data"]["Last"] is None
        # a trade: bob gets 2 LLAMA from Tess's pool (the operator's withdraw), sells 1 at 0.2 wAR to alice
        await admin(srv.url, srv.runtime.admin_key, "AdminWithdraw", From="tess", To="bob", Amount=2 * UNIT,
                    Token="LLAMA")
        await bob.request("PlaceOrder", Side="sell", Price=UNIT // 5, Quantity=UNIT)
        await alice.request("PlaceOrder", Side="buy", Price=UNIT // 5, Quantity=UNIT)
        info = await alice.request("MarketInfo")
        for _ in range(50):
            if info["Last"] is not None:
                break
            await asyncio.sleep(0.1)
            info = await alice.request("MarketInfo")
        told = await use(alice, "ticker", "price")
        assert told["Data"]["Last"] == info["Last"] == UNIT // 5 and told["Data"]["Change24h"] == info["Change24h"]
        assert "0.2 wAR" in told["Text"] and "24 h" in told["Text"] and told["Paid"] == 0
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        await srv.stop()
