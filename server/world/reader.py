"""Reading a world folder: world.toml plus one Tiled map per room (parsed with pytiled-parser), in one place.

The same reader serves two readers of a world. `load_world` (serve, reload) stops at the first problem that makes
the world unservable and raises WorldError naming the file and the place; `world check` (server/tools/worldcheck.py)
collects every problem, including advice a server can live with (an unknown property, a tileset image that cannot
be read), and then checks NPC files, templates and reachability on top. Conventions (docs/worlds.md): a tile layer
named `collision` blocks every tile it paints, and so does any tile whose tileset gives it `collides = true`;
object layer `spawns` holds named points or rectangles, `portals` rectangles with `target_room` and
`target_spawn`, `npcs` NPC placements.
"""

from __future__ import annotations

import hashlib
import logging
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytiled_parser
from pytiled_parser import ObjectLayer

from server.world.maps import (Portal, RoomMap, World, WorldError, _citizenship, _economy, _npc_programs, _rules,
                               _tile_rect, blocked_grid)

log = logging.getLogger("llama_land.world")
OBJECT_PROPERTIES = {"spawns": set(), "portals": {"target_room", "target_spawn"}, "npcs": set()}
TILE_PROPERTIES = {"collides"}
TABLES = ("world", "rooms", "rules", "economy", "inference", "citizenship", "npc_programs")


@dataclass(frozen=True)
class Problem:
    file: Path
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.where + ': ' if self.where else ''}{self.message}"


class WorldReader:
    """collect=False: the first fatal problem raises WorldError (advice is logged). collect=True: every problem
    is kept in `problems`, and reading goes on as far as it can."""

    def __init__(self, root: Path, collect: bool = False):
        self.root, self.collect = Path(root), collect
        self.problems: list[Problem] = []
        self.rooms: dict[str, RoomMap] = {}
        self.doc: dict[str, Any] = {}
        self.start_at: tuple[str, str] | None = None  # (room, spawn) players start at

    def problem(self, file: Path, where: str, message: str, fatal: bool | None = True) -> None:
        """fatal: the world cannot be served; False: advice (logged by serve); None: the cast refuses it later
        with its own message (an NPC file's concern)."""
        found = Problem(file, where, message)
        if self.collect:
            self.problems.append(found)
        elif fatal:
            raise WorldError(str(found))
        elif fatal is False:
            log.warning("%s (the world is served anyway; `llama-land world check` lists every such problem)", found)

    # --- the whole world -----------------------------------------------------------------------------------

    def read(self) -> World | None:
        toml = self.root / "world.toml"
        if not toml.is_file():
            self.problem(self.root, "", "not a world folder (no world.toml)")
            return None
        try:
            self.doc = tomllib.loads(toml.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            self.problem(toml, "", str(exc))
            return None
        doc = self.doc
        rules, starting_war, citizenship, programs = self.settings(toml, doc)
        if not doc.get("rooms"):
            self.problem(toml, "[rooms]", "no rooms (add a [rooms] table: name = \"maps/file.tmj\")")
        for name, rel in (doc.get("rooms") or {}).items():
            room = self.map(name, self.root / str(rel))
            if room is not None:
                self.rooms[name] = room
        self.portals()
        start = self.start_at = self.start()
        if None in (start, rules, starting_war, citizenship, programs):
            return None
        inference = doc.get("inference", {})
        model = (self.root / str(inference["model"])).resolve() if "model" in inference else None
        return World(name=str(doc.get("world", {}).get("name", self.root.name)), root=self.root,
                     start_room=start[0], start_spawn=start[1], rules=rules, rooms=self.rooms, model=model,
                     starting_war=starting_war, citizenship=citizenship, programs=programs)

    def settings(self, toml: Path, doc: dict[str, Any]) -> list[Any]:
        """[rules], [economy], [citizenship] and [npc_programs] parsed (None for one with a problem)."""
        parsed = []
        for table, parse in (("rules", _rules), ("economy", _economy), ("citizenship", _citizenship),
                             ("npc_programs", _npc_programs)):
            try:
                parsed.append(parse(doc.get(table, {}), toml))
            except WorldError as exc:
                self.problem(toml, f"[{table}]", str(exc).removeprefix(f"{toml}: "))
                parsed.append(None)
        for key in sorted(set(doc) - set(TABLES)):
            self.problem(toml, f"[{key}]", f"unknown table (known: {', '.join(TABLES)})", fatal=False)
        unknown = set(doc.get("inference", {})) - {"model"}
        if unknown:
            self.problem(toml, "[inference]", f"unknown setting [inference].{sorted(unknown)[0]} (known: model)")
        return parsed

    def start(self) -> tuple[str, str] | None:
        meta, toml = self.doc.get("world", {}), self.root / "world.toml"
        start = meta.get("start_room", next(iter(self.doc.get("rooms") or {}), None))
        if start not in self.rooms:
            if start is not None and start not in (self.doc.get("rooms") or {}):
                self.problem(toml, "[world]", f"start_room {start!r} is not one of the rooms "
                                              f"({', '.join(self.doc.get('rooms') or {})})")
            return None
        spawn = meta.get("start_spawn", "default")
        if spawn not in self.rooms[start].spawns:
            self.problem(toml, "[world]", f"start_spawn {spawn!r} is not a spawn of room {start!r}")
            return None
        return start, spawn

    def portals(self) -> None:
        for room in self.rooms.values():
            for portal in room.portals:
                where = f"portal {portal.name!r} at ({portal.x0}, {portal.y0})"
                target = self.rooms.get(portal.target_room)
                if target is None and portal.target_room not in (self.doc.get("rooms") or {}):
                    self.problem(room.path, where, f"leads to unknown room {portal.target_room!r}")
                elif target is not None and portal.target_spawn not in target.spawns:
                    self.problem(room.path, where, f"leads to unknown spawn {portal.target_spawn!r} of room "
                                                   f"{portal.target_room!r}")

    # --- one map ---------------------------------------------------------------------------------------------

    def map(self, name: str, path: Path) -> RoomMap | None:
        if not path.is_file():
            self.problem(path, "", f"map file not found (room {name!r})")
            return None
        try:
            tmap = pytiled_parser.parse_map(path)
        except FileNotFoundError as exc:
            self.problem(path, "tilesets", f"unreadable tileset: {exc.filename} not found")
            return None
        except Exception as exc:  # pytiled-parser raises many kinds on a broken file
            self.problem(path, "", f"not a readable Tiled map: {exc}")
            return None
        if tmap.infinite:
            self.problem(path, "", "infinite maps are not supported; set a fixed map size in Tiled")
            return None
        self.tilesets(path, tmap)
        blocked = blocked_grid(tmap)
        room = RoomMap(name=name, path=path, sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
                       width=tmap.map_size.width, height=tmap.map_size.height, tile_size=tmap.tile_size.width,
                       blocked=blocked, spawns={}, portals=[])
        for layer in tmap.layers:
            if not isinstance(layer, ObjectLayer):
                continue
            kind = layer.name.lower()
            if kind not in OBJECT_PROPERTIES:
                self.problem(path, f"layer {layer.name!r}", "unknown object layer (known: spawns, portals, npcs)",
                             fatal=False)
                continue
            for obj in layer.tiled_objects:
                self.object(room, kind, obj, _tile_rect(obj, tmap.tile_size.width, tmap.tile_size.height))
        if not room.spawns:
            self.problem(path, "layer 'spawns'", "no spawn point (add a point to an object layer named 'spawns')")
        room.index_portals()
        return room

    def tilesets(self, path: Path, tmap: Any) -> None:
        for tileset in tmap.tilesets.values():
            image = getattr(tileset, "image", None)
            if image is not None and not Path(image).is_file():
                self.problem(path, f"tileset {tileset.name!r}", f"image {image} cannot be read", fatal=False)
            for tile_id, tile in (tileset.tiles or {}).items():
                for prop in sorted(set(tile.properties or {}) - TILE_PROPERTIES):
                    self.problem(path, f"tileset {tileset.name!r} tile {tile_id}",
                                 f"unknown property {prop!r} (known: {', '.join(sorted(TILE_PROPERTIES))})",
                                 fatal=False)

    def object(self, room: RoomMap, kind: str, obj: Any, rect: tuple[int, int, int, int]) -> None:
        x0, y0, x1, y1 = rect
        where = f"{kind[:-1]} {obj.name or obj.id!r} at ({x0}, {y0})"
        props = dict(obj.properties or {})
        for prop in sorted(set(props) - OBJECT_PROPERTIES[kind]):
            known = ", ".join(sorted(OBJECT_PROPERTIES[kind])) or "none"
            self.problem(room.path, where, f"unknown property {prop!r} (known: {known})", fatal=False)
        if kind == "spawns":
            tiles = [(x, y) for y in range(y0, y1) for x in range(x0, x1) if room.walkable(x, y)]
            if not tiles:
                self.problem(room.path, where, "spawn is on a blocked tile")
                return
            room.spawns[obj.name or "default"] = tiles
        elif kind == "portals":
            if "target_room" not in props:
                self.problem(room.path, where, "portal needs a target_room property")
                return
            room.portals.append(Portal(obj.name, x0, y0, x1, y1, str(props["target_room"]),
                                       str(props.get("target_spawn", "default"))))
        else:
            if not room.walkable(x0, y0):  # cast.py refuses it when it loads the NPC files
                self.problem(room.path, where, "NPC stands on a blocked tile", fatal=None)
            room.npcs.append({"name": obj.name, "x": x0, "y": y0, **props})


def load_world(root: str | Path) -> World:
    world = WorldReader(Path(root)).read()
    assert world is not None  # a reader that does not collect raises on the first fatal problem
    return world



def load_room(name: str, path: Path) -> RoomMap:
    """One map on its own (the client reads the room it is shown, for prediction and click-to-walk)."""
    room = WorldReader(path.parent).map(name, path)
    assert room is not None
    return room
