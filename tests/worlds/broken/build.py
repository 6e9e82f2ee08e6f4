"""Build the corpus of broken worlds: one small two-room world, broken in one way per folder. Each folder's
EXPECTED file holds the text `world check` must report (and the file it must name). Re-run after changing it:

    .venv/bin/python tests/worlds/broken/build.py
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
TSJ = "../../../../../assets/tilesets/llama-land.tsj"  # from <case>/maps/
IDS = {t["type"]: t["id"] + 1 for t in json.loads((HERE.parents[2] / "assets/tilesets/llama-land.tsj").read_text())["tiles"]}


def plan_map(rows: list[str], spawns: dict, portals: dict, npcs: dict, tileset: str = TSJ) -> dict:
    legend = {".": "grass", "T": "tree", "#": "wall-brick", "D": "door"}
    data = [IDS[legend[c]] for r in rows for c in r]

    def o(oid, name, x, y, props=None):
        out = {"id": oid, "name": name, "type": "", "x": x * 32 + 16, "y": y * 32 + 16, "width": 0, "height": 0,
               "point": True, "rotation": 0, "visible": True}
        if props:
            out["properties"] = [{"name": k, "type": "string", "value": v} for k, v in props.items()]
        return out

    ids = iter(range(1, 100))
    groups = [("spawns", [o(next(ids), n, *xy) for n, xy in spawns.items()]),
              ("portals", [o(next(ids), n, x, y, props) for n, (x, y, props) in portals.items()]),
              ("npcs", [o(next(ids), n, *xy) for n, xy in npcs.items()])]
    layers = [{"id": 1, "name": "ground", "type": "tilelayer", "width": len(rows[0]), "height": len(rows), "x": 0,
               "y": 0, "opacity": 1, "visible": True, "data": data}]
    layers += [{"id": i, "name": n, "type": "objectgroup", "draworder": "topdown", "x": 0, "y": 0, "opacity": 1,
                "visible": True, "objects": objs} for i, (n, objs) in enumerate(groups, start=2) if objs or n != "x"]
    return {"compressionlevel": -1, "width": len(rows[0]), "height": len(rows), "infinite": False,
            "orientation": "orthogonal", "renderorder": "right-down", "tiledversion": "1.10.2", "tilewidth": 32,
            "tileheight": 32, "type": "map", "version": "1.10", "nextlayerid": 5, "nextobjectid": 100,
            "tilesets": [{"firstgid": 1, "source": tileset}], "layers": layers}


YARD = ["TTTTTTTTTTTT", "T..........T", "T..........T", "T...###....T", "T...#.#....D", "T...###....T",
        "T..........T", "TTTTTTTTTTTT"]
SHED = ["########", "#......#", "#......#", "D......#", "#......#", "########"]


def base() -> dict:
    """Everything a world has, correct: (relative path -> text or map dict)."""
    return {
        "world.toml": '[world]\nname = "Broken"\nstart_room = "yard"\n\n[rooms]\nyard = "maps/yard.tmj"\n'
                      'shed = "maps/shed.tmj"\n\n[economy]\nstarting_war = 10\n',
        "maps/yard.tmj": plan_map(YARD, {"default": (2, 2), "from-shed": (10, 4)},
                                  {"to-shed": (11, 4, {"target_room": "shed", "target_spawn": "from-yard"})},
                                  {"pip": (8, 2)}),
        "maps/shed.tmj": plan_map(SHED, {"default": (3, 3), "from-yard": (1, 3)},
                                  {"to-yard": (0, 3, {"target_room": "yard", "target_spawn": "from-shed"})}, {}),
        "npcs/pip.toml": 'name = "Pip"\nkind = "wanderer"\npersona = "You are Pip."\n[templates]\n'
                         'talk = "llama-talk@1"\n',
        "templates/llama-talk.toml": 'id = "llama-talk@1"\nsystem = "{persona}"\nuser = "{player}: {text}"\n',
    }


def edit_map(files: dict, name: str, fn) -> None:
    fn(files[f"maps/{name}.tmj"])


def layer(doc: dict, name: str) -> dict:
    return next(lay for lay in doc["layers"] if lay["name"] == name)


def prop(obj: dict, name: str, value: str) -> None:
    obj.setdefault("properties", []).append({"name": name, "type": "string", "value": value})


CASES = {
    "missing-spawn": (lambda f: edit_map(f, "shed", lambda d: layer(d, "spawns")["objects"].clear()),
                      "maps/shed.tmj", "no spawn point"),
    "portal-to-unknown-room": (lambda f: edit_map(f, "yard", lambda d: layer(d, "portals")["objects"][0][
        "properties"][0].update(value="attic")), "maps/yard.tmj", "leads to unknown room 'attic'"),
    "portal-to-unknown-spawn": (lambda f: edit_map(f, "yard", lambda d: layer(d, "portals")["objects"][0][
        "properties"][1].update(value="nowhere")), "maps/yard.tmj", "leads to unknown spawn 'nowhere' of room 'shed'"),
    "npc-without-file": (lambda f: f.pop("npcs/pip.toml"), "maps/yard.tmj", "npc 'pip' at (8, 2): has no NPC file"),
    "unreadable-tileset": (lambda f: edit_map(f, "shed", lambda d: d["tilesets"][0].update(
        source="../tilesets/missing.tsj")), "maps/shed.tmj", "unreadable tileset"),
    "unreadable-image": (lambda f: (f.update({"tilesets/own.tsj": json.dumps(
        {"columns": 1, "image": "missing.png", "imageheight": 32, "imagewidth": 32, "margin": 0, "name": "own",
         "spacing": 0, "tilecount": 1, "tileheight": 32, "tilewidth": 32, "type": "tileset", "version": "1.10"})}),
        edit_map(f, "shed", lambda d: d["tilesets"][0].update(source="../tilesets/own.tsj"))),
        "maps/shed.tmj", "missing.png cannot be read"),
    "unknown-property": (lambda f: edit_map(f, "yard", lambda d: prop(layer(d, "spawns")["objects"][0], "colour",
                                                                      "red")),
                         "maps/yard.tmj", "spawn 'default' at (2, 2): unknown property 'colour'"),
    "spawn-on-blocked-tile": (lambda f: edit_map(f, "yard", lambda d: layer(d, "spawns")["objects"][0].update(
        x=16, y=16)), "maps/yard.tmj", "spawn 'default' at (0, 0): spawn is on a blocked tile"),
    "unreachable-portal": (lambda f: edit_map(f, "yard", lambda d: layer(d, "portals")["objects"][0].update(
        x=5 * 32 + 16, y=4 * 32 + 16)), "maps/yard.tmj", "portal 'to-shed' at (5, 4): cannot be reached on foot"),
    "unreachable-npc": (lambda f: (f.update({"npcs/pip.toml": f["npcs/pip.toml"].replace(
        'kind = "wanderer"\n', 'kind = "wanderer"\nreach = 1\n')}),
                                   edit_map(f, "yard", lambda d: layer(d, "npcs")["objects"][0].update(
                                       x=5 * 32 + 16, y=4 * 32 + 16))),
                        "maps/yard.tmj", "npc 'pip' at (5, 4): cannot be reached on foot"),
    "template-unknown-variable": (lambda f: f.update({"templates/llama-talk.toml": f["templates/llama-talk.toml"]
                                                      .replace("{text}", "{text} {weather}")}),
                                  "templates/llama-talk.toml", "uses unknown variable {weather}"),
    "economy-out-of-range": (lambda f: f.update({"npcs/pip.toml": f["npcs/pip.toml"] + "[economy]\nspeed = 50\n"}),
                             "npcs/pip.toml", "[economy].speed must be from 0.1 to 10.0, got 50"),
    "world-economy-out-of-range": (lambda f: f.update({"world.toml": f["world.toml"].replace("starting_war = 10",
                                                                                            "starting_war = -5")}),
                                   "world.toml", "[economy].starting_war must be a non-negative amount"),
}


def build() -> None:
    for case, (breaker, file, expected) in CASES.items():
        folder = HERE / case
        shutil.rmtree(folder, ignore_errors=True)
        files = base()
        breaker(files)
        for rel, content in files.items():
            path = folder / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content if isinstance(content, str) else json.dumps(content))
        (folder / "EXPECTED").write_text(f"{file}\n{expected}\n")


if __name__ == "__main__":
    build()
    print(f"built {len(CASES)} broken worlds in {HERE}")
