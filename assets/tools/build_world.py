"""Build the shipped worlds' Tiled maps (worlds/llama-land: five rooms; worlds/isle: two) from ASCII plans.

The plans are the source: one character per tile (LEGEND), then the spawns, portals and NPC points of each room.
The output is ordinary Tiled JSON using assets/tilesets/llama-land.tsj, so a designer can also open the maps in
Tiled and edit them there (and stop using this script). Walls, water, trees and other solid tiles block through
the tileset's `collides` property.

    .venv/bin/python assets/tools/build_world.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_tileset import tile_ids  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TILESET = "../../../assets/tilesets/llama-land.tsj"
LEGEND = {
    ".": "grass", ",": "grass2", ":": "sand", ";": "sand2", "|": "road-ns", "-": "road-ew", "+": "road-cross",
    "d": "dirt", "s": "stone", "n": "snow", "f": "sand-floor", "r": "rug", "b": "boards", "=": "bridge",
    "*": "flowers", "m": "mushroom", "v": "sprout", "D": "door", ">": "sign", "t": "torch", "#": "wall-brick",
    "R": "wall-red", "~": "water", "T": "tree", "y": "tree-small", "A": "tree-autumn", "B": "bush", "o": "rock",
    "c": "crate", "q": "rock-sand", "h": "hay", "N": "snow-pile", "C": "cactus", "F": "fence", "E": "stage-edge", "O": "fountain",
    "P": "pillar",
}

def _hall() -> str:
    """The Fed hall: stone floor, a red carpet from the door to the throne, pillars, torches."""
    rows = ["#" * 24, "#t" + "s" * 20 + "t#"]
    for y in range(2, 15):
        row = ["#"] + ["s"] * 22 + ["#"]
        row[11] = row[12] = "r"
        if y in (4, 7, 10):
            row[4] = row[19] = "P"
        if y == 12:
            row[1] = row[22] = "t"
        rows.append("".join(row))
    rows.append("#" * 11 + "DD" + "#" * 11)
    return "\n".join(rows)


def _stage() -> str:
    """The Joker's stage: boards and footlights at the top, an audience floor below, the door east."""
    w = 26
    rows = ["R" * w, "Rt" + "b" * (w - 4) + "tR"]
    rows += ["R" + "b" * (w - 2) + "R" for _ in range(3)]
    rows.append("R" + "E" * 10 + "bbbb" + "E" * (w - 16) + "R")  # steps down in the middle
    audience = ["d" * (w - 2), "dd.c..d.dddddd.d..c.dd..d", "d......,.......*.......d.", "d.*...........,....*...d.",
                "dd....................dd.", "d...c......m......c...dd.", "dd.........,..........d..",
                "d.*..................*.d.", "dd...h............h...dd.", "ddd..................ddd.",
                "d" * (w - 2)]
    for i, middle in enumerate(audience):
        middle = middle.ljust(w - 2, ".")[: w - 2]
        rows.append(("R" if i not in (2, 3) else "R") + middle + ("D" if i in (2, 3) else "R"))
    rows.append("R" * w)
    return "\n".join(rows)


HALL = _hall()
STAGE = _stage()


# Each room: plan rows, spawns {name: (x0, y0, x1, y1) inclusive}, portals {name: ((x0, y0, x1, y1), room, spawn)},
# npcs {id: (x, y)}.
ROOMS = {
    "plaza": {
        "plan": """
TTTTTTTTTTTTTTTTTTTDDTTTTTTTTTTTTTTTTTTT
T.*..,...B....*....||....*....B...,...*T
T..v.......*.......||.......m........,.T
T.,...h......,.....||...,.......h......T
T...*....y.........||.........y....*...T
T.m......,.....*...||...*.....,........T
T....,.....B.......||.......B......m...T
T..*.........,.....||.....,.........,..T
T.....y...*........||........*...y.....T
T.,..........::::::::::::::..........*.T
T...*..,.....:;;;;;;;;;;;;:....,.......T
T.........*..:;;;;;;;;;;;;:.*..........T
T.m..........:;;;~~~~~~;;;:......m.....T
T....,.......:;;;~~~~~~;;;:...,........T
D------------+;;;~~OO~~;;;+------------D
D------------+;;;~~OO~~;;;+------------D
T...*........:;;;~~~~~~;;;:........*...T
T......,.....:;;;;;;;;;;;;:..,.........T
T..y.........:;;;;;;;;;;;;:.......y....T
T.......*....::::::::::::::....*.......T
T.,....m...........||..........,...m...T
T....B.....,.......||......*.....B.....T
T.*........h.......||...........h...*..T
T.....,.......*....||...,..............T
T..m.......y.......||........y.....,...T
T......*...........||...*.........m....T
T.,.......,....*...||......,......*....T
T...*..........,...||...............,..T
T.........*........||......*...........T
TTTTTTTTTTTTTTTTTTTDDTTTTTTTTTTTTTTTTTTT
""",
        "spawns": {"default": (16, 17, 23, 18), "from-hall": (19, 2, 20, 2), "from-stage": (2, 14, 2, 15),
                   "from-grove": (37, 14, 37, 15), "from-pasture": (19, 27, 20, 27)},
        "portals": {"to-hall": ((19, 0, 20, 0), "fed-hall", "from-plaza"),
                    "to-stage": ((0, 14, 0, 15), "stage", "from-plaza"),
                    "to-grove": ((39, 14, 39, 15), "grove", "from-plaza"),
                    "to-pasture": ((19, 29, 20, 29), "pasture", "from-plaza")},
        "npcs": {"dolly": (8, 6), "paco": (31, 23), "tess": (28, 17)},
    },
    "fed-hall": {
        "plan": HALL,
        "spawns": {"default": (10, 12, 13, 12), "from-plaza": (11, 13, 12, 13)},
        "portals": {"to-plaza": ((11, 15, 12, 15), "plaza", "from-hall")},
        "npcs": {"king": (12, 3), "hawk": (8, 2), "dove": (16, 2), "chair": (12, 1)},
    },
    "stage": {
        "plan": STAGE,
        "spawns": {"default": (12, 10, 14, 11), "from-plaza": (23, 8, 23, 9)},
        "portals": {"to-plaza": ((25, 8, 25, 9), "plaza", "from-stage")},
        "npcs": {"joker": (13, 3)},
    },
    "grove": {
        "plan": """
TTTTTTTTTTTTTTTTTTTTTTTTTT
TyyA..m...*..T...*..m..yAT
Ty....*.......v.....*...yT
TA..m.....AA...AA....*..AT
T....*..A..........A.....T
T.......A..ssssss..A..m..T
T..v...A..ssssssss..A....T
T......A..ssssssss..A..*.T
D.......ssssssssss.......T
D.......ssssssssss.......T
T..m...A..ssssssss..A~~~.T
T......A..ssssssss..A.~..T
T....*..A..ssssss..A.....T
T.........A.......A...m..T
T..*.......AA...AA.......T
T.m..v...........*....v..T
TyA.....*....m.......*.AyT
TTTTTTTTTTTTTTTTTTTTTTTTTT
""",
        "spawns": {"default": (2, 8, 2, 9), "from-plaza": (2, 8, 2, 9)},
        "portals": {"to-plaza": ((0, 8, 0, 9), "plaza", "from-grove")},
        "npcs": {"oracle": (13, 8)},
    },
    "pasture": {
        "plan": """
TTTTTTTTTTTTTTDDTTTTTTTTTTTTTT
T.....,.......||.......nnnnnnT
T..h.....*....||....,..nnNnnnT
T.............||.......nnnnnnT
T.FFFFFFFFF...||...FFFFFFFF.nT
T.F.......F...||...F......F..T
T.F..h....F...||...F..h...F..T
T.F.......F...||...F......F..T
T.F...,...F...||...F...,..F..T
T.FFFF.FFFF...||...FFFF.FFF..T
T.............||.............T
T..*....o.....||......*...o..T
T.....,.......++-------------T
T..v......*...||....*....,...T
T.o...........||.........h...T
T.....h...,...||....v........T
T...*.........||.......*...o.T
T........m....||..h..........T
T..,.......*..||.....,...*...T
TTTTTTTTTTTTTTTTTTTTTTTTTTTTTT
""",
        "spawns": {"default": (14, 2, 15, 3), "from-plaza": (14, 2, 15, 2)},
        "portals": {"to-plaza": ((14, 0, 15, 0), "plaza", "from-pasture")},
        "npcs": {"lulu": (6, 6)},
    },
}

ISLE = {
    "beach": {
        "plan": """
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
~~:::::::::::::::::::::::::~~~
~:::C::::::::::::q:::::::C::~~
~::::::::::::::::::::::::::::~
~:::::;;;;;;:::::::::::::::::~
~::q::;;;;;;:::::::::::C:::::~
~:::::;;;;;;::::::::::::::::::
~::::::::::::::::::::::::::::D
~:::::::::::::::::::C::::::::D
~::C:::::::::::::::::::::::::~
~:::::::::::q:::::::::::::::~~
~~::::::::::::::::::::::q:::~~
~~~:::::C:::::::::::::::::~~~~
~~~~::::::::::::::::::::~~~~~~
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
""",
        "spawns": {"default": (13, 8, 15, 9), "from-lighthouse": (27, 8, 27, 9)},
        "portals": {"to-lighthouse": ((29, 8, 29, 9), "lighthouse", "from-beach")},
        "npcs": {"coco": (8, 11), "parrot": (17, 5)},
    },
    "lighthouse": {
        "plan": "\n".join(["R" * 14, "Rt" + "s" * 10 + "tR", "Rss" + "P" + "ss" + "P" + "s" * 6 + "R",
                            *("R" + "s" * 12 + "R" for _ in range(2)), *("D" + "s" * 12 + "R" for _ in range(2)),
                            "Rss" + "P" + "ss" + "P" + "s" * 6 + "R", "Rt" + "s" * 10 + "tR", "R" * 14]),
        "spawns": {"default": (2, 5, 2, 6), "from-beach": (1, 5, 1, 6)},
        "portals": {"to-beach": ((0, 5, 0, 6), "beach", "from-lighthouse")},
        "npcs": {"keeper": (10, 4), "gull": (10, 2)},
    },
}
WORLDS = {"llama-land": ROOMS, "isle": ISLE}


def rows_of(plan: str, name: str) -> list[str]:
    rows = plan.strip("\n").splitlines()
    bad = {c for r in rows for c in r} - LEGEND.keys()
    if bad:
        raise SystemExit(f"{name}: unknown plan characters {sorted(bad)}")
    if len({len(r) for r in rows}) != 1:
        raise SystemExit(f"{name}: rows of different widths: {sorted({len(r) for r in rows})}")
    return rows


def obj(oid: int, name: str, rect: tuple[int, int, int, int], props: dict[str, str] | None = None) -> dict:
    x0, y0, x1, y1 = rect
    out = {"id": oid, "name": name, "type": "", "rotation": 0, "visible": True,
           "x": x0 * 32, "y": y0 * 32, "width": (x1 - x0 + 1) * 32, "height": (y1 - y0 + 1) * 32}
    if (x0, y0) == (x1, y1):  # one tile: a point at its centre
        out.update(x=x0 * 32 + 16, y=y0 * 32 + 16, width=0, height=0, point=True)
    if props:
        out["properties"] = [{"name": k, "type": "string", "value": v} for k, v in props.items()]
    return out


def build_room(name: str, room: dict) -> dict:
    ids = tile_ids()
    rows = rows_of(room["plan"], name)
    height, width = len(rows), len(rows[0])
    data = [ids[LEGEND[c]] + 1 for r in rows for c in r]
    oid = iter(range(1, 1000))
    spawns = [obj(next(oid), n, r) for n, r in room["spawns"].items()]
    portals = [obj(next(oid), n, r, {"target_room": t, "target_spawn": s}) for n, (r, t, s) in room["portals"].items()]
    npcs = [obj(next(oid), n, (x, y, x, y)) for n, (x, y) in room["npcs"].items()]
    layers = [{"id": 1, "name": "ground", "type": "tilelayer", "width": width, "height": height, "x": 0, "y": 0,
               "opacity": 1, "visible": True, "data": data}]
    for lid, (lname, objects) in enumerate((("spawns", spawns), ("portals", portals), ("npcs", npcs)), start=2):
        layers.append({"id": lid, "name": lname, "type": "objectgroup", "draworder": "topdown", "x": 0, "y": 0,
                       "opacity": 1, "visible": True, "objects": objects})
    return {"compressionlevel": -1, "width": width, "height": height, "infinite": False,
            "orientation": "orthogonal", "renderorder": "right-down", "tiledversion": "1.10.2", "tilewidth": 32,
            "tileheight": 32, "type": "map", "version": "1.10", "nextlayerid": 5, "nextobjectid": next(oid),
            "tilesets": [{"firstgid": 1, "source": TILESET}], "layers": layers}


if __name__ == "__main__":
    for world, rooms in WORLDS.items():
        maps = ROOT / "worlds" / world / "maps"
        maps.mkdir(parents=True, exist_ok=True)
        for room_name, spec in rooms.items():
            (maps / f"{room_name}.tmj").write_text(json.dumps(build_room(room_name, spec)) + "\n")
            print(f"wrote {maps / room_name}.tmj")
