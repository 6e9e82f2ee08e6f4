"""The server with inference on: the herd over websockets, metrics, and start-up errors."""

import asyncio
import shutil
import urllib.request

import pytest

from client.net import GameClient, ServerError
from npcs.inference.engine import InferenceConfig
from npcs.inference.models import DEFAULT_MODEL, default_model_path
from server.app import Server
from server.world.reader import load_world

from conftest import FAST, ROOT, TEST_WORLD, run_cli


@pytest.fixture
async def live(db_url):
    srv = Server(load_world(ROOT / "worlds" / "llama-land"), db_url, "127.0.0.1", 0, FAST,
                 InferenceConfig(str(default_model_path())))
    await srv.start()
    yield srv
    await srv.stop()


async def test_herd_info_over_the_wire_and_metrics(live):
    client = await GameClient.connect(live.url)
    info = await client.request("HerdInfo")  # public: no login needed
    assert info["Token"] == "wAR" and info["BaseFee"] > 0 and info["TokenFee"] > 0
    assert info["Multiplier"] == 1.0 and info["QueueLength"] == 0
    assert set(live.runtime.herd.templates) == {"king-verdict@1", "king-announce@1", "fed-vote@1", "fed-score@1", "joker-joke@1",
                                        "oracle-prophecy@1", "llama-talk@1", "trader-mood@1"}
    body = await asyncio.to_thread(lambda: urllib.request.urlopen(
        f"http://127.0.0.1:{live.port}/metrics", timeout=5).read().decode())
    for name in ("llama_land_inference_queue_depth 0", "llama_land_inference_workers_busy 0",
                 "llama_land_herd_multiplier 1", "llama_land_inference_generated_tokens_total"):
        assert name in body
    await client.close()


async def test_herd_info_without_inference(server, connect):
    client = await connect()
    with pytest.raises(ServerError) as exc:
        await client.request("HerdInfo")
    assert exc.value.code == "UNAVAILABLE"


def test_a_missing_model_stops_the_start_with_one_line(tmp_path):
    missing = tmp_path / DEFAULT_MODEL.filename
    result = run_cli("serve", "--world", str(TEST_WORLD), "--db", f"sqlite:///{tmp_path / 'x.db'}", "--port", "0",
                     "--model", str(missing))
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert str(missing) in lines[0] and DEFAULT_MODEL.sha256 in lines[0]


def test_a_world_with_a_broken_grammar_does_not_start(tmp_path):
    world = tmp_path / "world"
    shutil.copytree(ROOT / "worlds" / "llama-land", world)
    for m in (world / "maps").glob("*.tmj"):  # keep the relative tileset path valid from the copy
        m.write_text(m.read_text().replace("../../../assets", str(ROOT / "assets")))
    (world / "templates" / "broken.toml").write_text(
        'id = "broken@1"\nsystem = "s"\nuser = "u"\ngrammar = \'root ::= "grade=" [0-5\'\n')
    result = run_cli("serve", "--world", str(world), "--db", f"sqlite:///{tmp_path / 'x.db'}", "--port", "0")
    assert result.returncode == 2
    assert "broken.toml: grammar rejected: llama.cpp cannot parse it" in result.stderr


def world_copy(tmp_path):
    world = tmp_path / "world"
    shutil.copytree(ROOT / "worlds" / "llama-land", world)
    for m in (world / "maps").glob("*.tmj"):
        m.write_text(m.read_text().replace("../../../assets", str(ROOT / "assets")))
    return world


async def test_a_template_can_name_its_own_model(tmp_path):
    """Any GGUF per NPC: the herd runs that template on an engine for its model, and the receipt says so."""
    world = world_copy(tmp_path)
    (world / "models").mkdir()
    own = world / "models" / "oracle.gguf"
    own.symlink_to(default_model_path())  # a second model file (the same weights under another name)
    (world / "templates" / "oracle.toml").write_text(
        'id = "oracle@1"\nmodel = "../models/oracle.gguf"\nsystem = "You are the Oracle."\n'
        'user = "Answer yes or no: {question}"\nmax_tokens = 4\ngrammar = \'root ::= "yes" | "no"\'\n')
    srv = Server(load_world(world), f"sqlite:///{tmp_path / 'w.db'}", "127.0.0.1", 0, FAST,
                 InferenceConfig(str(default_model_path())))
    await srv.start()
    try:
        assert set(srv.runtime.herd.engines) == {str(default_model_path()), str(own.resolve())}
        from server.core.actors import Edge

        class Inbox(Edge):
            id, got = "npc:oracle", asyncio.Queue()

            def deliver(self, msg):
                self.got.put_nowait(msg)

            def deliver_raw(self, frame):
                raise TypeError

        inbox = Inbox()
        srv.runtime.bus.register(inbox)
        t = 10**12
        await srv.runtime.bus.call("token:wAR", {"Action": "Mint", "To": "alice", "Amount": 10**12, "By": "operator", "T": t})
        quote = await srv.runtime.bus.call("herd", {"Action": "Quote", "Requester": "alice", "Template": "oracle@1",
                                            "Values": {"question": "will it rain hay?"}, "T": t})
        run = await srv.runtime.bus.call("herd", {"Action": "Run", "QuoteId": quote["QuoteId"], "Requester": "alice",
                                          "Payer": "alice", "RequestId": "oracle-1", "Notify": inbox.id, "T": t})
        assert run["Action"] == "Run-Accepted"
        done = await asyncio.wait_for(inbox.got.get(), 60)
        while done["Action"] in ("Herd-Queued", "Herd-Started"):  # progress first, then the outcome
            done = await asyncio.wait_for(inbox.got.get(), 60)
        assert done["Action"] == "Herd-Done" and done["Text"] in ("yes", "no")
        from server.core.db import InferenceReceipt

        with srv.runtime.db.session() as s:
            assert s.get(InferenceReceipt, done["ReceiptId"]).model_path == str(own.resolve())
    finally:
        await srv.stop()


def test_a_world_can_choose_its_model(tmp_path):
    world = world_copy(tmp_path)
    toml = world / "world.toml"
    good = toml.read_text() + '\n[inference]\nmodel = "models/custom.gguf"\n'
    toml.write_text(good)
    assert load_world(world).model == (world / "models" / "custom.gguf").resolve()
    result = run_cli("serve", "--world", str(world), "--db", f"sqlite:///{tmp_path / 'x.db'}", "--port", "0")
    assert result.returncode == 2  # the world's own model is the one used: it is missing, and the error says so
    assert str((world / "models" / "custom.gguf").resolve()) in result.stderr
    toml.write_text(good + 'threads = 4\n')
    from server.world.maps import WorldError

    with pytest.raises(WorldError, match=r"\[inference\].threads"):
        load_world(world)
