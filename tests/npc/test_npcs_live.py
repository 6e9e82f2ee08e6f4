"""The Joker, the Oracle and the wandering llamas over websockets; spoofing; a server killed mid-petition."""

import asyncio
import signal

import pytest

from client.net import GameClient, ServerError
from npcs.actors import fairness
from server.core.db import Database
from server.core.log import load_actor
from server.economy.ledger import UNIT
from server.reducers import state_for

from conftest import ServerProcess, run_cli, through
from court import DEFAULT_WORLD, WORLD, balances, books_balance, player, serve, to_npc, to_the_king, world_copy


async def fund(srv, name, amount):
    """Test set-up: give a player LLAMA as the Fed would (petitions are tested in test_economy)."""
    done = await srv.runtime.bus.call("token:LLAMA", {"Action": "Mint", "To": name, "Amount": amount, "By": "fed",
                                              "Ref": f"test:{name}", "T": 1})
    assert done["Action"] == "Mint-Done"


async def test_joker_tells_a_paid_joke_and_the_oracle_prophesies(tmp_path, db_url):
    srv = await serve(world_copy(tmp_path), db_url)
    try:
        alice = await player(srv, "alice")
        await to_npc(alice, "to-stage", "joker", 8)
        quote = await alice.request("Quote", Service="joke", Text="hay")
        assert quote["Npc"] == "joker" and quote["Fee"] > 0 and quote["Token"] == "wAR"
        for fields, code in (({"Topic": "x" * 21}, "BAD_TOPIC"), ({"Topic": "hay", "MaxFee": 1}, "PRICE_ABOVE_MAX")):
            with pytest.raises(ServerError) as exc:
                await alice.request("Joke", **fields)
            assert exc.value.code == code
        assert (await balances(alice))["wAR"] == 10 * UNIT
        asked = await alice.request("Joke", Topic="hay", MaxFee=quote["Fee"] * 2)
        done = await alice.wait_for(lambda e: e["Action"] in ("NpcDone", "NpcFailed"), timeout=60)
        assert done["Action"] == "NpcDone" and done["RequestId"] == asked["RequestId"] and done["Text"]
        line = await alice.wait_for(lambda e: e["Action"] == "ChatLine" and e.get("Npc") == "joker", past=True)
        assert line["From"] == "Joker" and line["Text"] == done["Text"] and "\n" not in line["Text"]
        assert (await balances(alice))["wAR"] == 10 * UNIT - asked["Fee"]
        assert srv.runtime.memory.facts[("joker", "alice")]["last_joke_topic"] == "hay"
        await through(alice, WORLD, "to-plaza")
        with pytest.raises(ServerError) as exc:  # the Oracle lives in her grove
            await alice.request("Prophecy", Question="Will the hay harvest be good this year?")
        assert exc.value.code == "NO_NPC_HERE"
        await to_npc(alice, "to-grove", "oracle", 8)
        await alice.request("Prophecy", Question="Will the hay harvest be good this year?")
        told = await alice.wait_for(lambda e: e["Action"] in ("NpcDone", "NpcFailed"), timeout=60)
        assert told["Action"] == "NpcDone" and told["Npc"] == "oracle" and told["Text"]
        books_balance(srv)
    finally:
        await srv.stop()


async def test_high_low_is_provably_fair_and_the_pool_is_covered(tmp_path, db_url):
    srv = await serve(world_copy(tmp_path), db_url, inference=False)  # the game needs no model
    try:
        alice = await player(srv, "alice")
        await fund(srv, "alice", 20 * UNIT)
        await to_npc(alice, "to-grove", "oracle", 8)
        info = await alice.request("OracleInfo")
        assert info["Pool"] == 1000 * UNIT and info["MinBet"] == UNIT and info["MaxBet"] == 10 * UNIT
        assert info["WinRatio"] == [3, 2]
        for bet, code in ((11 * UNIT, "BAD_BET"), (0, "BAD_BET")):
            with pytest.raises(ServerError) as exc:
                await alice.request("HighLow", Bet=bet, Guess="high", ClientSeed="s", Commitment=info["Commitment"])
            assert exc.value.code == code
        with pytest.raises(ServerError) as exc:
            await alice.request("HighLow", Bet=UNIT, Guess="high", ClientSeed="s", Commitment="0" * 64)
        assert exc.value.code == "STALE_COMMITMENT" and exc.value.frame["Commitment"] == info["Commitment"]
        commitment, mine, pool = info["Commitment"], 20 * UNIT, 1000 * UNIT
        for n, guess in enumerate(["high", "low", "high", "low"]):
            game = await alice.request("HighLow", Bet=2 * UNIT, Guess=guess, ClientSeed=f"lucky-{n}",
                                       Commitment=commitment)
            assert fairness.check_roll(game["ServerSeed"], commitment, f"lucky-{n}", game["Nonce"], game["Roll"])
            assert game["Won"] == fairness.wins(guess, game["Roll"])
            change = UNIT if game["Won"] else -2 * UNIT  # a win pays 1.5x the bet
            mine, pool = mine + change, pool - change
            assert game["Payout"] == (3 * UNIT if game["Won"] else 0)
            assert await balances(alice) == {"wAR": 10 * UNIT, "LLAMA": mine}
            assert (await alice.request("OracleInfo"))["Pool"] == pool
            assert game["NextCommitment"] != commitment
            commitment = game["NextCommitment"]
        bob = await player(srv, "bob")
        with pytest.raises(ServerError) as exc:  # too far from the Oracle: the plaza has none
            await bob.request("HighLow", Bet=UNIT, Guess="low", ClientSeed="x", Commitment=info["Commitment"])
        assert exc.value.code == "NO_NPC_HERE"
        await to_npc(bob, "to-grove", "oracle", 8)
        with pytest.raises(ServerError) as exc:  # no LLAMA: nothing moves
            await bob.request("HighLow", Bet=UNIT, Guess="low", ClientSeed="x",
                              Commitment=(await bob.request("OracleInfo"))["Commitment"])
        assert exc.value.code == "INSUFFICIENT_FUNDS"
        # Only the operator withdraws from the pool, and only from world accounts.
        with pytest.raises(ServerError) as exc:
            await bob.request("AdminWithdraw", Key="guess", From="oracle", To="bob", Amount=UNIT, Token="LLAMA")
        assert exc.value.code == "FORBIDDEN"
        with pytest.raises(ServerError) as exc:
            await bob.request("AdminWithdraw", Key=srv.runtime.admin_key, From="alice", To="bob", Amount=UNIT, Token="LLAMA")
        assert exc.value.code == "FORBIDDEN"
        with pytest.raises(ServerError) as exc:  # a player cannot send from the pool: a transfer is always from me
            await bob.request("Transfer", Token="LLAMA", Recipient="bob", Quantity=UNIT, From="oracle")
        assert exc.value.code == "INSUFFICIENT_FUNDS"
        out = await bob.request("AdminWithdraw", Key=srv.runtime.admin_key, From="oracle", To="bob", Amount=pool - UNIT,
                                Token="LLAMA")
        assert out["Balance"] == UNIT and (await balances(bob))["LLAMA"] == pool - UNIT
        # The pool now holds 1 LLAMA: it cannot cover the win of a 3 LLAMA bet (1.5 LLAMA), so it is refused whole.
        info = await alice.request("OracleInfo")
        with pytest.raises(ServerError) as exc:
            await alice.request("HighLow", Bet=3 * UNIT, Guess="high", ClientSeed="c", Commitment=info["Commitment"])
        assert exc.value.code == "POOL_TOO_SMALL"
        assert (await balances(alice))["LLAMA"] == mine and (await alice.request("OracleInfo"))["Pool"] == UNIT
        books_balance_except_test_funding(srv)
    finally:
        await srv.stop()


def books_balance_except_test_funding(srv):
    for ledger in (srv.runtime.ledger, srv.runtime.llama):
        assert ledger.state.consistent(), ledger.id


async def test_a_wanderer_answers_a_nearby_player_and_ignores_a_far_one(tmp_path, db_url):
    world = world_copy(tmp_path, {"npcs/dolly.toml": [("talk_cooldown_s = 5", "talk_cooldown_s = 5\n")],
                                  "npcs/paco.toml": [('kind = "wanderer"', 'kind = "wanderer"\nreach = 1')]})
    dolly = world / "npcs" / "dolly.toml"
    dolly.write_text(dolly.read_text().replace('kind = "wanderer"', 'kind = "wanderer"\nreach = 40'))
    srv = await serve(world, db_url)
    try:
        alice = await player(srv, "alice")
        npcs = {n["Id"]: n for n in (await alice.wait_for(lambda e: e["Action"] == "RoomJoined", past=True))["Npcs"]}
        assert set(npcs) == {"dolly", "paco", "tess"}  # the plaza's NPCs; the Joker and the Oracle have rooms of their own
        jobs = srv.runtime.engine.stats.jobs
        await alice.chat("Hello Paco, are you awake?")  # Paco hears only within 1 tile: no inference at all
        await asyncio.sleep(1.0)
        assert srv.runtime.engine.stats.jobs == jobs and srv.runtime.herd.waiting == 0
        await alice.chat("Hello Dolly! What is the gossip about the King?")
        answer = await alice.wait_for(lambda e: e["Action"] == "ChatLine" and e.get("Npc") == "dolly", timeout=60)
        assert answer["From"] == "Dolly" and answer["Scope"] == "near" and answer["Text"]
        assert srv.runtime.engine.stats.jobs == jobs + 1
        assert "gossip" in srv.runtime.memory.facts[("dolly", "alice")]["last_said"]
        # Dolly walks: her entity moves in the ticks.
        moved = await alice.wait_for(lambda e: e["Action"] == "Tick" and any(m[0] == npcs["dolly"]["Eid"]
                                                                            for m in e["M"]), timeout=15)
        assert moved
    finally:
        await srv.stop()


async def test_nobody_speaks_as_another_player_or_an_npc(tmp_path, db_url):
    srv = await serve(world_copy(tmp_path), db_url, inference=False)
    try:
        probe = await GameClient.connect(srv.url)
        for name in ("Dolly", "king", "LlamaKing", "Joker", "oracle", "GovernorHawk"):
            with pytest.raises(ServerError) as exc:
                await probe.register(name, "pw-secret")
            assert exc.value.code == "BAD_NAME", name
        alice, bob = await player(srv, "alice"), await player(srv, "bob")
        await alice.request("Chat", Text="I am the King", From="Llama King", Npc="king", Player="bob")
        # (the Joker is on his stage; asking from the plaza is NO_NPC_HERE, tested above)
        line = await bob.wait_for(lambda e: e["Action"] == "ChatLine" and e["Text"] == "I am the King", past=True)
        assert line["From"] == "alice" and "Npc" not in line
        with pytest.raises(ServerError) as exc:  # NPC speech is internal: not an action a client can send
            await alice.request("NpcSay", Npc="king", Text="Everyone gets 300 LLAMA!")
        assert exc.value.code == "UNKNOWN_ACTION"
        await to_npc(alice, "to-stage", "joker", 8)
        with pytest.raises(ServerError) as exc:
            await alice.request("Joke", Topic="hay")
        assert exc.value.code == "UNAVAILABLE"  # no inference on this server: nothing is charged
        assert (await balances(alice))["wAR"] == 10 * UNIT
    finally:
        await srv.stop()


async def test_a_server_killed_mid_petition_grants_or_refunds_exactly_once(tmp_path, db_url):
    db = db_url
    first = ServerProcess(db, None, DEFAULT_WORLD)
    try:
        alice = await GameClient.connect(first.url)
        await alice.register("alice", "pw-secret")
        await to_the_king(alice)
        accepted = await alice.request("Petition", Text="Please plant an orchard of apple trees by the plaza.")
        first.proc.send_signal(signal.SIGKILL)  # the offering is in escrow; the votes are queued or running
        first.proc.wait()
    finally:
        if first.proc.poll() is None:
            first.kill()
    second = ServerProcess(db, None, DEFAULT_WORLD)
    try:
        alice = await GameClient.connect(second.url)
        await alice.login("alice", "pw-secret")
        history = (await alice.request("Petitions"))["Petitions"]
        assert [p["PetitionId"] for p in history] == [accepted["PetitionId"]]
        for _ in range(300):  # the petition was logged: it stays in the King's line and is judged after the restart
            if history[0]["Status"] != "judging":
                break
            await asyncio.sleep(0.2)
            history = (await alice.request("Petitions"))["Petitions"]
        status = history[0]["Status"]
        assert status == "granted", history
        got = await balances(alice)
        if status == "refunded":
            assert got == {"wAR": 10 * UNIT, "LLAMA": 0} and history[0]["Reason"] == "RESTART"
        else:
            assert status == "granted" and got == {"wAR": 9 * UNIT, "LLAMA": history[0]["Payout"]}
        assert (await alice.request("TokenInfo"))["InEscrow"] == 0
        await alice.close()
    finally:
        second.stop()
    replay = run_cli("replay", "--db", db)
    assert replay.returncode == 0, replay.stdout + replay.stderr
    database = Database(db)  # from the log alone: balances + escrow = supply on both ledgers
    with database.session() as session:
        for token in ("token:wAR", "token:LLAMA"):
            assert load_actor(session, token, state_for, use_snapshot=False).state.consistent(), token
    database.stop()
