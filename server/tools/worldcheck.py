"""`llama-land world check PATH`: every problem of a world folder, each with its file and place, in one run.

The loader (server/world/maps.py, npcs/cast.py) stops at the first problem, which is right for a server; a designer
wants the whole list. This module reads the same files the same way (pytiled-parser, the same collision rule, the
same NPC file checks) and also walks the world: every portal and every NPC must be reachable on foot from the
start spawn, through portals. Grammars are checked when a server starts (they need the model).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytiled_parser
from pytiled_parser import ObjectLayer

from npcs.npcfile import ROLES, NpcError, load_npc
from npcs.inference.templates import TemplateError, load_template

from server.world import grid
from server.world.maps import Rules, WorldError, _economy, _rules, _tile_rect, blocked_grid

OBJECT_PROPERTIES = {"spawns": set(), "portals": {"target_room", "target_spawn"}, "npcs": set()}
TILE_PROPERTIES = {"collides"}
NEEDS_PLACING = {"king", "joker", "oracle", "wanderer"}


@dataclass(frozen=True)
class Problem:
    file: Path
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.where + ': ' if self.where else ''}{self.message}"


@dataclass
class CheckedRoom:
    name: str
    path: Path
    blocked: Any
    portals: list[tuple[str, tuple[int, int, int, int], str, str]] = field(default_factory=list)
    spawns: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    npcs: dict[str, tuple[int, int]] = field(default_factory=dict)

    def walkable(self, x: int, y: int) -> bool:
        h, w = self.blocked.shape
        return 0 <= x < w and 0 <= y < h and not self.blocked[y, x]


class WorldCheck:
    def __init__(self, root: Path):
        self.root = root
        self.problems: list[Problem] = []
        self.rooms: dict[str, CheckedRoom] = {}

    def problem(self, file: Path, where: str, message: str) -> None:
        self.problems.append(Problem(file, where, message))

    def run(self) -> list[Problem]:
        toml = self.root / "world.toml"
        if not toml.is_file():
            self.problem(self.root, "", "not a world folder (no world.toml)")
            return self.problems
        try:
            doc = tomllib.loads(toml.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            self.problem(toml, "", str(exc))
            return self.problems
        self.settings(toml, doc)
        for name, rel in (doc.get("rooms") or {}).items():
            self.map(name, self.root / str(rel))
        if not doc.get("rooms"):
            self.problem(toml, "[rooms]", "no rooms (add a [rooms] table: name = \"maps/file.tmj\")")
        self.portals()
        templates = self.templates()
        npcs = self.npcs(templates, doc)
        self.reachable(doc, npcs)
        return self.problems

    # --- world.toml -----------------------------------------------------------------------------------------

    def settings(self, toml: Path, doc: dict[str, Any]) -> None:
        for table, parse in (("rules", _rules), ("economy", _economy)):
            try:
                parse(doc.get(table, {}), toml)
            except WorldError as exc:
                self.problem(toml, f"[{table}]", str(exc).removeprefix(f"{toml}: "))
        unknown = set(doc) - {"world", "rooms", "rules", "economy", "inference"}
        for key in sorted(unknown):
            self.problem(toml, f"[{key}]", "unknown table (known: world, rooms, rules, economy, inference)")
        if set(doc.get("inference", {})) - {"model"}:
            self.problem(toml, "[inference]", "unknown setting (known: model)")

    # --- maps -----------------------------------------------------------------------------------------------

    def map(self, name: str, path: Path) -> None:
        if not path.is_file():
            self.problem(path, "", f"map file not found (room {name!r})")
            return
        try:
            tmap = pytiled_parser.parse_map(path)
        except FileNotFoundError as exc:
            self.problem(path, "tilesets", f"unreadable tileset: {exc.filename} not found")
            return
        except Exception as exc:  # pytiled-parser raises many kinds on a broken file
            self.problem(path, "", f"not a readable Tiled map: {exc}")
            return
        for firstgid, tileset in tmap.tilesets.items():
            image = getattr(tileset, "image", None)
            if image is not None and not Path(image).is_file():
                self.problem(path, f"tileset {tileset.name!r}", f"image {image} cannot be read")
            for tile_id, tile in (tileset.tiles or {}).items():
                for prop in sorted(set(tile.properties or {}) - TILE_PROPERTIES):
                    self.problem(path, f"tileset {tileset.name!r} tile {tile_id}",
                                 f"unknown property {prop!r} (known: {', '.join(sorted(TILE_PROPERTIES))})")
        room = CheckedRoom(name, path, blocked_grid(tmap))
        tw, th = tmap.tile_size.width, tmap.tile_size.height
        for layer in tmap.layers:
            if not isinstance(layer, ObjectLayer):
                continue
            kind = layer.name.lower()
            if kind not in OBJECT_PROPERTIES:
                self.problem(path, f"layer {layer.name!r}", "unknown object layer (known: spawns, portals, npcs)")
                continue
            for obj in layer.tiled_objects:
                self.object(room, kind, obj, _tile_rect(obj, tw, th))
        if not room.spawns:
            self.problem(path, "layer 'spawns'", "no spawn point (add a point to an object layer named 'spawns')")
        self.rooms[name] = room

    def object(self, room: CheckedRoom, kind: str, obj: Any, rect: tuple[int, int, int, int]) -> None:
        x0, y0, x1, y1 = rect
        where = f"{kind[:-1]} {obj.name or obj.id!r} at ({x0}, {y0})"
        props = dict(obj.properties or {})
        for prop in sorted(set(props) - OBJECT_PROPERTIES[kind]):
            known = ", ".join(sorted(OBJECT_PROPERTIES[kind])) or "none"
            self.problem(room.path, where, f"unknown property {prop!r} (known: {known})")
        tiles = [(x, y) for y in range(y0, y1) for x in range(x0, x1)]
        if kind == "spawns":
            walkable = [t for t in tiles if room.walkable(*t)]
            if not walkable:
                self.problem(room.path, where, "spawn is on a blocked tile")
            room.spawns[obj.name or "default"] = walkable
        elif kind == "portals":
            if "target_room" not in props:
                self.problem(room.path, where, "portal needs a target_room property")
                return
            room.portals.append((obj.name, rect, str(props["target_room"]), str(props.get("target_spawn", "default"))))
        else:
            if not room.walkable(x0, y0):
                self.problem(room.path, where, "NPC stands on a blocked tile")
            room.npcs[obj.name] = (x0, y0)

    def portals(self) -> None:
        for room in self.rooms.values():
            for name, rect, target_room, target_spawn in room.portals:
                where = f"portal {name!r} at ({rect[0]}, {rect[1]})"
                target = self.rooms.get(target_room)
                if target is None:
                    self.problem(room.path, where, f"leads to unknown room {target_room!r}")
                elif target_spawn not in target.spawns:
                    self.problem(room.path, where, f"leads to unknown spawn {target_spawn!r} of room {target_room!r}")

    # --- templates and NPC files ----------------------------------------------------------------------------

    def templates(self) -> dict[str, Any]:
        out = {}
        known_vars = set().union(*(v for roles in ROLES.values() for v in roles.values()))
        for path in sorted((self.root / "templates").glob("*.toml")):
            try:
                template = load_template(path)
            except TemplateError as exc:
                self.problem(path, "", str(exc).removeprefix(f"{path}: "))
                continue
            for var in sorted(template.variables - known_vars):
                self.problem(path, "", f"uses unknown variable {{{var}}} (NPCs fill in: {', '.join(sorted(known_vars))})")
            out[template.id] = template
        return out

    def npcs(self, templates: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
        reach = doc.get("rules", {}).get("near_radius", Rules.near_radius)
        specs = {}
        for path in sorted((self.root / "npcs").glob("*.toml")):
            try:
                specs[path.stem] = load_npc(path, templates, reach if isinstance(reach, int) else Rules.near_radius)
            except NpcError as exc:
                self.problem(path, "", str(exc).removeprefix(f"{path}: "))
        placed = {npc: room for room in self.rooms.values() for npc in room.npcs}
        for room in self.rooms.values():
            for npc, (x, y) in room.npcs.items():
                if npc not in specs and not (self.root / "npcs" / f"{npc}.toml").is_file():
                    self.problem(room.path, f"npc {npc!r} at ({x}, {y})",
                                 f"has no NPC file (expected npcs/{npc}.toml)")
        for spec in specs.values():
            if spec.kind in NEEDS_PLACING and spec.id not in placed:
                self.problem(spec.path, "", f"a {spec.kind} must stand somewhere: add a point named {spec.id!r} to "
                                            f"the 'npcs' layer of a map")
            for member in spec.committee:
                if member not in specs or specs[member].kind != "fed":
                    self.problem(spec.path, "committee", f"{member!r} is not an NPC of kind fed")
        kings = [s.id for s in specs.values() if s.kind == "king"]
        if len(kings) > 1:
            self.problem(self.root / "npcs", "", f"a world has one King (one Fed), found {', '.join(kings)}")
        return specs

    # --- on foot --------------------------------------------------------------------------------------------

    def reachable(self, doc: dict[str, Any], specs: dict[str, Any]) -> None:
        """Walk from the start spawn through every portal; report portals and NPCs nobody can get to."""
        meta = doc.get("world", {})
        start = self.rooms.get(meta.get("start_room", next(iter(self.rooms), None)))
        toml = self.root / "world.toml"
        if start is None:
            if self.rooms:
                self.problem(toml, "[world]", f"start_room {meta.get('start_room')!r} is not one of the rooms")
            return
        spawn = meta.get("start_spawn", "default")
        if spawn not in start.spawns:
            self.problem(toml, "[world]", f"start_spawn {spawn!r} is not a spawn of room {start.name!r}")
            return
        portal_at = {r.name: {(x, y): p for p in r.portals for y in range(p[1][1], p[1][3])
                              for x in range(p[1][0], p[1][2])} for r in self.rooms.values()}
        used: set[tuple[str, str]] = set()

        def step(node: tuple[str, int, int]) -> list[tuple[str, int, int]]:
            name, x, y = node
            portal = portal_at[name].get((x, y))
            if portal is None:
                return [(name, nx, ny) for nx, ny in grid.neighbours((x, y)) if self.rooms[name].walkable(nx, ny)]
            used.add((name, portal[0]))
            target = self.rooms.get(portal[2])
            return [(portal[2], tx, ty) for tx, ty in (target.spawns.get(portal[3], []) if target else [])]

        seen = grid.breadth_first([(start.name, x, y) for x, y in start.spawns[spawn]], step)[0]
        for room in self.rooms.values():
            for portal in room.portals:
                if (room.name, portal[0]) not in used:
                    self.problem(room.path, f"portal {portal[0]!r} at ({portal[1][0]}, {portal[1][1]})",
                                 "cannot be reached on foot from the start spawn")
            for npc, (nx, ny) in room.npcs.items():
                reach = specs[npc].reach if npc in specs else 1
                if not any(r == room.name and (x - nx) ** 2 + (y - ny) ** 2 <= reach * reach for r, x, y in seen):
                    self.problem(room.path, f"npc {npc!r} at ({nx}, {ny})",
                                 "cannot be reached on foot from the start spawn")


def check_world(root: str | Path) -> list[Problem]:
    return WorldCheck(Path(root)).run()
