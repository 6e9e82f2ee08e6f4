import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from client.net import GameClient
from server.app import Server
from server.tools.services import NatsServer, PostgresCluster, free_port, nats_available, postgres_available
from server.core.db import Database
from server.net.session import SessionConfig
from server.world.reader import load_world

ROOT = Path(__file__).resolve().parents[1]
TEST_WORLD = ROOT / "tests" / "worlds" / "two-rooms"
# Tests hash passwords with a low scrypt cost so logins are fast; the default cost is tested on its own.
FAST = SessionConfig(grace_s=1.0, scrypt_n=2**8)


def needed(why: str | None, what: str) -> None:
    """A throwaway service the tests start themselves: missing, it skips on a developer's machine and fails CI."""
    if why is not None:
        if os.environ.get("CI"):
            pytest.fail(f"{what}: {why}")
        pytest.skip(why)


@pytest.fixture(scope="session")
def postgres():
    """One throwaway PostgreSQL cluster for the whole run, started the first time a test asks for it."""
    needed(postgres_available(), "PostgreSQL is needed for the database tests")
    cluster = PostgresCluster().start()
    # A database server's world keeps its admin key in the user's data folder: the tests' keys go with the cluster.
    before = os.environ.get("XDG_DATA_HOME")
    os.environ["XDG_DATA_HOME"] = str(cluster.dir / "data-home")
    yield cluster
    if before is None:
        os.environ.pop("XDG_DATA_HOME", None)
    else:
        os.environ["XDG_DATA_HOME"] = before
    cluster.stop()


@pytest.fixture
def nats_server():
    """A throwaway nats-server on 127.0.0.1 for one test (which may stop and restart it)."""
    needed(nats_available(), "nats-server is needed for the scale-out tests")
    server = NatsServer().start()
    yield server
    server.remove()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """Every database-backed test runs twice: on an SQLite file, and on a fresh database of a real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'llama.db'}"
    return request.getfixturevalue("postgres").new_database()


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


def world_with(tmp_path, citizenship: str) -> Path:
    """A copy of the test world whose world.toml has this [citizenship] table."""
    copy = tmp_path / "world"
    shutil.copytree(TEST_WORLD, copy)
    for m in (copy / "maps").glob("*.tmj"):
        m.write_text(m.read_text().replace("../../../../assets", str(ROOT / "assets")))
    (copy / "world.toml").write_text((copy / "world.toml").read_text() + "\n[citizenship]\n" + citizenship + "\n")
    return copy


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


async def eventually(cond, timeout: float = 15.0) -> None:
    """Wait until cond() holds (polled: for state that changes without an event to this test's clients)."""
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "the condition did not come true in time"
        await asyncio.sleep(0.05)


async def until(client: GameClient, cond, timeout: float = 5.0):
    """Wait until cond() holds, re-checking as events arrive."""
    if cond():
        return
    await client.wait_for(lambda ev: cond(), timeout=timeout)


async def walk(client: GameClient, dirs: str | list[str], speed: float = 10.0):
    """Walk step by step at a legal pace for the world's speed; returns the final confirmed position."""
    steps = dirs.split() if isinstance(dirs, str) else dirs
    resp = None
    for d in steps:
        resp = await client.move(d)
        await asyncio.sleep(1.05 / speed)
    return (resp["X"], resp["Y"]) if resp else None


STEP = {(0, -1): "N", (0, 1): "S", (1, 0): "E", (-1, 0): "W"}


async def walk_to(client: GameClient, room, goal: tuple[int, int], speed: float = 10.0) -> None:
    """Walk the shortest path (4-neighbour, around walls, never across a portal but the goal) to goal."""
    from npcs.wander import find_path

    start = (client.view.x, client.view.y)
    if start == goal:
        return

    def walkable(x: int, y: int) -> bool:
        return room.walkable(x, y) and ((x, y) not in room.portal_at or (x, y) == goal)

    path = find_path(walkable, start, goal, (0, 0, room.width, room.height))
    assert path is not None, f"no path in {room.name} from {start} to {goal}"
    steps = [STEP[(b[0] - a[0], b[1] - a[1])] for a, b in zip([start] + path, path)]
    end = await walk(client, steps, speed)
    client.view.x, client.view.y = end if goal not in room.portal_at else (client.view.x, client.view.y)


async def through(client: GameClient, world, portal_name: str) -> dict:
    """Walk from here onto the named portal of the current room; returns the next room's RoomJoined."""
    room = world.rooms[client.view.room]
    portal = next(p for p in room.portals if p.name == portal_name)
    joined = asyncio.ensure_future(client.wait_for(
        lambda e: e["Action"] == "RoomJoined" and e["Room"] == portal.target_room, timeout=30))
    await walk_to(client, room, (portal.x0, portal.y0), world.rules.speed)
    return await joined


async def near_npc(client: GameClient, world, npc_xy: tuple[int, int], reach: int) -> None:
    """Walk until within reach (straight line) of an NPC standing at npc_xy, in the current room."""
    room = world.rooms[client.view.room]
    nx, ny = npc_xy
    goals = sorted(((x, y) for y in range(room.height) for x in range(room.width)
                    if room.walkable(x, y) and (x, y) not in room.portal_at
                    and (x - nx) ** 2 + (y - ny) ** 2 <= (reach - 1) ** 2),
                   key=lambda g: abs(g[0] - client.view.x) + abs(g[1] - client.view.y))
    await walk_to(client, room, goals[0], world.rules.speed)


@pytest.fixture(scope="session")
def display():
    """A virtual X display for the windows (the project's ./dev installs Xvfb). One for the whole run: pyglet keeps
    its connection to the first display it opened, and an X server gone under it ends the process (Xlib's fatal
    I/O error), so a display per module would kill the test run at the second module."""
    if os.environ.get("DISPLAY"):
        yield os.environ["DISPLAY"]
        return
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", "1", "-screen", "0", "1280x720x24", "-nolisten", "tcp"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    os.environ["DISPLAY"] = f":{xvfb.stdout.readline().strip()}"
    yield os.environ["DISPLAY"]
    xvfb.terminate()
    xvfb.wait()
    del os.environ["DISPLAY"]
