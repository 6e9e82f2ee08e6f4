"""Ownership of a world on a shared PostgreSQL, with real `llama-land serve` processes: a second server is refused
while the first holds the leases; a standby takes over when the first is killed (the next epoch, players resume,
no slot lost or doubled); a paused first server that wakes after the takeover cannot write and stops."""

import asyncio
import signal
import socket
import subprocess
import sys
import time

import pytest
from sqlmodel import select

from client.net import GameClient
from server.core.db import ChatLine, Database
from server.core.lease import Leases

from conftest import ROOT, TEST_WORLD, ServerProcess, free_port, run_cli

TTL = "2"  # seconds: short, so the tests wait little


def standby_process(db_url: str, *extra: str, world=TEST_WORLD) -> tuple[subprocess.Popen, int]:
    """`serve --standby` as a child process; it opens its port only once it has taken over."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "server.cli", "serve", "--world", str(world), "--db", db_url,
                             "--port", str(port), "--scrypt-n", "256", "--grace", "1", "--standby", "--lease-ttl", TTL,
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    return proc, port


async def serving(port: int, proc: subprocess.Popen, timeout: float = 30) -> float:
    started = time.monotonic()
    while True:
        assert proc.poll() is None, proc.stdout.read()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return time.monotonic() - started
        except OSError:
            assert time.monotonic() - started < timeout, "the standby did not take over"
            await asyncio.sleep(0.05)


def epoch_of(db_url: str, actor: str) -> tuple[str, int]:
    db = Database(db_url)
    try:
        held = Leases(db, "test").holder(actor)
        return held.owner, held.epoch
    finally:
        db.stop()


def chat_texts(db_url: str) -> list[str]:
    db = Database(db_url)
    try:
        with db.session() as session:
            return [c.text for c in session.exec(select(ChatLine).order_by(ChatLine.id))]
    finally:
        db.stop()


def test_a_second_server_on_the_same_world_is_refused_while_the_first_serves(postgres):
    url = postgres.new_database()
    first = ServerProcess(url, None, TEST_WORLD, "--lease-ttl", TTL)
    try:
        second = run_cli("serve", "--world", str(TEST_WORLD), "--db", url, "--port", "0", "--lease-ttl", TTL)
        assert second.returncode == 2, second.stdout + second.stderr
        assert "is served by" in second.stderr and "--standby" in second.stderr
    finally:
        first.stop()


class Pair:
    """A serving process on a fresh PostgreSQL database and, once started, its standby; both stopped at the end."""

    def __init__(self, postgres):
        self.url = postgres.new_database()
        self.first = ServerProcess(self.url, None, TEST_WORLD, "--lease-ttl", TTL)
        self.second: subprocess.Popen | None = None
        self.port = 0

    def start_standby(self) -> None:
        self.second, self.port = standby_process(self.url)

    def close(self) -> None:
        if self.first.proc.poll() is None:
            self.first.proc.send_signal(signal.SIGCONT)
            self.first.kill()
        if self.second is not None:
            self.second.terminate()
            self.second.communicate(timeout=20)
            self.second = None


@pytest.fixture
def pair(postgres):
    both = Pair(postgres)
    yield both
    both.close()


async def test_a_standby_takes_over_a_killed_server_and_players_resume(pair):
    alice = await GameClient.connect(pair.first.url)
    await alice.register("alice", "pw-secret")
    await alice.request("Chat", Text="before the crash")
    owner, epoch = epoch_of(pair.url, "room:plaza")
    pair.start_standby()
    await asyncio.sleep(1.0)
    assert pair.second.poll() is None  # waiting: the first still holds the world
    pair.first.proc.send_signal(signal.SIGKILL)
    pair.first.proc.wait()
    took = await serving(pair.port, pair.second)
    assert took < 10
    new_owner, new_epoch = epoch_of(pair.url, "room:plaza")
    assert new_epoch == epoch + 1 and new_owner != owner
    alice = await GameClient.connect(f"ws://127.0.0.1:{pair.port}/")
    await alice.login("alice", "pw-secret")
    assert any(line["Text"] == "before the crash" for line in alice.view.chat)  # the room's history is back
    await alice.request("Chat", Text="after the takeover")
    await alice.close()
    pair.close()
    assert chat_texts(pair.url) == ["before the crash", "after the takeover"]
    replay = run_cli("replay", "--db", pair.url)
    assert replay.returncode == 0, replay.stdout + replay.stderr


async def test_a_paused_server_that_wakes_after_a_takeover_cannot_write_and_stops(pair):
    bob = await GameClient.connect(pair.first.url)
    await bob.register("bob", "pw-secret")
    await bob.request("Chat", Text="bob on the first")
    pair.first.proc.send_signal(signal.SIGSTOP)  # a long GC pause, a partition: its lease runs out
    pair.start_standby()
    await serving(pair.port, pair.second)
    carol = await GameClient.connect(f"ws://127.0.0.1:{pair.port}/")
    await carol.register("carol", "pw-secret")
    await carol.request("Chat", Text="carol on the second")
    await bob.send("Chat", Text="bob while paused")  # read by the first when it wakes
    pair.first.proc.send_signal(signal.SIGCONT)
    out, _ = pair.first.proc.communicate(timeout=30)
    assert pair.first.proc.returncode == 3 and "lost ownership" in out, out
    await carol.request("Chat", Text="carol after")
    await carol.close()
    pair.close()
    texts = chat_texts(pair.url)
    assert "bob while paused" not in texts  # the zombie's append was refused, not written
    assert texts == ["bob on the first", "carol on the second", "carol after"]
    replay = run_cli("replay", "--db", pair.url)  # one chain per actor: no fork
    assert replay.returncode == 0, replay.stdout + replay.stderr
