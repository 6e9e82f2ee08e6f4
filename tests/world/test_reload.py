"""`serve --reload`: a designer edits the running world; nobody is disconnected, nobody is left inside a wall."""

import asyncio
import json

import pytest

from client.net import GameClient
from server.app import Server
from server.reload import ReloadError, reload_world
from server.world.reader import load_world

from conftest import FAST, ROOT, through
from court import WORLD, world_copy


async def test_a_reload_swaps_maps_and_npcs_under_connected_players(tmp_path):
    world = world_copy(tmp_path)
    srv = Server(load_world(world), f"sqlite:///{tmp_path / 'r.db'}", "127.0.0.1", 0, FAST, reload=True)
    await srv.start()
    try:
        alice, bob = await GameClient.connect(srv.url), await GameClient.connect(srv.url)
        await alice.register("alice", "pw-secret")
        await bob.register("bob", "pw-secret")
        await bob.wait_for(lambda e: e["Action"] == "RoomJoined", past=True)
        await through(bob, WORLD, "to-hall")
        first = await alice.wait_for(lambda e: e["Action"] == "RoomJoined", past=True)
        x, y = first["X"], first["Y"]
        # The designer plants a tree where alice stands, renames Dolly and takes Paco out of the plaza.
        plaza = world / "maps" / "plaza.tmj"
        doc = json.loads(plaza.read_text())
        tiles = json.loads((ROOT / "assets" / "tilesets" / "llama-land.tsj").read_text())["tiles"]
        tree = next(t["id"] for t in tiles if t["type"] == "tree") + 1  # gid: the map's tileset starts at 1
        doc["layers"][0]["data"][y * doc["width"] + x] = tree
        npcs = next(lay for lay in doc["layers"] if lay["name"] == "npcs")
        npcs["objects"] = [o for o in npcs["objects"] if o["name"] != "paco"]
        plaza.write_text(json.dumps(doc))
        (world / "npcs" / "paco.toml").unlink()
        dolly = world / "npcs" / "dolly.toml"
        dolly.write_text(dolly.read_text().replace('name = "Dolly"', 'name = "Dolly the Bold"'))
        again = await alice.wait_for(lambda e: e["Action"] == "RoomJoined" and e is not first, timeout=10)
        assert (again["X"], again["Y"]) != (x, y) and abs(again["X"] - x) + abs(again["Y"] - y) <= 2
        assert srv.runtime.world.rooms["plaza"].walkable(again["X"], again["Y"])
        assert [n["Name"] for n in again["Npcs"]] == ["Dolly the Bold", "Tess the Trader"]
        moved = await alice.move("S" if srv.runtime.world.rooms["plaza"].walkable(again["X"], again["Y"] + 1) else "N")
        assert moved["Action"] == "Move-Response"
        assert not alice.closed.done() and not bob.closed.done()
        assert not [e for e in bob.events if e["Action"] == "RoomJoined" and e["Room"] == "fed-hall"][1:]
        assert "paco" not in srv.runtime.npc_names and srv.runtime.bus.lookup("npc:paco") is None
        assert srv.runtime.rooms["plaza"].state.config["MapSha"] == srv.runtime.world.rooms["plaza"].sha256
        # A broken edit is refused and the running world stays.
        dolly.write_text(dolly.read_text().replace('kind = "wanderer"', 'kind = "dragon"'))
        with pytest.raises(ReloadError, match="dolly.toml: kind must be one of"):
            await reload_world(srv.runtime)
        assert srv.runtime.cast.specs["dolly"].kind == "wanderer"
        await asyncio.sleep(0)
    finally:
        await srv.stop()
