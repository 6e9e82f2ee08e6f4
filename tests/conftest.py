import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from client.net import GameClient
from server.app import Server
from server.db import Database
from server.session import SessionConfig
from server.world import load_world

ROOT = Path(__file__).resolve().parents[1]
TEST_WORLD = ROOT / "tests" / "worlds" / "two-rooms"
# Tests hash passwords with a low scrypt cost so logins are fast; the default cost is tested on its own.
FAST = SessionConfig(grace_s=1.0, scrypt_n=2**8)


@pytest.fixture
def db_url(tmp_path):
    return f"sqlite:///{tmp_path / 'llama.db'}"


@pytest.fixture
def db(db_url):
    """A started Database (with its writer thread) on a fresh SQLite file."""
    database = Database(db_url)
    database.start()
    yield database
    database.stop()


@pytest.fixture
async def server(db_url):
    srv = Server(load_world(TEST_WORLD), db_url, "127.0.0.1", 0, FAST)
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
def connect(server):
    clients = []

    async def make(name=None, password="pw-secret"):
        client = await GameClient.connect(server.url)
        clients.append(client)
        if name is not None:
            await client.register(name, password)
        return client

    yield make
    for c in clients:
        if not c.closed.done():
            asyncio.get_event_loop().create_task(c.close())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """`llama-land serve` as a real child process."""

    def __init__(self, db_url: str, port: int | None = None, world: Path = TEST_WORLD, *extra: str):
        self.port = port or free_port()
        self.url = f"ws://127.0.0.1:{self.port}/"
        self.http = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "serve", "--world", str(world), "--db", db_url,
             "--port", str(self.port), "--scrypt-n", "256", "--grace", "1", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.proc.stdout.read()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("server did not start")

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> str:
        self.proc.terminate()
        out, _ = self.proc.communicate(timeout=20)
        return out


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "server.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout, env={**os.environ, "PYTHONUNBUFFERED": "1"})


async def until(client: GameClient, cond, timeout: float = 5.0):
    """Wait until cond() holds, re-checking as events arrive."""
    if cond():
        return
    await client.wait_for(lambda ev: cond(), timeout=timeout)


async def walk(client: GameClient, dirs: str | list[str]):
    """Walk step by step at a legal pace; returns the final confirmed position."""
    steps = dirs.split() if isinstance(dirs, str) else dirs
    resp = None
    for d in steps:
        resp = await client.move(d)
        await asyncio.sleep(0.105)
    return (resp["X"], resp["Y"]) if resp else None
