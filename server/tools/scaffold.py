"""`llama-land world new NAME`: a small world that passes `world check` and can be served at once.

One 20×15 meadow ringed by trees, a spawn in the middle, and one wandering llama with its talk template: a place
to start from. The tileset is copied into the new folder, so the world is self-contained (move it anywhere).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "tilesets"
WIDTH, HEIGHT = 20, 15

WORLD_TOML = """# {title}: made by `llama-land world new`. See docs/worlds.md for every setting.
[world]
name = "{title}"
start_room = "meadow"
start_spawn = "default"

[rooms]
meadow = "maps/meadow.tmj"

[rules]
near_radius = 8

[economy]
starting_war = 10
"""

LLAMA_TOML = """# A wandering llama. Say "Pip" near it and it answers (with inference on).
name = "Pip"
kind = "wanderer"
persona = "You are Pip, a curious young llama who has just arrived in {title}."

[templates]
talk = "llama-talk@1"

[lines]
idle = ["*sniffs the flowers*", "What a nice meadow!", "Hello? Anyone there?"]

[economy]
radius = 4
"""

TALK_TOML = """# A wandering llama's small talk, when a player near it speaks to it by name.
id = "llama-talk@1"
system = \"\"\"{{persona}}
Reply in one short, friendly sentence.\"\"\"
user = "{{memory}}\\n{{player}} says to you: {{text}}"
max_tokens = 32
temperature = 0.7
"""


def tile_ids(tsj: Path) -> dict[str, int]:
    return {t["type"]: t["id"] for t in json.loads(tsj.read_text())["tiles"]}


def meadow_map(ids: dict[str, int], width: int = WIDTH, height: int = HEIGHT, spawn_size: int = 1) -> dict:
    """A meadow ringed by trees; the spawn is a square of spawn_size tiles in the middle (bench/client_fps.py
    uses a large one to spread a crowd)."""
    data = []
    for y in range(height):
        for x in range(width):
            edge = x in (0, width - 1) or y in (0, height - 1)
            name = "tree" if edge else ("flowers" if (x * 7 + y * 3) % 11 == 0 else "grass")
            data.append(ids[name] + 1)

    def point(oid: int, name: str, x: int, y: int) -> dict:
        return {"id": oid, "name": name, "type": "", "x": x * 32 + 16, "y": y * 32 + 16, "width": 0, "height": 0,
                "point": True, "rotation": 0, "visible": True}

    spawn = point(1, "default", width // 2, height // 2)
    if spawn_size > 1:
        spawn.update(x=(width - spawn_size) // 2 * 32, y=(height - spawn_size) // 2 * 32, width=spawn_size * 32,
                     height=spawn_size * 32, point=False)
    layers = [{"id": 1, "name": "ground", "type": "tilelayer", "width": width, "height": height, "x": 0, "y": 0,
               "opacity": 1, "visible": True, "data": data},
              {"id": 2, "name": "spawns", "type": "objectgroup", "draworder": "topdown", "x": 0, "y": 0, "opacity": 1,
               "visible": True, "objects": [spawn]},
              {"id": 3, "name": "portals", "type": "objectgroup", "draworder": "topdown", "x": 0, "y": 0,
               "opacity": 1, "visible": True, "objects": []},
              {"id": 4, "name": "npcs", "type": "objectgroup", "draworder": "topdown", "x": 0, "y": 0, "opacity": 1,
               "visible": True, "objects": [point(2, "pip", 5, 5)]}]
    return {"compressionlevel": -1, "width": width, "height": height, "infinite": False, "orientation": "orthogonal",
            "renderorder": "right-down", "tiledversion": "1.10.2", "tilewidth": 32, "tileheight": 32, "type": "map",
            "version": "1.10", "nextlayerid": 5, "nextobjectid": 3,
            "tilesets": [{"firstgid": 1, "source": "../tilesets/llama-land.tsj"}], "layers": layers}


def new_world(folder: Path) -> Path:
    """Create the world in folder (which must not exist yet); returns it."""
    if folder.exists():
        raise FileExistsError(f"{folder} already exists: choose a new name")
    title = folder.name.replace("-", " ").replace("_", " ").title()
    for sub in ("maps", "npcs", "templates", "tilesets"):
        (folder / sub).mkdir(parents=True)
    for ext in ("tsj", "png"):
        shutil.copy(ASSETS / f"llama-land.{ext}", folder / "tilesets" / f"llama-land.{ext}")
    (folder / "world.toml").write_text(WORLD_TOML.format(title=title))
    (folder / "maps" / "meadow.tmj").write_text(json.dumps(meadow_map(tile_ids(folder / "tilesets" / "llama-land.tsj"))))
    (folder / "npcs" / "pip.toml").write_text(LLAMA_TOML.format(title=title))
    (folder / "templates" / "llama-talk.toml").write_text(TALK_TOML)
    return folder
