"""Tess the Trader with the real default model over websockets: a cheerful plaza makes her buy, a gloomy one sell,
one player flooding "BUY!!!" moves her at most one step, without inference she never trades; every decision is
logged with a receipt that `llama-land verify` re-runs, and explained in one public line."""

import asyncio

from client.net import GameClient
from server.core.units import UNIT

from conftest import run_cli
from court import player, serve, world_copy

FAST_TESS = {"npcs/tess.toml": [("think_every_s = 20", "think_every_s = 1")]}


async def her_line(client: GameClient, after: int, timeout: float = 60) -> dict:
    return await client.wait_for(lambda e: e["Action"] == "ChatLine" and e.get("Npc") == "tess"
                                 and e["Seq"] > after, timeout=timeout)


def seq(client: GameClient) -> int:
    return max([e["Seq"] for e in client.events if e["Action"] == "ChatLine"], default=0)


async def test_a_cheerful_plaza_makes_her_buy_and_a_gloomy_one_sell(tmp_path, db_url):
    srv = await serve(world_copy(tmp_path, FAST_TESS), db_url)
    try:
        alice, bob = await player(srv, "alice"), await player(srv, "bob")
        info = await alice.request("TraderInfo")
        assert info["Npc"] == "tess" and info["War"] == 100 * UNIT and info["Llama"] == 500 * UNIT  # endowed
        start = seq(alice)
        await alice.chat("I love this sunny day, everything is wonderful!")
        await bob.chat("Wonderful news, the King granted my petition! We are so happy!")
        said = await her_line(alice, start + 1)
        assert said["Text"].startswith("Chat is") and "buying" in said["Text"], said["Text"]
        book = await alice.request("OrderBook")
        assert book["Bids"] and not book["Asks"]  # her bid rests at the start price (nobody sells yet)
        info = await alice.request("TraderInfo")
        buy = info["Decisions"][-1]
        assert buy["Side"] == "buy" and buy["Mood"] >= 4 and buy["Outcome"] == "placed" and buy["ReceiptId"]
        assert buy["Quantity"] <= 20 * UNIT and buy["Price"] == 100 * 10**9  # max_order, at 0.1 wAR
        verified = await asyncio.to_thread(run_cli, "verify", buy["ReceiptId"], "--db", db_url)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        await asyncio.sleep(1.1)  # think_every_s
        carol, dave = await player(srv, "carol"), await player(srv, "dave")
        start = seq(alice)
        await carol.chat("This is terrible, I lost everything and I am so sad.")
        await dave.chat("Everything is awful today, I hate it, I am worried.")
        said = await her_line(alice, start + 1)
        assert "selling" in said["Text"], said["Text"]
        sell = (await alice.request("TraderInfo"))["Decisions"][-1]
        assert sell["Side"] == "sell" and sell["Mood"] <= 2 and sell["Outcome"] == "placed"
    finally:
        await srv.stop()


async def test_one_player_flooding_moves_her_at_most_one_step(tmp_path, db_url):
    srv = await serve(world_copy(tmp_path, FAST_TESS), db_url)
    try:
        alice = await player(srv, "alice")
        for _ in range(12):
            await alice.chat("BUY!!! BUY!!! BUY!!!")
            await asyncio.sleep(0.2)
        await asyncio.sleep(2.0)
        info = await alice.request("TraderInfo")
        assert len(info["Decisions"]) <= 1  # her lines count once a minute: one line, below min_lines
        assert not (await alice.request("OrderBook"))["Bids"]
    finally:
        await srv.stop()


async def test_without_inference_she_listens_but_never_trades(tmp_path, db_url):
    srv = await serve(world_copy(tmp_path, FAST_TESS), db_url, inference=False)
    try:
        alice, bob = await player(srv, "alice"), await player(srv, "bob")
        await alice.chat("I love this sunny day!")
        await bob.chat("So happy, so happy!")
        await asyncio.sleep(1.0)
        assert (await alice.request("TraderInfo"))["Decisions"] == []
        assert (await alice.request("OrderBook"))["Bids"] == []
    finally:
        await srv.stop()
