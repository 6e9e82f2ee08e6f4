"""Loading worlds, and the errors a broken world gives."""

import json
import shutil
from pathlib import Path

import pytest

from server.world.maps import WorldError

from server.world.reader import load_world

ROOT = Path(__file__).resolve().parents[2]
TEST_WORLD = ROOT / "tests" / "worlds" / "two-rooms"


def test_test_world_loads():
    world = load_world(TEST_WORLD)
    assert set(world.rooms) == {"plaza", "hall"}
    plaza = world.rooms["plaza"]
    assert (plaza.width, plaza.height) == (20, 15)
    assert plaza.blocked[0, 0] and plaza.blocked[5, 10] and not plaza.blocked[3, 3]
    assert plaza.spawns["default"] == [(3, 3)]
    assert plaza.spawn_tile("default", "anyone") == (3, 3)
    assert plaza.portal_at[(18, 7)].target_room == "hall"
    assert world.rules.near_radius == 4
    assert world.starting_war == 10 * 10**12  # the default allowance


def test_default_world_loads():
    world = load_world(ROOT / "worlds" / "llama-land")
    assert world.start_room in world.rooms and len(world.rooms) >= 2


@pytest.fixture
def broken(tmp_path):
    dst = tmp_path / "world"
    shutil.copytree(TEST_WORLD, dst)
    # maps refer to the shared tileset by a relative path; keep that path valid from the copy
    for m in (dst / "maps").glob("*.tmj"):
        doc = json.loads(m.read_text())
        doc["tilesets"][0]["source"] = str(ROOT / "assets" / "tilesets" / "basic.tsj")
        m.write_text(json.dumps(doc))
    return dst


def edit_map(world, name, fn):
    path = world / "maps" / f"{name}.tmj"
    doc = json.loads(path.read_text())
    fn(doc)
    path.write_text(json.dumps(doc))


def layer(doc, name):
    return next(l for l in doc["layers"] if l["name"] == name)


def test_copy_is_valid(broken):
    load_world(broken)


def test_npc_programs_limits_are_read_from_world_toml(broken):
    assert load_world(broken).programs.max_pending == 16  # the default
    (broken / "world.toml").write_text((broken / "world.toml").read_text() +
                                       "\n[npc_programs]\nmax_pending = 4\nanswer_timeout_s = 2\nrate = 50\n")
    limits = load_world(broken).programs
    assert (limits.max_pending, limits.answer_timeout_s, limits.rate, limits.burst) == (4, 2.0, 50.0, 400)
    assert isinstance(limits.answer_timeout_s, float)


def test_a_rectangle_spawn_spreads_arrivals_over_its_walkable_tiles(broken):
    # a 4x3 rectangle at (8..11, 2..4) that crosses the wall at x = 10
    edit_map(broken, "plaza", lambda d: layer(d, "spawns")["objects"][0].update(x=256, y=64, width=128, height=96))
    plaza = load_world(broken).rooms["plaza"]
    tiles = plaza.spawns["default"]
    assert len(tiles) == 12 - 2 and (10, 3) not in tiles  # (10, 3) and (10, 4) are wall
    picks = {plaza.spawn_tile("default", f"p{i}") for i in range(200)}
    assert picks == set(tiles)
    assert plaza.spawn_tile("default", "p7") == plaza.spawn_tile("default", "p7")


@pytest.mark.parametrize(
    "breakage, message",
    [
        (lambda w: (w / "world.toml").unlink(), "no world.toml"),
        (lambda w: (w / "world.toml").write_text("[world\n"), "world.toml"),
        (lambda w: (w / "maps" / "hall.tmj").unlink(), "map file not found"),
        (lambda w: (w / "maps" / "hall.tmj").write_text("{not json"), "not a readable Tiled map"),
        (lambda w: (w / "world.toml").write_text('[rooms]\nplaza = "maps/plaza.tmj"\n'), "unknown room 'hall'"),
        (lambda w: (w / "world.toml").write_text(
            (w / "world.toml").read_text().replace("near_radius = 4", "near_radius = -1")), "near_radius"),
        (lambda w: (w / "world.toml").write_text(
            (w / "world.toml").read_text() + "warp_speed = 9\n"), "unknown setting"),
        (lambda w: (w / "world.toml").write_text(
            (w / "world.toml").read_text() + "\n[economy]\nstarting_war = -1\n"), "starting_war"),
        (lambda w: (w / "world.toml").write_text(
            (w / "world.toml").read_text() + "\n[economy]\nstarting_war = 0.0000000000001\n"), "12 decimals"),
        (lambda w: (w / "world.toml").write_text(
            (w / "world.toml").read_text() + "\n[economy]\nfree_llama = 5\n"), "unknown setting"),
        (lambda w: (w / "world.toml").write_text(
            (w / "world.toml").read_text() + "\n[npc_programs]\nmax_pending = 0\n"), r"max_pending must be a whole number from 1 to 1000, got 0"),
        (lambda w: (w / "world.toml").write_text(
            (w / "world.toml").read_text() + "\n[npc_programs]\nrate = \"fast\"\n"), r"\[npc_programs\]\.rate must be a number"),
        (lambda w: (w / "world.toml").write_text(
            (w / "world.toml").read_text() + "\n[npc_programs]\ntimeout = 3\n"), r"unknown setting \[npc_programs\]\.timeout"),
        (lambda w: edit_map(w, "plaza", lambda d: layer(d, "portals")["objects"][0]["properties"][1].update(value="nowhere")),
         "unknown spawn 'nowhere'"),
        (lambda w: edit_map(w, "hall", lambda d: layer(d, "spawns").update(objects=[])), "no spawn point"),
        (lambda w: edit_map(w, "plaza", lambda d: layer(d, "spawns")["objects"][0].update(x=16, y=16)), "blocked tile"),
    ],
)
def test_broken_worlds_name_the_problem(broken, breakage, message):
    breakage(broken)
    with pytest.raises(WorldError, match=message):
        load_world(broken)
