"""Designer tooling: `world check` on the shipped worlds and on a corpus of broken ones, `world new`, and a bot
walking through every portal of the shipped worlds."""

import asyncio

import pytest

from client.net import GameClient
from server.app import Server
from server.world.reader import load_world
from server.tools.worldcheck import check_world

from conftest import FAST, ROOT, run_cli, through

BROKEN = sorted(p for p in (ROOT / "tests" / "worlds" / "broken").iterdir() if (p / "EXPECTED").is_file())
SHIPPED = [ROOT / "worlds" / "llama-land", ROOT / "worlds" / "isle"]


@pytest.mark.parametrize("world", SHIPPED, ids=lambda p: p.name)
def test_the_shipped_worlds_pass(world):
    result = run_cli("world", "check", str(world))
    assert result.returncode == 0 and "no problems" in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize("case", BROKEN, ids=lambda p: p.name)
def test_each_broken_world_yields_its_error(case):
    file, expected = (case / "EXPECTED").read_text().splitlines()[:2]
    problems = check_world(case)
    assert any(p.file.resolve() == (case / file).resolve() and expected in str(p) for p in problems), \
        "\n".join(map(str, problems))


def test_check_reports_every_problem_and_exits_non_zero():
    result = run_cli("world", "check", str(ROOT / "tests" / "worlds" / "broken" / "spawn-on-blocked-tile"))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert len(lines) >= 2 and all("spawn-on-blocked-tile" in line for line in lines)
    assert "problems in" in result.stderr


async def test_scaffold_check_serve_play(tmp_path):
    made = run_cli("world", "new", str(tmp_path / "hay-fields"))
    assert made.returncode == 0, made.stderr
    checked = run_cli("world", "check", str(tmp_path / "hay-fields"))
    assert checked.returncode == 0, checked.stdout
    srv = Server(load_world(tmp_path / "hay-fields"), f"sqlite:///{tmp_path / 'h.db'}", "127.0.0.1", 0, FAST)
    await srv.start()
    try:
        client = await GameClient.connect(srv.url)
        await client.register("alice", "pw-secret")
        joined = await client.wait_for(lambda e: e["Action"] == "RoomJoined", past=True)
        assert joined["World"] == "Hay Fields" and [n["Id"] for n in joined["Npcs"]] == ["pip"]
        moved = await client.move("N")
        assert (moved["X"], moved["Y"]) == (joined["X"], joined["Y"] - 1)
        again = run_cli("world", "new", str(tmp_path / "hay-fields"))
        assert again.returncode == 2 and "already exists" in again.stderr
    finally:
        await srv.stop()


@pytest.mark.parametrize("world_dir", SHIPPED, ids=lambda p: p.name)
async def test_a_bot_walks_through_every_portal(tmp_path, world_dir):
    """From the start, through each portal of the world and back, on foot, the way a player would."""
    world = load_world(world_dir)
    srv = Server(world, f"sqlite:///{tmp_path / 'walk.db'}", "127.0.0.1", 0, FAST)
    await srv.start()
    try:
        bot = await GameClient.connect(srv.url)
        await bot.register("walker", "pw-secret")
        await bot.wait_for(lambda e: e["Action"] == "RoomJoined", past=True)
        home = world.start_room
        visited = set()
        for portal in world.rooms[home].portals:
            arrived = await through(bot, world, portal.name)
            assert arrived["Room"] == portal.target_room
            visited.add((home, portal.name))
            for back in world.rooms[portal.target_room].portals:  # every door of that room, then home again
                came = await through(bot, world, back.name)
                visited.add((portal.target_room, back.name))
                if came["Room"] != home:
                    await through(bot, world, next(p.name for p in world.rooms[came["Room"]].portals
                                                   if p.target_room == portal.target_room))
                    await through(bot, world, next(p.name for p in world.rooms[portal.target_room].portals
                                                   if p.target_room == home))
        every = {(r.name, p.name) for r in world.rooms.values() for p in r.portals}
        assert visited == every
        await asyncio.sleep(0)
    finally:
        await srv.stop()

