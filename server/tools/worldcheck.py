"""`llama-land world check PATH`: every problem of a world folder, each with its file and place, in one run.

The server's loader stops at the first problem, which is right for a server; a designer wants the whole list. This
reads the world with the same reader in its collecting mode (server/world/reader.py: the same parser, the same
collision rule, the same messages), checks the NPC files and templates the way a start does, and also walks the
world: every portal and every NPC must be reachable on foot from the start spawn, through portals. Grammars are
checked when a server starts (they need the model).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from npcs.inference.templates import TemplateError, load_template
from npcs.kinds import KINDS, TEMPLATE_VARIABLES
from npcs.npcfile import NpcError, load_npc
from server.world import grid
from server.world.maps import Rules
from server.world.reader import Problem, WorldReader

__all__ = ["Problem", "WorldCheck", "check_world"]


class WorldCheck(WorldReader):
    def __init__(self, root: Path):
        super().__init__(root, collect=True)

    def run(self) -> list[Problem]:
        self.read()
        if not self.doc:  # no world.toml, or not TOML: nothing more to check
            return self.problems
        templates = self.templates()
        npcs = self.npcs(templates)
        self.reachable(npcs)
        return self.problems

    # --- templates and NPC files ----------------------------------------------------------------------------

    def templates(self) -> dict[str, Any]:
        out = {}
        for path in sorted((self.root / "templates").glob("*.toml")):
            try:
                template = load_template(path)
            except TemplateError as exc:
                self.problem(path, "", str(exc).removeprefix(f"{path}: "))
                continue
            for var in sorted(template.variables - TEMPLATE_VARIABLES):
                self.problem(path, "", f"uses unknown variable {{{var}}} (NPCs fill in: "
                                       f"{', '.join(sorted(TEMPLATE_VARIABLES))})")
            out[template.id] = template
        return out

    def npcs(self, templates: dict[str, Any]) -> dict[str, Any]:
        reach = self.doc.get("rules", {}).get("near_radius", Rules.near_radius)
        specs = {}
        for path in sorted((self.root / "npcs").glob("*.toml")):
            try:
                specs[path.stem] = load_npc(path, templates, reach if isinstance(reach, int) else Rules.near_radius)
            except NpcError as exc:
                self.problem(path, "", str(exc).removeprefix(f"{path}: "))
        placed = {obj["name"] for room in self.rooms.values() for obj in room.npcs}
        for room in self.rooms.values():
            for obj in room.npcs:
                npc = obj["name"]
                if npc not in specs and not (self.root / "npcs" / f"{npc}.toml").is_file():
                    self.problem(room.path, f"npc {npc!r} at ({obj['x']}, {obj['y']})",
                                 f"has no NPC file (expected npcs/{npc}.toml)")
        for spec in specs.values():
            if KINDS[spec.kind].placed and spec.id not in placed:
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

    def reachable(self, specs: dict[str, Any]) -> None:
        """Walk from the start spawn through every portal; report portals and NPCs nobody can get to."""
        start = self.start_at
        if start is None:
            return
        used: set[tuple[str, str]] = set()

        def step(node: tuple[str, int, int]) -> list[tuple[str, int, int]]:
            name, x, y = node
            room = self.rooms[name]
            portal = room.portal_at.get((x, y))
            if portal is None:
                return [(name, nx, ny) for nx, ny in grid.neighbours((x, y)) if room.walkable(nx, ny)]
            used.add((name, portal.name))
            target = self.rooms.get(portal.target_room)
            return [(portal.target_room, tx, ty) for tx, ty in (target.spawns.get(portal.target_spawn, [])
                                                                 if target else [])]

        room_name, spawn = start
        seen = grid.breadth_first([(room_name, x, y) for x, y in self.rooms[room_name].spawns[spawn]], step)[0]
        for room in self.rooms.values():
            for portal in room.portals:
                if (room.name, portal.name) not in used:
                    self.problem(room.path, f"portal {portal.name!r} at ({portal.x0}, {portal.y0})",
                                 "cannot be reached on foot from the start spawn")
            for obj in room.npcs:
                npc, nx, ny = obj["name"], obj["x"], obj["y"]
                reach = specs[npc].reach if npc in specs else 1
                if not any(r == room.name and (x - nx) ** 2 + (y - ny) ** 2 <= reach * reach for r, x, y in seen):
                    self.problem(room.path, f"npc {npc!r} at ({nx}, {ny})",
                                 "cannot be reached on foot from the start spawn")


def check_world(root: str | Path) -> list[Problem]:
    return WorldCheck(Path(root)).run()
