"""The King's line: petitions that arrive faster than the committee can judge wait in a durable, logged backlog, in
order, told their place; a restart resumes them; and a scored vote's receipt explains itself under `verify`.
Real server, real websockets, the real default model, real SQLite."""

import asyncio
import json

from client.net import GameClient
from npcs.inference.engine import InferenceConfig
from npcs.inference.models import default_model_path
from server.app import Server
from server.core.db import InferenceReceipt
from server.world.reader import load_world

from conftest import FAST, run_cli
from court import UNIT, balances, books_balance, world_copy

IN_THE_HALL = {"world.toml": [('start_room = "plaza"', 'start_room = "fed-hall"')],
               "npcs/king.toml": [("reach = 6", "reach = 30")]}
PETITIONS = ["I mend the roof of the school after every storm; tiles are dear this year.",
             "Let us plant an orchard by the road so travellers can pick apples for free.",
             "I teach the young llamas of the pasture to swim in the pond, and need a rope.",
             "My choir would sing at the harvest if we had a drum; may the Fed buy one?",
             "I want to open a free tea stall for tired travellers by the grove.",
             "I carved benches for the elders of the plaza and need wood for three more.",
             "I would like a new hat, because the wind took mine.",
             "Please help me repair the well of the pasture so the herd can drink.",
             "I built a kite for the crias and want to hold a kite day on the hill."]


async def hall(tmp_path, db_url, queue_size=64) -> Server:
    config = InferenceConfig(str(default_model_path()), workers=1, threads=2, queue_size=queue_size)
    world = tmp_path / "world"
    srv = Server(load_world(world if world.is_dir() else world_copy(tmp_path, IN_THE_HALL)), db_url, "127.0.0.1", 0,
                 FAST, config)
    await srv.start()
    return srv


async def petitioners(srv: Server, n: int) -> list[GameClient]:
    out = []
    for i in range(n):
        client = await GameClient.connect(srv.url)
        await client.register(f"llama{i}", "pw-secret")
        out.append(client)
    return out


def outcome(client: GameClient, pid: str):
    return client.wait_for(lambda e: e["Action"] in ("Granted", "PetitionFailed") and e["PetitionId"] == pid,
                           timeout=120, past=True)


async def test_a_crowd_waits_in_line_in_order_and_nobody_is_turned_away(tmp_path, db_url):
    srv = await hall(tmp_path, db_url, queue_size=4)  # without the line, the crowd's votes would be QUEUE_FULL
    try:
        crowd = await petitioners(srv, len(PETITIONS))
        accepted = [await c.request("Petition", Text=t) for c, t in zip(crowd, PETITIONS)]
        assert all(a["Status"] == "judging" for a in accepted)
        results = [await outcome(c, a["PetitionId"]) for c, a in zip(crowd, accepted)]
        assert [r["Action"] for r in results] == ["Granted"] * len(PETITIONS), [r.get("Code") for r in results]
        for i, client in enumerate(crowd):  # told their place, which only ever moved up, then that judging began
            places = [e["Position"] for e in client.events if e["Action"] == "NpcThinking"]
            assert places[-1] == 0, places
            assert places[:-1] == sorted(places[:-1], reverse=True) and all(p <= i + 1 for p in places), places
        assert max(e["Position"] for e in crowd[-1].events if e["Action"] == "NpcThinking") >= 5
        order = [srv.runtime.fed.state.order.index(a["PetitionId"]) for a in accepted]
        assert order == sorted(order)
        books_balance(srv)
    finally:
        await srv.stop()


async def test_a_restart_resumes_the_line(tmp_path, db_url):
    srv = await hall(tmp_path, db_url)
    crowd = await petitioners(srv, 6)
    accepted = [await c.request("Petition", Text=t) for c, t in zip(crowd, PETITIONS)]
    await srv.stop()  # votes running or waiting: the petitions stay in the log's line, the offerings in escrow
    srv = await hall(tmp_path, db_url)
    try:
        for i, a in enumerate(accepted):
            client = await GameClient.connect(srv.url)
            await client.login(f"llama{i}", "pw-secret")
            for _ in range(600):
                mine = (await client.request("Petitions"))["Petitions"][0]
                if mine["Status"] != "judging":
                    break
                await asyncio.sleep(0.1)
            assert mine["PetitionId"] == a["PetitionId"] and mine["Status"] == "granted", mine
            assert len(mine["Votes"]) == 3
            assert await balances(client) == {"wAR": 9 * UNIT, "LLAMA": mine["Payout"]}
        books_balance(srv)
    finally:
        await srv.stop()
    replay = run_cli("replay", "--db", db_url)
    assert replay.returncode == 0, replay.stdout + replay.stderr


async def test_verify_rescores_a_vote_and_reports_its_margin(tmp_path, db_url):
    srv = await hall(tmp_path, db_url)
    try:
        (alice,) = await petitioners(srv, 1)
        a = await alice.request("Petition", Text=PETITIONS[0])
        verdict = await outcome(alice, a["PetitionId"])
        vote = verdict["Votes"][0]
        with srv.runtime.db.session() as session:
            receipt = session.get(InferenceReceipt, vote["ReceiptId"])
        scores = json.loads(receipt.scores)
        assert set(scores) == set("012345") and max(scores, key=scores.get) == str(vote["Grade"])
        assert json.loads(receipt.params)["n_prefix"] > 0  # evaluated as [saved prefix | rest]
    finally:
        await srv.stop()
    checked = run_cli("verify", vote["ReceiptId"], "--db", db_url, timeout=120)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"output token 0 ('{vote['Grade']}'): the top allowed choice, margin +" in checked.stdout
    assert "the logits moved by at most 0.0000" in checked.stdout
    # A receipt whose answer was changed (and its hash recomputed to hide it) is caught by the re-score.
    from npcs.inference.receipts import HASHED, receipt_hash
    from server.core.db import Database

    db = Database(db_url)
    with db.session() as session:
        forged = session.get(InferenceReceipt, vote["ReceiptId"])
        wrong = min(scores, key=scores.get)
        forged.output_text = "Rating: " + wrong
        forged.hash = receipt_hash({k: getattr(forged, k) for k in (*HASHED, "scores")})
        session.add(forged)
        session.commit()
    checked = run_cli("verify", vote["ReceiptId"], "--db", db_url, timeout=120)
    assert checked.returncode != 0 and f"NOT the top allowed choice" in checked.stdout, checked.stdout


async def test_a_committee_that_generates_its_votes_still_judges(tmp_path, db_url):
    """Designers' grammar templates keep working: votes generated as "grade=N" (fed-vote@1) end at any of the
    model's end-of-generation tokens, are judged like scored ones (without an expected grade), and re-run exactly."""
    edits = {**IN_THE_HALL, **{f"npcs/{m}.toml": [('"fed-score@1"', '"fed-vote@1"')] for m in ("hawk", "dove", "chair")}}
    config = InferenceConfig(str(default_model_path()), workers=1, threads=2)
    srv = Server(load_world(world_copy(tmp_path, edits)), db_url, "127.0.0.1", 0, FAST, config)
    await srv.start()
    try:
        (alice,) = await petitioners(srv, 1)
        a = await alice.request("Petition", Text=PETITIONS[1])
        verdict = await outcome(alice, a["PetitionId"])
        assert verdict["Action"] == "Granted", verdict
        assert len(verdict["Votes"]) == 3 and all("Expected" not in v for v in verdict["Votes"])
    finally:
        await srv.stop()
    checked = run_cli("verify", verdict["Votes"][0]["ReceiptId"], "--db", db_url, timeout=120)
    assert checked.returncode == 0 and "match: the re-run produced the same" in checked.stdout, checked.stdout
