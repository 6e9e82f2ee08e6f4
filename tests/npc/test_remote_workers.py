"""Inference on other processes over a real nats-server: a server with no local worker (`--inference-workers 0`)
and `llama-land worker` processes with the real default model. A petition judged only remotely; a worker killed
mid-vote; a worker with another model refused; nats-server restarted during play."""

import asyncio
import os
import signal
import subprocess
import sys
import time

from npcs.inference.engine import InferenceConfig
from npcs.inference.models import default_model_path
from npcs.inference.receipts import verify
from server.app import Server
from server.world.reader import load_world

from conftest import FAST, ROOT, run_cli
from court import UNIT, balances, books_balance, player, to_the_king, world_copy

HONEST = "Please fund a hay library for young llamas, so every cria in Llama Land can learn to read."


class Worker:
    """`llama-land worker` as a real child process."""

    def __init__(self, url: str, *extra: str):
        self.proc = subprocess.Popen([sys.executable, "-m", "server.cli", "worker", "--nats", url, "--threads", "1",
                                      *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
        out, _ = self.proc.communicate(timeout=30)
        return out


async def remote_only(tmp_path, url: str) -> Server:
    srv = Server(load_world(world_copy(tmp_path)), f"sqlite:///{tmp_path / 'w.db'}", "127.0.0.1", 0, FAST,
                 InferenceConfig(str(default_model_path()), workers=0), nats_url=url, namespace="test")
    await srv.start()
    return srv


async def workers_joined(srv: Server, n: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while len(srv.runtime.engine.workers) != n:
        assert time.monotonic() < deadline, f"{len(srv.runtime.engine.workers)} workers, waiting for {n}"
        await asyncio.sleep(0.05)


def outcome(client):
    return client.wait_for(lambda e: e["Action"] in ("Granted", "PetitionFailed"), timeout=120)


async def test_a_petition_judged_by_a_remote_worker_only(tmp_path, nats_server):
    srv = await remote_only(tmp_path, nats_server.url)
    worker = Worker(nats_server.url, "--nats-namespace", "test")
    try:
        assert srv.runtime.engine.workers == []
        await workers_joined(srv, 1)
        [remote] = srv.runtime.engine.workers
        assert remote.name.startswith("remote:") and remote.threads == 1
        alice = await player(srv, "alice")
        await to_the_king(alice)
        await alice.request("Petition", Text=HONEST)
        verdict = await outcome(alice)
        assert verdict["Action"] == "Granted", verdict
        assert remote.jobs >= 3  # the committee's three votes (and the announcement) ran there
        assert await balances(alice) == {"wAR": 9 * UNIT, "LLAMA": verdict["Payout"]}
        checked = await verify(srv.runtime.db, verdict["Votes"][0]["ReceiptId"])  # re-run here: same tokens
        assert checked.match, checked.lines
        books_balance(srv)
    finally:
        await srv.stop()
        worker.stop()


async def test_a_worker_killed_mid_vote_its_job_is_retried_once_and_charged_once(tmp_path, nats_server):
    srv = await remote_only(tmp_path, nats_server.url)
    first = Worker(nats_server.url, "--nats-namespace", "test")
    second = None
    try:
        await workers_joined(srv, 1)
        alice = await player(srv, "alice")
        await to_the_king(alice)
        await alice.request("Petition", Text=HONEST)
        deadline = time.monotonic() + 30
        while not srv.runtime.engine.busy_workers:  # a vote is on the worker
            assert time.monotonic() < deadline
            await asyncio.sleep(0.002)
        first.kill()
        second = Worker(nats_server.url, "--nats-namespace", "test")
        verdict = await outcome(alice)
        assert verdict["Action"] == "Granted", verdict
        assert srv.runtime.engine.stats.retried >= 1
        assert await balances(alice) == {"wAR": 9 * UNIT, "LLAMA": verdict["Payout"]}  # charged once, paid once
        for vote in verdict["Votes"]:
            checked = await verify(srv.runtime.db, vote["ReceiptId"])
            assert checked.match, checked.lines
        books_balance(srv)
    finally:
        await srv.stop()
        for worker in (first, second):
            if worker is not None:
                worker.stop()


async def test_a_worker_with_another_model_is_refused(tmp_path, nats_server):
    other = default_model_path().with_name("SmolLM2-135M-Instruct.Q4_1.gguf")
    assert other.is_file(), "the second bundled model (llama-land models install) is the other model"
    srv = await remote_only(tmp_path, nats_server.url)
    try:
        worker = Worker(nats_server.url, "--nats-namespace", "test", "--model", str(other))
        code = await asyncio.to_thread(worker.proc.wait, 60)
        out = worker.stop()
        assert code == 3 and "refused by the server" in out and "is not this world's" in out, out
        assert srv.runtime.engine.workers == []
    finally:
        await srv.stop()


async def test_nats_restarted_during_play_workers_come_back_and_nothing_is_charged_twice(tmp_path, nats_server):
    srv = await remote_only(tmp_path, nats_server.url)
    worker = Worker(nats_server.url, "--nats-namespace", "test")
    try:
        await workers_joined(srv, 1)
        alice = await player(srv, "alice")
        await to_the_king(alice)
        await alice.request("Petition", Text=HONEST)
        await asyncio.to_thread(nats_server.restart, 1.0)
        first = await outcome(alice)  # judged (before, or after, the outage) or refunded: never both
        await workers_joined(srv, 1, timeout=30)  # the worker announces itself again
        bob = await player(srv, "bob")
        await to_the_king(bob)
        await bob.request("Petition", Text="Please plant clover by the well so the old llamas have shade and food.")
        second = await outcome(bob)
        assert second["Action"] == "Granted", second
        paid = first["Payout"] if first["Action"] == "Granted" else 0
        offered = UNIT if first["Action"] == "Granted" else 0
        assert await balances(alice) == {"wAR": 10 * UNIT - offered, **({"LLAMA": paid} if paid else {})}
        books_balance(srv)
    finally:
        await srv.stop()
        worker.stop()
    assert os.path.exists(tmp_path / "w.db")


def test_an_unreachable_nats_stops_the_server_and_the_worker_with_one_line(tmp_path):
    for args in (("serve", "--db", f"sqlite:///{tmp_path / 'x.db'}", "--port", "0", "--no-inference"),
                 ("worker",)):
        result = run_cli(*args, "--nats", "nats://127.0.0.1:1", timeout=60)
        assert result.returncode == 2, result.stdout + result.stderr
        assert "cannot reach NATS at nats://127.0.0.1:1" in result.stderr and "Traceback" not in result.stderr
