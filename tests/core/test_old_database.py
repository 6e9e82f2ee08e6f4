"""A database written before the architecture pass (tests/fixtures/before-architecture.db: the default world with
the real model, two players who chatted, whispered, paid each other, petitioned and played High/Low, written by
commit 07347f7) still replays to the digests that code computed, its snapshots still check, its receipts still
verify, and today's server serves on it."""

import asyncio
import json
import shutil
import urllib.request

from sqlmodel import select

from server.core.db import Database, InferenceReceipt
from server.core.log import replay_all
from server.reducers import state_for

from conftest import ROOT, run_cli
from court import serve, world_copy

FIXTURE = ROOT / "tests" / "fixtures" / "before-architecture.db"
DIGESTS = json.loads((ROOT / "tests" / "fixtures" / "before-architecture.json").read_text())


def copy(tmp_path):
    target = tmp_path / "old.db"
    shutil.copy(FIXTURE, target)
    return f"sqlite:///{target}"


def test_the_old_log_replays_to_the_old_digests_and_its_snapshots_check(tmp_path):
    results = replay_all(Database(copy(tmp_path)), state_for)
    assert {r.actor: {"slot": r.slot, "digest": r.digest} for r in results} == DIGESTS
    assert all(r.snapshot_ok for r in results), [r.actor for r in results if not r.snapshot_ok]
    replayed = run_cli("replay", "--db", copy(tmp_path))
    assert replayed.returncode == 0 and "SNAPSHOT MISMATCH" not in replayed.stdout


def test_an_old_receipt_still_verifies(tmp_path):
    url = copy(tmp_path)
    db = Database(url)
    with db.session() as session:
        receipt = session.exec(select(InferenceReceipt).order_by(InferenceReceipt.id)).first()
    assert receipt is not None
    verified = run_cli("verify", receipt.id, "--db", url, timeout=120)
    assert verified.returncode == 0, verified.stdout + verified.stderr


async def test_todays_server_opens_the_old_world_and_its_state_matches_replay(tmp_path):
    url = copy(tmp_path)
    srv = await serve(world_copy(tmp_path), url, inference=False)
    try:
        def state() -> dict:
            with urllib.request.urlopen(f"http://127.0.0.1:{srv.port}/state", timeout=5) as resp:
                return json.load(resp)

        live = await asyncio.to_thread(state)  # off the loop: the server answers on it
        # Today's world has one NPC more than the old one (Tess the Trader): the Fed endows her, once; nothing
        # else touches LLAMA on opening.
        assert live["token:LLAMA"]["slot"] == DIGESTS["token:LLAMA"]["slot"] + 1
        assert srv.runtime.llama.state.balance("tess") == 500 * 10**12
        assert live["fed"]["slot"] >= DIGESTS["fed"]["slot"]
    finally:
        await srv.stop()
    replayed = {r.actor: {"slot": r.slot, "digest": r.digest} for r in
                await asyncio.to_thread(replay_all, Database(url), state_for)}
    assert {k: v for k, v in live.items()} == {k: replayed[k] for k in live}
